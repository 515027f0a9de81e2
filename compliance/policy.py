"""The opt-out policy: turns the provenance signals of one page into a keep/drop decision.

Signals are collected by the crawler (``crawler.optout``, ``crawler.robots``) and kept on the page; the
policy reads them and records its own decision as ``Signal(kind="policy")`` next to them, so the ledger
and the shard manifests show both the evidence and the verdict. A robots.txt deny is never optional.
Which opt-out conventions count is configuration (``[crawl.policy]``); defaults honour all of them
except ``noimageai`` (we collect text, not images).

The processing stage drops any page whose policy verdict is ``deny`` (:func:`opted_out`), so a page
opted out at crawl time cannot reach the shards even if a producer published it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from streams.records import Signal

#: Training crawlers whose own robots.txt groups we read (the Apertus opt-out list).
DEFAULT_AI_AGENTS: tuple[str, ...] = (
    "AI2Bot",
    "Applebot-Extended",
    "Bytespider",
    "CCBot",
    "ClaudeBot",
    "cohere-training-data-crawler",
    "Diffbot",
    "Google-Extended",
    "GPTBot",
    "Meta-ExternalAgent",
    "PanguBot",
)

#: TDMRep processing order: each later source supersedes the earlier ones.
TDMREP_ORDER = {"tdmrep.json": 0, "header:tdm-reservation": 1, "meta:tdm-reservation": 2}

POLICY_KIND = "policy"


@dataclass(frozen=True)
class OptOutPolicy:
    ai_agents: tuple[str, ...] = DEFAULT_AI_AGENTS
    #: A Disallow in a listed AI agent's own robots.txt group (or ``agent: noai``) opts the page out.
    ai_agent_groups: bool = True
    noai: bool = True
    noimageai: bool = False
    tdmrep: bool = True
    content_usage: bool = True
    content_signal: bool = True
    ai_txt: bool = True

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:8]

    def reasons(self, signals: Sequence[Signal]) -> list[str]:
        """Why the page is opted out (empty: keep). One short ``kind(source)`` string per reason."""
        out: list[str] = []
        for s in signals:
            if s.kind == "robots" and s.verdict == "deny":
                out.append(f"robots({s.detail.split(';', 1)[0]})")
            elif s.kind == "ai-robots" and s.verdict == "deny" and self.ai_agent_groups:
                out.append(f"ai-robots({s.detail.split(';', 1)[0]})")
            elif s.kind in ("noai", "noimageai") and s.verdict.startswith("deny"):
                enabled = self.noai if s.kind == "noai" else self.noimageai
                if enabled and (s.verdict == "deny" or self.ai_agent_groups):
                    out.append(f"{s.kind}({s.source})")
            elif s.kind == "content-signal" and s.verdict == "deny" and self.content_signal:
                out.append(f"content-signal({_short_source(s.source)})")
            elif s.kind == "ai-txt" and s.verdict == "deny" and self.ai_txt:
                out.append("ai-txt")
        if self.content_usage:
            usage = [s for s in signals if s.kind == "content-usage"]
            if any(s.verdict == "deny" for s in usage):
                out.append(
                    "content-usage(" + ",".join(_short_source(s.source) for s in usage if s.verdict == "deny") + ")"
                )
        if self.tdmrep:
            effective = tdmrep_effective(signals)
            if effective is not None and effective.verdict == "reserved":
                out.append(f"tdmrep({effective.source})")
        return out

    def decide(self, signals: Iterable[Signal], at: str = "") -> Signal:
        sigs = [s for s in signals if s.kind != POLICY_KIND]
        reasons = self.reasons(sigs)
        if reasons:
            return Signal(
                kind=POLICY_KIND, verdict="deny", source=self.name, detail="opted out: " + "; ".join(reasons), at=at
            )
        return Signal(kind=POLICY_KIND, verdict="allow", source=self.name, detail="no applicable opt-out signal", at=at)

    @property
    def name(self) -> str:
        return f"opt-out-policy:{self.digest()}"


def _short_source(source: str) -> str:
    return "robots.txt" if source.endswith("/robots.txt") else source


def tdmrep_effective(signals: Iterable[Signal]) -> Signal | None:
    """The TDMRep value in force: the highest-ranked source that set one (absence never resets)."""
    best: tuple[int, Signal] | None = None
    for s in signals:
        if s.kind != "tdmrep" or s.verdict == "unset":
            continue
        rank = TDMREP_ORDER.get(s.source, -1)
        if best is None or rank >= best[0]:
            best = (rank, s)
    return None if best is None else best[1]


def policy_decision(signals: Iterable[Signal]) -> Signal | None:
    """The last policy decision recorded on a page, if any."""
    found = None
    for s in signals:
        if s.kind == POLICY_KIND:
            found = s
    return found


def opted_out(signals: Iterable[Signal]) -> Signal | None:
    """The policy decision if it says the page must not be used, else None."""
    decision = policy_decision(signals)
    return decision if decision is not None and decision.verdict == "deny" else None
