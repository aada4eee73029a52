"""The asyncio adapter on a real socket: a test miner against a server with in-memory work."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import orjson
import pytest
from miner import FakeWork, Miner, make_job

from stratum_pool.coins import get_coin
from stratum_pool.protocol.actions import Action, Authorized, BlockCandidate, ShareAccepted, ShareRejected
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.server.stratum import MAX_LINE_BYTES, ExtranonceAllocator, StratumServer

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qserveraddress"


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q"):
        return bytes(22)
    raise ValueError("not a regtest address")


class Pool:
    """The parts of a pool the server needs: work, a session factory and an action sink."""

    def __init__(self) -> None:
        self.work = FakeWork()
        self.work.add(make_job("j1", target=2**200))
        self.config = SessionConfig(COIN, initial_difficulty=2e-7)
        self.rules = self.config.make_rules()
        self.allocator = ExtranonceAllocator(prefix=b"\x07")
        self.actions: list[Action] = []
        self.ids = itertools.count(1)
        self.server = StratumServer("127.0.0.1", 0, self.new_session, self.actions.append,
                                    allocator=self.allocator, tick_seconds=0.05)  # fmt: skip

    def new_session(self, peer: str) -> Session:
        en1 = self.allocator.allocate()
        return Session(self.config, self.work, check_address, en1.hex(), en1, lambda: 1_700_000_100.0,
                       rules=self.rules)  # fmt: skip

    def miner(self, **kwargs: object) -> Miner:
        return Miner("127.0.0.1", self.server.port, COIN, ADDRESS, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    p = Pool()
    await p.server.start()
    yield p
    await p.server.close()


async def read_line(reader: asyncio.StreamReader) -> dict[str, object]:
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line, "connection closed"
    return orjson.loads(line)  # type: ignore[no-any-return]


async def test_esp_miner_connects_and_shares_are_accepted(pool: Pool) -> None:
    async with pool.miner(suggest_difficulty=4e-7) as miner:
        assert miner.extranonce1[:1] == b"\x07" and miner.extranonce2_size == 4
        assert miner.version_mask == COIN.version_rolling_mask
        assert miner.difficulty == 4e-7
        for _ in range(3):
            reply = await miner.mine_share()
            assert reply["result"] is True, reply
    accepted = [a for a in pool.actions if isinstance(a, ShareAccepted)]
    assert len(accepted) == 3 and all(a.address == ADDRESS and a.difficulty == 4e-7 for a in accepted)
    assert any(isinstance(a, Authorized) for a in pool.actions)


@pytest.mark.parametrize("order", ["cgminer", "cpuminer"])
async def test_other_handshake_orders(pool: Pool, order: str) -> None:
    async with pool.miner(order=order) as miner:
        assert (await miner.mine_share())["result"] is True


async def test_rejections_reach_the_pool_and_the_miner_stays_connected(pool: Pool) -> None:
    async with pool.miner() as miner:
        share = miner.find()
        assert (await miner.submit_share(share))["result"] is True
        reply = await miner.submit_share(share)
        assert reply["error"][0] == 22
        assert (await miner.mine_share())["result"] is True
    assert [a.reason for a in pool.actions if isinstance(a, ShareRejected)] == ["duplicate"]


async def test_broadcast_sends_new_work_and_stale_shares_are_21(pool: Pool) -> None:
    async with pool.miner() as miner:
        old = miner.find()
        pool.work.add(make_job("j2", prevhash=b"\x22" * 32, height=102, target=2**255))
        assert pool.server.broadcast(True, pool.work) == 1
        job = await miner.wait_job()
        assert job.job_id == "j2" and job.clean
        assert (await miner.submit_share(old))["error"][0] == 21
        assert (await miner.mine_share())["result"] is True
    assert [a for a in pool.actions if isinstance(a, BlockCandidate)]


async def test_lines_split_across_packets_and_several_per_packet(pool: Pool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.server.port)
    subscribe = b'{"id": 1, "method": "mining.subscribe", "params": []}\n'
    for i in range(0, len(subscribe), 7):
        writer.write(subscribe[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    assert (await read_line(reader))["id"] == 1
    writer.write(
        b'{"id": 2, "method": "mining.extranonce.subscribe", "params": []}\n'
        b'{"id": 3, "method": "mining.authorize", "params": ["' + ADDRESS.encode() + b'", "x"]}\r\n'
    )
    await writer.drain()
    assert [(await read_line(reader))["id"] for _ in range(2)] == [2, 3]
    pushed = [(await read_line(reader))["method"] for _ in range(2)]
    assert pushed == ["mining.set_difficulty", "mining.notify"]
    writer.close()
    await writer.wait_closed()


async def test_overlong_line_is_answered_and_closed(pool: Pool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.server.port)
    writer.write(b"x" * (MAX_LINE_BYTES + 10))
    await writer.drain()
    reply = await read_line(reader)
    assert reply["error"][0] == 20  # type: ignore[index]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_garbage_closes_the_connection_and_releases_the_extranonce(pool: Pool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.server.port)
    await asyncio.sleep(0.05)
    assert len(pool.allocator) == 1
    writer.write(b"\x16\x03\x01 TLS hello\n")
    await writer.drain()
    assert (await read_line(reader))["error"] is not None
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await asyncio.sleep(0.05)
    assert len(pool.allocator) == 0 and pool.server.sessions == []


async def test_tick_lowers_difficulty_of_a_silent_miner(pool: Pool) -> None:
    now = [1_700_000_100.0]
    pool.server.session_factory = lambda peer: Session(
        pool.config, pool.work, check_address, "t", pool.allocator.allocate(), lambda: now[0]
    )
    async with pool.miner() as miner:
        now[0] += 1000
        job = await miner.wait_job()
        assert job.difficulty < 2e-7


def test_allocator_is_unique_and_wraps_with_its_prefix() -> None:
    allocator = ExtranonceAllocator(prefix=b"\x01\x02\x03", size=4, start=254)
    first = [allocator.allocate() for _ in range(3)]
    assert first == [bytes.fromhex("010203fe"), bytes.fromhex("010203ff"), bytes.fromhex("01020300")]
    allocator.release(first[0])
    seen = {allocator.allocate() for _ in range(254)}
    assert len(seen) == 254 and first[0] in seen
    with pytest.raises(RuntimeError):
        allocator.allocate()
