"""The ``pii`` stage: replace PII spans, count them, and log every redaction on the document.

Detection is presidio's (``consumers.pii_detect``). Replacement follows datatrove's ``PIIFormatter``
by default: e-mail addresses and IP addresses become one of a few fixed, harmless values; the other
entities become a typed mask such as ``<PHONE_NUMBER>`` (``replacement = "mask"`` masks everything).
Which fixed value replaces a span is chosen by a hash of the span, so every worker makes the same
choice. Replacement values are never detected again (a span covered by one is skipped), which makes
scrubbing idempotent: ``scrub(scrub(x)) == scrub(x)``.

Kept documents carry ``pii_counts`` (per entity) and ``redactions`` (entity, start, end, recognizer,
with offsets into the text before redaction) so a later PII takedown can be verified.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import xxhash

from consumers.docops import with_text
from consumers.pii_detect import ENTITIES, PHONE_REGIONS, PiiDetector, PiiOverload, Span
from consumers.pii_recognizers import EMAIL, IP
from consumers.stage import DocumentStage, Drop, StageResult
from streams.records import Document, Redaction

log = logging.getLogger(__name__)

STAGE = "pii"
# datatrove PIIFormatter's replacements: example.com/.org are reserved for examples; the IPs did not
# answer pings when datatrove chose them.
EMAIL_REPLACEMENTS = ("email@example.com", "firstname.lastname@example.org")
IP_REPLACEMENTS = (
    "22.214.171.124",
    "126.96.36.199",
    "188.8.131.52",
    "184.108.40.206",
    "220.127.116.11",
    "18.104.22.168",
)


class PiiConfigError(ValueError):
    """The ``pii`` section is inconsistent."""


@dataclass(frozen=True)
class PiiConfig:
    enabled: bool = True
    entities: tuple[str, ...] = ENTITIES
    phone_regions: tuple[str, ...] = PHONE_REGIONS  # presidio's default regions
    # presidio scores: validated e-mail/card/IBAN/wallet 1.0, IP 0.6, SSN 0.5 (weak patterns 0.05),
    # phone 0.4. 0.4 keeps every entity but presidio's "very weak" SSN patterns (any 9 digits).
    score_threshold: float = 0.4
    public_ips_only: bool = True  # FineWeb: private, loopback and reserved addresses are not PII
    replacement: str = "fixed"  # "fixed": datatrove's values for e-mail and IP, masks otherwise; "mask"
    mask: str = "<{entity}>"
    email_replacements: tuple[str, ...] = EMAIL_REPLACEMENTS
    ip_replacements: tuple[str, ...] = IP_REPLACEMENTS
    max_spans: int = 0  # drop documents with more spans than this (dolma: 5); 0 keeps them all
    log_redactions: bool = True  # keep the redaction log on the document
    max_line_chars: int = 4096  # longer lines are analysed in overlapping windows
    max_windows: int = 20_000  # candidate windows per document; more: dropped as pii-overload
    max_phone_attempts: int = 5000  # phone candidates parsed per document; more: pii-overload


@dataclass
class ScrubResult:
    text: str
    redactions: list[Redaction] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class Scrubber:
    """Detects and replaces PII in one text; shared by the stage, the CLI and the benchmarks."""

    def __init__(self, config: PiiConfig | None = None, detector: PiiDetector | None = None) -> None:
        cfg = self.config = config or PiiConfig()
        if cfg.replacement not in ("fixed", "mask"):
            raise PiiConfigError(f"pii.replacement must be 'fixed' or 'mask', not {cfg.replacement!r}")
        try:
            masks = {cfg.mask.format(entity=e) for e in ENTITIES}
        except (KeyError, IndexError, ValueError) as exc:
            raise PiiConfigError(f"pii.mask {cfg.mask!r} is not a template with {{entity}}: {exc}") from exc
        if not all(masks):
            raise PiiConfigError("pii.mask must not be empty")
        if cfg.replacement == "fixed" and (not cfg.email_replacements or not cfg.ip_replacements):
            raise PiiConfigError("pii.email_replacements and pii.ip_replacements need at least one value")
        self.detector = detector or PiiDetector(
            entities=cfg.entities,
            phone_regions=cfg.phone_regions,
            score_threshold=cfg.score_threshold,
            max_line_chars=cfg.max_line_chars,
            max_windows=cfg.max_windows,
            max_phone_attempts=cfg.max_phone_attempts,
        )
        self._fixed = {EMAIL: cfg.email_replacements, IP: cfg.ip_replacements} if cfg.replacement == "fixed" else {}
        # everything this scrubber writes: never detected again
        self._written = sorted(
            {v for values in self._fixed.values() for v in values} | masks,
            key=len,
            reverse=True,
        )
        self._priority = {e: i for i, e in enumerate(cfg.entities)}

    def replacement(self, entity: str, original: str) -> str:
        values = self._fixed.get(entity)
        if values:
            return values[xxhash.xxh32_intdigest(original.encode("utf-8", "surrogatepass")) % len(values)]
        return self.config.mask.format(entity=entity)

    def _is_pii(self, text: str, span: Span) -> bool:
        if span.entity == IP and self.config.public_ips_only:
            try:
                return ipaddress.ip_interface(text[span.start : span.end]).ip.is_global
            except ValueError:
                return False
        return True

    def _covered_by_replacement(self, text: str, span: Span) -> bool:
        for value in self._written:
            lo = max(0, span.end - len(value))
            i = text.find(value, lo, span.start + len(value))
            while i != -1 and i <= span.start:
                if i + len(value) >= span.end:
                    return True
                i = text.find(value, i + 1, span.start + len(value))
        return False

    def spans(self, text: str) -> list[Span]:
        """PII spans to replace in ``text``, before merging."""
        found = self.detector.detect(text)
        if self.config.max_windows and len(found) > self.config.max_windows:
            raise PiiOverload("spans", len(found), self.config.max_windows)
        found = [s for s in found if self._is_pii(text, s)]
        return [s for s in found if not self._covered_by_replacement(text, s)]

    def _merge(self, spans: list[Span]) -> list[Span]:
        """Non-overlapping spans: overlapping detections become one span labelled by the most confident
        (then longest, then first-configured) entity."""
        spans = sorted(spans, key=lambda s: (s.start, -s.end))
        merged: list[Span] = []
        cluster: list[Span] = []
        end = -1
        for s in [*spans, None]:
            if s is not None and s.start < end:
                cluster.append(s)
                end = max(end, s.end)
                continue
            if cluster:
                best = max(cluster, key=lambda c: (c.score, c.end - c.start, -self._priority.get(c.entity, 99)))
                merged.append(Span(best.entity, min(c.start for c in cluster), end, best.score, best.recognizer))
            if s is not None:
                cluster, end = [s], s.end
        return merged

    def _apply(self, text: str, spans: list[Span]) -> tuple[str, list[tuple[int, int, int, int]]]:
        """The replaced text and, per replaced span, (new start, new end, old start, old end)."""
        out: list[str] = []
        moved: list[tuple[int, int, int, int]] = []
        pos = 0
        size = 0
        for s in spans:
            out.append(text[pos : s.start])
            size += s.start - pos
            value = self.replacement(s.entity, text[s.start : s.end])
            out.append(value)
            moved.append((size, size + len(value), s.start, s.end))
            size += len(value)
            pos = s.end
        out.append(text[pos:])
        return "".join(out), moved

    @staticmethod
    def _to_original(span: Span, moved: list[tuple[int, int, int, int]], starts: list[int]) -> Span:
        """A span found in the replaced text, in the original text's offsets (a replacement it touches
        counts whole). ``starts`` are the replacements' new starts, for bisection."""

        def position(p: int, is_end: bool) -> int:
            k = bisect.bisect_right(starts, p - 1 if is_end else p) - 1
            if k < 0:
                return p
            _new_start, new_end, old_start, old_end = moved[k]
            if p < new_end or (is_end and p == new_end):
                return old_end if is_end else old_start
            return p + old_end - new_end

        return Span(span.entity, position(span.start, False), position(span.end, True), span.score, span.recognizer)

    def scrub(self, text: str, max_rounds: int = 4) -> ScrubResult:
        """Replace every PII span. Replacing can change what presidio's left-to-right scan finds next
        to a replacement, so the replaced text is checked again and anything new is added (in original
        offsets) until nothing changes: ``scrub(scrub(x)) == scrub(x)``."""
        spans = self._merge(self.spans(text))
        if not spans:
            return ScrubResult(text)
        new_text, moved = self._apply(text, spans)
        for _ in range(max_rounds - 1):
            extra = self.spans(new_text)
            if not extra:
                break
            starts = [m[0] for m in moved]
            spans = self._merge(spans + [self._to_original(s, moved, starts) for s in extra])
            new_text, moved = self._apply(text, spans)
        else:
            log.warning("PII scrubbing did not settle after %d rounds", max_rounds)
        result = ScrubResult(new_text)
        for s in spans:
            result.redactions.append(Redaction(s.entity, s.start, s.end, s.recognizer))
            result.counts[s.entity] += 1
        return result


