"""Gather what the scorecard shows from a corpus: sealed shard manifests, the decision ledger and
(optionally) a pass over the decoded text of the kept documents.

The corpus-level measures (duplicates left, non-target language, residual PII, text hygiene) are
computed on the released bytes themselves, not taken from the pipeline's own counters: a release gate
must catch a corpus that was built with a stage switched off.
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
from typing import Any

from consumers.shards.reader import list_shards
from consumers.shards.tokenizer import load_tokenizer
from streams.ids import url_host

log = logging.getLogger(__name__)

#: The order stages run in; unknown stages follow in first-seen order.
STAGE_ORDER = (
    "blocklist",
    "policy",
    "replay",
    "extract",
    "pii",
    "language",
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
    "quality",
    "hygiene",
    "decontam",
    "dedup",
    "shards",
)
EXCERPT = 280


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
    doc_tokens: list[int] = field(default_factory=list)
    doc_chars: list[int] = field(default_factory=list)
    dropped_by_stage: Counter[str] = field(default_factory=Counter)
    dropped_by_reason: Counter[str] = field(default_factory=Counter)  # "stage/reason"
    dead_letters: Counter[str] = field(default_factory=Counter)
    languages_kept: Counter[str] = field(default_factory=Counter)
    kept_domains: Counter[str] = field(default_factory=Counter)
    dropped_domains: Counter[str] = field(default_factory=Counter)
    pii_scrubbed: Counter[str] = field(default_factory=Counter)
    signals_kept: Counter[str] = field(default_factory=Counter)  # "kind:verdict"
    signals_dropped: Counter[str] = field(default_factory=Counter)
    quality_kept: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    quality_dropped: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    samples_kept: list[Sample] = field(default_factory=list)
    samples_dropped: dict[str, list[Sample]] = field(default_factory=dict)
    inputs: Counter[str] = field(default_factory=Counter)
    pipelines: Counter[str] = field(default_factory=Counter)
    tokenizers: Counter[str] = field(default_factory=Counter)
    # corpus scan
    scanned_docs: int = 0
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


def collect(
    shards_dir: Path,
    ledger_dir: Path | None = None,
    *,
    samples_per_reason: int = 3,
    scan_text: bool = True,
    text_checks: Callable[[str], dict[str, int]] | None = None,
    pii_scan: Callable[[str], dict[str, int]] | None = None,
    near_dup_scan: Callable[[list[str]], int] | None = None,
    seed: int = 0,
) -> ReportData:
    rng = random.Random(seed)
    data = ReportData(str(shards_dir), str(ledger_dir) if ledger_dir else None)
    shards = list_shards(shards_dir)
    data.shards = len(shards)
    hashes: Counter[str] = Counter()
    texts: list[str] = []
    tokenizers: dict[str, Any] = {}
    for shard in shards:
        m = shard.manifest
        data.pipelines[m.pipeline or "unknown"] += m.documents
        data.tokenizers[f"{m.tokenizer.name} ({m.tokenizer.sha256[:12]})"] += m.documents
        toks = shard.tokens() if scan_text else None
        tok = None
        if scan_text:
            tok = tokenizers.get(m.tokenizer.sha256)
            if tok is None:
                tok = tokenizers[m.tokenizer.sha256] = load_tokenizer(m.tokenizer.name)
        for d in m.docs:
            data.kept_docs += 1
            data.kept_tokens += d.length
            data.doc_tokens.append(d.length)
            data.languages_kept[d.language or "unlabelled"] += 1
            data.kept_domains[url_host(d.url) or "?"] += 1
            hashes[d.content_hash] += 1
            for ent, n in d.pii.items():
                data.pii_scrubbed[ent] += n
            for s in d.signals:
                data.signals_kept[f"{s.kind}:{s.verdict}"] += 1
            for k, v in getattr(d, "annotations", {}).items():
                data.quality_kept[k].append(float(v))
            if d.lineage is not None:
                data.inputs[d.lineage.warc_path or d.lineage.job or d.lineage.source] += 1
            if toks is not None and tok is not None:
                ids = [int(t) for t in toks[d.start : d.start + d.length - 1]]
                text = tok.decode(ids)
                data.doc_chars.append(len(text))
                data.scanned_docs += 1
                texts.append(text)
                if text_checks is not None:
                    flags = text_checks(text)
                    if flags:
                        data.hygiene_bad_docs += 1
                        data.hygiene_flags.update(flags)
                if pii_scan is not None:
                    data.residual_pii.update(pii_scan(text))
                if len(data.samples_kept) < 6 or rng.random() < 6 / max(data.kept_docs, 1):
                    sample = Sample(d.doc_id, d.url, _excerpt(text))
                    if len(data.samples_kept) < 6:
                        data.samples_kept.append(sample)
                    else:
                        data.samples_kept[rng.randrange(6)] = sample
    data.corpus_exact_duplicates = sum(n - 1 for n in hashes.values() if n > 1)
    if near_dup_scan is not None and texts:
        data.corpus_near_duplicates = max(0, near_dup_scan(texts) - data.corpus_exact_duplicates)
    if ledger_dir is not None:
        _collect_ledger(data, ledger_dir, samples_per_reason)
    return data


def _collect_ledger(data: ReportData, ledger_dir: Path, samples_per_reason: int) -> None:
    for rej in _iter_jsonl(ledger_dir / "rejected.jsonl"):
        stage = str(rej.get("stage") or "?")
        reason = str(rej.get("reason") or "?")
        key = f"{stage}/{reason}"
        data.dropped_by_stage[stage] += 1
        data.dropped_by_reason[key] += 1
        url = str(rej.get("url") or "")
        data.dropped_domains[url_host(url) or "?"] += 1
        values = rej.get("values") or {}
        if isinstance(values, dict):
            for k, v in values.items():
                if isinstance(v, int | float):
                    data.quality_dropped[k].append(float(v))
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
                    {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
                    if isinstance(values, dict)
                    else {},
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
