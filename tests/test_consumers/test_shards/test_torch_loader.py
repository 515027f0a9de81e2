"""The PyTorch adapter: same batches as the numpy core for any worker count, exact resume.

Skipped where torch is not installed (CI installs no multi-GB torch wheel; the numpy core carries the
logic and its tests in test_loader.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_consumers.test_shards.shard_factory import make_corpus

from consumers.shards.loader import LoaderConfig, ShardLoader

torch = pytest.importorskip("torch", reason="torch is not installed (optional extra `headrace[torch]`)")

from consumers.shards.torch_loader import TorchShardLoader  # noqa: E402


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_torch_batches_equal_the_numpy_core(tmp_path: Path, workers: int) -> None:
    make_corpus(tmp_path, 4)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=1)
    expected = [b.tokens for b in ShardLoader(tmp_path, cfg)]
    loader = TorchShardLoader(tmp_path, cfg, num_workers=workers, pin_memory=False)
    got = list(loader)
    assert [b["step"] for b in got] == list(range(len(expected)))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a[:, :-1], b["input_ids"].numpy())
        np.testing.assert_array_equal(a[:, 1:], b["labels"].numpy())
        assert b["input_ids"].dtype == torch.int64
    assert loader.state_dict()["epoch"] == 1


def test_torch_resume_mid_epoch_with_workers(tmp_path: Path) -> None:
    make_corpus(tmp_path, 4)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=2)
    full = [b["input_ids"].clone() for b in TorchShardLoader(tmp_path, cfg, num_workers=2, pin_memory=False)]
    loader = TorchShardLoader(tmp_path, cfg, num_workers=2, pin_memory=False)
    head = []
    for b in loader:
        head.append(b["input_ids"].clone())
        if len(head) == 5:
            break
    state = loader.state_dict()
    assert state["step"] == 5
    resumed = TorchShardLoader(tmp_path, cfg, num_workers=3, pin_memory=False)
    resumed.load_state_dict(state)
    rest = [b["input_ids"] for b in resumed]
    assert len(head) + len(rest) == len(full)
    for a, b in zip(full, head + rest, strict=True):
        assert torch.equal(a, b)
