"""Share retention: drop the daily ``shares`` partitions older than ``[database] retention_days``.

Shares are the one table that grows with the hashrate; what outlives them is kept elsewhere: the per-minute
and per-day statistics (``share_stats_minute``, ``share_stats_day``: hashrate history), and each block's
credits (written when the block was loaded). A partition is dropped only when its whole day is older than
the cutoff AND no share in it is still needed:

* a pending block's window (its PPLNS window: the last ``pplns_window_factor x network_difficulty`` of
  difficulty up to its share; its PROP round: the shares since the previous accepted block), kept until the
  block is confirmed or orphaned, so its credits can be audited or computed again while they are not final;
* the open PROP round of each coin named by the caller (shares after its last accepted block), which the
  next block of that coin will be paid from;
* the open PPLNS window of each coin named by the caller: the last ``size`` of difficulty (the caller's
  pplns_window_factor x the current network difficulty; None: the size recorded with the coin's newest
  block, and every share while the coin has none), which the next block of that coin will be paid from.

Synchronous psycopg, one transaction: the pool runs it on a thread, ``stratum-pool prune-shares`` directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from stratum_pool.store.shares import Conn, previous_round_end

_PARTITION = re.compile(r"^shares_(\d{8})$")
_WINDOW_FETCH = 10_000


@dataclass(frozen=True, slots=True)
class RetentionReport:
    cutoff: datetime  # partitions whose day ends at or before this were candidates
    kept_from: datetime | None  # the oldest share still needed by a window (None: no window needs one)
    dropped: list[str] = field(default_factory=list)
    kept_for_windows: list[str] = field(default_factory=list)  # old enough, but a window still needs them


def share_partitions(conn: Conn) -> list[tuple[str, date]]:
    """The daily partitions of ``shares`` (name, day), oldest first."""
    rows = conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'shares'::regclass").fetchall()
    out = []
    for (name,) in rows:
        m = _PARTITION.match(str(name))
        if m:
            out.append((str(name), datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC).date()))
    return sorted(out, key=lambda p: p[1])


def _pplns_window_start(conn: Conn, coin_id: int, node_id: int, share_seq: int, size: float) -> datetime | None:
    """The oldest share time in the PPLNS window of ``size`` difficulty ending at ``share_seq`` (the same
    walk as ``shares.pplns_window``)."""
    if size <= 0:
        return None
    total, oldest = 0.0, None
    with conn.cursor(name="retention_pplns_window") as cur:
        cur.itersize = _WINDOW_FETCH
        cur.execute("SELECT time, difficulty FROM shares WHERE coin_id = %s AND node_id = %s AND seq <= %s"
                    " ORDER BY seq DESC", (coin_id, node_id, share_seq))
        for time, difficulty in cur:
            oldest = time if oldest is None else min(oldest, time)
            total += difficulty
            if total >= size:
                break
    return oldest


def _round_start(conn: Conn, coin_id: int, node_id: int, after_seq: int, up_to_seq: int | None) -> datetime | None:
    """The oldest share time of the shares with ``after_seq < seq <= up_to_seq`` (no upper end: None)."""
    row = conn.execute(
        "SELECT min(time) FROM shares WHERE coin_id = %s AND node_id = %s AND seq > %s"
        " AND (%s::bigint IS NULL OR seq <= %s::bigint)", (coin_id, node_id, after_seq, up_to_seq, up_to_seq)
    ).fetchone()
    return None if row is None else row[0]


def _nodes(conn: Conn, keys: Iterable[str]) -> list[tuple[int, int]]:
    """(coin id, node id) of the coins keyed ``keys``, for every node that ever loaded a spool."""
    rows = conn.execute("SELECT c.id, n.node_id FROM coins c CROSS JOIN spool_checkpoints n WHERE c.key = ANY(%s)",
                        (sorted(set(keys)),)).fetchall()
    return [(int(c), int(n)) for c, n in rows]


def _open_pplns_start(conn: Conn, coin_id: int, node_id: int, size: float | None) -> datetime | None:
    row = conn.execute("SELECT max(seq) FROM shares WHERE coin_id = %s AND node_id = %s",
                       (coin_id, node_id)).fetchone()
    if row is None or row[0] is None:
        return None
    tip = int(row[0])
    if size is None:
        recorded = conn.execute(
            "SELECT pplns_window_factor * network_difficulty FROM blocks WHERE coin_id = %s AND node_id = %s"
            " AND submit_accepted ORDER BY share_seq DESC LIMIT 1", (coin_id, node_id)).fetchone()
        if recorded is None or not recorded[0] or recorded[0] <= 0:
            return _round_start(conn, coin_id, node_id, 0, None)  # size unknown: every share may be needed
        size = float(recorded[0])
    return _pplns_window_start(conn, coin_id, node_id, tip, size)


def oldest_needed_share(conn: Conn, open_round_coins: Iterable[str] = (),
                        open_pplns_windows: Mapping[str, float | None] | None = None) -> datetime | None:
    """The time of the oldest share a pending block's window, an open PROP round (of the coins keyed
    ``open_round_coins``) or an open PPLNS window (``open_pplns_windows``: coin key -> size, module
    docstring) still needs; None when none does."""
    needed: list[datetime] = []
    pending = conn.execute(
        "SELECT coin_id, node_id, share_seq, scheme, pplns_window_factor * network_difficulty FROM blocks"
        " WHERE status = 'pending' AND scheme IN ('pplns', 'prop')").fetchall()
    for coin_id, node_id, share_seq, scheme, size in pending:
        if scheme == "pplns":
            start = _pplns_window_start(conn, coin_id, node_id, share_seq, float(size))
        else:
            start = _round_start(conn, coin_id, node_id, previous_round_end(conn, coin_id, node_id, share_seq),
                                 share_seq)
        if start is not None:
            needed.append(start)
    keys = sorted(set(open_round_coins))
    if keys:
        # per (coin, node): the last accepted block's share ends the previous round (0: none yet)
        rounds = conn.execute(
            "SELECT c.id, n.node_id, coalesce(max(b.share_seq) FILTER (WHERE b.submit_accepted), 0)"
            " FROM coins c CROSS JOIN (SELECT DISTINCT node_id FROM spool_checkpoints) n"
            " LEFT JOIN blocks b ON b.coin_id = c.id AND b.node_id = n.node_id"
            " WHERE c.key = ANY(%s) GROUP BY c.id, n.node_id", (keys,)).fetchall()
        for coin_id, node_id, last_end in rounds:
            start = _round_start(conn, coin_id, node_id, int(last_end), None)
            if start is not None:
                needed.append(start)
    windows = open_pplns_windows or {}
    for coin_id, node_id in _nodes(conn, windows):
        key_row = conn.execute("SELECT key FROM coins WHERE id = %s", (coin_id,)).fetchone()
        assert key_row is not None
        start = _open_pplns_start(conn, coin_id, node_id, windows[str(key_row[0])])
        if start is not None:
            needed.append(start)
    return min(needed) if needed else None


def drop_old_share_partitions(conn: Conn, retention_days: int, now: datetime, open_round_coins: Iterable[str] = (),
                              open_pplns_windows: Mapping[str, float | None] | None = None) -> RetentionReport:
    """Drop every ``shares`` partition whose day ended ``retention_days`` before ``now`` and holds no share
    a window still needs (module docstring). Commits; run it outside any other transaction."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # inside an open transaction this would be a savepoint: the drops and the lock on blocks would last
        # until the caller commits
        raise RuntimeError("drop_old_share_partitions needs a connection outside any transaction")
    cutoff = now - timedelta(days=retention_days)
    with conn.transaction():
        # The loader inserts blocks (and computes their windows) in its own transactions: hold them off
        # until the partitions are gone, so no block is recorded between the look at the windows and the drop.
        conn.execute("LOCK TABLE blocks IN SHARE ROW EXCLUSIVE MODE")
        kept_from = oldest_needed_share(conn, open_round_coins, open_pplns_windows)
        dropped, kept = [], []
        for name, day in share_partitions(conn):
            end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            if end > cutoff:
                break
            if kept_from is not None and end > kept_from:
                kept.append(name)
                continue
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    return RetentionReport(cutoff, kept_from, dropped, kept)


def prune_shares(dsn: str, retention_days: int, now: datetime, open_round_coins: Iterable[str] = (),
                 open_pplns_windows: Mapping[str, float | None] | None = None,
                 connect_timeout: int = 10) -> RetentionReport:
    """:func:`drop_old_share_partitions` on a connection of its own."""
    with psycopg.connect(dsn, connect_timeout=connect_timeout) as conn:
        return drop_old_share_partitions(conn, retention_days, now, open_round_coins, open_pplns_windows)
