"""The JSON API without a database answers from the pools' memory (workers' rates, best shares, history, found
blocks kept in the local file) in the same shape as with one: no 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from api_client import ApiClient
from api_seed import ALICE, NOW_EPOCH, POOLS, FakePool, seed

from stratum_pool.api import RateLimitSettings, create_app
from stratum_pool.hashrate import Rate, WorkerFigures
from stratum_pool.store.found import FoundRecord

H = 2**32
ND = POOLS[0].network_difficulty
assert ND is not None
RIG1 = WorkerFigures("rig1", {"10m": Rate(4e6, 450, 60.0), "1h": Rate(4e6, 450, 60.0), "24h": Rate(4e6, 450, 60.0)},
                     NOW_EPOCH - 60.0, NOW_EPOCH - 2.0, 3e-9, 1e-9, 7e-9, True, "bitaxe/BM1366/v2.4.0", 1e-6)
RIG2 = WorkerFigures("rig2", {"10m": Rate(0.0, 0, 600.0), "1h": Rate(1e6, 30, 3600.0),
                              "24h": Rate(5e5, 40, 86400.0)}, NOW_EPOCH - 90000.0, NOW_EPOCH - 3000.0, 0.0, 0.0, 2e-9)
BLOCK = FoundRecord("bitcoin-regtest", 107, "07" * 32, ALICE, "rig1", 5_000_000_000, "solo", True, "",
                    NOW_EPOCH - 30.0)
REFUSED = FoundRecord("bitcoin-regtest", 108, "08" * 32, ALICE, "rig1", 5_000_000_000, "solo", False, "bad-prevblk",
                      NOW_EPOCH - 10.0)
MEMORY = [FakePool(**{**POOLS[0].__dict__, "live_workers": {ALICE: [RIG1, RIG2]},
                      "history": {ALICE: {NOW_EPOCH - 120.0: 60 * 4e6, NOW_EPOCH - 60.0: 60 * 3e6},
                                  "": {NOW_EPOCH - 60.0: 60 * 3e6}},
                      "found": [BLOCK, REFUSED]}),
          POOLS[1]]


def client_for(dsn: str | None, pools: list[FakePool]) -> ApiClient:
    app = create_app(dsn, pools, None, clock=lambda: NOW_EPOCH, rate_limit=RateLimitSettings(enabled=False),
                     cache_seconds=0)
    return ApiClient(app)


@pytest.fixture
async def memory() -> AsyncIterator[ApiClient]:
    async with client_for(None, MEMORY) as c:
        yield c


async def get(client: ApiClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def test_miner_from_memory(memory: ApiClient) -> None:
    body = await get(memory, f"/api/miner/{ALICE}")
    (account,) = body["accounts"]
    assert (body["coin"], body["hashrate"], body["network_difficulty"]) == ("bitcoin-regtest", 4e6, ND)
    assert body["expected_seconds_to_block"] == ND * H / 4e6
    rig1, rig2 = account["workers"]
    assert rig1 == {
        "name": "rig1", "hashrate": 4e6, "last_share": NOW_EPOCH - 2, "last_seen": NOW_EPOCH - 2,
        "best_difficulty": 7e-9, "accepted_24h": 450, "rejected_24h": None, "started": NOW_EPOCH - 60,
        "connected": True, "user_agent": "bitaxe/BM1366/v2.4.0", "difficulty": 1e-6,
        "rates": {name: {"hashrate": 4e6, "shares": 450, "seconds": 60.0} for name in ("10m", "1h", "24h")},
        "best_share": {"since_block": {"difficulty": 1e-9, "of_network": 1e-9 / ND},
                       "session": {"difficulty": 3e-9, "of_network": 3e-9 / ND},
                       "all_time": {"difficulty": 7e-9, "of_network": 7e-9 / ND}}}
    assert (rig2["hashrate"], rig2["rates"]["1h"]["shares"]) == (0.0, 30)
    assert (account["hashrate"], account["workers_online"], account["accepted_24h"]) == (4e6, 1, 490)
    # the account's rates add its workers' up, and say over how long the oldest has been seen
    assert account["rates"]["1h"] == {"hashrate": 5e6, "shares": 480, "seconds": 3600.0}
    # solo pays in the coinbase: its credits are the blocks it found that a daemon took
    assert account["credits"] == [{"block_height": 107, "block_hash": "07" * 32, "amount": 5_000_000_000,
                                   "scheme": "solo", "status": "pending", "found_at": NOW_EPOCH - 30}]
    assert (account["balance"], account["payouts"]) == (0, [])


async def test_pool_blocks_history_and_leaders_from_memory(memory: ApiClient) -> None:
    pool = await get(memory, "/api/pool")
    assert pool["database"] == "disabled"
    btc = pool["coins"][0]
    assert (btc["hashrate_10m"], btc["blocks_found"], btc["blocks"]) == (
        1.5e9, 2, {"pending": 1, "confirmed": 0, "orphaned": 0})
    assert btc["last_block"] == {"height": 108, "hash": "08" * 32, "status": "rejected", "found_at": NOW_EPOCH - 10}
    assert (btc["miners"], pool["coins"][1]["miners"]) == (1, 0)  # alice mined in the last 10 minutes
    blocks = (await get(memory, "/api/blocks"))["blocks"]
    assert [(b["height"], b["status"], b["finder"], b["worker"]) for b in blocks] == [
        (108, "rejected", ALICE, "rig1"), (107, "pending", ALICE, "rig1")]
    minutes = dict((await get(memory, f"/api/miner/{ALICE}/hashrate?range=1h"))["series"][0]["points"])
    assert (minutes[NOW_EPOCH - 120], minutes[NOW_EPOCH - 60], minutes[NOW_EPOCH - 180]) == (4e6, 3e6, 0.0)
    pool_minutes = dict((await get(memory, "/api/pool/hashrate?range=1h&coin=bitcoin-regtest"))["series"][0]["points"])
    assert pool_minutes[NOW_EPOCH - 60] == 3e6
    board = (await get(memory, "/api/leaderboard"))["coins"][0]
    assert board["hashrate"] == [{"address": ALICE, "hashrate": pytest.approx(4e6)}]
    assert board["blocks"] == [{"address": ALICE, "blocks": 1}]
    assert board["best_difficulty"] == [{"address": ALICE, "best_difficulty": 7e-9}]
    await get(memory, "/api/miner/bcrt1qnobody/hashrate", 404)


def same_shape(a: Any, b: Any, where: str = "") -> None:
    """The same keys all the way down (lists: their first items, when both have one; None stands for any
    value not known in one of the two modes)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            same_shape(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if a and b:
            same_shape(a[0], b[0], f"{where}[0]")
    else:
        assert a is None or b is None or isinstance(a, type(b)) or isinstance(b, type(a)) or \
            {type(a), type(b)} <= {int, float}, (where, a, b)


async def test_the_same_shape_with_and_without_a_database(pg_dsn: str, memory: ApiClient) -> None:
    seed(pg_dsn)
    async with client_for(pg_dsn, MEMORY) as db:
        for path in ("/api/pool", f"/api/miner/{ALICE}", "/api/blocks", "/api/leaderboard",
                     "/api/pool/hashrate", f"/api/miner/{ALICE}/hashrate?range=1h"):
            with_db, without = await get(db, path), await get(memory, path)
            if path == "/api/pool":
                with_db.pop("database"), without.pop("database")
            same_shape(with_db, without, path)
