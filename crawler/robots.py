"""RFC 9309 robots.txt: parsing (Protego), the fetch-status state machine and the per-origin cache.

Pure logic with an injectable clock; the Scrapy glue that fetches the files lives in
``crawler.robots_middleware``. The state machine (RFC 9309 §2.3.1, §2.4):

* 2xx: parse the first ``max_bytes`` (cut at a line break) and apply the rules -> ``parsed``.
* 4xx (except 429), or more than ``max_redirects`` redirects: the file is *unavailable* -> allow all.
* 5xx, 429, timeout, connection error: *unreachable* -> disallow all, retry after a bounded
  exponential backoff (or the server's Retry-After, if longer). The deny is never cached for longer
  than the backoff, so the site is retried.
* A host unreachable for ``unreachable_fallback_after_s`` (30 days) falls back to the last good copy,
  or, with no good copy, to ``unreachable_fallback`` ("disallow" by default, "allow" if configured).
* Good results are cached for ``cache_ttl_s`` (at most 24 h).

Bytes are decoded exactly as Scrapy does (``utf-8-sig``, errors ignored), so a UTF-8 BOM — whole or
partial — is skipped rather than glued to the first directive.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from protego import Protego

from crawler.pathmatch import PathPattern, url_path
from streams.records import Signal

log = logging.getLogger(__name__)

#: RFC 9309 §2.2.1: the product token a crawler matches against user-agent lines.
UA_TOKEN = re.compile(r"[a-zA-Z_-]+")
#: RFC 9309 §2.5: crawlers must parse at least 500 KiB.
MIN_PARSE_BYTES = 500 * 1024
MAX_CACHE_TTL_S = 24 * 3600.0
#: RFC 9309 §2.3.1.2: follow at least five consecutive redirects.
MIN_REDIRECTS = 5


class RobotsConfigError(ValueError):
    """A robots setting outside what RFC 9309 allows."""


@dataclass(frozen=True)
class RobotsConfig:
    cache_ttl_s: float = MAX_CACHE_TTL_S  # <= 24 h (RFC 9309 §2.4)
    max_bytes: int = 512 * 1024  # parse limit, >= 500 KiB (§2.5); the rest is not even downloaded
    max_redirects: int = MIN_REDIRECTS  # >= 5 (§2.3.1.2); more -> "unavailable"
    timeout_s: float = 30.0
    retry_backoff_s: float = 60.0  # first retry of an unreachable robots.txt
    retry_backoff_max_s: float = 3600.0
    #: Page requests to an unreachable host wait for this many robots retries, then are dropped.
    unreachable_max_waits: int = 4
    unreachable_fallback_after_s: float = 30 * 86400.0
    unreachable_fallback: str = "disallow"  # "disallow" | "allow" (used only when no good copy exists)

    def validate(self) -> None:
        if not 0 < self.cache_ttl_s <= MAX_CACHE_TTL_S:
            raise RobotsConfigError(f"robots cache_ttl_s must be in (0, {MAX_CACHE_TTL_S:.0f}] (RFC 9309 §2.4)")
        if self.max_bytes < MIN_PARSE_BYTES:
            raise RobotsConfigError(f"robots max_bytes must be >= {MIN_PARSE_BYTES} (RFC 9309 §2.5)")
        if self.max_redirects < MIN_REDIRECTS:
            raise RobotsConfigError(f"robots max_redirects must be >= {MIN_REDIRECTS} (RFC 9309 §2.3.1.2)")
        if self.unreachable_fallback not in ("disallow", "allow"):
            raise RobotsConfigError("robots unreachable_fallback must be 'disallow' or 'allow'")
        if self.retry_backoff_s <= 0 or self.retry_backoff_max_s < self.retry_backoff_s:
            raise RobotsConfigError("robots retry_backoff_s must be > 0 and <= retry_backoff_max_s")


def validate_token(token: str) -> str:
    """Our product token must match RFC 9309's ``[a-zA-Z_-]+`` (no digits: ``AB42bot`` reads as ``AB``)."""
    if not UA_TOKEN.fullmatch(token or ""):
        raise RobotsConfigError(f"user-agent token {token!r} must match [a-zA-Z_-]+ (RFC 9309 §2.2.1)")
    return token


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode_robots(body: bytes) -> str:
    """The production decoding of a robots.txt body (BOM skipped, undecodable bytes dropped)."""
    return body.decode("utf-8-sig", errors="ignore")


