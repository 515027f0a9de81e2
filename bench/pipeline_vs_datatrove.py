"""headrace ``run`` against datatrove's FineWeb pipeline: same WARC files, same run, one core.

Each round runs, pinned with ``taskset``:

* datatrove 0.10.1: WarcReader, URLFilter, Trafilatura (favour_precision, 1 s limit), LanguageFilter,
  Gopher repetition and quality, C4 (FineWeb variant), FineWeb quality, PIIFormatter, JsonlWriter
  (``bench/datatrove_pipeline.py``), and the same without URLFilter (headrace has no URL list);
* ``headrace run`` with trafilatura in one worker process (1 s limit), language ID, the FineWeb
  filters, hygiene rules, PII scrubbing, dedup and tokenized shards;
* ``headrace run --extractor resiliparse``;
* the scaling check: two headrace processes on two cores, each with half of the input (balanced by
  HTML bytes), against one process on one core with all of it; reported on whole-process wall time
  and on each run's own elapsed time (after start-up, which every process pays once).

Times are whole-process wall times (start-up included, as a user sees them). Reports medians over
``--runs`` rounds, the ratios, and headrace's per-stage times.

    .venv/bin/python bench/pipeline_vs_datatrove.py [--runs 3] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import DEFAULT_WORK, REPO, data_dir, datatrove_python, machine, warc_files

from consumers.language import bundled_model_path
from crawler.warc import iter_warc
from streams.records import Page

HEADRACE = [sys.executable, "-m", "headrace"]
NON_EXTRACTION = ("language", "quality", "gopher_repetition", "gopher_quality", "c4", "fineweb", "hygiene", "pii")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if res.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return wall, res


def link_dir(files: list[Path], where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for f in files:
        (where / f.name).symlink_to(f)
    return where


def run_datatrove(data: Path, out: Path, core: str, url_filter: bool) -> dict:
    py = datatrove_python()
    if py is None:
        raise SystemExit("datatrove virtualenv not found: run `make datatrove-venv`")
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["taskset", "-c", core, str(py), str(REPO / "bench" / "datatrove_pipeline.py"), str(data), str(out)]
    cmd += ["--lid-model", str(bundled_model_path())] + ([] if url_filter else ["--no-url-filter"])
    wall, res = timed(cmd, dict(os.environ, PYTHONPATH="", HF_HUB_OFFLINE="1"))
    info = json.loads(res.stdout.strip().splitlines()[-1])
    if info["docs_in"] and not info["docs_out"]:
        # Every page failed (datatrove reports a broken extractor sandbox as per-page timeouts): timing
        # that would compare against a pipeline that does no work.
        raise SystemExit(f"datatrove kept 0 of {info['docs_in']} documents; see {out / 'logs'} (broken venv?)")
    return {"wall_s": wall, "docs_in": info["docs_in"], "docs_out": info["docs_out"], "steps": info["steps"]}


def run_headrace(inputs: list[str], out: Path, core: str, extractor: str = "trafilatura", workers: int = 1) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    summary = out.with_suffix(".json")
    cmd = ["taskset", "-c", core, *HEADRACE, "run", *inputs, "--out", str(out), "--workers", str(workers)]
    cmd += ["--extractor", extractor, "--no-progress", "--summary-json", str(summary)]
    env = dict(os.environ, HEADRACE_EXTRACT__TIMEOUT_S="1")  # datatrove's limit
    wall, _ = timed(cmd, env)
    s = json.loads(summary.read_text())
    seconds = s["stats"]["seconds"]
    return {
        "wall_s": wall,
        "docs_in": s["pages_read"],
        "docs_out": s["docs_written"],
        "elapsed_s": s["elapsed_s"],
        "extract_s": seconds.get("extract", 0.0),
        "stages_s": {k: seconds.get(k, 0.0) for k in NON_EXTRACTION},
        "drops": s["drops"],
    }


def split_by_bytes(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Two halves with about the same HTML bytes, which is what extraction time follows (greedy)."""
    sizes = {f: sum(len(item.body) for item in iter_warc(f) if isinstance(item, Page)) for f in files}
    halves: tuple[list[Path], list[Path]] = ([], [])
    totals = [0, 0]
    for f in sorted(files, key=lambda f: -sizes[f]):
        k = 0 if totals[0] <= totals[1] else 1
        halves[k].append(f)
        totals[k] += sizes[f]
    return halves


