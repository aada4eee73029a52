"""Found blocks without a database: kept in a small local file across restarts, and shown by the API of the
restarted pool (a real bcoin regtest node, a real miner, real sockets)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.pool import Pool
from stratum_pool.store.found import FILE_NAME, FoundBlockLog, FoundRecord

BTC = get_coin("bitcoin", "regtest")


def record(height: int, finder: str = "a", accepted: bool = True) -> FoundRecord:
    return FoundRecord("bitcoin-regtest", height, f"{height:064x}", finder, "rig", 50, "solo", accepted, "",
                       1_700_000_000.0 + height)


async def test_the_file_keeps_the_last_blocks_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "state" / FILE_NAME
    log = FoundBlockLog(path, keep=3)
    for height in range(1, 9):  # past twice ``keep``: the file is compacted to the last ones
        await log.add(record(height, finder="b" if height % 2 else "a"))
    assert len(path.read_text().splitlines()) <= 2 * 3
    again = FoundBlockLog(path, keep=3)
    again.load()
    assert [r.height for r in again.recent()] == [8, 7, 6]
    assert [r.height for r in again.recent(finder="a")] == [8, 6]
    assert [r.height for r in again.recent(limit=1)] == [8]
    assert again.recent(coin="litecoin-regtest") == []
    # a crash in the middle of a line: that line is skipped, the others are read
    with path.open("a") as f:
        f.write('{"coin":"bitcoin-regtest","heig')
    torn = FoundBlockLog(path, keep=3)
    torn.load()
    assert [r.height for r in torn.recent()] == [8, 7, 6]


async def test_a_block_that_cannot_be_written_is_kept_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    log = FoundBlockLog(blocker / FILE_NAME)
    await log.add(record(5))
    assert [r.height for r in log.recent()] == [5]


def settings(node: Any, spool: Path) -> Any:
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
                      "stratum_port": 0, "poll_interval_seconds": 0.5,
                      "vardiff": {"initial": 1e-6, "minimum": 1e-6, "suggestion_policy": "fixed"},
                      "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}]}],
           "database": {"spool_dir": str(spool)}, "api": {"host": "127.0.0.1", "port": 0}}
    return parse_settings(doc, address_check=address_to_script)


async def api_get(port: int | None, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.mark.integration
async def test_found_blocks_survive_a_restart_without_a_database(bcoin_node: Any, tmp_path: Path) -> None:
    address = bcoin_node.new_address()
    pool = Pool(settings(bcoin_node, tmp_path / "spool"))
    await pool.start()
    try:
        coin = pool.coins[0]
        async with Miner("127.0.0.1", coin.port, BTC, address, "bitaxe") as miner:
            for _ in range(3):
                job = await miner.wait_job() if miner.job is None else miner.job
                network = BTC.diff1_target / bits_to_target(job.nbits)
                reply = await miner.submit_share(miner.find(min_difficulty=network))
                assert reply["result"] is True, reply
                deadline = time.monotonic() + 30
                while miner.job is None or miner.job.prevhash == job.prevhash:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
        deadline = time.monotonic() + 30
        while len(coin.found_blocks.recent()) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        before = await api_get(pool.api_port, "/api/blocks")
    finally:
        await pool.stop()
    assert [b["finder"] for b in before["blocks"]] == [address] * 3

    restarted = Pool(settings(bcoin_node, tmp_path / "spool"))
    await restarted.start()
    try:
        after = await api_get(restarted.api_port, "/api/blocks")
        miner_page = await api_get(restarted.api_port, f"/api/miner/{address}")
        pool_page = await api_get(restarted.api_port, "/api/pool")
    finally:
        await restarted.stop()
    assert after == before
    heights = [b["height"] for b in after["blocks"]]
    assert heights == sorted(heights, reverse=True) and all(b["status"] == "pending" for b in after["blocks"])
    assert all(b["reward"] > 0 and b["worker"] == "bitaxe" for b in after["blocks"])
    (account,) = miner_page["accounts"]
    assert [c["block_height"] for c in account["credits"]] == heights
    assert account["workers"] == []  # not mining since the restart
    assert pool_page["coins"][0]["blocks_found"] == 3
    assert pool_page["coins"][0]["last_block"]["height"] == heights[0]
