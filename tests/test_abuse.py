"""Misbehaving clients against a real server on 127.0.0.1 (in-memory work, as in test_server.py).

Each case says what was sent and what came back. All the while a well-behaved miner (from 127.0.0.1) is
connected; after every case it still gets its shares accepted. Abusers connect from other loopback
addresses (127.0.0.2 and up), so bans hit them and not the good miner.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
from miner import FakeWork, Miner, NotifiedJob, find_share, make_job

from stratum_pool.coins import get_coin
from stratum_pool.protocol.actions import Action
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.server.limits import Ban, BanList, BanPolicy, Guard, ServerLimits, WorkerRegistry
from stratum_pool.server.stratum import ExtranonceAllocator, StratumServer

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qabuseaddress"
NOW = 1_700_000_100.0

LIMITS = ServerLimits(max_line_bytes=16 * 1024, max_write_buffer_bytes=64 * 1024, max_connections=20_000,
                      max_connections_per_ip=100, subscribe_timeout_seconds=60, authorize_timeout_seconds=60,
                      idle_timeout_seconds=600, submits_per_second=0, max_workers_per_account=0)
POLICY = BanPolicy(duration_seconds=600, window_seconds=600, invalid_ratio=0.9, min_shares=10, max_malformed=10)


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q") and address.isalnum():
        return bytes(22)
    raise ValueError("not a regtest address")


class AbusePool:
    def __init__(self, limits: ServerLimits, policy: BanPolicy, config: SessionConfig) -> None:
        self.work = FakeWork()
        self.work.add(make_job("j1", target=2**200))
        self.config = config
        self.rules = config.make_rules()
        self.allocator = ExtranonceAllocator(prefix=b"\x09")
        self.actions: list[Action] = []
        self.banned: list[Ban] = []
        self.bans = BanList()
        self.guard = Guard(limits, policy, self.bans, on_ban=self.banned.append)
        self.registry = WorkerRegistry(limits.max_workers_per_account)
        self.server = StratumServer("127.0.0.1", 0, self.new_session, self.actions.append,
                                    allocator=self.allocator, tick_seconds=0.05, guard=self.guard,
                                    on_disconnect=lambda s: self.registry.release(s.session_id))

    def new_session(self, peer: str) -> Session:
        en1 = self.allocator.allocate()
        return Session(self.config, self.work, check_address, en1.hex(), en1, lambda: NOW,
                       rules=self.rules, admit=self.registry.admit)

    def miner(self, worker: str = "good", **kwargs: Any) -> Miner:
        return Miner("127.0.0.1", self.server.port, COIN, ADDRESS, worker, **kwargs)

    def sessions_from(self, ip: str) -> int:
        return self.guard.per_ip.get(ip, 0)


PoolFactory = Callable[..., Awaitable[tuple[AbusePool, Miner]]]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    made: list[tuple[AbusePool, Miner]] = []

    async def make(limits: ServerLimits = LIMITS, policy: BanPolicy = POLICY,
                   **config: Any) -> tuple[AbusePool, Miner]:
        pool = AbusePool(limits, policy, SessionConfig(COIN, initial_difficulty=2e-7, **config))
        await pool.server.start()
        good = await pool.miner().start()
        made.append((pool, good))
        return pool, good

    yield make
    for pool, good in made:
        await good.close()
        await pool.server.close()


@pytest.fixture
async def pool(make_pool: PoolFactory) -> AsyncIterator[tuple[AbusePool, Miner]]:
    yield await make_pool()


async def good_miner_still_mines(good: Miner) -> None:
    for _ in range(2):
        reply = await good.mine_share()
        assert reply["result"] is True, reply


class Client:
    """A raw line client from a chosen loopback address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ids = itertools.count(100)

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.2") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def call(self, method: str, params: Any, rid: int | None = None) -> dict[str, Any]:
        rid = next(self.ids) if rid is None else rid
        await self.send(orjson.dumps({"id": rid, "method": method, "params": params}) + b"\n")
        return await self.answer(rid)

    async def answer(self, rid: object) -> dict[str, Any]:
        while True:
            message = await self.line()
            if message.get("method") is None and message.get("id") == rid:
                return message

    async def line(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line, "connection closed"
        return orjson.loads(line)  # type: ignore[no-any-return]

    async def closed(self) -> bool:
        """True once the server closed the connection (EOF or reset), reading what is left."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 5):
                pass
        except (ConnectionError, OSError):
            pass
        return True

    async def handshake(self, user: str = f"{ADDRESS}.abuser") -> dict[str, Any]:
        await self.call("mining.subscribe", ["abuser/1.0"])
        reply = await self.call("mining.authorize", [user, "x"])
        return reply

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def error_code(reply: dict[str, Any]) -> int:
    return int(reply["error"][0])


async def open_client(pool: AbusePool, source: str = "127.0.0.2") -> Client:
    return await Client.open(pool.server.port, source)


# ----- malformed input


async def test_invalid_json_is_answered_with_20_and_closed(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    await c.send(b'{"id": 1, "method": "mining.subscribe", \n')  # sent: a truncated JSON object
    reply = await c.line()  # back: error 20 "Invalid request: not JSON", id null, then the close
    assert reply["id"] is None and error_code(reply) == 20 and "not JSON" in reply["error"][1]
    assert await c.closed()
    await c.close()
    await good_miner_still_mines(good)


async def test_a_one_mebibyte_line_is_refused_and_closed(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    with contextlib.suppress(ConnectionError):  # sent: 1 MiB without a newline
        await c.send(b'{"id": 1, "method": "mining.subscribe", "params": ["' + b"A" * (1 << 20))
    reply = await c.line()  # back: error 20 "Line longer than 16384 bytes", then the close
    assert error_code(reply) == 20 and "Line longer than 16384 bytes" in reply["error"][1]
    assert await c.closed()
    await c.close()
    await good_miner_still_mines(good)


async def test_wrong_types_get_20_and_the_connection_stays(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    await c.handshake()
    # sent: submit with numbers for strings -> error 20 "submit expects [...]"
    reply = await c.call("mining.submit", [1, 2, 3, 4, 5])
    assert error_code(reply) == 20 and "submit expects" in reply["error"][1]
    # sent: params an object -> error 20 "params must be a list", answered to its id
    await c.send(b'{"id": 7, "method": "mining.submit", "params": {"a": 1}}\n')
    reply = await c.answer(7)
    assert error_code(reply) == 20 and "params must be a list" in reply["error"][1]
    # sent: method a number -> error 20 "method must be a non-empty string"
    await c.send(b'{"id": "x", "method": 7}\n')
    reply = await c.answer("x")
    assert error_code(reply) == 20 and "method must be" in reply["error"][1]
    # sent: authorize with a number as user -> error 24
    assert error_code(await c.call("mining.authorize", [12345, "x"])) == 24
    # sent: suggest_difficulty with a list, suggest_target "0x10" -> error 20 each
    assert error_code(await c.call("mining.suggest_difficulty", [[1]])) == 20
    assert error_code(await c.call("mining.suggest_target", ["0x10"])) == 20
    # sent: configure with a mask "0x1fffe" (not plain hex) -> version-rolling refused
    reply = await c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "0x1fffe"}])
    assert reply["result"]["version-rolling"] is False
    assert (await c.call("mining.ping", []))["result"] == "pong"  # still connected
    await c.close()
    await good_miner_still_mines(good)


async def test_unknown_method_gets_20_and_the_connection_stays(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    reply = await c.call("mining.steal_coins", [])  # back: error 20 "Unknown method 'mining.steal_coins'"
    assert error_code(reply) == 20 and "Unknown method" in reply["error"][1]
    assert (await c.call("mining.ping", []))["result"] == "pong"
    await c.close()
    await good_miner_still_mines(good)


async def test_submit_before_subscribe_and_before_authorize(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    share = [f"{ADDRESS}.abuser", "j1", "00000001", "6553f100", "00000000"]
    assert error_code(await c.call("mining.submit", share)) == 25  # not subscribed
    await c.call("mining.subscribe", [])
    assert error_code(await c.call("mining.submit", share)) == 24  # not authorized
    await c.close()
    await good_miner_still_mines(good)


async def test_bad_worker_names_are_refused_at_authorize(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p)
    await c.call("mining.subscribe", [])
    for user in (f"{ADDRESS}.rig 1", f"{ADDRESS}.rig;DROP TABLE", f"{ADDRESS}." + "w" * 65,
                 f"{ADDRESS}.ünïcode", f"{ADDRESS}.a\nb"):
        reply = await c.call("mining.authorize", [user, "x"])  # back: error 24 naming the rule
        assert error_code(reply) == 24 and "worker name must be" in reply["error"][1], (user, reply)
    reply = await c.call("mining.authorize", ["notanaddress.rig", "x"])  # a foreign address: 24
    assert error_code(reply) == 24 and "invalid payout address" in reply["error"][1]
    assert (await c.call("mining.authorize", [f"{ADDRESS}.rig-1_a.b", "x"]))["result"] is True
    await c.close()
    await good_miner_still_mines(good)


# ----- bad shares


async def test_bad_shares_get_their_codes(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    bad = await p.miner("bad").start()
    try:
        share = bad.find()
        user = bad.user

        async def submit(*fields: str) -> dict[str, Any]:
            return await bad.request("mining.submit", [user, *fields])

        version = [share.version_bits] if share.version_bits else []
        # unknown job -> 21
        assert error_code(await submit("nope", share.extranonce2, share.ntime, share.nonce, *version)) == 21
        # extranonce2 of 3 bytes where 4 are expected -> 20 "extranonce2 must be 8 hex characters"
        reply = await submit(share.job_id, "000001", share.ntime, share.nonce, *version)
        assert error_code(reply) == 20 and "extranonce2 must be 8 hex" in reply["error"][1]
        # extranonce2 "0x000001" (right length, not hex) -> 20
        assert error_code(await submit(share.job_id, "0x000001", share.ntime, share.nonce, *version)) == 20
        # ntime three hours ahead -> 20 "ntime is too far in the future"
        future = f"{int(NOW) + 3 * 3600:08x}"
        reply = await submit(share.job_id, share.extranonce2, future, share.nonce, *version)
        assert error_code(reply) == 20 and "future" in reply["error"][1]
        # ntime "+6553f10" (int() would take it) -> 20 "ntime must be 8 hex characters"
        reply = await submit(share.job_id, share.extranonce2, "+6553f10", share.nonce, *version)
        assert error_code(reply) == 20 and "ntime must be 8 hex" in reply["error"][1]
        # version bits outside the negotiated mask -> 20
        reply = await submit(share.job_id, share.extranonce2, share.ntime, share.nonce, "e0000000")
        assert error_code(reply) == 20 and "outside the negotiated mask" in reply["error"][1]
        # the real share is accepted, then the same share again -> 22 duplicate
        assert (await bad.submit_share(share))["result"] is True
        assert error_code(await bad.submit_share(share)) == 22
        assert not p.banned  # 7 invalid of 8 is under the 10-share minimum
    finally:
        await bad.close()
    await good_miner_still_mines(good)


async def test_a_duplicate_after_reconnect_never_bans(pool: tuple[AbusePool, Miner]) -> None:
    """Bitaxe: the last share is resent on a new connection (same extranonce1 never, but the pool may see
    a true duplicate). Alone, or a few among good shares, duplicates never ban."""
    p, good = pool
    for _ in range(3):
        share = good.find()
        assert (await good.submit_share(share))["result"] is True
        assert error_code(await good.submit_share(share)) == 22
        for _ in range(3):
            assert (await good.mine_share())["result"] is True
    assert not p.banned and p.bans.banned("127.0.0.1") is None
    await good_miner_still_mines(good)


# ----- floods and bans


async def test_ten_thousand_connections_from_one_ip(make_pool: PoolFactory) -> None:
    """10,000 connects from 127.0.0.3 with max_connections_per_ip = 100: 100 stay, the rest are closed at
    once (no session made, no extranonce drawn). The flood ban is held off here (bans.max_refused_connections
    above the refusals) to show the cap alone; test_nat_farm shows the ban."""
    p, good = await make_pool(policy=replace(POLICY, max_refused_connections=20_000))
    loop = asyncio.get_running_loop()
    total, source = 10_000, "127.0.0.3"
    socks: list[socket.socket] = []
    gate = asyncio.Semaphore(256)

    async def connect() -> None:
        async with gate:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((source, 0))
            socks.append(s)
            await loop.sock_connect(s, ("127.0.0.1", p.server.port))

    try:
        results = await asyncio.gather(*(connect() for _ in range(total)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert not failed, failed[:3]
        for _ in range(400):  # until the server has accepted (and refused) every one
            if p.sessions_from(source) + p.guard.refused >= total:
                break
            await asyncio.sleep(0.05)
        assert p.sessions_from(source) == 100
        assert p.guard.refused == total - 100
        assert len(p.allocator) == 101  # the good miner and the 100 admitted
        await good_miner_still_mines(good)
    finally:
        for s in socks:
            s.close()
    for _ in range(200):
        if p.sessions_from(source) == 0:
            break
        await asyncio.sleep(0.05)
    assert p.sessions_from(source) == 0 and len(p.allocator) == 1
    await good_miner_still_mines(good)


async def test_a_reader_that_never_reads_is_dropped(pool: tuple[AbusePool, Miner]) -> None:
    """Sent: up to 100,000 mining.subscribe (~35 bytes each, ~130-byte answers) on a socket with a tiny
    receive buffer, never reading. Once the kernel's buffers (up to tcp_wmem's 4 MiB) are full, the
    server's own queue for it passes max_write_buffer_bytes (64 KiB here) and the connection is aborted."""
    p, good = pool
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    s.bind(("127.0.0.2", 0))
    loop = asyncio.get_running_loop()
    await loop.sock_connect(s, ("127.0.0.1", p.server.port))
    for _ in range(100):
        if p.sessions_from("127.0.0.2") == 1:
            break
        await asyncio.sleep(0.02)
    assert p.sessions_from("127.0.0.2") == 1
    sent = 0
    try:
        subscribe = b'{"id":1,"method":"mining.subscribe"}\n'
        with contextlib.suppress(ConnectionError, OSError):
            for _ in range(100):
                sent += 1000
                await asyncio.wait_for(loop.sock_sendall(s, subscribe * 1000), 5)
                if p.sessions_from("127.0.0.2") == 0:
                    break
        for _ in range(200):
            if p.sessions_from("127.0.0.2") == 0:
                break
            await asyncio.sleep(0.05)
        assert p.sessions_from("127.0.0.2") == 0
        assert sent > 2000 and not p.banned  # dropped for not reading, after real output
    finally:
        s.close()
    await good_miner_still_mines(good)


