"""Prometheus metrics over :class:`consumers.stats.Stats`, the loop's health and consumer lag.

The pipeline counts into ``Stats`` with keys ``stage/event/detail``. Rather than sprinkling metric
objects through the stages, a custom collector turns a snapshot of those counters into metric
families at scrape time, so every counter a stage adds is exported without code here:

=========================== ============================================ ==================================
stats key                   metric                                       labels
=========================== ============================================ ==================================
``S/in``, ``S/out``         ``headrace_docs_in_total``, ``..._out_total`` stage
``S/drop/REASON``           ``headrace_drops_total``                     stage, reason
``S/dlq/REASON``            ``headrace_dead_letters_total``              stage, reason
``G/committed``             ``headrace_committed_messages_total``        stage (the group)
``shards/sealed``           ``headrace_shards_sealed_total``
``shards/docs|tokens``      ``headrace_shard_documents_total``, ``headrace_shard_tokens_total``
``pii/hit/ENTITY``          ``headrace_pii_hits_total``                  entity
``language/lang/CODE``      ``headrace_documents_by_language_total``     language
anything else               ``headrace_stage_events_total``              stage, event, detail
timers (``Stats.timer``)    ``headrace_stage_seconds_total`` + the histogram ``headrace_stage_duration_seconds``
=========================== ============================================ ==================================
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.stats import Stats
from headrace.ops.health import Health
from headrace.ops.lag import LagScrapeStats

#: Series per family beyond which label values are folded into ``_other`` (a hostile page must not be
#: able to blow up the metrics store through an exception message used as a reason).
MAX_SERIES_PER_FAMILY = 300
OTHER = "_other"

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

_SPECIFIC: dict[tuple[str, str], tuple[str, str]] = {
    ("shards", "sealed"): ("headrace_shards_sealed", "Shards sealed (manifest published)."),
    ("shards", "docs"): ("headrace_shard_documents", "Documents written into shards."),
    ("shards", "tokens"): ("headrace_shard_tokens", "Tokens written into shards (EOS included)."),
}


def classify(key: str) -> tuple[str, str, dict[str, str]]:
    """``stage/event/detail`` -> (metric name, help, labels)."""
    parts = key.split("/", 2)
    stage = parts[0]
    event = parts[1] if len(parts) > 1 else ""
    detail = parts[2] if len(parts) > 2 else ""
    if (stage, event) in _SPECIFIC and not detail:
        name, doc = _SPECIFIC[(stage, event)]
        return name, doc, {}
    if event == "drop":
        return "headrace_drops", "Documents or pages dropped, by stage and reason.", {"stage": stage, "reason": detail}
    if event == "dlq":
        return "headrace_dead_letters", "Messages sent to the dead-letter topic.", {"stage": stage, "reason": detail}
    if event in ("in", "out") and not detail:
        return (
            f"headrace_docs_{event}",
            f"Documents {'into' if event == 'in' else 'out of'} a stage group.",
            {"stage": stage},
        )
    if event == "committed" and not detail:
        return "headrace_committed_messages", "Input messages whose batch was committed.", {"stage": stage}
    if stage == "pii" and event == "hit":
        return "headrace_pii_hits", "PII spans found, by entity type.", {"entity": detail}
    if stage == "language" and event == "lang":
        return "headrace_documents_by_language", "Documents by detected language.", {"language": detail}
    return (
        "headrace_stage_events",
        "Other pipeline counters (stage/event/detail).",
        {
            "stage": stage,
            "event": event,
            "detail": detail,
        },
    )


class _Families:
    """Accumulates samples per family, folding excess label sets into ``_other``."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self.docs: dict[str, str] = {}

    def add(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        series = self.samples[name]
        key = tuple(sorted(labels.items()))
        if key not in series and len(series) >= MAX_SERIES_PER_FAMILY:
            key = tuple((k, OTHER if k in ("reason", "detail", "entity", "language") else v) for k, v in key)
        series[key] = series.get(key, 0.0) + value
        self.docs[name] = doc

    def counters(self) -> Iterator[Metric]:
        for name, series in sorted(self.samples.items()):
            label_names = [k for k, _ in next(iter(series))] if series else []
            fam = CounterMetricFamily(name, self.docs[name], labels=label_names)
            for key, value in sorted(series.items()):
                fam.add_metric([v for _, v in key], value)
            yield fam


class PipelineCollector(Collector):
    """Exports a ``Stats`` snapshot, the loop's health and the last measured lag at scrape time."""

    def __init__(self, stats: Stats, health: Health, group: str, info: dict[str, str]) -> None:
        self.stats = stats
        self.health = health
        self.group = group
        self.info = info

    def collect(self) -> Iterable[Metric]:
        snap = self.stats.snapshot()
        fams = _Families()
        for key, value in snap["counts"].items():
            name, doc, labels = classify(key)
            fams.add(name, doc, labels, float(value))
        yield from fams.counters()

        seconds = CounterMetricFamily(
            "headrace_stage_seconds", "Seconds spent per timer (Stats.timer keys).", labels=["timer"]
        )
        for key, value in snap["seconds"].items():
            seconds.add_metric([key], value)
        yield seconds

        info = InfoMetricFamily("headrace_build", "Version, stage group and member of this process.")
        info.add_metric([], self.info)
        yield info

        hb = self.health.heartbeat
        live, ready = self.health.live(), self.health.ready()
        yield _gauge("headrace_live", "1 when /healthz would answer 200.", float(live.ok))
        yield _gauge("headrace_ready", "1 when /readyz would answer 200.", float(ready.ok))
        yield _gauge("headrace_loop_phase_age_seconds", "Seconds the poll loop has spent in its phase.", hb.age())
        phase = GaugeMetricFamily("headrace_loop_phase", "The poll loop's phase (1 = current).", labels=["phase"])
        phase.add_metric([hb.phase], 1.0)
        yield phase
        iters = CounterMetricFamily("headrace_loop_iterations", "Poll loop iterations.")
        iters.add_metric([], float(hb.iterations))
        yield iters
        yield _gauge("headrace_assigned_partitions", "Partitions this member holds.", float(len(hb.assigned)))
        yield _gauge("headrace_shutting_down", "1 after SIGTERM.", float(self.health.stopping.is_set()))

        lag = self.health.lag()
        if lag is not None:
            fam = GaugeMetricFamily(
                "headrace_consumer_lag",
                "Messages behind the end of the partition (committed offset), this member's partitions.",
                labels=["group", "topic", "partition"],
            )
            for tp, value in sorted(lag.items()):
                fam.add_metric([self.group, tp.topic, str(tp.partition)], float(value))
            yield fam


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, doc)
    fam.add_metric([], value)
    return fam


