"""Extraction workers: a slow or crashing page costs only that page, results keep input order."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from consumers.extract import ExtractConfig, Extractor
from consumers.extract_pool import ExtractPool
from consumers.stage import Drop
from streams.records import Document, Page

ARTICLE = (
    b"<html><head><title>t</title></head><body><article><h1>Budget news</h1><p>"
    + b"The committee met on Tuesday to discuss the new budget and the plans for the coming year. " * 8
    + b"</p></article></body></html>"
)
# ~2 MB of paragraphs: trafilatura needs seconds for it (well over the test's time limit)
SLOW = (
    b"<html><body>"
    + b"".join(b"<div><p>para %d " % i + b"word " * 40 + b"</p><span>x</span></div>" for i in range(8000))
    + b"</body></html>"
)


def page(i: int, body: bytes, content_type: str = "text/html") -> Page:
    return Page(page_id=f"p{i}", url=f"http://example.com/{i}", fetched_at="2024-01-01T00:00:00Z",
                content_type=content_type, body=body)  # fmt: skip


@pytest.fixture(scope="module")
def pool():
    with ExtractPool(ExtractConfig(workers=2, timeout_s=0.5, deduplicate=False)) as p:
        yield p


def test_same_text_as_in_process(pool: ExtractPool) -> None:
    cfg = ExtractConfig(deduplicate=False)
    (a,) = Extractor(cfg).extract_batch([page(0, ARTICLE)])
    (b,) = pool.extract_batch([page(0, ARTICLE)])
    assert isinstance(a, Document) and isinstance(b, Document) and a.text == b.text and a.doc_id == b.doc_id


def test_timeout_drops_only_that_page(pool: ExtractPool) -> None:
    before = pool.timeouts
    out = pool.extract_batch([page(1, ARTICLE), page(2, SLOW), page(3, ARTICLE), page(4, b""), page(5, ARTICLE)])
    kinds = [o.reason if isinstance(o, Drop) else "doc" for o in out]
    assert kinds == ["doc", "extract-timeout", "doc", "empty-body", "doc"]
    assert out[1].values["timeout_s"] == 0.5 and pool.timeouts == before + 1
    assert len(pool.worker_pids()) == 2  # the killed worker was replaced


def test_crash_drops_only_that_page() -> None:
    with ExtractPool(ExtractConfig(workers=1, timeout_s=60, deduplicate=False)) as solo:
        solo.extract_batch([page(5, ARTICLE)])  # workers start with the first batch
        (pid,) = solo.worker_pids()

        def crash_worker() -> None:
            time.sleep(0.3)
            os.kill(pid, signal.SIGSEGV)  # what a native crash in lxml looks like

        threading.Thread(target=crash_worker).start()
        out = solo.extract_batch([page(6, SLOW), page(7, ARTICLE)])
        assert isinstance(out[0], Drop) and out[0].reason == "extract-crash"
        assert out[0].values["exitcode"] == -signal.SIGSEGV
        assert isinstance(out[1], Document) and solo.crashes == 1
        assert solo.worker_pids() != [pid]


def test_idle_worker_death_loses_nothing(pool: ExtractPool) -> None:
    pool.extract_batch([page(20, ARTICLE)])
    for pid in pool.worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    out = pool.extract_batch([page(21, ARTICLE), page(22, ARTICLE)])
    assert all(isinstance(o, Document) for o in out)


def test_bad_input_pages(pool: ExtractPool) -> None:
    latin1 = "<html><body><article><p>" + "Caf\xe9 cr\xe8me br\xfbl\xe9e, " * 30 + "</p></article></body></html>"
    nested = b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000 + b"</body></html>"
    out = pool.extract_batch(
        [
            page(8, latin1.encode("latin-1"), "text/html; charset=iso-8859-1"),
            page(9, b"\xff\xfe\x00garbage\x80\x81" * 100),
            page(10, nested),
            page(11, b"<html><body></body></html>"),
        ]
    )
    assert isinstance(out[0], Document) and "Café crème" in out[0].text
    for o in out[1:]:
        assert isinstance(o, Drop) and o.reason in ("empty-extraction", "extract-timeout"), o


def test_resiliparse_option() -> None:
    (out,) = Extractor(ExtractConfig(extractor="resiliparse")).extract_batch([page(12, ARTICLE)])
    assert isinstance(out, Document) and "committee met on Tuesday" in out.text


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="extractor"):
        Extractor(ExtractConfig(extractor="boilerpy"))
    with pytest.raises(ValueError):
        ExtractPool(ExtractConfig(workers=0))
