"""Share retention on a real PostgreSQL: daily ``shares`` partitions older than ``retention_days`` go, except
those a pending block's PPLNS or PROP window (or an open PROP round) still needs; once that block is
confirmed they go too; the per-minute and per-day statistics stay."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from stratum_pool.devnet.bcoin import BcoinNode
from stratum_pool.store import shares as q
from stratum_pool.store.accounting import confirm_block
from stratum_pool.store.retention import drop_old_share_partitions, share_partitions

COIN = "bitcoin-regtest"
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
RETENTION = 7  # cutoff 2026-03-24 12:00: the partitions of March 1..23 are old enough to go
DAYS = [date(2026, 3, d) for d in range(1, 32)]


class Chain:
    """One share a day at noon (difficulty 1, seq = the day of March), for one account on node 0."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.coin_id = q.ensure_coin(conn, COIN, "BTC", 100)
        self.account = q.ensure_accounts(conn, self.coin_id, ["bcrt1qminer"])["bcrt1qminer"]
        self.worker = q.ensure_workers(conn, [(self.account, "rig", "test", NOW)])[(self.account, "rig")]
        q.lock_checkpoint(conn, 0)
        rows = bytearray(q.SHARE_ROW.size * len(DAYS))
        for i, day in enumerate(DAYS):
            q.create_share_partition(conn, day)
            t = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            us = int(t.timestamp()) * 1_000_000 - q.PG_EPOCH_US
            q.SHARE_ROW.pack_into(rows, i * q.SHARE_ROW.size, us, self.coin_id, self.account, self.worker, 1.0,
                                  1.5, 100 + day.day, False, 0, day.day)
        q.finish_share_rows(rows)
        q.copy_share_rows(conn, rows)
        # statistics of the oldest day: they outlive its shares
        q.add_share_stats(conn, [(self.worker, int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()), 1, 0, 1.0)])
        conn.commit()

    def block(self, seq: int, scheme: str, *, window: float = 0.0, pending: bool = True) -> int:
        block_id = q.insert_block(
            self.conn, coin_id=self.coin_id, height=100 + seq, hash_display=f"{seq:064x}", reward=5_000_000_000,
            finder_account_id=self.account, finder_worker_id=self.worker, scheme=scheme, accepted=True,
            submit_result="accepted", node_id=0, share_seq=seq, found_at=NOW, network_difficulty=window,
            pplns_window_factor=1.0)
        assert block_id is not None
        self.conn.commit()
        if not pending:
            confirm(self.conn.info.dsn, block_id)
        return block_id

    def days_left(self) -> list[date]:
        days = [day for _, day in share_partitions(self.conn)]
        self.conn.commit()
        return days

    def stats_rows(self) -> tuple[int, int]:
        minute = self.conn.execute("SELECT count(*) FROM share_stats_minute").fetchone()
        day = self.conn.execute("SELECT count(*) FROM share_stats_day").fetchone()
        assert minute is not None and day is not None
        self.conn.commit()
        return int(minute[0]), int(day[0])


def confirm(dsn: str, block_id: int) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            assert await confirm_block(conn, block_id, 101, NOW) is not None

    asyncio.run(run())


@pytest.fixture
def chain(pg_dsn: str) -> Iterator[Chain]:
    with psycopg.connect(pg_dsn) as conn:
        yield Chain(conn)


def march(first: int, last: int = 31) -> list[date]:
    return [date(2026, 3, d) for d in range(first, last + 1)]


def test_without_windows_old_partitions_go_and_statistics_stay(chain: Chain) -> None:
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW)
    assert report.dropped == [q.partition_name(d) for d in march(1, 23)]
    assert report.kept_for_windows == [] and report.kept_from is None
    assert chain.days_left() == march(24)
    assert chain.stats_rows() == (1, 1)
    # a second run finds nothing more to drop
    assert drop_old_share_partitions(chain.conn, RETENTION, NOW).dropped == []


def test_a_pending_pplns_window_keeps_its_partitions_until_confirmed(chain: Chain) -> None:
    # the block's share is March 31's; its window is 20 difficulty: the shares of March 12..31
    block_id = chain.block(31, "pplns", window=20.0)
    window = q.pplns_window(chain.conn, chain.coin_id, 0, 31, 20.0)
    assert len(window) == 20
    chain.conn.commit()

    report = drop_old_share_partitions(chain.conn, RETENTION, NOW)
    assert report.kept_from == datetime(2026, 3, 12, 12, tzinfo=UTC)
    assert report.dropped == [q.partition_name(d) for d in march(1, 11)]
    assert report.kept_for_windows == [q.partition_name(d) for d in march(12, 23)]
    assert chain.days_left() == march(12)
    # the window reads exactly as before
    assert q.pplns_window(chain.conn, chain.coin_id, 0, 31, 20.0) == window
    chain.conn.commit()

    confirm(chain.conn.info.dsn, block_id)
    chain.conn.commit()
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW)
    assert report.dropped == [q.partition_name(d) for d in march(12, 23)]
    assert chain.days_left() == march(24)
    assert chain.stats_rows() == (1, 1)


def test_a_pending_prop_round_keeps_its_partitions(chain: Chain) -> None:
    chain.block(5, "prop", pending=False)  # ended the previous round (confirmed)
    block_id = chain.block(29, "prop")  # its round: the shares of March 6..29
    assert sum(d for _, d in q.round_window(chain.conn, chain.coin_id, 0, 29)) == 24.0
    chain.conn.commit()

    report = drop_old_share_partitions(chain.conn, RETENTION, NOW)
    assert report.dropped == [q.partition_name(d) for d in march(1, 5)]
    assert chain.days_left() == march(6)
    assert sum(d for _, d in q.round_window(chain.conn, chain.coin_id, 0, 29)) == 24.0
    chain.conn.commit()

    confirm(chain.conn.info.dsn, block_id)
    chain.conn.commit()
    assert drop_old_share_partitions(chain.conn, RETENTION, NOW).dropped == [
        q.partition_name(d) for d in march(6, 23)]


