"""Versioned schema migrations: ``NNN_name.sql`` files applied in order, each once, under a lock.

Running ``stratum-pool migrate`` twice (or from two machines at once) is safe: an advisory lock
serializes runners and ``schema_migrations`` records what is applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

# An arbitrary constant that names "the stratum-pool migration lock" among advisory locks.
MIGRATION_LOCK_ID = 0x5374_7261_7475_6D01
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped in ``stratum_pool/store/migrations``, in version order."""
    found = []
    for entry in resources.files("stratum_pool.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


def migrate(dsn: str) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                 (migration.version, migration.name))
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


def current_version(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0


def schema_status(dsn: str, connect_timeout: int = 10) -> tuple[int, int]:
    """(the database's schema version, the newest this code ships); 0 for a database never migrated.
    Raises ``psycopg.Error`` when the database cannot be reached."""
    latest = len(available_migrations())
    with psycopg.connect(dsn, connect_timeout=connect_timeout) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0, latest
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return (int(row[0]) if row else 0), latest