async def test_malformed_flood_bans_the_ip_until_lifted(pool: tuple[AbusePool, Miner]) -> None:
    p, good = pool
    c = await open_client(p, "127.0.0.4")
    await c.handshake()
    # sent: 11 submits with wrong types (each answered 20); the 11th passes max_malformed = 10
    with contextlib.suppress(ConnectionError, AssertionError):
        for _ in range(11):
            assert error_code(await c.call("mining.submit", [1, 2, 3, 4, 5])) == 20
    assert await c.closed()  # back: the connection is closed
    await c.close()
    assert [(b.ip, b.reason) for b in p.banned] == [("127.0.0.4", "malformed")]
    ban = p.bans.banned("127.0.0.4")
    assert ban is not None and ban.reason == "malformed"
    # a new connection from the banned IP is closed at once
    again = await open_client(p, "127.0.0.4")
    assert await again.closed()
    await again.close()
    await good_miner_still_mines(good)
    # SIGHUP lifts bans: the IP may connect again
    assert p.bans.clear() == 1
    back = await open_client(p, "127.0.0.4")
    assert (await back.call("mining.ping", []))["result"] == "pong"
    await back.close()


async def test_invalid_share_ratio_bans(pool: tuple[AbusePool, Miner]) -> None:
    """Sent: one good share, then the same share 10 times from 127.0.0.5 (a duplicate flood): 10 invalid of
    11 judged passes invalid_ratio 0.9 over min_shares 10 -> banned for "invalid-shares"."""
    p, good = pool
    c = await open_client(p, "127.0.0.5")
    en1 = bytes.fromhex((await c.call("mining.subscribe", []))["result"][1])
    assert (await c.call("mining.authorize", [f"{ADDRESS}.dup", "x"]))["result"] is True
    # a share meeting the (very low) difficulty: any nonce of job j1 at 2e-7 is found within a few tries
    notify = None
    while notify is None:
        message = await c.line()
        if message.get("method") == "mining.notify":
            notify = NotifiedJob.from_params(message["params"], 2e-7)
    share = find_share(COIN, notify, en1, bytes(4), min_difficulty=2e-7)
    fields = [f"{ADDRESS}.dup", share.job_id, share.extranonce2, share.ntime, share.nonce]
    assert (await c.call("mining.submit", fields))["result"] is True
    with contextlib.suppress(ConnectionError, AssertionError):
        for _ in range(10):
            assert error_code(await c.call("mining.submit", fields)) == 22
    assert await c.closed()
    await c.close()
    assert [(b.ip, b.reason) for b in p.banned] == [("127.0.0.5", "invalid-shares")]
    await good_miner_still_mines(good)


