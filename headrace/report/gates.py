"""Release gates: thresholds a corpus must meet before it is released (``headrace report --gate``)."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.report.collect import ReportData
from headrace.report.config import GateConfig

__all__ = ["GateConfig", "GateResult", "evaluate"]


@dataclass(frozen=True)
class GateResult:
    metric: str
    value: float
    threshold: float
    comparison: str  # "<=" or ">="
    passed: bool
    measured: bool = True  # False: the corpus scan did not run, so the value is unknown (and fails)

    @property
    def message(self) -> str:
        if not self.measured:
            return f"{self.metric} not measured (the text scan did not run): FAILED"
        state = "ok" if self.passed else "FAILED"
        return f"{self.metric} = {self.value:.4g} (must be {self.comparison} {self.threshold:g}): {state}"

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "passed": self.passed,
            "measured": self.measured,
        }


def evaluate(data: ReportData, cfg: GateConfig) -> list[GateResult]:
    """Check every enabled gate. Measures that need the text scan fail as "not measured" without it:
    a release job must not pass a corpus it did not look at."""
    scanned = data.scanned_docs > 0 or data.kept_docs == 0
    checks: list[tuple[str, float, float, str, bool]] = [
        ("corpus_duplicate_rate", data.corpus_duplicate_rate(), cfg.max_corpus_duplicate_rate, "<=", True),
        (
            "non_target_language_share",
            data.non_target_share(cfg.target_languages),
            cfg.max_non_target_language_share,
            "<=",
            True,
        ),
        (
            "residual_pii_per_million_tokens",
            data.residual_pii_per_million_tokens(),
            cfg.max_residual_pii_per_million_tokens,
            "<=",
            scanned,
        ),
        ("cleanliness", data.cleanliness(), cfg.min_cleanliness, ">=", scanned),
        ("dead_letter_share", data.dead_letter_share(), cfg.max_dead_letter_share, "<=", True),
        ("documents", float(data.kept_docs), float(cfg.min_documents), ">=", True),
    ]
    results = []
    for metric, value, threshold, cmp, measured in checks:
        if threshold < 0:
            continue
        ok = value <= threshold if cmp == "<=" else value >= threshold
        results.append(GateResult(metric, value, threshold, cmp, ok and measured, measured))
    return results
