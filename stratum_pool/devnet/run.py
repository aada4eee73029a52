"""``make run``: a regtest daemon (bcoin for Bitcoin, litecoind for Litecoin, bcash for Bitcoin Cash) and the pool,
in the foreground.

Everything started here is stopped on Ctrl-C or SIGTERM. The chain lives in a temporary folder and is gone
afterwards: this is a playground for pointing a miner at, not a node to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
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
                  f"user: {hints[c.key]}[.worker]  password: x  ({c.display_name})", flush=True)
            if coin.sv2_url:
                print(f"{coin.sv2_url}  Stratum V2 (Noise), the same user", flush=True)
            if coin.tls_port is not None:
                print(f"stratum+tls://127.0.0.1:{coin.tls_port}  {c.name} {c.network} (TLS; the certificate to "
                      f"paste into the miner: {coin.settings.tls_cert_file})", flush=True)
        if pool.api_port is not None:
            print(f"dashboard and JSON API: http://127.0.0.1:{pool.api_port}/  (metrics: /metrics)", flush=True)
        print("Ctrl-C stops the pool and the regtest node(s).\n", flush=True)
        await stop.wait()
    finally:
        await pool.stop()


# The regtest pool's Stratum V2 authority key outlives a run, so a miner configured with it keeps working.
SV2_DIR = Path.home() / ".local" / "state" / "stratum-pool" / "regtest-sv2"


def sv2_authority_key(directory: Path) -> Path:
    """The authority key file in ``directory``, made when missing (``stratum-pool sv2-keys`` makes one too)."""
    from stratum_pool.protocol.v2.keys import create_authority_key_file

    path = directory / "authority.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        create_authority_key_file(path)
    return path


def _sv2(port: int, directory: Path) -> dict[str, Any]:
    """A coin table's Stratum V2 keys (none for port 0)."""
    return {"sv2_port": port, "sv2_authority_key_file": str(sv2_authority_key(directory))} if port else {}
def default_tls_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "stratum-pool" / "regtest-tls"


def regtest_certificate(directory: Path) -> tuple[Path, Path]:
    """The self-signed certificate and key for the regtest stack's TLS ports, kept in ``directory`` so the
    PEM pasted into a miner stays valid between runs; made anew when missing, expiring within 30 days, or not
    naming this host."""
    from stratum_pool.devnet.certs import covers, make_self_signed

    cert, key = directory / "cert.pem", directory / "key.pem"
    dns, ips = ["localhost", socket.gethostname()], ["127.0.0.1"]
    if not (cert.exists() and key.exists() and covers(cert, dns, ips, days_left=30)):
        make_self_signed(cert, key, dns, ips)
    return cert, key


def _without_password(dsn: str) -> str:
    import psycopg

    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return " ".join(f"{k}={v}" for k, v in parts.items() if k != "password")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--coin", choices=("bitcoin", "litecoin", "both", "bitcoincash"), default="bitcoin")
    parser.add_argument("--port", type=int, default=3333, help="stratum port of the Bitcoin pool")
    parser.add_argument("--ltc-port", type=int, default=3334, help="stratum port of the Litecoin pool")
    parser.add_argument("--bch-port", type=int, default=3335, help="stratum port of the Bitcoin Cash pool")
    parser.add_argument("--dsn", default=os.environ.get("STRATUM_POOL_DSN", ""),
                        help="PostgreSQL to keep shares in (default $STRATUM_POOL_DSN; none: a private one is started)")
    parser.add_argument("--no-database", action="store_true", help="count shares in memory only")
    parser.add_argument("--api-port", type=int, default=8080, help="port of the dashboard and JSON API")
    parser.add_argument("--sv2-port", type=int, default=3336, help="Stratum V2 port of the Bitcoin pool (0: off)")
    parser.add_argument("--ltc-sv2-port", type=int, default=3337, help="Stratum V2 port of the Litecoin pool (0: off)")
    parser.add_argument("--sv2-dir", type=Path, default=SV2_DIR,
                        help=f"where the regtest pool's Stratum V2 authority key is kept (default {SV2_DIR})")
    parser.add_argument("--tls-port", type=int, default=3443, help="stratum+tls port of the Bitcoin pool (0: none)")
    parser.add_argument("--ltc-tls-port", type=int, default=3444,
                        help="stratum+tls port of the Litecoin pool (0: none)")
    parser.add_argument("--tls-dir", default=str(default_tls_dir()),
                        help="where the self-signed certificate is kept between runs (paste it once)")
    parser.add_argument("--segwit", action=argparse.BooleanOptionalAction, default=True,
                        help="activate segwit on the bcoin chain first (as on every real network)")
    args = parser.parse_args(argv)
    configure_logging("info", "console")

    coins: list[dict[str, Any]] = []
    hints: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stratum-pool-run-")))
        vardiff = {"initial": 1e-6, "minimum": 1e-12, "target_seconds": 10}
        cert, key = regtest_certificate(Path(args.tls_dir))
        tls = {"tls_cert_file": str(cert), "tls_key_file": str(key)}
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
                          "daemons": [node.daemon_config()], **_sv2(args.sv2_port, args.sv2_dir)})
            if args.tls_port:
                coins[-1].update(tls, tls_port=args.tls_port)
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
                                       "password": ep.password}], **_sv2(args.ltc_sv2_port, args.sv2_dir)})
            if args.ltc_tls_port:
                coins[-1].update(tls, tls_port=args.ltc_tls_port)
        if args.coin == "bitcoincash":
            from stratum_pool.devnet.bcash import BcashNode

            bch = stack.enter_context(BcashNode(root / "bcash"))
            print(f"bcash regtest node: {bch.url}", flush=True)
            hints["bitcoincash-regtest"] = bch.new_address()  # a bchreg: cashaddr
            coins.append({"coin": "bitcoincash", "network": "regtest", "stratum_host": "127.0.0.1",
                          "stratum_port": args.bch_port, "vardiff": vardiff, "poll_interval_seconds": 1,
                          "daemons": [bch.daemon_config()]})
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
