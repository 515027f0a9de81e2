"""Builds the stage groups from a :class:`headrace.config.PipelineConfig`.

The same builders serve the embedded runner and the per-group Kafka consumers, so ``headrace run``
and ``headrace replay`` + ``headrace consume`` process documents identically.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from compliance.blocklist import Blocklist
from consumers.dedup.stage import DedupStage, open_index
from consumers.extract import Extractor
from consumers.handlers import DocumentHandler, ProcessHandler
from consumers.stage import Stage
from headrace.config import PipelineConfig
from streams.stats import Stats
from streams.topics import Topics

GROUPS = ("process", "dedup", "shards", "ledger")


def headrace_version() -> str:
    try:
        return version("headrace")
    except PackageNotFoundError:
        return "0+unknown"


def pipeline_id(config: PipelineConfig) -> str:
    return f"headrace-{headrace_version()}+cfg.{config.digest()}"


def topics_for(config: PipelineConfig) -> Topics:
    return Topics(prefix=config.bus.topic_prefix)


def process_stages(config: PipelineConfig) -> list[Stage]:
    """Stages after extraction: PII, language, quality, decontamination (later issues fill these)."""
    return []


def dedup_stages(config: PipelineConfig, directory: str | Path | None = None) -> list[Stage]:
    """Exact + near dedup against the configured index (``directory`` overrides ``dedup.directory``)."""
    if not config.dedup.enabled:
        return []
    return [DedupStage(open_index(config.dedup, directory), config.dedup)]


def build_process_handler(config: PipelineConfig, stats: Stats, blocklist: Blocklist) -> ProcessHandler:
    extractor = Extractor(config.extract, pipeline=pipeline_id(config))
    return ProcessHandler(extractor, process_stages(config), topics_for(config), stats, blocklist)


def build_dedup_handler(config: PipelineConfig, stats: Stats, dedup_dir: str | Path | None = None) -> DocumentHandler:
    topics = topics_for(config)
    return DocumentHandler("dedup", dedup_stages(config, dedup_dir), topics.docs_unique, topics, stats)
