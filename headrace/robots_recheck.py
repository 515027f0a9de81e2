"""Retroactive opt-out: re-evaluate the robots and opt-out signals stored with each document of some
domains against the policy in force now, and turn what is now opted out into takedown requests.

The signals were recorded when each page was fetched (``DocEntry.signals`` in the shard manifests), so
a stricter policy (say, honouring ``noimageai``, or another AI crawler's robots group) can be applied
to documents already in the corpus without re-crawling them. Documents replayed from archives carry no
crawl-time signals and are reported as not re-evaluable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from compliance.takedown.match import registered_domain
from compliance.takedown.request import TakedownRequest, make_request, normalise_selector
from consumers.shards.reader import list_shards
from headrace.config import PipelineConfig
from streams.ids import url_host

log = logging.getLogger(__name__)

REQUESTER = "headrace robots-recheck"


def recheck_requests(shards_dir: Path, domains: Sequence[str], config: PipelineConfig) -> list[TakedownRequest]:
    policy = config.crawl.policy
    wanted = {registered_domain(normalise_selector("domain", d).value) for d in domains}
    by_domain: dict[str, list[tuple[str, str]]] = {}
    unevaluable = 0
    for shard in list_shards(shards_dir):
        for entry in shard.manifest.docs:
            host = url_host(entry.url)
            dom = registered_domain(host) if host else ""
            if dom not in wanted:
                continue
            signals = [s for s in entry.signals if s.kind != "policy"]
            if not signals:
                unevaluable += 1
                continue
            reasons = policy.reasons(signals)
            if reasons:
                by_domain.setdefault(dom, []).append((entry.doc_id, "; ".join(reasons)))
    if unevaluable:
        log.warning(
            "%d documents of %s carry no crawl-time signals (replayed archives) and were not re-evaluated",
            unevaluable,
            ", ".join(sorted(wanted)),
        )
    requests = []
    for dom, docs in sorted(by_domain.items()):
        reasons = sorted({r for _, r in docs})
        requests.append(
            make_request(
                [("doc_id", d) for d, _ in docs],
                reason=f"retroactive opt-out under {policy.name}: {' | '.join(reasons)[:1500]}",
                requester=REQUESTER,
                ticket=f"robots-recheck:{dom}",
            )
        )
    return requests
