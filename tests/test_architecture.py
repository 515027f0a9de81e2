"""Import direction from DESIGN.md §2, enforced with ``ast`` over every module of the packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = ("streams", "consumers", "crawler", "compliance", "headrace")
LIGHT_COMPLIANCE = ("compliance.blocklist", "compliance.blocklist_store", "compliance.audit", "compliance.policy")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.split(".")[0] in OURS}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def allowed(importer: str, imported: str) -> bool:
    top = importer.split(".", maxsplit=1)[0]
    target_top = imported.split(".", maxsplit=1)[0]
    if target_top == top and top != "compliance":
        return True
    if top == "headrace":
        return True
    if target_top == "headrace":
        return False
    if top == "streams":
        return target_top == "streams"
    light = imported.startswith(LIGHT_COMPLIANCE) or imported == "compliance"
    if top in ("crawler", "consumers"):
        return target_top == "streams" or light
    if top == "compliance":
        if importer.startswith(LIGHT_COMPLIANCE):
            return target_top == "streams" or light
        # takedown and the other heavy compliance modules may use shards and the dedup index
        return target_top in ("streams", "compliance") or imported.startswith(("consumers.shards", "consumers.dedup"))
    return False


MODULES = sorted(p for pkg in OURS for p in (REPO / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_import_direction(path: Path) -> None:
    importer = module_name(path)
    bad = sorted(m for m in imports_of(path) if not allowed(importer, m))
    assert not bad, f"{importer} must not import {bad} (see DESIGN.md §2 and docs/architecture.md)"


def test_rules_reject_known_violations() -> None:
    # The checker itself must be able to fail.
    assert not allowed("streams.bus", "consumers.stage")
    assert not allowed("consumers.stage", "crawler.warc")
    assert not allowed("crawler.replay", "consumers.extract")
    assert not allowed("compliance.blocklist", "consumers.shards.reader")
    assert not allowed("consumers.runner", "headrace.config")
    assert allowed("compliance.takedown", "consumers.shards.reader")
    assert allowed("headrace.cli", "crawler.replay")
