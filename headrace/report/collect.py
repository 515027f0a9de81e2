"""Gather what the scorecard shows from a corpus: sealed shard manifests, the decision ledger and
(optionally) a pass over the decoded text of the kept documents.

The corpus-level measures (duplicates left, non-target language, residual PII, text hygiene) are
computed on the released bytes themselves by a :class:`Scanner`, not taken from the pipeline's own
counters: a release gate must catch a corpus that was built with a stage switched off.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from consumers.shards.manifest import DocEntry
from consumers.shards.reader import list_shards
from consumers.shards.tokenizer import Tokenizer, TokenizerNotFoundError, load_tokenizer
from streams.ids import url_host

log = logging.getLogger(__name__)

#: The order stages run in; unknown stages follow in first-seen order.
STAGE_ORDER = (
    "blocklist",
    "policy",
    "replay",
    "extract",
    "language",
    "quality",
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
    "hygiene",
    "decontam",
    "pii",
    "dedup",
    "shards",
)
EXCERPT = 280
KEPT_SAMPLES = 8

#: Ledger values whose name differs from the annotation the same filter writes on the documents it
#: keeps (``stage/drop-value`` -> annotation key), so kept and dropped land in one histogram.
SIGNAL_ALIASES = {
    "gopher_quality/gopher_below_avg_threshold": "avg_word_length",
    "gopher_quality/gopher_above_avg_threshold": "avg_word_length",
    "gopher_quality/gopher_too_many_hashes": "hash_ratio",
    "gopher_quality/gopher_too_many_ellipsis": "ellipsis_ratio",
    "gopher_quality/gopher_too_many_bullets": "bullet_lines_ratio",
    "gopher_quality/gopher_too_many_end_ellipsis": "end_ellipsis_lines_ratio",
    "gopher_quality/gopher_below_alpha_threshold": "alpha_words_ratio",
    "gopher_quality/gopher_enough_stop_words": "stop_words",
    "gopher_quality/gopher_short_doc": "words",
    "gopher_quality/gopher_long_doc": "words",
    "hygiene/control_chars": "control_fraction",
    "hygiene/markup": "markup_fraction",
    "hygiene/blobs": "blob_fraction",
    "hygiene/boilerplate": "boilerplate_line_fraction",
}


@dataclass
class Sample:
    id: str
    url: str
    excerpt: str
    values: dict[str, float] = field(default_factory=dict)
    duplicate_of: str = ""


@dataclass
class ReportData:
    shards_dir: str
    ledger_dir: str | None
    shards: int = 0
    kept_docs: int = 0
    kept_tokens: int = 0
    kept_chars: int = 0
    doc_tokens: list[int] = field(default_factory=list)
    doc_chars: list[int] = field(default_factory=list)
    dropped_by_stage: Counter[str] = field(default_factory=Counter)
    dropped_chars_by_stage: Counter[str] = field(default_factory=Counter)
    dropped_by_reason: Counter[str] = field(default_factory=Counter)  # "stage/reason"
    dead_letters: Counter[str] = field(default_factory=Counter)
    languages_kept: Counter[str] = field(default_factory=Counter)
    languages_identified: int = 0  # kept documents without a label that the scan identified
    languages_dropped: Counter[str] = field(default_factory=Counter)
    kept_domains: Counter[str] = field(default_factory=Counter)
    dropped_domains: Counter[str] = field(default_factory=Counter)
    pii_scrubbed: Counter[str] = field(default_factory=Counter)
    signals_kept: Counter[str] = field(default_factory=Counter)  # "kind:verdict"
    signals_dropped: Counter[str] = field(default_factory=Counter)
    kept_without_signals: int = 0  # kept documents whose page carried no robots/opt-out signal
    quality_kept: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    quality_dropped: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ledger_thresholds: dict[str, set[float]] = field(default_factory=lambda: defaultdict(set))
    samples_kept: list[Sample] = field(default_factory=list)
    samples_dropped: dict[str, list[Sample]] = field(default_factory=dict)
    inputs: Counter[str] = field(default_factory=Counter)  # kept documents per input
    inputs_dropped: Counter[str] = field(default_factory=Counter)
    pipelines: Counter[str] = field(default_factory=Counter)
    tokenizers: Counter[str] = field(default_factory=Counter)
    # corpus scan
    scanned_docs: int = 0
    scan_skipped: str = ""  # why the text scan did not run, when it did not
    corpus_exact_duplicates: int = 0
    corpus_near_duplicates: int = 0
    residual_pii: Counter[str] = field(default_factory=Counter)
    hygiene_flags: Counter[str] = field(default_factory=Counter)
    hygiene_bad_docs: int = 0

    # -- derived ----------------------------------------------------------------------------------
    @property
    def dropped_total(self) -> int:
        return sum(self.dropped_by_stage.values())

    @property
    def docs_in(self) -> int:
        return self.kept_docs + self.dropped_total

    def funnel(self) -> list[tuple[str, int]]:
        """Documents remaining after each stage, starting from everything that entered."""
        remaining = self.docs_in
        rows = [("input", remaining)]
        for stage in ordered_stages(self.dropped_by_stage):
            remaining -= self.dropped_by_stage[stage]
            rows.append((f"after {stage}", remaining))
        return rows

    def tokens_per_char(self) -> float:
        return self.kept_tokens / self.kept_chars if self.kept_chars else 0.0

    def token_funnel(self) -> list[tuple[str, int]]:
        """Tokens remaining after each stage. Dropped documents were never tokenized: their tokens are
        estimated from their length in characters at the kept corpus's tokens-per-character ratio, and
        pages dropped before extraction (no text) count zero."""
        ratio = self.tokens_per_char()
        dropped = {s: round(self.dropped_chars_by_stage.get(s, 0) * ratio) for s in self.dropped_by_stage}
        remaining = self.kept_tokens + sum(dropped.values())
        rows = [("extracted", remaining)]
        for stage in ordered_stages(self.dropped_by_stage):
            if not dropped[stage]:
                continue
            remaining -= dropped[stage]
            rows.append((f"after {stage}", remaining))
        return rows

    def dedup_drop_rate(self) -> float:
        dups = self.dropped_by_stage.get("dedup", 0)
        reaching = self.kept_docs + dups + self.dropped_by_stage.get("shards", 0)
        return dups / reaching if reaching else 0.0

    def corpus_duplicate_rate(self) -> float:
        n = self.scanned_docs or self.kept_docs
        return (self.corpus_exact_duplicates + self.corpus_near_duplicates) / n if n else 0.0

    def non_target_share(self, targets: tuple[str, ...]) -> float:
        if not targets or not self.kept_docs:
            return 0.0
        off = sum(n for lang, n in self.languages_kept.items() if lang not in targets)
        return off / self.kept_docs

    def residual_pii_per_million_tokens(self) -> float:
        return sum(self.residual_pii.values()) / self.kept_tokens * 1e6 if self.kept_tokens else 0.0

    def cleanliness(self) -> float:
        n = self.scanned_docs
        return 1.0 - self.hygiene_bad_docs / n if n else 1.0

    def dead_letter_share(self) -> float:
        n = self.docs_in + sum(self.dead_letters.values())
        return sum(self.dead_letters.values()) / n if n else 0.0


class Scanner(Protocol):
    """Measures the decoded text of each kept document (duplicates, PII, hygiene, language)."""

    def scan(self, data: ReportData, entry: DocEntry, text: str) -> None: ...

    def finish(self, data: ReportData) -> None: ...


def ordered_stages(counter: Counter[str]) -> list[str]:
    known = [s for s in STAGE_ORDER if s in counter]
    return known + [s for s in counter if s not in STAGE_ORDER]


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: not JSON, skipped", path, n)
                continue
            if isinstance(obj, dict):
                yield obj


def _input_name(lineage: Any) -> str:
    if lineage is None:
        return "unknown"
    if isinstance(lineage, dict):
        return str(lineage.get("warc_path") or lineage.get("job") or lineage.get("source") or "unknown")
    return str(lineage.warc_path or lineage.job or lineage.source or "unknown")


def collect(
    shards_dir: Path,
    ledger_dir: Path | None = None,
    *,
    scanner: Scanner | None = None,
    samples_per_reason: int = 3,
    seed: int = 0,
    on_shard: Callable[[int, int], None] | None = None,
) -> ReportData:
    """Read every live shard (and the ledger); with a ``scanner``, decode and measure each kept text.
    ``on_shard(done, total)`` is called after each shard (progress)."""
    rng = random.Random(seed)
    data = ReportData(str(shards_dir), str(ledger_dir) if ledger_dir else None)
    shards = list_shards(shards_dir) if shards_dir.is_dir() else []
    data.shards = len(shards)
    hashes: Counter[str] = Counter()
    tokenizers: dict[str, Tokenizer | None] = {}
    for n, shard in enumerate(shards, 1):
        if on_shard is not None and n > 1:
            on_shard(n - 1, len(shards))
        m = shard.manifest
        data.pipelines[m.pipeline or "unknown"] += m.documents
        data.tokenizers[f"{m.tokenizer.name} (sha256 {m.tokenizer.sha256[:12]}, vocab {m.tokenizer.vocab_size})"] += (
            m.documents
        )
        tok = None
        if scanner is not None:
            if m.tokenizer.sha256 not in tokenizers:
                tokenizers[m.tokenizer.sha256] = _load_tokenizer(m.tokenizer.name, data)
            tok = tokenizers[m.tokenizer.sha256]
        toks = shard.tokens() if tok is not None else None
        for d in m.docs:
            data.kept_docs += 1
            data.kept_tokens += d.length
            data.doc_tokens.append(d.length)
            if d.language or scanner is None or tok is None:
                data.languages_kept[d.language or "unlabelled"] += 1
            data.kept_domains[url_host(d.url) or "?"] += 1
            hashes[d.content_hash] += 1
            data.pii_scrubbed.update(d.pii)
            for s in d.signals:
                data.signals_kept[f"{s.kind}:{s.verdict}"] += 1
            if not d.signals:
                data.kept_without_signals += 1
            for k, v in d.annotations.items():
                data.quality_kept[k].append(float(v))
            if d.language_score:
                data.quality_kept["language.score"].append(d.language_score)
            data.inputs[_input_name(d.lineage)] += 1
            if toks is None or tok is None or scanner is None:
                continue
            ids = [int(t) for t in toks[d.start : d.start + d.length - 1]]  # without the EOS
            text = tok.decode(ids)
            data.doc_chars.append(len(text))
            data.kept_chars += len(text)
            data.scanned_docs += 1
            scanner.scan(data, d, text)
            # reservoir sample of kept documents
            if len(data.samples_kept) < KEPT_SAMPLES:
                data.samples_kept.append(Sample(d.doc_id, d.url, _excerpt(text)))
            else:
                j = rng.randrange(data.scanned_docs)
                if j < KEPT_SAMPLES:
                    data.samples_kept[j] = Sample(d.doc_id, d.url, _excerpt(text))
    if on_shard is not None and shards:
        on_shard(len(shards), len(shards))
    if scanner is not None and data.scanned_docs:
        scanner.finish(data)
    else:
        data.corpus_exact_duplicates = sum(n - 1 for n in hashes.values() if n > 1)
        if scanner is None:
            data.scan_skipped = data.scan_skipped or "text scan switched off"
    if ledger_dir is not None:
        _collect_ledger(data, ledger_dir, samples_per_reason)
    return data


def _load_tokenizer(name: str, data: ReportData) -> Tokenizer | None:
    try:
        return load_tokenizer(name)
    except (TokenizerNotFoundError, OSError, ValueError) as exc:
        data.scan_skipped = f"tokenizer {name!r} not available here ({exc}); its shards were not scanned"
        log.warning("%s", data.scan_skipped)
        return None


def _collect_ledger(data: ReportData, ledger_dir: Path, samples_per_reason: int) -> None:
    for rej in _iter_jsonl(ledger_dir / "rejected.jsonl"):
        stage = str(rej.get("stage") or "?")
        reason = str(rej.get("reason") or "?")
        key = f"{stage}/{reason}"
        data.dropped_by_stage[stage] += 1
        data.dropped_by_reason[key] += 1
        chars = rej.get("chars")
        if isinstance(chars, int):
            data.dropped_chars_by_stage[stage] += chars
        url = str(rej.get("url") or "")
        data.dropped_domains[url_host(url) or "?"] += 1
        data.inputs_dropped[_input_name(rej.get("lineage"))] += 1
        raw = rej.get("values") or {}
        values = {k: float(v) for k, v in raw.items() if isinstance(v, int | float)} if isinstance(raw, dict) else {}
        measured = {k: v for k, v in values.items() if k != "threshold"}
        for k, v in measured.items():
            data.quality_dropped[f"{stage}.{SIGNAL_ALIASES.get(f'{stage}/{k}', k)}"].append(v)
        if "threshold" in values and len(measured) == 1:
            (k,) = measured
            data.ledger_thresholds[f"{stage}.{SIGNAL_ALIASES.get(f'{stage}/{k}', k)}"].add(values["threshold"])
        if stage == "language":
            data.languages_dropped[str(rej.get("detail") or "?")] += 1
        for s in rej.get("signals") or ():
            if isinstance(s, dict):
                data.signals_dropped[f"{s.get('kind')}:{s.get('verdict')}"] += 1
        bucket = data.samples_dropped.setdefault(key, [])
        if len(bucket) < samples_per_reason:
            bucket.append(
                Sample(
                    str(rej.get("id") or ""),
                    url,
                    _excerpt(str(rej.get("excerpt") or rej.get("detail") or "")),
                    values,
                    str(rej.get("duplicate_of") or ""),
                )
            )
    for dl in _iter_jsonl(ledger_dir / "dlq.jsonl"):
        reason = str(dl.get("reason") or "?").split(":", 1)[0]
        data.dead_letters[reason] += 1


_WS = re.compile(r"\s+")


def _excerpt(text: str) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"
