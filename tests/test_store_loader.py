"""The share loader against a real PostgreSQL: rows, statistics, partitions, blocks with credits, and
exactly-once loading through outages and crashes."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.rewards.crediting import credit_block
from stratum_pool.store import shares as q
from stratum_pool.store.loader import TRICKLE_RECORDS, BlockIds, SpoolLoader, _us
from stratum_pool.store.spool import BlockRecord, RejectedRecord, ShareRecord, ShareSpool, SpoolRecord

COIN = "bitcoin-regtest"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NODE = 3
DEAD_DSN = "postgresql://postgres@127.0.0.1:9/nothing"  # the discard port: nothing listens


def zero() -> float:
    return 0.0


def share(address: str, difficulty: float = 1.0, *, t: float = T0, worker: str = "rig", achieved: float | None = None,
          is_block: bool = False, agent: str = "") -> ShareRecord:
    return ShareRecord(0, t, COIN, address, worker, agent, difficulty,
                       achieved if achieved is not None else difficulty * 2, 101, is_block)


def block(share_seq: int, *, reward: int = 1000, scheme: str = "pplns", netdiff: float = 5.0, factor: float = 2.0,
          finder: str = "finder", accepted: bool = True, fee_ppm: int = 10_000, fee_address: str = "feeaddr",
          hash_display: str | None = None) -> BlockRecord:
    return BlockRecord(0, T0 + 30, COIN, 101, hash_display or f"{share_seq:064x}", reward, finder, "rig", share_seq,
                       netdiff, scheme, accepted, "" if accepted else "rejected: bad-txns", fee_ppm, fee_address,
                       factor)


async def spool_with(directory: Path, records: list[SpoolRecord], **kw: Any) -> tuple[ShareSpool, list[int]]:
    spool = ShareSpool(directory, NODE, clock=zero, **kw)
    seqs = await append_all(spool, records)
    return spool, seqs


async def append_all(spool: ShareSpool, records: list[SpoolRecord]) -> list[int]:
    appended = [spool.append(r) for r in records]
    await asyncio.gather(*(f for _, f in appended))
    return [s for s, _ in appended]


def query(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def one(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> Any:
    return query(dsn, statement, params)[0][0]


def credits_by_address(dsn: str, block_hash: str) -> dict[str, int]:
    rows = query(dsn, "SELECT a.address, c.amount FROM credits c JOIN blocks b ON b.id = c.block_id"
                      " JOIN accounts a ON a.id = c.account_id WHERE b.hash = %s", (block_hash,))
    return {a: m for a, m in rows}


# ----- shares, accounts, workers, statistics


async def test_shares_are_copied_with_their_rows(tmp_path: Path, pg_dsn: str) -> None:
    records: list[SpoolRecord] = [share("alice", 2.0, agent="cgminer/4"), share("bob", 3.5, t=T0 + 1, worker=""),
                                  share("alice", 4.0, t=T0 + 2, worker="rig2", achieved=1e12, is_block=True)]
    spool, seqs = await spool_with(tmp_path, records)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, clock=lambda: T0 + 100)
    assert loader.load_all() == 3
    rows = query(pg_dsn, "SELECT s.time, c.key, a.address, w.name, s.difficulty, s.achieved, s.height, s.is_block,"
                         " s.node_id, s.seq FROM shares s JOIN coins c ON c.id = s.coin_id"
                         " JOIN accounts a ON a.id = s.account_id JOIN workers w ON w.id = s.worker_id"
                         " AND w.account_id = a.id ORDER BY s.seq")
    assert rows == [
        (datetime.fromtimestamp(T0, UTC), COIN, "alice", "rig", 2.0, 4.0, 101, False, NODE, seqs[0]),
        (datetime.fromtimestamp(T0 + 1, UTC), COIN, "bob", "", 3.5, 7.0, 101, False, NODE, seqs[1]),
        (datetime.fromtimestamp(T0 + 2, UTC), COIN, "alice", "rig2", 4.0, 1e12, 101, True, NODE, seqs[2]),
    ]
    assert query(pg_dsn, "SELECT key, symbol, maturity FROM coins") == [(COIN, "rBTC", 100)]
    assert one(pg_dsn, "SELECT user_agent FROM workers WHERE name = 'rig'") == "cgminer/4"
    assert one(pg_dsn, "SELECT best_difficulty FROM workers WHERE name = 'rig2'") == 1e12
    assert one(pg_dsn, "SELECT seq FROM spool_checkpoints WHERE node_id = %s", (NODE,)) == seqs[-1]
    assert loader.stats().checkpoint == seqs[-1] and loader.stats().backlog == 0
    assert loader.stats().shares_loaded == 3
    await spool.close()


async def test_daily_partitions_are_created_ahead(tmp_path: Path, pg_dsn: str) -> None:
    day = 86_400.0
    spool, _ = await spool_with(tmp_path, [share("alice", t=T0), share("alice", t=T0 + 3 * day)])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    parts = sorted(r[0] for r in query(pg_dsn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
                                               " ON c.oid = i.inhrelid WHERE i.inhparent = 'shares'::regclass"))
    assert parts == ["shares_20231114", "shares_20231117", "shares_20231118"]
    assert one(pg_dsn, "SELECT count(*) FROM shares_20231117") == 1
    await spool.close()


async def test_a_share_rounding_into_the_next_day_finds_its_partition(tmp_path: Path, pg_dsn: str) -> None:
    last_instant = 1_700_006_400.0 - 4e-7  # 2023-11-14 23:59:59.9999996: 2023-11-15 00:00:00 to the microsecond
    spool, _ = await spool_with(tmp_path, [share("alice", t=last_instant), share("alice", t=T0 + 3 * 86_400.0)])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    assert one(pg_dsn, "SELECT time FROM shares_20231115") == datetime(2023, 11, 15, tzinfo=UTC)
    assert one(pg_dsn, "SELECT minute FROM share_stats_minute ORDER BY minute LIMIT 1") == datetime(
        2023, 11, 14, 23, 59, tzinfo=UTC)  # the statistics go by the share's time, as before
    await spool.close()


async def test_statistics_per_minute_and_day_count_accepted_rejected_and_difficulty(tmp_path: Path,
                                                                                   pg_dsn: str) -> None:
    minute = datetime.fromtimestamp(T0 - T0 % 60, UTC)
    records: list[SpoolRecord] = [
        share("alice", 2.0, t=T0), share("alice", 3.0, t=T0 + 5), share("alice", 1.0, t=T0 + 70),
        RejectedRecord(0, T0 - T0 % 60, COIN, "alice", "rig", "stale", 4),
        RejectedRecord(0, T0 - T0 % 60, COIN, "carol", "", "low-difficulty", 2),
    ]
    spool, _ = await spool_with(tmp_path, records)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=2)  # statistics add up across batches
    assert loader.load_all() == 5
    rows = query(pg_dsn, "SELECT a.address, s.minute, s.accepted, s.rejected, s.difficulty FROM share_stats_minute s"
                         " JOIN workers w ON w.id = s.worker_id JOIN accounts a ON a.id = w.account_id"
                         " ORDER BY a.address, s.minute")
    assert rows == [("alice", minute, 2, 4, 5.0), ("alice", minute.replace(minute=14), 1, 0, 1.0),
                    ("carol", minute, 0, 2, 0.0)]
    days = query(pg_dsn, "SELECT a.address, s.day, s.accepted, s.rejected, s.difficulty FROM share_stats_day s"
                         " JOIN workers w ON w.id = s.worker_id JOIN accounts a ON a.id = w.account_id"
                         " ORDER BY a.address")
    assert days == [("alice", date(2023, 11, 14), 3, 4, 6.0), ("carol", date(2023, 11, 14), 0, 2, 0.0)]
    assert one(pg_dsn, "SELECT last_seen FROM workers WHERE name = 'rig'") == datetime.fromtimestamp(T0 + 70, UTC)
    assert loader.stats().rejected_loaded == 2
    await spool.close()


# ----- exactly once


async def test_nothing_is_loaded_twice_by_a_new_loader_after_a_crash(tmp_path: Path, pg_dsn: str) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice", float(i + 1)) for i in range(50)])
    assert SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=20).load_all() == 50
    await spool.close()
    # the pool died: a new process opens the same spool directory and database
    reopened = ShareSpool(tmp_path, NODE, clock=zero)
    again = SpoolLoader(reopened, pg_dsn, NODE, credit_block)
    assert again.load_all() == 0
    await append_all(reopened, [share("bob")])
    assert again.load_all() == 1
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 51
    assert one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == 51
    await reopened.close()


async def test_a_failure_inside_the_transaction_loads_the_batch_again_whole(
        tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice", 1.0) for _ in range(10)])
    real = q.set_checkpoint

    def crash(*args: Any) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(q, "set_checkpoint", crash)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block)
    with pytest.raises(psycopg.OperationalError):
        loader.load_batch()  # the shares were COPYed, then the transaction died
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 0
    monkeypatch.setattr(q, "set_checkpoint", real)
    assert loader.load_all() == 10
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 10
    await spool.close()


async def test_a_crash_after_commit_before_the_spool_is_trimmed_loads_nothing_twice(
        tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice") for _ in range(10)])
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=4)
    loader.load_batch()
    monkeypatch.setattr(spool, "truncate_through", lambda seq: (_ for _ in ()).throw(OSError("gone")))
    with pytest.raises(OSError):
        loader.load_batch()  # committed, but the loader never learnt it
    monkeypatch.undo()
    total = 0
    for _ in range(10):
        try:
            total += loader.load_all()
            break
        except Exception:
            continue
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 10
    assert one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == 10
    await spool.close()


async def test_a_killed_connection_is_replaced_and_nothing_is_lost_or_doubled(tmp_path: Path, pg_dsn: str) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice") for _ in range(30)])
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=10)
    loader.load_batch()
    query(pg_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE"
                  " 'stratum-pool-loader-%%' AND datname = current_database()")  # this test's own only
    with pytest.raises(psycopg.OperationalError):
        loader.load_batch()
    assert loader.load_all() == 20
    assert one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == one(pg_dsn, "SELECT count(*) FROM shares") == 30
    await spool.close()


async def test_outage_spools_and_replays_exactly_once_with_backoff(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, DEAD_DSN, NODE, credit_block, batch_max=100, backoff_initial=0.01,
                         backoff_max=0.05,
                         connect_timeout=1)
    loader.start()
    try:
        await append_all(spool, [share("alice") for _ in range(250)])
        await asyncio.sleep(0.3)
        stats = loader.stats()
        assert stats.failures >= 2 and stats.last_error and not stats.connected
        assert stats.backlog == 250 and stats.spool_bytes > 0
        loader.dsn = pg_dsn  # the database is back
        await append_all(spool, [share("bob") for _ in range(50)])
        deadline = time.monotonic() + 10
        while loader.stats().checkpoint < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert loader.stats().failures == 0 and loader.stats().backlog == 0
    finally:
        await loader.stop()
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 300
    assert one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == 300
    await spool.close()


def test_backoff_doubles_up_to_the_cap_with_jitter(tmp_path: Path) -> None:
    loader = SpoolLoader(ShareSpool(tmp_path, clock=zero), DEAD_DSN, 0, credit_block, backoff_initial=0.5,
                         backoff_max=30.0)
    delays = []
    for failures in range(1, 10):
        loader._failures = failures
        delays.append(loader._backoff())
    assert all(0.25 * 2 ** (i) <= d <= min(30.0, 0.5 * 2 ** i) for i, d in enumerate(delays[:6]))
    assert all(15.0 <= d <= 30.0 for d in delays[6:])


async def test_stop_drains_what_is_spooled(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, idle_seconds=30.0)
    loader.start()
    await append_all(spool, [share("alice") for _ in range(5)])
    await loader.stop()
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 5
    await spool.close()


# ----- blocks and credits


async def test_pplns_window_is_exactly_n_difficulty_ending_at_the_block_share(tmp_path: Path, pg_dsn: str) -> None:
    records: list[SpoolRecord] = [share("old", 100.0), share("alice", 4.0), share("bob", 4.0),
                                  share("carol", 4.0, is_block=True)]
    spool, seqs = await spool_with(tmp_path, records)
    # a share after the block's own one, and the block record after it: not in the window
    await append_all(spool, [share("dave", 50.0), block(seqs[3], netdiff=5.0, factor=2.0, finder="carol")])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    # N = 2 x 5 = 10: carol 4, bob 4, and 2 of alice's 4; fee 1% = 10, the rest 990 split 2:4:4
    assert credits_by_address(pg_dsn, f"{seqs[3]:064x}") == {"feeaddr": 10, "alice": 198, "bob": 396, "carol": 396}
    assert one(pg_dsn, "SELECT is_fee_account FROM accounts WHERE address = 'feeaddr'") is True
    row = query(pg_dsn, "SELECT b.status, b.scheme, b.share_seq, b.node_id, a.address, w.name, b.reward,"
                        " b.network_difficulty, b.pplns_window_factor FROM blocks b"
                        " JOIN accounts a ON a.id = b.finder_account_id JOIN workers w ON w.id = b.finder_worker_id")
    assert row == [("pending", "pplns", seqs[3], NODE, "carol", "rig", 1000, 5.0, 2.0)]
    assert query(pg_dsn, "SELECT DISTINCT scheme, status FROM credits") == [("pplns", "pending")]
    await spool.close()


async def test_pplns_with_fewer_shares_than_n_uses_them_all(tmp_path: Path, pg_dsn: str) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 1.0), share("bob", 3.0)])
    await append_all(spool, [block(seqs[1], reward=400, netdiff=1000.0, fee_ppm=0)])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    assert credits_by_address(pg_dsn, f"{seqs[1]:064x}") == {"alice": 100, "bob": 300}
    await spool.close()


async def test_prop_rounds_end_at_each_accepted_block(tmp_path: Path, pg_dsn: str) -> None:
    spool, first = await spool_with(tmp_path, [share("alice", 1.0), share("bob", 1.0)])
    await append_all(spool, [block(first[1], scheme="prop", fee_ppm=0, hash_display="aa" * 32)])
    # a block the daemons refused does not end the round
    second = await append_all(spool, [share("carol", 1.0), share("carol", 1.0)])
    await append_all(spool, [block(second[1], scheme="prop", accepted=False, hash_display="bb" * 32)])
    third = await append_all(spool, [share("alice", 2.0)])
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block)
    loader.load_all()  # the first block loads in a batch before the last one
    await append_all(spool, [block(third[0], scheme="prop", fee_ppm=0, hash_display="cc" * 32)])
    loader.load_all()
    assert credits_by_address(pg_dsn, "aa" * 32) == {"alice": 500, "bob": 500}
    assert credits_by_address(pg_dsn, "bb" * 32) == {}
    assert one(pg_dsn, "SELECT status FROM blocks WHERE hash = %s", ("bb" * 32,)) == "orphaned"
    assert one(pg_dsn, "SELECT submit_result FROM blocks WHERE hash = %s", ("bb" * 32,)) == "rejected: bad-txns"
    assert credits_by_address(pg_dsn, "cc" * 32) == {"carol": 500, "alice": 500}
    await spool.close()


async def test_solo_credits_the_finder_and_the_fee(tmp_path: Path, pg_dsn: str) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 5.0), share("bob", 1.0, is_block=True)])
    await append_all(spool, [block(seqs[1], scheme="solo", finder="bob", reward=5_000_000_000, fee_ppm=20_000)])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    assert credits_by_address(pg_dsn, f"{seqs[1]:064x}") == {"bob": 4_900_000_000, "feeaddr": 100_000_000}
    assert query(pg_dsn, "SELECT DISTINCT scheme FROM credits") == [("solo",)]
    await spool.close()


async def test_a_block_and_its_credits_commit_together(tmp_path: Path, pg_dsn: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 1.0), share("bob", 1.0)])
    await append_all(spool, [block(seqs[1], fee_ppm=0)])
    real = q.insert_credits

    def half(conn: Any, block_id: int, credits: dict[int, int], scheme: str) -> None:
        real(conn, block_id, dict(list(credits.items())[:1]), scheme)
        raise psycopg.OperationalError("connection lost")

    monkeypatch.setattr(q, "insert_credits", half)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block)
    with pytest.raises(psycopg.OperationalError):
        loader.load_all()
    assert one(pg_dsn, "SELECT count(*) FROM blocks") == 0
    assert one(pg_dsn, "SELECT count(*) FROM credits") == 0
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 0
    monkeypatch.setattr(q, "insert_credits", real)
    loader.load_all()
    assert one(pg_dsn, "SELECT count(*) FROM blocks") == 1
    assert one(pg_dsn, "SELECT sum(amount) FROM credits") == 1000
    await spool.close()


async def test_the_injected_credit_block_runs_inside_the_batch_transaction(tmp_path: Path, pg_dsn: str) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 1.0), share("bob", 1.0)])
    await append_all(spool, [block(seqs[1], fee_ppm=0)])
    seen: list[tuple[str, BlockIds]] = []

    def failing(conn: Any, b: BlockRecord, ids: BlockIds, /) -> bool:
        seen.append((b.hash_display, ids))
        raise RuntimeError("no scheme today")

    with pytest.raises(RuntimeError):
        SpoolLoader(spool, pg_dsn, NODE, failing).load_all()
    assert [(h, ids.node_id) for h, ids in seen] == [(f"{seqs[1]:064x}", NODE)]
    # nothing of the batch committed: not its shares, not the finder's rows, not the checkpoint
    assert one(pg_dsn, "SELECT count(*) FROM shares") == 0
    assert one(pg_dsn, "SELECT count(*) FROM accounts") == 0
    assert one(pg_dsn, "SELECT coalesce(max(seq), 0) FROM spool_checkpoints") == 0
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block)
    assert loader.load_all() == 3
    assert loader.stats().blocks_loaded == 1
    assert credits_by_address(pg_dsn, f"{seqs[1]:064x}") == {"alice": 500, "bob": 500}
    await spool.close()


async def test_a_block_recorded_twice_is_credited_once(tmp_path: Path, pg_dsn: str) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 1.0)])
    await append_all(spool, [block(seqs[0]), block(seqs[0])])
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    assert one(pg_dsn, "SELECT count(*) FROM blocks") == 1
    assert one(pg_dsn, "SELECT sum(amount) FROM credits") == 1000
    await spool.close()


# ----- the fast path gives what the plain one did


MIDNIGHT = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC


def reference(records: list[SpoolRecord], seqs: list[int]) -> dict[str, Any]:
    """What the database must hold after loading ``records``, computed the plain way: a ``datetime`` per share,
    statistics per (worker, minute) in Python, workers' first record, last time, best and last user agent."""
    shares = []
    minutes: dict[tuple[str, str, datetime], list[Any]] = defaultdict(lambda: [0, 0, 0.0])
    days: dict[tuple[str, str, date], list[Any]] = defaultdict(lambda: [0, 0, 0.0])
    workers: dict[tuple[str, str], dict[str, Any]] = {}
    for r, seq in zip(records, seqs, strict=True):
        if isinstance(r, BlockRecord):
            continue
        key = (r.address, r.worker_name)
        at = datetime.fromtimestamp(r.time - r.time % 60.0, UTC)
        w = workers.setdefault(key, {"first_seen": datetime.fromtimestamp(r.time, UTC),
                                     "last_seen": datetime.fromtimestamp(r.time, UTC), "best": 0.0,
                                     "agent": r.user_agent if isinstance(r, ShareRecord) else ""})
        if isinstance(r, ShareRecord):
            shares.append((datetime.fromtimestamp(r.time, UTC), COIN, r.address, r.worker_name, r.difficulty,
                           r.achieved, r.height, r.is_block, NODE, seq))
            for stat in (minutes[(*key, at)], days[(*key, at.date())]):
                stat[0] += 1
                stat[2] += r.difficulty
            w["last_seen"] = max(w["last_seen"], datetime.fromtimestamp(r.time, UTC))
            w["best"] = max(w["best"], r.achieved)
            w["agent"] = r.user_agent or w["agent"]
        else:
            minutes[(*key, at)][1] += r.count
            days[(*key, at.date())][1] += r.count
    return {"shares": shares, "minutes": {k: tuple(v) for k, v in minutes.items()},
            "days": {k: tuple(v) for k, v in days.items()},
            "workers": {k: (w["first_seen"], w["last_seen"], w["best"], w["agent"]) for k, w in workers.items()}}


