"""End to end in PPLNS mode: three miners mine through the pool, the block matures, the payout worker pays
each miner exactly his credit (checked in the paying transaction on the chain, to the satoshi), and a second
run pays nothing. Runs on litecoind (Litecoin Core wallet), on bcoin (bcoin's wallet) and on bcash (Bitcoin Cash:
bcash's wallet, cashaddr addresses).

Everything is real: the daemons, the pool and its sockets, the share spool, the loader, PostgreSQL, the
confirmation tracking and the wallet RPC.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import psycopg
import pytest
from miner import Miner
from test_webhooks import Receiver

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import parse_block
from stratum_pool.chain.encoding import read_varint
from stratum_pool.chain.target import bits_to_target
from stratum_pool.cli import notify_payouts
from stratum_pool.coins import Coin, get_coin
from stratum_pool.config import parse_settings
from stratum_pool.daemon.rpc import DaemonClient, DaemonEndpoint
from stratum_pool.payout.wallet import wallet_client
from stratum_pool.payout.worker import run_payout
from stratum_pool.pool import Pool
from stratum_pool.store.accounting import verify_ledger
from stratum_pool.webhooks import NotifySettings

pytestmark = pytest.mark.integration

SHARE_DIFFICULTY = 1e-12  # far below regtest's network difficulty: these shares are not blocks
SHARES = {"alice": 3, "bob": 2, "carol": 1}  # non-block shares per miner before the block
FEE_PPM = 10_000  # 1 %


@dataclass
class Node:
    coin: Coin
    daemon: dict[str, Any]
    wallet: dict[str, Any]
    rpc: Callable[..., Any]
    wallet_address: Callable[[], str]  # an address the pool's wallet owns
    outside_address: Callable[[], str]  # an address the pool's wallet does not own
    generate: Callable[[int], None]  # blocks mined elsewhere, seen by the pool's daemon
    confirm: Callable[[], None]  # a block mined on the wallet's own node (so its mempool is in it)


def litecoind_node(pair: Any) -> Node:
    ep = pair.a.endpoint()
    creds = {"url": ep.url, "user": ep.user, "password": ep.password}

    def generate(n: int) -> None:
        pair.generate(n, on="b")

    def confirm() -> None:
        pair.generate(1, on="a")

    return Node(get_coin("litecoin", "regtest"), creds, creds, pair.a.rpc, pair.a.new_address,
                pair.b.new_address, generate, confirm)


def bcoin_node(node: Any) -> Node:
    def generate(n: int) -> None:
        node.generate(n, node.mining_address)

    outside = iter(range(1, 10_000))

    def outside_address() -> str:
        from stratum_pool.chain.address import encode_segwit

        return encode_segwit("bcrt", 0, next(outside).to_bytes(20, "big"))

    return Node(get_coin("bitcoin", "regtest"), node.daemon_config(),
                {"name": "bcoin-wallet", "url": node.wallet_url, "user": node.rpc_user, "password": node.rpc_password},
                node.rpc, node.new_address, outside_address, generate, lambda: generate(1))


def bcash_node(node: Any) -> Node:
    from stratum_pool.chain import cashaddr

    def generate(n: int) -> None:
        node.generate(n, node.mining_address)

    outside = iter(range(1, 10_000))

    def outside_address() -> str:
        return cashaddr.encode("bchreg", cashaddr.TYPE_P2PKH, next(outside).to_bytes(20, "big"))

    return Node(get_coin("bitcoincash", "regtest"), node.daemon_config(),
                {"name": "bcash-wallet", "url": node.wallet_url, "user": node.rpc_user, "password": node.rpc_password},
                node.rpc, node.new_address, outside_address, generate, lambda: generate(1))


@pytest.fixture(params=["litecoind", "bcoin", "bcash"])
def node(request: pytest.FixtureRequest) -> Node:
    if request.param == "litecoind":
        return litecoind_node(request.getfixturevalue("litecoin_pair"))
    if request.param == "bcash":
        bcash = request.getfixturevalue("bcash_node")
        bcash.generate(101)  # the wallet holds mature coins for the fees (as bcoin_segwit_node's does)
        bcash.wait_for_wallet()
        return bcash_node(bcash)
    return bcoin_node(request.getfixturevalue("bcoin_segwit_node"))


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def expected_credits(reward: int, weights: dict[str, int]) -> tuple[int, dict[str, Fraction]]:
    fee = reward * FEE_PPM // 1_000_000
    rest = reward - fee
    total = sum(weights.values())
    return fee, {name: Fraction(rest * w, total) for name, w in weights.items()}


def tx_outputs(raw_block: bytes, txid: str) -> list[tuple[int, bytes]]:
    """(value, scriptPubKey) of transaction ``txid`` in a block."""
    for tx in parse_block(raw_block).txs:
        if tx.txid[::-1].hex() == txid:
            data = tx.raw_nowitness
            offset = 4
            n_in, offset = read_varint(data, offset)
            for _ in range(n_in):
                offset += 36
                length, offset = read_varint(data, offset)
                offset += length + 4
            n_out, offset = read_varint(data, offset)
            outputs = []
            for _ in range(n_out):
                value = int.from_bytes(data[offset:offset + 8], "little")
                length, offset = read_varint(data, offset + 8)
                outputs.append((value, data[offset:offset + length]))
                offset += length
            return outputs
    raise AssertionError(f"transaction {txid} is not in the block")


async def test_pplns_miners_are_paid_exactly_once(node: Node, pg_dsn: str, tmp_path: Path) -> None:
    coin = node.coin
    pool_address, fee_address = node.wallet_address(), node.wallet_address()
    doc = {
        "pool": {"node_id": 7},
        "database": {"dsn": pg_dsn, "spool_dir": str(tmp_path / "spool")},
        "api": {"enabled": False},
        "coins": [{
            "coin": coin.name, "network": coin.network, "mode": "pplns", "stratum_host": "127.0.0.1",
            "stratum_port": 0, "pool_address": pool_address, "fee_address": fee_address,
            "fee_percent": FEE_PPM / 10_000, "payout_threshold": 1000, "poll_interval_seconds": 0.5,
            "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
            "daemons": [node.daemon], "wallet": node.wallet,
        }],
    }
    settings = parse_settings(doc, address_check=address_to_script)
    cs = settings.coins[0]
    miners_addr = {name: node.outside_address() for name in SHARES}
    pool = Pool(settings)
    await pool.start()
    try:
        port = pool.coins[0].port
        miners = {name: await Miner("127.0.0.1", port, coin, miners_addr[name], name, order="cgminer").start()
                  for name in SHARES}
        try:
            for name, count in SHARES.items():
                m = miners[name]
                assert m.job is not None
                network = coin.diff1_target / bits_to_target(m.job.nbits)
                for _ in range(count):
                    reply = await m.submit_share(m.find(min_difficulty=SHARE_DIFFICULTY, max_difficulty=network))
                    assert reply["result"] is True, reply
            # alice finds the block: her share counts in the window like any other
            alice = miners["alice"]
            assert alice.job is not None
            network = coin.diff1_target / bits_to_target(alice.job.nbits)
            reply = await alice.submit_share(alice.find(min_difficulty=network))
            assert reply["result"] is True, reply
            await wait_for(lambda: len(pool.coins[0].stats.blocks) == 1)
        finally:
            for m in miners.values():
                await m.close()
        found = pool.coins[0].stats.blocks[0]
        assert found.accepted and found.in_best_chain
        await wait_for(lambda: bool(query(pg_dsn, "SELECT 1 FROM blocks WHERE hash = %s", found.block_hash)))
    finally:
        await pool.stop()

    # the coinbase paid the pool's wallet; the credits split that reward by the window
    (reward, status), = query(pg_dsn, "SELECT reward, status FROM blocks WHERE hash = %s", found.block_hash)
    assert status == "pending"
    raw = bytes.fromhex(node.rpc("getblock", found.block_hash, False))
    assert sum(v for v, s in tx_outputs(raw, parse_block(raw).txs[0].txid[::-1].hex())
               if s == address_to_script(pool_address, coin)) == reward
    weights = {name: count + (1 if name == "alice" else 0) for name, count in SHARES.items()}
    fee, exact = expected_credits(reward, weights)
    credits = dict(query(pg_dsn, "SELECT a.address, c.amount FROM credits c JOIN accounts a ON a.id = c.account_id"))
    assert credits[fee_address] == fee
    for name, share in exact.items():
        assert abs(credits[miners_addr[name]] - share) < 1, (name, credits[miners_addr[name]], share)
    assert sum(credits.values()) == reward

    # mature the block (101 confirmations), then pay
    node.generate(100)
    endpoints = [DaemonEndpoint(name=d.name, url=d.url, user=d.user, password=d.password) for d in cs.daemons]
    chain = DaemonClient(endpoints, coin)
    wallet = wallet_client(cs)
    try:
        first = await run_payout(pg_dsn, cs, wallet, chain=chain)
        assert not first.problems, first.lines()
        paid = {out.address: (out.amount, txid) for out, txid in first.paid}
        for address in miners_addr.values():
            assert paid[address][0] == credits[address]
        txids = {txid for _, txid in paid.values()}
        assert len(txids) == 1
        txid = txids.pop()

        second = await run_payout(pg_dsn, cs, wallet, chain=chain)
        assert second.paid == [] and not second.problems, second.lines()

        # payout_sent to a [[notify]] receiver (a real HTTP server): one message per address paid, none for the
        # run that paid nothing
        receiver = await Receiver().start()
        try:
            notify = (NotifySettings(url=receiver.url("/payouts"), events=("payout_sent",)),)
            for report in (first, second):
                await notify_payouts(replace(settings, notify=notify), coin.key, coin.symbol, report.batches)
        finally:
            await receiver.stop()
        told = [json.loads(g.body) for g in receiver.got]
        assert {m["address"]: (m["amount"], m["txid"]) for m in told} == paid
        assert len(told) == len(paid) and all(m["event"] == "payout_sent" for m in told)
    finally:
        await wallet.close()
        await chain.close()
    assert await verify_ledger(pg_dsn) == []
    balances = dict(query(pg_dsn, "SELECT a.address, b.confirmed FROM balances b"
                                  " JOIN accounts a ON a.id = b.account_id"))
    assert all(balances.get(address, 0) == 0 for address in miners_addr.values())

    # on the chain, to the satoshi: the payout transaction pays each miner his credit
    await wait_for(lambda: txid in node.rpc("getrawmempool"))  # bcoin's sendmany answers before relaying
    node.confirm()
    tip = node.rpc("getbestblockhash")
    outputs = tx_outputs(bytes.fromhex(node.rpc("getblock", tip, False)), txid)
    for address in miners_addr.values():
        script = address_to_script(address, coin)
        assert sum(v for v, s in outputs if s == script) == credits[address]
