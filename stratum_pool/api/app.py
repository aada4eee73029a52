"""The read-only HTTP side: a JSON API over the database and the running pools, the dashboard, /metrics.

Nothing here writes: the database connections are read-only (``store/queries.py``), the pools are seen
through ``PoolView``. Every answer is built from named fields, so no setting (DSN, daemon URL, password)
can leak into one.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stratum_pool.api.http import (
    MAX_CONNECTIONS,
    Application,
    HTTPError,
    HTTPServer,
    Request,
    Response,
    file_response,
)
from stratum_pool.api.live import CoinFigures
from stratum_pool.api.ratelimit import RateLimiter, RateLimitSettings
from stratum_pool.coins import COINS
from stratum_pool.hashrate import WINDOWS, Rate, WorkerFigures
from stratum_pool.metrics import HASHES_PER_DIFF1, HASHRATE_WINDOW_SECONDS
from stratum_pool.odds import TERAHASH, blocks_per_year, network_hashrate, odds
from stratum_pool.store import queries as q
from stratum_pool.store.found import FoundRecord
from stratum_pool.store.queries import DatabaseUnavailable, ReadPool

log = structlog.get_logger("stratum_pool.api")

STATIC_DIR = Path(__file__).with_name("static")

# Base58 and bech32 addresses are alphanumeric; bech32 is at most 90 characters. Anything else is refused
# before a query is made.
ADDRESS_RE = re.compile(r"[A-Za-z0-9]{1,100}")
COIN_KEY_RE = re.compile(r"[a-z0-9-]{1,40}")
# Shares and rejects per worker are counted over a day; hashrate over the metrics window (10 minutes).
COUNT_WINDOW = timedelta(hours=24)
HASHRATE_WINDOW = timedelta(seconds=HASHRATE_WINDOW_SECONDS)
# History ranges a chart may ask for: range -> bucket width in seconds.
HISTORY_RANGES = {"1h": 60, "24h": 600, "7d": 3600, "30d": 21600}
HISTORY_SPAN = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
                "30d": timedelta(days=30)}
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LEADERBOARD_SIZE = 10
# Pool-wide answers are the same for every visitor; keeping them this long bounds the database work a
# crowd of dashboards (or a scraper) can cause, whatever the rate limit.
DEFAULT_CACHE_SECONDS = 5.0
MAX_CACHE_ENTRIES = 256
# Without a database, found blocks are counted over those kept (store/found.py keeps the last 1,000).
MAX_FOUND = 1000


class PoolView(CoinFigures, Protocol):
    """What the API reads live from one running coin pool: its ``CoinFigures`` (in a multi-process pool, the
    connections, workers and hashrate of every worker) and the network difficulty."""

    @property
    def network_difficulty(self) -> float | None: ...


def hashrate(difficulty: float, seconds: float, coin_key: str) -> float:
    """Hashes per second behind ``difficulty`` worth of accepted shares over ``seconds``."""
    coin = COINS.get(coin_key)
    multiplier = coin.share_multiplier if coin is not None else 1
    return difficulty * HASHES_PER_DIFF1 / seconds / multiplier


def rates_json(rates: dict[str, Rate]) -> dict[str, dict[str, float | int]]:
    """Each window's hashrate (H/s) with the share count and the seconds behind it (a figure from 20 shares
    is a rough one)."""
    return {name: {"hashrate": r.hashrate, "shares": r.shares, "seconds": r.seconds}
            for name, r in rates.items() if name in WINDOWS}


def of_network(best: float, coin_key: str, network_difficulty: float | None) -> float | None:
    """A share's achieved difficulty (the coin's share units) as a fraction of the network difficulty."""
    coin = COINS.get(coin_key)
    if network_difficulty is None or network_difficulty <= 0:
        return None
    return best / (network_difficulty * (coin.share_multiplier if coin is not None else 1))


BEST_SHARES = ("since_block", "session", "all_time")


def best_json(best: dict[str, float], coin_key: str, network_difficulty: float | None) -> dict[str, Any]:
    """The best shares (since the last network block, this session, all time; None: not known here), each
    also as a fraction of the network difficulty."""
    out: dict[str, Any] = {}
    for name in BEST_SHARES:
        value = best.get(name)
        out[name] = None if value is None else {
            "difficulty": value, "of_network": of_network(value, coin_key, network_difficulty)}
    return out


def _block_time(coin_key: str) -> float:
    coin = COINS.get(coin_key)
    return coin.block_time_seconds if coin is not None else 0.0


def _live_worker(worker: dict[str, Any], live: WorkerFigures, coin_key: str, nd: float | None) -> None:
    """A worker's JSON with this process's figures of it."""
    worker["hashrate"] = live.rates["10m"].hashrate
    worker["rates"] = rates_json(live.rates)
    if live.last_share is not None and (worker["last_share"] is None or live.last_share > worker["last_share"]):
        worker["last_share"] = int(live.last_share)
    worker["last_seen"] = worker["last_share"] if worker["last_seen"] is None else worker["last_seen"]
    worker["best_difficulty"] = max(worker["best_difficulty"], live.best_ever)
    if worker["rejected_24h"] is None:  # no database: accepted shares counted in memory
        worker["accepted_24h"] = live.rates["24h"].shares
    worker["best_share"] = best_json({"since_block": live.best_round, "session": live.best_session,
                                      "all_time": worker["best_difficulty"]}, coin_key, nd)
    worker["started"] = int(live.started)
    worker["connected"], worker["user_agent"], worker["difficulty"] = live.connected, live.user_agent, live.difficulty


def found_json(r: FoundRecord) -> dict[str, Any]:
    """A found block kept without a database, in the shape of /api/blocks' rows."""
    return {"coin": r.coin, "symbol": _symbol(r.coin), "height": r.height, "hash": r.hash, "status": r.status,
            "confirmations": None, "reward": r.reward, "scheme": r.scheme, "finder": r.finder, "worker": r.worker,
            "found_at": int(r.found_at)}