def loaded(dsn: str) -> dict[str, Any]:
    shares = query(dsn, "SELECT s.time, c.key, a.address, w.name, s.difficulty, s.achieved, s.height, s.is_block,"
                        " s.node_id, s.seq FROM shares s JOIN coins c ON c.id = s.coin_id"
                        " JOIN accounts a ON a.id = s.account_id JOIN workers w ON w.id = s.worker_id"
                        " AND w.account_id = a.id ORDER BY s.seq")
    minutes = query(dsn, "SELECT a.address, w.name, s.minute, s.accepted, s.rejected, s.difficulty"
                         " FROM share_stats_minute s JOIN workers w ON w.id = s.worker_id"
                         " JOIN accounts a ON a.id = w.account_id")
    days = query(dsn, "SELECT a.address, w.name, s.day, s.accepted, s.rejected, s.difficulty"
                      " FROM share_stats_day s JOIN workers w ON w.id = s.worker_id"
                      " JOIN accounts a ON a.id = w.account_id")
    workers = query(dsn, "SELECT a.address, w.name, w.first_seen, w.last_seen, w.best_difficulty, w.user_agent"
                         " FROM workers w JOIN accounts a ON a.id = w.account_id")
    return {"shares": shares, "minutes": {(a, n, m): (x, y, z) for a, n, m, x, y, z in minutes},
            "days": {(a, n, d): (x, y, z) for a, n, d, x, y, z in days},
            "workers": {(a, n): (f, last, b, u) for a, n, f, last, b, u in workers}}


