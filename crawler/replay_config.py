"""Settings of WARC replay (config section ``[replay]``)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ReplayConfig:
    #: Page bodies are cut here and marked ``truncated="length"`` (Common Crawl's planned 5 MiB cap).
    max_payload_bytes: int = 5 * MIB
    #: Decoded bytes read from one record (WARC gzip member or HTTP Content-Encoding) before the rest is
    #: skipped without decompressing it; bounds the work a decompression bomb can cause.
    max_record_bytes: int = 64 * MIB
    #: WARC or HTTP header block larger than this is damage, not a record.
    max_header_bytes: int = 256 * 1024
    #: Wall-clock limit for reading one record; a record past it is quarantined and skipped.
    record_time_limit_s: float = 30.0
    #: Prefix joined to relative entries of ``warc.paths`` manifests (a URL or folder); required when
    #: a manifest has relative entries, since no host is assumed.
    prefix: str = ""
    #: A transaction (pages + checkpoints) is committed after this many pages ... A Kafka commit costs
    #: about 0.1 s of waiting, so small transactions cap throughput; a crash re-reads at most this much.
    checkpoint_pages: int = 2000
    #: ... or this many records, or this many seconds, whichever comes first.
    checkpoint_records: int = 20000
    checkpoint_seconds: float = 10.0
    #: Base of the Kafka transactional id; the shard is appended (``-3-of-8``) so a restarted worker
    #: fences its dead predecessor and concurrent workers never fence each other.
    transactional_id: str = "headrace-replay"
    #: Network sources (http(s), s3): socket timeout and reconnect attempts per file.
    network_timeout_s: float = 60.0
    network_retries: int = 3
