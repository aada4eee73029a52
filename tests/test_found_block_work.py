"""Found block -> clean work: once the daemon has taken a found block, the finder gets a clean job on the new tip
without waiting for the best-chain check or the record (a real bcoin regtest node, a real miner, real sockets).

The block submitter's daemon is the real node behind a wrapper that holds ``getbestblockhash`` until the test
lets it go: the hold only delays the check, every answer is the node's own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.daemon.rpc import SubmitResult
from stratum_pool.pool import Pool

BTC = get_coin("bitcoin", "regtest")


class HeldCheck:
    """The coin's real daemon client, with ``getbestblockhash`` held until ``release``."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.asked = asyncio.Event()
        self.released = asyncio.Event()
        self.best: list[str] = []

    async def submitblock(self, block_hex: str) -> SubmitResult:
        result: SubmitResult = await self.daemon.submitblock(block_hex)
        return result

    async def getbestblockhash(self) -> str:
        self.asked.set()
        await self.released.wait()
        best: str = await self.daemon.getbestblockhash()
        self.best.append(best)
        return best

    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool:
        in_main: bool = await self.daemon.is_in_main_chain(height, block_hash_display)
        return in_main


def settings(node: Any, spool: Path) -> Any:
    # no other new-block source may bring the new work first: no long poll, a best-block poll that never comes
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
                      "stratum_port": 0, "poll_interval_seconds": 3600, "template_refresh_seconds": 3600,
                      "longpoll": False,
                      "vardiff": {"initial": 1e-6, "minimum": 1e-6, "suggestion_policy": "fixed"},
                      "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}]}],
           "database": {"spool_dir": str(spool)}}
    return parse_settings(doc, address_check=address_to_script)


@pytest.mark.integration
async def test_the_finder_gets_clean_work_while_the_check_is_pending(bcoin_node: Any, tmp_path: Path) -> None:
    address = bcoin_node.new_address()
    pool = Pool(settings(bcoin_node, tmp_path / "spool"))
    await pool.start()
    try:
        coin = pool.coins[0]
        held = HeldCheck(coin.blocks.daemon)
        coin.blocks.daemon = held
        async with Miner("127.0.0.1", coin.port, BTC, address, "bitaxe") as miner:
            job = miner.job if miner.job is not None else await miner.wait_job()
            network = BTC.diff1_target / bits_to_target(job.nbits)
            reply = await miner.submit_share(miner.find(min_difficulty=network))
            assert reply["result"] is True, reply
            deadline = time.monotonic() + 30
            while miner.job is None or miner.job.prevhash == job.prevhash:
                assert time.monotonic() < deadline, "no work on the new tip while the check was held"
                await asyncio.sleep(0.01)
            clean = miner.job
            # the new work came while the check was still held: nothing recorded, nothing counted yet
            assert clean.clean and held.asked.is_set() and not held.released.is_set()
            assert coin.blocks.found == [] and coin.stats.blocks == []
            tip = await coin.daemon.getbestblockhash()
            assert clean.prevhash == bytes.fromhex(tip)[::-1]  # internal order: the found block is the new tip
            held.released.set()
            deadline = time.monotonic() + 30
            while not coin.blocks.found:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            await coin.blocks.drain(timeout=30)
        (found,) = coin.blocks.found
        assert (found.accepted, found.in_best_chain, found.block_hash) == (True, True, tip)
        assert held.best == [tip]
        assert coin.metrics.registry.get_sample_value(
            "stratum_pool_blocks_found_total", {"coin": BTC.key, "result": "accepted"}) == 1
        assert [r.hash for r in coin.found_blocks.recent()] == [tip]
    finally:
        await pool.stop()
