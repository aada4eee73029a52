"""The share loader: spool -> PostgreSQL, exactly once, in batches.

One asyncio task; every batch runs on a worker thread (synchronous psycopg), so the stratum loop never
waits on the database. A batch is one transaction that

* row-locks this node's ``spool_checkpoints`` row and checks it is where this loader thinks it is,
* inserts the missing coins, accounts and workers rows (ids cached once committed),
* COPYs the accepted shares into ``shares`` (daily partitions are created beforehand, in their own short
  transactions, because attaching a partition locks the parent table),
* adds to the per-minute and per-day statistics and raises ``workers.last_seen`` / ``best_difficulty``,
* hands each found block, in spool order, after every share before it, to the injected ``credit_block``
  (:class:`CreditBlock`), which writes the block row and its credits through this package's queries on the
  batch's connection (so they commit together, with the shares and the checkpoint),
* and moves the checkpoint to the batch's last seq.

Only after the commit is the spool trimmed. A crash or an outage anywhere in between leaves the checkpoint
before the batch, so the batch is loaded again, whole, when the database is back: never twice, never
half. While PostgreSQL is unreachable the loader retries with exponential backoff and jitter (capped),
and the spool simply grows.

Batching: while records flow (TRICKLE_RECORDS or more in the last ``batch_interval``), a batch starts at
most every ``batch_interval`` seconds (``[database] load_interval_seconds``, 1 by default; at once again after
a full one), so that at thousands of shares a second each transaction carries hundreds or thousands of rows,
not the few of one group commit. A trickle is loaded at each group commit, as it comes: a quiet pool's shares
show up at once, in at most TRICKLE_RECORDS / ``batch_interval`` batches a second. A miner's answer waits
only for the spool's fsync, never for this.

Per-row cost: shares go straight from the spool's frames into binary COPY rows, with no ``ShareRecord``
or ``datetime`` per share. What depends only on a share's (coin, address, worker, user agent) bytes is done
once per such key and batch: its ids come from a cache (filled once a batch that looked them up commits;
the strings are decoded only for a key new to it). Per row there is one unpack, one dict lookup, the
per-minute statistics and one pack. The batch is decoded before its transaction opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import psycopg
import structlog

from stratum_pool.coins import COINS, Coin
from stratum_pool.osthread import name_this_thread
from stratum_pool.store import shares as q
from stratum_pool.store.spool import (
    KIND_SHARE,
    SHARE_FIXED,
    SHARE_KEY_START,
    BlockRecord,
    Frame,
    RejectedRecord,
    ShareSpool,
    decode_payload,
    decode_share_key,
)

log = structlog.get_logger("stratum_pool.store.loader")

DEFAULT_BATCH_MAX = 50_000
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5
# With nothing to load, look at the spool again at least this often (a group commit wakes it sooner).
IDLE_SECONDS = 1.0
# While records flow, a batch starts at most this often, unless the one before was full: shares reach
# PostgreSQL within about this (plus the batch's own time), in transactions of hundreds or thousands of rows.
# Each batch has a fixed cost (a transaction, the statistics upserts, the checkpoint): at 1,000 shares/s,
# 1 s instead of 0.25 s took the loader from about 8 to 3 us of CPU per share (docs/performance.md).
BATCH_INTERVAL_SECONDS = 1.0
# Fewer records than this in the last batch interval are a trickle, loaded as they come (see the docstring).
TRICKLE_RECORDS = 8
# Id caches are dropped when they grow past this many entries (they refill from the database).
_CACHE_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class BlockIds:
    """The ids of a found block's rows the loader has made sure of (in the batch's transaction): its coin, its
    finder's account and worker, and the node whose spool recorded it."""

    coin_id: int
    finder_account_id: int
    finder_worker_id: int
    node_id: int


class CreditBlock(Protocol):
    """Records one found block and its credits on ``conn``; returns whether it wrote the block row (False: a
    block with that hash is already recorded, and nothing was written).

    The loader calls it on its worker thread, inside the batch's transaction, for each block record in spool
    order, after every share before it: it must only execute statements on ``conn`` (never commit, roll back
    or open a connection of its own). An exception rolls the whole batch back, checkpoint included, so the
    batch, its blocks and their credits are loaded again, whole, on the next attempt: exactly once."""

    def __call__(self, conn: psycopg.Connection[tuple[Any, ...]], block: BlockRecord, ids: BlockIds, /) -> bool:
        ...