def mixed_records(rng: random.Random, n: int, t0: float) -> list[SpoolRecord]:
    """Shares and rejects of a dozen workers, several user agents each, times mostly rising (some jitter back),
    among them exact half-microsecond ties and the last instants before midnight."""
    addresses = ["alice", "bob", "carol", "dave"]
    names = ["", "rig", "rig2"]
    agents = ["", "cgminer/4.12", "bfgminer/5.5"]
    out: list[SpoolRecord] = []
    t = t0
    for i in range(n):
        t += rng.choice([0.0, 0.37, 1.5, 7.0, 2**-7, 61.0]) - (0.9 if i % 17 == 0 else 0.0)
        at = rng.choice([t, t, t, float(int(t)) + 2**-7, float(int(t)) + 3 * 2**-7, MIDNIGHT - 4e-7,
                         MIDNIGHT - 2.5e-6, MIDNIGHT - 1e-6])
        address, name = rng.choice(addresses), rng.choice(names)
        if rng.random() < 0.1:  # a reject count for the minute, often before that minute's shares
            out.append(RejectedRecord(0, at - at % 60.0, COIN, address, name, "stale", rng.randint(1, 5)))
        else:
            out.append(ShareRecord(0, at, COIN, address, name, rng.choice(agents), rng.randint(1, 64) / 4,
                                   rng.choice([rng.randint(1, 10**6) / 8, 0.5]), 100 + i % 5, i % 97 == 0))
    out.append(RejectedRecord(0, t0 - t0 % 60.0, COIN, "erin", "only-rejects", "low-difficulty", 3))
    return out


