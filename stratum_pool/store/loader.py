"""The share loader: spool -> PostgreSQL, exactly once, in batches.

One asyncio task; every batch runs on a worker thread (synchronous psycopg), so the stratum loop never
waits on the database. A batch is one transaction that

* row-locks this node's ``spool_checkpoints`` row and checks it is where this loader thinks it is,
* inserts the missing coins, accounts and workers rows (ids cached once committed),
* COPYs the accepted shares into ``shares`` (daily partitions are created beforehand, in their own short
  transactions, because attaching a partition locks the parent table),
* adds to the per-minute and per-day statistics and raises ``workers.last_seen`` / ``best_difficulty``,
* inserts each found block, in spool order, after every share before it, with its credits from the
  coin's reward scheme (the block row and its credits commit together),
* and moves the checkpoint to the batch's last seq.

Only after the commit is the spool trimmed. A crash or an outage anywhere in between leaves the checkpoint
before the batch, so the batch is loaded again, whole, when the database is back: never twice, never
half. While PostgreSQL is unreachable the loader retries with exponential backoff and jitter (capped),
and the spool simply grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import structlog

from stratum_pool.coins import COINS, Coin
from stratum_pool.rewards.schemes import scheme_for
from stratum_pool.store import shares as q
from stratum_pool.store.spool import BlockRecord, RejectedRecord, ShareRecord, ShareSpool, SpoolRecord

log = structlog.get_logger("stratum_pool.store.loader")

DEFAULT_BATCH_MAX = 50_000
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5
# With nothing to load, look at the spool again at least this often (a group commit wakes it sooner).
IDLE_SECONDS = 1.0
# Id caches are dropped when they grow past this many entries (they refill from the database).
_CACHE_MAX = 1_000_000


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


class SpoolLoader:
    """Loads one node's spool into PostgreSQL. ``start()`` it on the pool's loop; ``await stop()`` at exit."""

    def __init__(self, spool: ShareSpool, dsn: str, node_id: int, *, batch_max: int = DEFAULT_BATCH_MAX,
                 clock: Callable[[], float] = time.time, backoff_initial: float = BACKOFF_INITIAL_SECONDS,
                 backoff_max: float = BACKOFF_MAX_SECONDS, rng: random.Random | None = None,
                 coins: Mapping[str, Coin] = COINS, idle_seconds: float = IDLE_SECONDS,
                 connect_timeout: int = CONNECT_TIMEOUT_SECONDS) -> None:
        self.spool = spool
        self.dsn = dsn
        self.node_id = node_id
        self.batch_max = batch_max
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rng = rng if rng is not None else random.Random()
        self.coins = coins
        self.idle_seconds = idle_seconds
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._checkpoint: int | None = None
        self._coin_ids: dict[str, int] = {}
        self._account_ids: dict[tuple[int, str], int] = {}
        self._worker_ids: dict[tuple[int, str], int] = {}
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
        records = self.spool.read_from(self._checkpoint, self.batch_max)
        if not records:
            self.spool.truncate_through(self._checkpoint)
            return 0
        self._ensure_partitions(conn, records)
        batch = _Batch(self, conn)
        with conn.transaction():
            locked = q.lock_checkpoint(conn, self.node_id)
            if locked != self._checkpoint:
                log.warning("checkpoint_moved", node_id=self.node_id, expected=self._checkpoint, found=locked)
                self._checkpoint = locked
                raise CheckpointMoved(f"checkpoint of node {self.node_id} is {locked}, expected another")
            batch.load(records)
            q.set_checkpoint(conn, self.node_id, records[-1].seq, _utc(self.clock()))
        # committed: only now do the new ids and the new checkpoint become ours
        batch.commit_caches()
        self._checkpoint = records[-1].seq
        self._shares_loaded += batch.shares
        self._rejected_loaded += batch.rejected
        self._blocks_loaded += batch.blocks
        self._batches += 1
        self.spool.truncate_through(self._checkpoint)
        return len(records)

    def _ensure_partitions(self, conn: psycopg.Connection[tuple[Any, ...]], records: list[SpoolRecord]) -> None:
        days: set[date] = set()
        for r in records:
            if isinstance(r, ShareRecord):
                days.add(_utc(r.time).date())
        if days:
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

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self.run(), name="spool-loader")

    async def run(self) -> None:
        stopping = self._stopping if self._stopping is not None else asyncio.Event()
        self._stopping = stopping
        while not stopping.is_set():
            try:
                loaded = await asyncio.to_thread(self.load_batch)
            except Exception as exc:
                self._failed(exc)
                await self._wait(stopping, self._backoff(), wake_on_data=False)
                continue
            if self._failures:
                log.info("spool_loader_recovered", after_failures=self._failures, checkpoint=self._checkpoint)
            self._failures = 0
            if loaded < self.batch_max:
                await self._wait(stopping, self.idle_seconds, wake_on_data=True)

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
                if not await asyncio.to_thread(self.load_batch):
                    break
            except Exception as exc:
                self._failed(exc)
                break
        self.close()


class _Batch:
    """One batch's rows, built and written inside the loader's transaction."""

    def __init__(self, loader: SpoolLoader, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.loader = loader
        self.conn = conn
        self.coin_ids: dict[str, int] = {}
        self.account_ids: dict[tuple[int, str], int] = {}
        self.worker_ids: dict[tuple[int, str], int] = {}
        self.shares = 0
        self.rejected = 0
        self.blocks = 0

    def commit_caches(self) -> None:
        loader = self.loader
        if len(loader._account_ids) + len(loader._worker_ids) > _CACHE_MAX:
            loader._account_ids.clear()
            loader._worker_ids.clear()
        loader._coin_ids.update(self.coin_ids)
        loader._account_ids.update(self.account_ids)
        loader._worker_ids.update(self.worker_ids)

    def coin_id(self, key: str) -> int:
        found = self.loader._coin_ids.get(key) or self.coin_ids.get(key)
        if found is None:
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

    def _ensure_ids(self, records: list[SpoolRecord]) -> None:
        """Accounts and workers of every share and reject record (blocks take care of their own)."""
        addresses: dict[int, set[str]] = {}
        for r in records:
            if isinstance(r, ShareRecord | RejectedRecord):
                coin_id = self.coin_id(r.coin_key)
                if self.account_id(coin_id, r.address) is None:
                    addresses.setdefault(coin_id, set()).add(r.address)
        for coin_id, wanted in addresses.items():
            for address, new_id in q.ensure_accounts(self.conn, coin_id, wanted).items():
                self.account_ids[(coin_id, address)] = new_id
        workers: dict[tuple[int, str], tuple[int, str, str, datetime]] = {}
        for r in records:
            if isinstance(r, ShareRecord | RejectedRecord):
                account_id = self.account_id(self.coin_id(r.coin_key), r.address)
                assert account_id is not None
                key = (account_id, r.worker_name)
                if key not in workers and self.worker_id(*key) is None:
                    agent = r.user_agent if isinstance(r, ShareRecord) else ""
                    workers[key] = (account_id, r.worker_name, agent, _utc(r.time))
        self.worker_ids.update(q.ensure_workers(self.conn, list(workers.values())))

    def load(self, records: list[SpoolRecord]) -> None:
        self._ensure_ids(records)
        node_id = self.loader.node_id
        rows: list[q.ShareRow] = []
        minutes: dict[tuple[int, float], list[float]] = {}  # (worker, minute) -> accepted, rejected, difficulty
        touched: dict[int, tuple[float, float, str]] = {}  # worker -> last time, best achieved, user agent
        blocks: list[BlockRecord] = []
        ids: dict[tuple[str, str, str], tuple[int, int, int]] = {}  # (coin, address, worker) -> row ids
        for r in records:
            if isinstance(r, BlockRecord):
                blocks.append(r)
                continue
            key = (r.coin_key, r.address, r.worker_name)
            found = ids.get(key)
            if found is None:
                coin_id = self.coin_id(r.coin_key)
                account_id = self.account_id(coin_id, r.address)
                assert account_id is not None
                worker_id = self.worker_id(account_id, r.worker_name)
                assert worker_id is not None
                found = ids[key] = (coin_id, account_id, worker_id)
            coin_id, account_id, worker_id = found
            t = r.time
            stat = minutes.get((worker_id, t - t % 60.0))
            if stat is None:
                stat = minutes[(worker_id, t - t % 60.0)] = [0, 0, 0.0]
            if isinstance(r, ShareRecord):
                rows.append((_utc(t), coin_id, account_id, worker_id, r.difficulty, r.achieved, r.height,
                             r.is_block, node_id, r.seq))
                stat[0] += 1
                stat[2] += r.difficulty
                seen = touched.get(worker_id)
                if seen is None:
                    touched[worker_id] = (t, r.achieved, r.user_agent)
                else:
                    touched[worker_id] = (max(seen[0], t), max(seen[1], r.achieved), r.user_agent or seen[2])
            else:
                stat[1] += r.count
        self.shares = len(rows)
        self.rejected = len(records) - len(rows) - len(blocks)
        q.copy_shares(self.conn, rows)
        per_minute = []
        per_day: dict[tuple[int, date], list[float]] = {}
        for (worker_id, minute), (accepted, rejected, difficulty) in minutes.items():
            at = _utc(minute)
            per_minute.append((worker_id, at, int(accepted), int(rejected), difficulty))
            day = per_day.setdefault((worker_id, at.date()), [0, 0, 0.0])
            day[0] += accepted
            day[1] += rejected
            day[2] += difficulty
        q.add_share_stats(self.conn, per_minute,
                          [(w, d, int(a), int(rj), df) for (w, d), (a, rj, df) in per_day.items()])
        q.touch_workers(self.conn, [(w, _utc(t), b, ua) for w, (t, b, ua) in touched.items()])
        for block in blocks:  # in spool order: each after every share and block before it
            self._block(block)

    def _block(self, b: BlockRecord) -> None:
        conn, node_id = self.conn, self.loader.node_id
        coin_id = self.coin_id(b.coin_key)
        finder = self.account_id(coin_id, b.finder_address)
        if finder is None:
            finder = q.ensure_accounts(conn, coin_id, [b.finder_address])[b.finder_address]
            self.account_ids[(coin_id, b.finder_address)] = finder
        worker = self.worker_id(finder, b.finder_worker)
        if worker is None:
            key = (finder, b.finder_worker)
            worker = self.worker_ids[key] = q.ensure_workers(conn, [(*key, "", _utc(b.time))])[key]
        scheme = scheme_for(b.scheme)
        block_id = q.insert_block(
            conn, coin_id=coin_id, height=b.height, hash_display=b.hash_display, reward=b.reward,
            finder_account_id=finder, finder_worker_id=worker, scheme=scheme.name, accepted=b.accepted,
            submit_result=b.submit_result, node_id=node_id, share_seq=b.share_seq, found_at=_utc(b.time),
            network_difficulty=b.network_difficulty, pplns_window_factor=b.pplns_window_factor)
        if block_id is None:
            log.warning("block_already_recorded", hash=b.hash_display, height=b.height)
            return
        self.blocks += 1
        if not b.accepted:
            log.info("block_recorded", hash=b.hash_display, height=b.height, accepted=False)
            return
        fee_account = q.ensure_fee_account(conn, coin_id, b.fee_address) if b.fee_address else None
        if scheme.window == "pplns":
            window = q.pplns_window(conn, coin_id, node_id, b.share_seq, b.pplns_window_factor * b.network_difficulty)
        elif scheme.window == "round":
            window = q.round_window(conn, coin_id, node_id, b.share_seq)
        else:
            window = []
        credits = scheme.credits(b.reward, window, finder, fee_account, b.fee_ppm)
        assert sum(credits.values()) == b.reward, "a scheme must credit exactly the reward"
        q.insert_credits(conn, block_id, credits, scheme.name)
        log.info("block_recorded", hash=b.hash_display, height=b.height, accepted=True, scheme=scheme.name,
                 reward=b.reward, credits=len(credits), window_shares=len(window))
