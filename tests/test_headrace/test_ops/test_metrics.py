"""Stats counters and timers as Prometheus families; the text format is parsed back."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.stats import Stats
from headrace.ops.config import OpsConfig
from headrace.ops.health import Health
from headrace.ops.metrics import MAX_SERIES_PER_FAMILY, OTHER, build_registry, classify
from streams.bus import TopicPartition


def scrape(stats: Stats, health: Health | None = None) -> dict[str, list]:
    health = health or Health(OpsConfig())
    registry, observer = build_registry(stats, health, "process", {"version": "0.1.0"})
    stats.observe(observer)
    return registry, observer


def samples(registry) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_classify_maps_the_key_conventions() -> None:
    assert classify("quality/drop/gopher_short_doc")[0] == "headrace_drops"
    assert classify("quality/drop/gopher_short_doc")[2] == {"stage": "quality", "reason": "gopher_short_doc"}
    assert classify("process/in") == ("headrace_docs_in", classify("process/in")[1], {"stage": "process"})
    assert classify("process/dlq/undecodable")[2] == {"stage": "process", "reason": "undecodable"}
    assert classify("shards/sealed")[0] == "headrace_shards_sealed"
    assert classify("pii/hit/EMAIL")[2] == {"entity": "EMAIL"}
    assert classify("language/lang/en")[2] == {"language": "en"}
    assert classify("shards/skip/already-sealed")[0] == "headrace_stage_events"


def test_counters_timers_and_histograms_are_exported() -> None:
    stats = Stats()
    registry, _ = scrape(stats)
    stats.inc("process/in", 7)
    stats.inc("process/out", 5)
    stats.inc("extract/drop/empty-extraction", 2)
    stats.inc("shards/sealed")
    stats.inc("language/lang/de", 3)
    with stats.timer("process/batch"):
        pass
    stats.add_time("process/batch", 2.0)
    got = samples(registry)
    assert got["headrace_docs_in_total"] == [({"stage": "process"}, 7.0)]
    assert got["headrace_docs_out_total"] == [({"stage": "process"}, 5.0)]
    assert got["headrace_drops_total"] == [({"stage": "extract", "reason": "empty-extraction"}, 2.0)]
    assert got["headrace_shards_sealed_total"] == [({}, 1.0)]
    assert got["headrace_documents_by_language_total"] == [({"language": "de"}, 3.0)]
    counts = {tuple(sorted(lb.items())): v for lb, v in got["headrace_stage_duration_seconds_count"]}
    assert counts[(("timer", "process/batch"),)] == 2.0
    buckets = {lb["le"]: v for lb, v in got["headrace_stage_duration_seconds_bucket"] if lb["timer"] == "process/batch"}
    assert buckets["1.0"] == 1.0 and buckets["2.5"] == 2.0  # one fast batch, one of 2 s
    assert got["headrace_build_info"] == [({"version": "0.1.0"}, 1.0)]
    assert got["headrace_live"] == [({}, 1.0)]
    assert got["headrace_ready"] == [({}, 0.0)]  # the loop has not started


def test_lag_gauge_per_partition() -> None:
    stats = Stats()
    health = Health(OpsConfig())
    health.set_lag({TopicPartition("pages.raw", 1): 42})
    registry, _ = scrape(stats, health)
    got = samples(registry)
    assert got["headrace_consumer_lag"] == [({"group": "process", "topic": "pages.raw", "partition": "1"}, 42.0)]


def test_label_explosion_is_folded_into_other() -> None:
    stats = Stats()
    registry, _ = scrape(stats)
    for i in range(MAX_SERIES_PER_FAMILY + 50):
        stats.inc(f"extract/drop/extract-error:{i}")
    series = samples(registry)["headrace_drops_total"]
    assert len(series) == MAX_SERIES_PER_FAMILY + 1
    other = [v for lb, v in series if lb["reason"] == OTHER]
    assert other == [50.0]
    assert sum(v for _, v in series) == MAX_SERIES_PER_FAMILY + 50
