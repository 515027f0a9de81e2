"""headrace's filters make datatrove's decisions on every page of the real corpus (>= 99% per filter).

Runs ``bench/datatrove_agreement.py`` (the same command a user runs) against datatrove 0.10.1 in its
own environment (``make datatrove-venv``); skips when that environment or the corpus is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def datatrove_python() -> Path | None:
    env = os.environ.get("HEADRACE_DATATROVE_PYTHON")
    venv = os.environ.get("DATATROVE_VENV") or str(Path.home() / ".cache" / "headrace" / "datatrove-venv")
    for candidate in ([Path(env)] if env else []) + [Path(venv) / "bin" / "python"]:
        if candidate.is_file():
            return candidate
    return None


def test_filters_agree_with_datatrove(shared_data: Path, tmp_path: Path) -> None:
    if datatrove_python() is None:
        pytest.skip("datatrove virtualenv not found: run `make datatrove-venv` (or set HEADRACE_DATATROVE_PYTHON)")
    report_path = tmp_path / "agreement.json"
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "datatrove_agreement.py"),
            "--data",
            str(shared_data),
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads(report_path.read_text())
    for name, r in report["filters"].items():
        assert r["docs"] > 200, name
        assert r["agreement"] >= 0.99, (name, r["differences"])
    language = report["filters"]["language"]
    assert not [d for d in language["differences"] if "ours" in d and isinstance(d["ours"], list)], "labels differ"
    assert report["chain"]["agreement"] >= 0.99
