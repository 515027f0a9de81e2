"""Build the scorecard of a corpus: collect, measure the kept text with the pipeline's own components,
check the release gates and render the HTML page.

The scan reuses what the pipeline runs (the hygiene rules, the PII scrubber, fastText language ID,
MinHash and the exact-dedup key), configured from the same :class:`PipelineConfig`, so "residual PII"
or "near duplicate" means exactly what the corresponding stage would have acted on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.dedup.minhash import MinHasher
from consumers.language import LanguageIdentifier, ModelNotFoundError
from consumers.pii import Scrubber
from consumers.pii_detect import PiiOverload
from consumers.quality.config import QualityConfig
from consumers.quality.hygiene import Hygiene
from consumers.shards.manifest import DocEntry
from headrace.config import PipelineConfig
from headrace.pipeline import headrace_version
from headrace.report.collect import ReportData, Sample, collect, ordered_stages
from headrace.report.gates import GateResult, evaluate
from headrace.report.render import render

log = logging.getLogger(__name__)

_PIPELINE_ID = re.compile(r"^headrace-(?P<version>.+)\+cfg\.(?P<digest>[0-9a-f]+)$")


@dataclass
class ReportResult:
    html: str
    summary: dict[str, Any]
    data: ReportData
    gates: list[GateResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


class CorpusScanner:
    """Measures each kept text: hygiene flags, residual PII, language (when unlabelled), duplicates."""

    def __init__(self, cfg: PipelineConfig, batch_size: int = 256) -> None:
        self.hygiene = Hygiene(cfg.quality.hygiene, annotate_kept=False)
        self.scrubber = Scrubber(cfg.pii)
        self.minhash = MinHasher(cfg.dedup.params())
        self.identifier: LanguageIdentifier | None = LanguageIdentifier(cfg.language)
        self.batch_size = batch_size
        self._exact: set[int] = set()
        self._bands: set[int] = set()
        self._unlabelled: list[str] = []
        self.pii_overloaded = 0

    def scan(self, data: ReportData, entry: DocEntry, text: str) -> None:
        verdict = self.hygiene.check(text)
        if not verdict.keep:
            data.hygiene_bad_docs += 1
            data.hygiene_flags[verdict.reason] += 1
        try:
            data.residual_pii.update(self.scrubber.scrub(text).counts)
        except PiiOverload:
            self.pii_overloaded += 1
        keys = self.minhash.keys(text)
        if keys.exact in self._exact:
            data.corpus_exact_duplicates += 1
        elif any(b in self._bands for b in keys.bands):
            data.corpus_near_duplicates += 1
        self._exact.add(keys.exact)
        self._bands.update(keys.bands)
        if not entry.language:
            self._unlabelled.append(text)
            if len(self._unlabelled) >= self.batch_size:
                self._identify(data)

    def _identify(self, data: ReportData) -> None:
        texts, self._unlabelled = self._unlabelled, []
        if not texts:
            return
        if self.identifier is not None:
            try:
                labels = [label or "unknown" for label, _, _ in self.identifier.predict(texts)]
            except ModelNotFoundError as exc:
                log.warning("language ID unavailable (%s); unlabelled documents stay unlabelled", exc)
                self.identifier = None
            else:
                data.languages_kept.update(labels)
                data.languages_identified += len(labels)
                return
        data.languages_kept["unlabelled"] += len(texts)

    def finish(self, data: ReportData) -> None:
        self._identify(data)
        if self.pii_overloaded:
            data.hygiene_flags["pii-overload"] += self.pii_overloaded

    def redact(self, text: str) -> str:
        try:
            return self.scrubber.scrub(text).text
        except PiiOverload:
            return "(excerpt withheld: too many PII candidates)"


def quality_thresholds(q: QualityConfig, language_threshold: float) -> dict[str, list[tuple[str, float]]]:
    """The configured thresholds per quality signal (``stage.annotation`` keys), to draw on the plots."""
    out: dict[str, list[tuple[str, float]]] = {"language.score": [("min", language_threshold)]}
    if q.gopher_repetition.enabled:
        r = q.gopher_repetition
        for name in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac"):
            out[f"gopher_repetition.{name}"] = [("max", float(getattr(r, name)))]
        for n, t in r.top_n_grams:
            out[f"gopher_repetition.top_{n}_gram"] = [("max", t)]
        for n, t in r.dup_n_grams:
            out[f"gopher_repetition.duplicated_{n}_n_grams"] = [("max", t)]
    if q.gopher_quality.enabled:
        g = q.gopher_quality
        out["gopher_quality.words"] = [("min", g.min_doc_words), ("max", g.max_doc_words)]
        out["gopher_quality.avg_word_length"] = [("min", g.min_avg_word_length), ("max", g.max_avg_word_length)]
        out["gopher_quality.hash_ratio"] = [("max", g.max_symbol_word_ratio)]
        out["gopher_quality.ellipsis_ratio"] = [("max", g.max_symbol_word_ratio)]
        out["gopher_quality.bullet_lines_ratio"] = [("max", g.max_bullet_lines_ratio)]
        out["gopher_quality.end_ellipsis_lines_ratio"] = [("max", g.max_ellipsis_lines_ratio)]
        out["gopher_quality.alpha_words_ratio"] = [("min", g.max_non_alpha_words_ratio)]
        out["gopher_quality.stop_words"] = [("min", g.min_stop_words)]
    if q.c4.enabled and q.c4.min_num_sentences != -1:
        out["c4.too_few_sentences"] = [("min", q.c4.min_num_sentences)]
    if q.fineweb.enabled:
        f = q.fineweb
        out["fineweb.line_punct_ratio"] = [("min", f.line_punct_thr)]
        out["fineweb.short_line_ratio"] = [("max", f.short_line_thr)]
        out["fineweb.char_dup_ratio"] = [("max", f.char_duplicates_ratio)]
        out["fineweb.list_ratio"] = [("max", f.new_line_ratio)]
    if q.hygiene.enabled:
        h = q.hygiene
        out["hygiene.control_fraction"] = [("max", h.max_control_fraction)]
        out["hygiene.markup_fraction"] = [("max", h.max_markup_fraction)]
        out["hygiene.blob_fraction"] = [("max", h.max_blob_fraction)]
        out["hygiene.boilerplate_line_fraction"] = [("max", h.max_boilerplate_line_fraction)]
    return {k: [(label, float(v)) for label, v in rows if v] for k, rows in out.items()}


def _thresholds(data: ReportData, cfg: PipelineConfig) -> dict[str, list[tuple[str, float]]]:
    """Configured thresholds, plus those the ledger recorded for signals the config does not name (a
    corpus built with another config shows the thresholds it was actually filtered with)."""
    out = quality_thresholds(cfg.quality, cfg.language.threshold)
    for name, values in data.ledger_thresholds.items():
        if name not in out:
            out[name] = [("ledger", v) for v in sorted(values)[:2]]
    return out


def lineage(data: ReportData, cfg: PipelineConfig) -> dict[str, str]:
    versions: set[str] = set()
    digests: set[str] = set()
    for pid in data.pipelines:
        m = _PIPELINE_ID.match(pid)
        if m:
            versions.add(m["version"])
            digests.add(m["digest"])
    return {
        "corpus": data.shards_dir,
        "ledger": data.ledger_dir or "(none)",
        "pipeline version": ", ".join(sorted(versions)) or "unknown",
        "config hash": ", ".join(sorted(digests)) or "unknown",
        "report config hash": cfg.digest(),
        "report built by": f"headrace {headrace_version()}",
    }


def _redact_samples(samples: Sequence[Sample], scanner: CorpusScanner) -> None:
    for s in samples:
        s.excerpt = scanner.redact(s.excerpt)


def _top(counter: Any, n: int = 20) -> dict[str, int]:
    return dict(counter.most_common(n))


def summarize(data: ReportData, gates: Sequence[GateResult], lin: dict[str, str], seconds: float) -> dict[str, Any]:
    return {
        "lineage": {
            **lin,
            "pipelines": dict(data.pipelines),
            "tokenizers": dict(data.tokenizers),
            "inputs_kept": dict(data.inputs),
            "inputs_dropped": dict(data.inputs_dropped),
        },
        "shards": data.shards,
        "documents_in": data.docs_in,
        "documents_kept": data.kept_docs,
        "tokens_kept": data.kept_tokens,
        "characters_kept": data.kept_chars,
        "scanned_documents": data.scanned_docs,
        "scan_skipped": data.scan_skipped,
        "funnel_documents": dict(data.funnel()),
        "funnel_tokens_estimated": dict(data.token_funnel()),
        "dropped_by_stage": {s: data.dropped_by_stage[s] for s in ordered_stages(data.dropped_by_stage)},
        "dropped_by_reason": dict(data.dropped_by_reason.most_common()),
        "dead_letters": dict(data.dead_letters),
        "languages_kept": dict(data.languages_kept.most_common()),
        "languages_identified_by_report": data.languages_identified,
        "languages_dropped": dict(data.languages_dropped.most_common()),
        "duplicates": {
            "dedup_drop_rate": data.dedup_drop_rate(),
            "corpus_exact_duplicates": data.corpus_exact_duplicates,
            "corpus_near_duplicates": data.corpus_near_duplicates,
            "corpus_duplicate_rate": data.corpus_duplicate_rate(),
        },
        "pii_scrubbed": dict(data.pii_scrubbed),
        "pii_residual": dict(data.residual_pii),
        "pii_residual_per_million_tokens": data.residual_pii_per_million_tokens(),
        "hygiene_flags": dict(data.hygiene_flags),
        "cleanliness": data.cleanliness(),
        "top_domains_kept": _top(data.kept_domains),
        "top_domains_dropped": _top(data.dropped_domains),
        "signals_kept": dict(data.signals_kept),
        "signals_dropped": dict(data.signals_dropped),
        "kept_without_signals": data.kept_without_signals,
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "seconds": round(seconds, 3),
    }


def build_report(
    shards: Path,
    ledger_dir: Path | None,
    cfg: PipelineConfig,
    scan_text: bool = True,
    *,
    title: str = "Corpus scorecard",
    on_shard: Callable[[int, int], None] | None = None,
) -> ReportResult:
    """Collect, scan (``scan_text``), check the gates of ``cfg.report`` and render the page."""
    started = time.perf_counter()
    scanner = CorpusScanner(cfg) if scan_text else None
    data = collect(
        shards, ledger_dir, scanner=scanner, samples_per_reason=cfg.report.samples_per_reason, on_shard=on_shard
    )
    redactor = scanner or CorpusScanner(cfg)
    _redact_samples(data.samples_kept, redactor)
    for bucket in data.samples_dropped.values():
        _redact_samples(bucket, redactor)
    gates = evaluate(data, cfg.report)
    lin = lineage(data, cfg)
    html = render(data, gates, thresholds=_thresholds(data, cfg), lineage=lin, title=title)
    seconds = time.perf_counter() - started
    log.info("report of %d documents built in %.1f s", data.kept_docs, seconds)
    return ReportResult(html, summarize(data, gates, lin, seconds), data, gates, seconds)
