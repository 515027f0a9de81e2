"""Exact dedup on the real WARC corpus: every byte-identical and every whitespace/case variant of an
extracted document is dropped as an exact duplicate of a kept document."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest
from test_consumers.test_dedup.streaming import make_doc

from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.stage import DedupStage
from consumers.extract import ExtractConfig, Extractor
from consumers.stage import Drop
from crawler.sources import expand_inputs
from crawler.warc import iter_warc
from streams.records import Document, Page

pytestmark = pytest.mark.slow


def extracted_docs(folder: Path) -> list[Document]:
    ex = Extractor(ExtractConfig(extractor="resiliparse"))
    pages: list[Page] = []
    for ref in expand_inputs([str(folder)]):
        if ref.error is not None:
            continue
        pages.extend(item for item in iter_warc(ref.name) if isinstance(item, Page))
    return [d for d in ex.extract_batch(pages) if isinstance(d, Document) and d.text.strip()]


def test_exact_dedup_catches_every_copy_and_variant(shared_data: Path, tmp_path: Path) -> None:
    docs = extracted_docs(shared_data)
    assert len(docs) > 200
    rng = random.Random(5)
    variants = []
    for i, d in enumerate(docs[:: max(1, len(docs) // 100)]):
        words = d.text.split()
        if not words:
            continue
        v = (" \n".join(words) if i % 3 == 0 else "  " + "\t".join(words).upper()) if i % 2 else d.text.swapcase()
        variants.append(make_doc(f"https://variant.example/{i}", v))
        variants.append(make_doc(f"https://copy.example/{i}", d.text))  # byte-identical under another URL
    corpus = docs + variants
    rng.shuffle(corpus)

    # expected groups, computed independently of the code under test
    groups: dict[str, set[str]] = defaultdict(set)
    for d in corpus:
        groups[" ".join(d.text.lower().split())].add(d.doc_id)
    stage = DedupStage(EmbeddedIndex(tmp_path))
    out = stage.process_batch(corpus)
    stage.close()
    kept = {d.doc_id for d, r in zip(corpus, out, strict=True) if not isinstance(r, Drop)}
    dropped = {d.doc_id: r for d, r in zip(corpus, out, strict=True) if isinstance(r, Drop)}
    copies = 0
    for ids in groups.values():
        inside = ids & kept
        assert len(inside) <= 1, f"{len(inside)} of {len(ids)} whitespace/case copies kept"
        if inside:
            (keeper,) = inside
            for did in ids - kept:  # every other copy: an exact duplicate of the one kept
                assert (dropped[did].reason, dropped[did].duplicate_of) == ("exact-duplicate", keeper)
                copies += 1
        else:  # the first copy was a near duplicate of other kept documents, and so are all its copies
            assert all(dropped[did].reason == "near-duplicate" and dropped[did].duplicate_of in kept for did in ids)
    assert copies >= len(variants)  # the planted variants and copies were all caught
