"""Loader throughput per worker: sealed shards -> training batches, side by side with the limit and datatrove.

One command (``make bench-loader``):

    python bench/loader_bench.py [--tokens 50000000] [--seq-len 2048] [--batch 8] [--runs 3]
                                 [--datatrove-python PATH] [--append BENCHMARKS.md]

What is measured, every row in one process on one core (a "worker"), page cache warm, medians of
``--runs`` runs, tokens counted as ``seq_len`` per sample:

* ``numpy memmap (limit)``: sequential ``memmap -> int64`` copies of the same token files in
  ``(batch, seq_len + 1)`` blocks; no shuffle, no bookkeeping. Nothing that delivers int64 batches
  from these files can be faster.
* ``headrace ShardLoader``: the numpy core, seeded shuffle over the whole epoch, packing across shards.
* ``headrace TorchShardLoader``: the PyTorch adapter in-process (``num_workers=0``) and with one
  dataloader worker process (pinned memory when CUDA is present; the first batch, i.e. worker
  start-up, is not timed); only when ``torch`` imports in this interpreter.
* ``datatrove DatatroveFolderDataset``: datatrove 0.10.1's own class over the same bytes (our ``.bin``
  files linked as ``.ds``), through a PyTorch ``DataLoader(batch_size=batch)`` in-process in its
  intended sequential order and in random order, and with one worker process; run by
  ``--datatrove-python`` (an interpreter with datatrove and torch). Without torch there, the row is
  datatrove's read path re-implemented (seek + read + ``frombuffer`` + ``astype(int64)`` per sample,
  then stack), and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumers.shards.loader import LoaderConfig, ShardLoader  # noqa: E402
from consumers.shards.reader import list_shards  # noqa: E402
from consumers.shards.tokenizer import TokenizerInfo  # noqa: E402
from consumers.shards.writer import OpenShard  # noqa: E402
from streams.records import Document  # noqa: E402

INFO = TokenizerInfo(name="bench-gpt2-sized", sha256="0" * 64, vocab_size=50257, eos_id=50256)


def build_corpus(directory: Path, tokens: int, n_shards: int = 8, seed: int = 0) -> None:
    if list_shards(directory):
        return
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_shard = tokens // n_shards
    for s in range(n_shards):
        shard = OpenShard(directory, "bench@local", s, 0, INFO)
        made = 0
        i = 0
        while made < per_shard:
            n = int(min(per_shard - made, max(2, rng.lognormal(6.2, 0.9))))
            ids = rng.integers(0, INFO.eos_id, size=n, dtype=np.uint16)
            ids[-1] = INFO.eos_id
            doc_id = f"b{s}-{i}"
            shard.add(Document(doc_id=doc_id, page_id=doc_id, url=f"https://b/{doc_id}", text=""), ids, i)
            made += n
            i += 1
        shard.seal()


def warm(directory: Path) -> None:
    for p in directory.glob("*.bin"):
        with p.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def memmap_limit(directory: Path, seq_len: int, batch: int) -> tuple[int, float]:
    maps = [np.asarray(shard.tokens()) for shard in list_shards(directory)]  # plain ndarray views of the maps
    t0 = time.perf_counter()
    n = 0
    width = seq_len + 1
    for mm in maps:
        block = batch * width
        for a in range(0, len(mm) - block + 1, block):
            out = np.asarray(mm[a : a + block], dtype=np.int64).reshape(batch, width)
            n += out.shape[0] * seq_len
    return n, time.perf_counter() - t0


def headrace_numpy(directory: Path, seq_len: int, batch: int) -> tuple[int, float]:
    loader = ShardLoader(directory, LoaderConfig(seq_len=seq_len, batch_size=batch, seed=1))
    _ = loader.plan  # listing and planning are part of an epoch's start, not of the per-batch cost
    t0 = time.perf_counter()
    n = 0
    for b in loader:
        n += b.tokens.shape[0] * seq_len
    return n, time.perf_counter() - t0


def headrace_torch(directory: Path, seq_len: int, batch: int, workers: int = 1) -> tuple[int, float]:
    from consumers.shards.torch_loader import TorchShardLoader

    cfg = LoaderConfig(seq_len=seq_len, batch_size=batch, seed=1)
    loader = TorchShardLoader(directory, cfg, num_workers=workers)
    _ = loader.plan
    n = 0
    t0 = 0.0
    for i, b in enumerate(loader):
        if i == 0:  # worker start-up is a once-per-epoch cost: time from the first batch on
            t0 = time.perf_counter()
            continue
        n += b["input_ids"].shape[0] * seq_len
    return n, time.perf_counter() - t0


DATATROVE_SCRIPT = r"""
import json, sys, time
import numpy as np
folder, seq_len, batch, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
workers = 1 if mode.endswith("1 worker") else 0
try:
    import torch
    from datatrove.utils.dataset import DatatroveFolderDataset
