"""Every SQL statement of block confirmation, credits, the ledger, balances and payout batches.

Rules kept here (and checked by :func:`verify_ledger`):

* ``balances.confirmed`` of an account always equals the sum of its ``ledger`` rows; each change of a
  balance is made in the same transaction as the ledger row that explains it.
* A block is confirmed (its non-solo credits go to the ledger and the balances) or orphaned (its credits
  void) in ONE transaction, and only from status ``pending``: running twice changes nothing more.
* A payout batch is recorded (status ``created``, its payouts, the ``payout`` ledger rows and the lowered
  balances) in one transaction BEFORE the wallet is asked to pay; it ends ``sent`` (txid), ``failed``
  (amounts put back with ``payout_reverted`` ledger rows, same transaction) or ``unknown`` (an operator
  must look; its accounts are not paid again meanwhile).

Every function takes an open :class:`psycopg.AsyncConnection`; those that must be atomic open their own
transaction block on it (``conn.transaction()``), which nests as a savepoint when one is already open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg

from stratum_pool.coins import Coin

#: ``pg_try_advisory_lock(PAYOUT_LOCK_BASE + coin id)`` is held by a payout run for its whole length.
PAYOUT_LOCK_BASE = 0x5374_7261_7475_6E00

AsyncConn = psycopg.AsyncConnection[Any]


# --- coins -------------------------------------------------------------------------------------------------
async def get_coin_id(conn: AsyncConn, coin: Coin) -> int | None:
    """The ``coins.id`` of ``coin`` (by key), or None when no row exists yet."""
    cur = await conn.execute("SELECT id FROM coins WHERE key = %s", (coin.key,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def ensure_coin_id(conn: AsyncConn, coin: Coin) -> int:
    """The ``coins.id`` of ``coin``, inserting the row when missing."""
    cur = await conn.execute(
        "INSERT INTO coins (key, symbol, maturity) VALUES (%s, %s, %s)"
        " ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id",
        (coin.key, coin.symbol, coin.coinbase_maturity))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


# --- blocks and credits ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingBlock:
    id: int
    height: int
    hash: str
    confirmations: int


@dataclass(frozen=True, slots=True)
class ConfirmedBlock:
    """What confirming one block did: ``credited`` (account id, amount) went to the ledger and balances;
    ``solo_paid`` solo credits were marked paid (the coinbase paid their finder)."""

    block_id: int
    credited: tuple[tuple[int, int], ...]
    solo_paid: int

    @property
    def credited_total(self) -> int:
        return sum(amount for _, amount in self.credited)


async def pending_blocks(conn: AsyncConn, coin_id: int) -> list[PendingBlock]:
    cur = await conn.execute(
        "SELECT id, height, hash, confirmations FROM blocks WHERE coin_id = %s AND status = 'pending'"
        " ORDER BY height, id", (coin_id,))
    return [PendingBlock(int(r[0]), int(r[1]), str(r[2]), int(r[3]))
            for r in await cur.fetchall()]


async def set_block_confirmations(conn: AsyncConn, block_id: int, confirmations: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE blocks SET confirmations = %s, updated_at = %s WHERE id = %s AND status = 'pending'",
        (confirmations, now, block_id))


async def orphan_block(conn: AsyncConn, block_id: int, now: datetime) -> int | None:
    """Block ``orphaned`` and its pending credits ``void``, in one transaction. Returns the number of credits
    voided, or None when the block was no longer pending (nothing changed)."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE blocks SET status = 'orphaned', confirmations = 0, updated_at = %s"
            " WHERE id = %s AND status = 'pending' RETURNING id", (now, block_id))
        if await cur.fetchone() is None:
            return None
        cur = await conn.execute(
            "UPDATE credits SET status = 'void' WHERE block_id = %s AND status = 'pending'", (block_id,))
        return cur.rowcount


