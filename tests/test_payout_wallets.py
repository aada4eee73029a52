"""The payout worker against real wallets: litecoind 0.21 (Core wallet RPC), bcoin 1.0.2 and bcash 1.1.1 (wallet port).

Each test has a fresh database (``pg_dsn``); the daemons are module-scoped and shared, so the wallet
already holds earlier tests' payouts - which is what reconciliation has to cope with in production too.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from daemon_fixtures import NotifyingRegtest
from test_accounting import balance, rows, seed_account, seed_balance

from stratum_pool.chain.address import encode_segwit
from stratum_pool.coins import Coin, get_coin
from stratum_pool.config import CoinSettings, DaemonSettings, VardiffSettings
from stratum_pool.daemon.rpc import DaemonClient, DaemonEndpoint, to_satoshis
from stratum_pool.devnet.bcash import BcashNode
from stratum_pool.devnet.bcoin import BcoinNode
from stratum_pool.payout.wallet import BCOIN, CORE, RpcWallet, batch_marker, wallet_client, wallet_endpoint
from stratum_pool.payout.worker import run_payout
from stratum_pool.rewards.confirmations import utc_now
from stratum_pool.store import accounting
from stratum_pool.store.accounting import verify_ledger

pytestmark = pytest.mark.integration

LTC = get_coin("litecoin", "regtest")
BTC = get_coin("bitcoin", "regtest")


def coin_settings(coin: Coin, wallet: DaemonSettings, threshold: int = 100_000) -> CoinSettings:
    return CoinSettings(coin=coin, mode="pplns", stratum_host="127.0.0.1", stratum_port=0, daemons=(wallet,),
                        vardiff=VardiffSettings(), pool_address="x", payout_threshold=threshold,
                        payout_batch_max=200, wallet=wallet)


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def backdate(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE payout_batches SET created_at = created_at - interval '1 hour'"
                     " WHERE status = 'created'")


async def record_batch(dsn: str, coin: Coin, accounts: list[tuple[int, str, int]]) -> accounting.Batch:
    """A batch recorded exactly as the worker records one before calling sendmany."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cid = await accounting.ensure_coin_id(conn, coin)
        return await accounting.create_batch(conn, cid, [accounting.Payable(*a) for a in accounts], utc_now())


# --- litecoind ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def funded_pair(litecoin_pair: NotifyingRegtest) -> NotifyingRegtest:
    """Node A's wallet with mature coinbases (mined on A, matured by 101 blocks from B)."""
    # mined through the pair, which waits for B to have them: B mining on a tip without them would fork them
    # away (seen once in CI: A's balance was one coinbase short of its three)
    litecoin_pair.generate(3)
    litecoin_pair.generate(101, on="b")
    ltc_settle(litecoin_pair)
    assert Decimal(litecoin_pair.a.rpc("getbalance", wallet="test")) >= 100
    return litecoin_pair


def ltc_wallet_settings(pair: NotifyingRegtest) -> DaemonSettings:
    a = pair.a
    return DaemonSettings("ltc-a", a.url, a.rpc_user, a.rpc_password, "", 30.0)


@pytest.fixture
async def ltc_wallet(funded_pair: NotifyingRegtest) -> AsyncIterator[DaemonClient]:
    client = wallet_client(coin_settings(LTC, ltc_wallet_settings(funded_pair)))
    try:
        yield client
    finally:
        await client.close()


def ltc_settle(pair: NotifyingRegtest) -> None:
    """Wait until both wallets have seen every block (Core's wallet follows validation asynchronously)."""
    for node in pair.nodes:
        node.rpc("syncwithvalidationinterfacequeue")


def ltc_received(pair: NotifyingRegtest, address: str) -> int:
    ltc_settle(pair)
    return int(to_satoshis(pair.b.rpc("getreceivedbyaddress", address, 1, wallet="test")))


def ltc_mine(pair: NotifyingRegtest, txids: list[str]) -> None:
    wait_for(lambda: all(t in pair.a.rpc("getrawmempool") for t in txids), "txs in A's mempool")
    pair.generate(1)