async def test_submit_rate_limit_answers_20_rate_limited(make_pool: PoolFactory) -> None:
    p, good = await make_pool(submits_per_second=1.0, submit_burst=3)
    c = await open_client(p)
    await c.handshake()
    share = [f"{ADDRESS}.abuser", "nope", "00000001", "6553f100", "00000000"]
    codes = [(await c.call("mining.submit", share))["error"] for _ in range(6)]
    limited = [e for e in codes if e[1] == "rate limited"]
    assert limited and all(e[0] == 20 for e in limited)
    assert codes[0][0] == 21  # the first ones, within the burst, are judged (unknown job)
    await c.close()
    await good_miner_still_mines(good)


async def test_max_workers_per_account(make_pool: PoolFactory) -> None:
    p, good = await make_pool(limits=replace(LIMITS, max_workers_per_account=2))
    second = await p.miner("second").start()  # "good" and "second": 2 workers of ADDRESS
    c = await open_client(p)
    await c.call("mining.subscribe", [])
    reply = await c.call("mining.authorize", [f"{ADDRESS}.third", "x"])
    assert error_code(reply) == 24 and "too many workers" in reply["error"][1]
    # the same worker name again (a reconnect while the old connection lingers) is not a new worker
    assert (await c.call("mining.authorize", [f"{ADDRESS}.second", "x"]))["result"] is True
    await c.close()
    await second.close()
    for _ in range(100):
        if p.registry.workers(ADDRESS) == 1:
            break
        await asyncio.sleep(0.05)
    third = await p.miner("third").start()  # room again
    assert (await third.mine_share())["result"] is True
    await third.close()
    await good_miner_still_mines(good)


