"""The pool's hashrate against the truth: test miners that count their hashes mine through a real pool on a real
bcoin regtest node, without a database, and the JSON API's figures are held to their counts.

Regtest's network difficulty (~4.66e-10) is below any share difficulty a miner can count hashes at, so every
share is also a block: a miner that found one waits for the work on top of it (as a Bitaxe gets it within
milliseconds), so no hash is spent on stale work the pool cannot see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from api_client import ApiClient
from miner import Miner

from stratum_pool.api import CoinPoolView, RateLimitSettings, create_app
from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.pool import CoinPool
from stratum_pool.server.limits import ServerLimits

pytestmark = pytest.mark.integration

BTC = get_coin("bitcoin", "regtest")
# ~4,300 hashes a share: enough that a share stands for many hashes, few enough to mine many shares quickly
SHARE_DIFFICULTY = 1e-6
# Shares per miner: a count of n geometric waits is off by 1/sqrt(n) (one standard deviation): 1,600 shares
# put 10% at 4 standard deviations (a false failure once in ~15,000 runs).
SHARES = 1600
TOLERANCE = 0.10


def settings(node: Any) -> Any:
    doc = {"coins": [{
        "coin": "bitcoin", "network": "regtest", "mode": "solo",
        "stratum_host": "127.0.0.1", "stratum_port": 0, "poll_interval_seconds": 0.5,
        "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
        "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}],
    }]}
    return parse_settings(doc, address_check=address_to_script).coins[0]


@pytest.fixture
async def started() -> AsyncIterator[list[float]]:
    yield [time.time()]


@pytest.fixture
async def pool(bcoin_node: Any, started: list[float]) -> AsyncIterator[CoinPool]:
    started[0] = time.time()  # the pool is judged from when it was made
    # a test miner submits faster than any limit meant for real ones
    coin_pool = CoinPool(settings(bcoin_node), limits=ServerLimits(submits_per_second=0))
    await coin_pool.start(ready_timeout=30)
    try:
        yield coin_pool
    finally:
        await coin_pool.stop()


@pytest.fixture
async def api(pool: CoinPool) -> AsyncIterator[ApiClient]:
    app = create_app(None, [CoinPoolView(pool.live)], None, rate_limit=RateLimitSettings(enabled=False),
                     cache_seconds=0)
    async with ApiClient(app) as client:
        yield client


async def mine(miner: Miner, shares: int) -> int:
    """Mine until ``shares`` shares are accepted, at the job's difficulty; after a block, wait for the work on
    top of it. Returns the stale shares on the way: with a block every share, the chain's tip sometimes moves
    under a share in flight (the truth keeps their hashes: a device's stale work is real work)."""
    accepted = stale = 0
    while accepted < shares:
        job = miner.job
        assert job is not None
        share = miner.find()
        reply = await miner.submit_share(share)
        if reply["result"] is not True:
            assert reply["error"][0] == 21, reply  # stale: nothing else may be refused
            stale += 1
            continue
        accepted += 1
        if share.achieved >= BTC.diff1_target / bits_to_target(job.nbits):
            deadline = time.monotonic() + 30
            while miner.job is None or miner.job.prevhash == job.prevhash:
                assert time.monotonic() < deadline, "no work on top of the block"
                await asyncio.sleep(0.001)
    return stale


async def get(client: ApiClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


def near(figure: float, truth: float) -> bool:
    return abs(figure - truth) <= TOLERANCE * truth


async def test_hashrate_matches_the_miners_count_from_the_first_minute(
        bcoin_node: Any, pool: CoinPool, api: ApiClient, started: list[float]) -> None:
    address = bcoin_node.new_address()
    first = await Miner("127.0.0.1", pool.port, BTC, address, "first", order="esp-miner").start()
    first_since = time.time()
    second: Miner | None = None
    try:
        stale = await mine(first, SHARES)
        # the second worker joins now, when the first has been mining for a while, and is judged on its own time
        second = await Miner("127.0.0.1", pool.port, BTC, address, "second", order="esp-miner").start()
        second_since = time.time()
        stale += await mine(second, SHARES)
        assert stale <= SHARES // 100  # rare: a few in 3,200 blocks at most
        now = time.time()
        body = await get(api, f"/api/miner/{address}")
        workers = {w["name"]: w for w in body["accounts"][0]["workers"]}
        for miner, name, since in ((first, "first", first_since), (second, "second", second_since)):
            truth = miner.hashes / (now - since)
            w = workers[name]
            ten = w["rates"]["10m"]
            assert ten["shares"] == SHARES
            assert ten["seconds"] == pytest.approx(now - since, abs=1.0)  # its own time, not ten minutes
            assert near(w["hashrate"], truth), (name, w["hashrate"], truth)
            # the device: its firmware (the user agent it subscribed with) and the difficulty it mines at
            assert (w["connected"], w["user_agent"], w["difficulty"]) == (True, "test-miner/1.0", SHARE_DIFFICULTY)
            assert w["rates"]["1h"]["hashrate"] == pytest.approx(w["hashrate"], rel=0.01)
            assert w["rates"]["24h"]["hashrate"] == pytest.approx(w["hashrate"], rel=0.05)
        total_truth = first.hashes / (now - first_since) + second.hashes / (now - second_since)
        assert near(body["hashrate"], total_truth), (body["hashrate"], total_truth)

        # the pool: every hash since it started
        coin = (await get(api, "/api/pool"))["coins"][0]
        pool_truth = (first.hashes + second.hashes) / (time.time() - started[0])
        assert coin["rates"]["10m"]["shares"] == 2 * SHARES
        assert near(coin["hashrate_10m"], pool_truth), (coin["hashrate_10m"], pool_truth)
        assert near(coin["hashrate"], pool_truth)
        assert coin["devices"] == [{"firmware": "test-miner/1.0", "online": 2}]

        # the odds at that hashrate, against the network difficulty of the work the miner holds
        assert first.job is not None
        network = BTC.diff1_target / bits_to_target(first.job.nbits)
        assert body["network_difficulty"] == pytest.approx(network)
        assert body["expected_seconds_to_block"] == pytest.approx(network * 2**32 / body["hashrate"])
        assert 0.99 < body["chance_of_block"]["day"] <= 1.0  # regtest: a block every few microseconds
        best = body["accounts"][0]["best_share"]
        assert best["session"]["difficulty"] >= SHARE_DIFFICULTY
        assert best["session"]["of_network"] == pytest.approx(best["session"]["difficulty"] / network)
        # every share was a block: the best since the last one is the last share's (or none yet)
        assert best["since_block"]["difficulty"] <= best["session"]["difficulty"]
    finally:
        await first.close()
        if second is not None:
            await second.close()
