"""Release gates: thresholds a corpus must meet before it is released (``headrace report --gate``)."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.report.collect import ReportData


@dataclass(frozen=True)
class GateConfig:
    """Each threshold can be set in the ``[report]`` config section; a negative value disables it."""

    target_languages: tuple[str, ...] = ("en",)
    max_corpus_duplicate_rate: float = 0.01  # exact + near duplicates left in the kept documents
    max_non_target_language_share: float = 0.05
    max_residual_pii_per_million_tokens: float = 25.0  # PII still found in the shards' text
    min_cleanliness: float = 0.98  # share of documents with no hygiene flag (markup, control chars, ...)
    max_dead_letter_share: float = 0.01  # dead letters / documents in
    min_documents: int = 1


@dataclass(frozen=True)
class GateResult:
    metric: str
    value: float
    threshold: float
    comparison: str  # "<=" or ">="
    passed: bool

    @property
    def message(self) -> str:
        state = "ok" if self.passed else "FAILED"
        return f"{self.metric} = {self.value:.4g} (must be {self.comparison} {self.threshold:g}): {state}"


def evaluate(data: ReportData, cfg: GateConfig) -> list[GateResult]:
    checks: list[tuple[str, float, float, str]] = [
        ("corpus_duplicate_rate", data.corpus_duplicate_rate(), cfg.max_corpus_duplicate_rate, "<="),
        (
            "non_target_language_share",
            data.non_target_share(cfg.target_languages),
            cfg.max_non_target_language_share,
            "<=",
        ),
        (
            "residual_pii_per_million_tokens",
            data.residual_pii_per_million_tokens(),
            cfg.max_residual_pii_per_million_tokens,
            "<=",
        ),
        ("cleanliness", data.cleanliness(), cfg.min_cleanliness, ">="),
        (
            "dead_letter_share",
            sum(data.dead_letters.values()) / data.docs_in if data.docs_in else 0.0,
            cfg.max_dead_letter_share,
            "<=",
        ),
        ("documents", float(data.kept_docs), float(cfg.min_documents), ">="),
    ]
    results = []
    for metric, value, threshold, cmp in checks:
        if threshold < 0:
            continue
        passed = value <= threshold if cmp == "<=" else value >= threshold
        results.append(GateResult(metric, value, threshold, cmp, passed))
    return results
