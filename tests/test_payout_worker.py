"""The payout worker against a real PostgreSQL and a fake wallet (every failure mode on demand)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping

import psycopg
import pytest
from test_accounting import LTC, FakeChain, balance, fake_hash, rows, seed_account, seed_balance, seed_block

from stratum_pool.config import CoinSettings, DaemonSettings, VardiffSettings
from stratum_pool.daemon.rpc import RpcConnectionError, RpcError
from stratum_pool.payout.wallet import (
    BCOIN,
    CORE,
    WalletSend,
    batch_marker,
    group_core_sends,
    match_batch,
    to_rpc_amount,
    wallet_endpoint,
)
from stratum_pool.payout.worker import IN_PROGRESS, resolve_batch, run_payout
from stratum_pool.store.accounting import verify_ledger


def settings(threshold: int = 1000, batch_max: int = 200) -> CoinSettings:
    daemon = DaemonSettings("d", "http://127.0.0.1:1", "u", "p", "", 5.0)
    return CoinSettings(coin=LTC, mode="pplns", stratum_host="127.0.0.1", stratum_port=0, daemons=(daemon,),
                        vardiff=VardiffSettings(), pool_address="x", payout_threshold=threshold,
                        payout_batch_max=batch_max)


class FakeWallet:
    """Records sends like a Core wallet (exact outputs and the comment) or like bcoin (total + address)."""

    def __init__(self, kind: str = CORE, funds: int = 10**12) -> None:
        self._kind = kind
        self.funds = funds
        self.sent: list[WalletSend] = []
        self.fail_next: Exception | None = None
        self.lose_answer = False  # send, then raise a connection error (the answer is lost)
        self.delay = 0.0
        self.calls = 0

    @property
    def kind(self) -> str:
        return self._kind

    def record(self, outputs: Mapping[str, int], comment: str) -> str:
        txid = fake_hash(f"tx{len(self.sent)}{comment}")
        total = sum(outputs.values())
        if self._kind == CORE:
            self.sent.append(WalletSend(txid, int(time.time()), total, next(iter(outputs)), dict(outputs), comment))
        else:
            self.sent.append(WalletSend(txid, int(time.time()), total, sorted(outputs)[-1], None))
        self.funds -= total
        return txid

    async def send_many(self, outputs: Mapping[str, int], comment: str) -> str:
        self.calls += 1
        for amount in outputs.values():
            to_rpc_amount(amount)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if sum(outputs.values()) > self.funds:
            raise RpcError(-6, "Insufficient funds", "fake")
        txid = self.record(outputs, comment)
        if self.lose_answer:
            self.lose_answer = False
            raise RpcConnectionError("fake", "timed out after 30s", timed_out=True)
        return txid

    async def sends_since(self, since_epoch: float) -> list[WalletSend]:
        return [s for s in self.sent if s.time >= since_epoch]


def snapshot(dsn: str) -> list[list[tuple[object, ...]]]:
    return [rows(dsn, f"SELECT * FROM {t} ORDER BY 1") for t in
            ("coins", "balances", "ledger", "payout_batches", "payouts", "blocks", "credits")]


def backdate(dsn: str, seconds: int = 3600) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE payout_batches SET created_at = created_at - make_interval(secs => %s)", (seconds,))


async def test_pays_every_balance_over_threshold_once(pg_dsn: str) -> None:
    a, b, c = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b"), seed_account(pg_dsn, "addr-c")
    d = seed_account(pg_dsn, "addr-d", threshold=50_000)
    seed_balance(pg_dsn, a, 123_456_789)
    seed_balance(pg_dsn, b, 1000)
    seed_balance(pg_dsn, c, 999)  # under the pool threshold
    seed_balance(pg_dsn, d, 40_000)  # under its own threshold
    wallet = FakeWallet()
    lines: list[str] = []
    report = await run_payout(pg_dsn, settings(), wallet, log=lines.append)
    assert [(o.address, o.amount) for o, _ in report.paid] == [("addr-a", 123_456_789), ("addr-b", 1000)]
    assert len(wallet.sent) == 1 and wallet.sent[0].outputs == {"addr-a": 123_456_789, "addr-b": 1000}
    assert report.paid[0][1] == wallet.sent[0].txid
    assert rows(pg_dsn, "SELECT status, txid, total FROM payout_batches") == \
        [("sent", wallet.sent[0].txid, 123_457_789)]
    assert (balance(pg_dsn, a), balance(pg_dsn, b), balance(pg_dsn, c), balance(pg_dsn, d)) == (0, 0, 999, 40_000)
    assert await verify_ledger(pg_dsn) == []
    assert any("sent" in line for line in lines)
    assert "addr-a 123456789" in "\n".join(report.lines())

    again = await run_payout(pg_dsn, settings(), wallet, log=lines.append)
    assert again.paid == [] and len(wallet.sent) == 1
    assert "nothing to pay" in again.lines()


async def test_batches_are_split_at_batch_max(pg_dsn: str) -> None:
    accounts = [seed_account(pg_dsn, f"addr-{i}") for i in range(5)]
    for i, acc in enumerate(accounts):
        seed_balance(pg_dsn, acc, 10_000 + i)
    wallet = FakeWallet()
    report = await run_payout(pg_dsn, settings(batch_max=2), wallet)
    assert [len(b.outputs) for b in report.batches] == [2, 2, 1]
    assert report.paid_total == sum(10_000 + i for i in range(5))
    assert len(wallet.sent) == 3
    assert rows(pg_dsn, "SELECT count(*) FROM payout_batches WHERE status = 'sent'") == [(3,)]
    assert await verify_ledger(pg_dsn) == []


async def test_dry_run_changes_nothing(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    seed_balance(pg_dsn, a, 50_000)
    before = snapshot(pg_dsn)
    wallet = FakeWallet()
    report = await run_payout(pg_dsn, settings(), wallet, dry_run=True)
    assert [(b.status, b.total) for b in report.batches] == [("would-pay", 50_000)]
    assert wallet.calls == 0 and snapshot(pg_dsn) == before
    assert "would pay: 1 outputs, total 50000" in "\n".join(report.lines())


async def test_dry_run_without_coin_row_changes_nothing(pg_dsn: str) -> None:
    before = snapshot(pg_dsn)
    report = await run_payout(pg_dsn, settings(), FakeWallet(), dry_run=True)
    assert report.batches == [] and snapshot(pg_dsn) == before


async def test_refusal_fails_and_reverts(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    seed_balance(pg_dsn, a, 60_000)
    seed_balance(pg_dsn, b, 70_000)
    wallet = FakeWallet(funds=1000)
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [(x.status, x.error.split(":")[0]) for x in report.batches] == [("failed", "wallet refused")]
    assert "-6" in report.batches[0].error
    assert report.paid == [] and [p.status for p in report.problems] == ["failed"]
    assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (60_000, 70_000)
    assert rows(pg_dsn, "SELECT kind, amount FROM ledger WHERE batch_id IS NOT NULL ORDER BY id") == \
        [("payout", -60_000), ("payout", -70_000), ("payout_reverted", 60_000), ("payout_reverted", 70_000)]
    assert await verify_ledger(pg_dsn) == []

    wallet.funds = 10**9  # funded: the next run pays
    report = await run_payout(pg_dsn, settings(), wallet)
    assert report.paid_total == 130_000 and len(wallet.sent) == 1
    assert await verify_ledger(pg_dsn) == []


async def test_lost_answer_leaves_batch_created_then_reconciled_as_sent(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    seed_balance(pg_dsn, a, 80_000)
    wallet = FakeWallet()
    wallet.lose_answer = True
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [b.status for b in report.batches] == ["created"] and report.paid == []
    assert rows(pg_dsn, "SELECT status FROM payout_batches") == [("created",)]
    assert balance(pg_dsn, a) == 0
    seed_balance(pg_dsn, a, 5000)  # a new credit meanwhile

    report = await run_payout(pg_dsn, settings(), wallet)
    assert [(r.status, r.txid) for r in report.reconciled] == [("sent", wallet.sent[0].txid)]
    assert [(o.amount, txid) for o, txid in report.paid] == [(5000, wallet.sent[1].txid)]
    assert len(wallet.sent) == 2 and wallet.sent[0].outputs == {"addr-a": 80_000}
    assert await verify_ledger(pg_dsn) == []


async def test_batch_never_sent_is_reverted_then_paid_once(pg_dsn: str) -> None:
    a = seed_account(pg_dsn, "addr-a")
    seed_balance(pg_dsn, a, 90_000)
    wallet = FakeWallet()
    wallet.fail_next = RpcConnectionError("fake", "connection refused")  # the call never reached the wallet
    await run_payout(pg_dsn, settings(), wallet)
    assert rows(pg_dsn, "SELECT status FROM payout_batches") == [("created",)]

    # too young to tell: stays open, nothing paid
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [r.status for r in report.reconciled] == ["created"] and report.batches == []
    assert wallet.sent == []

    backdate(pg_dsn)
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [r.status for r in report.reconciled] == ["failed"]
    assert [(o.amount, txid) for o, txid in report.paid] == [(90_000, wallet.sent[0].txid)]
    assert len(wallet.sent) == 1
    assert rows(pg_dsn, "SELECT status FROM payout_batches ORDER BY id") == [("failed",), ("sent",)]
    assert await verify_ledger(pg_dsn) == []
    assert (await run_payout(pg_dsn, settings(), wallet)).paid == []


@pytest.mark.parametrize("kind", [CORE, BCOIN])
async def test_undecidable_batch_becomes_unknown_and_is_not_paid_again(pg_dsn: str, kind: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    seed_balance(pg_dsn, a, 11_000)
    wallet = FakeWallet(kind)
    wallet.fail_next = RpcConnectionError("fake", "timed out", timed_out=True)
    await run_payout(pg_dsn, settings(), wallet)
    backdate(pg_dsn)
    # someone else sent from the wallet meanwhile; for bcoin that makes "not sent" unprovable
    marker = "" if kind == CORE else "x"
    wallet.record({"elsewhere": 11_000}, marker)
    seed_balance(pg_dsn, a, 2000)
    seed_balance(pg_dsn, b, 3000)
    report = await run_payout(pg_dsn, settings(), wallet)
    if kind == CORE:  # a Core send without our marker is provably someone else's
        assert [r.status for r in report.reconciled] == ["failed"]
        assert sorted(o.amount for o, _ in report.paid) == [3000, 13_000]
        return
    assert [r.status for r in report.reconciled] == ["unknown"]
    assert [(o.address, o.amount) for o, _ in report.paid] == [("addr-b", 3000)]  # a waits for the operator
    assert [p.status for p in report.problems] == ["unknown"]
    assert (await run_payout(pg_dsn, settings(), wallet)).paid == []
    assert await verify_ledger(pg_dsn) == []
    batch_id = int(rows(pg_dsn, "SELECT id FROM payout_batches WHERE status = 'unknown'")[0][0])  # type: ignore[call-overload]
    assert await resolve_batch(pg_dsn, batch_id, failed=True)
    assert balance(pg_dsn, a) == 13_000
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [(o.address, o.amount) for o, _ in report.paid] == [("addr-a", 13_000)]
    assert await verify_ledger(pg_dsn) == []


async def test_bcoin_style_reconciliation_finds_the_send(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    seed_balance(pg_dsn, a, 11_000)
    seed_balance(pg_dsn, b, 12_000)
    wallet = FakeWallet(BCOIN)
    wallet.lose_answer = True
    await run_payout(pg_dsn, settings(), wallet)
    report = await run_payout(pg_dsn, settings(), wallet)
    assert [(r.status, r.txid) for r in report.reconciled] == [("sent", wallet.sent[0].txid)]
    assert report.paid == [] and len(wallet.sent) == 1
    assert await verify_ledger(pg_dsn) == []


async def test_two_runs_at_once_pay_once(pg_dsn: str) -> None:
    accounts = [seed_account(pg_dsn, f"addr-{i}") for i in range(3)]
    for acc in accounts:
        seed_balance(pg_dsn, acc, 100_000)
    wallet = FakeWallet()
    wallet.delay = 0.5
    first, second = await asyncio.gather(run_payout(pg_dsn, settings(), wallet),
                                         run_payout(pg_dsn, settings(), wallet))
    reports = sorted([first, second], key=lambda r: r.skipped)
    assert reports[0].paid_total == 300_000 and reports[1].skipped == IN_PROGRESS
    assert reports[1].lines() == [f"payout {LTC.key}: {IN_PROGRESS}"]
    assert len(wallet.sent) == 1
    assert await verify_ledger(pg_dsn) == []


async def test_run_confirms_blocks_first_then_pays(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    h = fake_hash("blk")
    seed_block(pg_dsn, 10, h, [(a, 600_000, "pplns"), (b, 400_000, "pplns")])
    wallet = FakeWallet()
    chain = FakeChain(109, {10: h})
    report = await run_payout(pg_dsn, settings(), wallet, chain=chain)
    assert report.confirmations is not None and report.confirmations.pending
    assert report.paid == []
    chain.tip = 110
    report = await run_payout(pg_dsn, settings(), wallet, chain=chain)
    assert report.confirmations is not None and len(report.confirmations.confirmed) == 1
    assert sorted((o.address, o.amount) for o, _ in report.paid) == [("addr-a", 600_000), ("addr-b", 400_000)]
    assert await verify_ledger(pg_dsn) == []


async def test_unsendable_amount_is_skipped(pg_dsn: str) -> None:
    a, b = seed_account(pg_dsn, "addr-a"), seed_account(pg_dsn, "addr-b")
    seed_balance(pg_dsn, a, 9_123_456_789_012_345_678 // 1000)  # too many digits for a JSON float
    seed_balance(pg_dsn, b, 5000)
    report = await run_payout(pg_dsn, settings(), FakeWallet())
    assert [(o.address, o.amount) for o, _ in report.paid] == [("addr-b", 5000)]
    assert any("not paid" in n for n in report.notes)


# --- pure helpers ------------------------------------------------------------------------------------------
def test_to_rpc_amount_is_exact() -> None:
    assert str(to_rpc_amount(1)) == "1E-8" or str(to_rpc_amount(1)) == "0.00000001"
    assert to_rpc_amount(123_456_789) == to_rpc_amount(123_456_789)
    for sats in (1, 99, 100_000_000, 2_100_000_000_000_000 // 1000, 123_456_789_012):
        assert repr(float(to_rpc_amount(sats))) in (f"{sats / 1e8!r}",)
    with pytest.raises(ValueError):
        to_rpc_amount(0)


def test_core_sends_grouped_by_txid() -> None:
    entries = [
        {"category": "receive", "txid": "aa", "address": "me", "amount": "1", "time": 100},
        {"category": "send", "txid": "bb", "address": "x", "amount": -0.5, "vout": 0, "time": 200,
         "comment": "m"},
        {"category": "send", "txid": "BB", "address": "y", "amount": -0.25, "vout": 1, "time": 200,
         "comment": "m"},
        {"category": "send", "txid": "bb", "address": "y", "amount": -0.25, "vout": 1, "time": 200,
         "comment": "m"},
        {"category": "send", "txid": "cc", "address": "z", "amount": -1, "vout": 0, "time": 50},
    ]
    sends = group_core_sends(entries, 100)
    assert [(s.txid, dict(s.outputs or {}), s.total, s.comment) for s in sends] == \
        [("bb", {"x": 50_000_000, "y": 25_000_000}, 75_000_000, "m")]


def test_match_batch_rules() -> None:
    outs = {"x": 10, "y": 20}
    core = WalletSend("t1", 0, 30, "x", {"x": 10, "y": 20}, "m1")
    assert match_batch(outs, "m1", [core], set()).txid == "t1"
    assert match_batch(outs, "m1", [core], {"t1"}) == match_batch(outs, "m1", [], set())
    assert match_batch(outs, "m2", [core], set()).txid is None  # another batch's marker
    assert match_batch(outs, "m2", [core], set()).blockers == ()
    odd = WalletSend("t2", 0, 30, "x", {"x": 30}, "m1")
    assert match_batch(outs, "m1", [odd], set()).blockers
    bc = WalletSend("t3", 0, 30, "y", None)
    assert match_batch(outs, "m", [bc], set()).txid == "t3"
    other = WalletSend("t4", 0, 31, "y", None)
    assert match_batch(outs, "m", [other], set()) .txid is None
    assert match_batch(outs, "m", [other], set()).blockers


def test_batch_marker_is_unique_per_batch() -> None:
    assert batch_marker("c", 1, 5.0) != batch_marker("c", 1, 6.0) != batch_marker("c", 2, 6.0)


def test_wallet_endpoint_defaults_to_first_daemon() -> None:
    s = settings()
    assert wallet_endpoint(s).url == "http://127.0.0.1:1"
    w = DaemonSettings("w", "http://127.0.0.1:2", "bcoin", "key", "", 7.0)
    e = wallet_endpoint(dataclasses.replace(s, wallet=w))
    assert (e.url, e.user, e.password, e.timeout) == ("http://127.0.0.1:2", "bcoin", "key", 7.0)