async def confirm_block(conn: AsyncConn, block_id: int, confirmations: int, now: datetime) -> ConfirmedBlock | None:
    """Block ``confirmed``; in the same transaction its solo credits ``paid`` (no ledger row: the coinbase
    paid the finder) and its other credits ``confirmed`` with a ``credit`` ledger row each and the balances
    raised. None when the block was no longer pending (nothing changed)."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE blocks SET status = 'confirmed', confirmations = %s, updated_at = %s"
            " WHERE id = %s AND status = 'pending' RETURNING height, hash", (confirmations, now, block_id))
        block = await cur.fetchone()
        if block is None:
            return None
        note = f"block {block[0]} {block[1]}"
        cur = await conn.execute(
            "UPDATE credits SET status = 'paid' WHERE block_id = %s AND status = 'pending' AND scheme = 'solo'",
            (block_id,))
        solo_paid = cur.rowcount
        cur = await conn.execute(
            "UPDATE credits SET status = 'confirmed' WHERE block_id = %s AND status = 'pending'"
            " RETURNING id, account_id, amount", (block_id,))
        rows = [(int(r[0]), int(r[1]), int(r[2])) for r in await cur.fetchall()]
        rows = [r for r in rows if r[2] > 0]
        rows.sort(key=lambda r: r[1])  # lock balance rows in account order: no deadlock between writers
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO ledger (account_id, time, kind, amount, credit_id, note)"
                " VALUES (%s, %s, 'credit', %s, %s, %s)",
                [(account, now, amount, credit, note) for credit, account, amount in rows])
            await c.executemany(
                "INSERT INTO balances AS b (account_id, confirmed, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (account_id) DO UPDATE SET confirmed = b.confirmed + EXCLUDED.confirmed,"
                " updated_at = EXCLUDED.updated_at",
                [(account, amount, now) for _, account, amount in rows])
        return ConfirmedBlock(block_id, tuple((account, amount) for _, account, amount in rows), solo_paid)


# --- payout batches ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Payable:
    """An account to pay: its whole confirmed balance."""

    account_id: int
    address: str
    amount: int


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    status: str
    txid: str | None
    total: int
    created_at: datetime
    outputs: tuple[Payable, ...]

    @property
    def by_address(self) -> dict[str, int]:
        return {p.address: p.amount for p in self.outputs}


async def try_payout_lock(conn: AsyncConn, coin_id: int) -> bool:
    """Take the payout lock of the coin on ``conn`` (a session-level advisory lock: keep ``conn`` open and
    outside any transaction for the whole run). False when another session holds it."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (PAYOUT_LOCK_BASE + coin_id,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def release_payout_lock(conn: AsyncConn, coin_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock(%s)", (PAYOUT_LOCK_BASE + coin_id,))


async def _batch_outputs(conn: AsyncConn, batch_id: int) -> tuple[Payable, ...]:
    cur = await conn.execute(
        "SELECT account_id, address, amount FROM payouts WHERE batch_id = %s ORDER BY account_id", (batch_id,))
    return tuple(Payable(int(r[0]), str(r[1]), int(r[2]))
                 for r in await cur.fetchall())


async def batches(conn: AsyncConn, coin_id: int, statuses: Sequence[str]) -> list[Batch]:
    """The coin's batches in one of ``statuses``, oldest first, with their outputs."""
    cur = await conn.execute(
        "SELECT id, status, txid, total, created_at FROM payout_batches"
        " WHERE coin_id = %s AND status = ANY(%s) ORDER BY id", (coin_id, list(statuses)))
    out = []
    for r in await cur.fetchall():
        batch_id = int(r[0])
        out.append(Batch(batch_id, str(r[1]), None if r[2] is None else str(r[2]),
                         int(r[3]), r[4], await _batch_outputs(conn, batch_id)))
    return out


async def get_batch(conn: AsyncConn, batch_id: int) -> Batch | None:
    cur = await conn.execute(
        "SELECT id, status, txid, total, created_at FROM payout_batches WHERE id = %s", (batch_id,))
    r = await cur.fetchone()
    if r is None:
        return None
    return Batch(int(r[0]), str(r[1]), None if r[2] is None else str(r[2]),
                 int(r[3]), r[4], await _batch_outputs(conn, batch_id))


async def known_txids(conn: AsyncConn, coin_id: int) -> set[str]:
    """Every txid a batch of the coin is already recorded with."""
    cur = await conn.execute(
        "SELECT txid FROM payout_batches WHERE coin_id = %s AND txid IS NOT NULL", (coin_id,))
    return {str(r[0]).lower() for r in await cur.fetchall()}


async def payable_accounts(conn: AsyncConn, coin_id: int, default_threshold: int) -> list[Payable]:
    """Accounts whose confirmed balance reaches their threshold (the account's, else ``default_threshold``),
    except accounts in a batch that is ``created`` or ``unknown`` (their fate is not known yet)."""
    cur = await conn.execute(
        "SELECT a.id, a.address, b.confirmed FROM balances b JOIN accounts a ON a.id = b.account_id"
        " WHERE a.coin_id = %(coin)s AND b.confirmed > 0"
        " AND b.confirmed >= coalesce(a.payout_threshold, %(threshold)s)"
        " AND NOT EXISTS (SELECT 1 FROM payouts p JOIN payout_batches pb ON pb.id = p.batch_id"
        "                 WHERE p.account_id = a.id AND pb.status IN ('created', 'unknown'))"
        " ORDER BY a.id", {"coin": coin_id, "threshold": default_threshold})
    return [Payable(int(r[0]), str(r[1]), int(r[2])) for r in await cur.fetchall()]


