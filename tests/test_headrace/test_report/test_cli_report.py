"""``headrace report``: gates over corpora with injected duplicates and wrong-language pages.

The fast tests write shards directly with the real shard writer (so the exact corpus is known); the
slow ones build corpora with ``headrace run`` and a stage switched off, the way a bad release happens.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consumers.ledger import JsonlLedger, rejection_for
from consumers.shards.tokenizer import load_tokenizer
from consumers.shards.writer import OpenShard
from consumers.stage import Drop
from headrace.cli import app
from headrace.cli_report import EXIT_GATE
from streams.ids import content_hash
from streams.records import Document, Lineage

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
VOCABULARY = (
    "river stone light garden winter market letter window school bridge forest music paper family "
    "morning station harbor engine island village doctor kitchen summer garden valley teacher story "
    "mountain coffee planet friend machine library museum season ocean desert animal camera picture "
    "history language number country science theory market dinner office street evening journey "
    "the of and to in is was for on that with as by at from it this be are have"
)
WORDS = VOCABULARY.split()


def prose(rng: random.Random, sentences: int = 12) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out[:6]) + "\n" + " ".join(out[6:])


def write_corpus(root: Path, texts: list[tuple[str, str]], drops: int = 0) -> Path:
    """Shards with one document per (text, language), plus ``drops`` ledger entries."""
    tok = load_tokenizer("gpt2")
    shards = root / "shards"
    shards.mkdir(parents=True)
    writer = OpenShard(shards, "docs.unique@test", 0, 0, tok.info, pipeline="headrace-9.9+cfg.0123456789ab")
    ledger = JsonlLedger(root / "ledger" / "rejected.jsonl")
    for i, (text, lang) in enumerate(texts):
        doc = Document(
            doc_id=f"doc{i}",
            page_id=f"page{i}",
            url=f"https://site{i % 3}.example/{i}",
            text=text,
            content_hash=content_hash(text),
            language=lang,
            language_score=0.9 if lang else 0.0,
            annotations={"fineweb.line_punct_ratio": 1.0, "gopher_quality.avg_word_length": 5.0 + i / 10},
            lineage=Lineage(source="warc", warc_path="generated.warc.gz"),
        )
        writer.add(doc, [*tok.encode(text), tok.eos_id], i)
    writer.seal()
    for i in range(drops):
        doc = Document(
            doc_id=f"drop{i}",
            page_id=f"dpage{i}",
            url=f"https://spam.example/{i}",
            text=f"Write to jane.doe{i}@mail.example.org for cheap offers. " * 3,
            lineage=Lineage(source="warc", warc_path="generated.warc.gz"),
        )
        drop = Drop("gopher_short_doc", {"gopher_short_doc": 12.0, "threshold": 50.0}, stage="gopher_quality")
        ledger.write(rejection_for(doc, drop, "2026-01-01T00:00:00Z"))
    ledger.close()
    return root


def distinct(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [prose(rng) for _ in range(n)]


def report(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["report", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def clean_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("clean"), [(t, "en") for t in distinct(12)], drops=4)


def test_a_clean_corpus_passes_the_gate(clean_corpus: Path, tmp_path: Path) -> None:
    code, out = report(
        str(clean_corpus), "--gate", "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")
    )
    assert code == 0, out
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["passed"] and summary["documents_kept"] == 12 and summary["scanned_documents"] == 12
    assert summary["duplicates"]["corpus_duplicate_rate"] == 0.0
    assert summary["dropped_by_reason"] == {"gopher_quality/gopher_short_doc": 4}
    assert summary["lineage"]["pipeline version"] == "9.9"
    assert summary["lineage"]["config hash"] == "0123456789ab"
    assert summary["lineage"]["tokenizers"]
    html = (tmp_path / "r.html").read_text()
    # dropped-document samples come from the ledger's excerpts, with PII scrubbed before display
    assert "cheap offers" in html and "jane.doe0@mail.example.org" not in html
    # quality thresholds of the configured filters are drawn on the signal histograms
    assert "quality-gopher_quality.avg_word_length" in html and "min 3" in html and "max 10" in html


def test_injected_duplicates_fail_naming_the_metric(tmp_path: Path) -> None:
    texts = distinct(10)
    near = texts[3].replace(texts[3].split()[20], "zebra", 1)  # one word changed: a near duplicate
    corpus = write_corpus(tmp_path / "c", [(t, "en") for t in [*texts, texts[0], near]])
    code, out = report(str(corpus), "--gate", "--json", str(tmp_path / "r.json"))
    assert code == EXIT_GATE, out
    assert "corpus_duplicate_rate" in out and "FAILED" in out
    assert "release gate failed: corpus_duplicate_rate" in out
    dups = json.loads((tmp_path / "r.json").read_text())["duplicates"]
    assert dups["corpus_exact_duplicates"] == 1 and dups["corpus_near_duplicates"] == 1
    # without --gate the report is still written and the exit code is 0
    assert report(str(corpus))[0] == 0


def test_wrong_language_documents_fail_naming_the_metric(tmp_path: Path) -> None:
    texts = [(t, "en") for t in distinct(10)] + [(t, "de") for t in distinct(2, seed=7)]
    code, out = report(str(write_corpus(tmp_path / "c", texts)), "--gate")
    assert code == EXIT_GATE
    assert "non_target_language_share = 0.1667" in out
    assert "release gate failed: non_target_language_share" in out


def test_gate_thresholds_come_from_the_config(tmp_path: Path) -> None:
    texts = [(t, "en") for t in distinct(10)] + [(t, "de") for t in distinct(2, seed=7)]
    corpus = write_corpus(tmp_path / "c", texts)
    cfg = tmp_path / "headrace.toml"
    cfg.write_text('[report]\ntarget_languages = ["en", "de"]\n')
    assert report(str(corpus), "--gate", "--config", str(cfg))[0] == 0


def test_without_the_scan_text_gates_fail_as_not_measured(clean_corpus: Path) -> None:
    code, out = report(str(clean_corpus), "--gate", "--no-scan")
    assert code == EXIT_GATE
    assert "cleanliness not measured" in out


def test_missing_corpus_is_a_usage_error(tmp_path: Path) -> None:
    code, out = report(str(tmp_path / "nope"))
    assert code not in (0, EXIT_GATE)
    assert "is not a folder" in " ".join(out.split())


def test_an_empty_folder_is_a_fatal_error(tmp_path: Path) -> None:
    code, out = report(str(tmp_path))
    assert code == 1
    assert "no sealed shards" in " ".join(out.split())


# ----------------------------------------------------------------------------- built by the pipeline
def run_pipeline(inputs: list[str], out: Path, env: dict[str, str]) -> Path:
    result = runner.invoke(
        app, ["run", *inputs, "--out", str(out), "--extractor", "resiliparse", "--no-progress"], env=env
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_pipeline_with_dedup_switched_off_fails_the_duplicate_gate(tmp_path: Path) -> None:
    sample = str(REPO / "samples" / "python-docs.warc.gz")  # two captures of one page inside
    clean = run_pipeline([sample], tmp_path / "clean", {})
    code, out = report(str(clean), "--gate")
    assert code == 0, out
    dirty = run_pipeline([sample], tmp_path / "dirty", {"HEADRACE_DEDUP__ENABLED": "false"})
    code, out = report(str(dirty), "--gate")
    assert code == EXIT_GATE, out
    assert "release gate failed: corpus_duplicate_rate" in out


@pytest.mark.slow
def test_pipeline_with_language_label_only_fails_the_language_gate(shared_data: Path, tmp_path: Path) -> None:
    inputs = [shared_data / "resiliparse_clueweb09-ja.normalized.warc.gz", shared_data / "dolma_sample-0000.warc.gz"]
    env = {"HEADRACE_LANGUAGE__LABEL_ONLY": "true", "HEADRACE_QUALITY__ENABLED": "false"}
    out_dir = run_pipeline([str(p) for p in inputs], tmp_path / "run", env)
    code, out = report(str(out_dir), "--gate", "--json", str(tmp_path / "r.json"))
    assert code == EXIT_GATE, out
    assert "release gate failed: non_target_language_share" in out
    langs = json.loads((tmp_path / "r.json").read_text())["languages_kept"]
    assert langs.get("ja", 0) > 10 and langs.get("en", 0) > 5


@pytest.mark.slow
def test_unlabelled_documents_are_identified_by_the_report(shared_data: Path, tmp_path: Path) -> None:
    ja = shared_data / "resiliparse_clueweb09-ja.normalized.warc.gz"
    local = tmp_path / "ja.warc.gz"
    shutil.copy(ja, local)
    env = {"HEADRACE_LANGUAGE__ENABLED": "false", "HEADRACE_QUALITY__ENABLED": "false"}
    out_dir = run_pipeline([str(local)], tmp_path / "run", env)
    code, out = report(str(out_dir), "--gate", "--json", str(tmp_path / "r.json"))
    assert code == EXIT_GATE, out
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["languages_identified_by_report"] == summary["documents_kept"] > 0
    assert summary["languages_kept"].get("ja", 0) >= summary["documents_kept"] // 2
