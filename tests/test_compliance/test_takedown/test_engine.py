"""The takedown workflow on a real (small) corpus: plan, rewrite, verify, audit, idempotence, crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compliance.audit import verify_chain
from compliance.blocklist_store import LocalRuleStore
from compliance.takedown.engine import Takedown
from compliance.takedown.request import make_request
from compliance.takedown.verify import verify_corpus
from consumers.dedup.minhash import MinHasher
from consumers.shards.reader import iter_documents, list_shards, verify_shards

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def corpus_template(tmp_path_factory: pytest.TempPathFactory, sample_warc: Path) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "run"
    # many small shards; quality filters off so the code-heavy sample keeps its documents
    env = {**os.environ, "HEADRACE_SHARDS__MAX_DOCUMENTS": "3", "HEADRACE_QUALITY__ENABLED": "false"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "headrace",
            "run",
            str(sample_warc),
            "--out",
            str(out),
            "--extractor",
            "resiliparse",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def corpus(corpus_template: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(corpus_template, out)
    return out


def engine(out: Path) -> Takedown:
    store = LocalRuleStore(out / "compliance" / "blocklist.jsonl")
    return Takedown(out / "shards", out / "compliance", rule_sinks=[store.append], signature=MinHasher().signature)


def docs(out: Path) -> dict[str, str]:
    return {e.doc_id: e.url for _, e, _ in iter_documents(out / "shards")}


def test_takedown_removes_blocks_audits_and_verifies(corpus: Path) -> None:
    before = docs(corpus)
    shard_prefixes = {s.manifest.shard_id: s.manifest.data_prefix for s in list_shards(corpus / "shards")}
    url = "https://docs.python.org/3.11/tutorial/classes.html"
    req = make_request(
        [("url", url), ("url_prefix", "https://docs.python.org/3.11/howto/")], reason="test", requester="tests"
    )
    _plan, outcome = engine(corpus).run(req)
    assert outcome.status == "completed"
    after = docs(corpus)
    removed = set(before) - set(after)
    assert removed and all(
        before[d] == url or before[d].startswith("https://docs.python.org/3.11/howto/") for d in removed
    )
    assert not any(u == url or u.startswith("https://docs.python.org/3.11/howto/") for u in after.values())
    # Only the shards holding matches were rewritten; the rest are byte-identical.
    rewritten = {r["shard"] for r in outcome.shards_rewritten}
    for s in list_shards(corpus / "shards"):
        changed = s.manifest.data_prefix != shard_prefixes[s.manifest.shard_id]
        assert changed == (s.manifest.shard_id in rewritten)
        if changed:
            assert s.manifest.version == 2 and s.manifest.takedown == (req.request_id,)
    assert verify_shards(corpus / "shards").ok
    assert outcome.verify is not None and outcome.verify.ok and outcome.verify.removed_documents == len(removed)
    rules = LocalRuleStore(corpus / "compliance" / "blocklist.jsonl").ruleset()
    assert rules.match_url(url) is not None
    chain = verify_chain(corpus / "compliance" / "audit.jsonl")
    assert chain.ok and chain.lines == 2  # started + completed
    done = [json.loads(x) for x in (corpus / "compliance" / "audit.jsonl").read_text().splitlines()][-1]
    assert done["event"] == "takedown-completed" and sorted(done["matched_doc_ids"]) == sorted(removed)
    assert done["verification"]["ok"] is True and done["shard_versions"]


def test_same_request_twice_changes_nothing(corpus: Path) -> None:
    req = make_request([("domain", "python.org")], reason="test", requester="tests")
    _, first = engine(corpus).run(req)
    assert first.status == "completed" and first.documents > 20
    manifests = sorted(p.read_bytes() for p in (corpus / "shards").glob("*.manifest.json"))
    _, second = engine(corpus).run(req)
    assert second.status == "already-completed"
    assert second.audit_seq == first.audit_seq  # the same audit record
    assert sorted(p.read_bytes() for p in (corpus / "shards").glob("*.manifest.json")) == manifests


def test_verify_finds_removed_bytes_under_another_url(corpus: Path) -> None:
    victim_id, victim_url = next(iter(docs(corpus).items()))
    shard_files = {s.manifest.shard_id: s for s in list_shards(corpus / "shards")}
    victim_tokens = next(np.array(t) for s, e, t in iter_documents(corpus / "shards") if e.doc_id == victim_id)
    req = make_request([("doc_id", victim_id)], reason="test", requester="tests")
    _, outcome = engine(corpus).run(req)
    assert outcome.status == "completed"
    assert verify_corpus(corpus / "shards", corpus / "compliance" / "takedowns").ok
    # Smuggle the removed document's tokens back in, inside another document of another shard.
    from consumers.shards.writer import OpenShard
    from streams.records import Document

    any_shard = next(iter(shard_files.values()))
    w = OpenShard(corpus / "shards", "smuggled@test", 0, 0, _tok_info(any_shard))
    w.add(
        Document(doc_id="smuggled", page_id="p", url="https://elsewhere.example/copy", text=""),
        np.concatenate([[11, 12, 13], victim_tokens]),
        0,
    )
    w.seal()
    result = verify_corpus(corpus / "shards", corpus / "compliance" / "takedowns")
    assert not result.ok
    assert {h["kind"] for h in result.hits} == {"bytes"}
    assert result.hits[0]["doc_id"] == "smuggled" and result.hits[0]["removed_doc_id"] == victim_id
    assert victim_url  # the url is not what found it: the bytes are


def _tok_info(shard: object) -> object:
    from consumers.shards.tokenizer import load_tokenizer

    return load_tokenizer("gpt2").info


def test_near_duplicates_of_a_document(corpus: Path) -> None:
    # Plant a near copy (a few words changed) of one document, then take down its near duplicates.
    from consumers.shards.tokenizer import load_tokenizer
    from consumers.shards.writer import OpenShard
    from streams.records import Document

    tok = load_tokenizer("gpt2")
    eng = engine(corpus)
    shard, entry, _ = next((s, e, t) for s, e, t in iter_documents(corpus / "shards") if e.length > 800)
    text = eng.decode(shard, entry)
    words = text.split()
    near = " ".join(w if i % 40 else "CHANGED" for i, w in enumerate(words))
    w = OpenShard(corpus / "shards", "planted@test", 0, 0, tok.info)
    w.add(
        Document(doc_id="planted-near-copy", page_id="p2", url="https://mirror.example/copy", text=near),
        [*tok.encode(near), tok.eos_id],
        0,
    )
    w.seal()
    req = make_request([("near_doc", entry.doc_id)], reason="test", requester="tests", near_threshold=0.7)
    _, outcome = eng.run(req)
    assert outcome.status == "completed"
    left = docs(corpus)
    assert entry.doc_id not in left and "planted-near-copy" not in left
    assert outcome.documents >= 2


def test_kill_during_rewrite_then_rerun(corpus: Path) -> None:
    """SIGKILL the takedown at a random moment of its rewrite phase, rerun, compare with a clean run."""
    reference = corpus.parent / "reference"
    shutil.copytree(corpus, reference)
    args = ["takedown", "request", "--domain", "python.org", "--reason", "test", "--requester", "tests"]
    ok = subprocess.run(
        [sys.executable, "-m", "headrace", *args, "--out", str(reference)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    env = {**os.environ, "HEADRACE_FAULT_POINT": "takedown.after-rewrite:3"}
    crashed = subprocess.run(
        [sys.executable, "-m", "headrace", *args, "--out", str(corpus)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert crashed.returncode == -9, crashed.stderr  # killed mid-rewrite
    assert verify_shards(corpus / "shards").ok  # readers still see a consistent corpus
    rerun = subprocess.run(
        [sys.executable, "-m", "headrace", *args, "--out", str(corpus)], capture_output=True, text=True, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert docs(corpus) == docs(reference) == {}
    assert verify_shards(corpus / "shards").ok
    assert verify_chain(corpus / "compliance" / "audit.jsonl").ok
    leftovers = [
        p.name
        for p in (corpus / "shards").iterdir()
        if p.name.endswith((".tmp", ".bin", ".idx"))
        and not any(p.name in (s.manifest.bin.name, s.manifest.idx.name) for s in list_shards(corpus / "shards"))
    ]
    assert leftovers == []
