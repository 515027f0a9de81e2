"""Decontamination: index from JSONL and text files, linear lookups, drop or flag."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from consumers.decontam import DecontamConfig, DecontamError, Decontaminator, NgramIndex, ngram_hashes
from consumers.stage import Drop
from streams.records import Document

QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


def doc(text: str) -> Document:
    return Document(doc_id="d", page_id="p", url="http://example.com/", text=text)


@pytest.fixture
def bench_files(tmp_path: Path) -> list[str]:
    jsonl = tmp_path / "gsm8k.jsonl"
    jsonl.write_text(json.dumps({"question": QUESTION, "answer": "72"}) + "\n\n" + json.dumps({"question": "x"}) + "\n")
    with gzip.open(tmp_path / "other.txt.gz", "wt") as fh:
        fh.write("The quick brown fox jumps over the lazy dog while the cat watches from the old wooden fence.\n")
    return [str(jsonl), str(tmp_path / "*.gz")]


def test_drops_documents_sharing_a_13_gram(bench_files: list[str]) -> None:
    stage = Decontaminator(DecontamConfig(paths=tuple(bench_files), text_fields=("question",)))
    assert stage.index.examples == 3 and len(stage.index) > 0
    page = f"Homework help! {QUESTION.upper()} How many clips did she sell?"  # case and punctuation folded
    (out,) = stage.process_batch([doc(page)])
    assert isinstance(out, Drop) and out.reason == "benchmark-overlap"
    assert out.values["ngram_hits"] >= 1 and out.detail == "gsm8k.jsonl:1"
    (kept,) = stage.process_batch([doc("Natalia sold clips to friends. A different story entirely, about May.")])
    assert isinstance(kept, Document)


def test_flag_mode_keeps_and_annotates(bench_files: list[str]) -> None:
    stage = Decontaminator(DecontamConfig(paths=tuple(bench_files), action="flag"))
    text = "It says: the quick brown fox jumps over the lazy dog while the cat watches from the old wooden fence."
    (out,) = stage.process_batch([doc(text)])
    assert isinstance(out, Document) and out.annotations["decontam.ngram_hits"] >= 1


def test_configurable_n_and_min_hits(bench_files: list[str]) -> None:
    index = NgramIndex.build(bench_files, ("question",), ngram=5)
    assert index.matches("she sold half as many clips")[0] == 2
    stage = Decontaminator(DecontamConfig(paths=tuple(bench_files), ngram=5, min_hits=3), index=index)
    assert isinstance(stage.process_batch([doc("she sold half as many clips")])[0], Document)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DecontamError):
        NgramIndex.build([str(tmp_path / "missing-*.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(DecontamError):
        NgramIndex.build([str(bad)])
    with pytest.raises(DecontamError):
        Decontaminator(DecontamConfig(paths=(str(bad),), action="delete"), index=NgramIndex())


def test_hashes_are_order_sensitive_and_short_texts_have_none() -> None:
    assert len(ngram_hashes(["a", "b"], 3)) == 0
    h1, h2 = ngram_hashes(["a", "b", "c"], 3), ngram_hashes(["c", "b", "a"], 3)
    assert h1[0] != h2[0]
