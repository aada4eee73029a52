"""Notifications: each format received by a real HTTP server (aiohttp on 127.0.0.1) with its exact body; a
receiver that is down, then up, gets each message once; a pool on a real bcoin node notifies found blocks and
a worker going quiet and coming back while it mines on."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.devnet.common import free_port
from stratum_pool.pool import Pool
from stratum_pool.webhooks import Notifier, NotifySettings
from stratum_pool.webhooks.events import block_found, payout_sent, worker_offline

BTC = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qalice0000000000000000000000000000000"
HASH = "00" * 31 + "2a"


@dataclass
class Received:
    path: str
    content_type: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server that records every POST (and answers ``status``)."""

    port: int = 0
    status: int = 200
    got: list[Received] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> Receiver:
        async def take(request: web.Request) -> web.Response:
            self.got.append(Received(request.path, request.headers.get("Content-Type", ""),
                                     dict(request.headers), await request.read()))
            return web.Response(status=self.status, text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", take)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


BLOCK = block_found("bitcoin-regtest", "rBTC", 107, HASH, ADDRESS, "rig1", 5_000_000_000, 1_700_000_000.0)
TEXT = f"Block 107 found on bitcoin-regtest by {ADDRESS}.rig1 (reward 50.00000000 rBTC), hash {HASH}"


@pytest.mark.parametrize(("fmt", "content_type", "body", "headers"), [
    ("json", "application/json", json.dumps(
        {"address": ADDRESS, "coin": "bitcoin-regtest", "event": "block_found", "hash": HASH, "height": 107,
         "id": f"block:bitcoin-regtest:{HASH}", "reward": 5_000_000_000, "text": TEXT, "time": 1_700_000_000.0,
         "worker": "rig1"}, separators=(",", ":"), sort_keys=True).encode(), {}),
    ("discord", "application/json", json.dumps({"content": TEXT, "username": "stratum-pool"},
                                               separators=(",", ":"), sort_keys=True).encode(), {}),
    ("telegram", "application/json", json.dumps({"chat_id": "-100123", "disable_web_page_preview": True,
                                                 "text": TEXT}, separators=(",", ":"), sort_keys=True).encode(), {}),
    ("ntfy", "text/plain; charset=utf-8", TEXT.encode(), {"Title": "Block 107 found", "Tags": "tada"}),
])
async def test_each_format_is_received_with_its_exact_body(receiver: Receiver, fmt: str, content_type: str,
                                                           body: bytes, headers: dict[str, str]) -> None:
    path = "/bot123:SECRET/sendMessage" if fmt == "telegram" else "/hook"
    notifier = Notifier([NotifySettings(url=receiver.url(path), format=fmt, chat_id="-100123")])
    notifier.start()
    try:
        notifier.emit(BLOCK)
        await wait_for(lambda: len(receiver.got) == 1)
    finally:
        await notifier.stop()
    (got,) = receiver.got
    assert (got.path, got.content_type, got.body) == (path, content_type, body)
    for name, value in headers.items():
        assert got.headers[name] == value


async def test_events_and_addresses_choose_the_receivers(receiver: Receiver) -> None:
    notifier = Notifier([
        NotifySettings(url=receiver.url("/blocks"), events=("block_found",)),
        NotifySettings(url=receiver.url("/bob"), addresses=("bob",)),
        NotifySettings(url=receiver.url("/all")),
    ])
    notifier.start()
    try:
        notifier.emit(BLOCK)
        notifier.emit(payout_sent("bitcoin-regtest", "rBTC", "bob", 1234, "ab" * 32, 7, 1.0))
        notifier.emit(BLOCK)  # the same block again: nobody hears of it twice
        await notifier.stop(drain_seconds=10)
    finally:
        await notifier.stop()
    assert sorted(g.path for g in receiver.got) == ["/all", "/all", "/blocks", "/bob"]
    (bob,) = [json.loads(g.body) for g in receiver.got if g.path == "/bob"]
    assert (bob["event"], bob["amount"], bob["txid"], bob["batch"]) == ("payout_sent", 1234, "ab" * 32, 7)


async def test_a_receiver_down_then_up_gets_each_message_once() -> None:
    port = free_port()
    notifier = Notifier([NotifySettings(url=f"http://127.0.0.1:{port}/hook", max_backoff_seconds=1.0)])
    notifier.start()
    receiver = Receiver(port=port)
    try:
        notifier.emit(BLOCK)
        (r,) = notifier.receivers
        await wait_for(lambda: r.failed == 0 and r.queue.qsize() == 0)  # taken, and failing
        await asyncio.sleep(1.5)  # a first attempt and a retry fail: nobody listens
        await receiver.start()
        await wait_for(lambda: len(receiver.got) == 1)
        notifier.emit(BLOCK)  # emitted again after delivery: still once
        await asyncio.sleep(2.5)
        assert len(receiver.got) == 1 and r.delivered == 1
    finally:
        await notifier.stop()
        await receiver.stop()


async def test_a_refusing_receiver_is_not_retried_and_server_errors_are(receiver: Receiver) -> None:
    receiver.status = 400
    notifier = Notifier([NotifySettings(url=receiver.url(), max_attempts=3, max_backoff_seconds=0.1)])
    notifier.start()
    try:
        notifier.emit(BLOCK)
        (r,) = notifier.receivers
        await wait_for(lambda: r.failed == 1)
        assert len(receiver.got) == 1  # 400: the receiver refused it; sending again would not help
        receiver.status = 503
        notifier.emit(worker_offline("bitcoin-regtest", ADDRESS, "rig1", 5.0, 10, 6.0))
        await wait_for(lambda: r.failed == 2)
        assert len(receiver.got) == 1 + 3  # 503: tried max_attempts times
    finally:
        await notifier.stop()


def pool_settings(node: Any, tmp_path: Path, notify: list[dict[str, Any]]) -> Any:
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
                      "stratum_port": 0, "poll_interval_seconds": 0.5,
                      "vardiff": {"initial": 1e-6, "minimum": 1e-6, "suggestion_policy": "fixed"},
                      "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}]}],
           "database": {"spool_dir": str(tmp_path / "spool")}, "api": {"enabled": False}, "notify": notify}
    return parse_settings(doc, address_check=address_to_script)