async def test_rows_statistics_and_workers_match_the_plain_computation(tmp_path: Path, pg_dsn: str) -> None:
    rng = random.Random(7)
    first = mixed_records(rng, 700, MIDNIGHT - 400.0)
    spool, seqs = await spool_with(tmp_path, first)
    # many batches: statistics add up across them
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=37)
    assert loader.load_all() == len(first)
    assert loaded(pg_dsn) == reference(first, seqs)
    # the same loader (its ids cached) on more of the same workers, new user agents and a new worker
    second = mixed_records(rng, 300, MIDNIGHT + 3_000.0)
    second.append(share("frank", 2.0, t=MIDNIGHT + 9_000.0, worker="new", agent="new/1"))
    seqs += await append_all(spool, second)
    assert loader.load_all() == len(second)
    assert loaded(pg_dsn) == reference(first + second, seqs)
    assert loader.stats().shares_loaded == len(reference(first + second, seqs)["shares"])
    parts = {r[0] for r in query(pg_dsn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                         " WHERE i.inhparent = 'shares'::regclass")}
    assert {"shares_20231114", "shares_20231115", "shares_20231116"} <= parts
    await spool.close()


async def test_a_reject_before_the_shares_of_its_minute_leaves_their_times_alone(tmp_path: Path,
                                                                                  pg_dsn: str) -> None:
    records: list[SpoolRecord] = [RejectedRecord(0, T0 - T0 % 60, COIN, "alice", "rig", "stale", 1),
                                  share("alice", t=T0 + 1.25), share("alice", t=T0 + 2.5)]
    spool, _ = await spool_with(tmp_path, records)
    SpoolLoader(spool, pg_dsn, NODE, credit_block).load_all()
    assert [r[0] for r in query(pg_dsn, "SELECT time FROM shares ORDER BY seq")] == [
        datetime.fromtimestamp(T0 + 1.25, UTC), datetime.fromtimestamp(T0 + 2.5, UTC)]
    await spool.close()


