"""The takedown workflow end to end on the real WARC corpus, through the CLI a compliance officer uses.

Ingest ``../shared/data`` (plus a planted near-copy of one page under another URL), take down one
domain, one URL, one content hash and the near-duplicates of one page; then: the bytes of every live
shard hold none of them, replaying the same archives admits none of them, the audit chain verifies and
a tampered line is caught, and a takedown SIGKILLed mid-rewrite and re-run ends in the same corpus.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from warcgen import gz_members, http_response, warc_record, warcinfo

from compliance.audit import verify_chain
from consumers.shards.reader import iter_documents, list_shards, verify_shards
from consumers.shards.tokenizer import load_tokenizer

pytestmark = pytest.mark.slow

# Near dedup is off while the corpus is built, so the planted near-copy is in it (as a corpus built
# before the page was known to be a problem would be); the replay afterwards runs the default config.
BUILD_ENV = {"HEADRACE_DEDUP__NEAR": "false", "HEADRACE_SHARDS__MAX_DOCUMENTS": "8"}


def headrace(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
        check=False,
    )


def run(inputs: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    summary = out.parent / f"{out.name}-summary.json"
    res = headrace(
        "run", *inputs, "--out", str(out), "--extractor", "resiliparse", "--no-progress",
        "--summary-json", str(summary), env=env,
    )  # fmt: skip
    assert res.returncode in (0, 3), res.stderr[-3000:]  # 3: damaged records in the quirks archives
    data: dict[str, Any] = json.loads(summary.read_text())
    return data


def live(out: Path) -> dict[str, dict[str, str]]:
    """doc_id -> url, content hash of every document in the live shards."""
    return {e.doc_id: {"url": e.url, "hash": e.content_hash} for _, e, _ in iter_documents(out / "shards")}


def near_copy_warc(path: Path, text: str, url: str = "https://mirror.example.net/copied-page", every: int = 80) -> None:
    """The page's text under another URL, one paragraph per line as in the original, with every
    ``every``-th word changed (MinHash agreement ~0.88 at 80)."""
    n = 0
    paras = []
    for line in text.splitlines():
        words = []
        for w in line.split():
            words.append("altered" if n % every == every // 2 else w)
            n += 1
        if words:
            paras.append("<p>" + html.escape(" ".join(words)) + "</p>")
    page = f"<html><head><title>copy</title></head><body><article>{''.join(paras)}</article></body></html>"
    rec = warc_record("response", url, http_response(page.encode()))
    path.write_bytes(gz_members([warcinfo(), rec]))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("takedown-e2e")
    out = root / "corpus"
    run([str(shared_data)], out, BUILD_ENV)
    docs = live(out)
    tok = load_tokenizer("gpt2")
    texts = {e.doc_id: tok.decode([int(x) for x in t[:-1]]) for _, e, t in iter_documents(out / "shards")}
    hosts = Counter(urlsplit(d["url"]).hostname for d in docs.values())
    # One page long enough to have a stable signature, from a host with no other document.
    single = {h for h, n in hosts.items() if n == 1}
    page = max((d for d in docs if urlsplit(docs[d]["url"]).hostname in single), key=lambda d: len(texts[d].split()))
    warc = root / "near-copy.warc.gz"
    near_copy_warc(warc, texts[page])
    run([str(warc)], out, BUILD_ENV)
    docs = live(out)
    copies = [d for d, v in docs.items() if v["url"] == "https://mirror.example.net/copied-page"]
    assert len(copies) == 1, "the planted near-copy must be in the corpus before the takedown"
    return {
        "root": root,
        "out": out,
        "inputs": [str(shared_data), str(warc)],
        "page": page,
        "page_text": texts[page],
        "copy": copies[0],
    }


def pick_targets(docs: dict[str, dict[str, str]], page: str, copy: str) -> dict[str, Any]:
    hosts = Counter(urlsplit(v["url"]).hostname or "" for v in docs.values())
    domain = next(h for h, n in hosts.most_common() if n >= 3 and h.count(".") >= 1 and "mirror" not in h)
    others = sorted(d for d, v in docs.items() if urlsplit(v["url"]).hostname != domain and d not in (page, copy))
    url_doc, hash_doc = others[0], others[len(others) // 2]
    return {"domain": domain, "url_doc": url_doc, "hash_doc": hash_doc}


def test_takedown_end_to_end(built: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    shutil.copytree(built["out"], out)
    before = live(out)
    t = pick_targets(before, built["page"], built["copy"])
    domain_docs = {d for d, v in before.items() if (urlsplit(v["url"]).hostname or "").endswith(t["domain"])}
    url = before[t["url_doc"]]["url"]
    content_hash = before[t["hash_doc"]]["hash"]
    hash_docs = {d for d, v in before.items() if v["hash"] == content_hash}
    near_docs = {built["page"], built["copy"]}
    gone = domain_docs | {t["url_doc"]} | hash_docs | near_docs
    who = ["--reason", "e2e test", "--requester", "legal@example.org"]

    # A dry run changes nothing and says what would change.
    dry = headrace("takedown", "request", "--domain", t["domain"], *who, "--out", str(out), "--dry-run",
                   "--json", str(tmp_path / "dry.json"))  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert live(out) == before
    planned = json.loads((tmp_path / "dry.json").read_text())
    assert planned["dry_run"] and planned["results"][0]["outcome"]["documents"] == len(domain_docs)

    for selector in (
        ["--domain", t["domain"]],
        ["--url", url, "--ticket", "T-2"],
        ["--content-hash", content_hash],
        ["--near-doc", built["page"], "--near-threshold", "0.8"],
    ):
        res = headrace("takedown", "request", *selector, *who, "--out", str(out))
        assert res.returncode == 0, res.stdout + res.stderr
    after = live(out)
    assert set(before) - set(after) == gone  # exactly the targets, nothing else
    assert verify_shards(out / "shards").ok

    # The bytes of every live shard: no token sequence, doc id or URL of a removed document.
    verify = headrace("takedown", "verify", "--out", str(out), "--json", str(tmp_path / "verify.json"))
    assert verify.returncode == 0, verify.stdout
    result = json.loads((tmp_path / "verify.json").read_text())
    assert result["ok"] and result["hits"] == [] and len(result["requests"]) == 4

    # Replaying the same archives (default config: near dedup on), plus another near-copy of the page
    # under a URL no rule names, admits none of them; the ledger says why for each.
    copy2 = tmp_path / "near-copy-2.warc.gz"
    near_copy_warc(copy2, built["page_text"], "https://another-mirror.example.org/page", every=70)
    summary = run([*built["inputs"], str(copy2)], out)
    assert summary["docs_written"] == 0
    assert live(out) == after
    assert summary["skipped_records"]["blocked"] >= len(gone) - 1  # by URL, before they are published
    rejected = [json.loads(line) for line in (out / "ledger" / "rejected.jsonl").read_text().splitlines()]
    blocked = {r["url"]: r["detail"] for r in rejected if r["reason"] == "blocked"}
    assert {before[d]["url"] for d in gone} <= set(blocked)
    assert blocked["https://another-mirror.example.org/page"].startswith("near:")

    # The same request again changes nothing.
    again = headrace("takedown", "request", "--domain", t["domain"], *who, "--out", str(out))
    assert again.returncode == 0 and "already" in again.stdout
    assert live(out) == after

    # The audit chain verifies; a tampered line is caught and named.
    audit = out / "compliance" / "audit.jsonl"
    assert verify_chain(audit).ok
    assert headrace("audit", "verify", "--out", str(out)).returncode == 0
    lines = audit.read_text().splitlines()
    lines[1] = lines[1].replace("legal@example.org", "someone-else@example.org")
    audit.write_text("\n".join(lines) + "\n")
    tampered = headrace("audit", "verify", "--out", str(out))
    assert tampered.returncode == 1
    report = json.loads(tampered.stdout)
    assert report["ok"] is False and report["first_bad_line"] == 2


def test_sigkill_mid_rewrite_then_rerun_gives_the_same_corpus(built: dict[str, Any], tmp_path: Path) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    shutil.copytree(built["out"], reference)
    shutil.copytree(built["out"], crashed)
    docs = live(reference)
    t = pick_targets(docs, built["page"], built["copy"])
    args = ["takedown", "request", "--domain", t["domain"], "--reason", "r", "--requester", "q"]
    assert headrace(*args, "--out", str(reference)).returncode == 0
    killed = headrace(*args, "--out", str(crashed), env={"HEADRACE_FAULT_POINT": "takedown.after-rewrite:1"})
    assert killed.returncode == -9, killed.stderr  # SIGKILL after the first shard's new version
    assert verify_shards(crashed / "shards").ok  # a reader mid-takedown sees a consistent corpus
    rerun = headrace(*args, "--out", str(crashed))
    assert rerun.returncode == 0, rerun.stderr
    assert live(crashed) == live(reference)
    assert verify_shards(crashed / "shards").ok
    assert verify_chain(crashed / "compliance" / "audit.jsonl").ok
    assert headrace("takedown", "verify", "--out", str(crashed)).returncode == 0
    names = {p.name for p in (crashed / "shards").iterdir() if p.suffix in (".bin", ".idx", ".tmp")}
    wanted = {f.name for s in list_shards(crashed / "shards") for f in (s.manifest.bin, s.manifest.idx)}
    assert names == wanted  # the old versions' bytes are retired, nothing half-written is left
