"""Block submission: a block candidate -> the block -> every daemon -> is it the best block? -> the record.

``BlockSubmitter`` is handed each ``BlockCandidate`` a session finds; it assembles the block, submits it to
every daemon at once, checks the block became (or is in) the main chain, and records it: in the share spool
(for the loader's block row and credits), in the metrics and the log, and in its list of found blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

import structlog

from stratum_pool.config import CoinSettings
from stratum_pool.daemon.rpc import DaemonError, SubmitResult
from stratum_pool.jobs.builder import assemble_block
from stratum_pool.jobs.job import Job
from stratum_pool.metrics import PoolMetrics
from stratum_pool.protocol.actions import BlockCandidate
from stratum_pool.store.recorder import ShareRecorder


@dataclass
class FoundBlock:
    height: int
    block_hash: str  # display order
    worker: str
    address: str
    accepted: bool
    reason: str
    in_best_chain: bool
    time: float


class BlockDaemon(Protocol):
    """What block submission asks of the coin's daemons (``daemon.rpc.DaemonClient``)."""

    async def submitblock(self, block_hex: str) -> SubmitResult: ...  # to every daemon at once
    async def getbestblockhash(self) -> str: ...
    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool: ...


@dataclass(eq=False)
class BlockSubmitter:
    """Submits the block candidates of one coin and records what became of them.

    ``settings``: the coin, its payout scheme and fee (what the block record carries); ``reward_for``: what a
    job's block pays to whom the pool credits (``JobManager.reward_for``); ``recorder``: where the block record
    goes (None: nowhere); ``on_accepted``: started as soon as a daemon took the block (fetch the new work at
    once), concurrently with the best-chain check and the record, and awaited before ``on_found``; ``found``:
    the list each ``FoundBlock`` is appended to.
    """

    settings: CoinSettings
    daemon: BlockDaemon
    reward_for: Callable[[Job], int]
    _: KW_ONLY
    metrics: PoolMetrics
    recorder: ShareRecorder | None = None
    clock: Callable[[], float] = time.time
    log: Any = field(default_factory=lambda: structlog.get_logger("stratum_pool.blocks"))
    on_accepted: Callable[[], Awaitable[None]] | None = None
    found: list[FoundBlock] = field(default_factory=list)
    # after each submission (and after on_accepted: new work first): e.g. the found-blocks file without a database
    on_found: Callable[[BlockCandidate, FoundBlock], Awaitable[None]] | None = None
    _tasks: set[asyncio.Task[FoundBlock]] = field(default_factory=set, init=False, repr=False)

    def submit_soon(self, candidate: BlockCandidate) -> None:
        """Submit ``candidate`` in a task of the running loop (``drain`` waits for those in flight)."""
        task = asyncio.get_running_loop().create_task(self.submit(candidate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Let the submissions in flight finish (at most ``timeout`` seconds)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def submit(self, candidate: BlockCandidate) -> FoundBlock:
        """Assemble the block, submit it to every daemon, check it became the best block, and record it."""
        job = candidate.job
        block = assemble_block(job, candidate.extranonce1, candidate.extranonce2, candidate.header)
        block_hash = candidate.block_hash[::-1].hex()
        height = job.template.height
        coin_key = self.settings.coin.key
        self.log.info("block_found", coin=coin_key, height=height, hash=block_hash, worker=candidate.worker,
                      achieved=candidate.achieved)
        try:
            result = await self.daemon.submitblock(block.hex())
            accepted, reason = result.accepted, result.reason
        except DaemonError as exc:
            accepted, reason = False, f"submit-failed: {exc}"
        # The daemon has taken the block: every miner is hashing on a dead tip from here on, so the new work is
        # fetched now, alongside the best-chain check and the record rather than after their round trips.
        refresh = asyncio.ensure_future(self.on_accepted()) if accepted and self.on_accepted is not None else None
        try:
            in_best = await self._in_best_chain(height, block_hash) if accepted else False
            found = FoundBlock(height, block_hash, candidate.worker, candidate.address, accepted, reason, in_best,
                               self.clock())
            self.found.append(found)
            self.metrics.blocks.labels(coin_key, "accepted" if accepted else "rejected").inc()
            self.log.info("block_submitted", coin=coin_key, height=height, hash=block_hash, accepted=accepted,
                          reason=reason, in_best_chain=in_best)
            await self._record(candidate, found)
        finally:
            if refresh is not None:
                await refresh  # new work before on_found, and its failure is the submission's, as before
        if self.on_found is not None:
            await self.on_found(candidate, found)
        return found

    async def _in_best_chain(self, height: int, block_hash: str) -> bool:
        try:
            return await self.daemon.getbestblockhash() == block_hash or \
                await self.daemon.is_in_main_chain(height, block_hash)
        except DaemonError as exc:
            self.log.warning("block_check_failed", hash=block_hash, error=str(exc))
            return False

    async def _record(self, candidate: BlockCandidate, found: FoundBlock) -> None:
        """The block record in the spool: the loader writes the block row and its credits from it."""
        recorder = self.recorder
        if recorder is None:
            return
        s, job = self.settings, candidate.job
        share_seq = recorder.block_share_seq(candidate.worker, candidate.time)
        if share_seq is None:
            share_seq = recorder.spool.stats().last_seq
        await recorder.block(
            s.coin.key, height=found.height, hash_display=found.block_hash, reward=self.reward_for(job),
            finder_address=candidate.address, finder_worker=candidate.worker, share_seq=share_seq,
            network_difficulty=s.coin.diff1_target / job.template.target, scheme=s.mode,
            accepted=found.accepted, submit_result=found.reason, fee_ppm=0 if s.mode == "solo" else s.fee_ppm,
            fee_address=s.fee_address, pplns_window_factor=s.pplns_window_factor, time=candidate.time)
