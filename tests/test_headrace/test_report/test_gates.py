"""Unit tests of the release gates."""

from __future__ import annotations

from collections import Counter

import pytest

from headrace.config import ConfigError, load_config
from headrace.report.collect import ReportData
from headrace.report.gates import GateConfig, evaluate


def clean() -> ReportData:
    data = ReportData("shards", "ledger", kept_docs=200, kept_tokens=1_000_000, scanned_docs=200)
    data.languages_kept = Counter({"en": 200})
    data.dropped_by_stage = Counter({"quality": 50})
    return data


def by_metric(data: ReportData, cfg: GateConfig | None = None) -> dict[str, bool]:
    return {g.metric: g.passed for g in evaluate(data, cfg or GateConfig())}


def test_a_clean_corpus_passes_every_gate() -> None:
    results = evaluate(clean(), GateConfig())
    assert {g.metric for g in results} == {
        "corpus_duplicate_rate",
        "non_target_language_share",
        "residual_pii_per_million_tokens",
        "cleanliness",
        "dead_letter_share",
        "documents",
    }
    assert all(g.passed for g in results), [g.message for g in results]


def test_duplicates_left_fail_the_duplicate_gate_only() -> None:
    data = clean()
    data.corpus_exact_duplicates, data.corpus_near_duplicates = 2, 1  # 3 / 200 = 1.5 %
    gates = by_metric(data)
    assert not gates["corpus_duplicate_rate"]
    assert all(ok for name, ok in gates.items() if name != "corpus_duplicate_rate")
    (failed,) = [g for g in evaluate(data, GateConfig()) if not g.passed]
    assert "corpus_duplicate_rate = 0.015" in failed.message and "FAILED" in failed.message


def test_other_languages_fail_the_language_gate() -> None:
    data = clean()
    data.languages_kept = Counter({"en": 180, "de": 15, "ja": 5})  # 10 % off target
    assert not by_metric(data)["non_target_language_share"]
    assert by_metric(data, GateConfig(target_languages=("en", "de", "ja")))["non_target_language_share"]


def test_residual_pii_is_per_million_tokens() -> None:
    data = clean()
    data.residual_pii = Counter({"EMAIL_ADDRESS": 25})  # 25 per 1 M tokens: at the limit
    assert by_metric(data)["residual_pii_per_million_tokens"]
    data.residual_pii["PHONE_NUMBER"] += 1
    assert not by_metric(data)["residual_pii_per_million_tokens"]


def test_cleanliness_and_dead_letters() -> None:
    data = clean()
    data.hygiene_bad_docs = 5  # 97.5 % clean
    data.dead_letters = Counter({"bad-magic": 10})
    gates = by_metric(data)
    assert not gates["cleanliness"] and not gates["dead_letter_share"]


def test_an_empty_corpus_fails_the_documents_gate() -> None:
    assert not by_metric(ReportData("s", None))["documents"]


def test_unscanned_text_measures_fail_as_not_measured() -> None:
    data = clean()
    data.scanned_docs = 0
    results = {g.metric: g for g in evaluate(data, GateConfig())}
    assert not results["cleanliness"].passed and not results["cleanliness"].measured
    assert "not measured" in results["residual_pii_per_million_tokens"].message
    assert results["corpus_duplicate_rate"].passed


def test_a_negative_threshold_switches_a_gate_off() -> None:
    data = clean()
    data.corpus_exact_duplicates = 100
    assert "corpus_duplicate_rate" not in by_metric(data, GateConfig(max_corpus_duplicate_rate=-1))


def test_gates_are_configured_in_the_report_section() -> None:
    cfg = load_config(
        overrides={"report": {"max_corpus_duplicate_rate": 0.2, "target_languages": ["en", "de"]}},
        environ={"HEADRACE_REPORT__MIN_CLEANLINESS": "0.5"},
    )
    assert cfg.report == GateConfig(max_corpus_duplicate_rate=0.2, target_languages=("en", "de"), min_cleanliness=0.5)
    with pytest.raises(ConfigError, match="max_duplicate_rate"):
        load_config(overrides={"report": {"max_duplicate_rate": 0.2}})


def test_gate_settings_do_not_change_the_pipeline_config_hash() -> None:
    base = load_config(environ={})
    strict = load_config(overrides={"report": {"min_cleanliness": 0.999}}, environ={})
    assert base.digest() == strict.digest()
