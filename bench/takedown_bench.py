"""Benchmark: a takedown on a corpus of >= 100 shards rewrites only the shards that hold matches.

Builds a corpus of ``--shards`` sealed shards (random gpt2-range tokens, URLs over a few hundred
hosts), then, in each of ``--runs`` rounds on a fresh copy, takes down

* one URL (one document, one shard),
* one registered domain whose ~10 documents are spread over the corpus (1 in 2,500 documents),

through :class:`compliance.takedown.engine.Takedown` (plan, block rules, atomic rewrite, byte-level
verification, audit), and, side by side, the approach of batch pipelines that have no takedown path:
filtering the whole corpus again and writing every shard anew — measured here by its lower bound, a
byte copy of every shard with fsync. Reports medians: shards rewritten, bytes written, the time of the
rewrite phase and of the byte-level verification (which reads every live shard by design).

    python bench/takedown_bench.py [--shards 128] [--docs-per-shard 200] [--runs 3] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from compliance.takedown.engine import Takedown
from compliance.takedown.request import make_request
from compliance.takedown.verify import verify_corpus
from consumers.shards.reader import list_shards
from consumers.shards.tokenizer import load_tokenizer
from consumers.shards.writer import OpenShard
from streams.records import Document

VICTIM = "victim-publisher.example"


def build(directory: Path, n_shards: int, per_shard: int, seed: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    info = load_tokenizer("gpt2").info
    rng = np.random.default_rng(seed)
    for k in range(n_shards):
        shard = OpenShard(directory, "docs.unique@bench", k % 4, (k // 4) * per_shard, info)
        for i in range(per_shard):
            n = k * per_shard + i
            host = f"www.{VICTIM}" if n % 2500 == 7 else f"site{n % 400}.example.org"
            ids = rng.integers(0, info.eos_id, size=int(rng.integers(200, 1200)), dtype=np.int64)
            doc = Document(doc_id=f"d{n:08d}", page_id=f"p{n}", url=f"https://{host}/page/{n}", text="")
            shard.add(doc, [*ids.tolist(), info.eos_id], (k // 4) * per_shard + i)
        shard.seal()


def corpus_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.suffix in (".bin", ".idx"))


def selective(template: Path, work: Path, selectors: list[tuple[str, str]]) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    shards = work / "shards"
    eng = Takedown(shards, work / "compliance")
    req = make_request(selectors, reason="bench", requester="bench")
    t0 = time.perf_counter()
    _, outcome = eng.run(req)
    wall = time.perf_counter() - t0
    if outcome.status != "completed":
        raise RuntimeError(f"takedown ended {outcome.status}")
    rewritten = {r["shard"] for r in outcome.shards_rewritten}
    written = sum(
        f.bytes
        for s in list_shards(shards)
        if s.manifest.shard_id in rewritten
        for f in (s.manifest.bin, s.manifest.idx)
    )
    t1 = time.perf_counter()
    verify_corpus(shards, work / "compliance" / "takedowns")  # the scan the takedown ends with, alone
    verify_s = time.perf_counter() - t1
    return {
        "wall_s": wall,
        "verify_s": verify_s,
        "documents": outcome.documents,
        "shards_rewritten": len(rewritten),
        "bytes": written,
    }


def full_rewrite(template: Path, work: Path, selectors: list[tuple[str, str]]) -> dict[str, Any]:
    """The least a whole-corpus re-filter costs: every shard's files written anew and fsynced (a byte
    copy; re-tokenizing, as a batch pipeline would, costs far more). Nothing is verified."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    shards = work / "shards"
    t0 = time.perf_counter()
    n = 0
    written = 0
    for s in list_shards(shards):
        for f in (s.manifest.bin, s.manifest.idx):
            src = shards / f.name
            dst = shards / f"{f.name}.rewrite"
            with src.open("rb") as fin, dst.open("wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                os.fsync(fout.fileno())
            written += dst.stat().st_size
        n += 1
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "shards_rewritten": n, "bytes": written}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=128)
    ap.add_argument("--docs-per-shard", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--append", type=Path)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="takedown-bench-"))
    try:
        template = root / "template"
        build(template / "shards", args.shards, args.docs_per_shard)
        total = corpus_bytes(template / "shards")
        first = list_shards(template / "shards")[args.shards // 2].manifest.docs[3]
        cases = {
            "one URL": [("url", first.url)],
            "one domain": [("domain", VICTIM)],
        }
        rows = []
        for name, sel in cases.items():
            ours = [selective(template, root / "work", sel) for _ in range(args.runs)]
            full = [full_rewrite(template, root / "work", sel) for _ in range(args.runs)]
            med = statistics.median(r["wall_s"] for r in ours)
            med_full = statistics.median(r["wall_s"] for r in full)
            rows.append(
                {
                    "case": name,
                    "documents": ours[0]["documents"],
                    "shards_rewritten": ours[0]["shards_rewritten"],
                    "bytes_written": ours[0]["bytes"],
                    "wall_s": med,
                    "verify_s": statistics.median(r["verify_s"] for r in ours),
                    "full_shards": full[0]["shards_rewritten"],
                    "full_bytes": full[0]["bytes"],
                    "full_wall_s": med_full,
                }
            )
        lines = [
            f"### Takedown on a {args.shards}-shard corpus ({total / 1e6:.0f} MB, "
            f"{args.shards * args.docs_per_shard:,} documents)",
            "",
            "`python bench/takedown_bench.py --shards "
            f"{args.shards} --docs-per-shard {args.docs_per_shard} --runs {args.runs}` · "
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} · "
            f"medians of {args.runs} runs. headrace's takedown (plan, block rules, atomic rewrite of the "
            "shards holding matches, byte-level verification of every live shard, audit) next to the lower "
            "bound of a whole-corpus re-filter: every shard's files written anew (byte copy + fsync).",
            "",
            "| request | documents removed | shards rewritten | MB written | takedown s (all steps) "
            "| verification alone s | whole corpus: shards | MB written | s | bytes written, ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['case']} | {r['documents']} | {r['shards_rewritten']} of {args.shards} | "
                f"{r['bytes_written'] / 1e6:.1f} | {r['wall_s']:.2f} | {r['verify_s']:.2f} | "
                f"{r['full_shards']} | {r['full_bytes'] / 1e6:.1f} | {r['full_wall_s']:.2f} | "
                f"1/{r['full_bytes'] / max(r['bytes_written'], 1):.0f} |"
            )
        text = "\n".join(lines) + "\n"
        print(text)
        if args.append:
            with args.append.open("a") as fh:
                fh.write("\n" + text)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
