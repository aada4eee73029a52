"""Migrations apply in order, once, and a second run changes nothing."""

from __future__ import annotations

import psycopg

from stratum_pool.store.migrate import available_migrations, current_version, migrate


def test_migrate_twice_is_safe(pg_empty_dsn: str) -> None:
    versions = [m.version for m in available_migrations()]
    assert migrate(pg_empty_dsn) == versions
    assert migrate(pg_empty_dsn) == []
    assert current_version(pg_empty_dsn) == versions[-1]


def test_schema_has_the_money_tables(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"coins", "accounts", "workers", "shares", "blocks", "credits", "payout_batches", "payouts",
            "ledger", "balances", "spool_checkpoints", "share_stats_minute", "share_stats_day"} <= tables
