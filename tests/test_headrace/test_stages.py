"""The processing stages inside the pipeline: order, configuration, the ledger, hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consumers.extract import Extractor
from consumers.extract_pool import ExtractPool
from consumers.stage import Drop, run_chain
from consumers.stats import Stats
from headrace.cli import app
from headrace.config import load_config
from headrace.pipeline import build_extractor, process_stages
from streams.records import Document, Page

PROSE = (
    "The committee met on Tuesday to discuss the new budget and the plans for the coming year. "
    "Members agreed that the library should have longer opening hours, and that the park needs new benches. "
    "A vote on the proposal will be held next month, after the public has had time to comment on it.\n"
    "Rain is expected over the weekend, so the organisers moved the market into the old town hall. "
    "Stall holders can set up from seven in the morning. Parking will be free in the north car park. "
    "Questions about the market can be sent to jane.doe@corp-mail.com or by phone to (415) 555-0132."
)


def doc(text: str) -> Document:
    return Document(doc_id="d", page_id="p", url="http://example.com/", text=text)


@pytest.fixture(scope="module")
def stages():
    return process_stages(load_config(None, environ={}))


def test_default_stage_order(stages) -> None:
    names = [s.name for s in stages]
    assert names == ["language", "quality", "gopher_repetition", "gopher_quality", "c4", "fineweb", "hygiene", "pii"]


def test_decontamination_joins_when_benchmarks_are_configured(tmp_path: Path) -> None:
    bench = tmp_path / "bench.txt"
    bench.write_text("Stall holders can set up from seven in the morning and stay until the evening bell rings.\n")
    cfg = load_config(None, {"decontam": {"paths": [str(bench)]}, "pii": {"enabled": False}}, environ={})
    names = [s.name for s in process_stages(cfg)]
    assert names[-1] == "decontam"


def test_a_good_document_is_kept_scrubbed_and_annotated(stages) -> None:
    stats = Stats()
    (out,) = run_chain(stages, [doc(PROSE)], stats)
    assert isinstance(out, Document), out
    assert out.language == "en" and out.language_score > 0.65
    assert "jane.doe" not in out.text and out.pii_counts == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert "gopher_repetition.top_2_gram" in out.annotations
    assert stats.seconds["gopher_repetition"] > 0 and stats.get("pii/in") == 1


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("", "language"),  # empty text: fastText gives a low score
        ("x" * 10_000_000, "language"),  # 10 MB on a single line: not a language
        ("\ud800\udfff broken surrogates " * 1000, "language"),
        ("Der Ausschuss traf sich am Dienstag, um den neuen Haushalt zu besprechen. " * 20, "language"),
    ],
)
def test_hostile_documents_are_dropped_with_a_reason(stages, text: str, stage: str) -> None:
    (out,) = run_chain(stages, [doc(text)])
    assert isinstance(out, Drop) and out.stage == stage and out.reason


def test_ten_megabytes_of_english_on_one_line_is_handled(stages) -> None:
    text = PROSE.replace("\n", " ") * (10_000_000 // len(PROSE))
    (out,) = run_chain(stages, [doc(text)])
    assert isinstance(out, Drop) and (out.stage, out.reason) == ("quality", "doc_too_long")


def test_extractor_choice() -> None:
    assert isinstance(build_extractor(load_config(None, environ={})), Extractor)
    pool = build_extractor(load_config(None, {"extract": {"workers": 1}}, environ={}))
    assert isinstance(pool, ExtractPool)
    pool.close()


def test_run_with_worker_pool_and_filters(tmp_path: Path, sample_warc: Path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app, ["run", str(sample_warc), "--out", str(out), "--workers", "2", "--summary-json", str(out / "s.json")]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "s.json").read_text())
    assert summary["pages_read"] == 33
    assert summary["docs_written"] >= 1
    assert any(k.startswith("gopher_quality/") for k in summary["drops"])
    rejected = [json.loads(line) for line in (out / "ledger" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == sum(summary["drops"].values())
    quality = [r for r in rejected if r["stage"] == "gopher_quality"]
    assert quality and all("threshold" in r["values"] for r in quality)


def test_bad_pages_through_the_process_group(tmp_path: Path) -> None:
    from consumers.handlers import ProcessHandler
    from streams.bus import Message
    from streams.codec import encode
    from streams.records import Rejection
    from streams.topics import Topics

    cfg = load_config(None, {"extract": {"workers": 1, "timeout_s": 0.5}}, environ={})
    slow = (
        b"<html><body>"
        + b"".join(b"<div><p>p%d " % i + b"word " * 40 + b"</p></div>" for i in range(8000))
        + b"</body></html>"
    )
    pages = [
        Page(
            page_id="a", url="http://x/a", fetched_at="t", content_type="text/html", body=b"<html><body></body></html>"
        ),
        Page(page_id="b", url="http://x/b", fetched_at="t", content_type="text/html", body=slow),
        Page(
            page_id="c",
            url="http://x/c",
            fetched_at="t",
            content_type="text/html; charset=utf-8",
            body=b"\xff\xfe\xfa" * 999,
        ),
    ]
    topics = Topics()
    stats = Stats()
    handler = ProcessHandler(build_extractor(cfg), process_stages(cfg), topics, stats)
    try:
        msgs = [Message(topics.pages_raw, 0, i, None, encode(p)) for i, p in enumerate(pages)]
        out = handler.handle(msgs)
    finally:
        handler.close()
    from streams.codec import decode_as

    rejections = [decode_as(o.value, Rejection) for o in out if o.topic == topics.docs_rejected]
    reasons = {r.id: (r.stage, r.reason) for r in rejections}
    assert reasons["a"] == ("extract", "empty-extraction")
    assert reasons["b"] == ("extract", "extract-timeout")
    assert reasons["c"][0] in ("extract", "language")
    assert len(rejections) == 3
