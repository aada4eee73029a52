"""``make run``: a regtest daemon (bcoin for Bitcoin, litecoind for Litecoin) and the pool, in the foreground.

Everything started here is stopped on Ctrl-C or SIGTERM. The chain lives in a temporary folder and is gone
afterwards: this is a playground for pointing a miner at, not a node to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stratum_pool.chain.address import address_to_script
from stratum_pool.config import parse_settings
from stratum_pool.logs import configure_logging


async def _serve(doc: dict[str, Any], hints: dict[str, str]) -> None:
    from stratum_pool.pool import Pool

    settings = parse_settings(doc, "make run", address_check=address_to_script)
    pool = Pool(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await pool.start()
    try:
        print("", flush=True)
        for coin in pool.coins:
            c = coin.coin
            print(f"stratum+tcp://127.0.0.1:{coin.port}  {c.name} {c.network} ({c.algorithm})  "
                  f"user: {hints[c.key]}[.worker]  password: x", flush=True)
        if pool.api_port is not None:
            print(f"dashboard and JSON API: http://127.0.0.1:{pool.api_port}/  (metrics: /metrics)", flush=True)
        print("Ctrl-C stops the pool and the regtest node(s).\n", flush=True)
        await stop.wait()
    finally:
        await pool.stop()


def _without_password(dsn: str) -> str:
    import psycopg

    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return " ".join(f"{k}={v}" for k, v in parts.items() if k != "password")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--coin", choices=("bitcoin", "litecoin", "both"), default="bitcoin")
    parser.add_argument("--port", type=int, default=3333, help="stratum port of the Bitcoin pool")
    parser.add_argument("--ltc-port", type=int, default=3334, help="stratum port of the Litecoin pool")
    parser.add_argument("--dsn", default=os.environ.get("STRATUM_POOL_DSN", ""),
                        help="PostgreSQL to keep shares in (default $STRATUM_POOL_DSN; none: a private one is started)")
    parser.add_argument("--no-database", action="store_true", help="count shares in memory only")
    parser.add_argument("--api-port", type=int, default=8080, help="port of the dashboard and JSON API")
    parser.add_argument("--segwit", action=argparse.BooleanOptionalAction, default=True,
                        help="activate segwit on the bcoin chain first (as on every real network)")
    args = parser.parse_args(argv)
    configure_logging("info", "console")

    coins: list[dict[str, Any]] = []
    hints: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stratum-pool-run-")))
        vardiff = {"initial": 1e-6, "minimum": 1e-12, "target_seconds": 10}
        database: dict[str, str] = {}
        if not args.no_database:
            dsn = args.dsn
            if not dsn:
                from stratum_pool.devnet.postgres import PrivatePostgres

                dsn = stack.enter_context(PrivatePostgres()).dsn
            from stratum_pool.store.migrate import migrate

            migrate(dsn)
            database = {"dsn": dsn, "spool_dir": str(root / "spool")}
            print(f"database: {_without_password(dsn)}", flush=True)
        if args.coin in ("bitcoin", "both"):
            from stratum_pool.devnet.bcoin import BcoinNode

            node = stack.enter_context(BcoinNode(root / "bcoin"))
            print(f"bcoin regtest node: {node.url}", flush=True)
            if args.segwit:
                node.activate_segwit()
            hints["bitcoin-regtest"] = node.new_address()
            coins.append({"coin": "bitcoin", "network": "regtest", "stratum_host": "127.0.0.1",
                          "stratum_port": args.port, "vardiff": vardiff, "poll_interval_seconds": 1,
                          "daemons": [node.daemon_config()]})
        if args.coin in ("litecoin", "both"):
            from stratum_pool.devnet.litecoind import LitecoinRegtest

            pair = stack.enter_context(LitecoinRegtest(root / "litecoin"))
            pair.start()
            ep = pair.a.endpoint()
            print(f"litecoind regtest node: {ep.url}", flush=True)
            hints["litecoin-regtest"] = pair.new_address()
            coins.append({"coin": "litecoin", "network": "regtest", "stratum_host": "127.0.0.1",
                          "stratum_port": args.ltc_port, "vardiff": vardiff, "poll_interval_seconds": 1,
                          "daemons": [{"name": "litecoind", "url": ep.url, "user": ep.user,
                                       "password": ep.password}]})
        if not database:  # no database: found blocks are kept in a file there (not in /var/lib)
            database = {"spool_dir": str(root / "spool")}
        doc: dict[str, Any] = {"coins": coins, "api": {"port": args.api_port}}
        if database:
            doc["database"] = database
        asyncio.run(_serve(doc, hints))
    print("stopped: the pool and the regtest node(s) it started", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
