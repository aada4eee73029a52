"""Administering without SQL: ``stratum-pool workers ADDRESS``, ``accounts set-threshold ADDRESS AMOUNT`` on a
real PostgreSQL, and ``bans list`` from a pool's real HTTP API; each run as the operator runs it (the CLI in a
process of its own), each expected failure one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from stratum_pool.api import create_app, start_api_server
from stratum_pool.coins import get_coin
from stratum_pool.devnet.common import free_port
from stratum_pool.server.limits import BanList
from stratum_pool.store import accounting
from stratum_pool.store import shares as q

COIN = get_coin("bitcoin", "regtest")
MINER = "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r"  # a regtest P2PKH address
POOL = "n2eMqTT929pb1RDNuqEnxdaLau1rxy3efi"


def write_config(path: Path, dsn: str, *, mode: str = "pplns", api_port: int = 0, api: bool = True) -> Path:
    pool = f'pool_address = "{POOL}"\n' if mode != "solo" else ""
    path.write_text(f'[database]\ndsn = "{dsn}"\n\n[api]\nenabled = {str(api).lower()}\nport = {api_port}\n\n'
                    f'[[coins]]\ncoin = "bitcoin"\nnetwork = "regtest"\nmode = "{mode}"\n{pool}'
                    'payout_threshold = 1000000\n\n[[coins.daemons]]\nurl = "http://127.0.0.1:1"\npassword = "x"\n')
    return path


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratum_pool.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stderr.startswith(start), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def threshold(dsn: str) -> tuple[bool, int | None]:
    async def read() -> tuple[bool, int | None]:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            coin_id = await accounting.get_coin_id(conn, COIN)
            return (False, None) if coin_id is None else await accounting.account_threshold(conn, coin_id, MINER)

    return asyncio.run(read())


def test_set_threshold(pg_dsn: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "pool.toml", pg_dsn)
    assert threshold(pg_dsn) == (False, None)
    result = cli("accounts", "set-threshold", "--config", config, MINER, "5000000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"bitcoin-regtest {MINER}: payout threshold 5000000 base units "
                                     "(0.05000000 rBTC); account created")
    assert threshold(pg_dsn) == (True, 5_000_000)
    result = cli("accounts", "set-threshold", "--config", config, MINER, "default")
    assert result.stdout.strip() == (f"bitcoin-regtest {MINER}: payout threshold the pool's default "
                                     "(0.01000000 rBTC)")
    assert threshold(pg_dsn) == (True, None)


@pytest.mark.parametrize(("args", "start"), [
    ((MINER, "0"), "AMOUNT: '0' is not a positive whole number"),
    ((MINER, "1.5"), "AMOUNT: '1.5' is not a positive whole number"),
    (("bc1qnotregtest", "5000"), "ADDRESS: 'bc1qnotregtest' is not a bitcoin-regtest address"),
    (("--coin", "litecoin-regtest", MINER, "5000"), "--coin: 'litecoin-regtest' is not configured"),
])
def test_set_threshold_refuses_bad_arguments(pg_dsn: str, tmp_path: Path, args: tuple[str, ...],
                                             start: str) -> None:
    config = write_config(tmp_path / "pool.toml", pg_dsn)
    one_line_error(cli("accounts", "set-threshold", "--config", config, *args), 2, start)
    assert threshold(pg_dsn) == (False, None)


def test_set_threshold_in_solo_mode_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "pool.toml", pg_dsn, mode="solo")
    one_line_error(cli("accounts", "set-threshold", "--config", config, MINER, "5000"), 2,
                   "bitcoin-regtest: solo mode pays the finder")


def test_set_threshold_with_the_database_down(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    config = write_config(tmp_path / "pool.toml", dead)
    one_line_error(cli("accounts", "set-threshold", "--config", config, MINER, "5000"), 1, "database: ")


def test_workers(pg_dsn: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(pg_dsn) as conn:
        coin_id = q.ensure_coin(conn, COIN.key, COIN.symbol, COIN.coinbase_maturity)
        account = q.ensure_accounts(conn, coin_id, [MINER])[MINER]
        ids = q.ensure_workers(conn, [(account, "rig1", "bitaxe", now), (account, "", "cgminer", now)])
        minute = int(now.timestamp()) - 60
        # rig1: 600 difficulty in the last 10 minutes -> 600 * 2**32 / 600 s = 4.29 GH/s; 3 accepted, 1 rejected
        q.add_share_stats(conn, [(ids[(account, "rig1")], minute, 3, 1, 600.0)])
        conn.commit()
    config = write_config(tmp_path / "pool.toml", pg_dsn)
    result = cli("workers", "--config", config, MINER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"bitcoin-regtest {MINER}: 2 worker(s); balance 0.00000000 rBTC confirmed, "
                        "0.00000000 pending, 0.00000000 paid")
    assert lines[1].startswith("  (unnamed): 0.00 H/s, last seen ")
    assert lines[2].startswith("  rig1: 4.29 GH/s, last seen ")
    assert lines[2].endswith("24 h: 3 accepted 1 rejected, best share 0")

    one_line_error(cli("workers", "--config", config, POOL), 1, f"{POOL}: no such miner")


@pytest.fixture
def api_with_bans() -> Iterator[Callable[[BanList], int]]:
    """Serve a pool's real API (aiohttp on 127.0.0.1) whose /api/bans reads ``bans``, on a thread's loop."""
    import threading

    loops: list[asyncio.AbstractEventLoop] = []

    def start(bans: BanList) -> int:
        loop = asyncio.new_event_loop()
        loops.append(loop)
        rows = lambda: [{"ip": b.ip, "until": b.until, "reason": b.reason} for b in bans.active()]  # noqa: E731
        app = create_app(None, [], None, bans=rows)
        _, port = loop.run_until_complete(start_api_server(app, "127.0.0.1", 0))
        threading.Thread(target=loop.run_forever, daemon=True).start()
        return port

    yield start
    for loop in loops:
        loop.call_soon_threadsafe(loop.stop)


def test_bans_list_from_the_running_api(api_with_bans: Callable[[BanList], int], tmp_path: Path) -> None:
    bans = BanList()
    bans.ban("203.0.113.7", 600, "invalid_shares")
    bans.ban("198.51.100.2", 60, "malformed")
    port = api_with_bans(bans)
    config = write_config(tmp_path / "pool.toml", "", mode="solo", api_port=port)
    result = cli("bans", "list", "--config", config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 ban(s)"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["  198.51.100.2: malformed",
                                                                 "  203.0.113.7: invalid_shares"]
    bans.lift("203.0.113.7")
    assert cli("bans", "list", "--config", config).stdout.splitlines()[0] == "1 ban(s)"


def test_bans_list_with_the_pool_down(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pool.toml", "", mode="solo", api_port=free_port())
    one_line_error(cli("bans", "list", "--config", config), 1, "bans: the pool's API at http://127.0.0.1:")
