"""Faults under a running pool, against real bcoin regtest nodes: the daemon stopped and restarted, wrong
credentials, failover to a second daemon, and the share spool's disk full. The pool recovers without a
restart and miners keep mining.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.daemon.rpc import RpcAuthError
from stratum_pool.metrics import PoolMetrics
from stratum_pool.pool import CoinPool
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import ShareSpool

pytestmark = pytest.mark.integration

BTC = get_coin("bitcoin", "regtest")
SHARE_DIFFICULTY = 1e-12


def settings(daemons: list[dict[str, Any]]) -> Any:
    doc = {"coins": [{
        "coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1", "stratum_port": 0,
        "poll_interval_seconds": 0.3, "longpoll": False, "template_refresh_seconds": 1,
        "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
        "daemons": daemons,
    }]}
    return parse_settings(doc, address_check=address_to_script).coins[0]


def daemon(node: Any, name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "url": node.url, "user": node.rpc_user, "password": node.rpc_password,
            "timeout_seconds": 5, **overrides}


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def accepted(miner: Miner, count: int = 2) -> None:
    """``count`` shares accepted; none of them a block (so heights move only when a test says so)."""
    from stratum_pool.chain.target import bits_to_target

    for _ in range(count):
        assert miner.job is not None
        network = BTC.diff1_target / bits_to_target(miner.job.nbits)
        reply = await miner.submit_share(miner.find(max_difficulty=network, roll_version=False))
        assert reply["result"] is True, reply


async def test_wrong_password_names_the_daemon_and_serves_nothing(bcoin_node: Any) -> None:
    pool = CoinPool(settings([daemon(bcoin_node, "main-bcoin", password="not-the-password")]))
    try:
        with pytest.raises(RpcAuthError) as info:
            await pool.start(ready_timeout=10)
        text = str(info.value)
        assert "main-bcoin" in text and "wrong RPC credentials" in text, text
        assert pool.jobs.template is None  # no work from it
        assert pool.server._server is None  # and no stratum port was opened
    finally:
        await pool.stop()


async def test_daemon_stopped_and_restarted_while_mining(bcoin_factory: Callable[..., Any], tmp_path: Path) -> None:
    node = bcoin_factory("a")
    spool = ShareSpool(tmp_path / "spool", 0)
    recorder = ShareRecorder(spool)
    recorder.start()
    pool = CoinPool(settings([daemon(node, "a")]), recorder=recorder)
    await pool.start(ready_timeout=30)
    miner = await Miner("127.0.0.1", pool.port, BTC, node.new_address(), order="cgminer").start()
    try:
        await accepted(miner)
        height = pool.jobs.template.height  # type: ignore[union-attr]
        templates = pool.stats.templates
        await asyncio.to_thread(node.stop)
        # the daemon is gone: the session stays, shares of the current job are still judged and durable
        assert (await miner.request("mining.ping", []))["result"] == "pong"
        await accepted(miner)
        await asyncio.sleep(2.0)  # refreshes fail meanwhile (logged), no new work is made
        assert pool.stats.templates == templates and pool.server.sessions
        await asyncio.to_thread(node.start)
        await asyncio.to_thread(node.generate, 1, node.mining_address)
        await wait_for(lambda: miner.job is not None and pool.jobs.template is not None
                       and pool.jobs.template.height > height)
        await miner.wait_job()
        await accepted(miner)  # work resumed on the new block, no pool restart
    finally:
        await miner.close()
        await pool.stop()
        await recorder.stop()
    stats = spool.stats()
    assert recorder.stats.not_durable == 0 and stats.last_seq >= 6 and stats.fsynced_seq == stats.last_seq
    await spool.close()


async def test_failover_to_the_second_daemon(bcoin_factory: Callable[..., Any]) -> None:
    first = bcoin_factory("first")
    second = bcoin_factory("second", peers=[first.p2p_port])
    address = first.new_address()
    pool = CoinPool(settings([daemon(first, "first"), daemon(second, "second")]))
    await pool.start(ready_timeout=30)
    miner = await Miner("127.0.0.1", pool.port, BTC, address, order="cgminer").start()
    try:
        await accepted(miner)
        height = pool.jobs.template.height  # type: ignore[union-attr]
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.generate, 1, second.mining_address)
        # the pool finds the new block through the second daemon and hands out work on it
        await wait_for(lambda: pool.jobs.template is not None and pool.jobs.template.height > height)
        await miner.wait_job()
        await accepted(miner)
        assert pool.server.sessions
    finally:
        await miner.close()
        await pool.stop()


async def test_spool_disk_full_is_counted_and_survived(bcoin_node: Any, tmp_path: Path) -> None:
    metrics = PoolMetrics()
    spool = ShareSpool(tmp_path / "spool", 0, on_failure=metrics.spool_failed)  # as Pool wires it
    recorder = ShareRecorder(spool)
    recorder.start()
    pool = CoinPool(settings([daemon(bcoin_node, "main")]), recorder=recorder, metrics=metrics)
    await pool.start(ready_timeout=30)
    miner = await Miner("127.0.0.1", pool.port, BTC, bcoin_node.new_address(), order="cgminer").start()
    try:
        await accepted(miner)
        spool.inject_fault(errno.ENOSPC, times=1_000_000)  # the disk is full: every write fails
        await accepted(miner, 3)  # answered (not lost from the miner's view), logged share_not_durable
        assert recorder.stats.not_durable >= 3
        assert metrics.registry.get_sample_value("stratum_pool_share_spool_errors_total") >= 3
        spool.inject_fault(0, times=0)
        await accepted(miner)  # the disk has room again: mining never stopped
        assert pool.server.sessions
    finally:
        await miner.close()
        await pool.stop()
        await recorder.stop()
        await spool.close()


async def test_a_long_poll_answer_becomes_the_work_without_a_second_fetch(bcoin_node: Any) -> None:
    """Long polling alone (no blocknotify, a polling interval far away): the template the long poll returns is
    the new work, counted as a new block, sent to the miner with clean_jobs; no extra getblocktemplate."""
    base = settings([daemon(bcoin_node, "main")])
    doc = {"coins": [{
        "coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1", "stratum_port": 0,
        "poll_interval_seconds": 600, "longpoll": True, "template_refresh_seconds": 600,
        "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
        "daemons": [daemon(bcoin_node, "main")],
    }]}
    assert base.longpoll is False
    pool = CoinPool(parse_settings(doc, address_check=address_to_script).coins[0])
    await pool.start(ready_timeout=30)
    miner = await Miner("127.0.0.1", pool.port, BTC, bcoin_node.new_address(), order="cgminer").start()
    try:
        await accepted(miner, 1)
        assert pool.jobs.template is not None
        height = pool.jobs.template.height
        fetches = pool.metrics.registry.get_sample_value(
            "stratum_pool_rpc_seconds_count", {"daemon": "main", "method": "getblocktemplate"}) or 0.0
        await asyncio.to_thread(bcoin_node.generate, 1, bcoin_node.mining_address)
        await wait_for(lambda: pool.jobs.template is not None and pool.jobs.template.height == height + 1)
        job = await miner.wait_job()
        assert job.clean and job.prevhash != b""
        assert pool.stats.new_blocks_seen == 1
        await accepted(miner, 1)  # on the new block's work
        after = pool.metrics.registry.get_sample_value(
            "stratum_pool_rpc_seconds_count", {"daemon": "main", "method": "getblocktemplate"}) or 0.0
        # the long poll's own call (re-armed after the answer) is the only one: no refetch of the same template
        assert fetches > 0 and after - fetches <= 1, (fetches, after)
    finally:
        await miner.close()
        await pool.stop()
