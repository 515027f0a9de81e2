"""Topic names and the configs each topic needs.

Names can be prefixed (``HEADRACE_TOPIC_PREFIX`` / config ``bus.topic_prefix``) so several pipelines
can share one cluster. ``max_message_bytes`` is explicit because raw HTML exceeds Kafka's 1 MiB default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAGES_RAW = "pages.raw"
DOCS_CLEAN = "docs.clean"
DOCS_UNIQUE = "docs.unique"
DOCS_REJECTED = "docs.rejected"
DLQ = "dlq"
BLOCKLIST = "compliance.blocklist"
REPLAY_PROGRESS = "replay.progress"

#: Largest message we produce: the 5 MiB page cap plus headers, msgpack framing and slack.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""


def default_topics(partitions: int = 4, replication_min_isr: int = 1) -> list[TopicSpec]:
    """The topics of one pipeline. ``replication_min_isr`` is 2 in production (3 replicas)."""
    common = {
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.insync.replicas": str(replication_min_isr),
        "unclean.leader.election.enable": "false",
    }
    return [
        TopicSpec(PAGES_RAW, partitions, dict(common), "raw pages from replay and crawl; key = url hash"),
        TopicSpec(DOCS_CLEAN, partitions, dict(common), "processed documents; key = exact-dedup key"),
        TopicSpec(DOCS_UNIQUE, partitions, dict(common), "deduplicated documents; key = doc_id"),
        TopicSpec(DOCS_REJECTED, partitions, dict(common), "decision ledger: every drop with its reason"),
        TopicSpec(DLQ, 1, dict(common), "undecodable or poison messages with the reason"),
        TopicSpec(
            BLOCKLIST,
            1,
            {**common, "cleanup.policy": "compact"},
            "compliance block rules; compacted, key = rule id",
        ),
        TopicSpec(
            REPLAY_PROGRESS,
            1,
            {**common, "cleanup.policy": "compact"},
            "replay checkpoints, written in the same transaction as the pages; key = input file",
        ),
    ]


def topic_name(base: str, prefix: str = "") -> str:
    return f"{prefix}{base}" if prefix else base


@dataclass(frozen=True)
class Topics:
    """The concrete topic names of one pipeline (with its prefix applied)."""

    prefix: str = ""

    @property
    def pages_raw(self) -> str:
        return topic_name(PAGES_RAW, self.prefix)

    @property
    def docs_clean(self) -> str:
        return topic_name(DOCS_CLEAN, self.prefix)

    @property
    def docs_unique(self) -> str:
        return topic_name(DOCS_UNIQUE, self.prefix)

    @property
    def docs_rejected(self) -> str:
        return topic_name(DOCS_REJECTED, self.prefix)

    @property
    def dlq(self) -> str:
        return topic_name(DLQ, self.prefix)

    @property
    def blocklist(self) -> str:
        return topic_name(BLOCKLIST, self.prefix)

    @property
    def replay_progress(self) -> str:
        return topic_name(REPLAY_PROGRESS, self.prefix)

    def specs(self, partitions: int = 4, min_isr: int = 1) -> list[TopicSpec]:
        return [
            TopicSpec(topic_name(s.name, self.prefix), s.partitions, s.configs, s.description)
            for s in default_topics(partitions, min_isr)
        ]
