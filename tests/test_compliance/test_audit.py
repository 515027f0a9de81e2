from __future__ import annotations

import itertools
import json
import multiprocessing
from pathlib import Path

import pytest

from compliance.audit import AuditError, AuditLog, verify_chain


def _fill(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append({"event": "takedown", "request_id": f"r{i}", "matched": [f"d{i}"]})
    return log


def test_chain_verifies_and_links(tmp_path: Path) -> None:
    log = _fill(tmp_path / "audit.jsonl")
    report = log.verify()
    assert report.ok and report.lines == 5
    entries = list(log.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert log.find(request_id="r3")[0]["matched"] == ["d3"]


@pytest.mark.parametrize("attack", ["alter", "delete", "swap", "truncate-json", "append-forged"])
def test_tampering_is_detected_at_the_right_line(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path)
    lines = path.read_text().splitlines()
    if attack == "alter":
        entry = json.loads(lines[2])
        entry["matched"] = ["someone-else"]
        lines[2] = json.dumps(entry)
        bad = 3
    elif attack == "delete":
        del lines[1]
        bad = 2
    elif attack == "swap":
        lines[1], lines[2] = lines[2], lines[1]
        bad = 2
    elif attack == "truncate-json":
        lines[4] = lines[4][:-10]
        bad = 5
    else:
        forged = {"seq": 6, "at": "x", "event": "forged", "prev": "0" * 64, "hash": "f" * 64}
        lines.append(json.dumps(forged))
        bad = 6
    path.write_text("\n".join(lines) + "\n")
    report = verify_chain(path)
    assert not report.ok
    assert report.first_bad_line == bad


def test_reserved_fields_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "a.jsonl").append({"hash": "x"})


def _writer(path: str, k: int) -> None:
    log = AuditLog(Path(path))
    for i in range(25):
        log.append({"writer": k, "i": i})


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [multiprocessing.Process(target=_writer, args=(str(path), k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    report = verify_chain(path)
    assert report.ok, report.reason
    assert report.lines == 100