except ImportError as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)
ds = DatatroveFolderDataset(folder, seq_len=seq_len, token_size=2)
rnd = mode.startswith("random")
sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(1)) if rnd else None
dl = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True)
n = 0
for i, b in enumerate(dl):
    if i == 0:  # worker start-up excluded, as for headrace
        t0 = time.perf_counter()
        continue
    n += b["input_ids"].shape[0] * seq_len
from importlib.metadata import version
print(json.dumps({"tokens": n, "seconds": time.perf_counter() - t0, "datatrove": version("datatrove"),
                  "torch": torch.__version__}))
"""


def datatrove_real(python: str, folder: Path, seq_len: int, batch: int, mode: str) -> dict:
    res = subprocess.run(
        [python, "-c", DATATROVE_SCRIPT, str(folder), str(seq_len), str(batch), mode],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        return {"error": (res.stderr or res.stdout)[-500:]}
    return json.loads(lines[-1])


def datatrove_logic(folder: Path, seq_len: int, batch: int, mode: str) -> tuple[int, float]:
    """datatrove's DatatroveFileDataset._get_input_ids + default collate, without torch."""
    files = sorted(folder.glob("*.ds"))
    width = seq_len + 1
    lens = [f.stat().st_size // 2 // width for f in files]
    cum = np.cumsum([0, *lens])
    order = np.arange(cum[-1])
    if mode == "random":
        order = np.random.default_rng(1).permutation(order)
    handles = [f.open("rb") for f in files]
    t0 = time.perf_counter()
    n = 0
    for a in range(0, len(order) - batch + 1, batch):
        rows = []
        for item in order[a : a + batch]:
            fi = int(np.searchsorted(cum, item, side="right") - 1)
            fh = handles[fi]
            fh.seek(int(item - cum[fi]) * 2 * width)
            rows.append(np.frombuffer(fh.read(2 * width), np.uint16).astype(np.int64))
        out = np.stack(rows)
        n += out.shape[0] * seq_len
    for fh in handles:
        fh.close()
    return n, time.perf_counter() - t0


def rate(result: tuple[int, float] | dict) -> float:
    if isinstance(result, dict):
        if "error" in result:
            raise SystemExit(f"datatrove run failed: {result['error']}")
        return result["tokens"] / result["seconds"]
    n, seconds = result
    return n / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=float, default=50e6)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "headrace-loader-bench")
    default_dt = Path(os.environ.get("DATATROVE_VENV", Path.home() / ".cache/headrace/datatrove-venv")) / "bin/python"
    ap.add_argument("--datatrove-python", default=os.environ.get("DATATROVE_PYTHON", str(default_dt)))
    ap.add_argument("--append", type=Path, help="append the results as a section to this markdown file")
    args = ap.parse_args()

    shards = args.dir / f"shards-{int(args.tokens)}"
    build_corpus(shards, int(args.tokens))
    ds_folder = args.dir / f"datatrove-{int(args.tokens)}"
    ds_folder.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(list_shards(shards)):
        link = ds_folder / f"{i:03d}.ds"
        if not link.exists():
            link.symlink_to(shard.bin_path)
    warm(shards)
    total = sum(s.manifest.tokens for s in list_shards(shards))
    L, B, R = args.seq_len, args.batch, args.runs
    readers: list[tuple[str, str, Callable[[], float]]] = [
        ("numpy memmap (limit), sequential", "", lambda: rate(memmap_limit(shards, L, B))),
        ("headrace ShardLoader (numpy), shuffled", "", lambda: rate(headrace_numpy(shards, L, B))),
    ]
    skipped: list[tuple[str, str]] = []
    try:
        import torch

        pinned = "pinned" if torch.cuda.is_available() else "not pinned: no CUDA"
        readers.append(
            (
                "headrace TorchShardLoader, in-process (num_workers=0)",
                "",
                lambda: rate(headrace_torch(shards, L, B, workers=0)),
            )
        )
        readers.append(
            (f"headrace TorchShardLoader, 1 worker ({pinned})", "", lambda: rate(headrace_torch(shards, L, B)))
        )
    except ImportError:
        skipped.append(("headrace TorchShardLoader", "skipped: torch not installed in this interpreter"))
    for mode in ("sequential", "random", "sequential, 1 worker"):
        have = Path(args.datatrove_python).exists()
        probe = datatrove_real(args.datatrove_python, ds_folder, L, B, mode) if have else {"error": "no interpreter"}
        if "error" not in probe:
            readers.append(
                (
                    f"datatrove DatatroveFolderDataset + DataLoader, {mode}",
                    f"datatrove {probe['datatrove']}, torch {probe['torch']}",
                    lambda m=mode: rate(datatrove_real(args.datatrove_python, ds_folder, L, B, m)),
                )
            )
        else:
            readers.append(
                (
                    f"datatrove read path re-implemented (no torch), {mode}",
                    f"real class unavailable: {probe['error'][:120]}",
                    lambda m=mode: rate(datatrove_logic(ds_folder, L, B, m.split(",")[0])),
                )
            )
    # Interleaved runs: a load spike on a shared machine hits every reader, not one.
    results: dict[str, list[float]] = {name: [] for name, _, _ in readers}
    for _ in range(R):
        for name, _, fn in readers:
            results[name].append(fn())
    medians = {name: statistics.median(v) for name, v in results.items()}
    rows: list[tuple[str, float | None, str]] = [(name, medians[name], note) for name, note, _ in readers]
    rows += [(name, None, note) for name, note in skipped]
    ours = medians["headrace ShardLoader (numpy), shuffled"]
    dt_rates = {
        mode: next(v for k, v in medians.items() if k.startswith("datatrove") and k.endswith(mode))
        for mode in ("sequential", "random")
    }

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"corpus: {total:,} tokens in {len(list_shards(shards))} shards (uint16), seq_len {L}, batch {B}, "
        f"medians of {R} runs",
        "",
        "| reader | M tokens/s per worker | note |",
        "| --- | ---: | --- |",
    ]
    for name, value, note in rows:
        lines.append(f"| {name} | {value / 1e6:.1f} | {note} |" if value else f"| {name} | n/a | {note} |")
    lines.append("")
    lines.append(
        f"headrace numpy core vs datatrove: {ours / dt_rates['sequential']:.1f}x (datatrove sequential), "
        f"{ours / dt_rates['random']:.1f}x (datatrove random order); goal >= 10 M tokens/s and >= 5x"
    )
    pairs = [
        (
            "headrace TorchShardLoader, in-process (num_workers=0)",
            "datatrove DatatroveFolderDataset + DataLoader, sequential",
        ),
        (
            "headrace TorchShardLoader, in-process (num_workers=0)",
            "datatrove DatatroveFolderDataset + DataLoader, random",
        ),
        (
            next((k for k in medians if k.startswith("headrace TorchShardLoader, 1 worker")), ""),
            "datatrove DatatroveFolderDataset + DataLoader, sequential, 1 worker",
        ),
    ]
    for a, b in pairs:
        if a in medians and b in medians:
            ours_mode, theirs_mode = a.split(", ", 1)[1], b.split(", ", 1)[1]
            lines.append(f"like for like: {ours_mode} / datatrove {theirs_mode} = {medians[a] / medians[b]:.1f}x")
    text = "\n".join(lines)
    print(text)
    if args.append:
        cmd = "python bench/loader_bench.py " + " ".join(sys.argv[1:])
        with args.append.open("a") as fh:
            fh.write(f"\n## Loader throughput ({time.strftime('%Y-%m-%d')})\n\n`{cmd}` on {machine}\n\n{text}\n")


if __name__ == "__main__":
    main()
