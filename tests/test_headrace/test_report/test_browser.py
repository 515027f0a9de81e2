"""The scorecard of a real run opens in headless Chromium with every plot rendered and no errors.

The corpus is built once per module with ``headrace run`` over the shared WARCs. Chromium is Debian's
``chromium`` package (``make chromium`` installs it); the page records script errors on
``<html data-js-errors>`` and writes its own plot check into ``<body data-plots-*>`` attributes, which
the test reads back from ``--dump-dom``. Console messages are captured from Chromium's log on stderr.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headrace.cli import app
from headrace.report.render import ERRORS_JS

pytestmark = pytest.mark.slow
runner = CliRunner()
BROWSERS = ("chromium", "chromium-browser")
# Every chart the report draws for a full run; each must have drawn data, not an empty placeholder.
MUST_HAVE_DATA = (
    "funnel",
    "funnel-tokens",
    "drops-by-reason",
    "drops-by-stage",
    "languages",
    "languages-dropped",
    "doc-tokens",
    "doc-chars",
    "duplicates",
    "pii",
    "domains-kept",
    "domains-dropped",
    "optout",
)


def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (`make chromium` installs Debian's package)")


def headless(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def attr(dom: str, tag: str, name: str) -> str | None:
    m = re.search(rf"<{tag}\b[^>]*\b{name}=\"([^\"]*)\"", dom)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def report_html(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    inputs = sorted(str(p) for p in shared_data.glob("*.warc*"))
    result = runner.invoke(app, ["run", *inputs, "--out", str(out), "--extractor", "resiliparse", "--no-progress"])
    assert result.exit_code == 0, result.output
    html = out / "report" / "scorecard.html"
    started = time.perf_counter()
    result = runner.invoke(app, ["report", str(out), "--html", str(html), "--gate"])
    print(f"report built in {time.perf_counter() - started:.1f} s")
    assert result.exit_code == 0, result.output
    return html


def test_every_plot_renders_without_errors(report_html: Path, tmp_path: Path) -> None:
    source = report_html.read_text(encoding="utf-8")
    # self-contained: nothing is loaded from elsewhere (links to the documents are only anchors)
    assert not re.search(r"<(img|link|iframe|object|embed)\b|<script[^>]*\bsrc=|url\(|@import", source)
    plots = re.findall(r"<svg class='plot' data-plot='([^']+)' data-points='(\d+)'", source)
    names = {name for name, _ in plots}
    empty = {name for name, points in plots if points == "0"}
    for name in MUST_HAVE_DATA:
        assert name in names and name not in empty, name
    quality = [name for name, points in plots if name.startswith("quality-") and points != "0"]
    assert len(quality) >= 10, quality
    assert source.count("stroke-dasharray") >= 5  # thresholds drawn on the quality histograms

    done = headless(report_html.as_uri(), tmp_path / "profile", "--dump-dom")
    dom = done.stdout
    assert attr(dom, "body", "data-check-done") == "1", done.stderr[-2000:]
    assert int(attr(dom, "body", "data-plots-total") or 0) == len(plots)
    assert attr(dom, "body", "data-plots-broken") == ""
    assert int(attr(dom, "body", "data-plots-rendered") or 0) == len(plots)
    assert int(attr(dom, "body", "data-plots-marks") or 0) > 10 * len(plots)
    assert attr(dom, "html", "data-js-errors") is None
    assert console_lines(done.stderr) == []

    shot = tmp_path / "report.png"
    done = headless(report_html.as_uri(), tmp_path / "profile", "--window-size=1400,4000", f"--screenshot={shot}")
    assert shot.is_file(), done.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1400, 4000)
    assert len(png) > 100_000  # a page of charts, not a blank canvas
    assert console_lines(done.stderr) == []
    print(f"screenshot: {shot}")


def test_the_harness_sees_script_errors(tmp_path: Path) -> None:
    """The checks above can fail: a page that throws is caught by both the DOM flag and the log."""
    page = tmp_path / "broken.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><script>{ERRORS_JS}</script></head><body>"
        "<script>console.error('plot failed'); undefinedFunction();</script></body></html>"
    )
    done = headless(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert "undefinedFunction" in (attr(done.stdout, "html", "data-js-errors") or "")
    assert any("plot failed" in line for line in console_lines(done.stderr))
