"""The job manager: templates in, jobs per payout key out, staleness, how long old jobs stay known, and
the server fanning its jobs out to sessions (``StratumServer.broadcast``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from mainnet import gbt_from_block, read_block

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import parse_block
from stratum_pool.coins import get_coin
from stratum_pool.jobs.manager import KEEP_TEMPLATES, JobManager
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.server.stratum import StratumServer

BTC = get_coin("bitcoin", "mainnet")
ALICE = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
BOB = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
POOL = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"


def gbt(prev: str | None = None, time_shift: int = 0) -> dict[str, Any]:
    answer = gbt_from_block(parse_block(read_block(277647)), 277647, 2)
    if prev is not None:
        answer["previousblockhash"] = prev
    answer["curtime"] += time_shift
    return answer


def manager(solo: bool = True, fee_ppm: int = 0) -> JobManager:
    return JobManager(BTC, extranonce_size=8, pool_tag=b"/test/", address_to_script=lambda a: address_to_script(a, BTC),
                      solo=solo, pool_address="" if solo else POOL, fee_address=POOL if fee_ppm else "",
                      fee_ppm=fee_ppm, node_id=3, clock=lambda: 100.0)


def test_solo_jobs_pay_each_miner_and_share_the_template() -> None:
    m = manager()
    assert m.current_job(ALICE) is None
    assert m.update(gbt()) is True
    a, b = m.current_job(ALICE), m.current_job(BOB)
    assert a is not None and b is not None
    assert a.template is b.template and a.job_id != b.job_id
    assert address_to_script(ALICE, BTC) in a.coinb2 and address_to_script(BOB, BTC) in b.coinb2
    assert m.current_job(ALICE) is a  # built once per template and key
    assert a.job_id.startswith("03")  # node id prefix
    assert m.get_job(a.job_id) is a


def test_pool_mode_pays_the_pool_whoever_mines() -> None:
    m = manager(solo=False)
    m.update(gbt())
    a, b = m.current_job(ALICE), m.current_job(BOB)
    assert a is b and a is not None
    assert address_to_script(POOL, BTC) in a.coinb2
    assert m.reward_for(a) == a.template.coinbase_value


def test_solo_fee_output_and_reward() -> None:
    m = manager(fee_ppm=10_000)  # 1 %
    m.update(gbt())
    job = m.current_job(ALICE)
    assert job is not None
    value = job.template.coinbase_value
    assert m.reward_for(job) == value - value // 100
    assert address_to_script(POOL, BTC) in job.coinb2


def test_same_tip_refresh_is_not_a_new_block_and_old_jobs_stay_valid() -> None:
    m = manager()
    m.update(gbt())
    first = m.current_job(ALICE)
    assert first is not None and first.clean_jobs
    assert m.update(gbt(time_shift=30)) is False
    second = m.current_job(ALICE)
    assert second is not None and second is not first and not second.clean_jobs
    assert not m.is_stale(first) and m.get_job(first.job_id) is first


def test_a_refresh_on_the_same_block_holds_one_copy_of_the_transactions_it_shares() -> None:
    m = manager()
    m.update(gbt())
    first = m.template
    assert first is not None and len(first.transactions) > 3
    refreshed = gbt(time_shift=30)
    refreshed["transactions"][0]["data"] += "00"  # the same txid, other bytes (a witness can change): its own
    del refreshed["transactions"][1]  # one left the mempool
    assert m.update(refreshed) is False
    second = m.template
    assert second is not None and second.txids[0] == first.txids[0]
    assert second.transactions[0] == first.transactions[0] + b"\0"
    assert all(a is b for a, b in zip(second.transactions[1:], first.transactions[2:], strict=True))
    assert all(a is b for a, b in zip(second.txids[1:], first.txids[2:], strict=True))
    # the work is the refreshed template's, whichever objects hold its bytes
    job = m.current_job(ALICE)
    assert job is not None and job.template is second
    assert m.update(gbt(prev="11" * 32)) is True  # a new block: taken as it came, nothing looked up
    third = m.template
    assert third is not None
    assert not any(a is b for a, b in zip(third.transactions[2:], first.transactions[2:], strict=True))


def test_new_tip_makes_old_jobs_stale_but_known_for_a_while() -> None:
    m = manager()
    m.update(gbt())
    old = m.current_job(ALICE)
    assert old is not None
    assert m.update(gbt(prev="11" * 32)) is True
    assert m.is_stale(old) and m.get_job(old.job_id) is old
    for i in range(KEEP_TEMPLATES):
        m.update(gbt(prev=f"{i:02x}" * 32))
        m.current_job(ALICE)
    assert m.get_job(old.job_id) is None


def test_bad_address_is_refused_when_the_job_is_built() -> None:
    m = manager()
    m.update(gbt())
    with pytest.raises(ValueError):
        m.current_job("not-an-address")


# ------------------------------------------------------------------- fanning jobs out to sessions


class _RecordingTransport:
    """A real transport with its writes logged (and, for a slow reader, a large write buffer)."""

    def __init__(self, inner: Any, name: str, log: list[str], buffered: int | None = None) -> None:
        self.inner = inner
        self.name = name
        self.log = log
        self.buffered = buffered
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.log.append(f"write {self.name}")
        self.inner.write(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered if self.buffered is not None else int(self.inner.get_write_buffer_size())

    def abort(self) -> None:
        self.aborted = True
        self.inner.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Fanout:
    """A StratumServer serving a JobManager's work to real socket clients."""

    def __init__(self) -> None:
        self.jobs = manager()
        self.jobs.update(gbt())
        self.config = SessionConfig(BTC, initial_difficulty=2.0, vardiff_enabled=False)
        self.rules = self.config.make_rules()
        self.ids = itertools.count(1)
        self.server = StratumServer("127.0.0.1", 0, self.session, lambda action: None)
        self.clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def session(self, peer: str) -> Session:
        en1 = next(self.ids).to_bytes(4, "big")
        return Session(self.config, self.jobs, lambda a: address_to_script(a, BTC), en1.hex(), en1,
                       lambda: 100.0, rules=self.rules)

    async def connect(self, address: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        writer.write(orjson.dumps({"id": 1, "method": "mining.subscribe", "params": []}) + b"\n"
                     + orjson.dumps({"id": 2, "method": "mining.authorize", "params": [f"{address}.w", ""]})
                     + b"\n")
        seen = []
        while "mining.notify" not in seen:  # subscribe answer, authorize answer, difficulty, first job
            seen.append(str((await read(reader)).get("method")))
        self.clients.append((reader, writer))

    def connections(self) -> list[Any]:
        return list(self.server._connections)


async def read(reader: asyncio.StreamReader) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(reader.readline(), 5))  # type: ignore[no-any-return]


