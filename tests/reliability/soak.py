"""Soak: the multi-process pipeline under continuous input, RSS and lag sampled, then checked.

Run: ``python tests/reliability/soak.py --minutes 30 --out out/soak`` (``make soak``). It starts its
own broker (or uses ``--bootstrap``), runs one ``process``, ``dedup``, ``shards`` and ``ledger``
consumer process, and every ``--batch-s`` seconds writes a new WARC of ``--pages`` unique pages and
replays it. Every ``--sample-s`` seconds it records the RSS of every process (the broker with its JVM)
and, per group and partition, the committed offset and the end offset. At the end it stops the input,
waits for the pipeline to drain and writes:

* ``samples.csv``: ``t_s,kind,name,value`` rows (``rss_kib`` per process, ``lag`` per group/partition);
* ``result.json``: per process the RSS linear-fit slope (MiB/hour, after a warm-up), the fitted growth
  over the run, max RSS; per partition the longest stall (lag > 2 and no commit progress); and the
  URL checker's verdict (every page sealed exactly once or ledgered with a reason).

Pass: 0 lost, 0 duplicated, no partition stalled longer than ``--stall-limit-s``, and no process
whose fitted RSS growth over the measured part exceeds ``max(--growth-mib, 10 % of its mean)``. The
broker's JVM is judged against its heap bound instead (it commits heap lazily up to ``-Xmx``); its
trend is still reported (``trend_ok``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from integration.crash_harness import PipelineProbe, base_env  # noqa: E402
from reliability.common import check_urls, hwm_kib, tree_rss_kib, write_batch  # noqa: E402
from reliability.fleet import ChaosFleet, Replayer  # noqa: E402

from consumers.shards.reader import list_shards  # noqa: E402
from headrace.consume import group_id  # noqa: E402
from streams.bus import TopicPartition  # noqa: E402


def linear_slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


class LagSampler:
    """Per group and partition: committed offset and end offset (shards: manifests count as committed)."""

    def __init__(self, probe: PipelineProbe, shards_dir: Path) -> None:
        self.probe = probe
        self.shards_dir = shards_dir
        t = probe.topics
        self.sources = {"process": t.pages_raw, "dedup": t.docs_clean, "shards": t.docs_unique}

    def sample(self) -> dict[str, tuple[int, int]]:
        """``group/partition`` -> (committed, end)."""
        out: dict[str, tuple[int, int]] = {}
        for group, topic in self.sources.items():
            n = self.probe.bus.partitions_for(topic)
            tps = [TopicPartition(topic, p) for p in range(n)]
            ends = self.probe.bus.end_offsets(tps)
            got = self.probe.bus.committed_offsets(group_id(self.probe.config, group), topic)
            committed = {p: got.get(TopicPartition(topic, p), 0) for p in range(n)}
            if group == "shards":
                for shard in list_shards(self.shards_dir):
                    for src in shard.manifest.sources:
                        if src.source.startswith(f"{topic}@"):
                            committed[src.partition] = max(committed[src.partition], src.end)
            for p in range(n):
                out[f"{group}/{p}"] = (committed[p], ends[TopicPartition(topic, p)])
        return out


def stalls(series: dict[str, list[tuple[float, int, int]]], slack: int = 2) -> dict[str, float]:
    """Longest time each partition had lag > slack while its committed offset did not move."""
    out: dict[str, float] = {}
    for key, rows in series.items():
        longest, since, last_commit = 0.0, None, None
        for t, committed, end in rows:
            if end - committed > slack:
                if since is None or committed != last_commit:
                    since = t
                longest = max(longest, t - since)
            else:
                since = None
            last_commit = committed
        out[key] = round(longest, 1)
    return out


def analyse(
    rss: dict[str, list[tuple[float, int]]], warmup_frac: float, growth_mib: float
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, rows in rss.items():
        rows = [r for r in rows if r[1] > 0]
        if len(rows) < 4:
            continue
        cut = rows[int(len(rows) * warmup_frac) :]
        xs = [t for t, _ in cut]
        ys = [v / 1024 for _, v in cut]
        slope_s = linear_slope(xs, ys)  # MiB per second
        span = xs[-1] - xs[0]
        mean = sum(ys) / len(ys)
        fitted_growth = slope_s * span
        limit = max(growth_mib, 0.10 * mean)
        trend_ok = fitted_growth <= limit
        ok = trend_ok
        if name == "broker":
            # A JVM commits its heap lazily up to -Xmx, so its RSS climbs for a long time before it is
            # flat: judged against that bound (heap + 384 MiB of metaspace, threads, buffers), not a trend.
            ok = max(v for _, v in rows) / 1024 <= broker_bound_mib()
        out[name] = {
            "samples": len(rows),
            "max_rss_mib": round(max(v for _, v in rows) / 1024, 1),
            "mean_rss_mib": round(mean, 1),
            "slope_mib_per_hour": round(slope_s * 3600, 2),
            "fitted_growth_mib": round(fitted_growth, 2),
            "growth_limit_mib": round(limit, 1),
            "trend_ok": trend_ok,
            "growth_ok": ok,
        }
    return out


def broker_bound_mib() -> float:
    """The broker JVM's -Xmx (tools/kafka/broker.py, HEADRACE_KAFKA_HEAP) plus 384 MiB off-heap."""
    from kafka_fixture import broker_module

    xmx = broker_module._heap_opts()[1].removeprefix("-Xmx")
    return broker_module._jvm_size(xmx) / 2**20 + 384


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    broker = None
    bootstrap = args.bootstrap
    if not bootstrap:
        from kafka_fixture import Broker

        broker = Broker(out / "kafka", die_with_parent=True)
        broker.start()
        bootstrap = broker.bootstrap
    env = base_env(
        f"soak-{uuid.uuid4().hex[:6]}.",
        HEADRACE_SHARDS__MAX_DOCUMENTS="500",
        HEADRACE_SHARDS__MAX_AGE_S="5",
        HEADRACE_DEDUP__DIRECTORY=str(out / "dedup-index"),
    )
    shards_dir, ledger_dir = out / "shards", out / "ledger"
    fleet = ChaosFleet(
        bootstrap,
        env,
        out / "logs",
        shards_dir,
        replicas={"process": 1, "dedup": 1, "shards": 1, "ledger": 1},
        arm_faults=False,
        ledger_dir=ledger_dir,
    )
    replayer = Replayer(bootstrap, env, out / "replay.log")
    probe = PipelineProbe(bootstrap, env)
    sampler = LagSampler(probe, shards_dir)
    inputs: list[str] = []
    rss: dict[str, list[tuple[float, int]]] = {}
    lag: dict[str, list[tuple[float, int, int]]] = {}
    csv_fh = (out / "samples.csv").open("w", newline="")
    writer = csv.writer(csv_fh)
    writer.writerow(["t_s", "kind", "name", "value"])
    t0 = time.monotonic()
    duration = args.minutes * 60
    next_batch = next_sample = 0.0
    batch_no = 0
    try:
        fleet.start()
        while (now := time.monotonic() - t0) < duration:
            fleet.reap()
            replayer.tick()
            if now >= next_batch:
                path = out / "warc" / f"soak-{batch_no:05d}.warc.gz"
                inputs += write_batch(path, batch_no * args.pages, args.pages, seed=args.seed)
                replayer.queue.append(path)
                batch_no += 1
                next_batch += args.batch_s
            if now >= next_sample:
                sample(fleet, broker, sampler, rss, lag, writer, now)
                csv_fh.flush()
                next_sample += args.sample_s
            time.sleep(0.5)
        produced_s = time.monotonic() - t0
        replayer.drain(timeout=600)
        deadline = time.monotonic() + args.drain_s
        while time.monotonic() < deadline:
            fleet.reap()
            if probe.idle(shards_dir) and not replayer.busy:
                break
            time.sleep(2)
        sample(fleet, broker, sampler, rss, lag, writer, time.monotonic() - t0)
        time.sleep(3)
        codes = fleet.stop()
        time.sleep(1)
        verdict = check_urls(inputs, shards_dir, ledger_dir)
    finally:
        fleet.kill_all()
        replayer.stop()
        probe.close()
        csv_fh.close()
        if broker is not None:
            broker.stop()
    procs = analyse(rss, args.warmup, args.growth_mib)
    stall = stalls(lag)
    result = {
        "case": "soak",
        "minutes_with_input": round(produced_s / 60, 1),
        "batches": batch_no,
        "pages_per_batch": args.pages,
        "batch_every_s": args.batch_s,
        "sample_every_s": args.sample_s,
        "verdict": verdict.summary(),
        "processes": procs,
        "max_stall_s": stall,
        "stall_limit_s": args.stall_limit_s,
        "replay_failures": replayer.failures,
        "unexpected_crashes": dict(fleet.crashes),
        "exit_codes_at_stop": codes,
        "machine": machine(),
    }
    result["pass"] = (
        verdict.ok
        and all(p["growth_ok"] for p in procs.values())
        and all(v <= args.stall_limit_s for v in stall.values())
    )
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def sample(
    fleet: ChaosFleet,
    broker: Any,
    sampler: LagSampler,
    rss: dict[str, list[tuple[float, int]]],
    lag: dict[str, list[tuple[float, int, int]]],
    writer: Any,
    now: float,
) -> None:
    t = round(now, 1)
    pids = fleet.pids()
    if broker is not None and broker.pid:
        pids["broker"] = broker.pid
    for name, pid in pids.items():
        v = tree_rss_kib(pid) if name == "broker" else max(tree_rss_kib(pid), 0)
        rss.setdefault(name, []).append((t, v))
        writer.writerow([t, "rss_kib", name, v])
        if name != "broker":
            writer.writerow([t, "hwm_kib", name, hwm_kib(pid)])
    try:
        offsets = sampler.sample()
    except Exception as exc:
        writer.writerow([t, "lag_error", type(exc).__name__, 0])
        return
    for key, (committed, end) in offsets.items():
        lag.setdefault(key, []).append((t, committed, end))
        writer.writerow([t, "lag", key, end - committed])


def machine() -> dict[str, Any]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return {"nproc": os.cpu_count(), "mem_total_gib": round(int(mem) / 2**20, 1), "load_avg": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=float(os.environ.get("HEADRACE_SOAK_MINUTES", "30")))
    p.add_argument("--out", default="out/soak")
    p.add_argument("--bootstrap", default=os.environ.get("HEADRACE_KAFKA_BOOTSTRAP", ""))
    p.add_argument("--pages", type=int, default=40, help="pages per input batch")
    p.add_argument("--batch-s", type=float, default=10.0, help="seconds between input batches")
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--drain-s", type=float, default=600.0)
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of samples left out of the RSS fit")
    p.add_argument("--growth-mib", type=float, default=32.0)
    p.add_argument("--stall-limit-s", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    result = run(args)
    print(json.dumps({k: result[k] for k in ("pass", "verdict", "max_stall_s")}, indent=1))
    for name, r in result["processes"].items():
        print(f"{name:>12}: max {r['max_rss_mib']} MiB, slope {r['slope_mib_per_hour']} MiB/h, ok={r['growth_ok']}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
