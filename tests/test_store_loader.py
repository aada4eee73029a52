"""The share loader against a real PostgreSQL: rows, statistics, partitions, blocks with credits, and
exactly-once loading through outages and crashes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stratum_pool.store import shares as q
from stratum_pool.store.loader import SpoolLoader
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
    loader = SpoolLoader(spool, pg_dsn, NODE, clock=lambda: T0 + 100)
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
    SpoolLoader(spool, pg_dsn, NODE).load_all()
    parts = sorted(r[0] for r in query(pg_dsn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
                                               " ON c.oid = i.inhrelid WHERE i.inhparent = 'shares'::regclass"))
    assert parts == ["shares_20231114", "shares_20231117", "shares_20231118"]
    assert one(pg_dsn, "SELECT count(*) FROM shares_20231117") == 1
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
    loader = SpoolLoader(spool, pg_dsn, NODE, batch_max=2)  # statistics add up across batches
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
    assert SpoolLoader(spool, pg_dsn, NODE, batch_max=20).load_all() == 50
    await spool.close()
    # the pool died: a new process opens the same spool directory and database
    reopened = ShareSpool(tmp_path, NODE, clock=zero)
    again = SpoolLoader(reopened, pg_dsn, NODE)
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
    loader = SpoolLoader(spool, pg_dsn, NODE)
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
    loader = SpoolLoader(spool, pg_dsn, NODE, batch_max=4)
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
    loader = SpoolLoader(spool, pg_dsn, NODE, batch_max=10)
    loader.load_batch()
    query(pg_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE"
                  " 'stratum-pool-loader-%%'")
    with pytest.raises(psycopg.OperationalError):
        loader.load_batch()
    assert loader.load_all() == 20
    assert one(pg_dsn, "SELECT count(DISTINCT seq) FROM shares") == one(pg_dsn, "SELECT count(*) FROM shares") == 30
    await spool.close()


async def test_outage_spools_and_replays_exactly_once_with_backoff(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, DEAD_DSN, NODE, batch_max=100, backoff_initial=0.01, backoff_max=0.05,
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
    loader = SpoolLoader(ShareSpool(tmp_path, clock=zero), DEAD_DSN, 0, backoff_initial=0.5, backoff_max=30.0)
    delays = []
    for failures in range(1, 10):
        loader._failures = failures
        delays.append(loader._backoff())
    assert all(0.25 * 2 ** (i) <= d <= min(30.0, 0.5 * 2 ** i) for i, d in enumerate(delays[:6]))
    assert all(15.0 <= d <= 30.0 for d in delays[6:])


async def test_stop_drains_what_is_spooled(tmp_path: Path, pg_dsn: str) -> None:
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    loader = SpoolLoader(spool, pg_dsn, NODE, idle_seconds=30.0)
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
    SpoolLoader(spool, pg_dsn, NODE).load_all()
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
    SpoolLoader(spool, pg_dsn, NODE).load_all()
    assert credits_by_address(pg_dsn, f"{seqs[1]:064x}") == {"alice": 100, "bob": 300}
    await spool.close()


async def test_prop_rounds_end_at_each_accepted_block(tmp_path: Path, pg_dsn: str) -> None:
    spool, first = await spool_with(tmp_path, [share("alice", 1.0), share("bob", 1.0)])
    await append_all(spool, [block(first[1], scheme="prop", fee_ppm=0, hash_display="aa" * 32)])
    # a block the daemons refused does not end the round
    second = await append_all(spool, [share("carol", 1.0), share("carol", 1.0)])
    await append_all(spool, [block(second[1], scheme="prop", accepted=False, hash_display="bb" * 32)])
    third = await append_all(spool, [share("alice", 2.0)])
    loader = SpoolLoader(spool, pg_dsn, NODE)
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
    SpoolLoader(spool, pg_dsn, NODE).load_all()
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
    loader = SpoolLoader(spool, pg_dsn, NODE)
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


async def test_a_block_recorded_twice_is_credited_once(tmp_path: Path, pg_dsn: str) -> None:
    spool, seqs = await spool_with(tmp_path, [share("alice", 1.0)])
    await append_all(spool, [block(seqs[0]), block(seqs[0])])
    SpoolLoader(spool, pg_dsn, NODE).load_all()
    assert one(pg_dsn, "SELECT count(*) FROM blocks") == 1
    assert one(pg_dsn, "SELECT sum(amount) FROM credits") == 1000
    await spool.close()


# ----- throughput (printed, never asserted)


async def test_loader_copy_throughput(tmp_path: Path, pg_dsn: str) -> None:
    n = 100_000
    spool = ShareSpool(tmp_path, NODE, clock=zero)
    await append_all(spool, [share(f"addr{i % 500}", 1.0 + i % 7, t=T0 + i * 0.01, worker=f"w{i % 3}")
                             for i in range(n)])
    loader = SpoolLoader(spool, pg_dsn, NODE)
    SpoolLoader(spool, pg_dsn, NODE, batch_max=1).load_batch()  # partitions and reference rows warm
    start = time.perf_counter()
    loaded = loader.load_all()
    elapsed = time.perf_counter() - start
    print(f"\nloader: {loaded} records in {elapsed:.2f} s = {loaded / elapsed:,.0f} rows/s")
    assert one(pg_dsn, "SELECT count(*) FROM shares") == n
    await spool.close()
