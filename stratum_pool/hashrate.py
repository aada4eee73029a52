"""Honest hashrate from accepted shares, kept in memory in bounded buffers.

A ``RateMeter`` holds one worker's (or one coin's) accepted work in time buckets: 10-second buckets for the last
10 minutes, 1-minute buckets for the last hour and 10-minute buckets for the last day (a coin's: the last week).
A window's figure is the work in the buckets it covers divided by the time those buckets really cover: never
more than the window, never from before the meter started (a worker that connected a minute ago is judged on
that minute, not on ten). The share count behind each figure comes with it: a figure from 20 shares is a rough
one.

Work is kept in hashes (difficulty x 2**32, over the coin's share multiplier for scrypt coins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HASHES_PER_DIFF1 = 2**32
FINE_SECONDS = 10.0
FINE_KEEP_SECONDS = 600.0
MEDIUM_SECONDS = 60.0
MEDIUM_KEEP_SECONDS = 3600.0
COARSE_SECONDS = 600.0
COARSE_KEEP_SECONDS = 7 * 86400.0  # a coin's meter
WORKER_KEEP_SECONDS = 86400.0  # a worker's: ~270 buckets at most, whatever its share rate
# The windows every figure is given over: name -> seconds.
WINDOWS: dict[str, float] = {"10m": 600.0, "1h": 3600.0, "24h": 86400.0}


@dataclass(frozen=True, slots=True)
class Rate:
    """A hashrate over a window: ``hashrate`` H/s from ``shares`` accepted shares over ``seconds``."""

    hashrate: float
    shares: int
    seconds: float


class _Buckets:
    """Work per time bucket of one width, the oldest dropped past ``keep`` seconds: at most keep/width + 1."""

    __slots__ = ("items", "keep", "width")

    def __init__(self, width: float, keep: float) -> None:
        self.width = width
        self.keep = keep
        # [bucket start, hashes, shares], oldest first. A list, not a deque: an empty deque costs 760 bytes, and
        # every worker has three of these from its first authorize, shares or not (10,000 idle workers: 22 MB)
        self.items: list[list[float]] = []

    def fold(self, bucket: list[float]) -> None:
        """Add a closed shorter bucket's work to the bucket of this width it falls in."""
        start = bucket[0] - bucket[0] % self.width
        items = self.items
        if items and items[-1][0] >= start:
            last = items[-1]
            last[1] += bucket[1]
            last[2] += bucket[2]
            return
        items.append([start, bucket[1], bucket[2]])
        self.prune(bucket[0])

    def prune(self, now: float) -> None:
        items, oldest = self.items, now - self.keep - self.width
        if items and items[0][0] < oldest:  # once per closed bucket at most; a few hundred buckets at most
            drop = 1
            while drop < len(items) and items[drop][0] < oldest:
                drop += 1
            del items[:drop]

    def since(self, start: float) -> tuple[float, int]:
        """Hashes and shares in the buckets that end after ``start``."""
        hashes, shares = 0.0, 0
        edge = start - self.width
        for bucket in reversed(self.items):
            if bucket[0] <= edge:
                break
            hashes += bucket[1]
            shares += int(bucket[2])
        return hashes, shares


class RateMeter:
    """One worker's or one coin's accepted work since ``start`` (when it was first seen), in bounded buffers."""

    __slots__ = ("_coarse", "_fine", "_medium", "last_share", "start")

    def __init__(self, start: float, keep: float = COARSE_KEEP_SECONDS) -> None:
        """``keep``: how far back the 10-minute buckets go (the longest window and history it can answer)."""
        self.start = start
        self.last_share: float | None = None
        self._fine = _Buckets(FINE_SECONDS, FINE_KEEP_SECONDS)
        self._medium = _Buckets(MEDIUM_SECONDS, MEDIUM_KEEP_SECONDS)
        self._coarse = _Buckets(COARSE_SECONDS, keep)

    def add(self, now: float, hashes: float) -> None:
        # Per share only the open 10-second bucket moves (the share path); when it closes, its work is folded
        # into the 1-minute and 10-minute buckets, which the queries read together with the open one.
        self.last_share = now
        items = self._fine.items
        start = now - now % FINE_SECONDS
        if items:
            last = items[-1]
            if last[0] >= start:  # (a clock that stepped back: still the open bucket)
                last[1] += hashes
                last[2] += 1
                return
            self._medium.fold(last)
            self._coarse.fold(last)
        items.append([start, hashes, 1.0])
        self._fine.prune(now)

    def _open_in(self, width: float) -> tuple[float, list[float]] | None:
        """The open 10-second bucket (not folded yet) and the start of the ``width`` bucket it falls in."""
        items = self._fine.items
        if not items:
            return None
        last = items[-1]
        return last[0] - last[0] % width, last

    def idle_since(self, now: float, seconds: float) -> bool:
        """Whether no share came in the last ``seconds`` (or ever)."""
        return self.last_share is None or self.last_share < now - seconds

    def restart(self, now: float) -> None:
        """Judge from ``now`` on (a worker back after longer away than its buckets go back)."""
        self.start = now

    def rate(self, now: float, window: float) -> Rate:
        """The hashrate over the last ``window`` seconds (at most what the meter keeps), honestly: the work in
        the buckets the window covers over the time they cover (from the later of the meter's start and the
        first whole bucket inside the window)."""
        buckets = self._fine if window <= FINE_KEEP_SECONDS else \
            self._medium if window <= MEDIUM_KEEP_SECONDS else self._coarse
        width = buckets.width
        first = max(self.start, math.ceil((now - window) / width) * width)
        seconds = now - first
        hashes, shares = buckets.since(first)
        if buckets is not self._fine:
            found = self._open_in(width)
            if found is not None and found[0] > first - width:
                hashes += found[1][1]
                shares += int(found[1][2])
        if seconds <= 0:
            return Rate(0.0, shares, 0.0)
        return Rate(hashes / seconds, shares, seconds)

    def rates(self, now: float) -> dict[str, Rate]:
        return {name: self.rate(now, seconds) for name, seconds in WINDOWS.items()}

    def history(self, start: float, end: float, step: float) -> dict[float, float]:
        """Hashes per ``step`` bucket in [start, end) (step a multiple of 1 min within the last hour, else of
        10 minutes); buckets with no work are left out."""
        buckets = self._medium if step < COARSE_SECONDS and start >= end - MEDIUM_KEEP_SECONDS else self._coarse
        out: dict[float, float] = {}
        found = self._open_in(buckets.width)
        pending = [(found[0], found[1][1])] if found is not None else []
        for bucket_start, hashes in [(b[0], b[1]) for b in buckets.items] + pending:
            if start <= bucket_start < end:
                key = start + (bucket_start - start) // step * step
                out[key] = out.get(key, 0.0) + hashes
        return out