class LatencyHistograms:
    """``headrace_stage_duration_seconds{timer}``, fed by ``Stats.observe``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "headrace_stage_duration_seconds",
            "Duration of one timed step (a batch through a stage group, extraction of a batch, a seal).",
            ["timer"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[str, Any] = {}

    def __call__(self, key: str, seconds: float) -> None:
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= MAX_SERIES_PER_FAMILY:
                key = OTHER
            child = self._children.setdefault(key, self.histogram.labels(timer=key))
        child.observe(seconds)


class LagMonitorCollector(Collector):
    def __init__(self, scrape: LagScrapeStats) -> None:
        self.scrape = scrape

    def collect(self) -> Iterable[Metric]:
        errors = CounterMetricFamily("headrace_lag_errors", "Failed consumer-lag measurements.")
        errors.add_metric([], float(self.scrape.errors))
        yield errors
        yield _gauge(
            "headrace_lag_updated_timestamp_seconds",
            "Unix time of the last successful lag measurement (0: never).",
            self.scrape.last_success,
        )


def build_registry(
    stats: Stats,
    health: Health,
    group: str,
    info: dict[str, str],
    lag_scrape: LagScrapeStats | None = None,
) -> tuple[CollectorRegistry, Callable[[str, float], None]]:
    """A fresh registry (not the global one, so tests and embedded use do not collide) and the
    observer to register with ``stats.observe``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(stats, health, group, info))
    if lag_scrape is not None:
        registry.register(LagMonitorCollector(lag_scrape))
    return registry, LatencyHistograms(registry)