def test_an_open_prop_round_is_kept_for_the_next_block(chain: Chain) -> None:
    chain.block(10, "prop", pending=False)  # the last block; the open round is March 11 on
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW, open_round_coins=[COIN])
    assert report.dropped == [q.partition_name(d) for d in march(1, 10)]
    assert chain.days_left() == march(11)
    # a PPLNS coin (not named) has no open round to keep
    assert drop_old_share_partitions(chain.conn, RETENTION, NOW).dropped == [
        q.partition_name(d) for d in march(11, 23)]


def test_an_open_pplns_window_is_kept_for_the_next_block(chain: Chain) -> None:
    # the pool's current window: 15 difficulty back from the newest share, the shares of March 17..31
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW, open_pplns_windows={COIN: 15.0})
    assert report.dropped == [q.partition_name(d) for d in march(1, 16)]
    assert chain.days_left() == march(17)


def test_an_open_pplns_window_of_unknown_size(chain: Chain) -> None:
    # no block yet, no size given: the window may reach back to the first share, so every partition stays
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW, open_pplns_windows={COIN: None})
    assert report.dropped == [] and report.kept_from == datetime(2026, 3, 1, 12, tzinfo=UTC)
    # the size recorded with the newest block (window 12 x factor 1): the shares of March 20..31
    chain.block(15, "pplns", window=12.0, pending=False)
    report = drop_old_share_partitions(chain.conn, RETENTION, NOW, open_pplns_windows={COIN: None})
    assert report.dropped == [q.partition_name(d) for d in march(1, 19)]


def test_orphaned_blocks_keep_nothing(chain: Chain) -> None:
    block_id = chain.block(31, "pplns", window=30.0)
    chain.conn.execute("UPDATE blocks SET status = 'orphaned' WHERE id = %s", (block_id,))
    chain.conn.commit()
    assert chain.days_left()[0] == date(2026, 3, 1)
    chain.conn.commit()
    assert drop_old_share_partitions(chain.conn, RETENTION, NOW).kept_for_windows == []
    assert chain.days_left() == march(24)


def test_retention_days_must_be_positive(chain: Chain) -> None:
    with pytest.raises(ValueError, match="retention_days must be at least 1, not 0"):
        drop_old_share_partitions(chain.conn, 0, NOW)


def test_prune_shares_command(pg_dsn: str, tmp_path: Path) -> None:
    """`stratum-pool prune-shares` with the config's retention_days (real time: every March 2026 day is old)."""
    with psycopg.connect(pg_dsn) as conn:
        Chain(conn)
    config = tmp_path / "pool.toml"
    config.write_text(f'[database]\ndsn = "{pg_dsn}"\nretention_days = 3\n\n[[coins]]\ncoin = "bitcoin"\n'
                      'network = "regtest"\nmode = "solo"\n\n[[coins.daemons]]\nurl = "http://127.0.0.1:1"\n'
                      'password = "x"\n')
    result = subprocess.run([sys.executable, "-m", "stratum_pool.cli", "prune-shares", "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dropped 31 share partition(s) older than 3 days: shares_20260301, ")
    assert datetime.now(UTC) - NOW > timedelta(days=3)


def test_retention_days_config_key(tmp_path: Path) -> None:
    config = tmp_path / "pool.toml"
    config.write_text('[database]\ndsn = "postgresql://postgres@127.0.0.1/x"\nretention_days = -1\n\n'
                      '[[coins]]\ncoin = "bitcoin"\nnetwork = "regtest"\nmode = "solo"\n\n[[coins.daemons]]\nurl = "http://127.0.0.1:1"\n'
                      'password = "x"\n')
    result = subprocess.run([sys.executable, "-m", "stratum_pool.cli", "check-config", "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "database.retention_days" in result.stderr and "-1" in result.stderr
    assert "0 (keep every share) or a number of days" in result.stderr


@pytest.mark.integration
async def test_the_running_pool_prunes(pg_dsn: str, tmp_path: Path, bcoin_node: BcoinNode) -> None:
    """A pool with retention_days drops the old partitions itself, at start and then hourly; a pending block's
    window keeps its own."""
    from stratum_pool.config import parse_settings
    from stratum_pool.pool import Pool

    with psycopg.connect(pg_dsn) as conn:
        chain = Chain(conn)
        chain.block(31, "pplns", window=10.0)  # March 22..31 (old: the whole of March, in real time)
    doc = {
        "database": {"dsn": pg_dsn, "spool_dir": str(tmp_path / "spool"), "retention_days": 3},
        "api": {"enabled": False},
        "coins": [{"coin": "bitcoin", "network": "regtest", "mode": "pplns", "stratum_host": "127.0.0.1",
                   "stratum_port": 0, "pool_address": bcoin_node.mining_address,
                   "daemons": [bcoin_node.daemon_config()]}],
    }
    pool = Pool(parse_settings(doc))
    await pool.start()
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for _ in range(100):
                days = [day for _, day in share_partitions(conn)]
                if days and days[0] != date(2026, 3, 1):
                    break
                await asyncio.sleep(0.1)
            # March 1..21 went; the block's window (March 22..31) stays, old as it is; today's partition (the
            # loader made it for the pool's own shares, if any) is young
            assert [d for d in days if d.year == 2026 and d.month == 3] == march(22)
    finally:
        await pool.stop()