@given(st.floats(min_value=2.0**19, max_value=2.0**34, allow_nan=False))
def test_microseconds_round_exactly_like_datetime(t: float) -> None:
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_us(t)) == datetime.fromtimestamp(t, UTC)


def test_microseconds_round_half_to_even_like_datetime() -> None:
    for t in (T0 + 2**-7, T0 + 3 * 2**-7, T0 + 5 * 2**-7, MIDNIGHT - 4e-7, MIDNIGHT - 2**-7, 2.0**19 + 0.5):
        assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_us(t)) == datetime.fromtimestamp(t, UTC)


async def test_a_failure_in_a_later_batch_loads_that_one_again_and_nothing_is_doubled(
        tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice", 1.0, t=T0 + i) for i in range(30)])
    real = q.set_checkpoint
    calls = 0

    def second_fails(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        real(*args)

    monkeypatch.setattr(q, "set_checkpoint", second_fails)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=10)
    assert loader.load_batch() == 10
    with pytest.raises(psycopg.OperationalError):
        loader.load_batch()  # records 11-20: rolled back, the checkpoint stays after 10
    assert loader.load_all() == 20
    assert one(pg_dsn, "SELECT count(*) FROM shares") == one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == 30
    await loader.stop()
    await spool.close()


# ----- batching


async def test_batches_gather_for_the_interval(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero, group_commit_seconds=0.001)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_interval=0.3)
    loader.start()
    try:
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 1.2:  # a group commit every few milliseconds, for 1.2 s
            await append_all(spool, [share("alice", t=T0 + sent + i) for i in range(5)])
            sent += 5
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + 5
        while loader.stats().shares_loaded < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - started - 1.2
    finally:
        await loader.stop()
    assert one(pg_dsn, "SELECT count(*) FROM shares") == sent
    print(f"\n{sent} shares in {loader.stats().batches} batches; the last reached PostgreSQL {waited:.2f} s after")
    assert sent > 50 and loader.stats().batches <= 10  # about one per 0.3 s, not one per group commit
    assert waited < 1.5  # the interval, not the idle timeout or more
    await spool.close()


