"""The HTTP API answers from a real, seeded database: every figure matches the rows put in."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from api_client import ApiClient
from api_seed import ALICE, BLOCK_HASHES, BOB, CAROL, NOW_EPOCH, POOLS, TXID, seed
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from stratum_pool.api import RateLimitSettings, create_app
from stratum_pool.api.ratelimit import RateLimiter

H = 2**32  # hashes behind one share of difficulty 1
ND = 4.656542373906925e-10  # the bitcoin pool's network difficulty
SECRET = "hunter2-not-for-clients"
UNREACHABLE_DSN = f"postgresql://apiuser:{SECRET}@127.0.0.1:1/pool"
NO_LIMIT = RateLimitSettings(enabled=False)


def make_client(dsn: str | None, **kwargs: Any) -> ApiClient:
    kwargs.setdefault("rate_limit", NO_LIMIT)
    kwargs.setdefault("cache_seconds", 0)
    app = create_app(dsn, POOLS, kwargs.pop("registry", None), clock=lambda: NOW_EPOCH, **kwargs)
    return ApiClient(app)


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    seed(pg_dsn)
    # A password the server does not need (trust auth) but that must never show in an answer.
    return psycopg.conninfo.make_conninfo(pg_dsn, password=SECRET)


@pytest.fixture
async def client(seeded_dsn: str) -> AsyncIterator[ApiClient]:
    async with make_client(seeded_dsn) as c:
        yield c


async def get(client: ApiClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


# ----- the pool


async def test_pool_status_per_coin(client: ApiClient) -> None:
    body = await get(client, "/api/pool")
    assert body["database"] == "ok"
    btc, ltc = body["coins"]
    assert btc == {
        "coin": "bitcoin-regtest", "symbol": "rBTC", "algorithm": "sha256d", "scheme": "pplns", "fee_percent": 1.0,
        "stratum_port": 3333, "height": 106, "network_difficulty": 4.656542373906925e-10,
        "connections": 3, "workers_online": 2, "hashrate": 1.5e9,
        # rig1's ten minutes of difficulty 6 and bob's 30, over 600 s
        "hashrate_10m": (60 + 30) * H / 600,
        "miners": 2, "workers": 2,
        "blocks_found": 3, "blocks": {"pending": 1, "confirmed": 1, "orphaned": 1},
        "last_block": {"height": 105, "hash": BLOCK_HASHES[105], "status": "pending", "found_at": NOW_EPOCH - 3600},
        # the live figures of the process (its memory), over each window with the shares behind them
        "hashrate_1h": 1.2e9, "hashrate_24h": 1.0e9,
        "rates": {"10m": {"hashrate": 1.5e9, "shares": 500, "seconds": 600.0},
                  "1h": {"hashrate": 1.2e9, "shares": 2000, "seconds": 3600.0},
                  "24h": {"hashrate": 1.0e9, "shares": 9000, "seconds": 86000.0}},
        # odds: a block takes difficulty x 2**32 hashes; regtest's is tiny, so a block is all but certain
        "network_hashrate": ND * H / 600,
        "expected_seconds_to_block": ND * H / 1.5e9,
        "chance_of_block": {"day": 1.0, "week": 1.0, "month": 1.0, "year": 1.0},
        "blocks_per_year_per_ths": 365 * 86400 * 1e12 / (ND * H),
        "best_share": {"since_block": {"difficulty": 1e-10, "of_network": 1e-10 / ND},
                       "session": {"difficulty": 9e-10, "of_network": 9e-10 / ND},
                       "all_time": {"difficulty": 9e-10, "of_network": 9e-10 / ND}},
        "devices": [{"firmware": "bitaxe/BM1366/v2.4.0", "online": 1}, {"firmware": "cpuminer/2.5.1", "online": 1}],
    }
    assert ltc["coin"] == "litecoin-regtest"
    assert ltc["hashrate_10m"] == 3 * 65536 * H / 600 / 65536  # scrypt shares stand for 65536 times fewer hashes
    assert (ltc["miners"], ltc["workers"], ltc["blocks_found"], ltc["last_block"]) == (1, 1, 0, None)


async def test_pool_hashrate_history_per_minute(client: ApiClient) -> None:
    body = await get(client, "/api/pool/hashrate?range=1h&coin=bitcoin-regtest")
    assert (body["range"], body["step_seconds"]) == ("1h", 60)
    (series,) = body["series"]
    points = dict(series["points"])
    # sixty complete minutes, the one still filling (NOW) left out
    assert sorted(points) == [NOW_EPOCH - 3600 + 60 * i for i in range(60)]
    assert points[NOW_EPOCH - 600] == 100 * H / 60
    assert points[NOW_EPOCH - 300] == (6 + 30) * H / 60
    assert points[NOW_EPOCH - 60] == 6 * H / 60
    assert points[NOW_EPOCH - 3600] == 0.0


async def test_pool_hashrate_history_per_ten_minutes(client: ApiClient) -> None:
    body = await get(client, "/api/pool/hashrate?range=24h")
    assert body["step_seconds"] == 600
    by_coin = {s["coin"]: dict(s["points"]) for s in body["series"]}
    btc = by_coin["bitcoin-regtest"]
    assert len(btc) == 144
    assert btc[NOW_EPOCH - 600] == (9 * 6 + 100 + 30) * H / 600
    assert btc[NOW_EPOCH - 7200] == 8 * H / 600
    assert sum(by_coin["litecoin-regtest"].values()) == 3 * H / 600


async def test_recent_blocks(client: ApiClient) -> None:
    body = await get(client, "/api/blocks")
    assert [b["height"] for b in body["blocks"]] == [105, 103, 101]
    assert body["blocks"][0] == {
        "coin": "bitcoin-regtest", "symbol": "rBTC", "height": 105, "hash": BLOCK_HASHES[105], "status": "pending",
        "confirmations": 3, "reward": 5_000_000_000, "scheme": "pplns", "finder": BOB, "worker": "",
        "found_at": NOW_EPOCH - 3600}
    assert [(b["status"], b["finder"], b["worker"]) for b in body["blocks"][1:]] == [
        ("orphaned", ALICE, "rig2"), ("confirmed", ALICE, "rig1")]
    assert [b["height"] for b in (await get(client, "/api/blocks?limit=1"))["blocks"]] == [105]
    assert (await get(client, "/api/blocks?coin=litecoin-regtest"))["blocks"] == []


async def test_recent_payout_batches(client: ApiClient) -> None:
    body = await get(client, "/api/payouts")
    assert body["payouts"] == [
        {"id": 2, "coin": "bitcoin-regtest", "symbol": "rBTC", "status": "failed", "txid": None, "total": 5000,
         "outputs": 1, "created_at": NOW_EPOCH - 1800, "finished_at": NOW_EPOCH - 1740},
        {"id": 1, "coin": "bitcoin-regtest", "symbol": "rBTC", "status": "sent", "txid": TXID,
         "total": 2_876_543_211, "outputs": 2, "created_at": NOW_EPOCH - 7200, "finished_at": NOW_EPOCH - 7190},
    ]
    assert "wallet said no" not in str(body)  # wallet errors are for operators


async def test_leaderboard(client: ApiClient) -> None:
    body = await get(client, "/api/leaderboard")
    btc, ltc = body["coins"]
    assert btc["hashrate"] == [{"address": ALICE, "hashrate": 60 * H / 600}, {"address": BOB, "hashrate": 30 * H / 600}]
    # orphans do not count; ties go by address
    assert btc["blocks"] == [{"address": ALICE, "blocks": 1}, {"address": BOB, "blocks": 1}]
    assert btc["best_difficulty"] == [{"address": ALICE, "best_difficulty": 1234.5},
                                      {"address": BOB, "best_difficulty": 50.0}]
    assert ltc["hashrate"] == [{"address": CAROL, "hashrate": 3 * H / 600}]
    assert ltc["blocks"] == []
    only = await get(client, "/api/leaderboard?coin=litecoin-regtest")
    assert [c["coin"] for c in only["coins"]] == ["litecoin-regtest"]


# ----- one miner


async def test_miner_workers_balance_and_history(client: ApiClient) -> None:
    body = await get(client, f"/api/miner/{ALICE}")
    assert body["address"] == ALICE
    (account,) = body["accounts"]
    rig1, rig2 = account["workers"]
    assert rig1 == {"name": "rig1", "hashrate": 60 * H / 600, "last_share": NOW_EPOCH, "last_seen": NOW_EPOCH,
                    "best_difficulty": 1234.5,
                    # ten minutes of 3 accepted / 1 rejected, plus 50 / 2 just outside the hashrate window;
                    # the minute 25 hours ago is outside the day
                    "accepted_24h": 10 * 3 + 50, "rejected_24h": 10 + 2,
                    # not seen by this process: no live rates, the database's best share only
                    "rates": None, "started": None, "connected": False, "user_agent": None, "difficulty": None,
                    "best_share": {"since_block": None, "session": None,
                                   "all_time": {"difficulty": 1234.5, "of_network": 1234.5 / ND}}}
    assert rig2 == {"name": "rig2", "hashrate": 0.0, "last_share": NOW_EPOCH - 7200, "last_seen": NOW_EPOCH,
                    "best_difficulty": 99.0, "accepted_24h": 4, "rejected_24h": 0, "rates": None, "started": None,
                    "connected": False, "user_agent": None, "difficulty": None,
                    "best_share": {"since_block": None, "session": None,
                                   "all_time": {"difficulty": 99.0, "of_network": 99.0 / ND}}}
    # the odds at the account's hashrate, also at the top of the answer
    expected = ND * H / (60 * H / 600)
    odds = {"network_difficulty": ND, "expected_seconds_to_block": expected,
            "chance_of_block": {"day": -math.expm1(-86400 / expected), "week": -math.expm1(-7 * 86400 / expected),
                                "month": -math.expm1(-365 * 86400 / 12 / expected),
                                "year": -math.expm1(-365 * 86400 / expected)}}
    assert {k: account[k] for k in odds} == odds
    assert {k: body[k] for k in odds} == odds
    assert (body["coin"], body["hashrate"]) == ("bitcoin-regtest", 60 * H / 600)
    assert {k: account[k] for k in ("coin", "symbol", "hashrate", "workers_online", "best_difficulty",
                                    "accepted_24h", "rejected_24h", "balance", "pending", "paid")} == {
        "coin": "bitcoin-regtest", "symbol": "rBTC", "hashrate": 60 * H / 600, "workers_online": 1,
        "best_difficulty": 1234.5, "accepted_24h": 84, "rejected_24h": 12,
        "balance": 123_456_789, "pending": 1_000_000_000, "paid": 2_000_000_000}
    assert account["credits"] == [
        {"block_height": 105, "block_hash": BLOCK_HASHES[105], "amount": 1_000_000_000, "scheme": "pplns",
         "status": "pending", "found_at": NOW_EPOCH - 3600},
        {"block_height": 101, "block_hash": BLOCK_HASHES[101], "amount": 3_000_000_000, "scheme": "pplns",
         "status": "confirmed", "found_at": NOW_EPOCH - 10800},
    ]
    assert account["payouts"] == [
        {"batch": 2, "amount": 5000, "status": "failed", "txid": None, "created_at": NOW_EPOCH - 1800,
         "finished_at": NOW_EPOCH - 1740},
        {"batch": 1, "amount": 2_000_000_000, "status": "sent", "txid": TXID, "created_at": NOW_EPOCH - 7200,
         "finished_at": NOW_EPOCH - 7190},
    ]


async def test_scrypt_miner_hashrate_is_scaled(client: ApiClient) -> None:
    (account,) = (await get(client, f"/api/miner/{CAROL}"))["accounts"]
    assert account["hashrate"] == 3 * 65536 * H / 600 / 65536
    assert account["balance"] == 0  # no balances row yet
    assert (account["credits"], account["payouts"]) == ([], [])


async def test_miner_hashrate_history(client: ApiClient) -> None:
    body = await get(client, f"/api/miner/{ALICE}/hashrate")
    assert (body["range"], body["step_seconds"]) == ("24h", 600)
    (series,) = body["series"]
    points = dict(series["points"])
    assert len(points) == 144
    assert points[NOW_EPOCH - 600] == (9 * 6 + 100) * H / 600
    assert points[NOW_EPOCH - 7200] == 8 * H / 600
    assert sum(1 for v in points.values() if v) == 2
    minutes = dict((await get(client, f"/api/miner/{BOB}/hashrate?range=1h"))["series"][0]["points"])
    assert minutes[NOW_EPOCH - 300] == 30 * H / 60
    # each worker's own series beside the account's
    workers = {w["name"]: dict(w["points"]) for w in series["workers"]}
    assert sorted(workers) == ["rig1", "rig2"]
    assert workers["rig1"][NOW_EPOCH - 600] == (9 * 6 + 100) * H / 600
    assert workers["rig2"][NOW_EPOCH - 7200] == 8 * H / 600 and workers["rig1"][NOW_EPOCH - 7200] == 0.0
    month = await get(client, f"/api/miner/{ALICE}/hashrate?range=30d")
    assert month["step_seconds"] == 21600 and len(month["series"][0]["points"]) == 120


async def test_unknown_miner_is_404(client: ApiClient) -> None:
    assert await get(client, "/api/miner/bcrt1qnobody000000000000000000000000000000", 404) == {"error": "unknown miner"}
    await get(client, "/api/miner/bcrt1qnobody/hashrate", 404)
    await get(client, f"/api/miner/{ALICE}?coin=litecoin-regtest", 404)


@pytest.mark.parametrize("address", ["not-an-address", "a" * 101, "bcrt1q%27%3B--", "%E2%82%BFcoin", "a%20b"])
async def test_malformed_address_is_400(client: ApiClient, address: str) -> None:
    body = await get(client, f"/api/miner/{address}", 400)
    assert "address" in body["error"]
    await get(client, f"/api/miner/{address}/hashrate", 400)


@pytest.mark.parametrize("query", ["coin=dogecoin", "coin=bitcoin-regtest%27", "limit=0", "limit=1000", "limit=x"])
async def test_bad_parameters_are_400(client: ApiClient, query: str) -> None:
    await get(client, f"/api/blocks?{query}", 400)


async def test_bad_history_range_is_400(client: ApiClient) -> None:
    await get(client, "/api/pool/hashrate?range=1y", 400)


async def test_unknown_path_and_method_answer_json(client: ApiClient) -> None:
    await get(client, "/api/nothing", 404)
    response = await client.post("/api/pool")
    assert response.status == 405
    assert (await response.json())["error"]


# ----- limits, health, metrics, secrets


async def test_rate_limit_answers_429_with_retry_after(seeded_dsn: str) -> None:
    now = [100.0]
    limit = RateLimitSettings(requests_per_second=0.5, burst=3)
    async with make_client(seeded_dsn, rate_limit=limit, monotonic=lambda: now[0]) as client:
        for _ in range(3):
            await get(client, "/api/pool")
        response = await client.get("/api/pool")
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"  # one token back at 0.5 per second
        assert await response.json() == {"error": "too many requests"}
        now[0] += 2.0
        await get(client, "/api/pool")
        assert (await client.get("/health")).status == 429


def test_rate_limiter_forgets_the_oldest_clients() -> None:
    limiter = RateLimiter(RateLimitSettings(requests_per_second=1, burst=1, max_clients=2), lambda: 0.0)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 1.0
    limiter.take("b")
    limiter.take("c")
    assert len(limiter) == 2
    assert limiter.take("a") == 0.0  # forgotten, so full again


async def test_rate_limit_can_key_on_a_proxy_header(seeded_dsn: str) -> None:
    limit = RateLimitSettings(requests_per_second=0.001, burst=1, client_ip_header="X-Forwarded-For")
    async with make_client(seeded_dsn, rate_limit=limit) as client:
        assert (await client.get("/health", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})).status == 200
        assert (await client.get("/health", headers={"X-Forwarded-For": "10.0.0.2"})).status == 200
        assert (await client.get("/health", headers={"X-Forwarded-For": "10.0.0.1"})).status == 429


async def test_health_ok(client: ApiClient) -> None:
    body = await get(client, "/health")
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert [c["coin"] for c in body["coins"]] == ["bitcoin-regtest", "litecoin-regtest"]


async def test_database_down_is_503_and_says_nothing_of_the_dsn() -> None:
    async with make_client(UNREACHABLE_DSN) as client:
        health = await client.get("/health")
        assert health.status == 503
        assert (await health.json())["database"] == "unreachable"
        miner = await client.get(f"/api/miner/{ALICE}")
        assert (miner.status, await miner.json()) == (503, {"error": "database unavailable"})
        pool = await get(client, "/api/pool")  # live figures still answer
        assert pool["database"] == "unavailable"
        assert pool["coins"][0]["hashrate"] == 1.5e9 and pool["coins"][0]["miners"] is None
        for response in (health, miner):
            text = await response.text()
            assert SECRET not in text and "apiuser" not in text and ":1/" not in text


async def test_without_a_database(seeded_dsn: str) -> None:
    async with make_client(None) as client:
        assert (await get(client, "/health"))["database"] == "disabled"
        assert (await get(client, "/api/pool"))["coins"][1]["height"] == 250
        # no 503: what this process keeps in memory (nothing found here yet); test_api_memory has the rest
        assert await get(client, "/api/blocks") == {"blocks": []}
        assert await get(client, "/api/payouts") == {"payouts": []}
        await get(client, f"/api/miner/{ALICE}", 404)  # this process has not seen it


async def test_metrics_are_prometheus_text(seeded_dsn: str) -> None:
    registry = CollectorRegistry()
    Counter("stratum_pool_test_events_total", "events", ["coin"], registry=registry).labels("bitcoin-regtest").inc(7)
    async with make_client(seeded_dsn, registry=registry) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    (sample,) = families["stratum_pool_test_events"].samples
    assert (sample.labels, sample.value) == ({"coin": "bitcoin-regtest"}, 7.0)


async def test_no_answer_contains_the_dsn(client: ApiClient, seeded_dsn: str) -> None:
    paths = ["/", "/static/app.js", "/health", "/metrics", "/api/pool", "/api/pool/hashrate", "/api/blocks",
             "/api/payouts", "/api/leaderboard", f"/api/miner/{ALICE}", f"/api/miner/{ALICE}/hashrate",
             "/api/miner/bad!", "/api/nothing"]
    dbname = psycopg.conninfo.conninfo_to_dict(seeded_dsn)["dbname"]
    assert isinstance(dbname, str)
    for path in paths:
        response = await client.get(path)
        text = await response.text()
        assert response.status < 500, path
        for secret in (SECRET, dbname, seeded_dsn, "port=5432", "127.0.0.1:5432"):
            assert secret not in text, (path, secret)


async def test_dashboard_and_static_files_are_served(client: ApiClient) -> None:
    index = await client.get("/")
    assert index.status == 200 and "text/html" in index.content_type
    assert '<script src="/static/app.js"' in await index.text()
    assert "default-src 'self'" in index.headers["Content-Security-Policy"]
    for path in ("/static/app.js", "/static/style.css"):
        assert (await client.get(path)).status == 200
    assert (await client.get("/static/../app.py")).status == 404


async def test_pool_answers_are_cached_briefly(seeded_dsn: str) -> None:
    now = [0.0]
    async with make_client(seeded_dsn, cache_seconds=5, monotonic=lambda: now[0]) as client:
        first = await get(client, "/api/blocks")
        with psycopg.connect(seeded_dsn, autocommit=True) as conn:
            conn.execute("UPDATE blocks SET confirmations = 4 WHERE height = 105")
        assert await get(client, "/api/blocks") == first
        now[0] += 6
        assert (await get(client, "/api/blocks"))["blocks"][0]["confirmations"] == 4


def test_coin_pool_view_reads_a_running_pool() -> None:
    from types import SimpleNamespace

    from stratum_pool.api import CoinPoolView
    from stratum_pool.coins import COINS, DIFF1_TARGET
    from stratum_pool.metrics import PoolMetrics
    from stratum_pool.pool import CoinLive

    now = [50.0]
    metrics = PoolMetrics(clock=lambda: now[0])
    metrics.watch_coin("litecoin-regtest")
    metrics.share_accepted("litecoin-regtest", 65536.0 * 600, 65536)
    now[0] += 600  # the pool has run for the whole window
    coin_pool = SimpleNamespace(
        coin=COINS["litecoin-regtest"], settings=SimpleNamespace(mode="prop", fee_percent=0.5), port=3334,
        jobs=SimpleNamespace(template=SimpleNamespace(height=250, target=DIFF1_TARGET // 4)),
        server=SimpleNamespace(sessions=[SimpleNamespace(authorized=True), SimpleNamespace(authorized=False)]),
        sv2_server=None,
        metrics=metrics)
    view = CoinPoolView(CoinLive(coin_pool))  # type: ignore[arg-type]
    assert (view.coin_key, view.algorithm, view.scheme, view.fee_percent, view.stratum_port) == (
        "litecoin-regtest", "scrypt", "prop", 0.5, 3334)
    assert (view.height, view.network_difficulty, view.connections, view.workers_online) == (250, 4.0, 2, 1)
    assert view.hashrate == H
    coin_pool.jobs.template = None
    assert (view.height, view.network_difficulty) == (None, None)


async def test_a_dropped_connection_costs_no_failed_request(client: ApiClient, seeded_dsn: str) -> None:
    await get(client, "/health")
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = 'stratum-pool-api' AND datname = current_database()")
    assert (await get(client, f"/api/miner/{ALICE}"))["accounts"][0]["balance"] == 123_456_789
