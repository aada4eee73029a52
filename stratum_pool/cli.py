"""``stratum-pool serve | check-config | migrate | payout | notify`` (``serve``: ``stratum_pool.serve.run``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stratum_pool.config import ConfigError, Settings, load_pool_settings

if TYPE_CHECKING:
    from stratum_pool.daemon.probe import Check


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratum-pool", description="Stratum V1 mining pool server")
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the pool")
    p_serve.add_argument("--config", required=True)
    p_check = sub.add_parser("check-config", help="validate a config file and exit")
    p_check.add_argument("--config", required=True)
    p_check.add_argument("--probe", action="store_true",
                         help="also contact each daemon, wallet and the database; exit 1 if any check fails")
    p_migrate = sub.add_parser("migrate", help="create or upgrade the database schema (safe to run twice)")
    p_migrate.add_argument("--config", required=True)
    p_payout = sub.add_parser("payout", help="pay confirmed balances once, then exit (cron / systemd timer)")
    p_payout.add_argument("--config", required=True)
    p_payout.add_argument("--dry-run", action="store_true", help="print what would be paid; change nothing")
    p_prune = sub.add_parser("prune-shares", help="drop share partitions older than [database] retention_days "
                                                  "(the running pool does it hourly), then exit")
    p_prune.add_argument("--config", required=True)
    p_workers = sub.add_parser("workers", help="a miner's workers, hashrate, shares and balance (from the database)")
    p_workers.add_argument("--config", required=True)
    p_workers.add_argument("--coin", default=None, help="a configured coin key, e.g. bitcoin-mainnet (default: all)")
    p_workers.add_argument("address")
    p_accounts = sub.add_parser("accounts", help="change an account (pool modes)")
    accounts_sub = p_accounts.add_subparsers(dest="accounts_command", required=True)
    p_threshold = accounts_sub.add_parser("set-threshold", help="an address's own payout threshold")
    p_threshold.add_argument("--config", required=True)
    p_threshold.add_argument("--coin", default=None, help="the configured coin key (needed with several coins)")
    p_threshold.add_argument("address")
    p_threshold.add_argument("amount", help="base units (satoshis), or 'default' for the pool's payout_threshold")
    p_bans = sub.add_parser("bans", help="the running pool's bans (through its API)")
    bans_sub = p_bans.add_subparsers(dest="bans_command", required=True)
    p_bans_list = bans_sub.add_parser("list", help="the IPs the running pool refuses, why and until when")
    p_bans_list.add_argument("--config", required=True)
    p_bans_lift = bans_sub.add_parser("lift", help="lift one IP's ban in the running pool at once (pool.admin_socket)")
    p_bans_lift.add_argument("--config", required=True)
    p_bans_lift.add_argument("ip")
    p_notify = sub.add_parser("notify", help="tell a running pool about a new block (for -blocknotify)")
    p_notify.add_argument("--to", required=True, metavar="HOST:PORT", help="the coin's notify_listen address")
    p_notify.add_argument("blockhash", help="the new block's hash (%%s in -blocknotify)")
    p_sv2keys = sub.add_parser("sv2-keys", help="create the Stratum V2 authority key file; print the key for miners")
    p_sv2keys.add_argument("--out", required=True, metavar="FILE", help="the key file to create (mode 0600)")
    args = parser.parse_args(argv)

    if args.command == "sv2-keys":
        return sv2_keys_command(args.out)

    if args.command == "notify":
        from stratum_pool.daemon.notify import send_block_notify

        host, _, port = args.to.rpartition(":")
        if not host or not port.isdigit():
            print(f"--to: {args.to!r} is not HOST:PORT", file=sys.stderr)
            return 2
        try:
            send_block_notify(host, int(port), args.blockhash)
        except OSError as exc:
            print(f"notify: cannot send to {args.to}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return 0

    try:
        settings = load_pool_settings(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        for cs in settings.coins:
            print(f"ok: {cs.coin.key} ({cs.coin.algorithm}) mode={cs.mode} port={cs.stratum_port} "
                  f"daemons={len(cs.daemons)}")
        return probe_command(settings) if args.probe else 0

    from stratum_pool.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command != "serve":
        return database_command(settings, args)
    from stratum_pool.daemon.rpc import DaemonError
    from stratum_pool.serve import run

    try:
        return run(settings, args.config)
    except DaemonError as exc:  # no daemon ready within the start timeout: one line, not a traceback
        print(f"daemon: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # a stratum port or the admin socket taken, a spool directory not writable
        print(f"serve: {one_line(exc)}", file=sys.stderr)
        return 1


def database_command(settings: Settings, args: argparse.Namespace) -> int:
    """The commands that read or write the database (not ``serve``: psycopg costs a pool without a database
    ~10 MiB of memory, so only the parts that use it import it)."""
    import psycopg

    try:
        if args.command == "migrate":
            return migrate_command(settings)
        if args.command == "payout":
            return asyncio.run(payout_command(settings, args.dry_run))
        if args.command == "prune-shares":
            return prune_command(settings)
        if args.command in ("workers", "accounts", "bans"):
            from stratum_pool import admin

            if args.command == "workers":
                return asyncio.run(admin.workers_command(settings, args.address, args.coin))
            if args.command == "accounts":
                return asyncio.run(admin.set_threshold_command(settings, args.address, args.amount, args.coin))
            if args.bans_command == "lift":
                return admin.bans_lift_command(settings, args.ip)
            return admin.bans_list_command(settings)
    except psycopg.Error as exc:  # database down, refused, bad DSN: one line that names it, not a traceback
        print(f"database: {one_line(exc)}", file=sys.stderr)
        return 1
    raise AssertionError(f"unknown command {args.command!r}")


class VersionAction(argparse.Action):
    """``--version``: the version looked up when asked for, not on every run (importlib.metadata and the
    distribution's files would stay in the serving pool's memory)."""

    def __init__(self, option_strings: Sequence[str], dest: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"stratum-pool {package_version()}")
        parser.exit()


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, whether installed from an sdist, a wheel or
    editable)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stratum-pool")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def probe_command(settings: Settings) -> int:
    """``check-config --probe``: one line per check (``ok:``, ``FAIL:`` or ``skip:``); 1 if any failed."""
    from stratum_pool.daemon.probe import FAIL, PASS, Check, probe_daemon, probe_wallet
    from stratum_pool.daemon.rpc import DaemonEndpoint
    from stratum_pool.payout.wallet import wallet_endpoint

    checks: list[Check] = []
    for cs in settings.coins:
        for d in cs.daemons:
            try:
                endpoint = DaemonEndpoint(name=d.name, url=d.url, user=d.user or None, password=d.password or None,
                                          cookie_file=d.cookie_file or None, timeout=d.timeout_seconds)
            except ValueError as exc:
                checks.append(Check(f"{cs.coin.key}: daemon {d.name}", FAIL, str(exc)))
                continue
            checks += probe_daemon(endpoint, cs.coin, f"{cs.coin.key}: daemon {d.name}",
                                   timeout=min(d.timeout_seconds, 10.0))
        if cs.mode != "solo":  # the pool pays from a wallet; solo coinbases pay the finder
            try:
                wallet = wallet_endpoint(cs)
            except ValueError as exc:
                checks.append(Check(f"{cs.coin.key}: payout wallet", FAIL, str(exc)))
            else:
                checks += probe_wallet(wallet, f"{cs.coin.key}: payout")
    if settings.database.dsn:
        checks += probe_database(settings.database.dsn)
    for check in checks:
        print(check.line())
    failed = sum(c.failed for c in checks)
    print(f"{len(checks)} checks: {sum(c.status == PASS for c in checks)} ok, {failed} failed")
    return 1 if failed else 0


def probe_database(dsn: str) -> list[Check]:
    import psycopg

    from stratum_pool.daemon.probe import FAIL, PASS, SKIP, Check
    from stratum_pool.store.migrate import schema_status

    try:
        current, latest = schema_status(dsn)
    except psycopg.Error as exc:
        return [Check("database: reachable", FAIL, one_line(exc)),
                Check("database: schema current", SKIP, "database unreachable")]
    schema = (Check("database: schema current", PASS, f"version {current}") if current == latest else
              Check("database: schema current", FAIL,
                    f"version {current}, this release needs {latest}: run stratum-pool migrate"))
    return [Check("database: reachable", PASS), schema]


def prune_command(settings: Settings) -> int:
    from datetime import UTC, datetime

    from stratum_pool.store.retention import prune_shares

    db = settings.database
    if not db.dsn or db.retention_days < 1:
        print("config error: database.dsn and database.retention_days (at least 1) are required for prune-shares",
              file=sys.stderr)
        return 2
    # a PPLNS coin's open window: sized as recorded with its newest block (the CLI has no template)
    report = prune_shares(db.dsn, db.retention_days, datetime.now(UTC),
                          [cs.coin.key for cs in settings.coins if cs.mode == "prop"],
                          {cs.coin.key: None for cs in settings.coins if cs.mode == "pplns"})
    print(f"dropped {len(report.dropped)} share partition(s) older than {db.retention_days} days"
          + (f": {', '.join(report.dropped)}" if report.dropped else ""))
    if report.kept_for_windows:
        print(f"kept for reward windows (pending blocks, open rounds): {', '.join(report.kept_for_windows)}")
    return 0


def migrate_command(settings: Settings) -> int:
    from stratum_pool.store.migrate import current_version, migrate

    if not settings.database.dsn:
        print("config error: database.dsn: required for migrate", file=sys.stderr)
        return 2
    applied = migrate(settings.database.dsn)
    print(f"schema version {current_version(settings.database.dsn)}; applied now: {applied or 'nothing'}")
    return 0


async def payout_command(settings: Settings, dry_run: bool) -> int:
    """One payout run per coin. Exit 1 when a batch failed or needs an operator."""
    from stratum_pool.daemon.rpc import DaemonClient, DaemonEndpoint
    from stratum_pool.payout.wallet import wallet_client
    from stratum_pool.payout.worker import run_payout

    if not settings.database.dsn:
        print("config error: database.dsn: required for payouts", file=sys.stderr)
        return 2
    status = 0
    for cs in settings.coins:
        if cs.mode == "solo":
            print(f"{cs.coin.key}: solo mode, the coinbase pays the finder; nothing to pay")
            continue
        wallet = wallet_client(cs)
        chain = DaemonClient([DaemonEndpoint(name=d.name, url=d.url, user=d.user or None,
                                             password=d.password or None, cookie_file=d.cookie_file or None,
                                             timeout=d.timeout_seconds) for d in cs.daemons], cs.coin)
        try:
            report = await run_payout(settings.database.dsn, cs, wallet, dry_run=dry_run, chain=chain)
        finally:
            await wallet.close()
            await chain.close()
        print("\n".join(f"{cs.coin.key}: {line}" for line in report.lines()))
        await notify_payouts(settings, cs.coin.key, cs.coin.symbol, report.batches)
        if report.problems:
            status = 1
    return status


def sv2_keys_command(out: str) -> int:
    """Create the authority key file (never over an existing one) and print its public key for miners."""
    from stratum_pool.protocol.v2.keys import create_authority_key_file, encode_authority_key, xonly_public_key

    try:
        secret = create_authority_key_file(out)
    except FileExistsError:
        print(f"sv2-keys: --out {out!r} exists; an authority key is never replaced (miners have it)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sv2-keys: --out {out!r}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"authority key file: {out} (keep it secret; mode 0600)", file=sys.stderr)
    # stdout holds only the key, so a script can capture it
    print(encode_authority_key(xonly_public_key(secret)))
    return 0


async def notify_payouts(settings: Settings, coin_key: str, symbol: str, batches: list[Any]) -> None:
    """``payout_sent`` to the ``[[notify]]`` receivers: one per address of each batch this run sent."""
    from stratum_pool.webhooks import Notifier
    from stratum_pool.webhooks.events import payout_sent

    sent = [(b, o) for b in batches if b.status == "sent" and b.txid and b.batch_id is not None for o in b.outputs]
    if not settings.notify or not sent:
        return
    notifier = Notifier(settings.notify)
    notifier.start()
    for batch, output in sent:
        notifier.emit(payout_sent(coin_key, symbol, output.address, output.amount, batch.txid, batch.batch_id,
                                  time.time()))
    await notifier.stop(drain_seconds=60.0)  # the payout run exits next: its messages get a minute


if __name__ == "__main__":
    sys.exit(main())
