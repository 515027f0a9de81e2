"""The chaos fleet: the crash harness's consumer processes plus the ledger group, extra members that
come and go (forced rebalances), SIGTERM as well as SIGKILL, SIGSTOP/SIGCONT pauses (zombies), and a
replay producer that can itself be killed and rerun.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from integration.crash_harness import Fleet, Slot, headrace_cmd

log = logging.getLogger(__name__)


@dataclass
class ChaosFleet(Fleet):
    ledger_dir: Path | None = None
    extras: list[Slot] = field(default_factory=list)
    signals_sent: dict[str, int] = field(default_factory=dict)
    _extra_seq: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()

    def launch(self, slot: Slot) -> None:
        if slot.group != "ledger":
            super().launch(slot)
            return
        slot.launches += 1
        slot.fault = None
        args = [
            "consume",
            "ledger",
            "--bootstrap",
            self.bootstrap,
            "--instance-id",
            slot.instance_id,
            "--static-member",
            "-v",
            "--out",
            str(self.ledger_dir),
        ]
        slot.log = self.workdir / f"{slot.instance_id}.{slot.launches:03d}.log"
        with slot.log.open("wb") as fh:
            slot.proc = subprocess.Popen(headrace_cmd(*args), env=self.env, stdout=fh, stderr=subprocess.STDOUT)

    def _count(self, what: str) -> None:
        self.signals_sent[what] = self.signals_sent.get(what, 0) + 1

    def up(self) -> list[Slot]:
        return [s for s in self.slots if self.ready(s)]

    def signal_random(self, sig: signal.Signals, groups: tuple[str, ...] | None = None) -> Slot | None:
        """SIGKILL or SIGTERM one working member, wait for it to go, restart it."""
        self.reap()
        up = [s for s in self.up() if groups is None or s.group in groups]
        if not up:
            return None
        slot = self.rng.choice(up)
        assert slot.proc is not None
        slot.proc.send_signal(sig)
        try:
            rc = slot.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            rc = slot.proc.wait()
        self.harness_kills += 1
        self._count(f"{sig.name}:{slot.group}")
        self._note_exit(slot, rc, killed_by_us=True)
        self.launch(slot)
        return slot

    def pause_random(self, seconds: float, groups: tuple[str, ...] = ("process", "dedup", "shards")) -> Slot | None:
        """SIGSTOP a member past the session timeout (its partitions go to others), then SIGCONT it:
        it comes back as a zombie that must be fenced, not write a duplicate."""
        up = [s for s in self.up() if s.group in groups]
        if not up:
            return None
        slot = self.rng.choice(up)
        assert slot.proc is not None
        slot.proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        if slot.proc.poll() is None:
            slot.proc.send_signal(signal.SIGCONT)
        self._count(f"SIGSTOP:{slot.group}")
        return slot

    def add_extra(self, group: str) -> Slot:
        """A dynamic (non-static) member: joining and leaving forces a group rebalance."""
        self._extra_seq += 1
        slot = Slot(group, 100 + self._extra_seq)
        slot.launches += 1
        args = ["consume", group, "--bootstrap", self.bootstrap, "--instance-id", slot.instance_id, "-v"]
        if group == "shards":
            args += ["--out", str(self.shards_dir)]
        slot.log = self.workdir / f"extra-{slot.instance_id}.log"
        with slot.log.open("wb") as fh:
            slot.proc = subprocess.Popen(headrace_cmd(*args), env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        self.extras.append(slot)
        self._count(f"extra-join:{group}")
        return slot

    def remove_extras(self, sig: signal.Signals = signal.SIGTERM) -> int:
        n = 0
        for slot in self.extras:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(sig)
                try:
                    slot.proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    slot.proc.kill()
                    slot.proc.wait()
                n += 1
                self._count(f"extra-leave:{slot.group}")
        self.extras.clear()
        return n

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        self.remove_extras()
        return super().stop(timeout)

    def kill_all(self) -> None:
        for slot in self.extras:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.kill()
                slot.proc.wait()
        self.extras.clear()
        super().kill_all()

    def pids(self) -> dict[str, int]:
        out = {}
        for slot in [*self.slots, *self.extras]:
            if slot.proc is not None and slot.proc.poll() is None:
                out[slot.instance_id] = slot.proc.pid
        return out


@dataclass
class Replayer:
    """``headrace replay`` of queued files as a killable child; a killed run is rerun on the same file
    (re-publishing what it already sent: the pipeline must absorb the repeats)."""

    bootstrap: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    current: list[Path] = field(default_factory=list)
    queue: list[Path] = field(default_factory=list)
    done: list[Path] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    kills: int = 0

    def _start(self) -> None:
        self.current = self.queue[:4]
        del self.queue[:4]
        fh = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            headrace_cmd("replay", *map(str, self.current), "--bootstrap", self.bootstrap, "--no-progress"),
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        fh.close()

    def tick(self) -> None:
        """Start the next run when idle; requeue the files of a run that did not finish cleanly."""
        if self.proc is not None and (rc := self.proc.poll()) is not None:
            if rc == 0:
                self.done.extend(self.current)
            else:
                if rc > 0:
                    self.failures.append(rc)
                self.queue[:0] = self.current
            self.proc, self.current = None, []
        if self.proc is None and self.queue:
            self._start()

    def kill(self, sig: signal.Signals) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        self.proc.send_signal(sig)
        self.proc.wait()
        self.kills += 1
        self.tick()
        return True

    @property
    def busy(self) -> bool:
        return bool(self.queue) or (self.proc is not None and self.proc.poll() is None)

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            self.tick()
            time.sleep(0.5)
        self.tick()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
