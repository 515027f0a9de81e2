"""Takedown requests: selectors plus who asked, why, and under which ticket.

A request's id is derived from its content (selectors, requester, reason, ticket), so submitting the
same request twice names the same audit record and changes nothing the second time. Requests come
from command-line flags or from a JSON / CSV file holding many; every field is validated here, with
an error that names the request and the field, before anything is touched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.ids import canonical_url

SELECTOR_KINDS = ("url", "url_prefix", "domain", "doc_id", "content_hash", "near_text", "near_doc", "pii")
_HEX = re.compile(r"^[0-9a-f]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SAFE_TEXT = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
MAX_FIELD = 2000
MAX_NEAR_TEXT = 1_000_000


class TakedownRequestError(ValueError):
    """A request that cannot be accepted as written."""


@dataclass(frozen=True, order=True)
class Selector:
    kind: str
    value: str

    def describe(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return f"{self.kind}={shown}"


@dataclass(frozen=True)
class TakedownRequest:
    selectors: tuple[Selector, ...]
    reason: str
    requester: str
    ticket: str = ""
    near_threshold: float = 0.8
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        """Stable id: the same request always gets the same id (idempotence, audit lookups)."""
        basis = json.dumps(
            {
                "selectors": sorted([s.kind, s.value] for s in self.selectors),
                "reason": self.reason,
                "requester": self.requester,
                "ticket": self.ticket,
                "near_threshold": self.near_threshold,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return "tdr-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "selectors": [{"kind": s.kind, "value": s.value} for s in self.selectors],
            "reason": self.reason,
            "requester": self.requester,
            "ticket": self.ticket,
            "near_threshold": self.near_threshold,
        }


def _text_field(name: str, value: object, *, required: bool, where: str) -> str:
    if value is None or value == "":
        if required:
            raise TakedownRequestError(f"{where}: '{name}' is required")
        return ""
    if not isinstance(value, str):
        raise TakedownRequestError(f"{where}: '{name}' must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD:
        raise TakedownRequestError(f"{where}: '{name}' is longer than {MAX_FIELD} characters")
    if not _SAFE_TEXT.match(value):
        raise TakedownRequestError(f"{where}: '{name}' contains control characters")
    return value.strip()


def normalise_selector(kind: str, value: object, where: str = "request") -> Selector:
    """Validate and normalise one selector (canonical URLs, lower-case hashes and domains)."""
    kind = str(kind).strip().lower().replace("-", "_")
    if kind not in SELECTOR_KINDS:
        raise TakedownRequestError(f"{where}: unknown selector {kind!r} (known: {', '.join(SELECTOR_KINDS)})")
    if not isinstance(value, str) or not value.strip():
        raise TakedownRequestError(f"{where}: selector {kind} needs a non-empty string value")
    v = value.strip()
    limit = MAX_NEAR_TEXT if kind == "near_text" else MAX_FIELD
    if len(v) > limit:
        raise TakedownRequestError(f"{where}: selector {kind} is longer than {limit} characters")
    if kind != "near_text" and not _SAFE_TEXT.match(v):
        raise TakedownRequestError(f"{where}: selector {kind} contains control characters")
    if kind in ("url", "url_prefix"):
        if not re.match(r"^https?://[^/\s]+", v, re.I):
            raise TakedownRequestError(f"{where}: {kind} must be an absolute http(s) URL, got {v!r}")
        return Selector(kind, canonical_url(v))
    if kind == "domain":
        d = v.lower().rstrip(".")
        if d.startswith(("http://", "https://")) or "/" in d:
            raise TakedownRequestError(f"{where}: domain must be a bare host name such as example.org, got {v!r}")
        d = d.encode("idna").decode("ascii") if not d.isascii() else d
        if not _DOMAIN.match(d):
            raise TakedownRequestError(f"{where}: {v!r} is not a valid domain name")
        return Selector(kind, d)
    if kind == "content_hash":
        h = v.lower()
        if h.startswith("sha256:"):
            h = h[7:]
        if len(h) != 64 or not _HEX.match(h):
            raise TakedownRequestError(f"{where}: content_hash must be 64 hex characters (sha256 of the text)")
        return Selector(kind, h)
    if kind in ("doc_id", "near_doc"):
        if not re.match(r"^[0-9a-zA-Z_.:-]{4,128}$", v):
            raise TakedownRequestError(f"{where}: {kind} {v!r} is not a document id")
        return Selector(kind, v)
    if kind == "pii" and len(v) < 4:
        raise TakedownRequestError(f"{where}: a PII string of fewer than 4 characters would match too much")
    return Selector(kind, v)


def make_request(
    selectors: Iterable[tuple[str, str]],
    *,
    reason: object,
    requester: object,
    ticket: object = "",
    near_threshold: object = 0.8,
    where: str = "request",
) -> TakedownRequest:
    sels = tuple(sorted({normalise_selector(k, v, where) for k, v in selectors}))
    if not sels:
        raise TakedownRequestError(f"{where}: no selector given (use --url, --domain, --content-hash, ...)")
    try:
        threshold = float(near_threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TakedownRequestError(f"{where}: near_threshold must be a number") from exc
    if not 0.5 <= threshold <= 1.0:
        raise TakedownRequestError(f"{where}: near_threshold must be within [0.5, 1.0]")
    return TakedownRequest(
        selectors=sels,
        reason=_text_field("reason", reason, required=True, where=where),
        requester=_text_field("requester", requester, required=True, where=where),
        ticket=_text_field("ticket", ticket, required=False, where=where),
        near_threshold=threshold,
    )


def _from_mapping(obj: Mapping[str, Any], where: str) -> TakedownRequest:
    known = {"selectors", "reason", "requester", "ticket", "near_threshold", *SELECTOR_KINDS}
    unknown = sorted(set(obj) - known)
    if unknown:
        raise TakedownRequestError(f"{where}: unknown field(s) {unknown}")
    pairs: list[tuple[str, str]] = []
    raw = obj.get("selectors")
    if raw is not None:
        if not isinstance(raw, list):
            raise TakedownRequestError(f"{where}: 'selectors' must be a list of {{kind, value}} objects")
        for i, s in enumerate(raw):
            if not isinstance(s, Mapping) or set(s) - {"kind", "value"}:
                raise TakedownRequestError(f"{where}: selectors[{i}] must be an object with 'kind' and 'value'")
            pairs.append((str(s.get("kind", "")), s.get("value")))  # type: ignore[arg-type]
    for kind in SELECTOR_KINDS:
        val = obj.get(kind)
        if val is None:
            continue
        for v in val if isinstance(val, list) else [val]:
            pairs.append((kind, v))
    return make_request(
        pairs,
        reason=obj.get("reason"),
        requester=obj.get("requester"),
        ticket=obj.get("ticket", ""),
        near_threshold=obj.get("near_threshold", 0.8),
        where=where,
    )


def load_requests(path: Path) -> list[TakedownRequest]:
    """Read many requests from JSON (an object, or a list of objects) or CSV.

    CSV columns: ``kind,value,reason,requester,ticket`` (one selector per row; rows with the same
    reason, requester and ticket form one request).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TakedownRequestError(f"cannot read request file {path}: {exc}") from exc
    if len(raw) > 64 * 1024 * 1024:
        raise TakedownRequestError(f"request file {path} is larger than 64 MiB")
    text = raw.decode("utf-8", "replace")
    if path.suffix.lower() == ".csv":
        return _load_csv(text, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TakedownRequestError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:  # e.g. 100,000 nested brackets: the decoder recurses per level
        raise TakedownRequestError(f"{path}: not valid JSON (nested too deeply)") from exc
    items: Sequence[Any] = data if isinstance(data, list) else [data]
    if not items:
        raise TakedownRequestError(f"{path}: no requests")
    out = []
    for i, obj in enumerate(items):
        if not isinstance(obj, Mapping):
            raise TakedownRequestError(f"{path}: request {i} is not a JSON object")
        out.append(_from_mapping(obj, f"{path.name}[{i}]"))
    return out


def _load_csv(text: str, path: Path) -> list[TakedownRequest]:
    reader = csv.DictReader(io.StringIO(text))
    need = {"kind", "value", "reason", "requester"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise TakedownRequestError(f"{path}: CSV needs the columns {sorted(need)} (optional: ticket)")
    groups: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for n, row in enumerate(reader, start=2):
        key = (row.get("reason") or "", row.get("requester") or "", row.get("ticket") or "")
        if not row.get("kind"):
            raise TakedownRequestError(f"{path}:{n}: empty 'kind'")
        groups.setdefault(key, []).append((row["kind"], row.get("value") or ""))
    if not groups:
        raise TakedownRequestError(f"{path}: no rows")
    return [
        make_request(pairs, reason=r, requester=q, ticket=t, where=f"{path.name} ({q}, {t or 'no ticket'})")
        for (r, q, t), pairs in groups.items()
    ]
