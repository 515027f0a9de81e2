"""Each rule of the Gopher, C4, FineWeb and hygiene filters: reason names, values, thresholds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consumers.quality.c4 import C4Quality
from consumers.quality.config import (
    C4Config,
    FineWebConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    HygieneConfig,
    QualityConfig,
)
from consumers.quality.fineweb import FineWebQuality
from consumers.quality.gopher import GopherQuality, GopherRepetition
from consumers.quality.hygiene import Hygiene
from consumers.quality.stages import quality_stages
from consumers.quality.words import WordSplitter
from consumers.stage import Drop
from streams.records import Document

pytest.importorskip("spacy")
WORDS = WordSplitter()
PROSE = (
    "The committee met on Tuesday to discuss the new budget and the plans for the coming year. "
    "Members agreed that the library should have longer opening hours, and that the park needs new "
    "benches. A vote on the proposal will be held next month, after the public has had time to comment."
)
PROSE2 = (
    "Rain is expected over the weekend, so the organisers moved the market into the old town hall. "
    "Stall holders can set up from seven in the morning. Parking will be free in the north car park, "
    "which is a short walk away. Visitors with questions should ask at the information desk."
)


def doc(text: str) -> Document:
    return Document(doc_id="d", page_id="p", url="http://example.com/", text=text)


def test_gopher_repetition_keeps_prose_and_reports_values() -> None:
    v = GopherRepetition(GopherRepetitionConfig(), WORDS).check(PROSE)
    assert v.keep and v.values["top_2_gram"] < 0.2 and "duplicated_10_n_grams" in v.values


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("same paragraph\n\n" * 10, "dup_para_frac"),
        (
            "\n\n".join(["first short one", "second short one", "third short one", "y x" * 300, "y x" * 300]),
            "dup_para_char_frac",
        ),
        ("\n".join(["one", "two", "two", "two", "three"]), "dup_line_frac"),
        ("buy now " * 50, "top_2_gram"),
    ],
)
def test_gopher_repetition_reasons(text: str, reason: str) -> None:
    v = GopherRepetition(GopherRepetitionConfig(), WORDS).check(text)
    assert v.reason == reason
    assert v.values[reason] > v.values["threshold"]


def test_gopher_repetition_thresholds_switch_off_with_zero() -> None:
    cfg = GopherRepetitionConfig(dup_para_frac=0, dup_para_char_frac=0, dup_line_frac=0, dup_line_char_frac=0)
    v = GopherRepetition(cfg, WORDS).check("same line\n" * 10)
    assert v.reason.startswith(("top_", "duplicated_"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("too short to count", "gopher_short_doc"),
        ("a b c d e f g h i j " * 10, "gopher_below_avg_threshold"),
        ("incomprehensibilities " * 60, "gopher_above_avg_threshold"),
        (PROSE + "# " * 40, "gopher_too_many_hashes"),
        (PROSE + "... " * 40, "gopher_too_many_ellipsis"),
        ("\n".join(f"- item number {i} of the list, the and with" for i in range(40)), "gopher_too_many_bullets"),
        (
            "\n".join(
                f"the line number {i} of this text goes on and on and then it trails off ..." for i in range(40)
            ),
            "gopher_too_many_end_ellipsis",
        ),
        (PROSE + " 123 456" * 60, "gopher_below_alpha_threshold"),
        ("lorem ipsum dolor sit amet consectetur adipiscing elit " * 10, "gopher_enough_stop_words"),
    ],
)
def test_gopher_quality_reasons(text: str, reason: str) -> None:
    assert GopherQuality(GopherQualityConfig(), WORDS).check(text).reason == reason


def test_gopher_quality_keeps_prose_and_uses_configured_thresholds() -> None:
    assert GopherQuality(GopherQualityConfig(), WORDS).check(PROSE).keep
    strict = GopherQuality(GopherQualityConfig(min_doc_words=500), WORDS).check(PROSE)
    assert strict.reason == "gopher_short_doc" and strict.values["threshold"] == 500


def test_c4_removes_lines_and_counts_sentences() -> None:
    text = PROSE + "\nShort line\nThis line mentions javascript and goes away.\n" + PROSE.replace("year.", "year[1].")
    v = C4Quality(C4Config(), WORDS).check(text)
    assert v.keep
    assert v.text is not None and "javascript" not in v.text and "Short line" not in v.text and "[1]" not in v.text
    assert v.values["lines_removed"] == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("One sentence only here.", "too_few_sentences"),
        (PROSE + "\nLorem ipsum dolor sit amet, it says here.", "lorem_ipsum"),
        (PROSE + "\nThe code was { return x; } in the end.", "curly_bracket"),
    ],
)
def test_c4_document_rules(text: str, reason: str) -> None:
    assert C4Quality(C4Config(), WORDS).check(text).reason == reason


def test_c4_terminal_punctuation_rule_is_off_in_fineweb_variant() -> None:
    text = "\n".join([PROSE, PROSE2, "A line without a full stop at its end"])
    assert "without" in (C4Quality(C4Config(), WORDS).check(text).text or "")
    strict = C4Quality(replace(C4Config(), filter_no_terminal_punct=True), WORDS).check(text)
    assert "without" not in (strict.text or "")


def test_c4_sentence_mode() -> None:
    v = C4Quality(replace(C4Config(), split_paragraph=False), WORDS).check(PROSE + "\n" + PROSE2)
    assert v.keep and v.text and "\n" not in v.text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no punctuation here at all\nnor here either friend\n" * 5, "line_punct_ratio"),
        ("Short.\nTiny.\nA somewhat longer line that ends well.\n" * 3 + "Ok.", "short_line_ratio"),
        ("A reasonably long first line that ends here.\n" * 3, "char_dup_ratio"),
        ("\n".join(f"N{i}." for i in range(20)) + "\nA long closing line with quite a few words in it.", "list_ratio"),
    ],
)
def test_fineweb_reasons(text: str, reason: str) -> None:
    cfg = FineWebConfig(short_line_thr=0.67) if reason != "list_ratio" else FineWebConfig(short_line_thr=1.0)
    assert FineWebQuality(cfg, WORDS).check(text).reason == reason


def test_fineweb_keeps_prose() -> None:
    assert FineWebQuality(FineWebConfig(), WORDS).check(PROSE + "\n" + PROSE2).keep


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (PROSE + "\x00\x01\x02\x03\x04\x05" * 10, "control_chars"),
        (PROSE + '<div class="x"><span>' * 20, "markup"),
        (
            PROSE + " " + "QUJDRA0ZmZ3hZWjEyMzQ1Njc4OTBhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ekFCQ0RFRkdISUpLTE1OT1BR" * 4,
            "blobs",
        ),
        (
            "\n".join(["Home", "About us", "Contact", "Privacy Policy", "Share on Facebook", "Back to top", PROSE]),
            "boilerplate",
        ),
    ],
)
def test_hygiene_reasons(text: str, reason: str) -> None:
    assert Hygiene(HygieneConfig()).check(text).reason == reason


def test_hygiene_keeps_prose_with_urls_and_hashes_in_moderation() -> None:
    text = PROSE + " See https://example.com/wiki/Some_Long_Article_Name_With_Underscores_And_Words for more."
    assert Hygiene(HygieneConfig()).check(text).keep


def test_stage_group_order_annotations_and_modified_text() -> None:
    stages = quality_stages(QualityConfig())
    assert [s.name for s in stages] == ["quality", "gopher_repetition", "gopher_quality", "c4", "fineweb", "hygiene"]
    d = doc(PROSE + "\nThis line mentions javascript.\n" + PROSE2)
    for stage in stages:
        (d,) = stage.process_batch([d])
        assert not isinstance(d, Drop), d
    assert "javascript" not in d.text
    assert d.content_hash != doc(PROSE).content_hash
    assert "gopher_quality.words" in d.annotations and "fineweb.line_punct_ratio" in d.annotations


def test_length_guard() -> None:
    (result,) = quality_stages(QualityConfig(max_doc_chars=100))[0].process_batch([doc("x" * 101)])
    assert isinstance(result, Drop) and result.reason == "doc_too_long" and result.values["chars"] == 101
