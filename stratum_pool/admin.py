"""Operator commands that need no SQL: ``stratum-pool workers ADDRESS``, ``stratum-pool accounts set-threshold
ADDRESS AMOUNT``, ``stratum-pool bans list | lift IP``.

``workers`` and ``accounts`` work on the database (store/), so they answer whether the pool runs or not; a
threshold set here is used by the next payout run. ``bans list`` asks the running pool (its HTTP API's
``/api/bans``): bans live in the pool's memory, shared by its workers; ``bans lift`` goes to the running
pool's admin socket (``[pool] admin_socket``, server/admin.py), which lifts it at once (with ``workers = N``:
every worker within a second).
Each function prints its answer and returns the exit status (0 ok, 1 failed, 2 bad arguments); an expected
failure is one line on stderr.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import psycopg

from stratum_pool.config import CoinSettings, Settings
from stratum_pool.daemon.rpc import SATOSHIS_PER_COIN
from stratum_pool.metrics import HASHES_PER_DIFF1, HASHRATE_WINDOW_SECONDS
from stratum_pool.store import accounting, queries

CONNECT_TIMEOUT_SECONDS = 10


def _error(text: str) -> None:
    print(text, file=sys.stderr)


def pick_coin(settings: Settings, coin_key: str | None) -> CoinSettings | None:
    """The configured coin named ``coin_key`` (``bitcoin-mainnet``), or the only one; None after saying why."""
    coins = settings.coins
    if coin_key is None:
        if len(coins) == 1:
            return coins[0]
        _error(f"--coin: required with several coins; one of {', '.join(cs.coin.key for cs in coins)}")
        return None
    for cs in coins:
        if cs.coin.key == coin_key:
            return cs
    _error(f"--coin: {coin_key!r} is not configured; one of {', '.join(cs.coin.key for cs in coins)}")
    return None


def _coins_text(amount: int) -> str:
    return f"{amount / SATOSHIS_PER_COIN:.8f}"


def _hashrate_text(hashes_per_second: float) -> str:
    for unit in ("H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"):
        if hashes_per_second < 1000 or unit == "PH/s":
            return f"{hashes_per_second:.2f} {unit}"
        hashes_per_second /= 1000
    raise AssertionError("unreachable")


async def _connect(dsn: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)


async def workers_command(settings: Settings, address: str, coin_key: str | None, now: datetime | None = None) -> int:
    """The address's workers per coin: last seen, hashrate over the last 10 minutes, shares of the last 24 h,
    best share; and its balance."""
    if not settings.database.dsn:
        _error("config error: database.dsn: required for workers")
        return 2
    when = now or datetime.now(UTC)
    async with await _connect(settings.database.dsn) as conn:
        accounts = await queries.find_accounts(conn, address, coin_key)
        if not accounts:
            _error(f"{address}: no such miner" + (f" on {coin_key}" if coin_key else ""))
            return 1
        for account in accounts:
            coin = next((cs.coin for cs in settings.coins if cs.coin.key == account.coin_key), None)
            multiplier = coin.share_multiplier if coin is not None else 1
            workers = await queries.account_workers(
                conn, account.id, now=when, recent_since=when - timedelta(seconds=HASHRATE_WINDOW_SECONDS),
                count_since=when - timedelta(days=1))
            balance = await queries.account_balance(conn, account.id)
            print(f"{account.coin_key} {account.address}: {len(workers)} worker(s); balance "
                  f"{_coins_text(balance.confirmed)} {account.symbol} confirmed, {_coins_text(balance.pending)} "
                  f"pending, {_coins_text(balance.paid)} paid")
            for w in workers:
                rate = w.recent_difficulty * HASHES_PER_DIFF1 / HASHRATE_WINDOW_SECONDS / multiplier
                print(f"  {w.name or '(unnamed)'}: {_hashrate_text(rate)}, last seen "
                      f"{w.last_seen.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, 24 h: {w.accepted} accepted "
                      f"{w.rejected} rejected, best share {w.best_difficulty:.6g}")
    return 0


def parse_amount(text: str) -> int | None:
    """``default`` -> None (the pool's ``payout_threshold``); else a positive integer of base units."""
    if text == "default":
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"AMOUNT: {text!r} is not a positive whole number of base units (or 'default')")
    return int(text)


async def set_threshold_command(settings: Settings, address: str, amount_text: str, coin_key: str | None) -> int:
    cs = pick_coin(settings, coin_key)
    if cs is None:
        return 2
    if cs.mode == "solo":
        _error(f"{cs.coin.key}: solo mode pays the finder in the coinbase; there is no payout threshold")
        return 2
    if not settings.database.dsn:
        _error("config error: database.dsn: required for accounts")
        return 2
    try:
        amount = parse_amount(amount_text)
    except ValueError as exc:
        _error(str(exc))
        return 2
    from stratum_pool.chain.address import address_to_script

    try:
        address_to_script(address, cs.coin)
    except ValueError as exc:
        _error(f"ADDRESS: {address!r} is not a {cs.coin.key} address ({exc})")
        return 2
    async with await _connect(settings.database.dsn) as conn:
        coin_id = await accounting.ensure_coin_id(conn, cs.coin)
        _, created = await accounting.set_payout_threshold(conn, coin_id, address, amount)
    shown = (f"the pool's default ({_coins_text(cs.payout_threshold)} {cs.coin.symbol})" if amount is None
             else f"{amount} base units ({_coins_text(amount)} {cs.coin.symbol})")
    print(f"{cs.coin.key} {address}: payout threshold {shown}" + ("; account created" if created else ""))
    return 0


def bans_lift_command(settings: Settings, ip: str, timeout: float = 10.0) -> int:
    from stratum_pool.server.admin import normalize_ip, request

    path = settings.admin_socket
    if not path:
        _error("config error: pool.admin_socket: not set; the running pool takes `bans lift` on that socket")
        return 2
    try:
        address = normalize_ip(ip)
    except ValueError as exc:
        _error(f"IP: {exc}")
        return 2
    try:
        answer = request(path, {"command": "bans.lift", "ip": address}, timeout=timeout)
    except OSError as exc:
        _error(f"bans: no pool answers on {path}: {exc.strerror or exc}")
        return 1
    if not answer.get("ok"):
        _error(f"bans: the pool refused: {answer.get('error')}")
        return 1
    lifted = answer.get("lifted")
    if lifted == "sent":
        print(f"{address}: ban lifted on all {answer.get('workers')} workers (within a second)")
    elif lifted:
        print(f"{address}: ban lifted")
    else:
        print(f"{address}: was not banned")
    return 0


def bans_list_command(settings: Settings, timeout: float = 10.0) -> int:
    """The running pool's bans, from its API (``[api] host:port``, ``/api/bans``)."""
    api = settings.api
    if not api.enabled:
        _error("api.enabled: false; the running pool's bans are read through its API")
        return 2
    host = "127.0.0.1" if api.host in ("0.0.0.0", "") else "::1" if api.host == "::" else api.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{api.port}/api/bans"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            bans = json.loads(response.read())["bans"]
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", None) or exc
        _error(f"bans: the pool's API at {url} did not answer: {reason}")
        return 1
    print(f"{len(bans)} ban(s)")
    for ban in bans:
        until = datetime.fromtimestamp(float(ban["until"]), UTC)
        print(f"  {ban['ip']}: {ban['reason']}, until {until:%Y-%m-%d %H:%M:%S} UTC")
    return 0