class WorkerMeter:
    """One worker (``ADDRESS[.WORKER]``) of one coin: its work and its best shares (achieved difficulty)."""

    __slots__ = ("address", "best_ever", "best_round", "best_session", "meter", "name", "round")

    def __init__(self, address: str, name: str, now: float) -> None:
        self.address = address
        self.name = name
        self.meter = RateMeter(now, WORKER_KEEP_SECONDS)
        self.best_session = 0.0  # since it last authorized
        self.best_ever = 0.0  # since this process started
        self.best_round = 0.0  # since the last network block (``round`` says which block)
        self.round = 0


class WorkerBook:
    """The workers of one coin that authorized in this process, by full user name and by address; at most
    ``max_workers`` (the one idle longest is forgotten first)."""

    def __init__(self, max_workers: int = 100_000) -> None:
        self.max_workers = max_workers
        self.workers: dict[str, WorkerMeter] = {}
        self.by_address: dict[str, dict[str, WorkerMeter]] = {}
        self.round = 0  # counts network blocks seen

    def authorized(self, user: str, address: str, now: float) -> WorkerMeter:
        worker = self.workers.get(user)
        if worker is None:
            if len(self.workers) >= self.max_workers:
                self._forget_idlest()
            name = user.partition(".")[2]
            worker = self.workers[user] = WorkerMeter(address, name, now)
            self.by_address.setdefault(address, {})[user] = worker
        elif worker.meter.idle_since(now, WORKER_KEEP_SECONDS):
            worker.meter.restart(now)
        worker.best_session = 0.0
        return worker

    def _forget_idlest(self) -> None:
        user, worker = min(self.workers.items(), key=lambda kv: kv[1].meter.last_share or kv[1].meter.start)
        del self.workers[user]
        same = self.by_address.get(worker.address)
        if same is not None:
            same.pop(user, None)
            if not same:
                del self.by_address[worker.address]

    def accepted(self, user: str, address: str, now: float, hashes: float, achieved: float) -> None:
        worker = self.workers.get(user)
        if worker is None:  # authorized before a restart of the book; judged from its first share
            worker = self.authorized(user, address, now)
        worker.meter.add(now, hashes)
        if achieved > worker.best_session:
            worker.best_session = achieved
        if achieved > worker.best_ever:
            worker.best_ever = achieved
        if worker.round != self.round:
            worker.round, worker.best_round = self.round, 0.0
        if achieved > worker.best_round:
            worker.best_round = achieved

    def new_block(self) -> None:
        """A new network block: every worker's best share since the last block starts again."""
        self.round += 1

    def best_round(self, worker: WorkerMeter) -> float:
        return worker.best_round if worker.round == self.round else 0.0

    def of_address(self, address: str) -> list[WorkerMeter]:
        return sorted(self.by_address.get(address, {}).values(), key=lambda w: w.name)


@dataclass(frozen=True, slots=True)
class WorkerFigures:
    """What the API shows of one live worker: its hashrate over each window (``WINDOWS``) and its best shares
    (achieved difficulty, in the coin's share units)."""

    name: str
    rates: dict[str, Rate]
    started: float  # when this process first saw it (or saw it back after a week away)
    last_share: float | None
    best_session: float
    best_round: float  # since the last network block
    best_ever: float  # since this process started
    # the device, while connected: its firmware (mining.subscribe's user agent) and current share difficulty
    connected: bool = False
    user_agent: str = ""
    difficulty: float | None = None


def figures(book: WorkerBook, address: str, now: float) -> list[WorkerFigures]:
    return [WorkerFigures(w.name, w.meter.rates(now), w.meter.start, w.meter.last_share, w.best_session,
                          book.best_round(w), w.best_ever) for w in book.of_address(address)]


def worker_history(book: WorkerBook, address: str, start: float, end: float,
                   step: float) -> dict[str, dict[float, float]]:
    """Hashes per ``step`` bucket of each worker of ``address``, by worker name."""
    return {w.name: w.meter.history(start, end, step) for w in book.of_address(address)}


def address_history(book: WorkerBook, address: str, start: float, end: float, step: float) -> dict[float, float]:
    """Hashes per ``step`` bucket of every worker of ``address``."""
    out: dict[float, float] = {}
    for worker in book.of_address(address):
        for t, hashes in worker.meter.history(start, end, step).items():
            out[t] = out.get(t, 0.0) + hashes
    return out
