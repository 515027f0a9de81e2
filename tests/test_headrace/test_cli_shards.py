"""``headrace shards merge`` and the extended ``shards verify`` report, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from test_consumers.test_shards.shard_factory import make_corpus
from typer.testing import CliRunner

from headrace.cli import app

runner = CliRunner()


def test_merge_dry_run_then_merge_then_verify(tmp_path: Path) -> None:
    make_corpus(tmp_path, 4, docs_per_shard=10)
    dry = runner.invoke(app, ["shards", "merge", str(tmp_path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert len(json.loads(dry.stdout)["groups"][0]) == 4
    res = runner.invoke(app, ["shards", "merge", str(tmp_path), "--target-tokens", "1000000000"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["source_shards"] == 4
    verify = runner.invoke(app, ["shards", "verify", str(tmp_path)])
    assert verify.exit_code == 0, verify.output
    report = json.loads(verify.stdout)
    assert report["ok"] and report["shards"] == 1 and report["retired_shards"] == 4 and report["documents"] == 40


def test_verify_fails_on_a_tombstone_without_its_merged_shard(tmp_path: Path) -> None:
    make_corpus(tmp_path, 2, docs_per_shard=5)
    assert runner.invoke(app, ["shards", "merge", str(tmp_path)]).exit_code == 0
    for m in tmp_path.glob("merged-*.manifest.json"):
        m.unlink()  # the merged shard vanished: its documents are lost
    verify = runner.invoke(app, ["shards", "verify", str(tmp_path)])
    assert verify.exit_code == 1
    assert any("no live shard holds it" in p for p in json.loads(verify.stdout)["problems"])
