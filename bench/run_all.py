"""Every benchmark, one after the other, appending to BENCHMARKS.md (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = [
    ["bench/quality_filters.py"],
    ["bench/pii_throughput.py"],
    ["bench/pipeline_vs_datatrove.py"],
]


def main() -> int:
    out = REPO / "BENCHMARKS.md"
    failed = 0
    for bench in BENCHES:
        cmd = [sys.executable, *bench, "--append", str(out)]
        if bench[0] != "bench/pipeline_vs_datatrove.py":  # that one pins its own children
            cmd = ["taskset", "-c", "0", *cmd]
        print("$", " ".join(cmd), flush=True)
        failed += subprocess.run(cmd, cwd=REPO, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
