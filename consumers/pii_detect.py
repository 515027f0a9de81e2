"""PII detection with presidio as the authority, fast enough for a web-scale stream.

presidio's pattern recognizers (``consumers.pii_recognizers``) decide; this module decides *where*
they need to look. The results are exactly those of stock presidio run on the whole text (tested on
the real corpus and on generated text), because a window is always cut at characters that no match
of that recognizer can contain, with the neighbouring character kept as context:

* **Triggers.** Every supported entity needs a digit, an ``@`` or a ``:``. One numpy pass over the
  code points finds them; a page without any is done.
* **E-mail, IP addresses:** their patterns cannot contain whitespace, so each runs on the
  whitespace-delimited tokens holding a candidate. An ``@`` with more than 256 characters without
  whitespace on either side is not considered (addresses are at most 64 + 255 characters); this also
  bounds presidio's e-mail pattern, whose backtracking is quadratic in a token.
* **Credit cards, US SSN:** their matches consist of digits and ``- `` (SSN: also ``.``), so each
  runs on the maximal run of those characters around a candidate.
* **Phone numbers:** on the maximal runs of the characters phonenumbers' candidate pattern can match
  (digits, its punctuation, the letters of its extension labels), computed from that pattern.
* **IBAN, crypto wallets:** no pattern crosses a newline, so each runs on the lines holding a
  candidate.

A cheap bounded-repetition regex per entity (a necessary condition for its pattern) picks the
windows; the windows of one entity are joined by newlines and analysed in one call, followed by
presidio's own post-processing (score threshold, ``remove_duplicates``).

Budgets keep adversarial inputs cheap: lines longer than ``max_line_chars`` are cut into overlapping
windows (a match longer than the overlap could be cut there); more windows than ``max_windows``, or
more parsed phone candidates than ``max_phone_attempts``, raises :class:`PiiOverload`, and the stage
drops the document with that reason.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from consumers.pii_recognizers import (
    CARD,
    CRYPTO,
    EMAIL,
    ENTITIES,
    IBAN,
    IP,
    PHONE,
    PHONE_REGIONS,
    SSN,
    PhoneState,
    build_recognizers,
    phone_characters,
    phone_digit_floors,
    reference_analyzer,
)

log = logging.getLogger(__name__)

__all__ = ["ENTITIES", "PHONE_REGIONS", "PiiDetector", "PiiOverload", "Span"]

# phonenumbers' separator characters (they never include a newline)
_PHONE_PUNCT = (
    "-x\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \u00a0\u00ad\u200b\u2060\u3000()"
    "\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e"
)

# Necessary conditions, one per entity, with bounded repetition only (linear time).
_CANDIDATES: dict[str, re.Pattern[str]] = {
    IP: re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|::|(?:[0-9a-f]{1,4}:){7}", re.I),
    CARD: re.compile(r"[13-6]\d{3}[- ]?\d{3}"),
    IBAN: re.compile(r"[a-z]{2}[0-9]{2}(?:[ -]?[a-z0-9]{4}){2}", re.I),
    CRYPTO: re.compile(r"(?:bc1|[13])[a-z0-9]{25}", re.I),
    SSN: re.compile(r"[0-9]{3}[- .][0-9]{2}[- .][0-9]{4}|[0-9]{5}-[0-9]{4}|[0-9]{3}-[0-9]{6}|[0-9]{9}"),
}
# Maximal runs of the characters a match can consist of.
_RUNS: dict[str, re.Pattern[str]] = {
    CARD: re.compile(r"[\d\- ]+"),
    SSN: re.compile(r"[\d\- .]+"),
    IP: re.compile(r"\S+"),
}
_LINE_ENTITIES = (IBAN, CRYPTO)
_WS = re.compile(r"\s")
EMAIL_REACH = 256  # characters searched on each side of an @


class PiiOverload(RuntimeError):
    """A document needs more work than a budget allows (``what``: "windows" or "phone_attempts")."""

    def __init__(self, what: str, value: int, limit: int) -> None:
        super().__init__(f"{value} {what} > {limit}")
        self.what = what
        self.value = value
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Span:
    entity: str
    start: int
    end: int
    score: float
    recognizer: str


Window = tuple[int, int, int, int]  # start, end, core start, core end (results must start in the core)

# ------------------------------------------------------------------------------ trigger tables
_DIGIT_CLASS, _NEWLINE, _AT, _COLON = 1, 2, 3, 4


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Byte and code-point lookup tables: digits (any script), newline, '@' and ':'."""
    ascii_table = np.zeros(256, dtype=np.uint8)
    full = np.zeros(0x110000, dtype=np.uint8)
    everything = "".join(map(chr, range(0x110000)))
    full[[ord(d) for d in re.findall(r"\d", everything)]] = _DIGIT_CLASS
    for table in (ascii_table, full):
        table[ord("0") : ord("9") + 1] = _DIGIT_CLASS
        table[10] = _NEWLINE
        table[ord("@")] = _AT
        table[ord(":")] = _COLON
    return ascii_table, full