async def test_a_full_batch_is_followed_at_once(tmp_path: Path, pg_dsn: str) -> None:
    spool, _ = await spool_with(tmp_path, [share("alice", t=T0 + i) for i in range(100)])
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=10, batch_interval=5.0)
    started = time.monotonic()
    loader.start()
    try:
        deadline = time.monotonic() + 10
        while loader.stats().shares_loaded < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 4.0  # ten batches, no interval between full ones
    finally:
        await loader.stop()
    assert loader.stats().batches >= 10
    await spool.close()


async def test_a_trickle_is_loaded_as_it_comes(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_interval=30.0, idle_seconds=30.0)
    loader.start()
    try:
        for i in range(TRICKLE_RECORDS - 1):  # a quiet pool: no waiting for the interval
            started = time.monotonic()
            await append_all(spool, [share("alice", t=T0 + i)])
            while loader.stats().shares_loaded <= i:
                assert time.monotonic() - started < 2.0, "a lone share waited"
                await asyncio.sleep(0.005)
    finally:
        await loader.stop()
    await spool.close()


async def test_stop_drains_at_once_even_mid_interval(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_interval=30.0, idle_seconds=30.0)
    loader.start()
    await append_all(spool, [share("alice") for _ in range(TRICKLE_RECORDS)])
    deadline = time.monotonic() + 5
    while loader.stats().shares_loaded < TRICKLE_RECORDS and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await append_all(spool, [share("bob") for _ in range(5)])  # records flow: it waits out its 30 s interval
    await asyncio.sleep(0.2)
    assert loader.stats().shares_loaded == TRICKLE_RECORDS
    started = time.monotonic()
    await loader.stop()
    assert time.monotonic() - started < 2.0
    assert one(pg_dsn, "SELECT count(*) FROM shares") == TRICKLE_RECORDS + 5
    await spool.close()


# ----- throughput (printed, never asserted)


async def test_loader_copy_throughput(tmp_path: Path, pg_dsn: str) -> None:
    n = 100_000
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    await append_all(spool, [share(f"addr{i % 500}", 1.0 + i % 7, t=T0 + i * 0.01, worker=f"w{i % 3}")
                             for i in range(n)])
    loader = SpoolLoader(spool, pg_dsn, NODE, credit_block)
    SpoolLoader(spool, pg_dsn, NODE, credit_block, batch_max=1).load_batch()  # partitions and reference rows warm
    start = time.perf_counter()
    loaded = loader.load_all()
    elapsed = time.perf_counter() - start
    print(f"\nloader: {loaded} records in {elapsed:.2f} s = {loaded / elapsed:,.0f} rows/s")
    assert one(pg_dsn, "SELECT count(*) FROM shares") == n
    await spool.close()
