"""An accepted share is acknowledged only after the pool says it is durable (the on_action barrier)."""

from __future__ import annotations

import asyncio

from miner import Miner
from test_server import ADDRESS, COIN, Pool

from stratum_pool.protocol.actions import Action, ShareAccepted


class DurablePool(Pool):
    """on_action answers each accepted share with a future the test resolves by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.barriers: list[asyncio.Future[None]] = []
        self.server.on_action = self.on_action

    def on_action(self, action: Action) -> asyncio.Future[None] | None:
        self.actions.append(action)
        if isinstance(action, ShareAccepted):
            barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.barriers.append(barrier)
            return barrier
        return None


async def test_share_answer_waits_for_durability_and_keeps_line_order() -> None:
    pool = DurablePool()
    await pool.server.start()
    try:
        async with Miner("127.0.0.1", pool.server.port, COIN, ADDRESS) as miner:
            first = asyncio.ensure_future(miner.mine_share())
            await asyncio.sleep(0.2)
            assert not first.done(), "the share was acknowledged before it was durable"
            # a later request on the same connection is answered only after the held share answer
            ping = asyncio.ensure_future(miner.request("mining.extranonce.subscribe", []))
            await asyncio.sleep(0.1)
            assert not ping.done()
            assert len(pool.barriers) == 1
            pool.barriers[0].set_result(None)
            reply = await asyncio.wait_for(first, 5)
            assert reply["result"] is True
            assert (await asyncio.wait_for(ping, 5))["result"] is True
    finally:
        await pool.server.close()


async def test_a_failed_barrier_still_answers_and_logs() -> None:
    pool = DurablePool()
    await pool.server.start()
    try:
        async with Miner("127.0.0.1", pool.server.port, COIN, ADDRESS) as miner:
            pending = asyncio.ensure_future(miner.mine_share())
            await asyncio.sleep(0.1)
            pool.barriers[0].set_exception(OSError("disk full"))
            reply = await asyncio.wait_for(pending, 5)
            assert reply["result"] is True
    finally:
        await pool.server.close()