def _classes(text: str) -> np.ndarray:
    ascii_table, full = _tables()
    if text.isascii():
        return ascii_table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    return full[np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")]


class _Budget:
    """Per-document limits; exceeding one raises :class:`PiiOverload`."""

    def __init__(self, max_windows: int, max_phone_attempts: int) -> None:
        self.max_windows = max_windows
        self.max_phone_attempts = max_phone_attempts
        self.phone_attempts = 0
        self.windows = 0

    def add_windows(self, n: int) -> None:
        self.windows += n
        if self.max_windows and self.windows > self.max_windows:
            raise PiiOverload("windows", self.windows, self.max_windows)

    def phone_attempt(self) -> None:
        self.phone_attempts += 1
        if self.max_phone_attempts and self.phone_attempts > self.max_phone_attempts:
            raise PiiOverload("phone_attempts", self.phone_attempts, self.max_phone_attempts)


def _span(result: Any) -> Span:
    meta = result.recognition_metadata or {}
    return Span(
        entity=result.entity_type,
        start=result.start,
        end=result.end,
        score=float(result.score),
        recognizer=str(meta.get("recognizer_name", "")),
    )


def _order(s: Span) -> tuple[int, int, str]:
    return (s.start, -s.end, s.entity)


class PiiDetector:
    """Finds PII spans exactly as presidio does on the whole text, looking only where it can be."""

    def __init__(
        self,
        entities: Sequence[str] = ENTITIES,
        phone_regions: Sequence[str] = PHONE_REGIONS,
        score_threshold: float = 0.0,
        max_line_chars: int = 4096,
        max_windows: int = 20_000,
        max_phone_attempts: int = 5000,
        overlap: int = 128,
    ) -> None:
        from presidio_analyzer import EntityRecognizer
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        self.entities = tuple(dict.fromkeys(entities))
        self.phone_regions = tuple(phone_regions)
        self._phone = PhoneState()
        self.recognizers = build_recognizers(self.entities, self.phone_regions, self._phone)
        self._remove_duplicates = EntityRecognizer.remove_duplicates
        engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        engine.load()
        self._artifacts = engine.process_text("", "en")  # what the engine hands every recognizer
        self._reference: Any = None
        self.score_threshold = score_threshold
        self.max_line_chars = max(512, max_line_chars)
        self.max_windows = max_windows
        self.max_phone_attempts = max_phone_attempts
        self.overlap = overlap
        self._checks: dict[str, re.Pattern[str]] = {e: _CANDIDATES[e] for e in self.entities if e in _CANDIDATES}
        self._runs = dict(_RUNS)
        if PHONE in self.entities:
            floor = min(min(f) for f in phone_digit_floors(self.phone_regions).values())
            self._checks[PHONE] = re.compile(rf"\d(?:[{_PHONE_PUNCT}]{{0,4}}\d){{{max(0, floor - 1)}}}")
            self._runs[PHONE] = phone_characters()
        self._digit_entities = [e for e in self.entities if e != EMAIL]

    # ------------------------------------------------------------------ reference (whole text)
    def detect_whole(self, text: str) -> list[Span]:
        """Stock presidio on the whole text (see ``reference_analyzer``): what :meth:`detect` returns."""
        if self._reference is None:
            self._reference = reference_analyzer(self.entities, self.phone_regions)
        results = self._reference.analyze(
            text, language="en", entities=list(self.entities), score_threshold=self.score_threshold
        )
        return sorted((_span(r) for r in results), key=_order)

    # ------------------------------------------------------------------ fast path
    def detect(self, text: str) -> list[Span]:
        """PII spans of ``text``; raises :class:`PiiOverload` when a budget is exceeded."""
        budget = _Budget(self.max_windows, self.max_phone_attempts)
        self._phone.on_attempt = budget.phone_attempt
        if not text:
            return []
        classes = _classes(text)
        spans: set[Span] = set()
        if EMAIL in self.entities:
            windows = self._email_windows(text, np.flatnonzero(classes == _AT), budget)
            spans.update(self._analyze(text, windows, EMAIL))
        if self._digit_entities:
            trigger = classes == _DIGIT_CLASS
            if IP in self.entities:
                trigger |= classes == _COLON
            newline = classes == _NEWLINE
            lines = self._line_windows(text, trigger, newline, budget)
            by_entity: dict[str, list[Window]] = {}
            for line in lines:
                piece = text[line[0] : line[1]]
                for entity in self._digit_entities:
                    rx = self._checks[entity]
                    if not rx.search(piece):
                        continue
                    found = by_entity.setdefault(entity, [])
                    if entity in _LINE_ENTITIES:
                        found.append(line)
                    else:
                        found.extend(_runs_around(piece, line, self._runs[entity], rx, budget))
            for entity, windows in by_entity.items():
                spans.update(self._analyze(text, windows, entity))
        return sorted(spans, key=_order)

    def _analyze(self, text: str, windows: list[Window], entity: str) -> list[Span]:
        """One recognizer over the windows joined by newlines, then presidio's post-processing."""
        if not windows:
            return []
        pieces: list[str] = []
        starts: list[int] = []
        pos = 0
        for start, end, _, _ in windows:
            pieces.append(text[start:end])
            starts.append(pos)
            pos += end - start + 1
        results = self.recognizers[entity].analyze("\n".join(pieces), [entity], self._artifacts)
        kept = []
        for r in results:
            if r.score < self.score_threshold:
                continue
            k = bisect.bisect_right(starts, r.start) - 1
            start, _, core_start, core_end = windows[k]
            shift = start - starts[k]
            r.start += shift
            r.end += shift
            if core_start <= r.start < core_end:
                kept.append(r)
        return [_span(r) for r in self._remove_duplicates(kept)]

    def _email_windows(self, text: str, ats: np.ndarray, budget: _Budget) -> list[Window]:
        """The whitespace-delimited token around every ``@`` followed by a word character."""
        budget.add_windows(len(ats))
        n = len(text)
        out: list[Window] = []
        for p in ats.tolist():
            if p + 1 >= n or not (text[p + 1].isalnum() or text[p + 1] == "_"):
                continue
            lo = max(0, p - EMAIL_REACH)
            m = _WS.search(text[lo:p][::-1])
            if m is None and lo > 0:
                continue  # over EMAIL_REACH characters before the @ without a break: not an address
            start = p - m.start() if m else lo
            m = _WS.search(text, p, min(n, p + EMAIL_REACH))
            if m is None and p + EMAIL_REACH < n:
                continue
            end = m.start() if m else n
            if out and start <= out[-1][1]:
                start = out[-1][0]
                out.pop()
            out.append((start, end, start, end))
        return out

    def _line_windows(self, text: str, trigger: np.ndarray, newline: np.ndarray, budget: _Budget) -> list[Window]:
        """Every line holding a trigger; long lines as overlapping windows around their triggers."""
        triggers = np.flatnonzero(trigger)
        if not len(triggers):
            return []
        line_of = np.cumsum(newline, dtype=np.int64)  # newlines up to each position (none at triggers)
        line_ids = line_of[triggers]  # sorted, like the triggers
        first = np.empty(len(line_ids), dtype=bool)
        first[0] = True
        np.not_equal(line_ids[1:], line_ids[:-1], out=first[1:])
        budget.add_windows(int(np.count_nonzero(first)))  # before any per-line work
        lines = line_ids[first]
        newlines = np.flatnonzero(newline)
        if len(newlines):
            starts = np.where(lines > 0, newlines[np.maximum(lines - 1, 0)] + 1, 0)
            ends = np.where(lines < len(newlines), newlines[np.minimum(lines, len(newlines) - 1)], len(text))
        else:
            starts, ends = np.zeros(1, dtype=np.int64), np.full(1, len(text))
        out: list[Window] = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if b - a <= self.max_line_chars:
                out.append((a, b, a, b))
            else:
                out.extend(self._long_line_windows(text, a, b, triggers, budget))
        return out

    def _long_line_windows(self, text: str, a: int, b: int, triggers: np.ndarray, budget: _Budget) -> list[Window]:
        size = self.max_line_chars
        lo, hi = np.searchsorted(triggers, [a, b])
        hits = triggers[lo:hi]
        # cores of about ``size`` characters, cut after a space when there is one in the second half
        out: list[Window] = []
        core = a
        while core < b:
            core_end = min(b, core + size)
            if core_end < b:
                cut = text.rfind(" ", core + size // 2, core_end)
                if cut > 0:
                    core_end = cut + 1
            i = int(np.searchsorted(hits, core))
            if i < len(hits) and hits[i] < core_end:
                out.append((max(a, core - self.overlap), min(b, core_end + self.overlap), core, core_end))
                budget.add_windows(1)
            core = core_end
        return out


def _runs_around(
    piece: str, line: Window, run: re.Pattern[str], candidate: re.Pattern[str], budget: _Budget
) -> list[Window]:
    """The maximal runs of match characters (``run`` matches one or more) in a line window that hold
    a candidate, each with one character of context on both sides (for ``\\b`` and look-arounds).

    Found from the candidates outwards, so a line with many short runs costs no more than one with few.
    """
    a, b, core_start, core_end = line
    out: list[Window] = []
    reversed_piece = ""
    n = len(piece)
    end = -1
    for m in candidate.finditer(piece):
        budget.add_windows(1)  # every candidate counts: dense candidates are what make inputs slow
        if m.start() < end:
            continue  # inside the run already taken
        if not reversed_piece:
            reversed_piece = piece[::-1]
        left = run.match(reversed_piece, n - m.start())
        right = run.match(piece, m.start())
        begin = m.start() - (left.end() - left.start() if left else 0)
        end = right.end() if right else m.end()
        start_abs, end_abs = a + begin, a + end
        out.append((max(a, start_abs - 1), min(b, end_abs + 1), max(start_abs, core_start), min(end_abs, core_end)))
    return out
