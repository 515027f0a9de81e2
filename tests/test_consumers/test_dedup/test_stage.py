"""The dedup stage in its group: drops carry the kept doc_id, and the index checkpoint holds the offsets
the group commits."""

from __future__ import annotations

import random
from pathlib import Path

from test_consumers.test_dedup.conftest import random_text
from test_consumers.test_dedup.streaming import make_doc, stream

from compliance.blocklist import RuleSet
from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.stage import DedupConfig, DedupStage
from consumers.stage import Drop
from streams.records import BlockRule


def test_drops_name_the_kept_document_and_the_evidence(tmp_path: Path) -> None:
    rng = random.Random(1)
    text = random_text(rng, 300)
    words = text.split()
    words[100] = "changed"
    docs = [
        make_doc("https://a.example/", text),
        make_doc("https://b.example/", text.upper()),
        make_doc("https://c.example/", " ".join(words)),
    ]
    stage = DedupStage(EmbeddedIndex(tmp_path))
    out = stage.process_batch(docs)
    stage.close()
    assert out[0] == docs[0]
    exact, near = out[1], out[2]
    assert isinstance(exact, Drop) and isinstance(near, Drop)
    assert (exact.reason, exact.duplicate_of, exact.values["jaccard_estimate"]) == (
        "exact-duplicate",
        docs[0].doc_id,
        1.0,
    )
    assert (near.reason, near.duplicate_of, near.stage) == ("near-duplicate", docs[0].doc_id, "dedup")
    assert 0.72 <= near.values["jaccard_estimate"] < 1.0 and 1 <= near.values["bands_matched"] < 14


def test_near_off_keeps_near_copies(tmp_path: Path) -> None:
    rng = random.Random(2)
    text = random_text(rng, 300)
    stage = DedupStage(EmbeddedIndex(tmp_path), DedupConfig(near=False))
    out = stage.process_batch([make_doc("https://a/", text), make_doc("https://b/", text + " more words here")])
    stage.close()
    assert not any(isinstance(r, Drop) for r in out)


def test_index_checkpoint_holds_the_committed_offsets(tmp_path: Path) -> None:
    rng = random.Random(3)
    docs = [make_doc(f"https://x.example/{i}", random_text(rng, 30)) for i in range(150)]
    res = stream(lambda: EmbeddedIndex(tmp_path), [docs], batch=40, partitions=1)
    assert len(res.kept) == 150
    idx = EmbeddedIndex(tmp_path)
    assert idx.offsets() == {"docs.clean[0]": 150}
    idx.close()


def _near_rule(rule_id: str, signature: object, threshold: float = 0.8) -> BlockRule:
    value = f"{threshold}:" + ",".join(f"{int(x):x}" for x in signature)  # type: ignore[attr-defined]
    return BlockRule(rule_id=rule_id, kind="near", value=value, request_id="tdr-1")


def test_near_duplicates_of_taken_down_content_are_blocked_and_never_indexed(tmp_path: Path) -> None:
    rng = random.Random(3)
    text = random_text(rng, 400)
    words = text.split()
    words[10] = "altered"  # Jaccard ~0.97 with the original
    other = random_text(rng, 400)
    rules = RuleSet()
    stage = DedupStage(EmbeddedIndex(tmp_path), blocklist=rules)
    rules.apply(_near_rule("blk-near", stage.hasher.signature(text)))
    near_copy = make_doc("https://mirror.example/x", " ".join(words))
    unrelated = make_doc("https://b.example/", other)
    out = stage.process_batch([near_copy, unrelated])
    assert isinstance(out[0], Drop)
    assert (out[0].reason, out[0].stage, out[0].detail) == ("blocked", "blocklist", "near:blk-near")
    assert out[1] == unrelated
    assert not stage.index.contains(near_copy.doc_id)  # a blocked document leaves no trace in the index
    stage.close()


def test_doc_id_rules_make_the_index_forget_taken_down_documents(tmp_path: Path) -> None:
    rng = random.Random(4)
    text = random_text(rng, 400)
    words = text.split()
    words[200] = "edited"
    original = make_doc("https://a.example/", text)
    legit_near_copy = make_doc("https://b.example/", " ".join(words))
    rules = RuleSet()
    stage = DedupStage(EmbeddedIndex(tmp_path), blocklist=rules)
    assert stage.process_batch([original]) == [original]
    rules.apply(BlockRule(rule_id="blk-doc", kind="doc_id", value=original.doc_id, request_id="tdr-2"))
    # The taken-down original no longer keeps its near-duplicate out of the corpus.
    assert stage.process_batch([legit_near_copy]) == [legit_near_copy]
    assert not stage.index.contains(original.doc_id)
    assert stage.forget_taken_down() == 0  # once per rule change
    stage.close()