class BalanceChanged(Exception):
    """An account's balance moved between choosing it and recording the batch (try again)."""


async def create_batch(conn: AsyncConn, coin_id: int, payables: Sequence[Payable], now: datetime) -> Batch:
    """Record a batch (status ``created``) paying ``payables``, its ``payout`` ledger rows and the lowered
    balances, in one transaction. Each amount must still be the account's whole confirmed balance (checked
    under row locks), else :class:`BalanceChanged` and nothing is recorded. The unique index
    ``payout_batches_one_open`` refuses a second open batch of a coin (``psycopg.errors.UniqueViolation``)."""
    if not payables:
        raise ValueError("a batch needs at least one output")
    ordered = sorted(payables, key=lambda p: p.account_id)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT account_id, confirmed FROM balances WHERE account_id = ANY(%s) ORDER BY account_id FOR UPDATE",
            ([p.account_id for p in ordered],))
        current = {int(r[0]): int(r[1]) for r in await cur.fetchall()}
        for p in ordered:
            if current.get(p.account_id) != p.amount or p.amount <= 0:
                raise BalanceChanged(f"account {p.account_id}: balance {current.get(p.account_id)}, batch {p.amount}")
        cur = await conn.execute(
            "INSERT INTO payout_batches (coin_id, status, total, created_at) VALUES (%s, 'created', %s, %s)"
            " RETURNING id, created_at", (coin_id, sum(p.amount for p in ordered), now))
        row = await cur.fetchone()
        assert row is not None
        batch_id = int(row[0])
        note = f"payout batch {batch_id}"
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO payouts (batch_id, account_id, address, amount) VALUES (%s, %s, %s, %s)",
                [(batch_id, p.account_id, p.address, p.amount) for p in ordered])
            await c.executemany(
                "INSERT INTO ledger (account_id, time, kind, amount, batch_id, note)"
                " VALUES (%s, %s, 'payout', %s, %s, %s)",
                [(p.account_id, now, -p.amount, batch_id, note) for p in ordered])
            await c.executemany(
                "UPDATE balances SET confirmed = confirmed - %s, updated_at = %s WHERE account_id = %s",
                [(p.amount, now, p.account_id) for p in ordered])
        return Batch(batch_id, "created", None, sum(p.amount for p in ordered), row[1],
                     tuple(ordered))


async def mark_batch_sent(conn: AsyncConn, batch_id: int, txid: str, now: datetime, note: str = "") -> bool:
    """``created``/``unknown`` -> ``sent`` with ``txid``. False when the batch was in neither status."""
    cur = await conn.execute(
        "UPDATE payout_batches SET status = 'sent', txid = %s, finished_at = %s, error = %s"
        " WHERE id = %s AND status IN ('created', 'unknown') RETURNING id", (txid, now, note, batch_id))
    return await cur.fetchone() is not None


async def mark_batch_unknown(conn: AsyncConn, batch_id: int, error: str, now: datetime) -> bool:
    """``created`` -> ``unknown`` (an operator must look; its accounts are not paid meanwhile)."""
    cur = await conn.execute(
        "UPDATE payout_batches SET status = 'unknown', error = %s, finished_at = %s"
        " WHERE id = %s AND status = 'created' RETURNING id", (error, now, batch_id))
    return await cur.fetchone() is not None


