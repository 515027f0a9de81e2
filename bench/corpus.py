"""Shared by the benchmarks: the real WARC corpus, its pages and their extracted texts.

The extracted texts are cached (keyed by the corpus files, their sizes and the extractor settings),
because trafilatura dominates the time of every comparison that needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumers.extract import ExtractConfig, Extractor  # noqa: E402
from crawler.warc import iter_warc  # noqa: E402
from streams.records import Document, Page  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_WORK = REPO / "out" / "bench"
DATATROVE_SIDE = REPO / "bench" / "datatrove_side.py"


def data_dir(arg: str | None = None) -> Path:
    d = Path(arg or os.environ.get("HEADRACE_TEST_DATA") or DEFAULT_DATA)
    if not d.is_dir() or not any(d.glob("*.warc*")):
        raise SystemExit(f"no WARC corpus in {d} (pass --data or set HEADRACE_TEST_DATA)")
    return d


def warc_files(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*.warc*") if p.is_file())


def pages(d: Path) -> list[Page]:
    out: list[Page] = []
    for p in warc_files(d):
        out.extend(item for item in iter_warc(p) if isinstance(item, Page))
    return out


def extracted(d: Path, work: Path, config: ExtractConfig | None = None) -> list[Document]:
    """Every page's extracted document (empty extractions left out), cached under ``work``."""
    config = config or ExtractConfig()
    key = hashlib.sha256(
        json.dumps([[p.name, p.stat().st_size] for p in warc_files(d)] + [repr(config)]).encode()
    ).hexdigest()[:16]
    cache = work / f"extracted-{key}.jsonl"
    if cache.exists():
        import msgspec

        return [msgspec.json.decode(line, type=Document) for line in cache.read_bytes().splitlines()]
    import msgspec

    work.mkdir(parents=True, exist_ok=True)
    extractor = Extractor(config)
    docs = [r for r in extractor.extract_batch(pages(d)) if isinstance(r, Document)]
    tmp = cache.with_suffix(".tmp")
    tmp.write_bytes(b"".join(msgspec.json.encode(doc) + b"\n" for doc in docs))
    tmp.replace(cache)
    return docs


def datatrove_python() -> Path | None:
    """The datatrove virtualenv's python: $HEADRACE_DATATROVE_PYTHON, or the one `make datatrove-venv`
    creates."""
    env = os.environ.get("HEADRACE_DATATROVE_PYTHON")
    candidates = [Path(env)] if env else []
    venv = os.environ.get("DATATROVE_VENV") or str(Path.home() / ".cache" / "headrace" / "datatrove-venv")
    candidates.append(Path(venv) / "bin" / "python")
    for c in candidates:
        if c.is_file():
            return c
    return None


def run_datatrove_side(
    mode: str, records: list[dict], work: Path, lid_model: Path, repeat: int = 1, only: str = "", pin: str = ""
) -> tuple[list[dict], dict]:
    py = datatrove_python()
    if py is None:
        raise SystemExit("datatrove virtualenv not found: run `make datatrove-venv` (or set HEADRACE_DATATROVE_PYTHON)")
    work.mkdir(parents=True, exist_ok=True)
    inp, out = work / f"dt-{mode}-in.jsonl", work / f"dt-{mode}-out.jsonl"
    with inp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    cmd = [str(py), str(DATATROVE_SIDE), mode, str(inp), str(out), "--lid-model", str(lid_model)]
    cmd += ["--repeat", str(repeat)] + (["--only", only] if only else [])
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH="")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(f"datatrove side failed ({res.returncode}):\n{res.stderr[-4000:]}")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    results = [json.loads(line) for line in out.open(encoding="utf-8")]
    return results, summary


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu or 'unknown CPU'}, {os.cpu_count()} cores, load {load:.1f} at start, Python {sys.version.split()[0]}"