async def test_litecoind_pays_exact_amounts_once(pg_dsn: str, funded_pair: NotifyingRegtest,
                                                 ltc_wallet: DaemonClient) -> None:
    pair = funded_pair
    amounts = [123_456_789, 50_000_000, 777_777]
    addresses = [pair.b.new_address(kind) for kind in ("bech32", "legacy", "p2sh-segwit")]
    accounts = [seed_account(pg_dsn, addr) for addr in addresses]
    for acc, amount in zip(accounts, amounts, strict=True):
        seed_balance(pg_dsn, acc, amount)
    settings = coin_settings(LTC, ltc_wallet_settings(pair))
    assert await RpcWallet(ltc_wallet).detect() == CORE

    report = await run_payout(pg_dsn, settings, ltc_wallet)
    assert sorted((o.address, o.amount) for o, _ in report.paid) == sorted(zip(addresses, amounts, strict=True))
    txid = report.paid[0][1]
    ltc_mine(pair, [txid])
    assert [ltc_received(pair, a) for a in addresses] == amounts
    assert rows(pg_dsn, "SELECT status, txid FROM payout_batches") == [("sent", txid)]
    assert await verify_ledger(pg_dsn) == []

    again = await run_payout(pg_dsn, settings, ltc_wallet)
    assert again.paid == [] and again.reconciled == []
    pair.generate(1)
    assert [ltc_received(pair, a) for a in addresses] == amounts


async def test_litecoind_crash_after_sendmany_is_reconciled_as_sent(pg_dsn: str, funded_pair: NotifyingRegtest,
                                                                    ltc_wallet: DaemonClient) -> None:
    pair = funded_pair
    addresses = [pair.b.new_address() for _ in range(2)]
    accounts = [seed_account(pg_dsn, a) for a in addresses]
    for acc in accounts:
        seed_balance(pg_dsn, acc, 2_000_000)
    batch = await record_batch(pg_dsn, LTC, [(acc, a, 2_000_000) for acc, a in zip(accounts, addresses, strict=True)])
    # the worker's sendmany happened, then the process died before recording the txid
    txid = await RpcWallet(ltc_wallet).send_many(batch.by_address,
                                                 batch_marker(LTC.key, batch.id, batch.created_at.timestamp()))
    report = await run_payout(pg_dsn, coin_settings(LTC, ltc_wallet_settings(pair)), ltc_wallet)
    assert [(r.status, r.txid) for r in report.reconciled] == [("sent", txid)]
    assert report.paid == []
    ltc_mine(pair, [txid])
    assert [ltc_received(pair, a) for a in addresses] == [2_000_000, 2_000_000]
    assert await verify_ledger(pg_dsn) == []


async def test_litecoind_batch_never_sent_is_reverted_then_paid_once(pg_dsn: str, funded_pair: NotifyingRegtest,
                                                                     ltc_wallet: DaemonClient) -> None:
    pair = funded_pair
    address = pair.b.new_address()
    acc = seed_account(pg_dsn, address)
    seed_balance(pg_dsn, acc, 3_333_333)
    await record_batch(pg_dsn, LTC, [(acc, address, 3_333_333)])
    backdate(pg_dsn)  # long enough ago that no sendmany can still be under way
    report = await run_payout(pg_dsn, coin_settings(LTC, ltc_wallet_settings(pair)), ltc_wallet)
    assert [r.status for r in report.reconciled] == ["failed"]
    assert [(o.amount, o.address) for o, _ in report.paid] == [(3_333_333, address)]
    ltc_mine(pair, [report.paid[0][1]])
    assert ltc_received(pair, address) == 3_333_333
    assert (await run_payout(pg_dsn, coin_settings(LTC, ltc_wallet_settings(pair)), ltc_wallet)).paid == []
    pair.generate(1)
    assert ltc_received(pair, address) == 3_333_333
    assert await verify_ledger(pg_dsn) == []


