"""The takedown workflow: plan → block → forget → rewrite → verify → audit.

Every step is idempotent and the request's progress is journalled in its own folder, so a run killed at
any moment resumes to the same end state when it is run again:

1. **plan**: match the selectors against the live shards (manifests; decoded text for ``pii`` and
   near-duplicate selectors) and fingerprint the token sequences of the matched documents, before any
   byte changes. The plan is written once and reused by reruns.
2. **block**: publish block rules (URLs, content hashes, doc ids, domains, prefixes, near-duplicate
   signatures) to the local store and, when deployed, the compacted ``compliance.blocklist`` topic, so
   crawler, replay, processing and the shard writer refuse the content from now on.
3. **forget**: remove the documents from the dedup index (when it can be opened here; a running dedup
   group applies the doc-id rules itself).
4. **rewrite**: each affected shard gets a new version without the documents (atomic manifest swap).
5. **verify**: scan the bytes of every live shard for the fingerprints and the manifests for the ids,
   URLs and hashes; the request is complete only with 0 hits.
6. **audit**: one hash-chained record per request with requester, reason, selectors, matched doc ids,
   shard versions before and after, and the verification result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from compliance.audit import AuditLog
from compliance.takedown.fingerprint import Fingerprint
from compliance.takedown.match import MatchSet, RequestMatcher
from compliance.takedown.request import TakedownRequest
from compliance.takedown.rewrite import retire_unreferenced, rewrite_without
from compliance.takedown.verify import VerifyResult, verify_corpus
from consumers.shards.manifest import DocEntry
from consumers.shards.reader import Shard, list_shards
from consumers.shards.tokenizer import Tokenizer, load_tokenizer
from streams.faults import fault_point
from streams.ids import canonical_url
from streams.records import BlockRule

log = logging.getLogger(__name__)


class TakedownError(RuntimeError):
    """A takedown could not be completed (the message says which step and why)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rule_id(request_id: str, kind: str, value: str) -> str:
    return "blk-" + hashlib.sha256(f"{request_id}\n{kind}\n{value}".encode()).hexdigest()[:20]


