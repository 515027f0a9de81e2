"""The GPU feed script's CPU dry run (needs torch; skipped where the optional extra is not installed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_feed_dry_run_trains_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional extra `headrace[torch]`)")
    out = tmp_path / "feed.json"
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_feed.py"), "--dry-run", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["steps_measured"] >= 3 and result["tokens_per_s"] > 0
    assert 0 <= result["data_wait_share"] < 1
    first, _last = result["loss_first_last"]
    assert 5 < first < 15  # cross-entropy near ln(50257) = 10.8 at initialisation