async def test_litecoind_refusals_fail_and_revert(pg_dsn: str, funded_pair: NotifyingRegtest,
                                                  ltc_wallet: DaemonClient) -> None:
    pair = funded_pair
    rich = seed_account(pg_dsn, pair.b.new_address())
    seed_balance(pg_dsn, rich, 10**8 * 10**6)  # a million LTC: more than the wallet has
    settings = coin_settings(LTC, ltc_wallet_settings(pair))
    report = await run_payout(pg_dsn, settings, ltc_wallet)
    assert [b.status for b in report.batches] == ["failed"] and "-6" in report.batches[0].error
    assert balance(pg_dsn, rich) == 10**14
    assert await verify_ledger(pg_dsn) == []

    bad = seed_account(pg_dsn, "not-an-address", threshold=10**15)
    seed_balance(pg_dsn, bad, 10**15)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE accounts SET payout_threshold = 10^15 WHERE id = %s", (rich,))
        conn.execute("UPDATE accounts SET payout_threshold = NULL WHERE id = %s", (bad,))
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE balances SET confirmed = 1000000, updated_at = now() WHERE account_id = %s", (bad,))
        conn.execute("INSERT INTO ledger (account_id, kind, amount) VALUES (%s, 'adjustment', %s)",
                     (bad, 1_000_000 - 10**15))
    report = await run_payout(pg_dsn, settings, ltc_wallet)
    assert [b.status for b in report.batches] == ["failed"] and "-5" in report.batches[0].error
    assert balance(pg_dsn, bad) == 1_000_000
    assert await verify_ledger(pg_dsn) == []


# --- bcoin -------------------------------------------------------------------------------------------------
def foreign_address() -> str:
    """A P2WPKH regtest address nobody owns (so the bcoin wallet lists the output as sent)."""
    return str(encode_segwit("bcrt", 0, os.urandom(20)))


def bcoin_wallet_settings(node: BcoinNode) -> DaemonSettings:
    return DaemonSettings("bcoin-wallet", node.wallet_url, node.rpc_user, node.rpc_password, "", 30.0)


@pytest.fixture
async def bcoin_wallet(bcoin_segwit_node: BcoinNode) -> AsyncIterator[DaemonClient]:
    client = wallet_client(coin_settings(BTC, bcoin_wallet_settings(bcoin_segwit_node)))
    try:
        yield client
    finally:
        await client.close()


def bcoin_outputs(node: BcoinNode, txid: str) -> dict[str, int]:
    """The outputs of a mempool transaction (address -> base units), from the node RPC."""
    tx = wait_for(lambda: node.rpc("getrawtransaction", txid, 1), f"{txid} in bcoin's mempool")
    out: dict[str, int] = {}
    for vout in tx["vout"]:
        spk = vout["scriptPubKey"]
        addrs = spk.get("addresses") or ([spk["address"]] if spk.get("address") else [])
        for a in addrs:
            out[str(a)] = out.get(str(a), 0) + to_satoshis(vout["value"])
    return out


def bcoin_mine(node: BcoinNode, txid: str) -> None:
    wait_for(lambda: txid in node.rpc("getrawmempool"), f"{txid} in bcoin's mempool")
    node.generate(1)
    block = node.rpc("getblock", node.rpc("getbestblockhash"))
    assert txid in block["tx"]
    node.wait_for_wallet()


async def test_bcoin_batch_never_sent_is_reverted_then_paid_once(pg_dsn: str, bcoin_segwit_node: BcoinNode,
                                                                 bcoin_wallet: DaemonClient) -> None:
    # First in the module on purpose: bcoin keeps no comment, so an unexplained send in the wallet since
    # the batch makes "never sent" unprovable (see the next tests' unknown case).
    node = bcoin_segwit_node
    address = foreign_address()
    acc = seed_account(pg_dsn, address, coin=BTC)
    seed_balance(pg_dsn, acc, 4_444_444)
    await record_batch(pg_dsn, BTC, [(acc, address, 4_444_444)])
    backdate(pg_dsn)
    report = await run_payout(pg_dsn, coin_settings(BTC, bcoin_wallet_settings(node)), bcoin_wallet)
    assert [r.status for r in report.reconciled] == ["failed"]
    assert [(o.address, o.amount) for o, _ in report.paid] == [(address, 4_444_444)]
    txid = report.paid[0][1]
    assert bcoin_outputs(node, txid)[address] == 4_444_444
    bcoin_mine(node, txid)
    assert await verify_ledger(pg_dsn) == []


