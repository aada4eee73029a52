"""Confirmations, credits, ledger and balances against a real PostgreSQL (``pg_dsn``), with a fake chain.

The helpers here (:func:`seed_account`, :func:`seed_block`, :func:`seed_balance`, :class:`FakeChain`) are
also used by the payout tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
import pytest

from stratum_pool.coins import Coin, get_coin
from stratum_pool.rewards.confirmations import required_confirmations, track_confirmations
from stratum_pool.store import accounting
from stratum_pool.store.accounting import verify_ledger

LTC = get_coin("litecoin", "regtest")
BTC = get_coin("bitcoin", "regtest")


def fake_hash(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def coin_id(dsn: str, coin: Coin = LTC) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO coins (key, symbol, maturity) VALUES (%s, %s, %s)"
            " ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id",
            (coin.key, coin.symbol, coin.coinbase_maturity)).fetchone()
        assert row is not None
        return int(row[0])


def seed_account(dsn: str, address: str, coin: Coin = LTC, threshold: int | None = None) -> int:
    cid = coin_id(dsn, coin)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("INSERT INTO accounts (coin_id, address, payout_threshold) VALUES (%s, %s, %s)"
                           " RETURNING id", (cid, address, threshold)).fetchone()
        assert row is not None
        return int(row[0])


def seed_block(dsn: str, height: int, block_hash: str, credits: Sequence[tuple[int, int, str]],
               coin: Coin = LTC, scheme: str = "pplns", reward: int | None = None) -> int:
    """A pending block with pending credits (account id, amount, scheme); the finder is the first account."""
    cid = coin_id(dsn, coin)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO blocks (coin_id, height, hash, reward, finder_account_id, scheme, node_id, share_seq,"
            " found_at) VALUES (%s, %s, %s, %s, %s, %s, 0, %s, now()) RETURNING id",
            (cid, height, block_hash, reward if reward is not None else sum(a for _, a, _ in credits),
             credits[0][0], scheme, height)).fetchone()
        assert row is not None
        block_id = int(row[0])
        for account, amount, credit_scheme in credits:
            conn.execute("INSERT INTO credits (block_id, account_id, amount, scheme) VALUES (%s, %s, %s, %s)",
                         (block_id, account, amount, credit_scheme))
    return block_id


def seed_balance(dsn: str, account: int, amount: int) -> None:
    """A confirmed balance the way the books make one: an adjustment ledger row and the balance."""
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO ledger (account_id, kind, amount, note) VALUES (%s, 'adjustment', %s, 'test')",
                     (account, amount))
        conn.execute("INSERT INTO balances AS b (account_id, confirmed) VALUES (%s, %s) ON CONFLICT (account_id)"
                     " DO UPDATE SET confirmed = b.confirmed + EXCLUDED.confirmed", (account, amount))


def balance(dsn: str, account: int) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT confirmed FROM balances WHERE account_id = %s", (account,)).fetchone()
        return int(row[0]) if row else 0


def rows(dsn: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query.encode(), params).fetchall())


class FakeChain:
    """A main chain: height -> hash (display hex); ``tip`` the height of the last block."""

    def __init__(self, tip: int, blocks: dict[int, str] | None = None) -> None:
        self.tip = tip
        self.blocks = dict(blocks or {})

    async def getblockcount(self) -> int:
        return self.tip

    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool:
        if height > self.tip:
            return False
        return self.blocks.get(height, fake_hash(f"main-{height}")) == block_hash_display


def fixed_clock() -> datetime:
    return datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- tests -------------------------------------------------------------------------------------------------
def test_required_confirmations_is_maturity_plus_one() -> None:
    assert required_confirmations(LTC) == 101
    assert required_confirmations(BTC) == 101


async def test_pending_block_counts_confirmations_then_confirms_at_101(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    h = fake_hash("found-1000")
    block = seed_block(pg_dsn, 1000, h, [(a, 700, "pplns"), (b, 300, "pplns")])
    chain = FakeChain(1099, {1000: h})  # 100 confirmations: consensus-spendable next block, not by the wallet
    report = await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock)
    assert [o.status for o in report.blocks] == ["pending"]
    assert rows(pg_dsn, "SELECT status, confirmations FROM blocks WHERE id = %s", block) == [("pending", 100)]
    assert rows(pg_dsn, "SELECT count(*) FROM ledger") == [(0,)]
    assert balance(pg_dsn, a) == 0

    chain.tip = 1100
    report = await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock)
    assert [(o.status, o.confirmations, o.credited) for o in report.blocks] == [("confirmed", 101, 1000)]
    assert rows(pg_dsn, "SELECT status, confirmations FROM blocks WHERE id = %s", block) == [("confirmed", 101)]
    assert rows(pg_dsn, "SELECT account_id, status FROM credits ORDER BY account_id") == \
        [(a, "confirmed"), (b, "confirmed")]
    assert rows(pg_dsn, "SELECT account_id, kind, amount FROM ledger ORDER BY account_id") == \
        [(a, "credit", 700), (b, "credit", 300)]
    assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (700, 300)
    assert await verify_ledger(pg_dsn) == []

    # again: nothing more happens
    chain.tip = 1200
    report = await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock)
    assert report.blocks == []
    assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (700, 300)
    assert rows(pg_dsn, "SELECT count(*) FROM ledger") == [(2,)]


async def test_orphaned_block_voids_its_credits(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    mine = fake_hash("mine-500")
    block = seed_block(pg_dsn, 500, mine, [(a, 1234, "pplns")])
    chain = FakeChain(500, {500: fake_hash("theirs-500")})  # the chain holds another block at 500
    report = await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock)
    assert [(o.status, o.credits_changed) for o in report.blocks] == [("orphaned", 1)]
    assert rows(pg_dsn, "SELECT status FROM blocks WHERE id = %s", block) == [("orphaned",)]
    assert rows(pg_dsn, "SELECT status FROM credits") == [("void",)]
    assert rows(pg_dsn, "SELECT count(*) FROM ledger") == [(0,)]
    assert balance(pg_dsn, a) == 0
    assert await verify_ledger(pg_dsn) == []


async def test_block_above_the_tip_is_left_alone(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    block = seed_block(pg_dsn, 800, fake_hash("x"), [(a, 10, "pplns")])
    report = await track_confirmations(pg_dsn, FakeChain(799), LTC, clock=fixed_clock)
    assert [o.status for o in report.blocks] == ["pending"]
    assert rows(pg_dsn, "SELECT status, confirmations FROM blocks WHERE id = %s", block) == [("pending", 0)]
    assert rows(pg_dsn, "SELECT status FROM credits") == [("pending",)]


async def test_just_submitted_tip_block_is_pending_with_one_confirmation(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    h = fake_hash("tip")
    block = seed_block(pg_dsn, 300, h, [(a, 10, "pplns")])
    await track_confirmations(pg_dsn, FakeChain(300, {300: h}), LTC, clock=fixed_clock)
    assert rows(pg_dsn, "SELECT status, confirmations FROM blocks WHERE id = %s", block) == [("pending", 1)]


async def test_orphan_depth_waits_for_the_replacement_to_be_buried(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    block = seed_block(pg_dsn, 300, fake_hash("mine"), [(a, 10, "pplns")])
    chain = FakeChain(300, {300: fake_hash("theirs")})
    await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock, orphan_depth=3)
    assert rows(pg_dsn, "SELECT status FROM blocks WHERE id = %s", block) == [("pending",)]
    chain.tip = 302
    await track_confirmations(pg_dsn, chain, LTC, clock=fixed_clock, orphan_depth=3)
    assert rows(pg_dsn, "SELECT status FROM blocks WHERE id = %s", block) == [("orphaned",)]


async def test_solo_credits_go_to_paid_without_ledger(pg_dsn: str) -> None:
    finder, other = seed_account(pg_dsn, "solo-finder"), seed_account(pg_dsn, "pool-miner")
    h = fake_hash("solo")
    seed_block(pg_dsn, 10, h, [(finder, 5000, "solo")], scheme="solo")
    h2 = fake_hash("mixed")
    seed_block(pg_dsn, 11, h2, [(finder, 100, "solo"), (other, 900, "pplns")])
    report = await track_confirmations(pg_dsn, FakeChain(200, {10: h, 11: h2}), LTC, clock=fixed_clock)
    assert [(o.height, o.status, o.credited, o.credits_changed) for o in report.blocks] == \
        [(10, "confirmed", 0, 1), (11, "confirmed", 900, 2)]
    assert rows(pg_dsn, "SELECT account_id, status FROM credits ORDER BY id") == \
        [(finder, "paid"), (finder, "paid"), (other, "confirmed")]
    assert rows(pg_dsn, "SELECT account_id, amount FROM ledger") == [(other, 900)]
    assert balance(pg_dsn, finder) == 0
    assert balance(pg_dsn, other) == 900
    assert await verify_ledger(pg_dsn) == []


async def test_credits_of_several_blocks_add_up(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "a"), seed_account(pg_dsn, "b")
    hashes = {h: fake_hash(f"b{h}") for h in range(20, 25)}
    for h, bh in hashes.items():
        seed_block(pg_dsn, h, bh, [(a, 1000 + h, "pplns"), (b, 0, "pplns")])
    await track_confirmations(pg_dsn, FakeChain(124, hashes), LTC, clock=fixed_clock)
    # 124 - h + 1 >= 101 for h <= 24: all five
    assert balance(pg_dsn, a) == sum(1000 + h for h in hashes)
    assert balance(pg_dsn, b) == 0  # zero credits confirm without ledger rows
    assert rows(pg_dsn, "SELECT count(*) FROM credits WHERE status = 'confirmed'") == [(10,)]
    assert await verify_ledger(pg_dsn) == []


async def test_other_coins_blocks_are_not_touched(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "ltc-a")
    b = seed_account(pg_dsn, "btc-b", coin=BTC)
    h1, h2 = fake_hash("l"), fake_hash("b")
    seed_block(pg_dsn, 5, h1, [(a, 10, "pplns")])
    seed_block(pg_dsn, 5, h2, [(b, 20, "pplns")], coin=BTC)
    await track_confirmations(pg_dsn, FakeChain(500, {5: h1}), LTC, clock=fixed_clock)
    assert rows(pg_dsn, "SELECT hash, status FROM blocks ORDER BY id") == [(h1, "confirmed"), (h2, "pending")]


async def test_unknown_coin_reports_nothing(pg_dsn: str) -> None:
    report = await track_confirmations(pg_dsn, FakeChain(5), BTC, clock=fixed_clock)
    assert report.blocks == [] and report.tip is None


async def test_verify_ledger_finds_broken_books(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "a")
    h = fake_hash("v")
    seed_block(pg_dsn, 1, h, [(a, 50, "pplns")])
    await track_confirmations(pg_dsn, FakeChain(101, {1: h}), LTC, clock=fixed_clock)
    assert await verify_ledger(pg_dsn) == []
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE balances SET confirmed = confirmed + 1")
    problems = await verify_ledger(pg_dsn)
    assert len(problems) == 1 and problems[0].startswith("balance differs from the ledger sum")
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE balances SET confirmed = confirmed - 1")
        conn.execute("DELETE FROM ledger")
    problems = await verify_ledger(pg_dsn)
    assert any(p.startswith("confirmed credit without") for p in problems)


async def test_batch_create_and_fail_restore_balances(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "a"), seed_account(pg_dsn, "b")
    seed_balance(pg_dsn, a, 5000)
    seed_balance(pg_dsn, b, 7000)
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        cid = await accounting.ensure_coin_id(conn, LTC)
        payables = await accounting.payable_accounts(conn, cid, 6000)
        assert [(p.account_id, p.amount) for p in payables] == [(b, 7000)]
        payables = await accounting.payable_accounts(conn, cid, 1000)
        batch = await accounting.create_batch(conn, cid, payables, fixed_clock())
        assert batch.total == 12000 and batch.status == "created"
        assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (0, 0)
        assert await verify_ledger(pg_dsn) == []
        # accounts of an open batch are not payable again, and a second open batch is refused
        seed_balance(pg_dsn, a, 3000)
        assert await accounting.payable_accounts(conn, cid, 1000) == []
        with pytest.raises(psycopg.errors.UniqueViolation):
            await accounting.create_batch(conn, cid, [accounting.Payable(a, "a", 3000)], fixed_clock())
        assert await accounting.fail_batch(conn, batch.id, "test", fixed_clock())
        assert not await accounting.fail_batch(conn, batch.id, "twice", fixed_clock())
        assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (8000, 7000)
        assert await verify_ledger(pg_dsn) == []
        # a balance that moved since it was read refuses the batch (nothing recorded)
        with pytest.raises(accounting.BalanceChanged):
            await accounting.create_batch(conn, cid, [accounting.Payable(a, "a", 5000)], fixed_clock())
        assert rows(pg_dsn, "SELECT count(*) FROM payout_batches") == [(1,)]
        assert await verify_ledger(pg_dsn) == []