def epoch(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp())


def _symbol(coin_key: str) -> str:
    coin = COINS.get(coin_key)
    return coin.symbol if coin is not None else ""


class BadRequest(Exception):
    """A request parameter is wrong; the message says which and is shown to the client."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, separators=(",", ":")).encode(), status, "application/json", headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": message}, status, headers)


class _Api:
    def __init__(self, db: ReadPool | None, pools: Sequence[PoolView], registry: CollectorRegistry | None,
                 limiter: RateLimiter | None, clock: Callable[[], float], monotonic: Callable[[], float],
                 cache_seconds: float) -> None:
        self.db = db
        self.pools = list(pools)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.limiter = limiter
        self.clock = clock
        self.monotonic = monotonic
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Response]] = {}

    # ----- helpers

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def need_db(self) -> ReadPool:
        if self.db is None:
            raise DatabaseUnavailable("no database configured")
        return self.db

    @staticmethod
    def coin_param(request: Request) -> str | None:
        coin = request.query.get("coin")
        if coin is None or coin == "":
            return None
        if not COIN_KEY_RE.fullmatch(coin) or coin not in COINS:
            raise BadRequest(f"coin: unknown coin; known: {', '.join(sorted(COINS))}")
        return coin

    @staticmethod
    def limit_param(request: Request) -> int:
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise BadRequest(f"limit: must be a whole number from 1 to {MAX_LIMIT}")
        return int(text)

    @staticmethod
    def range_param(request: Request) -> str:
        r = request.query.get("range", "24h")
        if r not in HISTORY_RANGES:
            raise BadRequest(f"range: must be one of {', '.join(HISTORY_RANGES)}")
        return r

    @staticmethod
    def address_param(request: Request) -> str:
        address = request.match_info["address"]
        if not ADDRESS_RE.fullmatch(address):
            raise BadRequest("address: must be 1 to 100 letters and digits")
        return address

    def history_window(self, r: str) -> tuple[datetime, datetime, int]:
        """Complete buckets only: the one still filling would read low."""
        step = HISTORY_RANGES[r]
        end_epoch = math.floor(self.clock() / step) * step
        end = datetime.fromtimestamp(end_epoch, UTC)
        return end - HISTORY_SPAN[r], end, step

    @staticmethod
    def series(coin_key: str, start: datetime, end: datetime, step: int,
               buckets: dict[datetime, float]) -> dict[str, Any]:
        points = []
        t = start
        while t < end:
            points.append([epoch(t), hashrate(buckets.get(t, 0.0), step, coin_key)])
            t += timedelta(seconds=step)
        return {"coin": coin_key, "symbol": _symbol(coin_key), "points": points}

    def live_series(self, pool: PoolView, start: datetime, end: datetime, step: int,
                    history: Callable[[float, float, float], dict[float, float]]) -> dict[str, Any]:
        """A history series from a live pool's memory (hashes per bucket) in the database series' shape."""
        key = pool.coin_key
        coin = COINS.get(key)
        # back to share difficulty, which ``series`` turns into H/s like the database's buckets
        per_hash = (coin.share_multiplier if coin is not None else 1) / HASHES_PER_DIFF1
        hashes = history(start.timestamp(), end.timestamp(), step)
        return self.series(key, start, end, step, {datetime.fromtimestamp(t, UTC): h * per_hash
                                                   for t, h in hashes.items()})

    def live_address_series(self, pool: PoolView, address: str, start: datetime, end: datetime,
                            step: int) -> dict[str, Any]:
        """An address's history from memory, with each worker's (the database answer's shape)."""
        series = self.live_series(pool, start, end, step,
                                  lambda a, b, c: pool.address_history(address, a, b, c))
        per_worker = pool.worker_history(address, start.timestamp(), end.timestamp(), step)
        series["workers"] = [
            {"name": name, "points": self.live_series(pool, start, end, step,
                                                      lambda a, b, c, h=hist: h)["points"]}  # type: ignore[misc]
            for name, hist in sorted(per_worker.items())]
        return series

    async def cached(self, request: Request, build: Callable[[], Awaitable[Response]]) -> Response:
        if self.cache_seconds <= 0:
            return await build()
        key = request.path_qs
        now = self.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return _json_copy(hit[1])
        response = await build()
        if response.status == 200:
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= MAX_CACHE_ENTRIES:
                    self._cache.clear()
            self._cache[key] = (now + self.cache_seconds, response)
            return _json_copy(response)
        return response

    # ----- middleware

    async def middleware(self, request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
        if self.limiter is not None and self.limiter.settings.enabled:
            wait = self.limiter.take(self.client_ip(request))
            if wait > 0:
                return _error(429, "too many requests", {"Retry-After": RateLimiter.retry_after(wait)})
        try:
            response = await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except DatabaseUnavailable as exc:
            log.warning("api_database_unavailable", path=request.path, error=str(exc))
            return _error(503, "database unavailable")
        except HTTPError as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason, {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers
                              else None)
            raise
        except Exception:
            log.exception("api_error", path=request.path)
            return _error(500, "internal error")
        return response

    def client_ip(self, request: Request) -> str:
        header = self.limiter.settings.client_ip_header if self.limiter is not None else ""
        if header:
            forwarded = request.headers.get(header.lower(), "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last[:64]
        return request.remote or ""

    # ----- endpoints

    async def pool(self, request: Request) -> Response:
        return await self.cached(request, self._pool)

    async def _pool(self) -> Response:
        activity: dict[str, q.CoinActivity] = {}
        blocks: dict[str, q.CoinBlocks] = {}
        database = "disabled"
        if self.db is not None:
            now = self.now()
            try:
                activity = {a.coin_key: a for a in
                            await self.db.run(q.coin_activity, now=now, since=now - HASHRATE_WINDOW)}
                blocks = {b.coin_key: b for b in await self.db.run(q.coin_blocks)}
                database = "ok"
            except DatabaseUnavailable as exc:
                log.warning("api_database_unavailable", path="/api/pool", error=str(exc))
                database = "unavailable"
        coins = []
        for p in self.pools:
            key = p.coin_key
            act = activity.get(key)
            blk = blocks.get(key)
            rates = p.rates()
            nd = p.network_difficulty
            found = p.found_blocks(MAX_FOUND) if self.db is None else []
            live_10m = rates["10m"].hashrate if "10m" in rates else p.hashrate
            coins.append({
                "coin": key, "symbol": _symbol(key), "algorithm": p.algorithm, "scheme": p.scheme,
                "fee_percent": p.fee_percent, "stratum_port": p.stratum_port,
                "height": p.height, "network_difficulty": p.network_difficulty,
                "connections": p.connections, "workers_online": p.workers_online,
                "hashrate": p.hashrate,
                # from the database's shares when there is one; else from this process's memory
                "hashrate_10m": live_10m if self.db is None else None if database != "ok" else
                hashrate(act.difficulty if act else 0.0, HASHRATE_WINDOW_SECONDS, key),
                "hashrate_1h": rates["1h"].hashrate if "1h" in rates else None,
                "hashrate_24h": rates["24h"].hashrate if "24h" in rates else None,
                "rates": rates_json(rates),
                "network_hashrate": network_hashrate(nd, _block_time(key)),
                **odds(nd, p.hashrate),
                "blocks_per_year_per_ths": blocks_per_year(nd, TERAHASH),
                "best_share": best_json(p.best_share(), key, nd),
                # this process's connections by firmware, the most first
                "devices": [{"firmware": f, "online": n} for f, n in
                            sorted(p.devices().items(), key=lambda fn: (-fn[1], fn[0]))],
                # without a database: the addresses this process saw mine in the last 10 minutes
                "miners": sum(1 for _, h, _ in p.miners() if h > 0) if self.db is None else
                None if database != "ok" else (act.miners if act else 0),
                "workers": None if database != "ok" else (act.workers if act else 0),
                "blocks_found": len(found) if self.db is None else None if database != "ok" else
                (blk.total if blk else 0),
                "blocks": {"pending": sum(1 for r in found if r.accepted), "confirmed": 0,
                           "orphaned": 0} if self.db is None else None if database != "ok" else {
                    "pending": blk.pending if blk else 0, "confirmed": blk.confirmed if blk else 0,
                    "orphaned": blk.orphaned if blk else 0},
                "last_block": ({"height": found[0].height, "hash": found[0].hash, "status": found[0].status,
                                "found_at": int(found[0].found_at)} if found else None) if self.db is None else
                None if blk is None else {
                    "height": blk.last_height, "hash": blk.last_hash, "status": blk.last_status,
                    "found_at": epoch(blk.last_found_at)},
            })
        return _json({"database": database, "coins": coins})

    async def pool_hashrate(self, request: Request) -> Response:
        coin = self.coin_param(request)
        r = self.range_param(request)

        async def build() -> Response:
            start, end, step = self.history_window(r)
            if self.db is None:  # from memory
                series = [self.live_series(p, start, end, step, p.pool_history) for p in self.pools
                          if coin is None or p.coin_key == coin]
                return _json({"range": r, "step_seconds": step, "series": series})
            rows = await self.need_db().run(q.pool_difficulty_history, start=start, end=end, step_seconds=step,
                                            coin_key=coin)
            keys = [p.coin_key for p in self.pools if coin is None or p.coin_key == coin]
            by_coin: dict[str, dict[datetime, float]] = {k: {} for k in keys}
            for row in rows:
                by_coin.setdefault(row.coin_key, {})[row.start] = row.difficulty
            return _json({"range": r, "step_seconds": step,
                          "series": [self.series(k, start, end, step, b) for k, b in by_coin.items()]})

        return await self.cached(request, build)

    async def miner(self, request: Request) -> Response:
        address = self.address_param(request)
        coin = self.coin_param(request)
        now = self.now()
        count_since = now - COUNT_WINDOW
        recent_since = now - HASHRATE_WINDOW

        async def load(conn: q.Conn) -> list[dict[str, Any]] | None:
            accounts = await q.find_accounts(conn, address, coin)
            if not accounts:
                return None
            out = []
            for account in accounts:
                workers = await q.account_workers(conn, account.id, now=now, recent_since=recent_since,
                                                  count_since=count_since)
                balance = await q.account_balance(conn, account.id)
                credits = await q.account_credits(conn, account.id)
                payouts = await q.account_payouts(conn, account.id)
                account_json = self.account_json(account, workers, balance, credits, payouts)
                out.append(self.with_live(account_json, self.pool_of(account.coin_key), address))
            return out

        if self.db is not None:
            accounts = await self.db.run(load)
        else:  # no database: the workers this process has seen, from memory; the same shape
            accounts = [self.with_live(self.live_account(p, address), p, address) for p in self.pools
                        if (coin is None or p.coin_key == coin)
                        and (p.workers_of(address) or p.found_blocks(1, address))] or None
        if accounts is None:
            return _error(404, "unknown miner")
        first = accounts[0]
        return _json({"address": address,
                      **{k: first[k] for k in ("coin", "hashrate", "network_difficulty", "expected_seconds_to_block",
                                               "chance_of_block")},
                      "accounts": accounts})

    def live_leaders(self) -> tuple[list[q.Ranked], list[q.Ranked], list[q.Ranked]]:
        """The leaderboard's three lists from memory; ``hashrate`` in the database's unit (difficulty over the
        10-minute window), so one conversion serves both."""
        by_rate: list[q.Ranked] = []
        by_blocks: list[q.Ranked] = []
        by_best: list[q.Ranked] = []
        for p in self.pools:
            key = p.coin_key
            coin = COINS.get(key)
            per_hash = (coin.share_multiplier if coin is not None else 1) / HASHES_PER_DIFF1
            miners = p.miners()
            rate = sorted(((-h, a) for a, h, _ in miners if h > 0))[:LEADERBOARD_SIZE]
            by_rate += [q.Ranked(key, a, -h * per_hash * HASHRATE_WINDOW_SECONDS) for h, a in rate]
            best = sorted(((-b, a) for a, _, b in miners if b > 0))[:LEADERBOARD_SIZE]
            by_best += [q.Ranked(key, a, -b) for b, a in best]
            found: dict[str, int] = {}
            for r in p.found_blocks(MAX_FOUND):
                if r.accepted:
                    found[r.finder] = found.get(r.finder, 0) + 1
            blocks = sorted((-n, a) for a, n in found.items())[:LEADERBOARD_SIZE]
            by_blocks += [q.Ranked(key, a, float(-n)) for n, a in blocks]
        return by_rate, by_blocks, by_best

    def pool_of(self, coin_key: str) -> PoolView | None:
        return next((p for p in self.pools if p.coin_key == coin_key), None)

    @staticmethod
    def live_account(pool: PoolView, address: str) -> dict[str, Any]:
        """An account of a pool without a database: solo pays in the coinbase, so there is no balance; its
        credits are the blocks it found (kept in memory and the local file)."""
        key = pool.coin_key
        return {"coin": key, "symbol": _symbol(key), "hashrate": 0.0, "workers_online": 0,
                "best_difficulty": 0.0, "accepted_24h": 0, "rejected_24h": None,
                "balance": 0, "pending": 0, "paid": 0, "workers": [],
                "credits": [{"block_height": r.height, "block_hash": r.hash, "amount": r.reward, "scheme": r.scheme,
                             "status": r.status, "found_at": int(r.found_at)}
                            for r in pool.found_blocks(DEFAULT_LIMIT, address) if r.accepted],
                "payouts": []}

    @staticmethod
    def with_live(account: dict[str, Any], pool: PoolView | None, address: str) -> dict[str, Any]:
        """``account`` with this process's live figures of its workers (honest hashrate over 10 min, 1 h,
        24 h with their share counts; best shares) and the odds at the account's hashrate. A worker the
        database has and this process has not seen keeps the database's figures."""
        key = account["coin"]
        nd = pool.network_difficulty if pool is not None else None
        live = {w.name: w for w in pool.workers_of(address)} if pool is not None else {}
        by_name = {w["name"]: w for w in account["workers"]}
        for name, figures in live.items():
            worker = by_name.get(name)
            if worker is None:
                worker = by_name[name] = {"name": name, "hashrate": 0.0, "last_share": None, "last_seen": None,
                                          "best_difficulty": 0.0, "accepted_24h": 0, "rejected_24h": None}
                account["workers"].append(worker)
            _live_worker(worker, figures, key, nd)
        account["workers"].sort(key=lambda w: w["name"])
        for worker in account["workers"]:  # one shape, whether this process has seen the worker or not
            if "rates" not in worker:
                worker.update(rates=None, started=None, connected=False, user_agent=None, difficulty=None,
                              best_share=best_json({"all_time": worker["best_difficulty"]}, key, nd))
        if live:
            workers = account["workers"]
            account["hashrate"] = sum(w["hashrate"] for w in workers)
            account["workers_online"] = sum(1 for w in workers if w["hashrate"] > 0)
            account["best_difficulty"] = max((w["best_difficulty"] for w in workers), default=0.0)
            if account["rejected_24h"] is None:  # no database: accepted shares counted in memory
                account["accepted_24h"] = sum(w["accepted_24h"] for w in workers)
            account["rates"] = {
                name: {"hashrate": sum(f.rates[name].hashrate for f in live.values()),
                       "shares": sum(f.rates[name].shares for f in live.values()),
                       "seconds": max(f.rates[name].seconds for f in live.values())} for name in WINDOWS}
            account["best_share"] = best_json(
                {"since_block": max(f.best_round for f in live.values()),
                 "session": max(f.best_session for f in live.values()),
                 "all_time": account["best_difficulty"]}, key, nd)
        else:
            account["rates"] = None
            account["best_share"] = best_json({"all_time": account["best_difficulty"]}, key, nd)
        account["network_difficulty"] = nd
        account.update(odds(nd, account["hashrate"]))
        return account

    @staticmethod
    def account_json(account: q.Account, workers: list[q.WorkerStats], balance: q.Balance,
                     credits: list[q.Credit], payouts: list[q.Payout]) -> dict[str, Any]:
        key = account.coin_key
        worker_list = [{
            "name": w.name,
            "hashrate": hashrate(w.recent_difficulty, HASHRATE_WINDOW_SECONDS, key),
            "last_share": epoch(w.last_share), "last_seen": epoch(w.last_seen),
            "best_difficulty": w.best_difficulty,
            "accepted_24h": w.accepted, "rejected_24h": w.rejected,
        } for w in workers]
        return {
            "coin": key, "symbol": account.symbol,
            "hashrate": hashrate(sum(w.recent_difficulty for w in workers), HASHRATE_WINDOW_SECONDS, key),
            "workers_online": sum(1 for w in workers if w.recent_difficulty > 0),
            "best_difficulty": max((w.best_difficulty for w in workers), default=0.0),
            "accepted_24h": sum(w.accepted for w in workers),
            "rejected_24h": sum(w.rejected for w in workers),
            "balance": balance.confirmed, "pending": balance.pending, "paid": balance.paid,
            "workers": worker_list,
            "credits": [{"block_height": c.block_height, "block_hash": c.block_hash, "amount": c.amount,
                         "scheme": c.scheme, "status": c.status, "found_at": epoch(c.found_at)} for c in credits],
            "payouts": [{"batch": p.batch_id, "amount": p.amount, "status": p.status, "txid": p.txid,
                         "created_at": epoch(p.created_at), "finished_at": epoch(p.finished_at)} for p in payouts],
        }

    async def miner_hashrate(self, request: Request) -> Response:
        address = self.address_param(request)
        coin = self.coin_param(request)
        r = self.range_param(request)
        start, end, step = self.history_window(r)

        async def load(conn: q.Conn) -> list[dict[str, Any]] | None:
            accounts = await q.find_accounts(conn, address, coin)
            if not accounts:
                return None
            out = []
            for account in accounts:
                rows = await q.account_difficulty_history(conn, account.id, start=start, end=end, step_seconds=step)
                series = self.series(account.coin_key, start, end, step, {b.start: b.difficulty for b in rows})
                by_worker: dict[str, dict[datetime, float]] = {}
                for w in await q.worker_difficulty_history(conn, account.id, start=start, end=end,
                                                           step_seconds=step):
                    by_worker.setdefault(w.worker, {})[w.start] = w.difficulty
                series["workers"] = [{"name": name, "points": self.series(account.coin_key, start, end, step,
                                                                           buckets)["points"]}
                                     for name, buckets in sorted(by_worker.items())]
                out.append(series)
            return out

        if self.db is not None:
            series = await self.db.run(load)
        else:  # from memory: the pools that have seen a worker of this address
            series = [self.live_address_series(p, address, start, end, step)
                      for p in self.pools if (coin is None or p.coin_key == coin) and p.workers_of(address)] or None
        if series is None:
            return _error(404, "unknown miner")
        return _json({"address": address, "range": r, "step_seconds": step, "series": series})

    async def blocks(self, request: Request) -> Response:
        coin = self.coin_param(request)
        limit = self.limit_param(request)

        async def build() -> Response:
            if self.db is None:  # the found blocks kept without a database (memory and the local file)
                found = sorted((r for p in self.pools if coin is None or p.coin_key == coin
                                for r in p.found_blocks(limit)), key=lambda r: -r.found_at)[:limit]
                return _json({"blocks": [found_json(r) for r in found]})
            rows = await self.need_db().run(q.recent_blocks, coin_key=coin, limit=limit)
            return _json({"blocks": [{
                "coin": b.coin_key, "symbol": b.symbol, "height": b.height, "hash": b.hash, "status": b.status,
                "confirmations": b.confirmations, "reward": b.reward, "scheme": b.scheme, "finder": b.finder,
                "worker": b.worker, "found_at": epoch(b.found_at)} for b in rows]})

        return await self.cached(request, build)

    async def payouts(self, request: Request) -> Response:
        coin = self.coin_param(request)
        limit = self.limit_param(request)

        async def build() -> Response:
            if self.db is None:  # without a database the pool pays only in coinbases (solo): no batches
                return _json({"payouts": []})
            rows = await self.need_db().run(q.recent_payout_batches, coin_key=coin, limit=limit)
            return _json({"payouts": [{
                "id": b.id, "coin": b.coin_key, "symbol": b.symbol, "status": b.status, "txid": b.txid,
                "total": b.total, "outputs": b.outputs, "created_at": epoch(b.created_at),
                "finished_at": epoch(b.finished_at)} for b in rows]})

        return await self.cached(request, build)

    async def leaderboard(self, request: Request) -> Response:
        coin = self.coin_param(request)

        async def build() -> Response:
            now = self.now()

            async def load(conn: q.Conn) -> tuple[list[q.Ranked], list[q.Ranked], list[q.Ranked]]:
                return (await q.top_recent_difficulty(conn, now=now, since=now - HASHRATE_WINDOW,
                                                      limit=LEADERBOARD_SIZE),
                        await q.top_blocks_found(conn, limit=LEADERBOARD_SIZE),
                        await q.top_best_difficulty(conn, limit=LEADERBOARD_SIZE))

            if self.db is None:  # from this process's memory and its found blocks
                by_rate, by_blocks, by_best = self.live_leaders()
            else:
                by_rate, by_blocks, by_best = await self.db.run(load)
            keys = [p.coin_key for p in self.pools]
            for row in (*by_rate, *by_blocks, *by_best):
                if row.coin_key not in keys:
                    keys.append(row.coin_key)
            coins = []
            for key in keys:
                if coin is not None and key != coin:
                    continue
                coins.append({
                    "coin": key, "symbol": _symbol(key),
                    "hashrate": [{"address": r.address, "hashrate": hashrate(r.value, HASHRATE_WINDOW_SECONDS, key)}
                                 for r in by_rate if r.coin_key == key],
                    "blocks": [{"address": r.address, "blocks": int(r.value)} for r in by_blocks if r.coin_key == key],
                    "best_difficulty": [{"address": r.address, "best_difficulty": r.value}
                                        for r in by_best if r.coin_key == key],
                })
            return _json({"coins": coins})

        return await self.cached(request, build)

    async def health(self, request: Request) -> Response:
        coins = [{"coin": p.coin_key, "height": p.height, "connections": p.connections} for p in self.pools]
        if self.db is None:
            return _json({"status": "ok", "database": "disabled", "coins": coins})
        try:
            await self.db.ping()
        except DatabaseUnavailable as exc:
            log.warning("api_health_database_unavailable", error=str(exc))
            return _json({"status": "degraded", "database": "unreachable", "coins": coins}, 503)
        return _json({"status": "ok", "database": "ok", "coins": coins})

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)

    async def index(self, request: Request) -> Response:
        return file_response(STATIC_DIR / "index.html")


def _json_copy(response: Response) -> Response:
    # Each answer gets its own headers (``_add_headers`` adds to them); cached ones share the body.
    return Response(response.body, response.status, "application/json")


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
}


def _add_headers(request: Request, response: Response) -> None:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        # Public, read-only data: any page may read it.
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
        response.headers.setdefault("Cache-Control", "no-cache")


def create_app(dsn: str | None, pools: Sequence[PoolView], metrics_registry: CollectorRegistry | None, *,
               rate_limit: RateLimitSettings | None = None,
               clock: Callable[[], float] = time.time,
               monotonic: Callable[[], float] = time.monotonic,
               db_pool_size: int = 4,
               cache_seconds: float = DEFAULT_CACHE_SECONDS,
               bans: Callable[[], list[dict[str, object]]] | None = None) -> Application:
    """The API and dashboard application.

    ``dsn`` None or "": no database (the pool endpoints answer from the live pools only, the others 503).
    ``clock`` is wall time (windows of the queries), ``monotonic`` drives the rate limiter and the cache.
    Database connections are opened on first use, so the app starts whether or not the database is up.
    ``bans`` lists the banned miner IPs (``GET /api/bans``: ip, until, reason); the API binds loopback by
    default, and miners' IPs are not secret to the operator.
    """
    db = ReadPool(dsn, size=db_pool_size) if dsn else None
    settings = rate_limit if rate_limit is not None else RateLimitSettings()
    limiter = RateLimiter(settings, monotonic) if settings.enabled else None
    api = _Api(db, pools, metrics_registry, limiter, clock, monotonic, cache_seconds)
    app = Application(api.middleware)
    app.on_response.append(_add_headers)
    r = app
    r.add_get("/", api.index)
    r.add_static("/static/", STATIC_DIR)
    r.add_get("/health", api.health)
    r.add_get("/metrics", api.metrics)
    r.add_get("/api/pool", api.pool)
    r.add_get("/api/pool/hashrate", api.pool_hashrate)
    r.add_get("/api/miner/{address}", api.miner)
    r.add_get("/api/miner/{address}/hashrate", api.miner_hashrate)
    r.add_get("/api/blocks", api.blocks)
    r.add_get("/api/payouts", api.payouts)
    r.add_get("/api/leaderboard", api.leaderboard)

    async def list_bans(request: Request) -> Response:
        return _json({"bans": bans() if bans is not None else []})

    r.add_get("/api/bans", list_bans)

    async def close_db() -> None:
        if db is not None:
            await db.close()

    app.on_cleanup.append(close_db)
    return app


async def start_api_server(app: Application, host: str = "127.0.0.1", port: int = 8080, *,
                           max_connections: int = MAX_CONNECTIONS,
                           on_refused: Callable[[], None] | None = None) -> tuple[HTTPServer, int]:
    """Serve ``app`` on ``host:port`` (port 0: any free one) to at most ``max_connections`` clients at once
    (``on_refused`` hears of each one closed past it); returns the server (``await server.close()`` to stop:
    it closes the connections and the database's) and the bound port."""
    server = HTTPServer(app, max_connections=max_connections, on_refused=on_refused)
    bound = await server.start(host, port)
    log.info("api_listening", host=host, port=bound)
    return server, bound


if TYPE_CHECKING:  # here, not in live.py: live must not import app (no cycle inside api/)
    from stratum_pool.api.live import CoinPoolView

    _conforms: type[PoolView] = CoinPoolView

__all__ = ["PoolView", "RateLimitSettings", "create_app", "hashrate", "start_api_server"]
