"""The ``[report]`` config section: release-gate thresholds of ``headrace report --gate``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateConfig:
    """Each threshold can be set in the ``[report]`` section (or ``HEADRACE_REPORT__<KEY>``); a negative
    value switches its gate off. See ``docs/report.md`` for what each one measures."""

    target_languages: tuple[str, ...] = ("en",)
    max_corpus_duplicate_rate: float = 0.01  # exact + near duplicates left among the kept documents
    max_non_target_language_share: float = 0.05  # kept documents not in target_languages
    max_residual_pii_per_million_tokens: float = 25.0  # PII the detector still finds in the shards' text
    min_cleanliness: float = 0.98  # share of kept documents the hygiene rules do not flag
    max_dead_letter_share: float = 0.01  # dead letters / (documents in + dead letters)
    min_documents: int = 1
    samples_per_reason: int = 3  # dropped documents shown per stage/reason
