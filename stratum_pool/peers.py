"""What the workers of one multi-process pool (``stratum_pool.multiproc``) share: metrics and bans.

Each worker is a whole pool of its own; the kernel spreads miners over them. Two things must still be seen
as one:

* **metrics**: every worker writes its registry to ``DIR/worker-I.prom`` every second; the worker serving
  the HTTP API serves all of them (``metrics.AllWorkers``), and adds the others' connections, authorized
  sessions and hashrate to its own in the JSON API's live figures (:class:`PeerGauges`);
* **bans**: an IP banned by one worker must be refused by all (its next connection lands on any of them).
  Each worker writes the bans it holds to ``DIR/bans-worker-I.json`` when they change, and adopts the other
  workers' within a second (``BanList.adopt``: their connections from that IP are dropped too). A SIGHUP
  lifts every ban on every worker; a ban decided before a worker's own lift is never adopted by it again.

``DIR`` is the supervisor's private directory (``$RUNTIME_DIRECTORY`` under systemd). Files are replaced
whole (write, then rename), so a reader never sees half of one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from stratum_pool.limits import Ban, BanList
from stratum_pool.metrics import SNAPSHOT_SECONDS, write_snapshot

log = structlog.get_logger("stratum_pool.peers")


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


class WorkerExchange:
    """One worker's side of the exchange: :meth:`step` once a second (:meth:`run` does)."""

    def __init__(self, directory: Path, index: int, registry: CollectorRegistry, bans: BanList) -> None:
        self.directory = directory
        self.index = index
        self.registry = registry
        self.bans = bans
        self._bans_changed = True  # write once at start, so a restarted worker's old file is replaced
        self._cleared_at = bans.cleared_at
        self._seen: dict[Path, float] = {}  # the other workers' ban files: mtime when last read
        bans.listeners.append(self._on_ban)

    def _on_ban(self, _: Ban) -> None:
        self._bans_changed = True

    def step(self) -> int:
        """Write this worker's metrics (and its bans, if they changed); adopt the other workers' new bans.
        Returns how many bans were adopted."""
        write_snapshot(self.registry, self.directory, self.index)
        if self.bans.cleared_at != self._cleared_at:  # a SIGHUP lifted them: say so at once
            self._cleared_at = self.bans.cleared_at
            self._bans_changed = True
        if self._bans_changed:
            self._bans_changed = False
            held = [[b.ip, b.until, b.reason, b.since] for b in self.bans.active()]
            _replace(self.directory / f"bans-worker-{self.index}.json", orjson.dumps({"bans": held}))
        return self._adopt()

    def _adopt(self) -> int:
        adopted = 0
        own = f"bans-worker-{self.index}.json"
        for path in self.directory.glob("bans-worker-*.json"):
            if path.name == own:
                continue
            try:
                modified = path.stat().st_mtime
                if self._seen.get(path) == modified:
                    continue
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):  # a worker between restarts
                continue
            self._seen[path] = modified
            for ip, until, reason, since in data.get("bans", []):
                # adopting notifies our own listener: the adopted ban goes into this worker's file as well,
                # which the others then find already held (adopt returns False): it settles
                if self.bans.adopt(Ban(str(ip), float(until), str(reason), float(since))):
                    adopted += 1
        if adopted:
            log.info("bans_adopted", worker=self.index, count=adopted)
        return adopted

    async def run(self) -> None:
        while True:
            try:
                self.step()
            except OSError as exc:
                log.warning("worker_exchange_failed", directory=str(self.directory), error=str(exc))
            await asyncio.sleep(SNAPSHOT_SECONDS)


class PeerGauges:
    """The other workers' gauges, read from their metrics snapshots, for the live figures of the JSON API
    (connections, authorized sessions, hashrate), which the worker serving it would otherwise give for its
    own sessions only. A snapshot older than ``max_age`` seconds (its worker dead, not yet back) counts
    nothing."""

    def __init__(self, directory: Path, index: int, max_age: float = 10 * SNAPSHOT_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.own = f"worker-{index}.prom"
        self.max_age = max_age
        self.clock = clock
        self._read: dict[Path, tuple[float, dict[tuple[str, frozenset[tuple[str, str]]], float]]] = {}

    def total(self, name: str, **labels: str) -> float:
        """The sum over the other workers of the sample ``name`` with exactly ``labels``."""
        key = (name, frozenset(labels.items()))
        now = self.clock()
        total = 0.0
        for path in self.directory.glob("worker-*.prom"):
            if path.name == self.own:
                continue
            try:
                modified = path.stat().st_mtime
                if now - modified > self.max_age:
                    continue
                cached = self._read.get(path)
                if cached is None or cached[0] != modified:
                    samples = {(s.name, frozenset(s.labels.items())): s.value
                               for family in text_string_to_metric_families(path.read_text())
                               for s in family.samples}
                    cached = self._read[path] = (modified, samples)
            except OSError:  # a worker between restarts
                continue
            total += cached[1].get(key, 0.0)
        return total