@dataclass
class Plan:
    request_id: str
    matches: MatchSet
    shards_before: dict[str, str]  # shard_id -> data_prefix of the live version when planned
    near_signatures: list[list[int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        by_shard = self.matches.by_shard()
        return {
            "request_id": self.request_id,
            "documents": len(self.matches.doc_ids),
            "tokens": self.matches.tokens,
            "shards": len(by_shard),
            "by_shard": {sid: len(ms) for sid, ms in sorted(by_shard.items())},
            "matches": [
                {
                    "doc_id": m.doc_id,
                    "url": m.url,
                    "content_hash": m.content_hash,
                    "shard": m.shard_id,
                    "tokens": m.tokens,
                    "why": list(m.selectors),
                }
                for m in self.matches.matches
            ],
        }


@dataclass
class Outcome:
    request_id: str
    status: str  # "completed" | "already-completed" | "dry-run" | "verify-failed"
    documents: int
    tokens: int
    shards_rewritten: list[dict[str, str]]
    rules: int
    dedup_removed: int
    dedup_note: str
    verify: VerifyResult | None
    audit_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "documents": self.documents,
            "tokens": self.tokens,
            "shards_rewritten": self.shards_rewritten,
            "block_rules": self.rules,
            "dedup_removed": self.dedup_removed,
            "dedup_note": self.dedup_note,
            "verify": self.verify.to_dict() if self.verify else None,
            "audit_seq": self.audit_seq,
        }


RuleSink = Callable[[list[BlockRule]], object]
DedupRemover = Callable[[list[str]], tuple[int, str]]
Signature = Callable[[str], np.ndarray | None]


class Takedown:
    """Runs takedown requests against one corpus (a shard folder plus a compliance state folder)."""

    def __init__(
        self,
        shards_dir: Path,
        state_dir: Path,
        *,
        rule_sinks: list[RuleSink] | None = None,
        dedup_remover: DedupRemover | None = None,
        signature: Signature | None = None,
        tokenizer_loader: Callable[[str], Tokenizer] = load_tokenizer,
    ) -> None:
        self.shards_dir = shards_dir
        self.state_dir = state_dir
        self.requests_dir = state_dir / "takedowns"
        self.audit = AuditLog(state_dir / "audit.jsonl")
        self.rule_sinks = rule_sinks or []
        self.dedup_remover = dedup_remover
        self.signature = signature
        self._tokenizers: dict[str, Tokenizer] = {}
        self._tokenizer_loader = tokenizer_loader

    # -- helpers -------------------------------------------------------------------------------------
    def decode(self, shard: Shard, entry: DocEntry) -> str:
        ref = shard.manifest.tokenizer
        tok = self._tokenizers.get(ref.sha256)
        if tok is None:
            tok = self._tokenizers[ref.sha256] = self._tokenizer_loader(ref.name)
        ids = [int(t) for t in shard.tokens()[entry.start : entry.start + entry.length]]
        if ids and ids[-1] == ref.eos_id:
            ids = ids[:-1]
        return tok.decode(ids)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One takedown at a time per corpus: rewrites of the same shard must not interleave."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".takedown.lock").open("a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _folder(self, request_id: str) -> Path:
        return self.requests_dir / request_id

    def _near_signatures(self, request: TakedownRequest, shards: list[Shard]) -> list[np.ndarray]:
        sigs: list[np.ndarray] = []
        wanted = {s.value for s in request.selectors if s.kind == "near_doc"}
        texts = [s.value for s in request.selectors if s.kind == "near_text"]
        if (wanted or texts) and self.signature is None:
            raise TakedownError("near-duplicate selectors need the MinHash signer (dedup settings)")
        if wanted:
            found = set()
            for shard in shards:
                for entry in shard.manifest.docs:
                    if entry.doc_id in wanted:
                        texts.append(self.decode(shard, entry))
                        found.add(entry.doc_id)
            missing = wanted - found
            if missing:
                raise TakedownError(f"near_doc: {sorted(missing)} not found in the live shards")
        for text in texts:
            sig = self.signature(text) if self.signature else None
            if sig is None:
                raise TakedownError("near_text: the text is too short to have a MinHash signature")
            sigs.append(sig)
        return sigs

    # -- plan ----------------------------------------------------------------------------------------
    def plan(self, request: TakedownRequest) -> Plan:
        shards = list_shards(self.shards_dir)
        near = self._near_signatures(request, shards)
        matcher = RequestMatcher(request, self.decode, self.signature, near)
        matches = matcher.match_shards(shards)
        before = {
            s.manifest.shard_id: s.manifest.data_prefix for s in shards if s.manifest.shard_id in matches.by_shard()
        }
        return Plan(request.request_id, matches, before, [list(map(int, s)) for s in near])

    def _save_plan(self, request: TakedownRequest, plan: Plan) -> None:
        folder = self._folder(request.request_id)
        folder.mkdir(parents=True, exist_ok=True)
        shards = {s.manifest.shard_id: s for s in list_shards(self.shards_dir)}
        fps: dict[str, Any] = {}
        for m in plan.matches.matches:
            shard = shards[m.shard_id]
            entry = shard.manifest.docs[m.doc_index]
            toks = np.asarray(shard.tokens()[entry.start : entry.start + entry.length - 1])
            fp = Fingerprint.of(m.doc_id, toks)
            fps[m.doc_id] = {"tokens": fp.tokens, "hashes": np.asarray(fp.hashes, dtype=np.uint64)}
        np.savez(
            folder / "fingerprints.tmp.npz",
            **{f"h_{i}": v["hashes"] for i, v in enumerate(fps.values())},
        )
        meta = {
            "request": request.to_dict(),
            "plan": plan.summary(),
            "shards_before": plan.shards_before,
            "near_signatures": plan.near_signatures,
            "fingerprints": [
                {"doc_id": k, "tokens": v["tokens"], "key": f"h_{i}"} for i, (k, v) in enumerate(fps.items())
            ],
            "planned_at": _now(),
        }
        _write_json(folder / "plan.json", meta)
        (folder / "fingerprints.tmp.npz").replace(folder / "fingerprints.npz")

    def load_plan(self, request_id: str) -> dict[str, Any] | None:
        path = self._folder(request_id) / "plan.json"
        if not path.exists() or not (self._folder(request_id) / "fingerprints.npz").exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    # -- apply ---------------------------------------------------------------------------------------
    def rules_for(self, request: TakedownRequest, plan: dict[str, Any]) -> list[BlockRule]:
        rid = request.request_id
        at = _now()
        out: dict[tuple[str, str], BlockRule] = {}

        def add(kind: str, value: str) -> None:
            out[(kind, value)] = BlockRule(
                rule_id=rule_id(rid, kind, value),
                kind=kind,
                value=value,
                request_id=rid,
                reason=request.reason,
                created_at=at,
            )

        for s in request.selectors:
            if s.kind in ("url", "url_prefix", "domain", "doc_id", "content_hash"):
                add(s.kind, s.value)
        for m in plan["plan"]["matches"]:
            add("doc_id", m["doc_id"])
            add("url", canonical_url(m["url"]))
            if m.get("content_hash"):
                add("content_hash", m["content_hash"])
        for sig in plan.get("near_signatures", []):
            add("near", f"{request.near_threshold}:" + ",".join(f"{int(x):x}" for x in sig))
        return list(out.values())

    def run(self, request: TakedownRequest, *, dry_run: bool = False) -> tuple[Plan | None, Outcome]:
        with self._locked():
            return self._run(request, dry_run=dry_run)

    def _run(self, request: TakedownRequest, *, dry_run: bool) -> tuple[Plan | None, Outcome]:
        rid = request.request_id
        done = self.audit.find(event="takedown-completed", request_id=rid)
        if done and not dry_run:
            # Idempotent: nothing to do, but say whether the corpus is still clean.
            result = verify_corpus(self.shards_dir, self.requests_dir, only=[rid])
            return None, Outcome(rid, "already-completed", 0, 0, [], 0, 0, "", result, int(done[-1]["seq"]))
        saved = self.load_plan(rid)
        plan_obj: Plan | None = None
        if saved is None:
            plan_obj = self.plan(request)
            if dry_run:
                s = plan_obj.summary()
                return plan_obj, Outcome(rid, "dry-run", s["documents"], s["tokens"], [], 0, 0, "", None, None)
            self._save_plan(request, plan_obj)
            saved = self.load_plan(rid)
            if saved is None:
                raise TakedownError(f"{rid}: plan could not be saved under {self._folder(rid)}")
            self.audit.append(
                {
                    "event": "takedown-started",
                    "request_id": rid,
                    **_request_fields(request),
                    "matched": saved["plan"]["documents"],
                    "shards": saved["plan"]["by_shard"],
                }
            )
        elif dry_run:
            s = saved["plan"]
            return None, Outcome(
                rid, "dry-run", s["documents"], s["tokens"], [], 0, 0, "resumable plan exists", None, None
            )
        # block
        rules = self.rules_for(request, saved)
        for sink in self.rule_sinks:
            sink(rules)
        # forget
        doc_ids = sorted({m["doc_id"] for m in saved["plan"]["matches"]})
        removed, note = (0, "no dedup index configured")
        if self.dedup_remover is not None and doc_ids:
            removed, note = self.dedup_remover(doc_ids)
        # rewrite
        rewritten = self._rewrite(rid, saved)
        # verify
        result = verify_corpus(self.shards_dir, self.requests_dir, only=[rid])
        status = "completed" if result.ok else "verify-failed"
        entry = self.audit.append(
            {
                "event": "takedown-completed" if result.ok else "takedown-verify-failed",
                "request_id": rid,
                **_request_fields(request),
                "matched_doc_ids": doc_ids,
                "tokens_removed": saved["plan"]["tokens"],
                "shard_versions": rewritten,
                "block_rules": [r.rule_id for r in rules],
                "dedup_removed": removed,
                "dedup_note": note,
                "verification": result.to_dict(),
            }
        )
        if not result.ok:
            log.error("takedown %s: verification found %d hits", rid, result.hits_total)
        return plan_obj, Outcome(
            rid,
            status,
            len(doc_ids),
            int(saved["plan"]["tokens"]),
            rewritten,
            len(rules),
            removed,
            note,
            result,
            int(entry["seq"]),
        )

    def _rewrite(self, rid: str, saved: dict[str, Any]) -> list[dict[str, str]]:
        from consumers.shards.manifest import manifest_path, read_manifest

        by_shard: dict[str, set[str]] = {}
        for m in saved["plan"]["matches"]:
            by_shard.setdefault(m["shard"], set()).add(m["doc_id"])
        out: list[dict[str, str]] = []
        for shard_id, docs in sorted(by_shard.items()):
            path = manifest_path(self.shards_dir, shard_id)
            if not path.exists():
                raise TakedownError(f"{rid}: shard {shard_id} disappeared (merged?); rerun the request")
            current = read_manifest(path)
            if current.retired_by:
                raise TakedownError(f"{rid}: shard {shard_id} was merged into {current.retired_by}; rerun the request")
            before = saved["shards_before"].get(shard_id, current.data_prefix)
            new = rewrite_without(self.shards_dir, current, docs, rid)
            fault_point("takedown.after-rewrite")
            out.append(
                {
                    "shard": shard_id,
                    "before": before,
                    "after": new.data_prefix,
                    "bin_sha256": new.bin.sha256,
                    "documents_left": str(new.documents),
                }
            )
        retire_unreferenced(self.shards_dir, by_shard)
        return out


def _request_fields(request: TakedownRequest) -> dict[str, Any]:
    return {
        "requester": request.requester,
        "reason": request.reason,
        "ticket": request.ticket,
        "selectors": [s.describe() for s in request.selectors],
    }


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
