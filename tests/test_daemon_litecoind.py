"""The daemon client and new-block sources against real litecoind regtest nodes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import daemon_fixtures
import pytest
from daemon_fixtures import NotifyingRegtest, build_block, requires_litecoind

from stratum_pool.coins import Coin
from stratum_pool.daemon.notify import BestBlockPoller, BlockNotifyListener, LongpollWatcher
from stratum_pool.daemon.rpc import (
    ACCEPTED,
    DaemonClient,
    DaemonEndpoint,
    DaemonNotReadyError,
    RpcAuthError,
    RpcError,
)
from stratum_pool.devnet.common import free_port
from stratum_pool.devnet.litecoind import LitecoinNode

pytestmark = [pytest.mark.integration, requires_litecoind]

# the shared fixtures (harmless if conftest registers daemon_fixtures as a plugin too)
litecoin_pair = daemon_fixtures.litecoin_pair
litecoin_pair_mweb = daemon_fixtures.litecoin_pair_mweb
ltc_client = daemon_fixtures.ltc_client
ltc_regtest = daemon_fixtures.ltc_regtest


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []
        self.templates: list[dict[str, object]] = []

    async def __call__(self, source: str, blockhash: str | None) -> None:
        self.events.append((source, blockhash))

    async def on_template(self, template: dict[str, object]) -> None:
        self.templates.append(template)

    async def wait_for(self, predicate: object, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            await asyncio.sleep(0.05)


async def test_getblocktemplate_litecoin_rules(ltc_client: DaemonClient) -> None:
    template = await ltc_client.getblocktemplate()
    assert template["bits"] == "207fffff"
    assert template["height"] == await ltc_client.getblockcount() + 1
    assert template["previousblockhash"] == await ltc_client.getbestblockhash()
    assert "mweb" not in template  # MWEB is only "defined" on a fresh regtest chain
    assert "!segwit" in template["rules"] and "mweb" not in template["rules"]
    assert isinstance(template["coinbasevalue"], int)
    assert template["longpollid"]


async def test_getblocktemplate_without_mweb_rule_is_refused(ltc_client: DaemonClient) -> None:
    with pytest.raises(RpcError) as info:
        await ltc_client.call("getblocktemplate", {"rules": ["segwit"]})
    assert info.value.code == -8 and "mweb" in info.value.message and info.value.endpoint == "a"


async def test_getblocktemplate_with_mweb_active(litecoin_pair_mweb: NotifyingRegtest,
                                                 ltc_regtest: Coin) -> None:
    async with DaemonClient([litecoin_pair_mweb.a.endpoint()], ltc_regtest) as client:
        template = await client.getblocktemplate()
        assert "mweb" in template["rules"]
        assert isinstance(template["mweb"], str) and len(template["mweb"]) > 0
        # the HogEx (integrating transaction) is the template's last transaction
        assert template["transactions"] and template["transactions"][-1]["data"]
        info = await client.getblockchaininfo()
        assert info["softforks"]["mweb"]["active"] is True


async def test_typed_helpers(ltc_client: DaemonClient, litecoin_pair: NotifyingRegtest) -> None:
    height = await ltc_client.getblockcount()
    best = await ltc_client.getbestblockhash()
    assert await ltc_client.getblockhash(height) == best
    assert (await ltc_client.getblockchaininfo())["chain"] == "regtest"
    assert (await ltc_client.getnetworkinfo())["connections"] >= 1
    address = litecoin_pair.new_address()
    assert address.startswith("rltc1")
    assert (await ltc_client.validateaddress(address))["isvalid"] is True
    assert (await ltc_client.validateaddress("nonsense"))["isvalid"] is False


async def test_is_in_main_chain(ltc_client: DaemonClient) -> None:
    height = await ltc_client.getblockcount()
    tip = await ltc_client.getbestblockhash()
    assert await ltc_client.is_in_main_chain(height, tip)
    assert await ltc_client.is_in_main_chain(height, tip.upper())
    assert not await ltc_client.is_in_main_chain(height, "00" * 32)
    assert not await ltc_client.is_in_main_chain(height - 1, tip)
    assert not await ltc_client.is_in_main_chain(height + 100, tip)  # -8 "Block height out of range"


async def test_submitblock_garbage(ltc_client: DaemonClient) -> None:
    result = await ltc_client.submitblock("00")
    assert not result.accepted
    assert [r.endpoint for r in result.results] == ["a", "b"]
    for r in result.results:
        assert r.reason == "rpc-error -22: Block decode failed"


async def test_submitblock_high_hash_then_valid_then_duplicate(ltc_client: DaemonClient,
                                                               litecoin_pair: NotifyingRegtest) -> None:
    template = await ltc_client.getblocktemplate()
    bad_hex, _ = build_block(template, valid_pow=False)
    result = await ltc_client.submitblock(bad_hex)
    assert not result.accepted
    assert [r.reason for r in result.results] == ["high-hash", "high-hash"]

    good_hex, block_hash = build_block(template, valid_pow=True)
    result = await ltc_client.submitblock(good_hex)
    assert result.accepted and result.reason == ACCEPTED
    # both got it at the same moment: each says accepted, or duplicate/inconclusive if the peer relayed first
    for r in result.results:
        assert r.reason in (ACCEPTED, "duplicate", "inconclusive", "duplicate-inconclusive")
    litecoin_pair.sync(block_hash)
    assert await ltc_client.is_in_main_chain(int(template["height"]), block_hash)

    again = await ltc_client.submitblock(good_hex)
    assert [r.reason for r in again.results] == ["duplicate", "duplicate"]
    assert again.accepted


async def test_failover_from_dead_endpoint(litecoin_pair: NotifyingRegtest, ltc_regtest: Coin) -> None:
    dead = DaemonEndpoint("dead", f"http://127.0.0.1:{free_port()}/", "u", "p", timeout=2)
    async with DaemonClient([dead, litecoin_pair.a.endpoint()], ltc_regtest, recheck_after=60) as client:
        assert await client.getblockcount() >= 1
        assert not client.state("dead").up
        assert client.state("a").up
        assert "dead" in (client.state("dead").last_error or "")
        # while down (and not yet due for a recheck) the dead endpoint is tried last: no new failure
        failures = client.state("dead").failures
        template = await client.getblocktemplate()
        assert template["height"] >= 2
        assert client.state("dead").failures == failures
        # submitblock still goes to every endpoint, the dead one reports "unreachable"
        result = await client.submitblock("00")
        assert result.results[0].endpoint == "dead" and result.results[0].reason == "unreachable"


async def test_wrong_password(litecoin_pair: NotifyingRegtest, ltc_regtest: Coin) -> None:
    node = litecoin_pair.a
    ep = DaemonEndpoint("ltc-primary", node.url, node.rpc_user, "not-the-password")
    async with DaemonClient([ep], ltc_regtest) as client:
        with pytest.raises(RpcAuthError, match="ltc-primary") as info:
            await client.getblockcount()
        assert info.value.status == 401
        assert "not-the-password" not in str(info.value)
        with pytest.raises(RpcAuthError, match="ltc-primary"):
            await client.wait_ready(timeout=5)


async def test_wrong_password_fails_over(litecoin_pair: NotifyingRegtest, ltc_regtest: Coin) -> None:
    node = litecoin_pair.a
    bad = DaemonEndpoint("bad-auth", node.url, node.rpc_user, "nope")
    async with DaemonClient([bad, litecoin_pair.b.endpoint()], ltc_regtest) as client:
        assert await client.getblockcount() >= 1
        assert not client.state("bad-auth").up
        assert "credentials" in (client.state("bad-auth").last_error or "")


async def test_cookie_auth(litecoin_pair: NotifyingRegtest, ltc_regtest: Coin) -> None:
    ep = litecoin_pair.a.endpoint(use_cookie=True)
    assert ep.password is None and ep.cookie_file is not None
    assert Path(ep.cookie_file).read_text().startswith("__cookie__:")
    async with DaemonClient([ep], ltc_regtest) as client:
        assert await client.getblockcount() >= 1
        assert await client.wait_ready(timeout=5) == "a"


async def test_event_loop_not_blocked_by_slow_rpc(ltc_client: DaemonClient) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    start = time.monotonic()
    await ltc_client.call("waitfornewblock", 1000)  # Core waits 1 s for a block that does not come
    elapsed = time.monotonic() - start
    task.cancel()
    assert elapsed >= 0.9
    assert ticks >= 10


async def test_blocknotify_fires(litecoin_pair: NotifyingRegtest) -> None:
    rec = Recorder()
    listener = BlockNotifyListener(rec, port=litecoin_pair.notify_port)
    await listener.start_listening()
    try:
        [block_hash] = await asyncio.to_thread(litecoin_pair.generate, 1)
        await rec.wait_for(lambda: ("blocknotify", block_hash) in rec.events)
    finally:
        await listener.stop()


async def test_longpoll_fires_on_block_from_peer(ltc_client: DaemonClient,
                                                 litecoin_pair: NotifyingRegtest) -> None:
    rec = Recorder()
    watcher = LongpollWatcher(ltc_client, rec, rec.on_template, timeout=30)
    watcher.start()
    try:
        await rec.wait_for(lambda: watcher.longpollid is not None)
        await asyncio.sleep(0.3)  # let the long poll reach the daemon
        assert rec.events == []
        [block_hash] = await asyncio.to_thread(litecoin_pair.generate, 1, None, on="b")
        await rec.wait_for(lambda: ("longpoll", block_hash) in rec.events)
        assert any(t["previousblockhash"] == block_hash for t in rec.templates)
    finally:
        await watcher.stop()


async def test_longpoll_timeout_is_not_an_outage(ltc_client: DaemonClient) -> None:
    rec = Recorder()
    watcher = LongpollWatcher(ltc_client, rec, timeout=0.5)
    watcher.start()
    try:
        await asyncio.sleep(1.5)  # a couple of polls time out and are re-issued
        assert ltc_client.state("a").up
        assert rec.events == []
    finally:
        await watcher.stop()


async def test_polling_fires(ltc_client: DaemonClient, litecoin_pair: NotifyingRegtest) -> None:
    rec = Recorder()
    poller = BestBlockPoller(ltc_client, rec, interval=0.1)
    poller.start()
    try:
        await rec.wait_for(lambda: poller.best is not None)
        assert rec.events == []
        [block_hash] = await asyncio.to_thread(litecoin_pair.generate, 1, None, on="b")
        await rec.wait_for(lambda: ("poll", block_hash) in rec.events)
    finally:
        await poller.stop()


async def test_wait_ready_states(tmp_path: Path, ltc_regtest: Coin) -> None:
    """A lone node answers -9 (not connected); a fresh pair answers -10 until its first block."""
    c = LitecoinNode(tmp_path / "c", name="c")
    d = LitecoinNode(tmp_path / "d", name="d")
    try:
        await asyncio.to_thread(c.start)
        async with DaemonClient([c.endpoint()], ltc_regtest) as client:
            with pytest.raises(DaemonNotReadyError) as info:
                await client.wait_ready(timeout=0.5, interval=0.2)
            assert "not connected" in info.value.states["c"] and "-9" in info.value.states["c"]

            await asyncio.to_thread(d.start)
            await asyncio.to_thread(d.connect_to, c)
            with pytest.raises(DaemonNotReadyError) as info:
                await client.wait_ready(timeout=0.5, interval=0.2)
            assert "initial block download" in info.value.states["c"]
            assert "-10" in info.value.states["c"]

            await asyncio.to_thread(c.create_wallet)
            await asyncio.to_thread(c.generate, 1)
            assert await client.wait_ready(timeout=10, interval=0.2) == "c"

        dead = DaemonEndpoint("gone", f"http://127.0.0.1:{free_port()}/", "u", "p", timeout=1)
        async with DaemonClient([dead], ltc_regtest) as client:
            with pytest.raises(DaemonNotReadyError, match="gone: unreachable"):
                await client.wait_ready(timeout=0.3, interval=0.1)
    finally:
        await asyncio.to_thread(d.stop)
        await asyncio.to_thread(c.stop)
    assert not c.running and not d.running


async def test_blocknotify_fires_on_mweb_pair(litecoin_pair_mweb: NotifyingRegtest) -> None:
    rec = Recorder()
    listener = BlockNotifyListener(rec, port=litecoin_pair_mweb.notify_port)
    await listener.start_listening()
    try:
        [block_hash] = await asyncio.to_thread(litecoin_pair_mweb.generate, 1)
        await rec.wait_for(lambda: ("blocknotify", block_hash) in rec.events)
    finally:
        await listener.stop()
