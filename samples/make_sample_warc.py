"""Build ``samples/python-docs.warc.gz``, the sample the README's quick start replays.

Input: the HTML of the Python 3.11 documentation as Debian ships it (package ``python3.11-doc``,
PSF License Version 2; see samples/SOURCES.md). Run:

    apt-get download python3.11-doc && dpkg -x python3.11-doc_*.deb /tmp/pydoc
    python samples/make_sample_warc.py /tmp/pydoc/usr/share/doc/python3.11/html samples/python-docs.warc.gz

Each page becomes a request + response record pair as a crawler would write it, under its
docs.python.org URL; a stylesheet adds a non-HTML record, and one page is served twice under a
second URL so the pipeline's exact dedup has something to find.
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

PAGES = [
    "tutorial/appetite.html",
    "tutorial/interpreter.html",
    "tutorial/introduction.html",
    "tutorial/controlflow.html",
    "tutorial/datastructures.html",
    "tutorial/modules.html",
    "tutorial/inputoutput.html",
    "tutorial/errors.html",
    "tutorial/classes.html",
    "tutorial/stdlib.html",
    "tutorial/stdlib2.html",
    "tutorial/venv.html",
    "tutorial/whatnow.html",
    "tutorial/floatingpoint.html",
    "howto/functional.html",
    "howto/logging.html",
    "howto/regex.html",
    "howto/sorting.html",
    "howto/unicode.html",
    "howto/descriptor.html",
    "howto/argparse.html",
    "howto/urllib2.html",
    "faq/general.html",
    "faq/programming.html",
    "faq/design.html",
    "library/collections.html",
    "library/itertools.html",
    "library/functools.html",
    "library/pathlib.html",
    "library/json.html",
    "glossary.html",
    "whatsnew/3.11.html",
]
DATE = "2023-03-01T12:00:00Z"
BASE = "https://docs.python.org/3.11/"


def write_pair(writer: WARCWriter, url: str, body: bytes, content_type: str) -> None:
    req = StatusAndHeaders(
        f"GET /{url.split('/', 3)[3]} HTTP/1.1",
        [("Host", "docs.python.org"), ("User-Agent", "headrace-sample/1.0")],
        is_http_request=True,
    )
    writer.write_record(
        writer.create_warc_record(url, "request", http_headers=req, warc_headers_dict={"WARC-Date": DATE})
    )
    resp = StatusAndHeaders(
        "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
    )
    writer.write_record(
        writer.create_warc_record(
            url, "response", payload=BytesIO(body), http_headers=resp, warc_headers_dict={"WARC-Date": DATE}
        )
    )


def main(html_root: Path, out: Path) -> None:
    with out.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        info = writer.create_warcinfo_record(
            out.name,
            {
                "software": "headrace samples/make_sample_warc.py",
                "isPartOf": "headrace-sample-python-docs",
                "description": "Python 3.11 documentation pages (PSF License 2.0), for the quick start",
            },
        )
        writer.write_record(info)
        for rel in PAGES:
            write_pair(writer, BASE + rel, (html_root / rel).read_bytes(), "text/html; charset=utf-8")
        css = html_root / "_static" / "pydoctheme.css"
        if css.exists():
            write_pair(writer, BASE + "_static/pydoctheme.css", css.read_bytes(), "text/css")
        # The same page under a second URL: an exact duplicate for the dedup stage.
        write_pair(
            writer,
            "https://docs.python.org/3/tutorial/appetite.html",
            (html_root / "tutorial/appetite.html").read_bytes(),
            "text/html; charset=utf-8",
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