def two_processes(halves: tuple[list[Path], list[Path]], work: Path) -> tuple[float, float]:
    """Whole wall time of two concurrent runs, and the longer of their own elapsed times."""
    procs = []
    summaries = []
    t0 = time.perf_counter()
    for k, (half, core) in enumerate(zip(halves, ("0", "1"), strict=True)):
        out = work / f"half{k}"
        shutil.rmtree(out, ignore_errors=True)
        summaries.append(out.with_suffix(".json"))
        cmd = ["taskset", "-c", core, *HEADRACE, "run", *map(str, half), "--out", str(out), "--workers", "1"]
        cmd += ["--no-progress", "--summary-json", str(summaries[-1])]
        env = dict(os.environ, HEADRACE_EXTRACT__TIMEOUT_S="1")
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    for p in procs:
        if p.wait() not in (0, 3):
            raise SystemExit("a scaling run failed")
    wall = time.perf_counter() - t0
    return wall, max(json.loads(f.read_text())["elapsed_s"] for f in summaries)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK / "pipeline")
    ap.add_argument("--core", default="0")
    ap.add_argument("--append", type=Path, help="append the markdown section to this file")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--parts", default="datatrove,headrace,resiliparse,scaling", help="what to run")
    args = ap.parse_args()

    parts = set(args.parts.split(","))
    data = data_dir(args.data)
    files = warc_files(data)
    args.work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="headrace-bench-", dir=args.work))
    linked = link_dir(files, scratch / "all")
    halves = split_by_bytes(files)
    rows: dict[str, list[dict]] = {"datatrove": [], "datatrove_no_url": [], "headrace": [], "resiliparse": []}
    scaling: list[tuple[float, float, float, float]] = []
    started = machine()
    for r in range(args.runs):
        print(f"round {r + 1}/{args.runs}", file=sys.stderr)
        if "datatrove" in parts:
            rows["datatrove"].append(run_datatrove(linked, scratch / "dt", args.core, url_filter=True))
            rows["datatrove_no_url"].append(run_datatrove(linked, scratch / "dt2", args.core, url_filter=False))
        if parts & {"headrace", "scaling"}:
            rows["headrace"].append(run_headrace([str(linked)], scratch / "hr", args.core))
        if "resiliparse" in parts:
            rows["resiliparse"].append(run_headrace([str(linked)], scratch / "hr-res", args.core, "resiliparse"))
        if "scaling" in parts:
            one = rows["headrace"][-1]
            scaling.append((one["wall_s"], one["elapsed_s"], *two_processes(halves, scratch)))
            pool = run_headrace([str(linked)], scratch / "hr-pool", "0,1", workers=2)
            rows.setdefault("pool", []).append(pool)

    def summary(name: str) -> dict:
        rs = rows[name]
        if not rs:
            return {"wall_s": float("nan"), "docs_in": 0, "docs_out": 0, "docs_per_s": float("nan")}
        wall = med([x["wall_s"] for x in rs])
        docs_in = rs[0]["docs_in"]
        return {"wall_s": wall, "docs_in": docs_in, "docs_out": rs[0]["docs_out"], "docs_per_s": docs_in / wall}

    result: dict = {name: summary(name) for name in rows}
    hr = rows["headrace"]
    extract_s = med([x["extract_s"] for x in hr])
    stages = {k: med([x["stages_s"][k] for x in hr]) for k in NON_EXTRACTION} if hr else {}
    result["stage_share_of_extraction"] = sum(stages.values()) / extract_s if extract_s else float("nan")
    result["stages_s"] = stages
    result["extract_s"] = extract_s
    one_wall, one_run = med([x[0] for x in scaling]), med([x[1] for x in scaling])
    two_wall, two_run = med([x[2] for x in scaling]), med([x[3] for x in scaling])
    result["scaling_two_cores"] = {"wall": one_wall / two_wall, "after_start": one_run / two_run}
    pool_rows = rows.get("pool", [])
    pool_wall = med([x["wall_s"] for x in pool_rows])
    pool_run = med([x["elapsed_s"] for x in pool_rows])
    base, base_no_url = result["datatrove"], result["datatrove_no_url"]
    lines = [
        "## Pipeline: headrace run vs datatrove's FineWeb pipeline (one core)",
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/pipeline_vs_datatrove.py', '--runs', str(args.runs)])}` on {started}; "
        f"{len(files)} WARC files of `../shared/data`; medians of {args.runs} rounds; whole-process wall time.",
        "",
        "| run | wall s | input docs | docs/s (input) | docs out | speed-up, same files (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("datatrove", "datatrove FineWeb pipeline"),
        ("datatrove_no_url", "datatrove, without URLFilter"),
        ("headrace", "headrace run (trafilatura, 1 worker)"),
        ("resiliparse", "headrace run --extractor resiliparse"),
    ):
        x = result[name]
        lines.append(
            f"| {label} | {x['wall_s']:.1f} | {x['docs_in']} | {x['docs_per_s']:.2f} | {x['docs_out']} | "
            f"{base['wall_s'] / x['wall_s']:.2f}x (vs no-URL: {base_no_url['wall_s'] / x['wall_s']:.2f}x) |"
        )
    lines += [
        "",
        f"headrace stage time (median): extraction {extract_s:.1f} s; after extraction "
        + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
        + f" = {result['stage_share_of_extraction']:.1%} of extraction time (one-time model loads included).",
        "",
        f"Scaling: one process on one core {one_wall:.1f} s for all files ({one_run:.1f} s after start-up); two "
        f"processes on two cores, half the HTML bytes each, {two_wall:.1f} s ({two_run:.1f} s after start-up, the "
        f"slower half): {result['scaling_two_cores']['wall']:.2f}x whole-process, "
        f"{result['scaling_two_cores']['after_start']:.2f}x after start-up. One process with two extraction "
        f"workers on two cores (pages dealt one at a time): {pool_wall:.1f} s ({pool_run:.1f} s after start-up): "
        f"{one_wall / pool_wall:.2f}x whole-process, {one_run / pool_run:.2f}x after start-up.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    if args.json:
        args.json.write_text(json.dumps({"result": result, "rows": rows}, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
