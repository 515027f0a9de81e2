"""10^5 mutated inputs per target through the fast fuzz loop (``tests/reliability/fuzz.py``), each in
its own process so the peak RSS measured is the target's: 0 crashes outside the declared error types,
0 inputs past the time limit, peak RSS under 512 MiB. ``make fuzz-nightly`` runs 10^6 per target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FUZZ = Path(__file__).resolve().parent / "fuzz.py"
INPUTS = int(os.environ.get("HEADRACE_FUZZ_MASS_INPUTS", "100000"))


@pytest.mark.parametrize("target", ["warc", "codec", "charset"])
def test_mass_fuzz(target: str, tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    res = subprocess.run(
        [sys.executable, str(FUZZ), target, "--inputs", str(INPUTS), "--json", str(out), "--time-limit-s", "10"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    summary = json.loads(out.read_text())
    print(json.dumps({k: summary[k] for k in ("target", "inputs", "crashes", "hangs", "peak_rss_mib", "elapsed_s")}))
    assert summary["inputs"] == INPUTS
    assert summary["crashes"] == 0, summary["examples"]
    assert summary["hangs"] == 0, summary["examples"]
    assert summary["peak_rss_mib"] < 512
    assert len(summary["outcomes"]) > 3  # the mutations reach more than one code path
    assert res.returncode == 0, res.stdout[-2000:]