class PiiStage(DocumentStage):
    """Replaces PII, records counts and the redaction log, drops documents over ``max_spans``."""

    name = STAGE

    def __init__(self, config: PiiConfig | None = None, scrubber: Scrubber | None = None) -> None:
        self.config = config or PiiConfig()
        self.scrubber = scrubber or Scrubber(self.config)

    def process(self, doc: Document) -> StageResult:
        try:
            result = self.scrubber.scrub(doc.text)
        except PiiOverload as exc:
            return Drop(
                "pii-overload",
                {exc.what: float(exc.value), "threshold": float(exc.limit)},
                detail=str(exc),
                stage=STAGE,
            )
        n = len(result.redactions)
        if self.config.max_spans and n > self.config.max_spans:
            return Drop(
                "pii-spans",
                {
                    "spans": float(n),
                    "threshold": float(self.config.max_spans),
                    **{k: float(v) for k, v in result.counts.items()},
                },
                stage=STAGE,
            )
        if not n:
            return doc
        doc = with_text(doc, result.text)
        return msgspec.structs.replace(
            doc,
            pii_counts=dict(sorted(result.counts.items())),
            redactions=tuple(result.redactions) if self.config.log_redactions else (),
        )


def verify_redacted(original: str, redactions: Sequence[Redaction], scrubbed: str) -> bool:
    """True when none of the redacted strings of ``original`` survives in ``scrubbed`` (a takedown
    check: the log names exactly what was removed)."""
    return all(original[r.start : r.end] not in scrubbed for r in redactions)
