#!/usr/bin/env python3
"""Dedup speed and memory, headrace side by side with datasketch and datatrove in the same run.

    .venv/bin/python bench/bench_dedup.py [--append BENCHMARKS.md] [--index-docs N] [--redis-docs N]

1. Per document, on real extracted documents (../shared/data, or the bundled sample): headrace's
   signature + LSH check (normalise, 5-gram shingles, 112 hashes, 14 band keys, embedded-index
   check-and-add in batches of 256), against datasketch ``MinHash(112).update_batch`` on the same
   shingles with and without ``MinHashLSH`` query+insert, and datatrove's signature step
   (``MinhashDedupSignature.get_shingles`` + ``get_signature``, FineWeb config). Medians of 3 runs.
2. Embedded index: bytes per document in memory (lookup tables) and on disk, and inserts per second,
   for ``--index-docs`` random documents.
3. Redis backend: check-and-add throughput with 1 and 2 replica processes against one redis-server,
   and bytes per document (INFO used_memory growth and the sum of MEMORY USAGE over the keys).
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumers.dedup.embedded import EmbeddedIndex  # noqa: E402
from consumers.dedup.index import Entry  # noqa: E402
from consumers.dedup.minhash import MinHasher, exact_key_int, tokens  # noqa: E402

RUNS = 3


def load_texts() -> tuple[list[str], str]:
    from consumers.extract import ExtractConfig, Extractor
    from crawler.sources import expand_inputs
    from crawler.warc import iter_warc
    from streams.records import Document, Page

    env = os.environ.get("HEADRACE_TEST_DATA")
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    if not folder.is_dir():
        folder = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else REPO / "samples"
    pages = []
    for ref in expand_inputs([str(folder)]):
        if ref.error is None:
            pages.extend(p for p in iter_warc(ref.name) if isinstance(p, Page))
    docs = Extractor(ExtractConfig(extractor="resiliparse")).extract_batch(pages)
    texts = [d.text for d in docs if isinstance(d, Document) and d.text.split()]
    return texts, str(folder)


def median_ms(fn, n_docs: int) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n_docs * 1000


def bench_per_doc(texts: list[str]) -> dict[str, float]:
    hasher = MinHasher()
    res: dict[str, float] = {}
    words = [[t.decode() for t in tokens(x)] for x in texts]
    shingles = [[" ".join(w[i : i + 5]).encode() for i in range(max(1, len(w) - 4))] for w in words]

    def ours_full() -> None:
        with tempfile.TemporaryDirectory() as d:
            idx = EmbeddedIndex(d)
            for s in range(0, len(texts), 256):
                entries = []
                for i, t in enumerate(texts[s : s + 256]):
                    sig = hasher.signature(t)
                    bands = hasher.band_keys(sig) if sig is not None else []
                    entries.append(Entry(f"{s + i:032x}", exact_key_int(t), bands))
                idx.check_and_add_many(entries)
            idx.abandon()

    def ours_signature() -> None:
        for t in texts:
            sig = hasher.signature(t)
            if sig is not None:
                hasher.band_keys(sig)

    res["headrace: signature + band keys + index check-and-add"] = median_ms(ours_full, len(texts))
    res["headrace: signature + band keys (no index)"] = median_ms(ours_signature, len(texts))
    if importlib.util.find_spec("datasketch"):
        from datasketch import MinHash, MinHashLSH

        def ds_sig() -> None:
            for sh in shingles:
                m = MinHash(num_perm=112)
                m.update_batch(sh)

        def ds_lsh() -> None:
            lsh = MinHashLSH(num_perm=112, params=(14, 8))
            for i, sh in enumerate(shingles):
                m = MinHash(num_perm=112)
                m.update_batch(sh)
                if not lsh.query(m):
                    lsh.insert(str(i), m)

        res["datasketch: MinHash(112).update_batch, same shingles"] = median_ms(ds_sig, len(texts))
        res["datasketch: MinHash(112) + MinHashLSH(14x8) query+insert"] = median_ms(ds_lsh, len(texts))
    if importlib.util.find_spec("datatrove"):
        from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
        from datatrove.utils.hashing import HashConfig

        with tempfile.TemporaryDirectory() as d:
            step = MinhashDedupSignature(
                output_folder=d,
                # FineWeb's setting (sha1, 64-bit); datatrove 0.10.1's "xxhash" choice passes str to xxhash 4,
                # which refuses it
                config=MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1")),
            )
            step.get_signature(step.get_shingles(texts[0]))  # loads spaCy once, outside the timing

            def dt_sig() -> None:
                for t in texts:
                    sh = step.get_shingles(t)
                    if sh.size:  # datatrove skips documents shorter than 5 words
                        step.get_signature(sh)

            res["datatrove: MinhashDedupSignature get_shingles + get_signature"] = median_ms(dt_sig, len(texts))
    return res


def bench_embedded(n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        idx = EmbeddedIndex(d, snapshot_min_docs=max(n // 2, 1))
        batches = []
        for s in range(0, n, 256):
            keys = rng.integers(0, 2**63, size=(min(256, n - s), 15), dtype=np.uint64).tolist()
            batches.append([Entry(f"{s + i:032x}", k[0], k[1:]) for i, k in enumerate(keys)])
        t0 = time.perf_counter()
        for k, b in enumerate(batches):
            idx.check_and_add_many(b)
            if k % 16 == 15:
                idx.checkpoint()
        idx.checkpoint()
        dt = time.perf_counter() - t0
        st = idx.stats()
        idx.close()
        disk = sum(p.stat().st_size for p in Path(d).iterdir())
        t0 = time.perf_counter()
        EmbeddedIndex(d).close()
        reopen = time.perf_counter() - t0
    return {
        "documents": n,
        "memory B/doc (lookup tables)": st.bytes_memory / n,
        "disk B/doc (records.bin + tables.snap + small files)": disk / n,
        "check-and-add docs/s (batches of 256, checkpoint every 16)": n / dt,
        "reopen s (verify records, load snapshot)": reopen,
    }


def _redis_worker(url: str, ns: str, start: int, n: int, shared: int, seed: int, q: mp.Queue) -> None:
    from consumers.dedup.redis_backend import RedisIndex

    rng = np.random.default_rng(seed)
    idx = RedisIndex(url, namespace=ns, buckets=max(1024, 2 * (n // 100)))
    keys = rng.integers(0, 2**63, size=(n, 15), dtype=np.uint64).tolist()
    common = np.random.default_rng(99).integers(0, 2**63, size=(shared, 15), dtype=np.uint64).tolist()
    keys[:shared] = common  # the same documents' keys reach both replicas (they must agree)
    entries = [Entry(f"{start + i:032x}", k[0], k[1:]) for i, k in enumerate(keys)]
    t0 = time.perf_counter()
    unique = 0
    for s in range(0, n, 256):
        unique += sum(1 for v in idx.check_and_add_many(entries[s : s + 256]) if type(v).__name__ == "Unique")
    q.put((time.perf_counter() - t0, unique))
    idx.close()


def bench_redis(n: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO / "tools" / "redis"))
    import redis
    from server import RedisServer

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d, RedisServer(Path(d), die_with_parent=True) as srv:
        client = redis.Redis.from_url(srv.url)
        ctx = mp.get_context("spawn")
        for replicas in (1, 2):
            client.flushall()
            base = int(client.info("memory")["used_memory"])
            q: mp.Queue = ctx.Queue()
            per = n // replicas
            shared = per // 10 if replicas == 2 else 0
            procs = [
                ctx.Process(target=_redis_worker, args=(srv.url, "bench", r * per, per, shared, r, q))
                for r in range(replicas)
            ]
            t0 = time.perf_counter()
            for p in procs:
                p.start()
            results = [q.get() for _ in procs]
            for p in procs:
                p.join()
            wall = time.perf_counter() - t0
            kept = sum(u for _, u in results)
            docs = n - shared  # distinct documents
            used = int(client.info("memory")["used_memory"]) - base
            usage = sum(int(client.memory_usage(k, samples=0) or 0) for k in client.scan_iter(match="*", count=1000))
            out[f"{replicas} replica(s): check-and-add docs/s (wall, incl. process start)"] = n / wall
            out[f"{replicas} replica(s): docs/s per replica (own timer)"] = statistics.mean(per / t for t, _ in results)
            out[f"{replicas} replica(s): kept / distinct documents"] = kept / docs
            out[f"{replicas} replica(s): used_memory growth B/doc"] = used / kept
            out[f"{replicas} replica(s): MEMORY USAGE sum B/doc"] = usage / kept
    return out


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    py = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python {py}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", type=Path, help="append the results to this markdown file")
    ap.add_argument("--index-docs", type=int, default=300_000)
    ap.add_argument("--redis-docs", type=int, default=100_000)
    ap.add_argument("--skip-redis", action="store_true")
    args = ap.parse_args()
    texts, source = load_texts()
    words = sum(len(t.split()) for t in texts) / len(texts)
    lines = [
        f"### Dedup ({time.strftime('%Y-%m-%d')})",
        "",
        "Command: `.venv/bin/python bench/bench_dedup.py"
        f" --index-docs {args.index_docs} --redis-docs {args.redis_docs}`"
        f" (or `make bench-dedup`). Machine: {machine()}. Medians of {RUNS} runs.",
        "",
        f"Per document: {len(texts)} documents extracted (resiliparse) from `{Path(source).name}`, "
        f"{words:.0f} words on average.",
        "",
        "| path | ms/doc |",
        "|---|---|",
    ]
    per = bench_per_doc(texts)
    for k, v in per.items():
        lines.append(f"| {k} | {v:.3f} |")
    ours = per["headrace: signature + band keys + index check-and-add"]
    for key, label in (
        ("datasketch: MinHash(112) + MinHashLSH(14x8) query+insert", "datasketch MinHash + LSH"),
        ("datasketch: MinHash(112).update_batch, same shingles", "datasketch MinHash alone"),
        ("datatrove: MinhashDedupSignature get_shingles + get_signature", "datatrove signature step"),
    ):
        if key in per:
            lines.append(f"| ratio {label} / headrace (signature + LSH check) | {per[key] / ours:.2f}x |")
    lines += ["", "Embedded index:", "", "| measure | value |", "|---|---|"]
    for k, v in bench_embedded(args.index_docs).items():
        lines.append(f"| {k} | {v:,.1f} |")
    if not args.skip_redis:
        lines += ["", f"Redis backend ({args.redis_docs:,} random documents, pipelined batches of 256):", ""]
        lines += ["| measure | value |", "|---|---|"]
        for k, v in bench_redis(args.redis_docs).items():
            lines.append(f"| {k} | {v:,.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        if not args.append.exists():
            args.append.write_text("# Benchmarks\n\nEach section: the command, the machine, the figures.\n\n")
        with args.append.open("a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
