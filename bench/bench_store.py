"""The share store: spool appends with group commit, spool reads, and the loader's COPY path into PostgreSQL.

Run with ``python bench/bench_store.py`` (needs PostgreSQL: ``STRATUM_POOL_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; a scratch database is created and dropped). Prints a
table, then one JSON line. Shares are synthetic: 500 addresses x 3 workers, one share per 10 ms, so about
four shares per worker per minute (the vardiff target), which sets how many statistics rows each batch
upserts.

The loader is measured twice: draining a backlog of SHARES (batches of 50,000, the default), and then
SMALL more in batches of 1,000 rows (the live pool's loader at 4,000 shares/s, one batch every 0.25 s; with
these synthetic miners nearly every share of such a batch is another worker's, the worst case for the
per-worker statistics). Rows/s is wall time, PostgreSQL's work included; CPU per row is this process's CPU
(all its threads: the pool process's share of the cost; the server's is not in it).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

from stratum_pool.rewards.crediting import credit_block
from stratum_pool.store.loader import SpoolLoader
from stratum_pool.store.migrate import migrate
from stratum_pool.store.spool import ShareRecord, ShareSpool

ADMIN_DSN = os.environ.get("STRATUM_POOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARES = 200_000
SMALL = 50_000
SMALL_BATCH = 1_000
T0 = 1_700_000_000.0


def _share(i: int) -> ShareRecord:
    return ShareRecord(0, T0 + i * 0.01, "bitcoin-regtest", f"addr{i % 500}", f"w{i % 3}", "cgminer/4.12",
                       1.0 + i % 7, 2.0, 100, False)


async def _run(directory: Path, dsn: str) -> dict[str, float]:
    spool = ShareSpool(directory, 0, clock=lambda: 0.0)
    records = [_share(i) for i in range(SHARES)]
    start = time.perf_counter()
    futures = [spool.append(r)[1] for r in records]
    appended = time.perf_counter() - start
    await asyncio.gather(*futures)
    durable = time.perf_counter() - start
    fsyncs = spool.stats().fsyncs
    start = time.perf_counter()
    last, n = 0, 0
    while batch := spool.read_from(last, 50_000):
        n, last = n + len(batch), batch[-1].seq
    read = time.perf_counter() - start
    spool._reader.cursor = None  # the loader reads from the start again
    SpoolLoader(spool, dsn, 0, credit_block, batch_max=1).load_batch()  # partitions and reference rows first
    loader = SpoolLoader(spool, dsn, 0, credit_block)
    cpu, start = time.process_time(), time.perf_counter()
    loaded = loader.load_all()
    load, load_cpu = time.perf_counter() - start, time.process_time() - cpu
    await asyncio.gather(*(spool.append(_share(SHARES + i))[1] for i in range(SMALL)))
    loader.batch_max = SMALL_BATCH  # the same loader: its ids cached, as in a running pool
    cpu, start = time.process_time(), time.perf_counter()
    small = loader.load_all()
    small_load, small_cpu = time.perf_counter() - start, time.process_time() - cpu
    await spool.close()
    assert loaded == SHARES - 1 and small == SMALL, (loaded, small)  # the first went in with the warm-up
    return {
        "append_us": appended / SHARES * 1e6,
        "append_to_durable_per_s": SHARES / durable,
        "fsyncs": fsyncs,
        "spool_read_per_s": n / read,
        "loader_rows_per_s": loaded / load,
        "loader_cpu_us_per_row": load_cpu / loaded * 1e6,
        "loader_small_batches_rows_per_s": small / small_load,
        "loader_small_batches_cpu_us_per_row": small_cpu / small * 1e6,
    }


def run() -> dict[str, float]:
    name = f"sp_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
        migrate(dsn)
        with tempfile.TemporaryDirectory() as directory:
            result = asyncio.run(_run(Path(directory), dsn))
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    rows = [
        ("spool append (event loop cost per share)", f"{result['append_us']:.2f} us"),
        (f"spool append -> fsynced, {SHARES} shares", f"{result['append_to_durable_per_s']:,.0f} /s"),
        ("fsyncs for all of them (group commit)", f"{result['fsyncs']:.0f}"),
        ("spool read", f"{result['spool_read_per_s']:,.0f} records/s"),
        ("loader: spool -> COPY + stats -> commit", f"{result['loader_rows_per_s']:,.0f} rows/s"),
        ("loader: CPU of this process per row", f"{result['loader_cpu_us_per_row']:.2f} us"),
        (f"loader, {SMALL_BATCH:,}-row batches", f"{result['loader_small_batches_rows_per_s']:,.0f} rows/s"),
        (f"loader, {SMALL_BATCH:,}-row batches: CPU per row",
         f"{result['loader_small_batches_cpu_us_per_row']:.2f} us"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    return result


if __name__ == "__main__":
    run()
