"""Do headrace's filters make datatrove's decisions? Every page of the corpus, filter by filter.

Each filter (language ID, Gopher repetition, Gopher quality, C4 in FineWeb's variant, FineWeb) gets the
same input text on both sides: the text headrace extracts from every HTML page of the corpus. Reports
keep/drop agreement per filter (and the drop reasons, C4's rewritten text and the language labels),
then runs both FineWeb chains end to end. Exits 1 when a filter agrees on fewer than ``--min``
of the documents. Needs the datatrove virtualenv (``make datatrove-venv``).

    .venv/bin/python bench/datatrove_agreement.py [--data DIR] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from corpus import DEFAULT_WORK, data_dir, extracted, machine, run_datatrove_side

from consumers.language import LanguageIdentifier, bundled_model_path
from consumers.quality.config import QualityConfig
from consumers.quality.stages import datatrove_filters

FILTERS = ("language", "gopher_repetition", "gopher_quality", "c4", "fineweb")


def ours_per_filter(records: list[dict]) -> list[dict]:
    flts = datatrove_filters(QualityConfig())
    lid = LanguageIdentifier()
    langs = lid.predict([r["text"] for r in records])
    out = []
    for rec, (label, score, chosen) in zip(records, langs, strict=True):
        res: dict = {"id": rec["id"]}
        res["language"] = {"keep": lid.keeps(score, chosen), "reason": "", "label": label, "score": score}
        for name, flt in flts.items():
            v = flt.check(rec["text"])
            res[name] = {"keep": v.keep, "reason": v.reason, "values": v.values}
            if name == "c4" and v.keep:
                res[name]["text"] = v.text
        out.append(res)
    return out


def ours_chain(records: list[dict]) -> list[dict]:
    flts = datatrove_filters(QualityConfig())
    lid = LanguageIdentifier()
    out = []
    for rec in records:
        text = rec["text"]
        res = {"id": rec["id"], "dropped_by": "", "reason": ""}
        _label, score, chosen = lid.predict([text])[0]
        if not lid.keeps(score, chosen):
            res["dropped_by"] = "language"
        else:
            for name, flt in flts.items():
                v = flt.check(text)
                if not v.keep:
                    res["dropped_by"], res["reason"] = name, v.reason
                    break
                if v.text is not None:
                    text = v.text
        res["text"] = text if not res["dropped_by"] else ""
        out.append(res)
    return out


def compare(records: list[dict], ours: list[dict], theirs: list[dict], urls: dict[str, str]) -> dict:
    report: dict = {}
    for name in FILTERS:
        agree = 0
        reasons_agree = 0
        diffs = []
        for rec, a, b in zip(records, ours, theirs, strict=True):
            oa, tb = a[name], b[name]
            same = oa["keep"] == tb["keep"]
            agree += same
            reasons_agree += same and (oa["keep"] or oa["reason"] == tb["reason"])
            detail = {}
            if name == "language" and (oa["label"] != tb["label"] or abs(oa["score"] - tb["score"]) > 1e-6):
                detail = {"ours": [oa["label"], oa["score"]], "datatrove": [tb["label"], tb["score"]]}
            if name == "c4" and same and oa["keep"] and oa["text"] != tb["text"]:
                detail = {"c4_text_differs": True}
            if not same or detail:
                diffs.append(
                    {
                        "id": rec["id"],
                        "url": urls.get(rec["id"], ""),
                        "ours": oa["reason"] or ("keep" if oa["keep"] else "drop"),
                        "datatrove": tb["reason"] or ("keep" if tb["keep"] else "drop"),
                        "values": oa.get("values", {}),
                        **detail,
                    }
                )
        n = len(records)
        report[name] = {
            "docs": n,
            "agree": agree,
            "agreement": agree / n if n else 1.0,
            "same_reason": reasons_agree,
            "dropped_ours": sum(not a[name]["keep"] for a in ours),
            "dropped_datatrove": sum(not b[name]["keep"] for b in theirs),
            "differences": diffs,
        }
    return report


def compare_chain(records: list[dict], ours: list[dict], theirs: list[dict], urls: dict[str, str]) -> dict:
    agree = sum((a["dropped_by"] == "") == (b["dropped_by"] == "") for a, b in zip(ours, theirs, strict=True))
    same_step = sum(a["dropped_by"] == b["dropped_by"] for a, b in zip(ours, theirs, strict=True))
    same_text = sum(
        a["text"] == b["text"] for a, b in zip(ours, theirs, strict=True) if not a["dropped_by"] and not b["dropped_by"]
    )
    diffs = [
        {
            "id": r["id"],
            "url": urls.get(r["id"], ""),
            "ours": a["dropped_by"] or "keep",
            "datatrove": b["dropped_by"] or "keep",
        }
        for r, a, b in zip(records, ours, theirs, strict=True)
        if a["dropped_by"] != b["dropped_by"]
    ]
    return {
        "docs": len(records),
        "agree": agree,
        "agreement": agree / len(records) if records else 1.0,
        "same_dropping_step": same_step,
        "kept_ours": sum(not a["dropped_by"] for a in ours),
        "kept_datatrove": sum(not b["dropped_by"] for b in theirs),
        "kept_both_same_text": same_text,
        "differences": diffs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="WARC corpus folder (default ../shared/data or $HEADRACE_TEST_DATA)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="cache and scratch folder")
    ap.add_argument("--json", type=Path, help="write the full report here")
    ap.add_argument("--min", type=float, default=0.99, help="required agreement per filter")
    args = ap.parse_args()

    t0 = time.perf_counter()
    docs = extracted(data_dir(args.data), args.work)
    records = [{"id": d.doc_id, "text": d.text} for d in docs]
    urls = {d.doc_id: d.url for d in docs}
    lid_model = bundled_model_path()

    theirs, _ = run_datatrove_side("filters", records, args.work, lid_model)
    ours = ours_per_filter(records)
    report = {"machine": machine(), "filters": compare(records, ours, theirs, urls)}
    theirs_chain, _ = run_datatrove_side("chain", records, args.work, lid_model)
    report["chain"] = compare_chain(records, ours_chain(records), theirs_chain, urls)
    report["seconds"] = round(time.perf_counter() - t0, 1)

    print(f"{len(records)} documents (every non-empty extraction of the corpus)\n")
    print("| filter | agreement | same reason | dropped (ours / datatrove) | differences |")
    print("|---|---|---|---|---|")
    ok = True
    for name, r in report["filters"].items():
        ok &= r["agreement"] >= args.min
        print(
            f"| {name} | {r['agree']}/{r['docs']} ({r['agreement']:.2%}) | {r['same_reason']} | "
            f"{r['dropped_ours']} / {r['dropped_datatrove']} | {len(r['differences'])} |"
        )
    c = report["chain"]
    print(
        f"| FineWeb chain | {c['agree']}/{c['docs']} ({c['agreement']:.2%}) | {c['same_dropping_step']} | "
        f"kept {c['kept_ours']} / {c['kept_datatrove']} | {len(c['differences'])} |"
    )
    for name, r in report["filters"].items():
        for d in r["differences"]:
            print(f"  {name}: {d}")
    for d in c["differences"]:
        print(f"  chain: {d}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
