"""``headrace`` commands end to end on the bundled sample (embedded bus, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headrace.cli import EXIT_PARTIAL, EXIT_USAGE, app

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, sample_warc: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    # the sample's code-heavy pages mostly fail the quality filters (tests/test_headrace/test_stages.py
    # runs it with them); these tests are about the run itself
    res = runner.invoke(
        app,
        ["run", str(sample_warc), "--out", str(out), "--summary-json", str(out / "s.json")],
        env={"HEADRACE_QUALITY__ENABLED": "false"},
    )
    assert res.exit_code == 0, res.output
    return out, json.loads((out / "s.json").read_text())


def test_run_writes_shards_and_summary(sample_run: tuple[Path, dict]) -> None:
    out, summary = sample_run
    assert summary["pages_read"] == 33
    assert summary["docs_written"] > 20
    assert summary["tokens"] > 100_000
    assert summary["failed_inputs"] == []
    assert (out / "ledger" / "rejected.jsonl").exists()


def test_dump_decodes_every_document(sample_run: tuple[Path, dict]) -> None:
    out, summary = sample_run
    res = runner.invoke(app, ["shards", "dump", str(out)])
    assert res.exit_code == 0
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == summary["docs_written"]
    by_url = {r["url"]: r for r in rows}
    appetite = by_url["https://docs.python.org/3.11/tutorial/appetite.html"]
    assert "Python" in appetite["text"] and len(appetite["text"]) > 1000
    assert appetite["lineage"]["warc_path"].endswith("python-docs.warc.gz")
    assert appetite["lineage"]["record_id"].startswith("<urn:uuid:")
    assert all(r["doc_id"] and r["text"] for r in rows)


def test_inspect_and_verify(sample_run: tuple[Path, dict]) -> None:
    out, summary = sample_run
    res = runner.invoke(app, ["shards", "inspect", str(out), "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["totals"]["documents"] == summary["docs_written"]
    assert data["totals"]["tokens"] == summary["tokens"]
    assert all(s["dtype"] == "uint16" and s["tokenizer"] == "gpt2" for s in data["shards"])
    res = runner.invoke(app, ["shards", "verify", str(out)])
    assert res.exit_code == 0, res.stdout
    assert json.loads(res.stdout)["ok"] is True


def test_verify_detects_a_flipped_byte(sample_run: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    out, _ = sample_run
    copy = tmp_path / "shards"
    shutil.copytree(out / "shards", copy)
    victim = sorted(copy.glob("*.bin"))[0]
    data = bytearray(victim.read_bytes())
    data[10] ^= 0xFF
    victim.write_bytes(bytes(data))
    res = runner.invoke(app, ["shards", "verify", str(copy)])
    assert res.exit_code == 1
    assert "sha256 mismatch" in res.stdout


def test_bad_inputs_are_named_and_others_still_processed(tmp_path: Path, sample_warc: Path) -> None:
    not_warc = tmp_path / "notes.txt"
    not_warc.write_text("this is not a web archive\n")
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.warc.gz"
    truncated.write_bytes(sample_warc.read_bytes()[:250_000])
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "run",
            str(not_warc),
            str(empty),
            str(truncated),
            str(sample_warc),
            "--out",
            str(out),
            "--extractor",
            "resiliparse",
            "--summary-json",
            str(tmp_path / "s.json"),
        ],
    )
    assert res.exit_code == EXIT_PARTIAL, res.output
    for p in (not_warc, empty, truncated):
        assert str(p) in res.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert set(summary["failed_inputs"]) == {str(not_warc), str(empty), str(truncated)}
    errors = {i["path"]: i["errors"] for i in summary["inputs"]}
    assert "empty file" in errors[str(empty)]
    assert any("not a" in e for e in errors[str(not_warc)])
    by_path = {i["path"]: i for i in summary["inputs"]}
    assert by_path[str(truncated)]["pages"] > 0  # records before the damage were kept
    assert by_path[str(sample_warc)]["pages"] == 33


def test_unknown_config_key_is_a_usage_error(tmp_path: Path, sample_warc: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[shards]\nmax_tokenz = 5\n")
    res = runner.invoke(app, ["run", str(sample_warc), "--out", str(tmp_path / "o"), "--config", str(cfg)])
    assert res.exit_code == EXIT_USAGE
    assert "max_tokenz" in res.output


def test_every_subcommand_has_help() -> None:
    for cmd in (
        ["run"],
        ["replay"],
        ["consume"],
        ["shards", "inspect"],
        ["shards", "dump"],
        ["shards", "verify"],
        ["topics", "create"],
    ):
        res = runner.invoke(app, [*cmd, "--help"])
        assert res.exit_code == 0, cmd
        assert "Usage" in res.output


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OSError(28, "No space left on device", "/data/shards/x.bin.tmp"), "no space left on device"),
        ("no-broker", "no Kafka broker reachable"),
    ],
)
def test_consume_reports_a_full_volume_or_an_unreachable_broker_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, error: object, message: str
) -> None:
    from kafka.errors import KafkaTimeoutError
    from typer.testing import CliRunner

    import headrace.consume
    from headrace.cli import app

    def fail(*_a: object, **_k: object) -> None:
        raise KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:1']") if error == "no-broker" else error  # type: ignore[misc]

    monkeypatch.setattr(headrace.consume, "consume", fail)
    res = CliRunner().invoke(app, ["consume", "shards", "--bootstrap", "127.0.0.1:1", "--out", "/tmp/x"])
    assert res.exit_code == 1
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output
