"""PostgreSQL fixtures: a fresh database per test, migrated, dropped afterwards.

The server is the machine's own (127.0.0.1:5432, trust auth); set ``STRATUM_POOL_TEST_PG`` to another
admin DSN to use a different one. A migrated template database is made once per run, and each test gets
a copy of it (``CREATE DATABASE ... TEMPLATE``), which takes a few milliseconds.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from stratum_pool.store.migrate import migrate

ADMIN_DSN = os.environ.get("STRATUM_POOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _dsn(dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=dbname)


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a migrated template database for this test run."""
    name = f"sp_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(_dsn(name))
        yield name
    finally:
        _drop(name)


@pytest.fixture
def pg_dsn(pg_template: str) -> Iterator[str]:
    """A DSN to a fresh, migrated database of its own for one test."""
    name = f"sp_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                       sql.Identifier(pg_template)))
    try:
        yield _dsn(name)
    finally:
        _drop(name)


@pytest.fixture
def pg_empty_dsn() -> Iterator[str]:
    """A DSN to a fresh database with no schema at all (for migration tests)."""
    name = f"sp_empty_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _dsn(name)
    finally:
        _drop(name)
