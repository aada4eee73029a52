"""End to end against real regtest daemons: a Bitaxe-like miner mines blocks through the pool.

Each case runs on bcoin (Bitcoin, sha256d; before and after segwit activation), on litecoind (Litecoin,
scrypt; before and after MWEB activation) and on bcash (Bitcoin Cash: cashaddr, no segwit, 100-byte minimum).
The daemon, the pool, the sockets and the hashing are all real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import read_tx
from stratum_pool.chain.encoding import read_varint
from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import Coin, get_coin
from stratum_pool.config import parse_settings
from stratum_pool.pool import CoinPool

pytestmark = pytest.mark.integration

# Below regtest's network difficulty (~4.66e-10 for sha256d) so a share need not be a block.
SHARE_DIFFICULTY = 1e-12


@dataclass
class Chain:
    """What the tests need of a regtest daemon, whichever implementation it is."""

    name: str
    coin: Coin
    daemon: dict[str, Any]
    rpc: Callable[..., Any]
    new_address: Callable[[], str]
    generate_elsewhere: Callable[[], str]  # a block not found through the pool; returns its hash


def _bcoin_chain(name: str, node: Any) -> Chain:
    def generate() -> str:
        return str(node.generate(1, node.mining_address)[0])

    return Chain(name, get_coin("bitcoin", "regtest"),
                 {"url": node.url, "user": node.rpc_user, "password": node.rpc_password},
                 node.rpc, node.new_address, generate)


def _bcash_chain(name: str, node: Any) -> Chain:
    def generate() -> str:
        return str(node.generate(1)[0])

    return Chain(name, get_coin("bitcoincash", "regtest"),
                 {"url": node.url, "user": node.rpc_user, "password": node.rpc_password},
                 node.rpc, node.new_address, generate)


def _litecoin_chain(name: str, pair: Any) -> Chain:
    def generate() -> str:
        block = str(pair.generate(1, on="b")[0])
        pair.sync(block)
        return block

    a = pair.a
    ep = a.endpoint()
    return Chain(name, get_coin("litecoin", "regtest"),
                 {"url": ep.url, "user": ep.user, "password": ep.password},
                 a.rpc, pair.new_address, generate)


@pytest.fixture(params=["bcoin", "bcoin-segwit", "litecoind", "litecoind-mweb", "bcash"])
def chain(request: pytest.FixtureRequest) -> Chain:
    name = request.param
    if name == "bcash":
        return _bcash_chain(name, request.getfixturevalue("bcash_node"))
    if name == "bcoin":
        return _bcoin_chain(name, request.getfixturevalue("bcoin_node"))
    if name == "bcoin-segwit":
        return _bcoin_chain(name, request.getfixturevalue("bcoin_segwit_node"))
    if name == "litecoind":
        return _litecoin_chain(name, request.getfixturevalue("litecoin_pair"))
    return _litecoin_chain(name, request.getfixturevalue("litecoin_pair_mweb"))


def pool_settings(chain: Chain) -> Any:
    doc = {"coins": [{
        "coin": chain.coin.name, "network": chain.coin.network, "mode": "solo",
        "stratum_host": "127.0.0.1", "stratum_port": 0, "poll_interval_seconds": 0.5,
        "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
        "daemons": [chain.daemon],
        # No pool tag on Bitcoin Cash: the coinbase is then below its 100-byte minimum and must be padded
        **({"pool_tag": ""} if chain.coin.min_tx_size else {}),
    }]}
    return parse_settings(doc, address_check=address_to_script).coins[0]


@pytest.fixture
async def pool(chain: Chain) -> AsyncIterator[CoinPool]:
    coin_pool = CoinPool(pool_settings(chain))
    await coin_pool.start(ready_timeout=30)
    try:
        yield coin_pool
    finally:
        await coin_pool.stop()


def network_difficulty(miner: Miner) -> float:
    """The current job's network target as a share difficulty."""
    from stratum_pool.chain.target import bits_to_target

    assert miner.job is not None
    return miner.coin.diff1_target / bits_to_target(miner.job.nbits)


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def coinbase_tx(raw_block: bytes) -> tuple[bytes, bytes]:
    """The coinbase of a block as serialized there and in its txid form."""
    # Only the coinbase is read: the rest may hold Litecoin MWEB transactions this parser does not take.
    _, start = read_varint(raw_block, 80)
    tx = read_tx(raw_block, start)[0]
    return tx.raw, tx.raw_nowitness


def coinbase_scripts(raw_block: bytes) -> list[bytes]:
    """The scriptPubKeys of a block's coinbase outputs."""
    coinbase = coinbase_tx(raw_block)[1]
    offset = 4
    n_in, offset = read_varint(coinbase, offset)
    assert n_in == 1
    offset += 36
    script_len, offset = read_varint(coinbase, offset)
    offset += script_len + 4
    n_out, offset = read_varint(coinbase, offset)
    scripts = []
    for _ in range(n_out):
        offset += 8
        length, offset = read_varint(coinbase, offset)
        scripts.append(coinbase[offset:offset + length])
        offset += length
    return scripts


async def new_job(miner: Miner, old_prevhash: bytes) -> None:
    await wait_for(lambda: miner.job is not None and miner.job.prevhash != old_prevhash)