async def test_bcoin_pays_exact_amounts_once(pg_dsn: str, bcoin_segwit_node: BcoinNode,
                                             bcoin_wallet: DaemonClient) -> None:
    node = bcoin_segwit_node
    amounts = [123_456_789, 50_000_000, 777_777]
    addresses = [foreign_address() for _ in amounts]
    for addr, amount in zip(addresses, amounts, strict=True):
        seed_balance(pg_dsn, seed_account(pg_dsn, addr, coin=BTC), amount)
    settings = coin_settings(BTC, bcoin_wallet_settings(node))
    assert await RpcWallet(bcoin_wallet).detect() == BCOIN
    report = await run_payout(pg_dsn, settings, bcoin_wallet)
    assert sorted((o.address, o.amount) for o, _ in report.paid) == sorted(zip(addresses, amounts, strict=True))
    txid = report.paid[0][1]
    outputs = bcoin_outputs(node, txid)
    assert {a: outputs[a] for a in addresses} == dict(zip(addresses, amounts, strict=True))
    bcoin_mine(node, txid)
    again = await run_payout(pg_dsn, settings, bcoin_wallet)
    assert again.paid == [] and again.reconciled == []
    assert await verify_ledger(pg_dsn) == []


async def test_bcoin_crash_after_sendmany_is_reconciled_as_sent(pg_dsn: str, bcoin_segwit_node: BcoinNode,
                                                                bcoin_wallet: DaemonClient) -> None:
    node = bcoin_segwit_node
    addresses = [foreign_address() for _ in range(2)]
    accounts = [seed_account(pg_dsn, a, coin=BTC) for a in addresses]
    for acc in accounts:
        seed_balance(pg_dsn, acc, 2_500_000)
    batch = await record_batch(pg_dsn, BTC, [(acc, a, 2_500_000) for acc, a in zip(accounts, addresses, strict=True)])
    txid = await RpcWallet(bcoin_wallet).send_many(batch.by_address,
                                                   batch_marker(BTC.key, batch.id, batch.created_at.timestamp()))
    report = await run_payout(pg_dsn, coin_settings(BTC, bcoin_wallet_settings(node)), bcoin_wallet)
    assert [(r.status, r.txid) for r in report.reconciled] == [("sent", txid)]
    assert report.paid == []
    bcoin_mine(node, txid)
    assert await verify_ledger(pg_dsn) == []


async def test_bcoin_unexplained_send_makes_an_open_batch_unknown(pg_dsn: str, bcoin_segwit_node: BcoinNode,
                                                                  bcoin_wallet: DaemonClient) -> None:
    node = bcoin_segwit_node
    address, other = foreign_address(), foreign_address()
    acc = seed_account(pg_dsn, address, coin=BTC)
    seed_balance(pg_dsn, acc, 1_500_000)
    await record_batch(pg_dsn, BTC, [(acc, address, 1_500_000)])
    txid = node.wallet_rpc("sendmany", "", {other: Decimal("0.01")})  # an operator's send, say
    backdate(pg_dsn)
    report = await run_payout(pg_dsn, coin_settings(BTC, bcoin_wallet_settings(node)), bcoin_wallet)
    assert [r.status for r in report.reconciled] == ["unknown"] and report.paid == []
    assert rows(pg_dsn, "SELECT status FROM payout_batches") == [("unknown",)]
    bcoin_mine(node, txid)
    assert await verify_ledger(pg_dsn) == []


async def test_bcoin_refusals_fail_and_revert(pg_dsn: str, bcoin_segwit_node: BcoinNode,
                                              bcoin_wallet: DaemonClient) -> None:
    node = bcoin_segwit_node
    settings = coin_settings(BTC, bcoin_wallet_settings(node), threshold=1)
    rich = seed_account(pg_dsn, foreign_address(), coin=BTC)
    seed_balance(pg_dsn, rich, 10**8 * 10**6)
    report = await run_payout(pg_dsn, settings, bcoin_wallet)
    assert [b.status for b in report.batches] == ["failed"] and "-6" in report.batches[0].error
    assert balance(pg_dsn, rich) == 10**14
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE accounts SET payout_threshold = 1000000000000000 WHERE id = %s", (rich,))
    dust = seed_account(pg_dsn, foreign_address(), coin=BTC)
    seed_balance(pg_dsn, dust, 100)
    report = await run_payout(pg_dsn, settings, bcoin_wallet)
    assert [b.status for b in report.batches] == ["failed"] and "dust" in report.batches[0].error.lower()
    assert balance(pg_dsn, dust) == 100
    assert await verify_ledger(pg_dsn) == []