async def test_subscribe_and_authorize_timeouts_close(make_pool: PoolFactory) -> None:
    limits = replace(LIMITS, subscribe_timeout_seconds=0.3, authorize_timeout_seconds=0.6)
    p, good = await make_pool(limits=limits)
    silent = await open_client(p)  # sent: nothing -> closed after the subscribe timeout
    subscribed = await open_client(p, "127.0.0.6")
    await subscribed.call("mining.subscribe", [])  # sent: subscribe only -> closed after the authorize timeout
    assert await silent.closed()
    assert await subscribed.closed()
    await silent.close()
    await subscribed.close()
    await good_miner_still_mines(good)


async def test_idle_timeout_closes(make_pool: PoolFactory) -> None:
    p, _ = await make_pool(limits=replace(LIMITS, idle_timeout_seconds=0.5))
    c = await open_client(p)
    await c.handshake()  # then silence -> closed
    assert await c.closed()
    await c.close()


# ----- many devices behind one address


async def test_nat_farm(make_pool: PoolFactory) -> None:
    """21 devices behind one address (127.0.0.1) besides the good miner: 20 honest, one ("broken") sending
    shares below its difficulty. After min_shares of them the broken worker is banned from that address: its
    connection is closed and its name refused there, while the 20 honest miners (and the address) mine on.
    Then the same address floods connections past max_connections_per_ip: past max_refused_connections
    refusals the whole address is banned and cut off."""
    limits = replace(LIMITS, max_connections_per_ip=40)
    p, good = await make_pool(limits=limits, policy=replace(POLICY, max_refused_connections=20))
    honest = [await p.miner(f"rig{i:02}").start() for i in range(20)]
    broken = await p.miner("broken").start()
    flood: list[socket.socket] = []
    try:
        replies = []
        for _ in range(POLICY.min_shares):
            # each round: every honest device finds a share, and the broken one sends one far too easy
            replies += await asyncio.gather(*(m.mine_share() for m in honest))
            low = broken.find(min_difficulty=1e-12, max_difficulty=1e-7)
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                assert error_code(await broken.submit_share(low)) == 23  # low difficulty
        assert all(r["result"] is True for r in replies) and len(replies) == 20 * POLICY.min_shares
        assert [(b.ip, b.worker, b.reason) for b in p.banned] == [
            ("127.0.0.1", f"{ADDRESS}.broken", "invalid-shares")]
        assert p.bans.banned("127.0.0.1") is None  # the address is not banned
        assert broken._task is not None
        await asyncio.wait_for(broken._task, 5)  # the broken worker's connection was closed
        # back with the same name from the same address: refused at authorize (24), the connection stays
        again = Miner("127.0.0.1", p.server.port, COIN, ADDRESS, "broken")
        await again.connect()
        await again.subscribe()
        reply = await again.authorize()
        assert error_code(reply) == 24 and "broken is banned" in reply["error"][1]
        await again.close()
        # every honest device keeps mining
        replies = await asyncio.gather(*(m.mine_share() for m in honest))
        assert all(r["result"] is True for r in replies)
        await good_miner_still_mines(good)

        # the same address floods connections: 40 at most are let in, the rest refused, and past 20 refusals
        # in the window the address is banned: every connection from it is dropped, honest ones too
        loop = asyncio.get_running_loop()
        for _ in range(80):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            flood.append(s)
            await loop.sock_connect(s, ("127.0.0.1", p.server.port))
        for _ in range(200):
            if p.bans.banned("127.0.0.1") is not None and p.sessions_from("127.0.0.1") == 0:
                break
            await asyncio.sleep(0.05)
        ban = p.bans.banned("127.0.0.1")
        assert ban is not None and ban.reason == "connection-flood"
        assert p.sessions_from("127.0.0.1") == 0
        for m in honest:
            assert m._task is not None
            await asyncio.wait_for(m._task, 5)  # cut off
        refused = await open_client(p, "127.0.0.1")
        assert await refused.closed()
        await refused.close()
    finally:
        for s in flood:
            s.close()
        for m in [*honest, broken]:
            await m.close()
