"""Session resume against a real server on 127.0.0.1 (in-memory work): a cgminer-like miner that subscribes
again with its previous session id gets its extranonce1 back, with its difficulty and its jobs' difficulties,
so a share found for a job sent before the disconnect is accepted and a duplicate is still refused."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from miner import FoundShare, Miner
from test_abuse import ADDRESS, COIN, LIMITS, POLICY, AbusePool, Client, error_code

from stratum_pool.protocol.session import SessionConfig
from stratum_pool.server.stratum import ResumeBook


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pool() -> AsyncIterator[tuple[AbusePool, Clock]]:
    p = AbusePool(LIMITS, POLICY, SessionConfig(COIN, initial_difficulty=2e-7))
    clock = Clock()
    p.server.resumes = ResumeBook(p.allocator, 60, clock=clock)
    await p.server.start()
    yield p, clock
    await p.server.close()


def miner(p: AbusePool, worker: str = "rig", source: str = "127.0.0.1", **kwargs: Any) -> Miner:
    return Miner("127.0.0.1", p.server.port, COIN, ADDRESS, worker, order="cgminer", source=source, **kwargs)


async def gone(p: AbusePool, count: int) -> None:
    for _ in range(250):
        if len(p.server.resumes or ()) == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server did not see the disconnect")


async def first_session(p: AbusePool, source: str = "127.0.0.1") -> tuple[Miner, FoundShare, FoundShare]:
    """A miner on a raised difficulty with one share submitted and one found but not yet sent."""
    m = await miner(p, source=source).start()
    await m.request("mining.suggest_difficulty", [4e-7])  # the pool's "start" policy: vardiff from 4e-7
    await m.wait_job()
    assert m.difficulty == 4e-7
    sent = m.find()
    assert (await m.submit_share(sent))["result"] is True
    in_flight = m.find()  # found when the connection drops
    return m, sent, in_flight


async def test_reconnect_with_the_session_id_resumes(pool: tuple[AbusePool, Clock]) -> None:
    p, _ = pool
    old, sent, in_flight = await first_session(p)
    en1, session_id = old.extranonce1, old.session_id
    assert session_id == en1.hex()
    await old.close()
    await gone(p, 1)
    back = miner(p)
    back.resume_id = session_id
    await back.start()
    try:
        assert back.extranonce1 == en1 and back.session_id == session_id  # the same extranonce1
        assert back.difficulty == 4e-7  # its difficulty, not the pool's 2e-7 start
        assert (await back.submit_share(in_flight))["result"] is True  # a job sent before the disconnect
        assert error_code(await back.submit_share(sent)) == 22  # its duplicate set came back too
        assert error_code(await back.submit_share(in_flight)) == 22
        back._en2 = itertools.count(1000)  # a resumed miner rolls on where it was, past what it sent
        assert (await back.mine_share())["result"] is True
        assert p.server.resumes is not None and p.server.resumes.resumed == 1
    finally:
        await back.close()


async def test_no_resume_for_others_late_or_unknown_ids(pool: tuple[AbusePool, Clock]) -> None:
    p, clock = pool
    old, _, in_flight = await first_session(p)
    session_id = old.session_id
    await old.close()
    await gone(p, 1)
    # another address naming the id, and an id never given: a new extranonce1 each, at the pool's difficulty
    for source, asked in (("127.0.0.2", session_id), ("127.0.0.1", "deadbeef")):
        other = miner(p, "other", source=source)
        other.resume_id = asked
        await other.start()
        assert other.extranonce1.hex() != session_id and other.difficulty == 2e-7
        # the old job's share is the other extranonce1's work now: not a valid share for this one
        assert error_code(await other.submit_share(in_flight)) == 23
        await other.close()
    await gone(p, 3)
    # past resume_seconds the id is forgotten
    clock.now += 61
    late = miner(p)
    late.resume_id = session_id
    await late.start()
    assert late.extranonce1.hex() != session_id and late.difficulty == 2e-7
    await late.close()


async def test_resubscribe_on_a_live_connection_sends_set_extranonce(pool: tuple[AbusePool, Clock]) -> None:
    """A miner that took mining.extranonce.subscribe and subscribes again with its previous id on the same
    connection: its extranonce changes, so the pool sends mining.set_extranonce (and fresh work on it)."""
    p, _ = pool
    old, _, in_flight = await first_session(p)
    session_id = old.session_id
    await old.close()
    await gone(p, 1)
    c = await Client.open(p.server.port, "127.0.0.1")
    try:
        assert (await c.call("mining.extranonce.subscribe", []))["result"] is True
        first = await c.call("mining.subscribe", ["cgminer/4.12"])
        assert first["result"][1] != session_id
        assert (await c.call("mining.authorize", [f"{ADDRESS}.rig", "x"]))["result"] is True
        again = await c.call("mining.subscribe", ["cgminer/4.12", session_id])
        assert again["result"][1] == session_id
        seen: list[dict[str, Any]] = []
        while not any(m.get("method") == "mining.notify" for m in seen):
            seen.append(await c.line())
        set_extranonce = [m for m in seen if m.get("method") == "mining.set_extranonce"]
        assert set_extranonce and set_extranonce[0]["params"] == [session_id, 4]
        assert (await c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}]))
        fields = [f"{ADDRESS}.rig", in_flight.job_id, in_flight.extranonce2, in_flight.ntime, in_flight.nonce]
        if in_flight.version_bits is not None:
            fields.append(in_flight.version_bits)
        assert (await c.call("mining.submit", fields))["result"] is True
        assert error_code(await c.call("mining.submit", fields)) == 22
    finally:
        await c.close()


async def test_without_extranonce_subscribe_a_live_session_keeps_its_extranonce(
        pool: tuple[AbusePool, Clock]) -> None:
    p, _ = pool
    old, _, _ = await first_session(p)
    session_id = old.session_id
    await old.close()
    await gone(p, 1)
    c = await Client.open(p.server.port, "127.0.0.1")
    try:
        mine = (await c.call("mining.subscribe", ["cgminer/4.12"]))["result"][1]
        again = await c.call("mining.subscribe", ["cgminer/4.12", session_id])
        assert again["result"][1] == mine  # it cannot be told of a change: nothing changes
    finally:
        await c.close()


@pytest.mark.integration
async def test_resume_through_the_pool_on_bcoin(bcoin_node: Any) -> None:
    """The same through CoinPool (resume_seconds from the config) on a real bcoin regtest node: a share of a
    job sent before the disconnect is accepted after the resume, its duplicate refused, and a block found on
    the resumed session is accepted by the node."""
    from stratum_pool.chain.address import address_to_script
    from stratum_pool.chain.target import bits_to_target
    from stratum_pool.config import parse_settings
    from stratum_pool.pool import CoinPool

    btc = COIN
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest", "stratum_host": "127.0.0.1", "stratum_port": 0,
                      "resume_seconds": 30, "poll_interval_seconds": 0.5,
                      "vardiff": {"initial": 1e-12, "minimum": 1e-12, "suggestion_policy": "fixed"},
                      "daemons": [bcoin_node.daemon_config()]}]}
    coin = CoinPool(parse_settings(doc, address_check=address_to_script).coins[0])
    await coin.start(ready_timeout=30)
    try:
        address = bcoin_node.new_address()
        old = await Miner("127.0.0.1", coin.port, btc, address, "s9", order="cgminer").start()
        assert old.job is not None
        network = btc.diff1_target / bits_to_target(old.job.nbits)
        sent = old.find(max_difficulty=network)
        assert (await old.submit_share(sent))["result"] is True
        in_flight = old.find(max_difficulty=network)
        await old.close()
        for _ in range(250):
            if coin.server.resumes is not None and len(coin.server.resumes) == 1:
                break
            await asyncio.sleep(0.02)
        back = Miner("127.0.0.1", coin.port, btc, address, "s9", order="cgminer")
        back.resume_id = old.session_id
        await back.start()
        try:
            assert back.extranonce1 == old.extranonce1
            assert (await back.submit_share(in_flight))["result"] is True
            assert error_code(await back.submit_share(sent)) == 22
            back._en2 = itertools.count(1000)
            height = bcoin_node.rpc("getblockcount")
            assert back.job is not None
            block = back.find(min_difficulty=btc.diff1_target / bits_to_target(back.job.nbits))
            assert (await back.submit_share(block))["result"] is True
            for _ in range(500):
                if bcoin_node.rpc("getblockcount") == height + 1:
                    break
                await asyncio.sleep(0.02)
            assert bcoin_node.rpc("getblockcount") == height + 1
        finally:
            await back.close()
    finally:
        await coin.stop()