async def fail_batch(conn: AsyncConn, batch_id: int, error: str, now: datetime) -> bool:
    """``created``/``unknown`` -> ``failed`` and every amount back to its balance with a ``payout_reverted``
    ledger row, in one transaction. False (nothing changed) when the batch was in neither status."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE payout_batches SET status = 'failed', error = %s, finished_at = %s"
            " WHERE id = %s AND status IN ('created', 'unknown') RETURNING id", (error, now, batch_id))
        if await cur.fetchone() is None:
            return False
        await conn.execute(
            "INSERT INTO ledger (account_id, time, kind, amount, batch_id, note)"
            " SELECT account_id, %s, 'payout_reverted', amount, batch_id, %s FROM payouts WHERE batch_id = %s"
            " ORDER BY account_id", (now, f"payout batch {batch_id} failed", batch_id))
        await conn.execute(
            "UPDATE balances b SET confirmed = b.confirmed + p.amount, updated_at = %s"
            " FROM payouts p WHERE p.batch_id = %s AND b.account_id = p.account_id", (now, batch_id))
        return True


# --- checks ------------------------------------------------------------------------------------------------
_CHECKS: Mapping[str, LiteralString] = {
    "balance differs from the ledger sum":
        "SELECT a.id, coalesce(b.confirmed, 0), coalesce(l.total, 0) FROM accounts a"
        " LEFT JOIN balances b ON b.account_id = a.id"
        " LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger GROUP BY account_id) l"
        "   ON l.account_id = a.id"
        " WHERE coalesce(b.confirmed, 0) <> coalesce(l.total, 0)",
    "confirmed credit without exactly one matching ledger credit":
        "SELECT c.id, c.amount, count(l.id) FROM credits c"
        " LEFT JOIN ledger l ON l.credit_id = c.id AND l.kind = 'credit'"
        " WHERE c.status = 'confirmed' AND c.amount > 0"
        " GROUP BY c.id, c.amount HAVING count(l.id) <> 1 OR coalesce(sum(l.amount), 0) <> c.amount",
    "ledger credit of a credit that is not confirmed":
        "SELECT l.id, l.credit_id, c.status FROM ledger l JOIN credits c ON c.id = l.credit_id"
        " WHERE c.status <> 'confirmed' OR l.account_id <> c.account_id",
    "credit status does not fit its block":
        "SELECT c.id, c.status, b.status FROM credits c JOIN blocks b ON b.id = c.block_id"
        " WHERE (b.status = 'pending' AND c.status <> 'pending')"
        "    OR (b.status = 'orphaned' AND c.status <> 'void')"
        "    OR (b.status = 'confirmed' AND c.status NOT IN ('confirmed', 'paid'))",
    "payout without exactly one matching payout ledger row":
        "SELECT p.id, p.amount, count(l.id) FROM payouts p"
        " LEFT JOIN ledger l ON l.batch_id = p.batch_id AND l.account_id = p.account_id AND l.kind = 'payout'"
        " GROUP BY p.id, p.amount HAVING count(l.id) <> 1 OR coalesce(sum(l.amount), 0) <> -p.amount",
    "reverted payouts do not fit the batch status":
        "SELECT p.id, pb.status, count(l.id) FROM payouts p JOIN payout_batches pb ON pb.id = p.batch_id"
        " LEFT JOIN ledger l ON l.batch_id = p.batch_id AND l.account_id = p.account_id"
        "   AND l.kind = 'payout_reverted'"
        " GROUP BY p.id, p.amount, pb.status"
        " HAVING count(l.id) <> (CASE WHEN pb.status = 'failed' THEN 1 ELSE 0 END)"
        "   OR coalesce(sum(l.amount), 0) <> (CASE WHEN pb.status = 'failed' THEN p.amount ELSE 0 END)",
    "batch total differs from its payouts":
        "SELECT pb.id, pb.total, coalesce(sum(p.amount), 0) FROM payout_batches pb"
        " LEFT JOIN payouts p ON p.batch_id = pb.id GROUP BY pb.id, pb.total"
        " HAVING pb.total <> coalesce(sum(p.amount), 0)",
    "sent batch without txid":
        "SELECT id, status, txid FROM payout_batches WHERE status = 'sent' AND txid IS NULL",
}


async def ledger_problems(conn: AsyncConn) -> list[str]:
    """Every broken accounting rule, one line each (empty when all is well)."""
    problems = []
    for what, query in _CHECKS.items():
        cur = await conn.execute(query)
        for row in await cur.fetchall():
            problems.append(f"{what}: {tuple(row)}")
    return problems


async def verify_ledger(dsn: str) -> list[str]:
    """:func:`ledger_problems` on a connection of its own."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await ledger_problems(conn)


async def set_payout_threshold(conn: AsyncConn, coin_id: int, address: str, threshold: int | None) -> tuple[int, bool]:
    """Set the account's own payout threshold in base units (None: back to the pool's default), creating the
    account when the address never mined yet. Returns (its id, whether it was created now)."""
    if threshold is not None and threshold <= 0:
        raise ValueError(f"threshold {threshold}: must be a positive number of base units")
    cur = await conn.execute(
        "INSERT INTO accounts (coin_id, address, payout_threshold) VALUES (%s, %s, %s)"
        " ON CONFLICT (coin_id, address) DO UPDATE SET payout_threshold = EXCLUDED.payout_threshold"
        " RETURNING id, xmax = 0", (coin_id, address, threshold))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


async def account_threshold(conn: AsyncConn, coin_id: int, address: str) -> tuple[bool, int | None]:
    """(the account exists, its own payout threshold or None for the pool's default)."""
    cur = await conn.execute("SELECT payout_threshold FROM accounts WHERE coin_id = %s AND address = %s",
                             (coin_id, address))
    row = await cur.fetchone()
    return (False, None) if row is None else (True, None if row[0] is None else int(row[0]))
