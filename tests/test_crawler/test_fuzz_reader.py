"""Mutation fuzzing of the record reader (Hypothesis), seeded from the quirk files and generated archives.

Default: ``HEADRACE_FUZZ_EXAMPLES`` (1200) inputs, about a minute. Nightly: ``HEADRACE_FUZZ_EXAMPLES=100000``.
The number of inputs that ran is printed (``-s``) and attached to the test report (``fuzz_inputs``).

Properties, for every mutated archive: the reader ends without an exception and within 10 s, every
position it hands out lies inside the file and moves forward, and reading again from any of those
positions works too. For a single damaged record in an otherwise good file, every page more than one
record away from the damage is still read.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest
from conftest import shared_data_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcgen import gzip_bomb_member, page, request, warcinfo

from crawler.reader import Position
from crawler.replay_config import ReplayConfig
from crawler.sources import BytesSource
from crawler.warc import Damaged, WarcReader
from streams.records import Page

EXAMPLES = int(os.environ.get("HEADRACE_FUZZ_EXAMPLES", "1200"))
CONFIG = ReplayConfig(max_record_bytes=2 * 1024 * 1024, max_payload_bytes=256 * 1024, record_time_limit_s=5)
RAN = {"inputs": 0}


def _records() -> list[bytes]:
    return [warcinfo(), request(1), page(1), page(2), page(3, body=b"<html>" + b"abc " * 3000 + b"</html>"), page(4)]


RECORDS = _records()
GENERATED: list[tuple[str, list[bytes], str]] = [
    ("plain", RECORDS, "plain"),
    ("members", RECORDS, "members"),
    ("single-member", RECORDS, "single"),
]


def _quirk_seeds() -> list[bytes]:
    d = shared_data_dir()
    if d is None:
        return []
    seeds = []
    for name, limit in (
        ("quirks/warcio_example-trunc.warc", None),
        ("quirks/warcio_bad.arc", None),
        ("quirks/resiliparse_clipped.warc.gz", None),
        ("quirks/clueweb09_ja_quirk.warc.gz", 40_000),
        ("quirks/clueweb09_warc018_sample.warc.gz", 30_000),
        ("aut_issue-493.warc", 60_000),
        ("resiliparse_warcfile.warc.gz", 50_000),
    ):
        path = d / name
        if path.is_file():
            seeds.append(path.read_bytes()[:limit])
    return seeds


QUIRKS = _quirk_seeds()


def assemble(records: list[bytes], mode: str) -> bytes:
    if mode == "plain":
        return b"".join(records)
    if mode == "members":
        return b"".join(gzip.compress(r) for r in records)
    return gzip.compress(b"".join(records))


def set_content_length(record: bytes, how: str) -> bytes:
    head, sep, rest = record.partition(b"Content-Length: ")
    value, nl, tail = rest.partition(b"\r\n")
    n = int(value)
    new = {
        "+1": n + 1,
        "-1": n - 1,
        "+1000": n + 1000,
        "-1000": max(0, n - 1000),
        "negative": -n - 1,
        "huge": 2**63,
        "zero": 0,
    }.get(how)
    text = str(new).encode() if new is not None else b"12x"
    return head + sep + text + nl + tail


RECORD_DAMAGE = st.sampled_from(["+1", "-1", "+1000", "-1000", "negative", "huge", "zero", "garbage"])
BYTE_MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("crlf"), st.floats(0, 1), st.integers(1, 4)),
    st.tuples(st.just("gzip-header"), st.integers(0, 9), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 200)),
)


def mutate(data: bytes, mutation: tuple) -> bytes:
    kind = mutation[0]
    if not data:
        return data
    if kind == "gzip-header":
        starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\x1f\x8b\x08"][:20] or [0]
        i = starts[mutation[1] % len(starts)] + mutation[1] % 10
        return data[:i] + bytes([mutation[2]]) + data[i + 1 :] if i < len(data) else data
    pos = int(mutation[1] * (len(data) - 1))
    if kind == "truncate":
        return data[:pos]
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ mutation[2]]) + data[pos + 1 :]
    if kind == "crlf":
        return data[:pos] + b"\r\n" * mutation[2] + data[pos:]
    if kind == "insert":
        return data[:pos] + mutation[2] + data[pos:]
    return data[:pos] + data[pos + mutation[2] :]


def read_checked(data: bytes, start: Position | None = None) -> tuple[list[Page], list[Damaged], list[Position]]:
    t0 = time.monotonic()
    pages: list[Page] = []
    damage: list[Damaged] = []
    positions: list[Position] = []
    last = start.offset if start else 0
    for item, nxt in WarcReader(BytesSource("fuzz", data), CONFIG, start):
        if isinstance(item, Page):
            pages.append(item)
        elif isinstance(item, Damaged):
            assert item.reason and 0 <= item.offset <= len(data)
            damage.append(item)
        if nxt is not None:
            assert 0 <= nxt.offset <= len(data)
            assert nxt.offset >= last, "positions must move forward"
            last = nxt.offset
            positions.append(nxt)
        assert time.monotonic() - t0 < 10, "no record may take this long"
    return pages, damage, positions


@st.composite
def damaged_archive(draw: st.DrawFn) -> tuple[bytes, int | None, str]:
    """(archive bytes, index of the one damaged record or None, mode)."""
    if QUIRKS and draw(st.booleans()):
        data = draw(st.sampled_from(QUIRKS))
        for m in draw(st.lists(BYTE_MUTATION, min_size=1, max_size=4)):
            data = mutate(data, m)
        return data, None, "quirk"
    _, records, mode = draw(st.sampled_from(GENERATED))
    records = list(records)
    victim: int | None = None
    if draw(st.booleans()):
        victim = draw(st.integers(2, len(records) - 1))
        records[victim] = set_content_length(records[victim], draw(RECORD_DAMAGE))
    if mode == "members" and draw(st.integers(0, 9)) == 0:
        # A gzip bomb member (8 MiB of NULs labelled text/html) between good records.
        http_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
        zeros = 8 * 1024 * 1024
        bomb_head = (
            "WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/9\r\n"
            f"Content-Length: {len(http_head) + zeros}\r\n\r\n"
        ).encode() + http_head
        data = assemble(records[:3], mode) + gzip_bomb_member(bomb_head, zeros) + assemble(records[3:], mode)
        return data, None, mode
    data = assemble(records, mode)
    if victim is None:
        for m in draw(st.lists(BYTE_MUTATION, min_size=1, max_size=3)):
            data = mutate(data, m)
    return data, victim, mode


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(damaged_archive(), st.integers(0, 1000))
def _fuzz_once(case: tuple[bytes, int | None, str], resume_pick: int) -> None:
    data, victim, mode = case
    RAN["inputs"] += 1
    pages, _damage, positions = read_checked(data)
    if positions:
        read_checked(data, positions[resume_pick % len(positions)])
    if victim is not None and mode in ("plain", "members"):
        # Pages of records at least two records away from the damaged one are all read.
        got = {int(p.url.rsplit("/", 1)[1]) for p in pages}
        numbered = {2: 1, 3: 2, 4: 3, 5: 4}  # record index -> page number
        for index, number in numbered.items():
            if abs(index - victim) >= 2 or (index > victim and mode == "members"):
                assert number in got, (mode, victim, sorted(got))


def test_fuzz_record_reader(record_property: pytest.RecordProperty) -> None:
    RAN["inputs"] = 0
    t0 = time.monotonic()
    _fuzz_once()
    elapsed = time.monotonic() - t0
    record_property("fuzz_inputs", RAN["inputs"])
    print(f"\nfuzz: {RAN['inputs']} inputs in {elapsed:.1f}s ({len(QUIRKS)} quirk seeds)")
    assert RAN["inputs"] >= min(EXAMPLES, 100)


def test_mutators_change_the_input() -> None:
    data = assemble(RECORDS, "members")
    assert mutate(data, ("truncate", 0.5)) == data[: int(0.5 * (len(data) - 1))]
    assert mutate(data, ("flip", 0.0, 1))[0] == data[0] ^ 1
    assert b"Content-Length: 12x" in set_content_length(RECORDS[2], "garbage")
    assert Path(__file__).is_file()
