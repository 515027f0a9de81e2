"""datatrove's FineWeb pipeline (stage 1) on a set of WARC files; runs with the datatrove venv's python.

WarcReader -> URLFilter -> Trafilatura(favour_precision, 1 s timeout) -> LanguageFilter(en, 0.65) ->
GopherRepetition -> GopherQuality -> C4Quality(filter_no_terminal_punct=False) -> FineWebQuality ->
PIIFormatter -> JsonlWriter, one task, as in ../shared/notes/baseline-datatrove.md. Prints one JSON
line: wall seconds (after imports), documents read and written, per-step seconds.

    python bench/datatrove_pipeline.py WARC_DIR OUT_DIR --lid-model lid.176.ftz [--no-url-filter]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def install_lid_model(path: str) -> None:
    """Put the lid.176.ftz headrace uses where datatrove looks for lid.176.bin, marked complete, so
    LanguageFilter loads it instead of downloading (the pipeline is pickled, so the model cannot be
    handed over as an object)."""
    import shutil

    from datatrove.io import cached_assets_path
    from datatrove.utils.lid import FT176LID
    from fsspec.core import strip_protocol

    folder = Path(cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER))
    target = folder / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")
    if not Path(str(target) + ".completed").exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        Path(str(target) + ".completed").touch()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lid-model", required=True)
    ap.add_argument("--no-url-filter", action="store_true")
    ap.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args()

    t_import = time.perf_counter()
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    names = sorted(p.name for p in args.data.glob("*.warc*"))
    install_lid_model(args.lid_model)
    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    steps: list = [WarcReader(str(args.data), glob_pattern="*.warc*", shuffle_files=False)]
    if not args.no_url_filter:
        steps.append(URLFilter())
    steps += [
        Trafilatura(favour_precision=True, timeout=args.timeout),
        language,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        PIIFormatter(),
        JsonlWriter(str(args.out / "output")),
    ]
    executor = LocalPipelineExecutor(pipeline=steps, tasks=1, workers=1, logging_dir=str(args.out / "logs"))
    t0 = time.perf_counter()
    stats = executor.run()
    wall = time.perf_counter() - t0
    per_step = {step.name: round(step.time_stats.total, 3) for step in stats.stats}
    counters = [step.stats.to_dict() for step in stats.stats]
    docs_in = int(counters[0].get("documents", {}).get("total", 0)) if counters else 0
    docs_out = 0
    out_files = list((args.out / "output").glob("*.jsonl*"))
    import gzip

    for f in out_files:
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt") as fh:
            docs_out += sum(1 for _ in fh)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "import_s": round(t0 - t_import, 3),
                "docs_in": docs_in,
                "docs_out": docs_out,
                "steps": per_step,
                "counters": counters,
                "files": names,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
