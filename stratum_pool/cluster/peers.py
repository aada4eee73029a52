"""What the workers of one multi-process pool (``stratum_pool.cluster``) share: metrics and bans.

Each worker is a whole pool of its own; the kernel spreads miners over them. Two things must still be seen
as one:

* **metrics**: every worker writes its registry to ``DIR/worker-I.prom`` every second
  (:func:`write_snapshot`); the worker serving the HTTP API reads the others' (:class:`Snapshots`), serves
  all of them on ``/metrics`` (:class:`AllWorkers`), and adds the others' connections, authorized sessions
  and hashrate to its own in the JSON API's live figures (:class:`PeerGauges`);
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from stratum_pool.server.limits import Ban, BanList

log = structlog.get_logger("stratum_pool.cluster.peers")

# How often each worker writes its metrics (and looks for the others' new bans): a scrape sees the other
# workers' values at most this old, and a ban reaches every worker within it.
SNAPSHOT_SECONDS = 1.0

SampleKey = tuple[str, frozenset[tuple[str, str]]]


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


LIFTS_FILE = "bans-lifted.json"


def write_lift(directory: Path, ip: str, at: float) -> None:
    """The supervisor's side of ``stratum-pool bans lift``: record that ``ip``'s ban is lifted as of ``at``;
    every worker lifts it within a second (:meth:`WorkerExchange.step`) and adopts no ban of it decided
    before."""
    path = directory / LIFTS_FILE
    try:
        lifts = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        lifts = {}
    lifts[ip] = max(at, float(lifts.get(ip, at)))
    _replace(path, orjson.dumps(lifts))


def write_snapshot(registry: CollectorRegistry, directory: Path, index: int) -> None:
    """Worker ``index``'s metrics, in the exposition format, to ``directory/worker-INDEX.prom``."""
    _replace(directory / f"worker-{index}.prom", generate_latest(registry))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One other worker's metrics as it last wrote them."""

    worker: str
    modified: float  # the file's mtime (wall clock)
    families: list[Metric]
    samples: dict[SampleKey, float]  # (sample name, labels) -> value


class Snapshots:
    """The other workers' metrics snapshots in ``directory`` (all but ``index``'s), each parsed once per
    change."""

    def __init__(self, directory: Path, index: int) -> None:
        self.directory = directory
        self.index = str(index)
        self._parsed: dict[Path, Snapshot] = {}

    def read(self) -> list[Snapshot]:
        out = []
        for path in sorted(self.directory.glob("worker-*.prom")):
            worker = path.stem.removeprefix("worker-")
            if worker == self.index:
                continue
            try:
                modified = path.stat().st_mtime
                snapshot = self._parsed.get(path)
                if snapshot is None or snapshot.modified != modified:
                    families = list(text_string_to_metric_families(path.read_text()))
                    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
                    snapshot = self._parsed[path] = Snapshot(worker, modified, families, samples)
            except OSError:  # a worker between restarts
                continue
            out.append(snapshot)
        return out


class AllWorkers:
    """A collector of every worker's metrics, each sample labelled with its ``worker``: this process's from
    its own registry, live; the other workers' from their snapshots. Adds
    ``stratum_pool_worker_metrics_age_seconds`` per worker, so a worker that stopped writing (hung, or dead
    and not yet back) shows."""

    def __init__(self, own: CollectorRegistry, snapshots: Snapshots, clock: Callable[[], float] = time.time) -> None:
        self.own = own
        self.snapshots = snapshots
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}

        def add(family: Metric, worker: str) -> None:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            merged.samples += [s._replace(labels={**s.labels, "worker": worker}) for s in family.samples]

        own = self.snapshots.index
        for family in self.own.collect():
            add(family, own)
        age = Metric("stratum_pool_worker_metrics_age_seconds",
                     "Seconds since each worker last wrote its metrics (0 for the one serving them)", "gauge")
        age.add_sample(age.name, {"worker": own}, 0.0)
        now = self.clock()
        for snapshot in self.snapshots.read():
            for family in snapshot.families:
                add(family, snapshot.worker)
            age.add_sample(age.name, {"worker": snapshot.worker}, max(0.0, now - snapshot.modified))
        yield from families.values()
        yield age


def all_workers_registry(own: CollectorRegistry, snapshots: Snapshots) -> CollectorRegistry:
    """The registry /metrics serves in a multi-process pool: :class:`AllWorkers` alone."""
    registry = CollectorRegistry()
    registry.register(AllWorkers(own, snapshots))
    return registry


class PeerGauges:
    """The other workers' gauges, from their snapshots, for the live figures of the JSON API (connections,
    authorized sessions, hashrate), which the worker serving it would otherwise give for its own sessions
    only. A snapshot older than ``max_age`` seconds (its worker dead, not yet back) counts nothing."""

    def __init__(self, snapshots: Snapshots, max_age: float = 10 * SNAPSHOT_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.snapshots = snapshots
        self.max_age = max_age
        self.clock = clock

    def total(self, name: str, **labels: str) -> float:
        """The sum over the other workers of the sample ``name`` with exactly ``labels``."""
        key = (name, frozenset(labels.items()))
        now = self.clock()
        return sum(s.samples.get(key, 0.0) for s in self.snapshots.read() if now - s.modified <= self.max_age)


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
        self._lifts_seen = -1.0  # mtime of the lifts file when last read
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
        self._apply_lifts()
        if self._bans_changed:
            self._bans_changed = False
            held = [[b.ip, b.until, b.reason, b.since, b.worker] for b in self.bans.active()]
            _replace(self.directory / f"bans-worker-{self.index}.json", orjson.dumps({"bans": held}))
        return self._adopt()

    def _apply_lifts(self) -> None:
        path = self.directory / LIFTS_FILE
        try:
            modified = path.stat().st_mtime
            if modified == self._lifts_seen:
                return
            lifts = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        self._lifts_seen = modified
        for ip, at in lifts.items():
            if self.bans.lifted_at.get(str(ip), -1.0) < float(at):
                if self.bans.lift(str(ip), float(at)):
                    log.info("ban_lifted", worker=self.index, ip=ip)
                self._bans_changed = True  # this worker's file must no longer offer it

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
            for ip, until, reason, since, *worker in data.get("bans", []):
                # adopting notifies our own listener: the adopted ban goes into this worker's file as well,
                # which the others then find already held (adopt returns False): it settles
                ban = Ban(str(ip), float(until), str(reason), float(since), str(worker[0]) if worker else "")
                if self.bans.adopt(ban):
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
