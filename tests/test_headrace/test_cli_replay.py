"""``headrace replay`` argument handling (no broker needed), and damage reaching the embedded ledger."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner
from warcgen import page, warcinfo

from headrace.cli import EXIT_PARTIAL, EXIT_USAGE, app
from headrace.cli_replay import transactional_id

runner = CliRunner()


def test_replay_needs_inputs() -> None:
    res = runner.invoke(app, ["replay"])
    assert res.exit_code == EXIT_USAGE and "nothing to replay" in res.output


def test_relative_manifest_without_prefix_is_a_usage_error(tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress(b"crawl-data/a.warc.gz\n"))
    res = runner.invoke(app, ["replay", "--from-paths", str(manifest)])
    assert res.exit_code == EXIT_USAGE and "--prefix" in res.output


def test_bad_shard_is_a_usage_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["replay", str(tmp_path), "--shard", "4/4"])
    assert res.exit_code == EXIT_USAGE and "--shard" in res.output


def test_transactional_ids_are_per_shard_and_pipeline() -> None:
    assert transactional_id("headrace-replay", "p1.", 3, 8) == "headrace-replay-p1.3-of-8"
    assert transactional_id("headrace-replay", "", 0, 1) != transactional_id("headrace-replay", "", 1, 2)


def test_embedded_run_quarantines_damage_to_the_ledger(tmp_path: Path) -> None:
    src = tmp_path / "damaged.warc"
    body = b"<html><body><p>" + b"Some words here. " * 60 + b"</p></body></html>"
    src.write_bytes(warcinfo() + page(1, body=body) + page(2, content_length="7") + page(3, body=body))
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "run",
            str(src),
            "--out",
            str(out),
            "--extractor",
            "resiliparse",
            "--summary-json",
            str(tmp_path / "s.json"),
            "--no-progress",
        ],
    )
    assert res.exit_code == EXIT_PARTIAL, res.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["pages_read"] == 2 and summary["damaged_records"] == 1
    letters = [json.loads(line) for line in (out / "ledger" / "dlq.jsonl").read_text().splitlines()]
    assert len(letters) == 1
    assert letters[0]["topic"] == f"warc:{src}" and letters[0]["offset"] == len(warcinfo()) + len(page(1, body=body))
    assert "Content-Length" in letters[0]["reason"]
