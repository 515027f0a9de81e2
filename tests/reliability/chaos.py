"""Chaos run: the multi-process pipeline on the real broker under every fault we can inject at once.

Processes: ``headrace replay`` (the producer, rerun after each kill), ``process``/``dedup``/``shards``
(two replicas each) and ``ledger`` (one), all real ``headrace`` CLI processes. Faults, drawn at random
every ``--every-s`` seconds while input flows:

* ``sigkill`` / ``sigterm``: a random consumer process of any group (then restarted);
* ``replay-kill``: SIGKILL or SIGTERM of the replay producer (rerun on the same files);
* ``rebalance``: an extra, dynamic member joins a random group and leaves 10-20 s later;
* ``pause``: SIGSTOP of a member for longer than the session timeout, then SIGCONT: it comes back as
  a zombie whose partitions were reassigned, and must be fenced rather than write a duplicate;
* ``slow-broker``: SIGSTOP of the broker for a few seconds, then SIGCONT;
* ``disk-full``: the shard volume is a small tmpfs; it is remounted smaller than what it holds for a
  few seconds (every write gets ENOSPC), then given its size back;
* ``broker-restart``: a clean broker stop and start on the same data (at most ``--broker-restarts``).

The input is ``--pages`` unique pages, a few percent of them exact text duplicates under another URL
(the dedup stage must reject them with a reason). The checker (``reliability.common.check_urls``)
then requires every URL to be sealed exactly once or to be in the ledger with a reason, and the
shards to verify byte for byte. ``python tests/reliability/chaos.py --out out/chaos`` writes
``result.json``; ``make chaos`` runs the big version.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from integration.crash_harness import PipelineProbe, base_env  # noqa: E402
from reliability.common import check_urls, tree_rss_kib, write_batch  # noqa: E402
from reliability.fleet import ChaosFleet, Replayer  # noqa: E402

from consumers.shards.reader import list_shards, verify_shards  # noqa: E402

SESSION_TIMEOUT_MS = 6000
EVENTS = {
    "sigkill": 4.0,
    "sigterm": 2.0,
    "replay-kill": 1.0,
    "rebalance": 1.5,
    "pause": 1.5,
    "slow-broker": 1.0,
    "disk-full": 1.0,
    "broker-restart": 0.5,
}


class Volume:
    """The shard folder on its own small tmpfs (needs root); ``fill()`` makes every write fail."""

    def __init__(self, path: Path, size_mib: int) -> None:
        self.path = path
        self.size_mib = size_mib
        self.mounted = False
        self.reason = ""

    def mount(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.mounted = res.returncode == 0
        self.reason = "" if self.mounted else (res.stderr.strip() or f"mount rc={res.returncode}")
        return self.mounted

    def used_kib(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024

    def fill(self) -> None:
        # tmpfs refuses a size below what it holds; the smallest it accepts leaves no room to write.
        used = self.used_kib() + 64
        subprocess.run(["mount", "-o", f"remount,size={used}k", str(self.path)], check=True)

    def free(self) -> None:
        subprocess.run(["mount", "-o", f"remount,size={self.size_mib}m", str(self.path)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False


def write_inputs(directory: Path, pages: int, files: int, seed: int, dup_every: int) -> tuple[list[Path], list[str]]:
    """``pages`` unique URLs in ``files`` WARCs; every ``dup_every``-th page repeats an earlier text."""
    per = -(-pages // files)
    paths, urls = [], []
    for f in range(files):
        start, n = f * per, min(per, pages - f * per)
        if n <= 0:
            break
        path = directory / f"chaos-{f:03d}.warc.gz"
        urls += write_batch(path, start, n, seed, dup_every=dup_every)
        paths.append(path)
    return paths, urls


def dedup_env(out: Path, redis_url: str | None) -> tuple[dict[str, str], int]:
    """Dedup settings and replica count: the shared Redis index lets two dedup replicas run (the
    production layout); without Redis, one replica with the embedded index in the run's folder."""
    if redis_url:
        return {
            "HEADRACE_DEDUP__BACKEND": "redis",
            "HEADRACE_DEDUP__REDIS_URL": redis_url,
            "HEADRACE_DEDUP__REDIS_NAMESPACE": f"chaos-{uuid.uuid4().hex[:8]}",
            "HEADRACE_DEDUP__REDIS_BUCKETS": "256",
        }, 2
    return {"HEADRACE_DEDUP__DIRECTORY": str(out / "dedup-index")}, 1


