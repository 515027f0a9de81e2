"""AI-training opt-out signals, read into :class:`streams.records.Signal` provenance records.

Readers (each returns zero or more signals; deciding is ``compliance.policy``'s job):

* robots.txt groups for AI user agents (``kind="ai-robots"``): only agents that have a group of their
  own; a ``*`` group is already our own robots decision.
* ``noai`` / ``noimageai`` (DeviantArt convention) in ``X-Robots-Tag`` and ``<meta name="robots">``:
  header names are case-insensitive, every header line counts, values are comma lists, and a line may be
  scoped to one agent (``ourbot: noai``). Scoped to our token -> ours; scoped to a listed AI agent ->
  ``verdict="deny-ai-agent"``; scoped to anyone else -> ignored.
* TDMRep (W3C CG final report): ``/.well-known/tdmrep.json`` (first matching rule in file order), then
  ``tdm-reservation`` / ``tdm-policy`` headers, then ``<meta name="tdm-reservation">``; each later source
  supersedes the earlier ones and absence never resets. A malformed file counts as unset, is logged, and
  is recorded as ``verdict="unset"`` with the error.
* ``Content-Usage`` (draft-ietf-aipref-attach / -vocab): the header (Structured Field Dictionary) and
  ``Content-Usage: [path] prefs`` rules in robots.txt (most specific path wins, ties combine
  most-restrictive). ``train-ai=n`` -> deny.
* Cloudflare ``Content-Signal: ai-train=no`` (header and robots.txt).
* Spawning ``/ai.txt`` (robots-like file, patterns such as ``*.html``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crawler.pathmatch import PathPattern, url_path
from crawler.robots import RobotsRules, decode_robots, parse_groups
from crawler.sfv import SFVError, Token, parse_dictionary
from streams.records import Signal

log = logging.getLogger(__name__)

#: X-Robots-Tag directives whose own syntax contains a colon (not an agent scope).
_COLON_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_SCOPE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*:\s*(.*)\Z", re.DOTALL)
_NOAI = ("noai", "noimageai")

# Meta tags. Each tag is matched from its "<meta" with a bounded window, so hostile markup (unclosed
# quotes, thousands of tags) stays linear; comments are cut out first so commented-out tags do not count.
_META_START = re.compile(rb"<meta\b", re.IGNORECASE)
_META_REST = re.compile(rb"""(?:[^>"']|"[^"]*"|'[^']*')*>""")
_ATTR = re.compile(rb"""([^\s=/>"']+)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
_MAX_TAG = 2048
_MAX_METAS = 10_000
_HTML_TYPES = ("text/html", "application/xhtml+xml")

#: Content-Usage categories that cover LLM pre-training.
TRAINING_CATEGORIES = ("train-ai", "train-genai")


def header_values(headers: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """All values of a header, whatever the case of its name (repeated lines kept)."""
    lname = name.lower()
    out: list[str] = []
    for key, values in headers.items():
        if key.lower() == lname:
            out.extend(values)
    return out


# ------------------------------------------------------------------------------------- meta tags
def _strip_comments(html: bytes) -> bytes:
    parts: list[bytes] = []
    pos = 0
    while (start := html.find(b"<!--", pos)) >= 0:
        parts.append(html[pos:start])
        end = html.find(b"-->", start + 4)
        if end < 0:
            return b"".join(parts)  # an unclosed comment runs to the end (as in browsers)
        pos = end + 3
    parts.append(html[pos:])
    return b"".join(parts)


def meta_tags(body: bytes, limit: int = 5 * 1024 * 1024) -> list[tuple[str, str]]:
    """``(name, content)`` of every ``<meta name=... content=...>`` (name lower-cased)."""
    text = _strip_comments(body[:limit])
    out: list[tuple[str, str]] = []
    for n, start in enumerate(_META_START.finditer(text)):
        if n >= _MAX_METAS:
            break
        m = _META_REST.match(text, start.end(), min(len(text), start.end() + _MAX_TAG))
        if m is None:
            continue
        attrs: dict[str, str] = {}
        for a in _ATTR.finditer(m.group()[:-1]):
            key = a.group(1).decode("latin-1").lower()
            raw = a.group(2) or b""
            if raw[:1] in (b'"', b"'"):
                raw = raw[1:-1]
            attrs.setdefault(key, raw.decode("utf-8", "replace").strip())
        name = attrs.get("name") or attrs.get("http-equiv") or ""
        if name and "content" in attrs:
            out.append((name.lower(), attrs["content"]))
    return out


def is_html(content_type: str) -> bool:
    ct = content_type.lower()
    return any(t in ct for t in _HTML_TYPES)


# ------------------------------------------------------------------------------------ noai / noimageai
def _directives(value: str) -> set[str]:
    return {d.strip().lower() for d in value.split(",") if d.strip()}


def noai_signals(
    headers: Mapping[str, Sequence[str]],
    metas: Iterable[tuple[str, str]],
    token: str,
    ai_agents: Iterable[str],
    at: str = "",
) -> list[Signal]:
    token_l = token.lower()
    agents = {a.lower() for a in ai_agents}
    out: list[Signal] = []

    def emit(directives: set[str], scope: str | None, source: str, raw: str) -> None:
        if scope is None or scope == token_l:
            verdict = "deny"
        elif scope in agents:
            verdict = "deny-ai-agent"
        else:
            return
        for name in _NOAI:
            if name in directives:
                out.append(Signal(kind=name, verdict=verdict, source=source, detail=raw.strip()[:200], at=at))

    for line in header_values(headers, "x-robots-tag"):
        scope: str | None = None
        value = line
        m = _SCOPE.match(line)
        if m and m.group(1).lower() not in _COLON_DIRECTIVES:
            scope, value = m.group(1).lower(), m.group(2)
        emit(_directives(value), scope, "header:x-robots-tag", line)
    for name, content in metas:
        if name == "robots":
            emit(_directives(content), None, "meta:robots", content)
        elif name == token_l or name in agents:
            emit(_directives(content), name, f"meta:{name}", content)
    return out


# ------------------------------------------------------------------------------------------ TDMRep
class TdmRepError(ValueError):
    """``/.well-known/tdmrep.json`` is not a valid TDMRep file."""


@dataclass(frozen=True)
class TdmRule:
    location: PathPattern
    reservation: int
    policy: str = ""


def _reservation(value: object) -> int:
    if isinstance(value, bool):
        raise TdmRepError(f"tdm-reservation must be 0 or 1, got {value!r}")
    if value in (0, 1):
        return int(value)  # type: ignore[call-overload,unused-ignore]
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    raise TdmRepError(f"tdm-reservation must be 0 or 1, got {value!r}")


@dataclass(frozen=True)
class TdmRepFile:
    """A fetched ``tdmrep.json``; ``error`` set means malformed (treated as unset)."""

    url: str
    rules: tuple[TdmRule, ...] = ()
    error: str = ""
    fetched_at: str = ""

    @classmethod
    def parse(cls, url: str, body: bytes, fetched_at: str = "") -> TdmRepFile:
        try:
            return cls(url, cls._rules(body), fetched_at=fetched_at)
        except TdmRepError as exc:
            log.warning("malformed TDMRep file %s: %s (treated as unset)", url, exc)
            return cls(url, (), error=str(exc), fetched_at=fetched_at)

    @staticmethod
    def _rules(body: bytes) -> tuple[TdmRule, ...]:
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TdmRepError(f"not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise TdmRepError("the file must be a JSON array of rules")
        rules: list[TdmRule] = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise TdmRepError(f"rule {i} is not an object")
            location = item.get("location")
            if not isinstance(location, str) or not location:
                raise TdmRepError(f"rule {i} has no location")
            if "tdm-reservation" not in item:
                raise TdmRepError(f"rule {i} has no tdm-reservation")
            policy = item.get("tdm-policy", "")
            if not isinstance(policy, str):
                raise TdmRepError(f"rule {i} has a non-string tdm-policy")
            rules.append(TdmRule(PathPattern(location), _reservation(item["tdm-reservation"]), policy))
        return tuple(rules)

    def lookup(self, url: str) -> TdmRule | None:
        """The spec's "most specific match is the first in sequence": first matching rule wins."""
        path = url_path(url)
        for rule in self.rules:
            if rule.location.matches(path):
                return rule
        return None


def _tdm_signal(reservation: int | None, policy: str, source: str, at: str, extra: str = "") -> Signal:
    verdict = "unset" if reservation is None else ("reserved" if reservation == 1 else "not-reserved")
    parts = [f"tdm-reservation={reservation if reservation is not None else '-'}"]
    if policy:
        parts.append(f"tdm-policy={policy}")
    if extra:
        parts.append(extra)
    return Signal(kind="tdmrep", verdict=verdict, source=source, detail="; ".join(parts), at=at)


def tdmrep_file_signals(url: str, tdm_file: TdmRepFile | None) -> list[Signal]:
    if tdm_file is None:
        return []
    if tdm_file.error:
        return [_tdm_signal(None, "", "tdmrep.json", tdm_file.fetched_at, f"malformed: {tdm_file.error}"[:300])]
    rule = tdm_file.lookup(url)
    if rule is None:
        return []
    return [
        _tdm_signal(
            rule.reservation, rule.policy, "tdmrep.json", tdm_file.fetched_at, f"location={rule.location.pattern}"
        )
    ]


def tdmrep_page_signals(
    headers: Mapping[str, Sequence[str]], metas: Iterable[tuple[str, str]], at: str
) -> list[Signal]:
    out: list[Signal] = []

    def pick(values: list[str]) -> int | None:
        found: int | None = None
        for v in values:
            try:
                r = _reservation(v)
            except TdmRepError:
                continue
            found = r if found is None else max(found, r)  # conflicting lines: the reservation wins
        return found

    h_res = header_values(headers, "tdm-reservation")
    h_pol = header_values(headers, "tdm-policy")
    if h_res or h_pol:
        r = pick(h_res)
        extra = "" if r is not None or not h_res else f"invalid value {h_res[0]!r}"
        out.append(_tdm_signal(r, h_pol[0].strip() if h_pol else "", "header:tdm-reservation", at, extra))
    metas = list(metas)
    m_res = [c for n, c in metas if n == "tdm-reservation"]
    m_pol = [c for n, c in metas if n == "tdm-policy"]
    if m_res or m_pol:
        r = pick(m_res)
        extra = "" if r is not None or not m_res else f"invalid value {m_res[0]!r}"
        out.append(_tdm_signal(r, m_pol[0].strip() if m_pol else "", "meta:tdm-reservation", at, extra))
    return out


# ----------------------------------------------------------------------------------- Content-Usage
def usage_preference(value: str, categories: Sequence[str] = TRAINING_CATEGORIES) -> str:
    """``"deny"``, ``"allow"`` or ``"unknown"`` for AI training, from one preference statement."""
    try:
        prefs = parse_dictionary(value)
    except SFVError:
        return "unknown"
    verdicts = []
    for cat in categories:
        v = prefs.get(cat)
        if isinstance(v, Token) and v in ("y", "n"):
            verdicts.append("deny" if v == "n" else "allow")
    return combine(verdicts)


def combine(verdicts: Iterable[str]) -> str:
    """aipref-vocab §7.1: any disallow wins, then any allow, else unknown."""
    vs = set(verdicts)
    if "deny" in vs:
        return "deny"
    if "allow" in vs:
        return "allow"
    return "unknown"


def content_usage_header_signals(headers: Mapping[str, Sequence[str]], at: str) -> list[Signal]:
    values = header_values(headers, "content-usage")
    if not values:
        return []
    joined = ", ".join(v.strip() for v in values)
    return [
        Signal(
            kind="content-usage",
            verdict=usage_preference(joined),
            source="header:content-usage",
            detail=joined[:300],
            at=at,
        )
    ]


_CS_PAIR = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z]+)\s*")


def content_signal_preference(value: str) -> str:
    """Cloudflare Content-Signal: ``ai-train=no`` -> deny, ``ai-train=yes`` -> allow."""
    verdict = "unknown"
    for part in value.split(","):
        m = _CS_PAIR.fullmatch(part)
        if m and m.group(1).lower() == "ai-train":
            v = m.group(2).lower()
            verdict = "deny" if v == "no" else "allow" if v == "yes" else verdict
    return verdict


def content_signal_header_signals(headers: Mapping[str, Sequence[str]], at: str) -> list[Signal]:
    values = header_values(headers, "content-signal")
    if not values:
        return []
    joined = ", ".join(v.strip() for v in values)
    return [
        Signal(
            kind="content-signal",
            verdict=content_signal_preference(joined),
            source="header:content-signal",
            detail=joined[:300],
            at=at,
        )
    ]


# -------------------------------------------------------------------------------- robots.txt based
def robots_signals(
    url: str,
    rules: RobotsRules | None,
    robots_url: str,
    token: str,
    ai_agents: Iterable[str],
    at: str,
) -> list[Signal]:
    """AI-agent groups plus Content-Usage / Content-Signal rules of a parsed robots.txt."""
    if rules is None:
        return []
    out: list[Signal] = []
    for agent in ai_agents:
        if agent.lower() == token.lower() or not rules.has_group(agent):
            continue
        m = rules.check(url, agent)
        detail = f"agent={agent}" + (f"; rule={m.rule}" if m.rule else "")
        out.append(
            Signal(kind="ai-robots", verdict="allow" if m.allowed else "deny", source=robots_url, detail=detail, at=at)
        )
    cu = rules.applicable_extension(url, token, "content-usage")
    if cu:
        verdict = combine(usage_preference(v) for _, v in cu)
        detail = "; ".join(f"{p or '(all)'} {v}" for p, v in cu)
        out.append(Signal(kind="content-usage", verdict=verdict, source=robots_url, detail=detail[:300], at=at))
    cs = rules.applicable_extension(url, token, "content-signal")
    if cs:
        verdict = combine(content_signal_preference(v) for _, v in cs)
        detail = "; ".join(f"{p or '(all)'} {v}" for p, v in cs)
        out.append(Signal(kind="content-signal", verdict=verdict, source=robots_url, detail=detail[:300], at=at))
    return out


# ------------------------------------------------------------------------------------------ ai.txt
@dataclass(frozen=True)
class AiTxt:
    """Spawning's ``/ai.txt``: robots-like Allow/Disallow lines, often file-type globs (``*.jpg``)."""

    url: str
    rules: tuple[tuple[str, PathPattern], ...]
    fetched_at: str = ""

    @classmethod
    def parse(cls, url: str, body: bytes, token: str, fetched_at: str = "") -> AiTxt:
        groups = parse_groups(decode_robots(body))
        t = token.lower()
        chosen = [g for g in groups if t in g.agents] or [g for g in groups if "*" in g.agents]
        rules: list[tuple[str, PathPattern]] = []
        for g in chosen:
            for name, value in g.lines:
                if name in ("allow", "disallow") and value:
                    pattern = value if value.startswith(("/", "*")) else f"*{value}"
                    rules.append((name, PathPattern(pattern)))
        return cls(url, tuple(rules), fetched_at)

    def check(self, url: str) -> tuple[str, str] | None:
        """(verdict, rule) of the longest matching rule (allow wins ties), or None."""
        path = url_path(url)
        best: tuple[int, bool, str] | None = None
        for name, pattern in self.rules:
            if pattern.matches(path):
                key = (pattern.specificity, name == "allow", f"{name} {pattern.pattern}")
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is None:
            return None
        return ("allow" if best[1] else "deny"), best[2]


def ai_txt_signals(url: str, ai_txt: AiTxt | None) -> list[Signal]:
    if ai_txt is None:
        return []
    hit = ai_txt.check(url)
    if hit is None:
        return []
    return [Signal(kind="ai-txt", verdict=hit[0], source=ai_txt.url, detail=f"rule={hit[1]}", at=ai_txt.fetched_at)]


# ------------------------------------------------------------------------------------ one response
def response_signals(
    url: str,
    headers: Mapping[str, Sequence[str]],
    body: bytes,
    content_type: str,
    token: str,
    ai_agents: Iterable[str],
    at: str,
) -> list[Signal]:
    """Every signal carried by the response itself (headers, and meta tags of HTML bodies)."""
    agents = list(ai_agents)
    metas = meta_tags(body) if is_html(content_type) else []
    out = noai_signals(headers, metas, token, agents, at)
    out += tdmrep_page_signals(headers, metas, at)
    out += content_usage_header_signals(headers, at)
    out += content_signal_header_signals(headers, at)
    return out
