"""The configurable opt-out policy (compliance.policy)."""

from __future__ import annotations

import pytest

from compliance.policy import OptOutPolicy, opted_out, policy_decision, tdmrep_effective
from streams.records import Signal


def sig(kind: str, verdict: str, source: str = "", detail: str = "") -> Signal:
    return Signal(kind=kind, verdict=verdict, source=source, detail=detail)


ROBOTS_ALLOW = sig("robots", "allow", "http://x/robots.txt", "state=parsed; status=200")


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        ([sig("robots", "deny", "http://x/robots.txt", "state=parsed; rule=disallow /")], "robots"),
        ([ROBOTS_ALLOW, sig("ai-robots", "deny", "http://x/robots.txt", "agent=GPTBot")], "ai-robots"),
        ([ROBOTS_ALLOW, sig("noai", "deny", "meta:robots")], "noai(meta:robots)"),
        ([ROBOTS_ALLOW, sig("noai", "deny-ai-agent", "header:x-robots-tag")], "noai(header:x-robots-tag)"),
        ([ROBOTS_ALLOW, sig("tdmrep", "reserved", "header:tdm-reservation")], "tdmrep(header:tdm-reservation)"),
        ([ROBOTS_ALLOW, sig("content-usage", "deny", "header:content-usage")], "content-usage(header:content-usage)"),
        ([ROBOTS_ALLOW, sig("content-usage", "deny", "http://x/robots.txt")], "content-usage(robots.txt)"),
        ([ROBOTS_ALLOW, sig("content-signal", "deny", "header:content-signal")], "content-signal"),
        ([ROBOTS_ALLOW, sig("ai-txt", "deny", "http://x/ai.txt")], "ai-txt"),
    ],
)
def test_each_signal_opts_out_by_default(signals: list[Signal], reason: str) -> None:
    decision = OptOutPolicy().decide(signals, at="2025-01-01T00:00:00Z")
    assert decision.kind == "policy" and decision.verdict == "deny"
    assert reason in decision.detail and decision.at == "2025-01-01T00:00:00Z"
    assert decision.source.startswith("opt-out-policy:")


def test_keep_when_nothing_applies() -> None:
    signals = [
        ROBOTS_ALLOW,
        sig("ai-robots", "allow", detail="agent=CCBot"),
        sig("noimageai", "deny", "meta:robots"),  # not counted by default: we keep text
        sig("content-usage", "unknown"),
        sig("content-usage", "allow"),
        sig("tdmrep", "unset", "tdmrep.json", "malformed"),
        sig("robots", "disabled"),
    ]
    assert OptOutPolicy().decide(signals).verdict == "allow"


def test_switches() -> None:
    ai = [ROBOTS_ALLOW, sig("ai-robots", "deny", detail="agent=GPTBot"), sig("noai", "deny-ai-agent", "meta:ccbot")]
    assert OptOutPolicy(ai_agent_groups=False).decide(ai).verdict == "allow"
    assert OptOutPolicy(noai=False).decide([sig("noai", "deny", "meta:robots")]).verdict == "allow"
    assert OptOutPolicy(noimageai=True).decide([sig("noimageai", "deny", "meta:robots")]).verdict == "deny"
    assert OptOutPolicy(tdmrep=False).decide([sig("tdmrep", "reserved", "tdmrep.json")]).verdict == "allow"
    assert OptOutPolicy(content_usage=False).decide([sig("content-usage", "deny")]).verdict == "allow"
    # robots is not a switch
    assert OptOutPolicy(ai_agent_groups=False, noai=False).decide([sig("robots", "deny")]).verdict == "deny"
    assert OptOutPolicy().digest() != OptOutPolicy(noai=False).digest()


def test_content_usage_most_restrictive_across_sources() -> None:
    signals = [
        sig("content-usage", "allow", "header:content-usage"),
        sig("content-usage", "deny", "http://x/robots.txt"),
    ]
    assert OptOutPolicy().decide(signals).verdict == "deny"


def test_tdmrep_effective_order() -> None:
    f = sig("tdmrep", "reserved", "tdmrep.json")
    h = sig("tdmrep", "not-reserved", "header:tdm-reservation")
    m = sig("tdmrep", "reserved", "meta:tdm-reservation")
    assert tdmrep_effective([m, h, f]) is m  # order of the list does not matter
    assert tdmrep_effective([h, f]) is h
    assert tdmrep_effective([f, sig("tdmrep", "unset", "header:tdm-reservation")]) is f


def test_opted_out_reads_the_last_policy_signal() -> None:
    deny = sig("policy", "deny", detail="opted out: noai")
    allow = sig("policy", "allow")
    assert opted_out([ROBOTS_ALLOW, deny]) is deny
    assert opted_out([deny, allow]) is None
    assert policy_decision([ROBOTS_ALLOW]) is None and opted_out([]) is None
    # a re-decision ignores earlier policy signals
    assert OptOutPolicy().decide([deny]).verdict == "allow"
