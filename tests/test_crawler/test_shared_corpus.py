"""Every real archive in the shared corpus replays, and the HTML page counts agree with datatrove's
(SOURCES.md) up to the differences docs/replay.md explains record by record."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from crawler.reader import Position
from crawler.sources import LocalSource
from crawler.warc import Damaged, Skipped, WarcReader
from streams.records import Page

#: file -> (pages datatrove has that we skip, pages we have that datatrove skips). docs/replay.md:
#: datatrove asks libmagic when WARC-Identified-Payload-Type is absent; libmagic calls 5 JavaScript /
#: HTC files (served as application/x-javascript, text/plain, text/javascript) HTML, and 21 pages served
#: as text/html something else (application/javascript, octet-stream, text/xml: leading blank lines,
#: a stray 0xFF byte, an XML declaration).
EXPLAINED: dict[str, tuple[int, int]] = {
    "aut_example.warc.gz": (2, 0),
    "aut_issue-514.warc": (0, 1),
    "cllu_clueweb09_sample.normalized.warc.gz": (0, 17),
    "dolma_sample-0000.warc.gz": (0, 1),
    "dolma_sample-0001.warc.gz": (0, 1),
    "ukwa_BL-20140325121225068-00000.warc.gz": (0, 1),
    "ukwats_main-page.warc.gz": (2, 0),
    "ukwats_sopa-wikipedia-homepage.warc.gz": (1, 0),
}


def datatrove_counts(shared_data: Path) -> dict[str, int]:
    """The ``datatrove docs`` column of SOURCES.md."""
    text = (shared_data / "SOURCES.md").read_text().split("## quirks")[0]
    header = next(line for line in text.splitlines() if line.startswith("| file |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    i = cols.index("datatrove docs")
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*([\w.-]+\.w?arc(?:\.gz)?)\s*\|", line)
        if m:
            out[m.group(1)] = int(line.strip("|").split("|")[i].strip())
    return out


def read(path: Path, start: Position | None = None) -> tuple[list[Page], Counter[str], list[Damaged]]:
    pages: list[Page] = []
    skipped: Counter[str] = Counter()
    damage: list[Damaged] = []
    for item, _ in WarcReader(LocalSource(str(path)), start=start):
        if isinstance(item, Page):
            pages.append(item)
        elif isinstance(item, Skipped):
            skipped[item.reason] += 1
        else:
            damage.append(item)
    return pages, skipped, damage


def test_html_pages_match_datatrove_up_to_the_explained_differences(shared_data: Path) -> None:
    expected = datatrove_counts(shared_data)
    assert len(expected) == 18 and sum(expected.values()) == 369
    got = {}
    for name in expected:
        pages, _, damage = read(shared_data / name)
        assert damage == [], f"{name}: {damage}"
        got[name] = len(pages)
    for name, dt in expected.items():
        dt_only, ours_only = EXPLAINED.get(name, (0, 0))
        assert got[name] == dt - dt_only + ours_only, name
    assert sum(got.values()) == 385


def test_every_page_has_full_lineage(shared_data: Path) -> None:
    pages, _, _ = read(shared_data / "resiliparse_warcfile.warc.gz")
    assert len(pages) == 16
    for p in pages:
        lin = p.lineage
        assert lin.warc_path and lin.warc_path.endswith("resiliparse_warcfile.warc.gz")
        assert lin.offset is not None and lin.length and lin.record_id and lin.warc_date
        assert lin.crawl == "CC-MAIN-2020-34"
    # The offset and length cut out exactly the gzip member of that record.
    raw = (shared_data / "resiliparse_warcfile.warc.gz").read_bytes()
    import gzip

    member = gzip.decompress(raw[pages[3].lineage.offset : pages[3].lineage.offset + pages[3].lineage.length])
    assert pages[3].lineage.record_id.encode() in member


def test_quirks_are_survived(shared_data: Path) -> None:
    q = shared_data / "quirks"
    pages, _, damage = read(q / "clueweb09_warc018_sample.warc.gz")
    assert len(pages) == 100 and damage == []  # WARC/0.18, LF headers, one gzip member for the file
    assert pages[0].lineage.crawl == "clueweb09-"
    pages, _, damage = read(q / "clueweb09_ja_quirk.warc.gz")
    assert len(pages) == 29 and damage == []
    pages, skipped, damage = read(q / "warcio_example-trunc.warc")
    # warcio: 4 records and 1 error. We read the 3 intact records and quarantine the bad response.
    assert sum(skipped.values()) == 3 and len(damage) == 1 and damage[0].offset == 1197
    pages, _, damage = read(q / "resiliparse_clipped.warc.gz")
    assert pages == [] and len(damage) == 1 and "cut short" in damage[0].reason
    pages, _, damage = read(q / "warcio_bad.arc")
    assert pages == [] and [d.offset for d in damage] == [0, 134, 262]


def test_resuming_the_single_member_clueweb_file_mid_way(shared_data: Path) -> None:
    path = shared_data / "quirks" / "clueweb09_warc018_sample.warc.gz"
    full, _, _ = read(path)
    rest, _, _ = read(path, Position(0, 61))  # warcinfo + 60 pages already done
    assert [p.page_id for p in rest] == [p.page_id for p in full[60:]]


@pytest.mark.parametrize("name", ["aut_issue-493.warc", "ukwa_BL-20140325121225068-00000.warc.gz"])
def test_resume_at_any_position_gives_the_same_tail(shared_data: Path, name: str) -> None:
    path = shared_data / name
    items = list(WarcReader(LocalSource(str(path))))
    all_pages = [i.page_id for i, _ in items if isinstance(i, Page)]
    for k in range(0, len(items) - 1, max(1, len(items) // 7)):
        pos = items[k][1]
        assert pos is not None
        tail, _, _ = read(path, pos)
        assert [p.page_id for p in tail] == [i.page_id for i, _ in items[k + 1 :] if isinstance(i, Page)]
    assert all_pages
