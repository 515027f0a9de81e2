"""The README stays true: its two commands exist and CI runs the second; its CLI reference is real."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from headrace.cli import app

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def first_code_block() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block, "README must open with a bash block holding the two commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_two_commands_and_ci_uses_the_second() -> None:
    quick, test = first_code_block()
    assert quick == "make quickstart"
    assert test == "make test"
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    ci = [ln for ln in lines if ln and not ln.startswith(("#", "set ", "cd "))]
    assert ci[-1].strip() == test
    for target in ("quickstart", "test"):
        assert re.search(rf"^{target}:", MAKEFILE, re.M), target


def test_quickstart_runs_the_bundled_sample() -> None:
    recipe = MAKEFILE.split("\nquickstart:", 1)[1].split("\n\n", 1)[0]
    assert "headrace run samples/python-docs.warc.gz" in recipe
    assert (REPO / "samples" / "python-docs.warc.gz").is_file()
    assert "python-docs.warc.gz" in (REPO / "samples" / "SOURCES.md").read_text()


def test_cli_reference_commands_exist() -> None:
    commands = re.findall(r"^\| `headrace ([a-z ]+?)(?: [A-Z-]|`)", README, re.M)
    assert len(commands) >= 7
    runner = CliRunner()
    for cmd in commands:
        res = runner.invoke(app, [*shlex.split(cmd), "--help"])
        assert res.exit_code == 0, f"README documents `headrace {cmd}` but it has no --help: {res.output}"


def test_console_entry_point_works() -> None:
    res = subprocess.run([sys.executable, "-m", "headrace", "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "replay" in res.stdout
