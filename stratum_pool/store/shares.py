"""SQL of the share loader: coins, accounts and workers rows, share partitions, the share COPY, statistics,
blocks with their credits, the reward windows and the spool checkpoint.

Synchronous psycopg on purpose: the loader runs these on a worker thread, one transaction per batch, so
the event loop never waits on a query nor spends its time formatting rows. Times are passed in (UTC
``datetime``), never taken from ``now()``.

Multi-node caveat: ``seq`` orders shares within one node's spool only. The PPLNS and PROP windows are taken
from the shares of the node that found the block (``node_id``), which is exact for a single node; with
several nodes mining one coin into one database, each block is rewarded from its own node's shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[tuple[Any, ...]]

SHARE_COLUMNS = ("time", "coin_id", "account_id", "worker_id", "difficulty", "achieved", "height", "is_block",
                 "node_id", "seq")
SHARE_TYPES = ("timestamptz", "int2", "int8", "int8", "float8", "float8", "int4", "bool", "int2", "int8")
ShareRow = tuple[datetime, int, int, int, float, float, int, bool, int, int]
# How many rows the PPLNS window query pulls from the server at a time.
_WINDOW_FETCH = 10_000


# ----- reference rows


def ensure_coin(conn: Conn, key: str, symbol: str, maturity: int) -> int:
    row = conn.execute(
        "INSERT INTO coins (key, symbol, maturity) VALUES (%s, %s, %s)"
        " ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id", (key, symbol, maturity)).fetchone()
    assert row is not None
    return int(row[0])


def ensure_accounts(conn: Conn, coin_id: int, addresses: Iterable[str]) -> dict[str, int]:
    """``{address: accounts.id}`` for ``addresses`` of one coin, inserting the missing rows."""
    wanted = sorted(set(addresses))  # one lock order for every writer
    if not wanted:
        return {}
    conn.execute("INSERT INTO accounts (coin_id, address) SELECT %s, a FROM unnest(%s::text[]) AS a"
                 " ON CONFLICT (coin_id, address) DO NOTHING", (coin_id, wanted))
    rows = conn.execute("SELECT address, id FROM accounts WHERE coin_id = %s AND address = ANY(%s::text[])",
                        (coin_id, wanted)).fetchall()
    return {str(a): int(i) for a, i in rows}


def ensure_fee_account(conn: Conn, coin_id: int, address: str) -> int:
    """The fee account of ``address`` (marked ``is_fee_account``), inserted when missing."""
    row = conn.execute(
        "INSERT INTO accounts (coin_id, address, is_fee_account) VALUES (%s, %s, true)"
        " ON CONFLICT (coin_id, address) DO UPDATE SET is_fee_account = true RETURNING id",
        (coin_id, address)).fetchone()
    assert row is not None
    return int(row[0])


def ensure_workers(conn: Conn, workers: Sequence[tuple[int, str, str, datetime]]) -> dict[tuple[int, str], int]:
    """``{(account_id, name): workers.id}`` for ``(account_id, name, user_agent, first_seen)`` rows, inserting
    the missing ones."""
    if not workers:
        return {}
    rows = sorted(workers, key=lambda w: (w[0], w[1]))
    conn.execute(
        "INSERT INTO workers (account_id, name, user_agent, first_seen, last_seen)"
        " SELECT a, n, u, t, t FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[]) AS v(a, n, u, t)"
        " ON CONFLICT (account_id, name) DO NOTHING",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]))
    found = conn.execute(
        "SELECT w.account_id, w.name, w.id FROM workers w"
        " JOIN unnest(%s::bigint[], %s::text[]) AS v(a, n) ON w.account_id = v.a AND w.name = v.n",
        ([r[0] for r in rows], [r[1] for r in rows])).fetchall()
    return {(int(a), str(n)): int(i) for a, n, i in found}


# ----- shares


def partition_name(day: date) -> str:
    return f"shares_{day:%Y%m%d}"


def existing_share_partitions(conn: Conn) -> set[str]:
    rows = conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'shares'::regclass").fetchall()
    return {str(r[0]) for r in rows}


def create_share_partition(conn: Conn, day: date) -> None:
    """The ``shares`` partition of one UTC day (no-op when it exists)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF shares FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(partition_name(day)), sql.Literal(start), sql.Literal(start + timedelta(days=1))))


