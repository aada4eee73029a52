"""The share recorder (the pool's hot path into the spool), and the end-to-end promise: a share acknowledged
to a miner survives ``kill -9`` of the pool and lands in PostgreSQL exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from stratum_pool.protocol.actions import ShareAccepted, ShareRejected
from stratum_pool.rewards.crediting import credit_block
from stratum_pool.shares.names import split_user
from stratum_pool.store.loader import SpoolLoader
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import BlockRecord, RejectedRecord, ShareRecord, ShareSpool

COIN = "litecoin-regtest"
T0 = 1_700_000_000.0


def zero() -> float:
    return 0.0


def accepted(worker: str = "addr1.rig", t: float = T0, *, block: bool = False) -> ShareAccepted:
    return ShareAccepted("sess1", worker, worker.partition(".")[0], "job1", 77, 0.5, 1.25, block, t)


def rejected(worker: str = "addr1.rig", t: float = T0, reason: str = "stale") -> ShareRejected:
    return ShareRejected("sess1", worker, "job1", 21, reason, t)


def test_worker_name_is_everything_after_the_first_dot() -> None:
    assert split_user("addr.rig.a") == ("addr", "rig.a")
    assert split_user("addr") == ("addr", "")
    assert split_user("addr.") == ("addr", "")


async def test_share_is_spooled_and_its_future_resolves_when_durable(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    recorder = ShareRecorder(spool, clock=lambda: T0)
    seq, future = recorder.share(COIN, accepted(), user_agent="bfgminer/5")
    assert not future.done()
    await future
    assert spool.read_from(0, 10) == [ShareRecord(seq, T0, COIN, "addr1", "rig", "bfgminer/5", 0.5, 1.25, 77, False)]
    await spool.close()


async def test_block_share_seq_is_found_from_the_candidate(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    recorder = ShareRecorder(spool)
    recorder.share(COIN, accepted("a.x", T0))
    seq, _ = recorder.share(COIN, accepted("a.x", T0 + 1, block=True))
    assert recorder.block_share_seq("a.x", T0 + 1) == seq
    assert recorder.block_share_seq("a.x", T0) is None
    await recorder.stop()
    await spool.close()


async def test_rejects_are_counted_per_worker_reason_and_minute_and_flushed_on_stop(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    recorder = ShareRecorder(spool)
    for t in (T0, T0 + 1, T0 + 2):
        recorder.rejected(COIN, rejected(t=t), "addr1")
    recorder.rejected(COIN, rejected(t=T0 + 60), "addr1")
    recorder.rejected(COIN, rejected(reason="duplicate"), "addr1")
    recorder.rejected(COIN, rejected("nobody"), "")  # never authorized: counted, not recorded
    assert spool.read_from(0, 10) == []
    await recorder.stop()
    minute = T0 - T0 % 60
    got = {(r.time, r.reason, r.count) for r in spool.read_from(0, 10) if isinstance(r, RejectedRecord)}
    assert got == {(minute, "stale", 3), (minute + 60, "stale", 1), (minute, "duplicate", 1)}
    assert recorder.stats.rejected == 5 and recorder.stats.rejected_dropped == 1
    await spool.close()


async def test_rejects_are_flushed_periodically(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    recorder = ShareRecorder(spool, reject_flush_seconds=0.05)
    recorder.start()
    recorder.rejected(COIN, rejected(), "addr1")
    await asyncio.sleep(0.2)
    assert [type(r) for r in spool.read_from(0, 10)] == [RejectedRecord]
    await recorder.stop()
    await spool.close()


async def test_block_is_recorded_with_its_share(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    recorder = ShareRecorder(spool, clock=lambda: T0 + 5)
    seq, _ = recorder.share(COIN, accepted(block=True))
    await recorder.block(COIN, height=77, hash_display="ab" * 32, reward=12_345, finder_address="addr1",
                         finder_worker="addr1.rig", share_seq=seq, network_difficulty=0.001, scheme="pplns",
                         accepted=True, submit_result="", fee_ppm=5000, fee_address="fee1", pplns_window_factor=3.0)
    got = spool.read_from(seq, 10)
    assert got == [BlockRecord(seq + 1, T0 + 5, COIN, 77, "ab" * 32, 12_345, "addr1", "rig", seq, 0.001, "pplns",
                               True, "", 5000, "fee1", 3.0)]
    await spool.close()


# A pool stand-in: shares acknowledged (printed) only after their durability future resolved.
WRITER = r"""
import asyncio, sys, time
from stratum_pool.protocol.actions import ShareAccepted
from stratum_pool.shares.names import split_user
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import ShareSpool

async def one(recorder, i):
    seq, durable = recorder.share("bitcoin-regtest", ShareAccepted(
        "s", f"addr{i % 7}.rig{i % 3}", f"addr{i % 7}", "j", 100, 1.0 + i % 5, 2.0, False, time.time()))
    await durable
    sys.stdout.write(f"{seq}\n")
    sys.stdout.flush()

async def main():
    recorder = ShareRecorder(ShareSpool(sys.argv[1], 0))
    tasks = set()
    i = 0
    while True:
        for _ in range(25):
            task = asyncio.ensure_future(one(recorder, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.sleep(0.0005)

asyncio.run(main())
"""


async def test_acknowledged_shares_survive_kill_9_and_load_exactly_once(tmp_path: Path, pg_dsn: str) -> None:
    spool_dir = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    acknowledged: list[int] = []
    for _ in range(2):  # the second run continues the same spool after the first was killed
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(spool_dir)], stdout=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout is not None
        target = len(acknowledged) + 3000
        while len(acknowledged) < target:
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            acknowledged.append(int(line))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()  # acknowledged before it died, still in the pipe
        proc.wait()
        acknowledged.extend(int(x) for x in rest.split())
    spool = ShareSpool(spool_dir, 0)
    loader = SpoolLoader(spool, pg_dsn, 0, credit_block)
    loaded = loader.load_all()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT seq, count(*) FROM shares GROUP BY seq").fetchall()
    in_db = {int(seq): int(n) for seq, n in rows}
    assert all(n == 1 for n in in_db.values())
    missing = [s for s in acknowledged if s not in in_db]
    assert missing == []
    assert loaded >= len(set(acknowledged)) == len(acknowledged)
    print(f"\nkill -9: {len(acknowledged)} acknowledged, {loaded} loaded (the rest were durable, not yet answered)")
    await spool.close()
