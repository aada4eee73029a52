"""Every read query of the HTTP API, and the small connection pool they run on.

The API never writes: its connections are opened with ``default_transaction_read_only`` and a statement
timeout, so a slow or buggy page can neither change money nor hold a backend for long. Times come in as
arguments (the caller's injected clock), never from ``now()``, so answers are reproducible in tests.

Amounts are integer base units; difficulty sums are floats; the caller turns them into hashrates.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:  # psycopg is imported by ReadPool's first query: an API without a database does not carry its
    # ~10 MiB
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    Conn = AsyncConnection[tuple[Any, ...]]

P = ParamSpec("P")
T = TypeVar("T")

# A page should never wait on the database for long; a query that needs longer than this is a bug or an
# overload, and the API answers 503 instead of piling up requests.
STATEMENT_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_SECONDS = 3
FAIL_FAST_SECONDS = 5.0


class DatabaseUnavailable(Exception):
    """The database could not be reached or failed a query; the message is safe to log, not to show."""


class ReadPool:
    """A few autocommit, read-only connections shared by the API handlers (a ``psycopg_pool``
    ``AsyncConnectionPool``), made and opened on first use, so the API starts whether or not the database is up
    (and psycopg is imported only by an API with a database).

    The pool drops a connection that broke; a query that failed on a reused (possibly stale) connection is
    tried once more on a fresh one, so a database restart costs no failed request. With the database down, a
    request waits at most ``connect_timeout`` for a connection, then fails (503).
    """

    def __init__(self, dsn: str, *, size: int = 4, connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
                 statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
        self._dsn, self._size, self._connect_timeout = dsn, size, connect_timeout
        self._options = f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
        self._pool: AsyncConnectionPool[Conn] | None = None  # made and opened by the first query
        self._failed_at: float | None = None  # monotonic time of the last failed connect

    def _connect_failed(self, _: AsyncConnectionPool[Conn]) -> None:
        self._failed_at = time.monotonic()

    async def _connections(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            from psycopg_pool import AsyncConnectionPool

            # min_size 0: nothing is opened until a request needs it, and an idle API holds no backend for long
            timeout = self._connect_timeout
            self._pool = AsyncConnectionPool(
                self._dsn, min_size=0, max_size=self._size, open=False, timeout=timeout, max_idle=300.0,
                name="stratum-pool-api", reconnect_timeout=0.0, reconnect_failed=self._connect_failed,
                kwargs={"autocommit": True, "connect_timeout": timeout, "options": self._options,
                        "application_name": "stratum-pool-api"})
            await self._pool.open(wait=False)
        return self._pool

    async def run(self, query: Callable[Concatenate[Conn, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await query(conn, *args, **kwargs)`` on a pooled connection."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = await self._connections()
        # A client waiting for a connection is not woken when the connect fails: it waits out the timeout. So
        # once a connect failed, requests fail at once for a while (then one tries again) instead of each
        # waiting the timeout while the database is down.
        if (self._failed_at is not None and time.monotonic() - self._failed_at < FAIL_FAST_SECONDS
                and not pool.get_stats().get("pool_available")):
            raise DatabaseUnavailable("connect failed recently")
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    return await query(conn, *args, **kwargs)
            except PoolTimeout as exc:
                raise DatabaseUnavailable("connect failed: no connection within the timeout") from exc
            except psycopg.OperationalError as exc:
                # the pool discards the broken connection; the second attempt gets another (or a new) one
                if attempt == 1:
                    continue
                raise DatabaseUnavailable(f"query failed: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        await self.run(_ping)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _ping(conn: Conn) -> None:
    await conn.execute("SELECT 1")


# ----- what the queries return


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    coin_key: str
    symbol: str
    address: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkerStats:
    name: str
    last_seen: datetime
    best_difficulty: float
    recent_difficulty: float  # accepted difficulty in the hashrate window
    accepted: int  # in the counting window (24 h)
    rejected: int
    last_share: datetime | None  # the last minute with an accepted share, within the counting window


@dataclass(frozen=True, slots=True)
class Balance:
    confirmed: int
    pending: int  # credits of blocks not yet mature
    paid: int  # payouts of batches the wallet accepted


@dataclass(frozen=True, slots=True)
class Credit:
    block_height: int
    block_hash: str
    amount: int
    scheme: str
    status: str
    found_at: datetime


@dataclass(frozen=True, slots=True)
class Payout:
    batch_id: int
    amount: int
    status: str
    txid: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    difficulty: float


@dataclass(frozen=True, slots=True)
class CoinBucket:
    coin_key: str
    start: datetime
    difficulty: float


@dataclass(frozen=True, slots=True)
class CoinActivity:
    coin_key: str
    miners: int
    workers: int
    difficulty: float


@dataclass(frozen=True, slots=True)
class CoinBlocks:
    coin_key: str
    total: int
    pending: int
    confirmed: int
    orphaned: int
    last_height: int
    last_hash: str
    last_status: str
    last_found_at: datetime


@dataclass(frozen=True, slots=True)
class Block:
    coin_key: str
    symbol: str
    height: int
    hash: str
    status: str
    confirmations: int
    reward: int
    scheme: str
    finder: str
    worker: str | None
    found_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutBatch:
    id: int
    coin_key: str
    symbol: str
    status: str
    txid: str | None
    total: int
    outputs: int
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Ranked:
    coin_key: str
    address: str
    value: float


# ----- one miner


async def find_accounts(conn: Conn, address: str, coin_key: str | None = None) -> list[Account]:
    """The accounts with this payout address (one per coin it mines)."""
    cur = await conn.execute(
        "SELECT a.id, c.key, c.symbol, a.address, a.created_at FROM accounts a JOIN coins c ON c.id = a.coin_id"
        " WHERE a.address = %(address)s AND (%(coin)s::text IS NULL OR c.key = %(coin)s) ORDER BY c.key",
        {"address": address, "coin": coin_key})
    return [Account(*row) for row in await cur.fetchall()]


async def account_workers(conn: Conn, account_id: int, *, now: datetime, recent_since: datetime,
                          count_since: datetime, limit: int = 1000) -> list[WorkerStats]:
    """Each worker of the account with its difficulty since ``recent_since`` and counts since ``count_since``.

    Minute buckets are taken when ``since < minute <= now``.
    """
    cur = await conn.execute(
        "SELECT w.name, w.last_seen, w.best_difficulty,"
        " COALESCE(SUM(s.difficulty) FILTER (WHERE s.minute > %(recent)s), 0)::float8,"
        " COALESCE(SUM(s.accepted), 0)::bigint, COALESCE(SUM(s.rejected), 0)::bigint,"
        " MAX(s.minute) FILTER (WHERE s.accepted > 0)"
        " FROM workers w LEFT JOIN share_stats_minute s"
        "  ON s.worker_id = w.id AND s.minute > %(count)s AND s.minute <= %(now)s"
        " WHERE w.account_id = %(account)s GROUP BY w.id ORDER BY w.name LIMIT %(limit)s",
        {"account": account_id, "now": now, "recent": recent_since, "count": count_since, "limit": limit})
    return [WorkerStats(*row) for row in await cur.fetchall()]


async def account_balance(conn: Conn, account_id: int) -> Balance:
    cur = await conn.execute(
        "SELECT"
        " COALESCE((SELECT confirmed FROM balances WHERE account_id = %(a)s), 0),"
        " COALESCE((SELECT SUM(amount) FROM credits WHERE account_id = %(a)s AND status = 'pending'), 0)::bigint,"
        " COALESCE((SELECT SUM(p.amount) FROM payouts p JOIN payout_batches b ON b.id = p.batch_id"
        "           WHERE p.account_id = %(a)s AND b.status = 'sent'), 0)::bigint",
        {"a": account_id})
    row = await cur.fetchone()
    assert row is not None
    return Balance(*row)


async def account_credits(conn: Conn, account_id: int, limit: int = 50) -> list[Credit]:
    cur = await conn.execute(
        "SELECT b.height, b.hash, c.amount, c.scheme, c.status, b.found_at"
        " FROM credits c JOIN blocks b ON b.id = c.block_id"
        " WHERE c.account_id = %(a)s ORDER BY c.id DESC LIMIT %(limit)s",
        {"a": account_id, "limit": limit})
    return [Credit(*row) for row in await cur.fetchall()]


async def account_payouts(conn: Conn, account_id: int, limit: int = 50) -> list[Payout]:
    cur = await conn.execute(
        "SELECT b.id, p.amount, b.status, b.txid, b.created_at, b.finished_at"
        " FROM payouts p JOIN payout_batches b ON b.id = p.batch_id"
        " WHERE p.account_id = %(a)s ORDER BY b.id DESC LIMIT %(limit)s",
        {"a": account_id, "limit": limit})
    return [Payout(*row) for row in await cur.fetchall()]


# the history queries' common part: minutes of share_stats_minute (s) with their workers (w), their difficulty
# summed per ``step`` seconds (buckets aligned on the epoch)
_BUCKETED_DIFFICULTY = ("to_timestamp(floor(extract(epoch FROM s.minute) / %(step)s) * %(step)s) AS bucket,"
                        " SUM(s.difficulty)::float8 FROM share_stats_minute s JOIN workers w ON w.id = s.worker_id")


async def account_difficulty_history(conn: Conn, account_id: int, *, start: datetime, end: datetime,
                                     step_seconds: int) -> list[Bucket]:
    """Accepted difficulty per ``step_seconds`` bucket (aligned on the epoch) for ``start <= minute < end``.

    Buckets with no shares are absent.
    """
    cur = await conn.execute(
        f"SELECT {_BUCKETED_DIFFICULTY}"
        " WHERE w.account_id = %(a)s AND s.minute >= %(start)s AND s.minute < %(end)s"
        " GROUP BY bucket ORDER BY bucket",
        {"a": account_id, "start": start, "end": end, "step": step_seconds})
    return [Bucket(*row) for row in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class WorkerBucket:
    worker: str
    start: datetime
    difficulty: float


async def worker_difficulty_history(conn: Conn, account_id: int, *, start: datetime, end: datetime,
                                    step_seconds: int) -> list[WorkerBucket]:
    """Accepted difficulty per worker of the account and ``step_seconds`` bucket (aligned on the epoch) for
    ``start <= minute < end``; buckets with no shares are absent."""
    cur = await conn.execute(
        f"SELECT w.name, {_BUCKETED_DIFFICULTY}"
        " WHERE w.account_id = %(a)s AND s.minute >= %(start)s AND s.minute < %(end)s"
        " GROUP BY w.name, bucket ORDER BY w.name, bucket",
        {"a": account_id, "start": start, "end": end, "step": step_seconds})
    return [WorkerBucket(*row) for row in await cur.fetchall()]


# ----- the pool


async def coin_activity(conn: Conn, *, now: datetime, since: datetime) -> list[CoinActivity]:
    """Per coin: accounts and workers with accepted shares, and their difficulty, for ``since < minute <= now``."""
    cur = await conn.execute(
        "SELECT c.key,"
        " COUNT(DISTINCT w.account_id) FILTER (WHERE s.accepted > 0),"
        " COUNT(DISTINCT s.worker_id) FILTER (WHERE s.accepted > 0),"
        " COALESCE(SUM(s.difficulty), 0)::float8"
        " FROM share_stats_minute s JOIN workers w ON w.id = s.worker_id"
        " JOIN accounts a ON a.id = w.account_id JOIN coins c ON c.id = a.coin_id"
        " WHERE s.minute > %(since)s AND s.minute <= %(now)s GROUP BY c.key",
        {"now": now, "since": since})
    return [CoinActivity(*row) for row in await cur.fetchall()]


async def coin_blocks(conn: Conn) -> list[CoinBlocks]:
    """Per coin: blocks found by status, and the last one found."""
    cur = await conn.execute(
        "WITH counts AS ("
        "  SELECT coin_id, COUNT(*) AS total,"
        "   COUNT(*) FILTER (WHERE status = 'pending') AS pending,"
        "   COUNT(*) FILTER (WHERE status = 'confirmed') AS confirmed,"
        "   COUNT(*) FILTER (WHERE status = 'orphaned') AS orphaned"
        "  FROM blocks GROUP BY coin_id),"
        " last AS ("
        "  SELECT DISTINCT ON (coin_id) coin_id, height, hash, status, found_at"
        "  FROM blocks ORDER BY coin_id, found_at DESC, id DESC)"
        " SELECT c.key, n.total, n.pending, n.confirmed, n.orphaned, l.height, l.hash, l.status, l.found_at"
        " FROM counts n JOIN last l USING (coin_id) JOIN coins c ON c.id = n.coin_id ORDER BY c.key")
    return [CoinBlocks(*row) for row in await cur.fetchall()]


async def pool_difficulty_history(conn: Conn, *, start: datetime, end: datetime, step_seconds: int,
                                  coin_key: str | None = None) -> list[CoinBucket]:
    """Accepted difficulty per coin per bucket (as ``account_difficulty_history``, for the whole pool)."""
    cur = await conn.execute(
        f"SELECT c.key, {_BUCKETED_DIFFICULTY}"
        " JOIN accounts a ON a.id = w.account_id JOIN coins c ON c.id = a.coin_id"
        " WHERE s.minute >= %(start)s AND s.minute < %(end)s AND (%(coin)s::text IS NULL OR c.key = %(coin)s)"
        " GROUP BY c.key, bucket ORDER BY c.key, bucket",
        {"start": start, "end": end, "step": step_seconds, "coin": coin_key})
    return [CoinBucket(*row) for row in await cur.fetchall()]


async def recent_blocks(conn: Conn, *, coin_key: str | None = None, limit: int = 50) -> list[Block]:
    cur = await conn.execute(
        "SELECT c.key, c.symbol, b.height, b.hash, b.status, b.confirmations, b.reward, b.scheme,"
        " a.address, w.name, b.found_at"
        " FROM blocks b JOIN coins c ON c.id = b.coin_id JOIN accounts a ON a.id = b.finder_account_id"
        " LEFT JOIN workers w ON w.id = b.finder_worker_id"
        " WHERE (%(coin)s::text IS NULL OR c.key = %(coin)s)"
        " ORDER BY b.found_at DESC, b.id DESC LIMIT %(limit)s",
        {"coin": coin_key, "limit": limit})
    return [Block(*row) for row in await cur.fetchall()]


async def recent_payout_batches(conn: Conn, *, coin_key: str | None = None, limit: int = 50) -> list[PayoutBatch]:
    cur = await conn.execute(
        "SELECT b.id, c.key, c.symbol, b.status, b.txid, b.total,"
        " (SELECT COUNT(*) FROM payouts p WHERE p.batch_id = b.id), b.created_at, b.finished_at"
        " FROM payout_batches b JOIN coins c ON c.id = b.coin_id"
        " WHERE (%(coin)s::text IS NULL OR c.key = %(coin)s)"
        " ORDER BY b.id DESC LIMIT %(limit)s",
        {"coin": coin_key, "limit": limit})
    return [PayoutBatch(*row) for row in await cur.fetchall()]


# ----- leaderboards: the top ``limit`` accounts of each coin


async def top_recent_difficulty(conn: Conn, *, now: datetime, since: datetime, limit: int = 10) -> list[Ranked]:
    """Accounts by accepted difficulty for ``since < minute <= now`` (their hashrate, before scaling)."""
    cur = await conn.execute(
        "SELECT key, address, difficulty FROM ("
        "  SELECT c.key, a.address, SUM(s.difficulty)::float8 AS difficulty,"
        "   ROW_NUMBER() OVER (PARTITION BY c.key ORDER BY SUM(s.difficulty) DESC, a.address) AS rank"
        "  FROM share_stats_minute s JOIN workers w ON w.id = s.worker_id"
        "  JOIN accounts a ON a.id = w.account_id JOIN coins c ON c.id = a.coin_id"
        "  WHERE s.minute > %(since)s AND s.minute <= %(now)s AND NOT a.is_fee_account"
        "  GROUP BY c.key, a.address HAVING SUM(s.difficulty) > 0) ranked"
        " WHERE rank <= %(limit)s ORDER BY key, rank",
        {"now": now, "since": since, "limit": limit})
    return [Ranked(*row) for row in await cur.fetchall()]


async def top_blocks_found(conn: Conn, *, limit: int = 10) -> list[Ranked]:
    """Accounts by blocks found (orphans not counted)."""
    cur = await conn.execute(
        "SELECT key, address, found FROM ("
        "  SELECT c.key, a.address, COUNT(*)::float8 AS found,"
        "   ROW_NUMBER() OVER (PARTITION BY c.key ORDER BY COUNT(*) DESC, a.address) AS rank"
        "  FROM blocks b JOIN accounts a ON a.id = b.finder_account_id JOIN coins c ON c.id = b.coin_id"
        "  WHERE b.status <> 'orphaned'"
        "  GROUP BY c.key, a.address) ranked"
        " WHERE rank <= %(limit)s ORDER BY key, rank",
        {"limit": limit})
    return [Ranked(*row) for row in await cur.fetchall()]


async def top_best_difficulty(conn: Conn, *, limit: int = 10) -> list[Ranked]:
    """Accounts by the best share difficulty any of their workers reached."""
    cur = await conn.execute(
        "SELECT key, address, best FROM ("
        "  SELECT c.key, a.address, MAX(w.best_difficulty) AS best,"
        "   ROW_NUMBER() OVER (PARTITION BY c.key ORDER BY MAX(w.best_difficulty) DESC, a.address) AS rank"
        "  FROM workers w JOIN accounts a ON a.id = w.account_id JOIN coins c ON c.id = a.coin_id"
        "  WHERE NOT a.is_fee_account"
        "  GROUP BY c.key, a.address HAVING MAX(w.best_difficulty) > 0) ranked"
        " WHERE rank <= %(limit)s ORDER BY key, rank",
        {"limit": limit})
    return [Ranked(*row) for row in await cur.fetchall()]
