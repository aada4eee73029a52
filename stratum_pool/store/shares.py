"""SQL of the share loader: coins, accounts and workers rows, share partitions, the share COPY, statistics,
blocks with their credits, the reward windows and the spool checkpoint.

Synchronous psycopg on purpose: the loader runs these on a worker thread, one transaction per batch, so
the event loop never waits on a query nor spends its time formatting rows. Times are passed in, never taken
from ``now()``: UTC ``datetime`` for the few rows of their own, integers (microseconds or seconds since the
Unix epoch, or PostgreSQL's microseconds in COPY rows) for the bulk ones, whose per-row cost counts.

The bulk paths are built for the loader's thousands of rows per second: shares go in as binary COPY rows
the loader packs itself (:data:`SHARE_ROW`), and the statistics as text array literals (joining numbers in C
is far cheaper than adapting each array element in Python).

Multi-node caveat: ``seq`` orders shares within one node's spool only. The PPLNS and PROP windows are taken
from the shares of the node that found the block (``node_id``), which is exact for a single node; with
several nodes mining one coin into one database, each block is rewarded from its own node's shares.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql

Conn = psycopg.Connection[tuple[Any, ...]]

SHARE_COLUMNS = ("time", "coin_id", "account_id", "worker_id", "difficulty", "achieved", "height", "is_block",
                 "node_id", "seq")
# The binary COPY format of those columns (timestamptz is int8 microseconds since 2000-01-01 UTC, bool one byte).
_SHARE_CODES = ("q", "h", "q", "q", "d", "d", "i", "?", "h", "q")
# One share row in binary COPY format: a 2-byte field count, then per column a 4-byte length and the value.
# The constant words (the count, the lengths) are pad bytes here, so that a row packs with only its 10 values:
# SHARE_ROW.pack_into(rows, offset, time_us, coin_id, account_id, worker_id, difficulty, achieved, height,
# is_block, node_id, seq); finish_share_rows then writes them into every row at once.
SHARE_ROW: Final = struct.Struct(">2x" + "".join(f"4x{code}" for code in _SHARE_CODES))
# The ids of a packed row, to set after the fact: SHARE_IDS.pack_into(rows, row + SHARE_IDS_AT, coin, account,
# worker) (it also zeroes the two length words between them, which finish_share_rows writes afterwards).
SHARE_IDS: Final = struct.Struct(">h4xq4xq")
SHARE_IDS_AT: Final = 2 + 4 + 8 + 4
# Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
PG_EPOCH_US: Final = 946_684_800_000_000


def _row_constants() -> list[tuple[int, int]]:
    """(offset in a row, value) of every non-zero constant byte of SHARE_ROW."""
    out = [(1, len(_SHARE_CODES))]  # the field count, big-endian: its low byte
    at = 2
    for code in _SHARE_CODES:
        size = struct.calcsize(">" + code)
        out.append((at + 3, size))  # the length word, big-endian: its low byte
        at += 4 + size
    assert at == SHARE_ROW.size
    return out


_SHARE_ROW_CONSTANTS: Final = _row_constants()
_COPY_SHARES = sql.SQL("COPY shares ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(map(sql.Identifier, SHARE_COLUMNS)))
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_PGCOPY_TRAILER = b"\xff\xff"
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


def finish_share_rows(rows: bytearray) -> None:
    """Write the constant words (field count, lengths) into every :data:`SHARE_ROW` packed in ``rows``."""
    size = SHARE_ROW.size
    n, rest = divmod(len(rows), size)
    assert rest == 0, "rows must hold whole SHARE_ROWs"
    for at, value in _SHARE_ROW_CONSTANTS:
        rows[at::size] = bytes((value,)) * n


def copy_share_rows(conn: Conn, rows: bytes | bytearray | memoryview) -> None:
    """COPY finished :data:`SHARE_ROW` rows into ``shares``; their partitions must exist."""
    with conn.cursor() as cur, cur.copy(_COPY_SHARES) as copy:
        copy.write(_PGCOPY_HEADER)
        copy.write(memoryview(rows))
        copy.write(_PGCOPY_TRAILER)


def _int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _float_array(values: Iterable[float]) -> str:
    return "{" + ",".join(map(repr, values)) + "}"  # repr round-trips exactly (inf and nan included)


def _text_array(values: Iterable[str]) -> str:
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def add_share_stats(conn: Conn, minutes: Sequence[tuple[int, int, int, int, float]]) -> None:
    """Add ``(worker_id, minute, accepted, rejected, difficulty)`` (a minute in seconds since the Unix epoch, a
    multiple of 60) to the per-minute statistics, and their sums per UTC day to the per-day ones, in one
    statement. Rows are sorted here: one lock order for every writer."""
    if not minutes:
        return
    m = sorted(minutes)
    conn.execute(
        "WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::int[], %s::float8[])"
        " AS v(w, t, a, r, d)),"
        " m AS (INSERT INTO share_stats_minute AS s (worker_id, minute, accepted, rejected, difficulty)"
        " SELECT w, to_timestamp(t), a, r, d FROM v"
        " ON CONFLICT (worker_id, minute) DO UPDATE SET accepted = s.accepted + EXCLUDED.accepted,"
        " rejected = s.rejected + EXCLUDED.rejected, difficulty = s.difficulty + EXCLUDED.difficulty)"
        " INSERT INTO share_stats_day AS s (worker_id, day, accepted, rejected, difficulty)"
        " SELECT w, (to_timestamp(t) AT TIME ZONE 'UTC')::date, sum(a), sum(r), sum(d) FROM v GROUP BY 1, 2"
        " ORDER BY 1, 2"
        " ON CONFLICT (worker_id, day) DO UPDATE SET accepted = s.accepted + EXCLUDED.accepted,"
        " rejected = s.rejected + EXCLUDED.rejected, difficulty = s.difficulty + EXCLUDED.difficulty",
        (_int_array(r[0] for r in m), _int_array(r[1] for r in m), _int_array(r[2] for r in m),
         _int_array(r[3] for r in m), _float_array(r[4] for r in m)))


def touch_workers(conn: Conn, workers: Sequence[tuple[int, int, float, str]]) -> None:
    """``(worker_id, last_seen in microseconds since the Unix epoch, best_difficulty, user_agent)``: raise
    last_seen and best_difficulty to these, and take the user agent when one is given."""
    if not workers:
        return
    rows = sorted(workers)
    conn.execute(
        "UPDATE workers w SET last_seen = greatest(w.last_seen, to_timestamp(0) + v.t * interval '1 microsecond'),"
        " best_difficulty = greatest(w.best_difficulty, v.b),"
        " user_agent = CASE WHEN v.u <> '' THEN v.u ELSE w.user_agent END"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::text[]) AS v(i, t, b, u) WHERE w.id = v.i",
        (_int_array(r[0] for r in rows), _int_array(r[1] for r in rows), _float_array(r[2] for r in rows),
         _text_array(r[3] for r in rows)))


# ----- the spool checkpoint


def read_checkpoint(conn: Conn, node_id: int) -> int:
    row = conn.execute("SELECT seq FROM spool_checkpoints WHERE node_id = %s", (node_id,)).fetchone()
    return 0 if row is None else int(row[0])


def lock_checkpoint(conn: Conn, node_id: int) -> int:
    """The node's checkpoint, row-locked until the transaction ends (so two loaders of one node cannot both
    load the same records). One round trip once the row exists."""
    lock = "SELECT seq FROM spool_checkpoints WHERE node_id = %s FOR UPDATE"
    row = conn.execute(lock, (node_id,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO spool_checkpoints (node_id, seq) VALUES (%s, 0) ON CONFLICT (node_id) DO NOTHING",
                     (node_id,))
        row = conn.execute(lock, (node_id,)).fetchone()
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
