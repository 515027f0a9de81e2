"""The damage suite: every kind of broken input gives no crash, no hang, the good records on both sides
of the damage, and the bad record reported with its offset and a reason."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from typing import BinaryIO

import pytest
from warcgen import arc_file, gz_members, gzip_bomb_member, page, request, warc_record, warcinfo

from crawler.reader import Position
from crawler.replay_config import ReplayConfig
from crawler.sources import BytesSource
from crawler.warc import Damaged, Skipped, WarcReader
from streams.records import Page

GOOD = [1, 2, 4, 5]  # page numbers around the victim (3)


def read_all(data: bytes, config: ReplayConfig | None = None, start: Position | None = None, name: str = "t.warc"):
    pages: list[Page] = []
    skips: list[Skipped] = []
    damage: list[Damaged] = []
    positions: list[Position | None] = []
    reader = WarcReader(BytesSource(name, data), config, start)
    for item, nxt in reader:
        positions.append(nxt)
        if isinstance(item, Page):
            pages.append(item)
        elif isinstance(item, Skipped):
            skips.append(item)
        else:
            damage.append(item)
    return pages, skips, damage, positions, reader


def numbers(pages: list[Page]) -> list[int]:
    return [int(p.url.rsplit("/", 1)[1]) for p in pages]


def build(victim: bytes, compressed: bool) -> tuple[bytes, int]:
    """warcinfo, pages 1-2 (with requests), the victim, pages 4-5; returns the file and the victim offset."""
    records = [warcinfo(), request(1), page(1), page(2), victim, request(4), page(4), page(5)]
    blobs = [gz_members([r]) for r in records] if compressed else records
    offset = sum(len(b) for b in blobs[:4])
    return b"".join(blobs), offset


MODES = pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])


@MODES
def test_clean_file_reads_every_page_with_lineage(compressed: bool) -> None:
    data, _ = build(page(3), compressed)
    pages, skips, damage, positions, _reader = read_all(data)
    assert numbers(pages) == [1, 2, 3, 4, 5]
    assert damage == []
    assert sorted(s.reason for s in skips) == ["record-type:request"] * 2 + ["record-type:warcinfo"]
    p = pages[0]
    assert p.lineage.crawl == "TEST-CRAWL"
    assert p.lineage.record_id and p.lineage.record_id.startswith("<urn:uuid:")
    assert p.lineage.warc_date == "2024-05-01T12:00:00Z"
    assert p.lineage.length and p.lineage.length > 0
    # Lineage offsets point at the record: reading from there gives the same page first.
    again, *_ = read_all(data, start=Position(p.lineage.offset))
    assert again[0].page_id == p.page_id
    assert p.body.startswith(b"<!doctype html>") and p.status == 200
    assert positions[-1] is not None and positions[-1].offset == len(data)


CL_DAMAGE = {
    "plus-1": {"cl_delta": 1},
    "minus-1": {"cl_delta": -1},
    "plus-1000": {"cl_delta": 1000},
    "minus-1000": {"content_length": "20"},
    "negative": {"content_length": "-5"},
    "huge": {"content_length": str(2**63)},
    "not-a-number": {"content_length": "12ab"},
}


@MODES
@pytest.mark.parametrize("damage_kind", list(CL_DAMAGE))
def test_wrong_content_length_quarantines_only_that_record(compressed: bool, damage_kind: str) -> None:
    victim = page(3, body=b"<html><body>" + b"x" * 1500 + b"</body></html>", **CL_DAMAGE[damage_kind])
    data, offset = build(victim, compressed)
    t0 = time.monotonic()
    pages, _, damage, _, _ = read_all(data)
    assert time.monotonic() - t0 < 5
    assert numbers(pages) == GOOD
    assert len(damage) == 1, damage
    assert damage[0].offset == offset
    assert damage[0].reason


@MODES
def test_truncated_file_keeps_everything_before_the_cut(compressed: bool) -> None:
    data, _ = build(page(3), compressed)
    cut = data[: len(data) - 40]
    pages, _, damage, positions, _ = read_all(cut)
    assert numbers(pages) == [1, 2, 3, 4]
    assert len(damage) == 1
    assert positions[-1] is None  # nothing after the damage: the file ended


def test_corrupt_gzip_member_is_skipped_and_the_next_member_read() -> None:
    victim = gz_members([page(3, body=b"<html>" + bytes(range(256)) * 40 + b"</html>")])
    corrupt = bytearray(victim)
    for i in range(40, 60):
        corrupt[i] ^= 0x5A
    records = [warcinfo(), page(1), page(2)]
    head = gz_members(records)
    data = head + bytes(corrupt) + gz_members([page(4), page(5)])
    pages, _, damage, _, _ = read_all(data)
    assert numbers(pages) == GOOD
    assert [d.offset for d in damage] == [len(head)]


def test_corrupt_gzip_header_and_garbage_between_members() -> None:
    head = gz_members([warcinfo(), page(1), page(2)])
    bad_header = bytearray(gz_members([page(3)]))
    bad_header[3] = 0xFF  # reserved FLG bits set: not a valid gzip header
    data = head + bytes(bad_header) + b"GARBAGE-NOT-GZIP" * 10 + gz_members([page(4), page(5)])
    pages, _, damage, _, _ = read_all(data)
    assert numbers(pages) == GOOD
    assert damage and damage[0].offset == len(head)


def test_crc_mismatch_is_damage() -> None:
    head = gz_members([page(1), page(2)])
    member = bytearray(gz_members([page(3)]))
    member[-8] ^= 0xFF  # CRC32 in the gzip trailer
    data = head + bytes(member) + gz_members([page(4), page(5)])
    pages, _, damage, _, _ = read_all(data)
    assert numbers(pages) == GOOD
    assert len(damage) == 1 and "gzip" in damage[0].reason


def test_injected_blank_lines_are_tolerated() -> None:
    records = [warcinfo(), page(1), b"\r\n\r\n\n", page(2), b"\r\n" * 7, page(3)]
    pages, _, damage, _, _ = read_all(b"".join(records))
    assert numbers(pages) == [1, 2, 3]
    assert damage == []


def test_garbage_between_uncompressed_records_is_reported_and_skipped() -> None:
    data = page(1) + page(2) + b"\x00\x01binary junk without structure\n" * 30 + page(4) + page(5)
    pages, _, damage, _, _ = read_all(data)
    assert numbers(pages) == GOOD
    assert len(damage) == 1


def test_header_block_without_end_is_bounded() -> None:
    cfg = ReplayConfig(max_header_bytes=4096)
    victim = b"WARC/1.0\r\nWARC-Type: response\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n"
    data, offset = build(victim, compressed=False)
    pages, _, damage, _, _ = read_all(data, cfg)
    assert numbers(pages) == GOOD
    assert damage[0].offset == offset and "4096" in damage[0].reason


def test_gzip_bomb_member_costs_bounded_work() -> None:
    cfg = ReplayConfig(max_record_bytes=4 * 1024 * 1024)
    http_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    zeros = 96 * 1024 * 1024
    rec_head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:bomb>\r\nWARC-Date: 2024-05-01T12:00:00Z\r\n"
        f"WARC-Target-URI: http://example.com/3\r\nContent-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http_head) + zeros}\r\n\r\n"
    ).encode() + http_head
    bomb = gzip_bomb_member(rec_head, zeros)
    assert len(bomb) < 1024 * 1024  # 96 MiB of zeros in well under 1 MiB
    before = gz_members([warcinfo(), page(1), page(2)])
    data = before + bomb + gz_members([page(4), page(5)])
    t0 = time.monotonic()
    pages, skips, damage, _, _ = read_all(data, cfg)
    assert time.monotonic() - t0 < 5
    assert numbers(pages) == GOOD
    assert "binary:binary" in [s.reason for s in skips]  # NULs labelled text/html
    assert damage == []


def test_content_encoding_bomb_is_capped_and_marked_truncated() -> None:
    import gzip as gz

    cfg = ReplayConfig(max_payload_bytes=256 * 1024)
    html = b"<html><body>" + b"<p>aaaa</p>" * 2_000_000 + b"</body></html>"  # 22 MB of HTML
    body = gz.compress(html)
    victim = page(3, body=body, http_extra=(("Content-Encoding", "gzip"),))
    data, _ = build(victim, compressed=True)
    pages, _, damage, _, _ = read_all(data, cfg)
    assert numbers(pages) == [1, 2, 3, 4, 5] and damage == []
    p3 = pages[2]
    assert p3.truncated == "decompressed"
    assert len(p3.body) == cfg.max_payload_bytes and p3.body.startswith(b"<html><body><p>")


def test_payload_over_the_cap_is_truncated_like_common_crawl() -> None:
    cfg = ReplayConfig(max_payload_bytes=10_000)
    data, _ = build(page(3, body=b"<html>" + b"y" * 50_000 + b"</html>"), compressed=False)
    pages, *_ = read_all(data, cfg)
    p3 = pages[2]
    assert p3.truncated == "length" and len(p3.body) == 10_000


@pytest.mark.parametrize(
    ("magic", "kind"),
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x7fELF\x02\x01", "elf"),
        (b"PK\x03\x04", "zip"),
        (b"GIF89a", "gif"),
    ],
)
def test_binary_payloads_labelled_html_are_rejected(magic: bytes, kind: str) -> None:
    data, _ = build(page(3, body=magic + bytes(range(256)) * 4), compressed=True)
    pages, skips, damage, _, _ = read_all(data)
    assert numbers(pages) == GOOD and damage == []
    assert f"binary:{kind}" in [s.reason for s in skips]


def test_selection_follows_payload_type_then_http_content_type() -> None:
    recs = [
        page(1),
        page(2, http_content_type="application/javascript"),
        page(3, headers=(("WARC-Identified-Payload-Type", "application/pdf"),)),
        page(4, http_content_type="application/javascript", headers=(("WARC-Identified-Payload-Type", "text/html"),)),
        page(5, http_content_type=""),  # unlabelled: sniffed, looks like HTML
        page(6, http_content_type="", body=b"just some text"),
        page(7, body=b""),
        warc_record("revisit", url="http://example.com/8", block=b""),
    ]
    pages, skips, _, _, _ = read_all(b"".join(recs))
    assert numbers(pages) == [1, 4, 5]
    assert sorted(s.reason for s in skips) == sorted(
        ["not-html", "not-html", "not-html:unlabelled", "empty-payload", "record-type:revisit"]
    )


class SlowStream(io.RawIOBase):
    """Reads trickle in for 20 kB after ``stall_at``: a connection that stalls inside one record."""

    def __init__(self, data: bytes, offset: int, stall_at: int) -> None:
        self.data, self.pos, self.stall_at = data, offset, stall_at

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.stall_at <= self.pos < self.stall_at + 20_000:
            time.sleep(0.05)
            n = 64
        else:
            n = 4096 if self.pos > self.stall_at else min(4096, self.stall_at - self.pos)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class SlowSource(BytesSource):
    def __init__(self, name: str, data: bytes, stall_at: int) -> None:
        super().__init__(name, data)
        self.stall_at = stall_at

    def open(self, offset: int) -> BinaryIO:
        return SlowStream(self.data, offset, self.stall_at)  # type: ignore[return-value]


def test_time_limit_per_record() -> None:
    big = page(3, body=b"<html>" + b"z" * 200_000 + b"</html>")
    data, offset = build(big, compressed=False)
    cfg = ReplayConfig(record_time_limit_s=0.5)
    reader = WarcReader(SlowSource("slow.warc", data, stall_at=offset + 1000), cfg)
    t0 = time.monotonic()
    items = [item for item, _ in reader]
    assert time.monotonic() - t0 < 30
    damage = [i for i in items if isinstance(i, Damaged)]
    assert damage and damage[0].offset == offset and "longer than 0.5s" in damage[0].reason
    assert numbers([i for i in items if isinstance(i, Page)])[:2] == [1, 2]


def test_single_member_gzip_file_reads_and_resumes_inside_the_member() -> None:
    import gzip as gz

    data = gz.compress(b"".join([warcinfo(), page(1), page(2), page(3), page(4), page(5)]))
    pages, _, damage, positions, _ = read_all(data)
    assert numbers(pages) == [1, 2, 3, 4, 5] and damage == []
    mid = positions[3]  # after warcinfo, page 1, page 2, page 3
    assert mid == Position(0, 4)
    rest, *_ = read_all(data, start=mid)
    assert numbers(rest) == [4, 5]


def test_resume_from_every_position_gives_the_rest(compressed: bool = True) -> None:
    data, _ = build(page(3), compressed)
    pages, _, _, positions, _ = read_all(data)
    all_ids = [p.page_id for p in pages]
    for pos in positions[:-1]:
        assert pos is not None
        rest, *_ = read_all(data, start=pos)
        assert [p.page_id for p in rest] == all_ids[len(all_ids) - len(rest) :]


def test_arc_files_are_read() -> None:
    data = arc_file([("http://example.com/1", b"<html>one</html>"), ("http://example.com/2", b"<html>two</html>")])
    pages, _, damage, _, _ = read_all(data, name="t.arc")
    assert numbers(pages) == [1, 2] and damage == []
    assert pages[0].lineage.record_id is None  # warcio invents ARC record ids; not an identity
    again, *_ = read_all(data, name="t.arc")
    assert [p.page_id for p in again] == [p.page_id for p in pages]


def test_not_an_archive_is_one_clear_error() -> None:
    pages, _, damage, positions, _ = read_all(b"this is not a web archive\n" * 100)
    assert pages == [] and len(damage) == 1 and positions == [None]
    assert damage[0].reason.startswith("not a WARC or ARC file")


def test_warc_0_18_with_lf_headers() -> None:
    block = b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n<html>x</html>\n\n"
    head = (
        "WARC/0.18\nWARC-Type: response\nWARC-Date: 2009-03-67T15:35:34-0700\n"
        "WARC-Record-ID: <urn:uuid:1>\nWARC-Target-URI: http://example.com/1\nWARC-Identified-Payload-Type: \n"
        f"Content-Type: application/http;msgtype=response\nContent-Length: {len(block)}\n\n"
    ).encode()
    # ClueWeb09 style: the blank lines are inside the Content-Length, the next header follows at once.
    data = head + block + head.replace(b"example.com/1", b"example.com/2") + block
    pages, _, damage, _, _ = read_all(data)
    assert damage == [] and numbers(pages) == [1, 2]
    assert pages[0].fetched_at == "2009-03-67T15:35:34-0700"


def test_config_is_frozen_and_has_sane_defaults() -> None:
    cfg = ReplayConfig()
    assert cfg.max_payload_bytes == 5 * 1024 * 1024
    with pytest.raises(AttributeError):
        cfg.max_payload_bytes = 1  # type: ignore[misc]
    assert replace(cfg, prefix="x").prefix == "x"


def test_arc_gz_members_are_read() -> None:
    import gzip as gz

    arc = arc_file([("http://example.com/1", b"<html>one</html>"), ("http://example.com/2", b"<html>two</html>")])
    head, _, rest = arc.partition(b"\n\n")  # filedesc record, then the two page records
    first, _, second = rest.lstrip(b"\n").partition(b"</html>\n")
    members = [gz.compress(head + b"\n\n"), gz.compress(first + b"</html>\n"), gz.compress(second)]
    pages, _, damage, _, _ = read_all(b"".join(members), name="t.arc.gz")
    assert numbers(pages) == [1, 2] and damage == []
    assert pages[1].lineage.offset == len(members[0]) + len(members[1])


def test_resuming_inside_a_single_member_does_not_report_old_damage_again() -> None:
    import gzip as gz

    data = gz.compress(b"".join([page(1), page(2, content_length="9"), page(3), page(4)]))
    _, _, damage, positions, _ = read_all(data)
    assert len(damage) == 1
    after_damage = positions[1]
    assert after_damage is not None and after_damage.skip == 2
    rest, _, damage_again, _, _ = read_all(data, start=after_damage)
    assert numbers(rest) == [3, 4] and damage_again == []
