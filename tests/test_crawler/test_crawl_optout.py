"""Every AI opt-out signal on a local site, crawled with ``headrace crawl --out`` (C-7, C-8).

One page per signal plus control pages. Pass criteria: 100% of opted-out pages absent from the shards,
each in the decision ledger with its reason; every page without an opt-out kept (0 false exclusions);
TDMRep header beats the well-known file; a malformed TDMRep file counts as unset and is logged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_crawler.sitefixture import Route, Site

pytestmark = pytest.mark.slow

ROBOTS = b"""User-agent: *
Allow: /
Content-Usage: /cu-robots/ train-ai=n

User-agent: headrace
Disallow: /ours/
Content-Usage: /cu-robots/ train-ai=n
Content-Signal: /cs-robots/ ai-train=no, search=yes

User-agent: GPTBot
Disallow: /gpt/

User-agent: CCBot
Disallow: /cc/

User-agent: Google-Extended
Disallow: /gext/
"""

TDMREP = b"""[
  {"location": "/tdm-file/", "tdm-reservation": 1, "tdm-policy": "https://example.org/tdm-policy.json"},
  {"location": "/tdm-override/", "tdm-reservation": 1}
]"""

AI_TXT = b"# Spawning AI\nUser-Agent: *\nDisallow: /aitxt/\n"

# path -> (page kwargs, expected reason substring in the ledger)
OPTED_OUT: dict[str, tuple[dict[str, Any], str]] = {
    "/ours/p": ({}, "robots("),
    "/gpt/p": ({}, "ai-robots(agent=GPTBot)"),
    "/cc/p": ({}, "ai-robots(agent=CCBot)"),
    "/gext/p": ({}, "ai-robots(agent=Google-Extended)"),
    "/meta-noai": ({"head": '<meta name="robots" content="noai, noimageai">'}, "noai(meta:robots)"),
    "/meta-ours": ({"head": '<meta name="headrace" content="noai">'}, "noai(meta:headrace)"),
    "/xrt-lower": ({"headers": [("x-robots-tag", "noai")]}, "noai(header:x-robots-tag)"),
    "/xrt-two": ({"headers": [("X-Robots-Tag", "noindex"), ("X-Robots-Tag", "noai")]}, "noai(header:x-robots-tag)"),
    "/xrt-ours": ({"headers": [("X-Robots-Tag", "headrace: noai")]}, "noai(header:x-robots-tag)"),
    "/xrt-ccbot": ({"headers": [("X-Robots-Tag", "CCBot: noai")]}, "noai(header:x-robots-tag)"),
    "/tdm-header": ({"headers": [("tdm-reservation", "1")]}, "tdmrep(header:tdm-reservation)"),
    "/tdm-meta": ({"head": '<meta name="tdm-reservation" content="1">'}, "tdmrep(meta:tdm-reservation)"),
    "/tdm-file/p": ({}, "tdmrep(tdmrep.json)"),
    "/aitxt/p": ({}, "ai-txt"),
    "/cu-robots/p": ({}, "content-usage(robots.txt)"),
    "/cu-header": ({"headers": [("Content-Usage", "train-ai=n")]}, "content-usage(header:content-usage)"),
    "/cs-header": (
        {"headers": [("Content-Signal", "search=yes, ai-train=no")]},
        "content-signal(header:content-signal)",
    ),
    "/cs-robots/p": ({}, "content-signal(robots.txt)"),
}

KEPT: dict[str, dict[str, Any]] = {
    "/keep-plain": {},
    "/keep-noindex": {
        "headers": [("X-Robots-Tag", "noindex, nofollow")],
        "head": '<meta name="robots" content="noarchive">',
    },
    "/keep-other-agent": {"headers": [("X-Robots-Tag", "otherbot: noai")]},
    "/keep-noimageai": {"head": '<meta name="robots" content="noimageai">'},
    "/keep-usage-search": {"headers": [("Content-Usage", "search=n")]},
    "/keep-usage-string": {"headers": [("Content-Usage", 'train-ai="n"')]},
    "/tdm-override/p": {"headers": [("tdm-reservation", "0")]},  # the header beats the file's 1
    "/tdm-file-elsewhere": {"headers": [("tdm-reservation", "0")]},
}


def headrace(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_every_opt_out_signal_is_honoured_and_recorded(tmp_path: Path) -> None:
    with Site() as site, Site() as other:
        site.add("/robots.txt", Route(body=ROBOTS, content_type="text/plain"))
        site.add("/.well-known/tdmrep.json", Route(body=TDMREP, content_type="application/json"))
        site.add("/ai.txt", Route(body=AI_TXT, content_type="text/plain"))
        for path, (kw, _) in OPTED_OUT.items():
            site.page(path, **kw)
        for path, kw in KEPT.items():
            site.page(path, **kw)
        # a second origin whose TDMRep file is malformed: unset (kept) and logged
        other.add("/.well-known/tdmrep.json", Route(body=b'[{"location": "/", "tdm-reservation": "maybe"}]'))
        other.page("/keep-malformed-tdmrep")

        seeds = [site.url(p) for p in [*OPTED_OUT, *KEPT]] + [other.url("/keep-malformed-tdmrep")]
        seed_file = tmp_path / "seeds.txt"
        seed_file.write_text("\n".join(seeds) + "\n")
        cfg = tmp_path / "crawl.toml"
        cfg.write_text(
            '[crawl]\nmin_delay_s = 0.0\ncontact_url = "https://example.org/crawler"\nfollow_links = false\n'
            # fixture pages are a few sentences: kept or dropped here only by the opt-out signals
            "[quality]\nenabled = false\n"
        )
        out = tmp_path / "out"
        res = headrace(
            "crawl", "--seeds", str(seed_file), "--out", str(out), "--config", str(cfg),
            "--allow-private-targets", "--no-progress", "--summary-json", str(tmp_path / "summary.json"), "-v",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-4000:]
        assert "malformed TDMRep file" in res.stderr

        # Pages that must not even be requested: robots, AI-agent groups, ai.txt and robots Content-Usage
        # / Content-Signal are known before fetching and no page-level signal can lift them.
        fetched = set(site.paths())
        for path in ("/ours/p", "/gpt/p", "/cc/p", "/gext/p", "/aitxt/p", "/cu-robots/p", "/cs-robots/p"):
            assert path not in fetched, path

    dump = headrace("shards", "dump", str(out))
    assert dump.returncode == 0, dump.stderr
    docs = [json.loads(line) for line in dump.stdout.splitlines()]
    kept_urls = {d["url"] for d in docs}
    expected_kept = {site.url(p) for p in KEPT} | {other.url("/keep-malformed-tdmrep")}
    assert kept_urls == expected_kept  # no opted-out page in the shards, no false exclusion
    for d in docs:
        kinds = [s["kind"] for s in d["signals"]]
        assert kinds[0] == "robots" and kinds[-1] == "policy"
        assert d["signals"][-1]["verdict"] == "allow"
        assert d["lineage"]["source"] == "crawl" and d["lineage"]["job"]
    override = next(d for d in docs if d["url"].endswith("/tdm-override/p"))
    tdm = [s for s in override["signals"] if s["kind"] == "tdmrep"]
    assert {s["source"]: s["verdict"] for s in tdm} == {
        "tdmrep.json": "reserved",
        "header:tdm-reservation": "not-reserved",
    }
    malformed = next(d for d in docs if d["url"].endswith("/keep-malformed-tdmrep"))
    assert any(
        s["kind"] == "tdmrep" and s["verdict"] == "unset" and "malformed" in s["detail"] for s in malformed["signals"]
    )

    ledger = [json.loads(line) for line in (out / "ledger" / "rejected.jsonl").read_text().splitlines()]
    by_url = {e["url"]: e for e in ledger}
    for path, (_, reason) in OPTED_OUT.items():
        entry = by_url.get(site.url(path))
        assert entry is not None, f"{path} missing from the ledger"
        assert entry["stage"] == "policy" and entry["reason"] == "opted-out"
        assert reason in entry["detail"], (path, entry["detail"])
        policy = [s for s in entry["signals"] if s["kind"] == "policy"]
        assert policy and policy[-1]["verdict"] == "deny"
        assert any(s["kind"] == "robots" for s in entry["signals"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pipeline"]["drops"]["policy/drop/opted-out"] == len(OPTED_OUT)
