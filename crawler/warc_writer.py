"""Optional WARC output of a crawl (warcio), so crawls are replayable and auditable.

Each fetched page (and each robots.txt response, the evidence behind the robots decisions) becomes a
gzip-per-record ``response`` record. The body written is the body Scrapy delivered (decompressed), so
``Content-Encoding`` / ``Transfer-Encoding`` are dropped from the stored HTTP headers and
``Content-Length`` is set to the stored length. Files rotate at ``max_bytes``. The page's lineage
records file, offset, length and WARC-Record-ID, so ``headrace replay`` of these files reproduces it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

log = logging.getLogger(__name__)

_DROP_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class WarcLocation:
    path: str
    offset: int
    length: int
    record_id: str
    date: str


class WarcRecorder:
    def __init__(self, directory: Path, job_id: str, max_bytes: int = 1024**3, software: str = "headrace") -> None:
        self.directory = directory
        self.job_id = job_id
        self.max_bytes = max_bytes
        self.software = software
        self.records = 0
        self._seq = 0
        self._fh: IO[bytes] | None = None
        self._writer: WARCWriter | None = None
        self._path: Path | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def _open(self) -> tuple[IO[bytes], WARCWriter, Path]:
        if self._fh is not None and self._writer is not None and self._path is not None:
            if self._fh.tell() < self.max_bytes:
                return self._fh, self._writer, self._path
            self._fh.close()
        self._seq += 1
        path = self.directory / f"headrace-{self.job_id}-{self._seq:05d}.warc.gz"
        fh = path.open("xb")
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(
            path.name, {"software": self.software, "isPartOf": f"crawl-{self.job_id}", "format": "WARC File Format 1.1"}
        )
        writer.write_record(info)
        self._fh, self._writer, self._path = fh, writer, path
        return fh, writer, path

    def write(
        self,
        url: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        fetched_at: str,
        truncated: str = "",
    ) -> WarcLocation:
        fh, writer, path = self._open()
        kept = [(k, v) for k, v in headers if k.lower() not in _DROP_HEADERS]
        kept.append(("Content-Length", str(len(body))))
        http = StatusAndHeaders(f"{status} {_reason(status)}", kept, protocol="HTTP/1.1")
        warc_headers = {"WARC-Date": fetched_at}
        if truncated:
            warc_headers["WARC-Truncated"] = truncated
        record = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
        )
        offset = fh.tell()
        writer.write_record(record)
        fh.flush()
        self.records += 1
        rid = record.rec_headers.get_header("WARC-Record-ID") or ""
        date = record.rec_headers.get_header("WARC-Date") or fetched_at
        return WarcLocation(str(path), offset, fh.tell() - offset, rid, date)

    def write_response(
        self, response: Any, fetched_at: str, body: bytes | None = None, truncated: str = ""
    ) -> WarcLocation:
        """Write a Scrapy response."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, values in response.headers.items() for v in values]
        return self.write(
            response.url, response.status, headers, response.body if body is None else body, fetched_at, truncated
        )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._writer = None


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
