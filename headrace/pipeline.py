"""Builds the stage groups from a :class:`headrace.config.PipelineConfig`.

The same builders serve the embedded runner and the per-group Kafka consumers, so ``headrace run``
and ``headrace replay`` + ``headrace consume`` process documents identically.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from compliance.blocklist import Blocklist
from consumers.decontam import Decontaminator
from consumers.dedup.stage import DedupStage, open_index
from consumers.extract import Extractor
from consumers.extract_pool import ExtractPool
from consumers.handlers import DocumentHandler, ProcessHandler
from consumers.language import LanguageFilter
from consumers.pii import PiiStage
from consumers.quality.stages import quality_stages
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
    """Stages after extraction, in order: language ID, the quality filters (datatrove's FineWeb order,
    then the hygiene rules), decontamination (when benchmark files are configured), PII.

    Filters run before PII scrubbing so they judge the text datatrove's filters would judge, and so
    the (costlier) scrubbing only sees documents that are kept.
    """
    stages: list[Stage] = []
    if config.language.enabled:
        stages.append(LanguageFilter(config.language))
    stages.extend(quality_stages(config.quality))
    if config.decontam.enabled and config.decontam.paths:
        stages.append(Decontaminator(config.decontam))
    if config.pii.enabled:
        stages.append(PiiStage(config.pii))
    return stages


def build_extractor(config: PipelineConfig) -> Extractor | ExtractPool:
    """In process when ``extract.workers`` is 0, else a pool of worker processes with time limits."""
    if config.extract.workers > 0:
        return ExtractPool(config.extract, pipeline=pipeline_id(config))
    return Extractor(config.extract, pipeline=pipeline_id(config))


def dedup_stages(
    config: PipelineConfig, directory: str | Path | None = None, blocklist: Blocklist | None = None
) -> list[Stage]:
    """Exact + near dedup against the configured index (``directory`` overrides ``dedup.directory``);
    ``blocklist`` supplies the near-duplicate rules of takedowns and the documents to forget."""
    if not config.dedup.enabled:
        return []
    return [DedupStage(open_index(config.dedup, directory), config.dedup, blocklist=blocklist)]


def build_process_handler(config: PipelineConfig, stats: Stats, blocklist: Blocklist) -> ProcessHandler:
    return ProcessHandler(build_extractor(config), process_stages(config), topics_for(config), stats, blocklist)


def build_dedup_handler(
    config: PipelineConfig,
    stats: Stats,
    dedup_dir: str | Path | None = None,
    blocklist: Blocklist | None = None,
) -> DocumentHandler:
    topics = topics_for(config)
    return DocumentHandler("dedup", dedup_stages(config, dedup_dir, blocklist), topics.docs_unique, topics, stats)