def cap_body(body: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """Keep at most ``max_bytes``, cut after the last line break so no rule is half-read."""
    if len(body) <= max_bytes:
        return body, False
    head = body[:max_bytes]
    cut = max(head.rfind(b"\n"), head.rfind(b"\r"))
    return (head[: cut + 1] if cut >= 0 else b""), True


# ------------------------------------------------------------------------------------------ parsing
@dataclass(frozen=True)
class RuleMatch:
    allowed: bool
    group: str  # the user-agent line of the group that applied ("*"), or "" when none did
    rule: str  # "disallow /private/" / "allow /x/" / "" when no rule matched (implicit allow)


@dataclass
class Group:
    agents: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_SITE_WIDE = frozenset({"sitemap", "host"})
_AGENT_LINE = re.compile(r"^([ \t]*user[- ]?agent[ \t]*:?[ \t]*)(\S+)[^#]*", re.IGNORECASE)


def first_token_agents(text: str) -> str:
    """Cut user-agent values at the first whitespace ("User-agent: Foo Bar" names Foo).

    RFC 9309 values are single product tokens; Google reads up to the first space. Doing the same makes
    a malformed group apply to the crawler it names (the more cautious reading) and passes 7 more of the
    spec-test's Google-specific user-agent cases without changing any standard one.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        head = line.lstrip()[:4]
        if head.lower() == "user" and " " in line.strip():  # cheap pre-check; most lines are rules
            lines[i] = _AGENT_LINE.sub(r"\1\2", line, count=1)
    return "\n".join(lines)


def parse_groups(text: str) -> list[Group]:
    """RFC 9309 §2.1 grouping, for the extension rules Protego does not keep (Content-Usage, ...)."""
    groups: list[Group] = []
    current: Group | None = None
    last_was_agent = False
    for raw in _LINE_SPLIT.split(text):
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name in ("user-agent", "useragent"):
            if current is None or not last_was_agent:
                current = Group()
                groups.append(current)
            if value:
                current.agents.append(value.split()[0].lower())
            last_was_agent = True
            continue
        if name in _SITE_WIDE:
            continue  # does not close or belong to a group
        last_was_agent = False
        if current is not None:
            current.lines.append((name, value))
    return groups


class RobotsRules:
    """One parsed robots.txt. Allow/Disallow decisions are Protego's ``can_fetch``; the matched rule is
    recovered for provenance only (and never changes the decision)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._protego = Protego.parse(first_token_agents(text))
        self._groups = parse_groups(text)

    @classmethod
    def from_bytes(cls, body: bytes) -> RobotsRules:
        return cls(decode_robots(body))

    def allowed(self, url: str, token: str) -> bool:
        return bool(self._protego.can_fetch(url, token))

    def check(self, url: str, token: str) -> RuleMatch:
        allowed = self.allowed(url, token)
        group, rule = self._explain(url, token)
        return RuleMatch(allowed, group, rule)

    def _explain(self, url: str, token: str) -> tuple[str, str]:
        if urlsplit(url).path == "/robots.txt":
            return "", "implicit allow /robots.txt (RFC 9309 §2.2.2)"
        try:
            from protego._utils import _quote_path

            rule_set = self._protego._get_matching_rule_set(token)
            if rule_set is None:
                return "", ""
            path = _quote_path(url)
            for rule in rule_set._rules:
                if rule.value.match(path):
                    return str(rule_set.user_agent), f"{rule.field} {rule.value._pattern}"
            return str(rule_set.user_agent), ""
        except (ImportError, AttributeError) as exc:  # Protego internals moved: decision unaffected
            log.debug("cannot explain robots rule: %s", exc)
            return "?", "?"

    def crawl_delay(self, token: str) -> float | None:
        delay = self._protego.crawl_delay(token)
        return None if delay is None else float(delay)

    @property
    def sitemaps(self) -> list[str]:
        return list(self._protego.sitemaps)

    def agents(self) -> set[str]:
        """Every user-agent value that has a group of its own (lower-cased, ``*`` included)."""
        return {a for g in self._groups for a in g.agents}

    def has_group(self, token: str) -> bool:
        return token.lower() in self.agents()

    def extension_rules(self, token: str, name: str) -> list[tuple[PathPattern, str]]:
        """``name`` rules (e.g. ``content-usage``) of the group that applies to ``token`` (its own group
        when it has one, else ``*``), as (path pattern, value) — the draft-ietf-aipref-attach form
        ``Content-Usage: [path] preference``."""
        t = token.lower()
        chosen = [g for g in self._groups if t in g.agents] or [g for g in self._groups if "*" in g.agents]
        out: list[tuple[PathPattern, str]] = []
        for g in chosen:
            for field_name, value in g.lines:
                if field_name != name:
                    continue
                path = ""
                if value.startswith("/"):
                    path, _, value = value.partition(" ")
                    if not value:
                        path, _, value = path.partition("\t")
                out.append((PathPattern(path), value.strip()))
        return out

    def applicable_extension(self, url: str, token: str, name: str) -> list[tuple[str, str]]:
        """The most specific matching ``name`` rules for ``url`` as (path, value); ties all apply."""
        path = url_path(url)
        matching = [(p, v) for p, v in self.extension_rules(token, name) if p.matches(path)]
        if not matching:
            return []
        best = max(p.specificity for p, _ in matching)
        return [(p.pattern, v) for p, v in matching if p.specificity == best]


# ------------------------------------------------------------------------------- state machine
class RobotsState(StrEnum):
    PARSED = "parsed"  # 2xx, rules apply
    UNAVAILABLE = "unavailable"  # 4xx / too many redirects: allow all
    UNREACHABLE = "unreachable"  # 5xx / 429 / network error: disallow all until the retry


@dataclass(frozen=True)
class FetchOutcome:
    """What one attempt to fetch ``url`` produced (redirects already followed)."""

    url: str
    http_status: int | None = None  # None: no HTTP response (timeout, refused, reset, DNS, ...)
    body: bytes = b""
    error: str = ""
    redirects: tuple[str, ...] = ()
    too_many_redirects: bool = False
    truncated: bool = False  # the body was longer than the parse limit
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RobotsEntry:
    origin: str
    url: str
    state: RobotsState
    fetched_at: float
    expires_at: float
    http_status: int | None
    detail: str
    rules: RobotsRules | None = None
    failures: int = 0
    unreachable_since: float | None = None
    last_good: RobotsEntry | None = None


@dataclass(frozen=True)
class RobotsDecision:
    allowed: bool
    state: str  # RobotsState value, "fallback-cached", "fallback-allow" or "disabled"
    url: str  # the robots.txt URL
    fetched_at: float
    http_status: int | None
    group: str = ""
    rule: str = ""
    detail: str = ""
    retry_at: float | None = None

    def signal(self) -> Signal:
        parts = [f"state={self.state}", f"status={self.http_status if self.http_status is not None else '-'}"]
        if self.group:
            parts.append(f"group={self.group}")
        if self.rule:
            parts.append(f"rule={self.rule}")
        if self.detail:
            parts.append(self.detail)
        return Signal(
            kind="robots",
            verdict="allow" if self.allowed else "deny",
            source=self.url,
            detail="; ".join(parts),
            at=iso(self.fetched_at) if self.fetched_at else "",
        )


def origin_of(url: str) -> str:
    """``scheme://host:port`` — the scope of one robots.txt (RFC 9309 §2.3)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def robots_url(origin: str) -> str:
    scheme, _, hostport = origin.partition("://")
    host, _, port = hostport.rpartition(":")
    default = (scheme == "https" and port == "443") or (scheme == "http" and port == "80")
    return f"{scheme}://{host}/robots.txt" if default else f"{scheme}://{host}:{port}/robots.txt"


class RobotsCache:
    """Per-origin robots state. Not thread-safe: the crawler uses it from the reactor thread."""

    def __init__(self, config: RobotsConfig, token: str, clock: Callable[[], float] = time.time) -> None:
        config.validate()
        self.config = config
        self.token = validate_token(token)
        self.clock = clock
        self._entries: dict[str, RobotsEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RobotsEntry]:
        return iter(self._entries.values())

    def get(self, origin: str) -> RobotsEntry | None:
        """The entry to use now, or None when robots.txt must be (re)fetched first."""
        entry = self._entries.get(origin)
        if entry is None or self.clock() >= entry.expires_at:
            return None
        return entry

    def peek(self, origin: str) -> RobotsEntry | None:
        """The stored entry even if expired (for the fallback and for reports)."""
        return self._entries.get(origin)

    def backoff(self, failures: int) -> float:
        return min(self.config.retry_backoff_s * 2 ** max(failures - 1, 0), self.config.retry_backoff_max_s)

    def record(self, origin: str, outcome: FetchOutcome) -> RobotsEntry:
        now = self.clock()
        previous = self._entries.get(origin)
        last_good = None
        if previous is not None:
            last_good = previous if previous.state is not RobotsState.UNREACHABLE else previous.last_good
        status = outcome.http_status
        hops = f"redirects={len(outcome.redirects)}" if outcome.redirects else ""
        if outcome.too_many_redirects:
            entry = self._good(
                origin, outcome, RobotsState.UNAVAILABLE, now, f"more than {self.config.max_redirects} redirects"
            )
        elif status is not None and 200 <= status < 300:
            body, truncated = cap_body(outcome.body, self.config.max_bytes)
            detail = "; ".join(
                x for x in (hops, "truncated at parse limit" if truncated or outcome.truncated else "") if x
            )
            entry = self._good(origin, outcome, RobotsState.PARSED, now, detail, RobotsRules.from_bytes(body))
        elif status is not None and 300 <= status < 400:
            entry = self._good(origin, outcome, RobotsState.UNAVAILABLE, now, "redirect without a usable Location")
        elif status is not None and 400 <= status < 500 and status != 429:
            entry = self._good(origin, outcome, RobotsState.UNAVAILABLE, now, hops)
        else:
            failures = (
                previous.failures if previous is not None and previous.state is RobotsState.UNREACHABLE else 0
            ) + 1
            wait = self.backoff(failures)
            if outcome.retry_after_s is not None:
                wait = max(wait, min(outcome.retry_after_s, self.config.retry_backoff_max_s))
            since = (
                previous.unreachable_since
                if previous is not None and previous.state is RobotsState.UNREACHABLE and previous.unreachable_since
                else now
            )
            why = outcome.error or (f"status {status}" if status is not None else "no response")
            entry = RobotsEntry(
                origin=origin,
                url=outcome.url,
                state=RobotsState.UNREACHABLE,
                fetched_at=now,
                expires_at=now + wait,
                http_status=status,
                detail="; ".join(x for x in (why, hops, f"failures={failures}") if x),
                failures=failures,
                unreachable_since=since,
                last_good=last_good,
            )
            log.warning("robots.txt %s unreachable (%s): disallowing the host, retry in %.1fs", outcome.url, why, wait)
        self._entries[origin] = entry
        return entry

    def _good(
        self,
        origin: str,
        outcome: FetchOutcome,
        state: RobotsState,
        now: float,
        detail: str,
        rules: RobotsRules | None = None,
    ) -> RobotsEntry:
        return RobotsEntry(
            origin=origin,
            url=outcome.url,
            state=state,
            fetched_at=now,
            expires_at=now + self.config.cache_ttl_s,
            http_status=outcome.http_status,
            detail=detail,
            rules=rules,
        )

    def decide(self, url: str, entry: RobotsEntry, token: str | None = None) -> RobotsDecision:
        token = token or self.token

        def made(allowed: bool, state: str, **extra: Any) -> RobotsDecision:
            base = RobotsDecision(
                allowed, state, url=entry.url, fetched_at=entry.fetched_at, http_status=entry.http_status
            )
            return replace(base, **extra)

        if entry.state is RobotsState.PARSED and entry.rules is not None:
            m = entry.rules.check(url, token)
            return made(m.allowed, entry.state.value, group=m.group, rule=m.rule, detail=entry.detail)
        if entry.state is RobotsState.UNAVAILABLE:
            return made(True, entry.state.value, rule="allow all (unavailable)", detail=entry.detail)
        # Unreachable: disallow, unless the 30-day fallback applies.
        now = self.clock()
        since = entry.unreachable_since or entry.fetched_at
        if now - since >= self.config.unreachable_fallback_after_s:
            good = entry.last_good
            if good is not None:
                decision = self.decide(url, good, token)
                return RobotsDecision(
                    decision.allowed,
                    "fallback-cached",
                    url=good.url,
                    fetched_at=good.fetched_at,
                    http_status=good.http_status,
                    group=decision.group,
                    rule=decision.rule,
                    detail=f"unreachable since {iso(since)}; using the copy fetched {iso(good.fetched_at)}",
                )
            if self.config.unreachable_fallback == "allow":
                return made(True, "fallback-allow", rule="allow all", detail=f"unreachable since {iso(since)}")
        return made(
            False, entry.state.value, rule="disallow all (unreachable)", detail=entry.detail, retry_at=entry.expires_at
        )

    def crawl_delay(self, entry: RobotsEntry | None, token: str | None = None) -> float | None:
        if entry is None or entry.rules is None:
            return None
        return entry.rules.crawl_delay(token or self.token)
