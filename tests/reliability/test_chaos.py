"""The chaos run, small enough for ``make test`` (``make chaos`` runs the big one).

Every fault kind happens at least once (SIGKILL and SIGTERM of consumers, replay killed, a forced
rebalance, a paused member that comes back as a zombie, a stopped broker, a full shard volume, a
broker restart), and afterwards every page is sealed exactly once or ledgered with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from reliability import chaos

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.slow]


def test_chaos_small_is_exactly_once(kafka_local_broker: Any, redis_url: str, tmp_path: Path) -> None:
    args = chaos.parser().parse_args(
        [
            "--out",
            str(tmp_path / "chaos"),
            "--pages",
            os.environ.get("HEADRACE_CHAOS_SMALL_PAGES", "1200"),
            "--files",
            "8",
            "--seconds",
            os.environ.get("HEADRACE_CHAOS_SMALL_SECONDS", "75"),
            "--every-s",
            "3",
            "--broker-restarts",
            "1",
        ]
    )
    result = chaos.run(args, broker=kafka_local_broker, redis_url=redis_url)
    v = result["verdict"]
    assert v["lost"] == 0 and v["duplicated"] == 0 and v["unexpected"] == 0, v
    assert v["sealed"] + v["quarantined"] == v["documents_in"]
    # Exactly the planted duplicates were rejected by dedup, each with its reason.
    planted = chaos.planted_duplicates(args.pages, args.files, args.dup_every)
    assert v["quarantine_reasons"] == {"dedup:exact-duplicate": planted}, v["quarantine_reasons"]
    assert result["shards_verify_ok"], result["shards_verify_problems"]
    assert result["settled"]
    expected = set(chaos.EVENTS) - ({"disk-full"} if result["disk_full"] != "tmpfs" else set())
    assert expected <= set(result["events"]), result["events"]
    assert result["pass"]
