"""Found block -> clean work at the finder, on a bcoin regtest node (issue 19, target 4).

    .venv/bin/python bench/bench_found_block.py [--rounds 20] [--dsn postgresql://127.0.0.1/stratum_bench]

Starts a bcoin regtest node (``stratum_pool.devnet.bcoin``) and a pool on it in this process (solo; no long poll
and no best-block poll, so the only way to new work is the found block's own), connects one miner
(``tests/miner.py``) and, each round, finds a block at the network difficulty and times it from the submit line
leaving the miner to the clean ``mining.notify`` on the new tip arriving at it. Each round waits for the
submission to finish (check and record) before the next.

The same run's floor, per round: the daemon's ``submitblock`` (the pool cannot send work before the daemon has
the block) and one ``getblocktemplate`` (the new work), both timed inside the pool's own calls. "Beyond the
floor" is the found-block figure minus the two. Before the change (the check and the record awaited before the
template fetch) a round also paid ``getbestblockhash`` and the record. Prints every round, the medians, min and
max, and one JSON line. Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/miner.py: the test miner

from miner import Miner  # noqa: E402

from stratum_pool.chain.address import address_to_script  # noqa: E402
from stratum_pool.chain.target import bits_to_target  # noqa: E402
from stratum_pool.coins import get_coin  # noqa: E402
from stratum_pool.config import parse_settings  # noqa: E402
from stratum_pool.daemon.rpc import SubmitResult  # noqa: E402
from stratum_pool.devnet.bcoin import BcoinNode, install  # noqa: E402
from stratum_pool.pool import Pool  # noqa: E402
from stratum_pool.store.migrate import migrate  # noqa: E402

BTC = get_coin("bitcoin", "regtest")


class Timed:
    """A daemon client that keeps how long each ``submitblock`` and ``getblocktemplate`` took (seconds)."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.submits: list[float] = []
        self.templates: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.daemon, name)

    async def submitblock(self, block_hex: str) -> SubmitResult:
        t0 = time.perf_counter()
        result: SubmitResult = await self.daemon.submitblock(block_hex)
        self.submits.append(time.perf_counter() - t0)
        return result

    async def getblocktemplate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        gbt: dict[str, Any] = await self.daemon.getblocktemplate(*args, **kwargs)
        self.templates.append(time.perf_counter() - t0)
        return gbt


def settings(node: BcoinNode, spool: Path, dsn: str) -> Any:
    doc = {"coins": [{"coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1",
                      "stratum_port": 0, "poll_interval_seconds": 3600, "template_refresh_seconds": 3600,
                      "longpoll": False,
                      "vardiff": {"initial": 1e-6, "minimum": 1e-6, "suggestion_policy": "fixed"},
                      "daemons": [{"url": node.url, "user": node.rpc_user, "password": node.rpc_password}]}],
           "database": {"dsn": dsn, "spool_dir": str(spool)}, "api": {"enabled": False}}
    return parse_settings(doc, address_check=address_to_script)


async def measure(rounds: int, dsn: str, work: Path) -> dict[str, float]:
    node = BcoinNode(work / "bcoin")
    node.start()
    try:
        address = node.new_address()
        pool = Pool(settings(node, work / "spool", dsn))
        await pool.start()
        try:
            coin = pool.coins[0]
            timed = Timed(coin.daemon)
            coin.daemon = timed  # the pool's template fetches (refresh reads self.daemon)
            coin.blocks.daemon = timed  # and its block submissions
            found_ms: list[float] = []
            floors: list[tuple[float, float]] = []
            async with Miner("127.0.0.1", coin.port, BTC, address, "bench") as miner:
                for i in range(rounds):
                    job = miner.job
                    assert job is not None
                    share = miner.find(min_difficulty=BTC.diff1_target / bits_to_target(job.nbits))
                    new_job = miner._new_job  # set by the miner's reader on each mining.notify
                    new_job.clear()
                    timed.submits.clear()
                    timed.templates.clear()
                    t0 = time.perf_counter()
                    reply = asyncio.ensure_future(miner.submit_share(share))
                    while True:
                        await asyncio.wait_for(new_job.wait(), 30)
                        t1 = time.perf_counter()
                        new_job.clear()
                        current = miner.job
                        if current is not None and current.clean and current.prevhash != job.prevhash:
                            break
                    assert (await reply)["result"] is True
                    await coin.blocks.drain(timeout=30)
                    found = coin.blocks.found[-1]
                    assert found.accepted and found.in_best_chain, found
                    floor = (timed.submits[0], timed.templates[0])
                    found_ms.append((t1 - t0) * 1000)
                    floors.append(floor)
                    print(f"round {i + 1:2d}: solution -> clean_jobs {found_ms[-1]:7.2f} ms  (submitblock "
                          f"{floor[0] * 1000:6.2f} ms, getblocktemplate {floor[1] * 1000:6.2f} ms)")
        finally:
            await pool.stop()
    finally:
        node.stop()
    submit_ms = [s * 1000 for s, _ in floors]
    gbt_ms = [g * 1000 for _, g in floors]
    beyond = [f - s - g for f, s, g in zip(found_ms, submit_ms, gbt_ms, strict=True)]
    return {
        "rounds": rounds,
        "solution_to_clean_ms_median": statistics.median(found_ms),
        "solution_to_clean_ms_min": min(found_ms),
        "solution_to_clean_ms_max": max(found_ms),
        "submitblock_ms_median": statistics.median(submit_ms),
        "getblocktemplate_ms_median": statistics.median(gbt_ms),
        "beyond_floor_ms_median": statistics.median(beyond),
        "beyond_floor_ms_max": max(beyond),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dsn", default="", help="PostgreSQL (a fresh database): the block record goes there too")
    args = parser.parse_args(argv)
    install()
    if args.dsn:
        migrate(args.dsn)  # the schema (safe to run twice)
    with tempfile.TemporaryDirectory(prefix="bench-found-block-") as tmp:
        result = asyncio.run(measure(args.rounds, args.dsn, Path(tmp)))
    print(f"found block -> clean_jobs at the finder, {result['rounds']} rounds on bcoin regtest"
          f"{' with PostgreSQL' if args.dsn else ' (no database)'}:")
    for key, value in result.items():
        if key != "rounds":
            print(f"  {key.ljust(34)} {value:8.2f}")
    print(json.dumps({"database": bool(args.dsn), **{k: round(v, 2) for k, v in result.items()}}))


def run() -> None:
    """For bench/run.py."""
    main([])


if __name__ == "__main__":
    main()
