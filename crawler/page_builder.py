"""Turning a Scrapy response (or a refused request) into a :class:`streams.records.Page`.

Every page carries, as ``signals``: the robots decision (rule, robots.txt fetch time and status), each
opt-out signal found (host-level ones from the middleware, page-level ones from headers and meta), and
the policy's decision (``kind="policy"``). A page the policy opts out is still published — with its
body withheld (``truncated="withheld:opted-out"``) — so the processing stage drops it into the decision
ledger with its reason and no opted-out content is stored downstream (docs/crawler.md).
"""

from __future__ import annotations

import logging
from typing import Any

from crawler.context import CrawlContext
from crawler.optout import header_values, response_signals
from crawler.robots_middleware import SIGNALS_META, PolicyRefusal
from crawler.warc import KEPT_HEADERS
from streams.ids import page_id
from streams.records import Lineage, Page, Signal

log = logging.getLogger(__name__)

WITHHELD = "withheld:opted-out"
NOT_FETCHED = "not-fetched"


def kept_headers(response: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in response.headers.items():
        lname = name.decode("latin-1").lower()
        if lname in KEPT_HEADERS:
            out[lname] = [v.decode("latin-1") for v in values]
    return out


def build_page(response: Any, ctx: CrawlContext) -> Page:
    config = ctx.config
    fetched_at = ctx.now_iso()
    headers = kept_headers(response)
    content_type = (header_values(headers, "content-type") or [""])[0]
    raw = response.body
    body = raw[: config.max_page_bytes]
    truncated = "length" if len(raw) > config.max_page_bytes or "download_stopped" in response.flags else ""
    signals: list[Signal] = list(response.request.meta.get(SIGNALS_META, ()) if response.request is not None else ())
    signals += response_signals(
        response.url, headers, body, content_type, ctx.token, config.policy.ai_agents, fetched_at
    )
    decision = config.policy.decide(signals, at=fetched_at)
    signals.append(decision)
    opted_out = decision.verdict == "deny"
    lineage = Lineage(source="crawl", job=ctx.job_id, crawl=ctx.crawl_name or None)
    record_id: str | None = None
    if ctx.warc is not None and (not opted_out or config.warc_include_opted_out):
        loc = ctx.warc.write_response(response, fetched_at, body=body, truncated=truncated)
        record_id = loc.record_id
        lineage = Lineage(
            source="crawl",
            job=ctx.job_id,
            crawl=ctx.crawl_name or None,
            warc_path=loc.path,
            offset=loc.offset,
            length=loc.length,
            record_id=loc.record_id,
            warc_date=loc.date,
        )
    if opted_out:
        ctx.inc("pages/opted-out")
        log.info("opted out: %s (%s)", response.url, decision.detail)
        body, truncated = b"", WITHHELD
    else:
        ctx.inc("pages/kept")
    return Page(
        page_id=page_id(response.url, record_id, fetched_at),
        url=response.url,
        fetched_at=fetched_at,
        status=response.status,
        content_type=content_type,
        headers=headers,
        body=body,
        truncated=truncated,
        lineage=lineage,
        signals=tuple(signals),
    )


def refused_page(refusal: PolicyRefusal, ctx: CrawlContext) -> Page:
    """A URL we did not fetch, recorded with the signals that kept us away (status 0, no body)."""
    at = ctx.now_iso()
    signals = list(refusal.signals)
    signals.append(ctx.config.policy.decide(signals, at=at))
    return Page(
        page_id=page_id(refusal.url, None, at),
        url=refusal.url,
        fetched_at=at,
        status=0,
        truncated=NOT_FETCHED,
        lineage=Lineage(source="crawl", job=ctx.job_id, crawl=ctx.crawl_name or None),
        signals=tuple(signals),
    )
