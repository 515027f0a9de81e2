"""datatrove's half of the side-by-side comparisons; runs with the *datatrove* virtualenv's python.

It must not import headrace (the two live in different environments). Reads JSONL documents
(``{"id", "text"}``), applies each datatrove filter on its own to every text (``filters``) or the
FineWeb filter chain (``chain``), and writes one JSON line per document with every filter's decision.
``--repeat N`` reruns the filters N times and reports per-filter seconds (for the speed benchmark).

    python bench/datatrove_side.py filters IN.jsonl OUT.jsonl --lid-model lid.176.ftz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_filters(lid_model: str) -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from fasttext.FastText import _FastText

    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    language.model._model = _FastText(model_path=lid_model)  # offline: the same .ftz headrace uses
    return {
        "language": language,
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(filter_no_terminal_punct=False),
        "fineweb": FineWebQualityFilter(),
    }


def run_filter(flt, doc) -> dict:
    from datatrove.pipeline.filters.base_filter import get_filter_result

    try:
        keep, reason = get_filter_result(flt.filter(doc))
    except ZeroDivisionError as exc:  # datatrove divides by the word count without a guard
        return {"keep": False, "reason": f"error:{type(exc).__name__}"}
    out = {"keep": bool(keep), "reason": reason or ""}
    if "language" in doc.metadata:
        out["label"] = doc.metadata["language"]
        out["score"] = doc.metadata["language_score"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["filters", "chain"])
    ap.add_argument("inp", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lid-model", required=True)
    ap.add_argument("--repeat", type=int, default=1, help="repeat and report timings")
    ap.add_argument("--only", default="", help="comma-separated filter names")
    args = ap.parse_args()

    from datatrove.data import Document

    records = [json.loads(line) for line in args.inp.open(encoding="utf-8")]
    filters = build_filters(args.lid_model)
    if args.only:
        filters = {k: v for k, v in filters.items() if k in args.only.split(",")}
    # warm-up (spaCy and model loads are one-time costs on both sides)
    warm = Document(text="Warm up the tokenizer. It is loaded lazily.", id="warm")
    for flt in filters.values():
        run_filter(flt, warm)

    timings: dict[str, list[float]] = {name: [] for name in filters}
    results: list[dict] = []
    for _ in range(args.repeat):
        results = []
        if args.mode == "filters":
            per_doc = [{} for _ in records]
            for name, flt in filters.items():
                t0 = time.perf_counter()
                for rec, res in zip(records, per_doc, strict=False):
                    doc = Document(text=rec["text"], id=rec["id"])
                    res[name] = run_filter(flt, doc)
                    if name == "c4" and res[name]["keep"]:
                        res[name]["text"] = doc.text
                timings[name].append(time.perf_counter() - t0)
            results = [{"id": r["id"], **res} for r, res in zip(records, per_doc, strict=False)]
        else:
            spent = dict.fromkeys(filters, 0.0)
            for rec in records:
                doc = Document(text=rec["text"], id=rec["id"])
                out = {"id": rec["id"], "dropped_by": "", "reason": ""}
                for name, flt in filters.items():
                    t0 = time.perf_counter()
                    res = run_filter(flt, doc)
                    spent[name] += time.perf_counter() - t0
                    if not res["keep"]:
                        out["dropped_by"], out["reason"] = name, res["reason"]
                        break
                out["text"] = doc.text if not out["dropped_by"] else ""
                results.append(out)
            for name, s in spent.items():
                timings[name].append(s)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in results:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(json.dumps({"timings": timings, "docs": len(records)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
