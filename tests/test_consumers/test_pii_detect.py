"""The fast detector returns exactly what stock presidio returns on the whole text."""

from __future__ import annotations

import logging
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.pii_detect import ENTITIES, PiiDetector, PiiOverload

pytest.importorskip("presidio_analyzer")
logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(score_threshold=0.0)


PLANTS = [
    "jane.doe@example-mail.com", "x_y+z@sub.domain.co.uk", "a@b", "user@localhost", "mailto:bob@corp.io",
    "8.8.8.8", "192.168.1.20", "10.0.0.1/24", "2001:db8::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3",
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5500000000000004", "378282246310005", "1234 5678 9012 3456",
    "(415) 555-0132", "+1 415 555 0132", "415.555.0132", "+49 30 1234567", "030 1234567", "+44 20 7946 0958",
    "020 7946 0958", "555-0132 ext. 12", "1-800-555-0199", "+91 98765 43210", "1640", "2019-2020", "12:30",
    "078-05-1120", "219-09-9999", "123 45 6789", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "٠١٢٣٤٥٦٧٨٩",
]  # fmt: skip
FILLER = [
    "the",
    "call",
    "on",
    "at",
    "mail",
    "or",
    "x",
    "tel:",
    "ip",
    "card",
    "(",
    ")",
    "-",
    ".",
    ",",
    "2008",
    "$5",
    "50%",
]
SEP = [" ", " ", " ", "\n", "  ", "\t", ", ", ": ", "\u00a0", "/"]

texts = st.lists(
    st.tuples(st.sampled_from(PLANTS) | st.sampled_from(FILLER), st.sampled_from(SEP)), min_size=1, max_size=25
).map(lambda parts: "".join(a + b for a, b in parts))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts)
def test_same_spans_as_presidio(detector: PiiDetector, text: str) -> None:
    assert detector.detect(text) == detector.detect_whole(text)


@pytest.mark.parametrize("threshold", [0.0, 0.4, 0.7])
def test_same_spans_with_thresholds(threshold: float) -> None:
    det = PiiDetector(score_threshold=threshold)
    text = "\n".join(f"line {i}: {p} and more" for i, p in enumerate(PLANTS))
    assert det.detect(text) == det.detect_whole(text)


def test_finds_each_entity(detector: PiiDetector) -> None:
    text = (
        "Mail jane.doe@example-mail.com, call (415) 555-0132, server 8.8.8.8, card 4111 1111 1111 1111, "
        "IBAN GB82 WEST 1234 5698 7654 32, wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT, SSN 219-09-9999."
    )
    found = {s.entity for s in detector.detect(text)}
    assert found == set(ENTITIES)


def test_long_lines_are_windowed(detector: PiiDetector) -> None:
    text = ("filler words " * 2000) + "write to jane.doe@example-mail.com or 8.8.8.8 " + ("more words " * 2000)
    got = [(s.entity, text[s.start : s.end]) for s in detector.detect(text)]
    assert ("EMAIL_ADDRESS", "jane.doe@example-mail.com") in got and ("IP_ADDRESS", "8.8.8.8") in got


def test_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network used")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    det = PiiDetector(entities=["EMAIL_ADDRESS"])
    assert [s.entity for s in det.detect("mail jane@example.org now")] == ["EMAIL_ADDRESS"]


@pytest.mark.parametrize(
    "adversarial",
    [
        "1\n" * 200_000,  # a trigger on every line
        "@a" * 200_000,  # an e-mail candidate every two characters
        "1 " * 200_000,  # one long line of digits
    ],
)
def test_budgets_raise_overload_quickly(adversarial: str) -> None:
    det = PiiDetector(max_windows=50)
    with pytest.raises(PiiOverload):
        det.detect(adversarial)


def test_same_spans_on_real_pages(detector: PiiDetector, shared_data) -> None:
    from consumers.extract import ExtractConfig, Extractor
    from crawler.warc import iter_warc
    from streams.records import Document, Page

    pages = [p for f in sorted(shared_data.glob("*.warc*")) for p in iter_warc(f) if isinstance(p, Page)][::4]
    docs = [d for d in Extractor(ExtractConfig()).extract_batch(pages) if isinstance(d, Document)]
    assert docs
    for d in docs:
        assert detector.detect(d.text) == detector.detect_whole(d.text), d.url