@dataclass(frozen=True, slots=True)
class LoaderStats:
    checkpoint: int  # the last spool seq in PostgreSQL (0 before the first read)
    backlog: int  # spool records not yet in PostgreSQL
    spool_bytes: int
    spool_segments: int
    shares_loaded: int  # share rows COPYed by this loader
    rejected_loaded: int  # reject-count records loaded
    blocks_loaded: int
    batches: int
    failures: int  # consecutive failed attempts (0 when healthy)
    last_error: str
    last_error_time: float  # clock() of it, 0 if none
    connected: bool


class CheckpointMoved(Exception):
    """The checkpoint in the database is not where this loader left it (another loader of this node?)."""


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _us(t: float) -> int:
    """Microseconds since the Unix epoch of ``t``, rounded exactly as ``datetime.fromtimestamp`` rounds (half to
    even; exact for any time after 1970-01-07: ``t % 60`` is exact and so is its product with 10**6)."""
    r = t % 60.0
    return int(t - r) * 1_000_000 + round(r * 1e6)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day(days: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + days)


class SpoolLoader:
    """Loads one node's spool into PostgreSQL. ``start()`` it on the pool's loop; ``await stop()`` at exit.
    ``credit_block`` records each found block with its credits (see :class:`CreditBlock`)."""

    def __init__(self, spool: ShareSpool, dsn: str, node_id: int, credit_block: CreditBlock, *,
                 batch_max: int = DEFAULT_BATCH_MAX,
                 clock: Callable[[], float] = time.time, backoff_initial: float = BACKOFF_INITIAL_SECONDS,
                 backoff_max: float = BACKOFF_MAX_SECONDS, rng: random.Random | None = None,
                 coins: Mapping[str, Coin] = COINS, idle_seconds: float = IDLE_SECONDS,
                 connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
                 batch_interval: float = BATCH_INTERVAL_SECONDS) -> None:
        self.spool = spool
        self.dsn = dsn
        self.node_id = node_id
        self.credit_block = credit_block
        self.batch_max = batch_max
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rng = rng if rng is not None else random.Random()
        self.coins = coins
        self.idle_seconds = idle_seconds
        self.connect_timeout = connect_timeout
        self.batch_interval = batch_interval
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._checkpoint: int | None = None
        self._coin_ids: dict[str, int] = {}
        self._account_ids: dict[tuple[int, str], int] = {}
        self._worker_ids: dict[tuple[int, str], int] = {}
        # share key bytes (spool.SHARE_KEY_START on) -> (coin_id, account_id, worker_id, user agent)
        self._share_keys: dict[bytes, tuple[int, int, int, str]] = {}
        self._partitions: set[str] = set()
        self._shares_loaded = 0
        self._rejected_loaded = 0
        self._blocks_loaded = 0
        self._batches = 0
        self._failures = 0
        self._last_error = ""
        self._last_error_time = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic start, records) of the last interval's batches
        # the batches' own thread (named for the OS: its CPU shows apart from the pool's other threads)
        self._executor: ThreadPoolExecutor | None = None

    # ----- numbers for metrics and the API

    def stats(self) -> LoaderStats:
        s = self.spool.stats()
        checkpoint = self._checkpoint or 0
        backlog = max(0, s.last_seq - max(checkpoint, s.first_seq - 1))
        return LoaderStats(checkpoint, backlog, s.bytes, s.segments, self._shares_loaded, self._rejected_loaded,
                           self._blocks_loaded, self._batches, self._failures, self._last_error,
                           self._last_error_time, self._conn is not None and not self._conn.closed)

    # ----- synchronous core (runs on a worker thread)

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
                                         application_name=f"stratum-pool-loader-{self.node_id}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def load_batch(self) -> int:
        """Load the next batch of fsynced spool records; returns how many (0: nothing to load).
        Raises on any database error, after closing the connection (the next call reconnects)."""
        try:
            return self._load_batch()
        except BaseException:
            self.close()
            raise

    def load_all(self) -> int:
        """Load until the spool has nothing more that is fsynced; returns how many records."""
        total = 0
        while n := self.load_batch():
            total += n
        return total

    def _load_batch(self) -> int:
        conn = self._connection()
        if self._checkpoint is None:
            self._checkpoint = q.read_checkpoint(conn, self.node_id)
            last = self.spool.stats().last_seq
            if self._checkpoint > last:
                log.error("spool_behind_checkpoint", node_id=self.node_id, checkpoint=self._checkpoint,
                          spool_last_seq=last, hint="spool directory replaced or node_id reused")
        chunks = self.spool.read_frames(self._checkpoint, self.batch_max)
        if not chunks:
            self.spool.truncate_through(self._checkpoint)
            return 0
        batch = _Batch(self, chunks[-1][1][-1][0])
        batch.decode(chunks)  # before the transaction: it does not wait on this
        self._ensure_partitions(conn, batch.share_days())
        with conn.transaction():
            locked = q.lock_checkpoint(conn, self.node_id)
            if locked != self._checkpoint:
                log.warning("checkpoint_moved", node_id=self.node_id, expected=self._checkpoint, found=locked)
                self._checkpoint = locked
                raise CheckpointMoved(f"checkpoint of node {self.node_id} is {locked}, expected another")
            batch.write(conn, _utc(self.clock()))
        # committed: only now do the new ids and the new checkpoint become ours
        batch.commit_caches()
        self._checkpoint = batch.last_seq
        self._shares_loaded += batch.shares
        self._rejected_loaded += batch.rejected
        self._blocks_loaded += batch.blocks
        self._batches += 1
        self.spool.truncate_through(self._checkpoint)
        return batch.records

    def _ensure_partitions(self, conn: psycopg.Connection[tuple[Any, ...]], share_days: set[int]) -> None:
        """The daily partitions of ``share_days`` (days since 1970-01-01) and of the day after the last."""
        if not share_days:
            return
        days = {_day(d) for d in share_days}
        days.add(max(days) + timedelta(days=1))  # the next day's, ahead of midnight
        missing = {d for d in days if q.partition_name(d) not in self._partitions}
        if not missing:
            return
        existing = q.existing_share_partitions(conn)
        for day in sorted(missing):
            if q.partition_name(day) not in existing:
                try:
                    q.create_share_partition(conn, day)
                except psycopg.errors.UniqueViolation:  # another node created it at the same moment
                    pass
            self._partitions.add(q.partition_name(day))

    # ----- the task

    async def _in_thread(self) -> int:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "loader", initializer=name_this_thread, initargs=("sp-loader",))
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.load_batch)

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self.run(), name="spool-loader")

    async def run(self) -> None:
        stopping = self._stopping if self._stopping is not None else asyncio.Event()
        self._stopping = stopping
        while not stopping.is_set():
            started = time.monotonic()
            try:
                loaded = await self._in_thread()
            except Exception as exc:
                self._failed(exc)
                await self._wait(stopping, self._backoff(), wake_on_data=False)
                continue
            if self._failures:
                log.info("spool_loader_recovered", after_failures=self._failures, checkpoint=self._checkpoint)
            self._failures = 0
            if loaded >= self.batch_max:
                continue  # a full batch: more is waiting
            if loaded:
                self._recent.append((started, loaded))
            else:
                await self._wait(stopping, self.idle_seconds, wake_on_data=True)
            if self._flowing() and not stopping.is_set():
                # gather for the rest of the interval: not one transaction per group commit
                rest = started + self.batch_interval - time.monotonic()
                if rest > 0:
                    await self._wait(stopping, rest, wake_on_data=False)

    def _flowing(self) -> bool:
        """Whether the batches that started in the last interval loaded TRICKLE_RECORDS or more."""
        recent, since = self._recent, time.monotonic() - self.batch_interval
        while recent and recent[0][0] < since:
            recent.popleft()
        return sum(n for _, n in recent) >= TRICKLE_RECORDS

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}".strip()
        self._last_error_time = self.clock()
        log.warning("spool_load_failed", error=self._last_error, failures=self._failures,
                    backlog=self.stats().backlog)

    def _backoff(self) -> float:
        """Exponential in the consecutive failures, capped, with jitter (half to all of it)."""
        delay = min(self.backoff_max, self.backoff_initial * 2.0 ** min(self._failures - 1, 30))
        return float(delay * self.rng.uniform(0.5, 1.0))

    async def _wait(self, stopping: asyncio.Event, timeout: float, *, wake_on_data: bool) -> None:
        waits: set[asyncio.Task[Any]] = {asyncio.ensure_future(stopping.wait())}
        if wake_on_data:
            waits.add(asyncio.ensure_future(self.spool.wait_fsynced(timeout)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Finish the batch in flight, then keep loading for up to ``drain_seconds`` while there is
        something to load and the database answers; whatever is left stays in the spool for next time."""
        if self._task is not None:
            assert self._stopping is not None
            self._stopping.set()
            await self._task
            self._task = None
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            try:
                if not await self._in_thread():
                    break
            except Exception as exc:
                self._failed(exc)
                break
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        self.close()


class _Key:
    """A share key's part of one batch: one worker with one user agent (the bytes of a share payload from
    spool.SHARE_KEY_START on). Its ids come from the loader's cache, or, for a key new to it ("pending"), are
    looked up in the transaction and written into its rows afterwards."""

    __slots__ = ("account_id", "agent", "best", "coin_id", "first_seq", "first_time", "fixups", "last_seq",
                 "last_time", "minutes", "pending", "raw", "strings", "worker_id")

    def __init__(self, raw: bytes, cached: tuple[int, int, int, str] | None, seq: int, t: float,
                 achieved: float) -> None:
        self.raw = raw
        self.strings: tuple[str, str, str, str] | None = None  # (coin key, address, worker name, user agent)
        if cached is None:
            self.strings = decode_share_key(raw)
            self.coin_id = self.account_id = self.worker_id = 0
            self.agent = self.strings[3]
        else:
            self.coin_id, self.account_id, self.worker_id, self.agent = cached
        self.pending = cached is None
        self.fixups: list[int] = []  # offsets of its rows while pending
        # minute (epoch seconds) -> [accepted, difficulty, the minute in PostgreSQL's microseconds]
        self.minutes: dict[float, list[Any]] = {}
        self.first_seq = self.last_seq = seq
        self.first_time = self.last_time = t
        self.best = achieved


class _Rejects:
    """A worker's reject counts of one batch, per minute."""

    __slots__ = ("first_seq", "first_time", "ids", "minutes")

    def __init__(self, seq: int, t: float) -> None:
        self.minutes: dict[float, int] = {}
        self.first_seq = seq
        self.first_time = t
        self.ids: tuple[int, int, int] | None = None


class _Batch:
    """One batch: decoded from the spool's frames without the database, then written in the transaction."""

    def __init__(self, loader: SpoolLoader, last_seq: int) -> None:
        self.loader = loader
        self.last_seq = last_seq
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self.coin_ids: dict[str, int] = {}
        self.account_ids: dict[tuple[int, str], int] = {}
        self.worker_ids: dict[tuple[int, str], int] = {}
        self.share_keys: dict[bytes, tuple[int, int, int, str]] = {}
        self.keys: dict[bytes, _Key] = {}
        self.rejects: dict[tuple[str, str, str], _Rejects] = {}  # by (coin key, address, worker name)
        self.block_records: list[BlockRecord] = []
        self.rows = bytearray()
        self.records = 0
        self.shares = 0
        self.rejected = 0
        self.blocks = 0

    def commit_caches(self) -> None:
        loader = self.loader
        if len(loader._account_ids) + len(loader._worker_ids) + len(loader._share_keys) > _CACHE_MAX:
            loader._account_ids.clear()
            loader._worker_ids.clear()
            loader._share_keys.clear()
        loader._coin_ids.update(self.coin_ids)
        loader._account_ids.update(self.account_ids)
        loader._worker_ids.update(self.worker_ids)
        loader._share_keys.update(self.share_keys)

    def coin_id(self, key: str) -> int:
        found = self.loader._coin_ids.get(key) or self.coin_ids.get(key)
        if found is None:
            assert self.conn is not None
            coin = self.loader.coins.get(key)
            symbol, maturity = (coin.symbol, coin.coinbase_maturity) if coin is not None else (key, 100)
            found = self.coin_ids[key] = q.ensure_coin(self.conn, key, symbol, maturity)
        return found

    def account_id(self, coin_id: int, address: str) -> int | None:
        key = (coin_id, address)
        return self.loader._account_ids.get(key) or self.account_ids.get(key)

    def worker_id(self, account_id: int, name: str) -> int | None:
        key = (account_id, name)
        return self.loader._worker_ids.get(key) or self.worker_ids.get(key)

    # ----- decoding (no database)

    def decode(self, chunks: list[tuple[bytes, list[Frame]]]) -> None:
        """Pack every share into a COPY row and add up the statistics; keep the other records for later."""
        keys = self.keys
        cache = self.loader._share_keys
        node_id = self.loader.node_id
        size = q.SHARE_ROW.size
        pack = q.SHARE_ROW.pack_into
        unpack = SHARE_FIXED.unpack_from
        key_start = SHARE_KEY_START
        pg_epoch_us = q.PG_EPOCH_US
        rows = bytearray(size * sum(len(frames) for _, frames in chunks))
        offset = 0
        for data, frames in chunks:
            self.records += len(frames)
            for seq, kind, start, end in frames:
                if kind != KIND_SHARE:
                    self._other(seq, decode_payload(seq, kind, data, start))
                    continue
                t, difficulty, achieved, height, is_block = unpack(data, start)
                raw = data[start + key_start:end]
                key = keys.get(raw)
                if key is None:
                    key = keys[raw] = _Key(raw, cache.get(raw), seq, t, achieved)
                r = t % 60.0
                minute = t - r
                stat = key.minutes.get(minute)
                if stat is None:
                    stat = key.minutes[minute] = [0, 0.0, int(minute) * 1_000_000 - pg_epoch_us]
                stat[0] += 1
                stat[1] += difficulty
                if t > key.last_time:
                    key.last_time = t
                if achieved > key.best:
                    key.best = achieved
                key.last_seq = seq
                if key.pending:
                    key.fixups.append(offset)
                # the time as datetime.fromtimestamp rounds it (see _us), from the minute's microseconds
                pack(rows, offset, stat[2] + round(r * 1e6), key.coin_id, key.account_id, key.worker_id,
                     difficulty, achieved, height, is_block, node_id, seq)
                offset += size
        del rows[offset:]
        self.rows = rows
        self.shares = offset // size

    def _other(self, seq: int, record: object) -> None:
        if isinstance(record, RejectedRecord):
            worker = (record.coin_key, record.address, record.worker_name)
            rejects = self.rejects.get(worker)
            if rejects is None:
                rejects = self.rejects[worker] = _Rejects(seq, record.time)
            minute = record.time - record.time % 60.0
            rejects.minutes[minute] = rejects.minutes.get(minute, 0) + record.count
            self.rejected += 1
        elif isinstance(record, BlockRecord):
            self.block_records.append(record)

    def share_days(self) -> set[int]:
        """The days (since 1970-01-01) the batch's shares fall on."""
        days: set[int] = set()
        for key in self.keys.values():
            for minute in key.minutes:
                day = int(minute // 86_400.0)
                days.add(day)
                if minute % 86_400.0 == 86_340.0:  # 23:59:59.9999995 and later round to the next day
                    days.add(day + 1)
        return days

    # ----- writing (in the transaction)

    def write(self, conn: psycopg.Connection[tuple[Any, ...]], now: datetime) -> None:
        """The missing ids, the share rows, statistics, workers and the checkpoint, then the blocks."""
        self.conn = conn
        self._ensure_ids()
        if self.rows:
            q.finish_share_rows(self.rows)
            q.copy_share_rows(conn, self.rows)
        minutes: dict[tuple[int, int], list[Any]] = {}  # (worker_id, minute) -> [accepted, rejected, difficulty]
        touched: dict[int, list[Any]] = {}  # worker_id -> [last time, best, user agent, its seq]
        for key in self.keys.values():  # a worker's keys add up (one key per worker is the rule)
            worker_id = key.worker_id
            for minute, (accepted, difficulty, _) in key.minutes.items():
                stat = minutes.get((worker_id, int(minute)))
                if stat is None:
                    minutes[(worker_id, int(minute))] = [accepted, 0, difficulty]
                else:
                    stat[0] += accepted
                    stat[2] += difficulty
            seen = touched.get(worker_id)
            if seen is None:
                touched[worker_id] = [key.last_time, key.best, key.agent, key.last_seq if key.agent else -1]
            else:  # the latest time, the best share, and the user agent last seen (when one was given)
                seen[0] = max(seen[0], key.last_time)
                seen[1] = max(seen[1], key.best)
                if key.agent and key.last_seq > seen[3]:
                    seen[2], seen[3] = key.agent, key.last_seq
        for rejects in self.rejects.values():
            assert rejects.ids is not None
            worker_id = rejects.ids[2]
            for minute, count in rejects.minutes.items():
                stat = minutes.get((worker_id, int(minute)))
                if stat is None:
                    minutes[(worker_id, int(minute))] = [0, count, 0.0]
                else:
                    stat[1] += count
        # one round trip for the three (pipeline mode needs libpq 14+; without it, one each)
        with conn.pipeline() if psycopg.Pipeline.is_supported() else contextlib.nullcontext():
            q.add_share_stats(conn, [(w, m, a, r, d) for (w, m), (a, r, d) in minutes.items()])
            q.touch_workers(conn, [(w, _us(t), b, u) for w, (t, b, u, _) in touched.items()])
            q.set_checkpoint(conn, self.loader.node_id, self.last_seq, now)
        for block in self.block_records:  # in spool order: each after every share and block before it
            self._block(block)

    def _ensure_ids(self) -> None:
        """Ids for the keys new to the cache and for the rejects' workers (rows inserted when missing), and
        into the rows packed without them."""
        assert self.conn is not None
        # each worker that may be new: its first record in the batch (seq, time, user agent) for first_seen
        firsts: dict[tuple[str, str, str], tuple[int, float, str]] = {}
        for key in self.keys.values():
            if key.pending:
                assert key.strings is not None
                worker = key.strings[:3]
                found = firsts.get(worker)
                if found is None or key.first_seq < found[0]:
                    firsts[worker] = (key.first_seq, key.first_time, key.agent)
        for worker, rejects in self.rejects.items():
            found = firsts.get(worker)
            if found is None or rejects.first_seq < found[0]:
                firsts[worker] = (rejects.first_seq, rejects.first_time, "")
        if not firsts:
            return
        addresses: dict[int, set[str]] = {}
        for coin_key, address, _ in firsts:
            coin_id = self.coin_id(coin_key)
            if self.account_id(coin_id, address) is None:
                addresses.setdefault(coin_id, set()).add(address)
        for coin_id, wanted in addresses.items():
            for address, new_id in q.ensure_accounts(self.conn, coin_id, wanted).items():
                self.account_ids[(coin_id, address)] = new_id
        new: dict[tuple[int, str], tuple[int, str, str, datetime]] = {}
        for (coin_key, address, name), (_, t, agent) in firsts.items():
            account_id = self.account_id(self.coin_id(coin_key), address)
            assert account_id is not None
            if self.worker_id(account_id, name) is None:
                new[(account_id, name)] = (account_id, name, agent, _utc(t))
        self.worker_ids.update(q.ensure_workers(self.conn, list(new.values())))
        ids: dict[tuple[str, str, str], tuple[int, int, int]] = {}
        for coin_key, address, name in firsts:
            coin_id = self.coin_id(coin_key)
            account_id = self.account_id(coin_id, address)
            assert account_id is not None
            worker_id = self.worker_id(account_id, name)
            assert worker_id is not None
            ids[(coin_key, address, name)] = (coin_id, account_id, worker_id)
        rows, at, pack = self.rows, q.SHARE_IDS_AT, q.SHARE_IDS.pack_into
        for key in self.keys.values():
            if key.pending:
                assert key.strings is not None
                key.coin_id, key.account_id, key.worker_id = ids[key.strings[:3]]
                for offset in key.fixups:
                    pack(rows, offset + at, key.coin_id, key.account_id, key.worker_id)
                self.share_keys[key.raw] = (key.coin_id, key.account_id, key.worker_id, key.agent)
        for worker, rejects in self.rejects.items():
            rejects.ids = ids[worker]

    def _block(self, b: BlockRecord) -> None:
        """The block's finder rows (when missing), then the block and its credits by ``credit_block``."""
        conn = self.conn
        assert conn is not None
        coin_id = self.coin_id(b.coin_key)
        finder = self.account_id(coin_id, b.finder_address)
        if finder is None:
            finder = q.ensure_accounts(conn, coin_id, [b.finder_address])[b.finder_address]
            self.account_ids[(coin_id, b.finder_address)] = finder
        worker = self.worker_id(finder, b.finder_worker)
        if worker is None:
            key = (finder, b.finder_worker)
            worker = self.worker_ids[key] = q.ensure_workers(conn, [(*key, "", _utc(b.time))])[key]
        if self.loader.credit_block(conn, b, BlockIds(coin_id, finder, worker, self.loader.node_id)):
            self.blocks += 1
