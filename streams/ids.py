"""Stable identifiers: canonical URLs, page ids, document ids, content hashes.

A ``doc_id`` is derived from the canonical URL and the hash of the extracted text, so the same page
processed twice (a replay, a re-delivery after a crash) always gets the same id, and a takedown can name
a document without knowing which run produced it.
"""

from __future__ import annotations

import hashlib
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, drop the default port, the fragment and an empty path's slash
    ambiguity. Query strings are kept as they are (their order can matter to servers)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    return urlunsplit(SplitResult(scheme, netloc, path, parts.query, ""))


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def url_key(url: str) -> bytes:
    """Partition key for pages: the same URL always lands in the same partition."""
    return hashlib.blake2b(canonical_url(url).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def page_id(url: str, record_id: str | None, fetched_at: str) -> str:
    basis = record_id or f"{canonical_url(url)}\n{fetched_at}"
    return hashlib.blake2b(basis.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def content_hash(text: str) -> str:
    return sha256_hex(text)


def doc_id(url: str, extracted_text_hash: str) -> str:
    basis = f"{canonical_url(url)}\n{extracted_text_hash}"
    return hashlib.blake2b(basis.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
