"""Inputs: folders, globs, manifests with a prefix, shards, http(s) with Range requests, s3."""

from __future__ import annotations

import gzip
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from warcgen import gz_members, page, warcinfo

from crawler.reader import Position
from crawler.replay_config import ReplayConfig
from crawler.sources import (
    HttpSource,
    InputError,
    InputRef,
    S3Source,
    expand_inputs,
    open_source,
    parse_shard,
    select_shard,
)
from crawler.warc import WarcReader
from streams.records import Page


def pages_of(source, start: Position | None = None) -> list[str]:
    return [i.url for i, _ in WarcReader(source, start=start) if isinstance(i, Page)]


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    d = tmp_path / "crawl"
    (d / "sub").mkdir(parents=True)
    for n in range(3):
        (d / f"f{n}.warc.gz").write_bytes(gz_members([warcinfo(), page(10 * n), page(10 * n + 1)]))
    (d / "sub" / "g.warc").write_bytes(page(99))
    (d / "sub" / "notes.txt").write_text("not an archive")
    return d


def test_folders_and_globs_expand_sorted(archive_dir: Path) -> None:
    names = [r.name for r in expand_inputs([str(archive_dir)])]
    assert names == sorted(names) and len(names) == 4 and not any(n.endswith(".txt") for n in names)
    globbed = [r.name for r in expand_inputs([str(archive_dir / "*.warc.gz")])]
    assert len(globbed) == 3
    missing = expand_inputs([str(archive_dir / "nope.warc"), str(archive_dir / "*.arc")])
    assert [r.error for r in missing] == ["no such file", "the pattern matched nothing"]


def test_manifest_needs_a_prefix_for_relative_entries(archive_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress(b"f0.warc.gz\nf1.warc.gz\n\n# comment\nf2.warc.gz\n"))
    with pytest.raises(InputError, match="--prefix"):
        expand_inputs([str(manifest)])
    refs = expand_inputs([], ReplayConfig(prefix=str(archive_dir)), from_paths=[str(manifest)])
    assert [Path(r.name).name for r in refs] == ["f0.warc.gz", "f1.warc.gz", "f2.warc.gz"]
    assert all(r.error is None for r in refs)
    url_refs = expand_inputs([str(manifest)], ReplayConfig(prefix="https://archive.example/base/"))
    assert url_refs[0].name == "https://archive.example/base/f0.warc.gz" and url_refs[0].scheme == "http"


def test_shards_split_the_list_deterministically() -> None:
    refs = [InputRef(f"s3://b/{i}.warc.gz") for i in range(10)]
    parts = [select_shard(refs, i, 3) for i in range(3)]
    assert sorted(r.name for p in parts for r in p) == sorted(r.name for r in refs)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert select_shard(refs, 1, 3) == parts[1]  # same answer every time, on every worker
    assert parse_shard("2/8") == (2, 8)
    for bad in ("8/8", "-1/2", "x", "1/0"):
        with pytest.raises(InputError):
            parse_shard(bad)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root`` with single ``bytes=N-`` ranges (or ignores Range when asked to)."""

    root: Path
    honour_range = True
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        path = self.root / self.path.lstrip("/")
        self.requests.append(f"{self.path} {self.headers.get('Range')}")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_root(archive_dir: Path) -> Iterator[tuple[str, type[RangeHandler]]]:
    handler = type("H", (RangeHandler,), {"root": archive_dir, "requests": [], "honour_range": True})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_archives_stream_and_resume_with_range(
    http_root: tuple[str, type[RangeHandler]], archive_dir: Path
) -> None:
    base, handler = http_root
    src = HttpSource(f"{base}/f1.warc.gz")
    assert pages_of(src) == ["http://example.com/10", "http://example.com/11"]
    assert src.size() == (archive_dir / "f1.warc.gz").stat().st_size
    items = list(WarcReader(HttpSource(f"{base}/f1.warc.gz")))
    second = items[1][1]  # after warcinfo and page 10
    assert second is not None
    assert pages_of(HttpSource(f"{base}/f1.warc.gz"), start=second) == ["http://example.com/11"]
    assert any(r.endswith(f"bytes={second.offset}-") for r in handler.requests)
    handler.honour_range = False  # a server without Range support still works (reads and drops)
    assert pages_of(HttpSource(f"{base}/f1.warc.gz"), start=second) == ["http://example.com/11"]


def test_http_manifest_and_errors(http_root: tuple[str, type[RangeHandler]], archive_dir: Path) -> None:
    base, _ = http_root
    (archive_dir / "warc.paths").write_text("f0.warc.gz\nmissing.warc.gz\n")
    refs = expand_inputs([f"{base}/warc.paths"], ReplayConfig(prefix=base))
    assert [r.name for r in refs] == [f"{base}/f0.warc.gz", f"{base}/missing.warc.gz"]
    from crawler.rawio import SourceError

    with pytest.raises(SourceError, match="HTTP 404"):
        list(WarcReader(open_source(refs[1])))


def test_s3_objects_read_with_ranges() -> None:
    """Offline: botocore's Stubber checks the GetObject calls (bucket, key, Range) we would send."""
    botocore = pytest.importorskip("botocore")
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    members = [gz_members([r]) for r in (warcinfo(), page(1), page(2))]
    data = b"".join(members)
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    stub.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)},
        {"Bucket": "bkt", "Key": "crawl/a.warc.gz"},
    )
    offset = len(members[0]) + len(members[1])
    tail = data[offset:]
    stub.add_response(
        "get_object",
        {
            "Body": StreamingBody(io.BytesIO(tail), len(tail)),
            "ContentLength": len(tail),
            "ContentRange": f"bytes {offset}-{len(data) - 1}/{len(data)}",
        },
        {"Bucket": "bkt", "Key": "crawl/a.warc.gz", "Range": f"bytes={offset}-"},
    )
    stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
    with stub:
        assert pages_of(S3Source("s3://bkt/crawl/a.warc.gz", client)) == [
            "http://example.com/1",
            "http://example.com/2",
        ]
        assert pages_of(S3Source("s3://bkt/crawl/a.warc.gz", client), Position(offset)) == ["http://example.com/2"]
        from crawler.rawio import SourceError

        with pytest.raises(SourceError, match="NoSuchKey"):
            list(WarcReader(S3Source("s3://bkt/crawl/missing.warc.gz", client)))
    stub.assert_no_pending_responses()
    assert botocore is not None