def planted_duplicates(pages: int, files: int, dup_every: int) -> int:
    """How many pages ``write_inputs`` wrote as a copy of the text before them (the first page of a
    file has nothing to copy)."""
    per = -(-pages // files)
    starts = {f * per for f in range(files)}
    return sum(1 for i in range(0, pages, dup_every) if i not in starts) if dup_every else 0


def run(args: argparse.Namespace, broker: Any = None, redis_url: str | None = None) -> dict[str, Any]:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    redis_server = None
    if redis_url is None and args.redis:
        from redis_fixture import redis_server_module

        redis_server = redis_server_module.RedisServer(out / "redis", die_with_parent=True)
        try:
            redis_server.start()
            redis_url = redis_server.url
        except redis_server_module.RedisServerError as exc:
            print(f"redis-server unavailable ({exc}); one dedup replica on the embedded index", file=sys.stderr)
            redis_server = None
    dedup, dedup_replicas = dedup_env(out, redis_url)
    own_broker = broker is None
    if own_broker:
        from kafka_fixture import Broker

        broker = Broker(out / "kafka", die_with_parent=True)
        broker.start()
    from kafka_fixture import broker_module

    rng = random.Random(args.seed)
    files, urls = write_inputs(out / "warc", args.pages, args.files, args.seed, args.dup_every)
    env = base_env(
        f"chaos-{uuid.uuid4().hex[:6]}.",
        HEADRACE_KAFKA__SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_MS),
        HEADRACE_SHARDS__ORPHAN_GRACE_S="20.0",
        **dedup,
    )
    volume = Volume(out / "shards", args.volume_mib)
    disk_full = args.disk_full and volume.mount()
    shards_dir, ledger_dir = volume.path, out / "ledger"
    fleet = ChaosFleet(
        broker.bootstrap,
        env,
        out / "logs",
        shards_dir,
        replicas={"process": 2, "dedup": dedup_replicas, "shards": 2, "ledger": 1},
        rng=random.Random(args.seed + 1),
        arm_faults=args.fault_points,
        ledger_dir=ledger_dir,
    )
    replayer = Replayer(broker.bootstrap, env, out / "replay.log")
    events: Counter[str] = Counter()
    timeline: list[dict[str, Any]] = []
    max_rss: dict[str, int] = {}
    probe: PipelineProbe | None = None
    extra_until = 0.0
    restarts = 0
    t0 = time.monotonic()

    def sample_rss() -> None:
        for name, pid in fleet.pids().items():
            group = name.rsplit("-", 1)[0]
            max_rss[group] = max(max_rss.get(group, 0), tree_rss_kib(pid))
        if broker.pid:
            max_rss["broker"] = max(max_rss.get("broker", 0), tree_rss_kib(broker.pid))

    def sealed() -> int:
        return sum(len(s.manifest.docs) for s in list_shards(shards_dir))

    try:
        fleet.start()
        replayer.queue.append(files[0])
        deadline = time.monotonic() + 300
        while sealed() == 0:  # warm-up: faults start once the pipeline seals
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing sealed in 300 s; logs in {fleet.workdir}")
            fleet.reap()
            replayer.tick()
            time.sleep(0.5)
        weights = dict(EVENTS)
        if not disk_full:
            weights.pop("disk-full")
        if args.broker_restarts == 0:
            weights.pop("broker-restart")
        pending = rng.sample(list(weights), len(weights))
        fed = 1
        phase_start = time.monotonic()
        while time.monotonic() - phase_start < args.seconds:
            frac = (time.monotonic() - phase_start) / args.seconds
            due = min(len(files), 1 + int(len(files) * frac / 0.7) + 1)
            if fed < due:  # input keeps arriving over the first 70 % of the fault phase
                replayer.queue.extend(files[fed:due])
                fed = due
            time.sleep(rng.uniform(0.5, 1.5) * args.every_s)
            fleet.reap()
            replayer.tick()
            sample_rss()
            if fleet.extras and time.monotonic() > extra_until:
                fleet.remove_extras(rng.choice([signal.SIGTERM, signal.SIGKILL]))
            # Every kind once (in random order) before drawing by weight, so short runs cover them all.
            kind = pending.pop() if pending else rng.choices(list(weights), weights=list(weights.values()))[0]
            note: dict[str, Any] = {"t": round(time.monotonic() - t0, 1), "event": kind, "sealed": sealed()}
            if kind in ("sigkill", "sigterm"):
                sig = signal.SIGKILL if kind == "sigkill" else signal.SIGTERM
                slot = fleet.signal_random(sig)
                note["victim"] = slot.instance_id if slot else None
            elif kind == "replay-kill":
                note["hit"] = replayer.kill(rng.choice([signal.SIGKILL, signal.SIGTERM]))
            elif kind == "rebalance":
                if not fleet.extras:
                    slot = fleet.add_extra(rng.choice(["process", "dedup", "shards"]))
                    note["victim"] = slot.instance_id
                    extra_until = time.monotonic() + rng.uniform(10, 20)
            elif kind == "pause":
                slot = fleet.pause_random(SESSION_TIMEOUT_MS / 1000 + rng.uniform(2, 5))
                note["victim"] = slot.instance_id if slot else None
            elif kind == "slow-broker":
                secs = rng.uniform(2, 5)
                broker_module._signal_group(broker.pid, signal.SIGSTOP)
                time.sleep(secs)
                broker_module._signal_group(broker.pid, signal.SIGCONT)
                note["seconds"] = round(secs, 1)
            elif kind == "disk-full":
                secs = rng.uniform(4, 8)
                volume.fill()
                time.sleep(secs)
                volume.free()
                note["seconds"] = round(secs, 1)
            elif kind == "broker-restart":
                if restarts < args.broker_restarts:
                    broker.restart()
                    restarts += 1
                else:
                    kind = note["event"] = "broker-restart-skipped"
            events[kind] += 1
            timeline.append(note)
        # Recovery: no more faults; every file must be replayed and everything must settle.
        replayer.queue.extend(files[fed:])
        fleet.remove_extras()
        replayer.drain(timeout=900)
        probe = PipelineProbe(broker.bootstrap, env)
        settle_deadline = time.monotonic() + args.settle_s
        settled = False
        while time.monotonic() < settle_deadline:
            fleet.reap()
            sample_rss()
            if replayer.busy:
                replayer.tick()
            elif probe.idle(shards_dir):
                settled = True
                break
            time.sleep(2)
        time.sleep(3)
        codes = fleet.stop()
        verdict = check_urls(urls, shards_dir, ledger_dir)
        report = verify_shards(shards_dir)
        fenced = sum(p.read_text(errors="replace").count("fenced") for p in fleet.workdir.glob("*.log"))
    finally:
        fleet.kill_all()
        replayer.stop()
        if probe is not None:
            probe.close()
        if own_broker:
            broker.stop()
        if redis_server is not None:
            redis_server.stop()
        if not args.keep:
            volume.unmount()
    result = {
        "case": "chaos",
        "seed": args.seed,
        "pages_in": len(urls),
        "files": len(files),
        "fault_phase_s": args.seconds,
        "events": dict(events),
        "signals": fleet.signals_sent,
        "fault_point_kills": dict(fleet.fault_hits),
        "replay_kills": replayer.kills,
        "replay_failures": replayer.failures,
        "fenced_log_lines": fenced,
        "settled": settled,
        "dedup": f"{dedup.get('HEADRACE_DEDUP__BACKEND', 'embedded')} x{dedup_replicas}",
        "disk_full": "tmpfs" if disk_full else f"not run: {volume.reason or 'disabled'}",
        "verdict": verdict.summary(),
        "shards_verify_ok": report.ok,
        "shards_verify_problems": report.problems[:5],
        "unexpected_crashes": dict(fleet.crashes),
        "max_rss_mib": {k: round(v / 1024, 1) for k, v in max_rss.items()},
        "exit_codes_at_stop": codes,
        "duration_s": round(time.monotonic() - t0, 1),
        "timeline": timeline,
    }
    result["pass"] = verdict.ok and report.ok and settled
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Chaos run of the multi-process pipeline on a real broker")
    p.add_argument("--out", default="out/chaos")
    p.add_argument("--pages", type=int, default=int(os.environ.get("HEADRACE_CHAOS_PAGES", "10000")))
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--seconds", type=float, default=float(os.environ.get("HEADRACE_CHAOS_SECONDS", "480")))
    p.add_argument("--every-s", type=float, default=4.0, help="mean seconds between faults")
    p.add_argument("--broker-restarts", type=int, default=2)
    p.add_argument("--dup-every", type=int, default=25, help="every n-th page repeats an earlier text")
    p.add_argument("--volume-mib", type=int, default=256)
    p.add_argument("--no-disk-full", dest="disk_full", action="store_false")
    p.add_argument("--fault-points", action="store_true", help="also arm the crash harness's fault points")
    p.add_argument("--settle-s", type=float, default=600)
    p.add_argument("--seed", type=int, default=int(os.environ.get("HEADRACE_CHAOS_SEED", "11")))
    p.add_argument("--no-redis", dest="redis", action="store_false", help="embedded dedup index, one replica")
    p.add_argument("--keep", action="store_true", help="leave the shard tmpfs mounted for inspection")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=1))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