async def mine_block(miner: Miner) -> None:
    job = miner.job if miner.job is not None else await miner.wait_job()
    reply = await miner.submit_share(miner.find(min_difficulty=BTC.diff1_target / bits_to_target(job.nbits)))
    assert reply["result"] is True, reply
    await wait_for(lambda: miner.job is not None and miner.job.prevhash != job.prevhash)


@pytest.mark.integration
async def test_a_pool_notifies_blocks_and_quiet_workers_while_a_dead_receiver_waits(
        bcoin_node: Any, tmp_path: Path, receiver: Receiver) -> None:
    address = bcoin_node.new_address()
    dead_port = free_port()
    settings = pool_settings(bcoin_node, tmp_path, [
        {"url": receiver.url("/json"), "format": "json", "events": ["block_found"]},
        {"url": f"http://127.0.0.1:{dead_port}/discord", "format": "discord", "events": ["block_found"],
         "addresses": [address], "max_backoff_seconds": 0.5},
        {"url": receiver.url("/quiet"), "format": "ntfy", "events": ["worker_offline", "worker_online"],
         "offline_minutes": 0.02},  # 1.2 s without a share
    ])
    pool = Pool(settings)
    await pool.start()
    late = Receiver(port=dead_port)
    try:
        coin = pool.coins[0]
        async with Miner("127.0.0.1", coin.port, BTC, address, "rig1") as miner:
            for _ in range(3):
                await mine_block(miner)  # mining goes on while the discord receiver is down
        await wait_for(lambda: len([g for g in receiver.got if g.path == "/json"]) == 3)
        blocks = [json.loads(g.body) for g in receiver.got if g.path == "/json"]
        assert [b["event"] for b in blocks] == ["block_found"] * 3
        assert {b["hash"] for b in blocks} == {f.block_hash for f in coin.stats.blocks}
        assert all(b["address"] == address and b["worker"] == "rig1" and b["reward"] > 0 for b in blocks)

        # the worker sent nothing since: offline once, then back once when it mines again
        await wait_for(lambda: any(g.path == "/quiet" for g in receiver.got))
        async with Miner("127.0.0.1", coin.port, BTC, address, "rig1") as miner:
            reply = await miner.mine_share()
            assert reply["result"] is True
            await wait_for(lambda: len([g for g in receiver.got if g.path == "/quiet"]) == 2)
        quiet = [g for g in receiver.got if g.path == "/quiet"][:2]
        assert [g.headers["Title"] for g in quiet] == ["Worker rig1 offline", "Worker rig1 back"]
        assert quiet[0].body.decode() == f"Worker {address}.rig1 on bitcoin-regtest sent no share for 0.02 minutes"

        # the discord receiver comes up: each block once (every regtest share is a block: the one share
        # after the worker came back was one too)
        found = len(coin.stats.blocks)
        assert found == 4 and all(f.accepted for f in coin.stats.blocks)
        await late.start()
        await wait_for(lambda: len(late.got) == found)
        await asyncio.sleep(1.5)
        assert len(late.got) == found
        texts = sorted(json.loads(g.body)["content"] for g in late.got)
        assert all(t.startswith("Block ") and address in t for t in texts)
        assert len(set(texts)) == found
    finally:
        await pool.stop()
        await late.stop()


@pytest.mark.parametrize(("table", "error"), [
    ({"url": "ftp://x"}, "notify[0].url: 'ftp://x' is not allowed; an http:// or https:// URL"),
    ({"url": "http://a/b", "format": "sms"}, "notify[0].format: 'sms' is not allowed; one of json, discord, telegram"),
    ({"url": "http://a/b", "events": ["nope"]}, "notify[0].events: ['nope'] is not allowed; a non-empty list of"),
    ({"url": "http://a/b", "format": "telegram"}, "notify[0].chat_id: missing (required when format = 'telegram')"),
    ({"url": "http://a/b", "colour": "red"}, "notify[0].colour: unknown setting; known: addresses, chat_id"),
    ({"url": "http://a/b", "offline_minutes": 0}, "notify[0].offline_minutes: 0.0 is not allowed; above 0"),
])
def test_notify_tables_are_checked(table: dict[str, Any], error: str) -> None:
    from stratum_pool.config import ConfigError

    doc = {"coins": [{"coin": "bitcoin", "network": "regtest",
                      "daemons": [{"url": "http://127.0.0.1:1", "password": "x"}]}], "notify": [table]}
    with pytest.raises(ConfigError) as info:
        parse_settings(doc)
    assert str(info.value).startswith(error)


def test_notify_tables_are_read() -> None:
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest",
                      "daemons": [{"url": "http://127.0.0.1:1", "password": "x"}]}],
           "notify": [{"url": "https://ntfy.sh/my-rigs", "format": "ntfy", "events": ["worker_offline"],
                       "addresses": [ADDRESS], "offline_minutes": 15}]}
    (n,) = parse_settings(doc).notify
    assert (n.format, n.events, n.addresses, n.offline_minutes) == ("ntfy", ("worker_offline",), (ADDRESS,), 15.0)
    assert parse_settings({**doc, "notify": []}).notify == ()