def test_wallet_endpoint_for_bcoin_is_the_wallet_port(bcoin_segwit_node: BcoinNode) -> None:
    s = coin_settings(BTC, bcoin_wallet_settings(bcoin_segwit_node))
    ep: DaemonEndpoint = wallet_endpoint(s)
    assert ep.url == bcoin_segwit_node.wallet_url


# --- bcash (Bitcoin Cash) ----------------------------------------------------------------------------------
BCH = get_coin("bitcoincash", "regtest")


def foreign_cashaddr() -> str:
    """A bchreg: P2PKH address nobody owns."""
    from stratum_pool.chain import cashaddr

    return cashaddr.encode("bchreg", cashaddr.TYPE_P2PKH, os.urandom(20))


@pytest.fixture(scope="module")
def funded_bcash(bcash_node: BcashNode) -> BcashNode:
    bcash_node.generate(103)  # three mature coinbases in the wallet
    bcash_node.wait_for_wallet()
    return bcash_node


@pytest.fixture
async def bcash_wallet(funded_bcash: BcashNode) -> AsyncIterator[DaemonClient]:
    client = wallet_client(coin_settings(BCH, bcoin_wallet_settings(funded_bcash)))
    try:
        yield client
    finally:
        await client.close()


async def test_bcash_pays_exact_amounts_once(pg_dsn: str, funded_bcash: BcashNode, bcash_wallet: DaemonClient) -> None:
    node = funded_bcash
    amounts = [123_456_789, 50_000_000, 777_777]
    addresses = [foreign_cashaddr() for _ in amounts]
    for addr, amount in zip(addresses, amounts, strict=True):
        seed_balance(pg_dsn, seed_account(pg_dsn, addr, coin=BCH), amount)
    settings = coin_settings(BCH, bcoin_wallet_settings(node))
    assert await RpcWallet(bcash_wallet).detect() == BCOIN  # bcash's wallet is bcoin's
    report = await run_payout(pg_dsn, settings, bcash_wallet)
    assert sorted((o.address, o.amount) for o, _ in report.paid) == sorted(zip(addresses, amounts, strict=True))
    txid = report.paid[0][1]
    assert txid in node.rpc("getrawmempool")  # the launcher's send waits for the mempool
    outputs = bcoin_outputs(node, txid)
    assert {a: outputs[a] for a in addresses} == dict(zip(addresses, amounts, strict=True))
    bcoin_mine(node, txid)
    again = await run_payout(pg_dsn, settings, bcash_wallet)
    assert again.paid == [] and again.reconciled == []
    assert await verify_ledger(pg_dsn) == []


async def test_bcash_crash_after_sendmany_is_reconciled_as_sent(pg_dsn: str, funded_bcash: BcashNode,
                                                                bcash_wallet: DaemonClient) -> None:
    node = funded_bcash
    addresses = [foreign_cashaddr() for _ in range(2)]
    accounts = [seed_account(pg_dsn, a, coin=BCH) for a in addresses]
    for acc in accounts:
        seed_balance(pg_dsn, acc, 2_500_000)
    batch = await record_batch(pg_dsn, BCH, [(acc, a, 2_500_000) for acc, a in zip(accounts, addresses, strict=True)])
    txid = await RpcWallet(bcash_wallet).send_many(batch.by_address,
                                                   batch_marker(BCH.key, batch.id, batch.created_at.timestamp()))
    report = await run_payout(pg_dsn, coin_settings(BCH, bcoin_wallet_settings(node)), bcash_wallet)
    assert [(r.status, r.txid) for r in report.reconciled] == [("sent", txid)]
    assert report.paid == []
    bcoin_mine(node, txid)
    assert await verify_ledger(pg_dsn) == []
