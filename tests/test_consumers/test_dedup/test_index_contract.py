"""The DedupIndex contract, run on both backends (embedded folder and a real redis-server)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from test_consumers.test_dedup.conftest import doc_id, random_text

from consumers.dedup.index import DedupIndex, DuplicateOf, Entry, Unique

pytestmark = pytest.mark.redis

Make = Callable[[str, str], Entry]


def near_copy(text: str, rng: random.Random, changed: int = 3) -> str:
    words = text.split()
    for _ in range(changed):
        words[rng.randrange(len(words))] = "zzzchanged"
    return " ".join(words)


def test_exact_and_near_duplicates_point_at_the_kept_document(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(1)
    a = random_text(rng, 400)
    verdicts = index.check_and_add_many(
        [
            entry_for(doc_id(1), a),
            entry_for(doc_id(2), "  " + a.upper().replace(" ", "\n ")),  # case and whitespace variant
            entry_for(doc_id(3), near_copy(a, rng)),
            entry_for(doc_id(4), random_text(rng)),
        ]
    )
    assert verdicts[0] == Unique()
    assert verdicts[1] == DuplicateOf(doc_id(1), "exact", 14)
    assert isinstance(verdicts[2], DuplicateOf) and verdicts[2].doc_id == doc_id(1) and verdicts[2].kind == "near"
    assert 1 <= verdicts[2].bands_matched < 14
    assert verdicts[3] == Unique()
    assert index.contains(doc_id(1)) and index.contains(doc_id(4))
    assert not index.contains(doc_id(2)) and not index.contains(doc_id(3))  # duplicates are not added


def test_a_document_is_never_a_duplicate_of_itself(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(2)
    a, b = random_text(rng), random_text(rng)
    first = index.check_and_add_many([entry_for(doc_id(1), a), entry_for(doc_id(2), a), entry_for(doc_id(3), b)])
    # re-delivery of the whole batch (crash before the offsets were committed): the same answers
    again = index.check_and_add_many([entry_for(doc_id(1), a), entry_for(doc_id(2), a), entry_for(doc_id(3), b)])
    assert first == [Unique(), DuplicateOf(doc_id(1), "exact", 14), Unique()]
    assert again == [Unique(replayed=True), DuplicateOf(doc_id(1), "exact", 14), Unique(replayed=True)]
    assert index.stats().documents == 2


def test_within_one_batch_later_entries_see_earlier_ones(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(3)
    a = random_text(rng)
    out = index.check_and_add_many([entry_for(doc_id(i), a) for i in range(5)])
    assert out[0] == Unique()
    assert all(v == DuplicateOf(doc_id(0), "exact", 14) for v in out[1:])


def test_remove_forgets_every_key_so_a_later_copy_is_admitted(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(4)
    a, b = random_text(rng), random_text(rng)
    assert index.check_and_add_many([entry_for(doc_id(1), a), entry_for(doc_id(2), b)]) == [Unique(), Unique()]
    assert index.remove(doc_id(1)) is True
    assert index.remove(doc_id(1)) is False
    assert index.remove(doc_id(99)) is False
    assert not index.contains(doc_id(1))
    near = entry_for(doc_id(3), near_copy(a, rng, 2))
    assert index.near(near.band_keys) == []  # none of a's band keys are left
    assert index.check_and_add_many([near]) == [Unique()]  # a near copy is admitted now
    again = index.check_and_add(*entry_for(doc_id(4), a))  # the original text is now a near copy of doc 3
    assert isinstance(again, DuplicateOf) and (again.doc_id, again.kind) == (doc_id(3), "near")
    assert index.check_and_add_many([entry_for(doc_id(2), b)]) == [Unique(replayed=True)]  # b untouched
    assert index.stats().documents == 2


def test_exact_copy_admitted_after_remove(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(5)
    a = random_text(rng)
    index.check_and_add_many([entry_for(doc_id(1), a)])
    index.remove(doc_id(1))
    assert index.check_and_add_many([entry_for(doc_id(2), a)]) == [Unique()]
    assert index.check_and_add_many([entry_for(doc_id(3), a)]) == [DuplicateOf(doc_id(2), "exact", 14)]


def test_near_answers_which_kept_documents_a_text_duplicates(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(6)
    texts = [random_text(rng, 300) for _ in range(3)]
    index.check_and_add_many([entry_for(doc_id(i), t) for i, t in enumerate(texts)])
    probe = entry_for(doc_id(50), near_copy(texts[1], rng, 2))
    assert index.near(probe.band_keys) == [doc_id(1)]
    assert index.near(entry_for(doc_id(51), texts[2]).band_keys) == [doc_id(2)]
    assert index.near(entry_for(doc_id(52), random_text(rng)).band_keys) == []
    assert index.near([]) == []
    # A takedown text that mixes two kept documents is a near duplicate of both; most shared bands first.
    mix = entry_for(doc_id(53), texts[0])
    other = entry_for(doc_id(54), texts[2])
    bands = list(mix.band_keys[:10]) + list(other.band_keys[10:])
    assert index.near(bands) == [doc_id(0), doc_id(2)]
    assert index.near_doc(doc_id(1)) == []  # kept documents never share a band (one would have been dropped)
    assert index.near_doc(doc_id(404)) == []


def test_near_doc_finds_documents_admitted_after_a_removal(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(7)
    a = random_text(rng, 300)
    index.check_and_add_many([entry_for(doc_id(1), a)])
    index.remove(doc_id(1))
    index.check_and_add_many([entry_for(doc_id(2), near_copy(a, rng, 1))])
    index.check_and_add_many([entry_for(doc_id(1), a)])  # re-admitted: shares bands with doc 2? it is a dup
    assert not index.contains(doc_id(1))
    assert index.near(entry_for(doc_id(9), a).band_keys) == [doc_id(2)]


def test_documents_without_words_dedup_exactly_only(index: DedupIndex, entry_for: Make) -> None:
    e1 = entry_for(doc_id(1), "")
    assert e1.band_keys == ()
    out = index.check_and_add_many([e1, entry_for(doc_id(2), " \n "), entry_for(doc_id(3), "!!!")])
    assert out == [Unique(), DuplicateOf(doc_id(1), "exact", 0), DuplicateOf(doc_id(1), "exact", 0)]
    assert index.near_doc(doc_id(1)) == []


def test_any_string_is_a_valid_doc_id(open_backend: Callable[[], DedupIndex], entry_for: Make) -> None:
    index = open_backend()
    rng = random.Random(8)
    a = random_text(rng)
    ids = ["page-1", "ÜNICODE/ключ", "x" * 200]
    out = index.check_and_add_many([entry_for(ids[0], a), entry_for(ids[1], a), entry_for(ids[2], random_text(rng))])
    assert out == [Unique(), DuplicateOf("page-1", "exact", 14), Unique()]
    assert index.contains("x" * 200) and index.contains("page-1")
    assert index.remove("x" * 200)


def test_ties_go_to_the_oldest_kept_document(index: DedupIndex, entry_for: Make) -> None:
    rng = random.Random(9)
    t1, t2 = random_text(rng, 300), random_text(rng, 300)
    e1, e2 = entry_for(doc_id(1), t1), entry_for(doc_id(2), t2)
    index.check_and_add_many([e2, e1])  # doc 2 is older
    probe = list(e1.band_keys[:3]) + [0] * 8 + list(e2.band_keys[11:])  # 3 bands each
    v = index.check_and_add(doc_id(3), 12345, probe)
    assert v == DuplicateOf(doc_id(2), "near", 3)


def test_state_survives_reopen(open_backend: Callable[[], DedupIndex], entry_for: Make) -> None:
    rng = random.Random(10)
    texts = [random_text(rng) for _ in range(20)]
    first = open_backend()
    assert first.check_and_add_many([entry_for(doc_id(i), t) for i, t in enumerate(texts)]) == [Unique()] * 20
    first.remove(doc_id(5))
    first.checkpoint()
    if first.backend == "embedded":
        first.close()
    second = open_backend()
    assert second.stats().documents == 19
    out = second.check_and_add_many([entry_for(doc_id(100 + i), t) for i, t in enumerate(texts)])
    assert out[5] == Unique()
    assert all(v == DuplicateOf(doc_id(i), "exact", 14) for i, v in enumerate(out) if i != 5)


def test_random_operations_give_the_same_verdicts_on_both_backends(
    tmp_path: object, redis_url: str, redis_namespace: str, entry_for: Make
) -> None:
    from pathlib import Path

    from consumers.dedup.embedded import EmbeddedIndex
    from consumers.dedup.redis_backend import RedisIndex

    rng = random.Random(11)
    base = [random_text(rng, 120) for _ in range(40)]
    ops: list[tuple[str, object]] = []
    for i in range(400):
        r = rng.random()
        if r < 0.08:
            ops.append(("remove", doc_id(rng.randrange(i + 1))))
        else:
            t = rng.choice(base)
            if r < 0.5:
                t = near_copy(t, rng, rng.randrange(1, 12))
            elif r < 0.6:
                t = random_text(rng, 120)
            did = doc_id(rng.randrange(i + 1)) if rng.random() < 0.05 else doc_id(i)
            ops.append(("add", (did, t)))
    emb = EmbeddedIndex(Path(str(tmp_path)) / "cmp")
    red = RedisIndex(redis_url, namespace=redis_namespace, buckets=32)
    try:
        for kind, arg in ops:
            if kind == "remove":
                assert emb.remove(arg) == red.remove(arg)  # type: ignore[arg-type]
            else:
                did, t = arg  # type: ignore[misc]
                e = entry_for(did, t)
                assert emb.check_and_add(*e) == red.check_and_add(*e), did
        assert emb.stats().documents == red.stats().documents
    finally:
        emb.close()
        red.clear()
        red.close()