def copy_shares(conn: Conn, rows: Iterable[ShareRow]) -> None:
    """COPY share rows (in :data:`SHARE_COLUMNS` order) into ``shares``; their partitions must exist."""
    statement = sql.SQL("COPY shares ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, SHARE_COLUMNS)))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(SHARE_TYPES)
        for row in rows:
            copy.write_row(row)


def add_share_stats(conn: Conn, minutes: Sequence[tuple[int, datetime, int, int, float]],
                    days: Sequence[tuple[int, date, int, int, float]]) -> None:
    """Add ``(worker_id, minute|day, accepted, rejected, difficulty)`` to the per-minute and per-day stats."""
    if minutes:
        rows = sorted(minutes, key=lambda r: (r[0], r[1]))
        conn.execute(
            "INSERT INTO share_stats_minute AS s (worker_id, minute, accepted, rejected, difficulty)"
            " SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::int[], %b::int[], %b::float8[])"
            " ON CONFLICT (worker_id, minute) DO UPDATE SET accepted = s.accepted + EXCLUDED.accepted,"
            " rejected = s.rejected + EXCLUDED.rejected, difficulty = s.difficulty + EXCLUDED.difficulty",
            tuple(list(col) for col in zip(*rows, strict=True)))
    if days:
        rows_d = sorted(days, key=lambda r: (r[0], r[1]))
        conn.execute(
            "INSERT INTO share_stats_day AS s (worker_id, day, accepted, rejected, difficulty)"
            " SELECT * FROM unnest(%b::bigint[], %b::date[], %b::int[], %b::int[], %b::float8[])"
            " ON CONFLICT (worker_id, day) DO UPDATE SET accepted = s.accepted + EXCLUDED.accepted,"
            " rejected = s.rejected + EXCLUDED.rejected, difficulty = s.difficulty + EXCLUDED.difficulty",
            tuple(list(col) for col in zip(*rows_d, strict=True)))


def touch_workers(conn: Conn, workers: Sequence[tuple[int, datetime, float, str]]) -> None:
    """``(worker_id, last_seen, best_difficulty, user_agent)``: raise last_seen and best_difficulty to these,
    and take the user agent when one is given."""
    if not workers:
        return
    rows = sorted(workers)
    conn.execute(
        "UPDATE workers w SET last_seen = greatest(w.last_seen, v.t),"
        " best_difficulty = greatest(w.best_difficulty, v.b),"
        " user_agent = CASE WHEN v.u <> '' THEN v.u ELSE w.user_agent END"
        " FROM unnest(%b::bigint[], %b::timestamptz[], %b::float8[], %b::text[]) AS v(i, t, b, u) WHERE w.id = v.i",
        tuple(list(col) for col in zip(*rows, strict=True)))


# ----- the spool checkpoint


def read_checkpoint(conn: Conn, node_id: int) -> int:
    row = conn.execute("SELECT seq FROM spool_checkpoints WHERE node_id = %s", (node_id,)).fetchone()
    return 0 if row is None else int(row[0])


def lock_checkpoint(conn: Conn, node_id: int) -> int:
    """The node's checkpoint, row-locked until the transaction ends (so two loaders of one node cannot both
    load the same records)."""
    conn.execute("INSERT INTO spool_checkpoints (node_id, seq) VALUES (%s, 0) ON CONFLICT (node_id) DO NOTHING",
                 (node_id,))
    row = conn.execute("SELECT seq FROM spool_checkpoints WHERE node_id = %s FOR UPDATE", (node_id,)).fetchone()
    assert row is not None
    return int(row[0])


def set_checkpoint(conn: Conn, node_id: int, seq: int, now: datetime) -> None:
    conn.execute("UPDATE spool_checkpoints SET seq = %s, updated_at = %s WHERE node_id = %s", (seq, now, node_id))


# ----- blocks, windows and credits


def insert_block(conn: Conn, *, coin_id: int, height: int, hash_display: str, reward: int, finder_account_id: int,
                 finder_worker_id: int | None, scheme: str, accepted: bool, submit_result: str, node_id: int,
                 share_seq: int, found_at: datetime, network_difficulty: float,
                 pplns_window_factor: float) -> int | None:
    """Insert a found block: ``pending`` when the daemons accepted it, ``orphaned`` when they refused it.
    Returns its id, or None when a block with that hash is already recorded."""
    row = conn.execute(
        "INSERT INTO blocks (coin_id, height, hash, reward, finder_account_id, finder_worker_id, scheme, status,"
        " submit_result, node_id, share_seq, found_at, updated_at, submit_accepted, network_difficulty,"
        " pplns_window_factor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (hash) DO NOTHING RETURNING id",
        (coin_id, height, hash_display, reward, finder_account_id, finder_worker_id, scheme,
         "pending" if accepted else "orphaned", submit_result, node_id, share_seq, found_at, found_at, accepted,
         network_difficulty, pplns_window_factor)).fetchone()
    return None if row is None else int(row[0])


def insert_credits(conn: Conn, block_id: int, credits: dict[int, int], scheme: str) -> None:
    if not credits:
        return
    accounts = sorted(credits)
    conn.execute(
        "INSERT INTO credits (block_id, account_id, amount, scheme)"
        " SELECT %s, a, m, %s FROM unnest(%s::bigint[], %s::bigint[]) AS v(a, m)",
        (block_id, scheme, accounts, [credits[a] for a in accounts]))


def pplns_window(conn: Conn, coin_id: int, node_id: int, share_seq: int, size: float) -> list[tuple[int, float]]:
    """The last ``size`` difficulty of shares up to ``share_seq`` (newest first), as ``(account_id, weight)``;
    the oldest share in the window counts only the part of its difficulty that fits, so the weights add up
    to exactly ``size`` (or to all the shares there are, when fewer)."""
    out: list[tuple[int, float]] = []
    if size <= 0:
        return out
    total = 0.0
    with conn.cursor(name="pplns_window") as cur:
        cur.itersize = _WINDOW_FETCH
        cur.execute("SELECT account_id, difficulty FROM shares WHERE coin_id = %s AND node_id = %s AND seq <= %s"
                    " ORDER BY seq DESC", (coin_id, node_id, share_seq))
        for account_id, difficulty in cur:
            left = size - total
            if difficulty >= left:
                out.append((int(account_id), left))
                break
            out.append((int(account_id), float(difficulty)))
            total += difficulty
    return out


def previous_round_end(conn: Conn, coin_id: int, node_id: int, share_seq: int) -> int:
    """The share seq of the coin's previous block (one the daemons accepted) before ``share_seq``; 0 if none."""
    row = conn.execute(
        "SELECT coalesce(max(share_seq), 0) FROM blocks WHERE coin_id = %s AND node_id = %s AND share_seq < %s"
        " AND submit_accepted", (coin_id, node_id, share_seq)).fetchone()
    return 0 if row is None else int(row[0])


def round_window(conn: Conn, coin_id: int, node_id: int, share_seq: int) -> list[tuple[int, float]]:
    """Every share of the round ending at ``share_seq`` (since the previous block), summed per account."""
    start = previous_round_end(conn, coin_id, node_id, share_seq)
    rows = conn.execute(
        "SELECT account_id, sum(difficulty) FROM shares WHERE coin_id = %s AND node_id = %s AND seq > %s"
        " AND seq <= %s GROUP BY account_id ORDER BY account_id", (coin_id, node_id, start, share_seq)).fetchall()
    return [(int(a), float(d)) for a, d in rows]
