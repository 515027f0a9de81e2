from __future__ import annotations

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
