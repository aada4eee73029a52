"""The recommended ``-blocknotify`` command (``blocknotify_shell_command``: bash writes the datagram, no Python
start) delivers the block hash the pool acts on: run the way the daemon runs it, to the real listener, and from a
real litecoind regtest node to a real pool whose only new-block source is that command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import free_udp_port
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.daemon.blocknotify import blocknotify_shell_command
from stratum_pool.daemon.notify import BlockNotifyListener
from stratum_pool.devnet.litecoind import LitecoinNode, LitecoinRegtest, find_litecoind
from stratum_pool.pool import CoinPool

HASH = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
LTC = get_coin("litecoin", "regtest")


async def test_the_shell_command_reaches_the_listener_as_the_daemon_runs_it() -> None:
    got: list[tuple[str, str | None]] = []
    arrived = asyncio.Event()

    async def on_new_block(source: str, blockhash: str | None) -> None:
        got.append((source, blockhash))
        arrived.set()

    listener = BlockNotifyListener(on_new_block)
    port = await listener.start_listening()
    try:
        # bitcoind/litecoind: every %s replaced by the hash, then /bin/sh -c
        command = blocknotify_shell_command("127.0.0.1", port).replace("%s", HASH.upper())
        process = await asyncio.create_subprocess_exec("/bin/sh", "-c", command, cwd="/")
        assert await process.wait() == 0
        await asyncio.wait_for(arrived.wait(), 10)
        assert got == [("blocknotify", HASH)]
    finally:
        await listener.stop()


def test_the_shell_command_takes_only_an_address_and_a_port() -> None:
    assert blocknotify_shell_command("127.0.0.1", 3390) == \
        "bash -c 'echo -n stratum-pool-blocknotify %s >/dev/udp/127.0.0.1/3390'"
    with pytest.raises(ValueError, match="host: 'x; rm' is not an IP address"):
        blocknotify_shell_command("x; rm", 3390)
    with pytest.raises(ValueError, match="port: 0 is not a port number"):
        blocknotify_shell_command("127.0.0.1", 0)


@pytest.fixture
def notifying_litecoind(tmp_path: Path) -> Iterator[tuple[LitecoinNode, int]]:
    if find_litecoind() is None:
        pytest.skip("litecoind is not installed")  # `make test` installs it
    port = free_udp_port()
    # a pair: litecoind answers getblocktemplate only with a peer; node A runs the command
    command = blocknotify_shell_command("127.0.0.1", port)
    net = LitecoinRegtest(tmp_path / "ltc", extra_args_a=[f"-blocknotify={command}"])
    net.start()
    try:
        yield net.a, port
    finally:
        net.stop()


def settings(node: LitecoinNode, notify_port: int) -> Any:
    # the command is the only way the pool can learn of the block: no long poll, no best-block poll, no timer
    doc = {"coins": [{"coin": "litecoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
                      "stratum_port": 0, "notify_listen": f"127.0.0.1:{notify_port}", "longpoll": False,
                      "poll_interval_seconds": 3600, "template_refresh_seconds": 3600,
                      "vardiff": {"initial": 1e-6, "minimum": 1e-6, "suggestion_policy": "fixed"},
                      "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}]}]}
    return parse_settings(doc, address_check=address_to_script).coins[0]


@pytest.mark.integration
async def test_litecoind_runs_the_command_and_the_miner_gets_clean_work(
        notifying_litecoind: tuple[LitecoinNode, int]) -> None:
    node, notify_port = notifying_litecoind
    pool = CoinPool(settings(node, notify_port))
    await pool.start(ready_timeout=30)
    try:
        async with Miner("127.0.0.1", pool.port, LTC, node.new_address()) as miner:
            seen = pool.stats.new_blocks_seen
            (tip,) = await asyncio.to_thread(node.generate, 1)
            deadline = time.monotonic() + 30
            while miner.job is None or miner.job.prevhash != bytes.fromhex(tip)[::-1]:
                assert time.monotonic() < deadline, "no work on the block litecoind announced"
                await asyncio.sleep(0.01)
            assert miner.job.clean and pool.stats.new_blocks_seen == seen + 1
    finally:
        await pool.stop()
