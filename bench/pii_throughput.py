"""PII scrubbing throughput and recall against stock presidio, and adversarial inputs.

* Pages: 3 kB windows of the corpus's extracted texts ("natural"), and the same pages with four
  planted items each: an e-mail address, a public IPv4 address, a Luhn-valid card number and a US
  phone number ("planted").
* Throughput: documents per CPU-second on one core for headrace's detector (cold caches: a fresh
  detector per pass) and for stock presidio (``AnalyzerEngine`` with the same pattern recognizers).
* Recall: planted items found by each; and whether both return exactly the same spans.
* Adversarial: 10 MB strings built to make regexes backtrack; time for the whole PII stage.

    taskset -c 0 .venv/bin/python bench/pii_throughput.py [--runs 3] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import sys
import time
from pathlib import Path

from corpus import DEFAULT_WORK, data_dir, extracted, machine

from consumers.pii import PiiConfig, PiiStage
from consumers.pii_detect import PiiDetector
from streams.records import Document

logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
KINDS = ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER")


def luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return "".join(map(str, [*digits, (10 - total % 10) % 10]))


def plant(rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("EMAIL_ADDRESS", f"{rng.choice(['jane', 'li.wei', 'o.brien'])}{rng.randint(1, 999)}@example-mail.com"),
        ("IP_ADDRESS", f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"),
        ("CREDIT_CARD", luhn_card(rng)),
        ("PHONE_NUMBER", f"({rng.randint(201, 989)}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}"),
    ]


def pages(texts: list[str], size: int = 3000) -> list[str]:
    return [t[i : i + size] for t in texts for i in range(0, len(t), size) if len(t[i : i + size]) >= size // 2]


def with_plants(page: str, rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    items = plant(rng)
    for _, value in items:
        spaces = [m.start() for m in re.finditer(" ", page)] or [0]
        p = rng.choice(spaces)
        page = f"{page[:p]} {value} {page[p + 1 :]}"
    return page, items


def throughput(detect, docs: list[str]) -> float:
    t0 = time.process_time()
    for d in docs:
        detect(d)
    return len(docs) / (time.process_time() - t0)


def recall(detect, planted: list[tuple[str, list[tuple[str, str]]]]) -> dict[str, float]:
    found = dict.fromkeys(KINDS, 0)
    for text, items in planted:
        spans = {(s.entity, text[s.start : s.end]) for s in detect(text)}
        for kind, value in items:
            found[kind] += (kind, value) in spans
    return {k: v / len(planted) for k, v in found.items()}


ADVERSARIAL = {
    "'a' x 10M then '@b.com'": "a" * 10_000_000 + "@b.com",
    "'a.' x 5M": "a." * 5_000_000,
    "'@a' x 5M": "@a" * 5_000_000,
    "'1.1.' x 2.5M": "1.1." * 2_500_000,
    "':' x 10M": ":" * 10_000_000,
    "'1 ' x 5M": "1 " * 5_000_000,
    "'1\\n' x 5M": "1\n" * 5_000_000,
    "'4111-' x 2M": "4111-" * 2_000_000,
    "English prose, 10 MB, one line": ("The committee met on Tuesday to discuss the budget. " * 200_000)[:10_000_000],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--pages", type=int, default=600)
    ap.add_argument("--presidio-pages", type=int, default=200, help="presidio is slow: time it on fewer pages")
    ap.add_argument("--append", type=Path)
    args = ap.parse_args()
    started = machine()
    rng = random.Random(20240601)
    texts = [d.text for d in extracted(data_dir(args.data), args.work)]
    natural = pages(texts)
    rng.shuffle(natural)
    natural = natural[: args.pages]
    planted = [with_plants(p, rng) for p in natural]
    planted_texts = [t for t, _ in planted]

    warm = PiiDetector(score_threshold=0.0)
    warm.detect("warm up 1 @x")  # one-time: lookup tables, presidio imports
    ours_nat, ours_pl = [], []
    for _ in range(args.runs):
        ours_nat.append(throughput(PiiDetector(score_threshold=0.0).detect, natural))
        ours_pl.append(throughput(PiiDetector(score_threshold=0.0).detect, planted_texts))
    ref = PiiDetector(score_threshold=0.0)
    ref.detect_whole("warm up")
    n = args.presidio_pages
    pres_nat = [throughput(ref.detect_whole, natural[:n]) for _ in range(args.runs)]
    pres_pl = [throughput(ref.detect_whole, planted_texts[:n]) for _ in range(args.runs)]
    rec_ours = recall(PiiDetector(score_threshold=0.0).detect, planted)
    rec_pres = recall(ref.detect_whole, planted[:n])
    same = sum(ref.detect(t) == ref.detect_whole(t) for t in planted_texts[:n] + natural[:n])

    stage = PiiStage(PiiConfig())
    stage.process_batch([Document(doc_id="w", page_id="w", url="u", text="warm 1 @x.org")])
    adversarial = []
    for name, text in ADVERSARIAL.items():
        doc = Document(doc_id="a", page_id="a", url="u", text=text)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            (out,) = stage.process_batch([doc])
            times.append(time.perf_counter() - t0)
        adversarial.append((name, statistics.median(times), getattr(out, "reason", "kept")))

    m = statistics.median
    lines = [
        "## PII: headrace vs stock presidio (one core)",
        "",
        f"`taskset -c 0 .venv/bin/python bench/pii_throughput.py --runs {args.runs}` on {started}; 3 kB windows "
        f"of the corpus's extracted text ({len(natural)} pages; presidio timed on {n}); documents per CPU-second, "
        f"median of {args.runs} passes, fresh detector per pass (no warm memo).",
        "",
        "| pages | presidio docs/s | headrace docs/s | speed-up |",
        "|---|---|---|---|",
        f"| natural | {m(pres_nat):.0f} | {m(ours_nat):.0f} | {m(ours_nat) / m(pres_nat):.1f}x |",
        f"| 4 planted items each | {m(pres_pl):.0f} | {m(ours_pl):.0f} | {m(ours_pl) / m(pres_pl):.1f}x |",
        "",
        "Recall on planted items (headrace on all pages / presidio on its subset): "
        + ", ".join(f"{k} {rec_ours[k]:.3f} / {rec_pres[k]:.3f}" for k in KINDS)
        + f". Identical spans to presidio on {same} of {2 * n} pages.",
        "",
        "| adversarial input (10 MB) | PII stage time | outcome |",
        "|---|---|---|",
        *[f"| {name} | {t * 1000:.0f} ms | {outcome} |" for name, t, outcome in adversarial],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
