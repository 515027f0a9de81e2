"""headrace's quality filters against datatrove's, on the same texts, one core.

The texts are every non-empty extraction of the corpus, shuffled (fixed seed). Both sides run the
FineWeb filter chain the way a pipeline does (each document through Gopher repetition, Gopher
quality, C4, FineWeb until one drops it), after a warm-up document (spaCy loads on both sides).

headrace's word splitter caches what it has seen, so three figures are reported:

* **stream**: the second half of the texts, after the first half went through (every text is new,
  the cache has seen other pages, as in a running pipeline) - the headline figure;
* **cold**: one pass over all texts with an empty cache;
* **repeat**: the median of ``--runs`` passes over all texts (the same texts again: fully warm).

datatrove keeps nothing between documents, so its time per text does not depend on order; its
figures are medians of ``--runs`` passes.

    taskset -c 0 .venv/bin/python bench/quality_filters.py [--runs 3] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from corpus import DEFAULT_WORK, data_dir, extracted, machine, run_datatrove_side

from consumers.language import bundled_model_path
from consumers.quality.config import QualityConfig
from consumers.quality.stages import datatrove_filters

NAMES = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def fresh() -> dict:
    flts = datatrove_filters(QualityConfig())
    flts["gopher_repetition"].check("Warm up the tokenizer. It is loaded lazily.")
    return flts


def one_pass(flts: dict, texts: list[str]) -> dict[str, float]:
    spent = dict.fromkeys(flts, 0.0)
    for text in texts:
        for name, flt in flts.items():
            t0 = time.perf_counter()
            v = flt.check(text)
            spent[name] += time.perf_counter() - t0
            if not v.keep:
                break
            if v.text is not None:
                text = v.text
    return spent


def ours(texts: list[str], runs: int) -> tuple[dict[str, float], dict[str, float], list[dict[str, float]]]:
    half = len(texts) // 2
    stream = []
    for _ in range(runs):
        flts = fresh()
        one_pass(flts, texts[:half])
        stream.append(one_pass(flts, texts[half:]))
    stream_med = {n: statistics.median(p[n] for p in stream) for n in NAMES}
    flts = fresh()
    cold = one_pass(flts, texts)
    repeat = [one_pass(flts, texts) for _ in range(runs)]
    return stream_med, cold, repeat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--core", default="0")
    ap.add_argument("--append", type=Path)
    args = ap.parse_args()
    started = machine()
    docs = extracted(data_dir(args.data), args.work)
    records = [{"id": d.doc_id, "text": d.text} for d in docs]
    random.Random(7).shuffle(records)
    half = len(records) // 2
    texts = [r["text"] for r in records]
    model = bundled_model_path()
    _, dt_all = run_datatrove_side(
        "chain", records, args.work, model, repeat=args.runs, only=",".join(NAMES), pin=args.core
    )
    _, dt_half = run_datatrove_side(
        "chain", records[half:], args.work, model, repeat=args.runs, only=",".join(NAMES), pin=args.core
    )
    stream, cold, repeat = ours(texts, args.runs)
    med = statistics.median
    d_all = {n: med(dt_all["timings"][n]) for n in NAMES}
    d_half = {n: med(dt_half["timings"][n]) for n in NAMES}
    o_rep = {n: med(p[n] for p in repeat) for n in NAMES}
    lines = [
        "## Quality filters: headrace vs datatrove (one core)",
        "",
        f"`taskset -c {args.core} .venv/bin/python bench/quality_filters.py --runs {args.runs}` on {started}; "
        f"{len(records)} texts (every non-empty extraction of `../shared/data`, shuffled), FineWeb chain order "
        "(Gopher repetition, Gopher quality, C4, FineWeb). Seconds; medians of "
        f"{args.runs} runs. Stream: the second {len(records) - half} texts after the first {half} (all texts new to "
        "the cache); cold: all texts, empty cache; repeat: all texts again, warm cache.",
        "",
        "| filter | datatrove, 2nd half | headrace stream | speed-up | datatrove, all | headrace cold | speed-up "
        "| headrace repeat | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in [*NAMES, "all four"]:
        keys = NAMES if n == "all four" else (n,)
        dh, os_ = sum(d_half[k] for k in keys), sum(stream[k] for k in keys)
        da, oc, orp = sum(d_all[k] for k in keys), sum(cold[k] for k in keys), sum(o_rep[k] for k in keys)
        b = "**" if n == "all four" else ""
        lines.append(
            f"| {b}{n}{b} | {dh:.3f} | {os_:.3f} | {b}{dh / os_:.1f}x{b} | {da:.3f} | {oc:.3f} | {da / oc:.1f}x | "
            f"{orp:.3f} | {da / orp:.1f}x |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