@pytest.fixture
async def fanout() -> AsyncIterator[_Fanout]:
    f = _Fanout()
    await f.server.start()
    yield f
    for _, writer in f.clients:
        writer.close()
    await f.server.close()


async def test_broadcast_writes_each_miner_its_line_in_one_pass(fanout: _Fanout) -> None:
    for address in (ALICE, BOB, ALICE):
        await fanout.connect(address)
    log: list[str] = []
    for i, conn in enumerate(fanout.connections()):
        conn.transport = _RecordingTransport(conn.transport, str(i), log)
        push_job, job_notified = conn.session.push_job, conn.session.job_notified

        def recording_push_job(*args: Any, _i: int = i, _push: Any = push_job) -> Any:
            log.append(f"push {_i}")
            return _push(*args)

        def recording_job_notified(job: Any, _i: int = i, _notified: Any = job_notified) -> Any:
            log.append(f"notified {_i}")
            return _notified(job)

        conn.session.push_job = recording_push_job
        conn.session.job_notified = recording_job_notified
    assert fanout.jobs.update(gbt(prev="11" * 32)) is True
    assert fanout.server.broadcast(True, fanout.jobs) == 3
    # one pass: each session's bookkeeping (a C call) and its write, no action list built per session
    assert log == ["notified 0", "write 0", "notified 1", "write 1", "notified 2", "write 2"]
    notifies = [await read(reader) for reader, _ in fanout.clients]
    assert all(n["method"] == "mining.notify" and n["params"][-1] is True for n in notifies)
    # solo: one job per payout address, the same line for the same address
    assert notifies[0] == notifies[2] and notifies[0]["params"][0] != notifies[1]["params"][0]
    # the bookkeeping happened: the job is judged by the difficulty it was sent with, even after a raise
    session = fanout.connections()[0].session
    session.vardiff.difficulty = 8.0
    assert session.required_difficulty(notifies[0]["params"][0]) == 2.0


async def test_broadcast_sends_a_pending_difficulty_before_the_job(fanout: _Fanout) -> None:
    await fanout.connect(ALICE)
    await fanout.connect(BOB)
    changed = fanout.connections()[1].session
    changed.vardiff.difficulty = 4.0  # not sent yet
    fanout.jobs.update(gbt(prev="22" * 32))
    assert fanout.server.broadcast(True, fanout.jobs) == 2
    (r0, _), (r1, _) = fanout.clients
    assert (await read(r0))["method"] == "mining.notify"
    first, second = await read(r1), await read(r1)
    assert first == {"id": None, "method": "mining.set_difficulty", "params": [4]}
    assert second["method"] == "mining.notify" and second["params"][-1] is True
    assert changed.sent_difficulty == 4.0


async def test_broadcast_drops_a_miner_that_does_not_read(fanout: _Fanout) -> None:
    await fanout.connect(ALICE)
    await fanout.connect(BOB)
    log: list[str] = []
    slow, fine = fanout.connections()
    slow.transport = _RecordingTransport(slow.transport, "slow", log, buffered=10**9)
    fine.transport = _RecordingTransport(fine.transport, "fine", log)
    fanout.jobs.update(gbt(prev="33" * 32))
    assert fanout.server.broadcast(True, fanout.jobs) == 2
    assert log == ["write slow", "write fine"]
    assert slow.transport.aborted and not fine.transport.aborted
    assert (await read(fanout.clients[1][0]))["method"] == "mining.notify"
