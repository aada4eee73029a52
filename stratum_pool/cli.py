"""``stratum-pool serve | check-config | notify``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from stratum_pool.chain.address import address_to_script
from stratum_pool.config import ConfigError, Settings, load_settings


def _load(path: str) -> Settings:
    return load_settings(path, address_check=address_to_script)


async def serve(settings: Settings) -> None:
    """Run every configured coin until SIGINT or SIGTERM."""
    from stratum_pool.pool import Pool

    pool = Pool(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await pool.start()
    for coin in pool.coins:
        print(f"stratum+tcp://{coin.settings.stratum_host}:{coin.port}  {coin.coin.name} {coin.coin.network} "
              f"({coin.coin.algorithm})", flush=True)
    try:
        await stop.wait()
    finally:
        await pool.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratum-pool", description="Stratum V1 mining pool server")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the pool")
    p_serve.add_argument("--config", required=True)
    p_check = sub.add_parser("check-config", help="validate a config file and exit")
    p_check.add_argument("--config", required=True)
    p_notify = sub.add_parser("notify", help="tell a running pool about a new block (for -blocknotify)")
    p_notify.add_argument("--to", required=True, metavar="HOST:PORT", help="the coin's notify_listen address")
    p_notify.add_argument("blockhash", help="the new block's hash (%%s in -blocknotify)")
    args = parser.parse_args(argv)

    if args.command == "notify":
        from stratum_pool.daemon.notify import send_block_notify

        host, _, port = args.to.rpartition(":")
        if not host or not port.isdigit():
            print(f"--to: {args.to!r} is not HOST:PORT", file=sys.stderr)
            return 2
        send_block_notify(host, int(port), args.blockhash)
        return 0

    try:
        settings = _load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        for cs in settings.coins:
            print(f"ok: {cs.coin.key} ({cs.coin.algorithm}) mode={cs.mode} port={cs.stratum_port} "
                  f"daemons={len(cs.daemons)}")
        return 0

    from stratum_pool.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