async def test_bitaxe_like_miner_mines_three_blocks_paying_its_address(chain: Chain, pool: CoinPool) -> None:
    address = chain.new_address()
    async with Miner("127.0.0.1", pool.port, chain.coin, address, "bitaxe", order="esp-miner",
                     suggest_difficulty=1000) as miner:
        assert miner.version_mask == chain.coin.version_rolling_mask  # negotiated from ffffffff
        for _ in range(3):
            assert miner.job is not None
            old = miner.job.prevhash
            share = miner.find(min_difficulty=network_difficulty(miner))
            reply = await miner.submit_share(share)
            assert reply["result"] is True, reply
            await new_job(miner, old)
    await wait_for(lambda: len(pool.stats.blocks) >= 3)
    blocks = pool.stats.blocks
    assert [b.accepted for b in blocks] == [True, True, True], blocks
    script = address_to_script(address, chain.coin)
    if chain.coin.cashaddr_prefix:
        assert address.startswith(chain.coin.cashaddr_prefix + ":")  # the node's wallet prints bchreg: cashaddr
    for found in blocks:
        assert found.in_best_chain
        assert chain.rpc("getblockhash", found.height) == found.block_hash
        raw = bytes.fromhex(chain.rpc("getblock", found.block_hash, False))
        assert sha256d(raw[:80])[::-1].hex() == found.block_hash
        assert script in coinbase_scripts(raw)
        if not chain.coin.segwit:
            as_serialized, txid_form = coinbase_tx(raw)
            assert as_serialized == txid_form  # no witness
            assert len(txid_form) >= chain.coin.min_tx_size
    assert chain.rpc("getbestblockhash") == blocks[-1].block_hash


async def test_stale_duplicate_and_low_difficulty_shares_get_21_22_23(chain: Chain, pool: CoinPool) -> None:
    address = chain.new_address()
    async with Miner("127.0.0.1", pool.port, chain.coin, address, "rig", order="cgminer") as miner:
        net = network_difficulty(miner)
        # duplicate: a share that is not a block, sent twice
        share = miner.find(min_difficulty=SHARE_DIFFICULTY, max_difficulty=net)
        first = await miner.submit_share(share)
        assert first["result"] is True, first
        again = await miner.submit_share(share)
        assert again["error"][0] == 22, again

        # stale: a share of a job from before a new block
        held = miner.find(min_difficulty=SHARE_DIFFICULTY, max_difficulty=net)
        assert miner.job is not None
        old = miner.job.prevhash
        chain.generate_elsewhere()
        await new_job(miner, old)
        stale = await miner.submit_share(held)
        assert stale["error"][0] == 21, stale

        # low difficulty: the miner is now asked for difficulty 1000
        await miner.request("mining.suggest_difficulty", [1000])
        # a job sent after the change: shares of older jobs are still judged by what those jobs asked for
        await wait_for(lambda: miner.job is not None and miner.job.difficulty == 1000)
        weak = miner.find(min_difficulty=SHARE_DIFFICULTY, max_difficulty=net)
        low = await miner.submit_share(weak)
        assert low["error"][0] == 23, low
    assert pool.stats.shares_rejected["duplicate"] == 1
    assert pool.stats.shares_rejected["stale"] == 1
    assert pool.stats.shares_rejected["low-difficulty"] == 1


async def test_a_coin_defined_in_the_config_serves_work(bcoin_node: Any) -> None:
    """An operator's own coin (no code): Bitcoin regtest's parameters under another name, served by bcoin;
    a miner gets its work and mines a block through it."""
    doc = {
        "coin_definitions": {"hobbycoin": {
            "title": "Hobbycoin", "algorithm": "sha256d", "block_time_seconds": 600, "stratum_port": 3390,
            "p2pkh_prefix": 0x6F, "p2sh_prefix": 0xC4, "bech32_hrp": "bcrt", "segwit": True, "gbt_rules": ["segwit"],
            "regtest": {"symbol": "rHOB", "rpc_port": 48332},
        }},
        "coins": [{
            "coin": "hobbycoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
            "stratum_port": 0, "poll_interval_seconds": 0.5,
            "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
            "daemons": [bcoin_node.daemon_config()],
        }],
    }
    settings = parse_settings(doc, address_check=address_to_script)
    coin = settings.coins[0].coin
    assert coin.key == "hobbycoin-regtest"
    coin_pool = CoinPool(settings.coins[0])
    await coin_pool.start(ready_timeout=30)
    try:
        address = bcoin_node.new_address("legacy")
        async with Miner("127.0.0.1", coin_pool.port, coin, address, "bitaxe") as miner:
            assert miner.job is not None
            share = miner.find(min_difficulty=network_difficulty(miner))
            reply = await miner.submit_share(share)
            assert reply["result"] is True, reply
        await wait_for(lambda: len(coin_pool.stats.blocks) >= 1)
        found = coin_pool.stats.blocks[0]
        assert found.accepted and found.in_best_chain
        raw = bytes.fromhex(bcoin_node.rpc("getblock", found.block_hash, False))
        assert address_to_script(address, coin) in coinbase_scripts(raw)
    finally:
        await coin_pool.stop()
