"""What the pool calls on its hot path: turn share and block actions into spool records, cheaply.

Every method is synchronous and never touches the database; :meth:`ShareRecorder.share` returns the
future the server holds the miner's answer on (resolved once the share is fsynced in the spool). Rejected
shares are only counted: per coin, worker, reason and minute in memory, appended every
``reject_flush_seconds`` as :class:`~stratum_pool.store.spool.RejectedRecord` (so a crash loses at most
that many seconds of reject counts, never an accepted share).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from stratum_pool.shares.names import split_user
from stratum_pool.shares.records import ShareAccepted, ShareRejected
from stratum_pool.store.spool import BlockRecord, RejectedRecord, ShareSpool, share_key_bytes

log = structlog.get_logger("stratum_pool.store.recorder")

DEFAULT_REJECT_FLUSH_SECONDS = 10.0
# A user agent is free text from the miner: keep what identifies the software.
MAX_USER_AGENT = 256
# Block shares remembered for :meth:`ShareRecorder.block_share_seq` (a block takes seconds to submit).
_BLOCK_SHARES_KEPT = 64
# Workers whose encoded share keys are kept (cleared when full).
_KEYS_KEPT = 100_000


@dataclass(slots=True)
class RecorderStats:
    shares: int = 0
    rejected: int = 0  # rejected shares counted (not records)
    rejected_dropped: int = 0  # rejected shares of no known address, not recorded
    blocks: int = 0
    not_durable: int = 0  # spool records whose write failed


class ShareRecorder:
    """Appends the pool's share and block records to a :class:`ShareSpool`."""

    def __init__(self, spool: ShareSpool, *, clock: Callable[[], float] = time.time,
                 reject_flush_seconds: float = DEFAULT_REJECT_FLUSH_SECONDS) -> None:
        self.spool = spool
        self.clock = clock
        self.reject_flush_seconds = reject_flush_seconds
        self._stats = RecorderStats()
        # (coin_key, address, worker_name, reason, minute start) -> count
        self._rejects: dict[tuple[str, str, str, str, float], int] = {}
        self._block_shares: dict[tuple[str, float], int] = {}
        # (coin_key, address, worker, user agent) -> the share key bytes of the spool frame
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._task: asyncio.Task[None] | None = None

    # ----- hot path

    def share(self, coin_key: str, action: ShareAccepted, user_agent: str = "") -> tuple[int, asyncio.Future[None]]:
        """Append an accepted share. Returns its seq and a future resolved once it is durable (or failed
        with the ``OSError`` that kept it off the disk: the caller decides whether to answer anyway)."""
        cache = self._keys
        ident = (coin_key, action.address, action.worker, user_agent)
        key = cache.get(ident)
        if key is None:  # the worker's strings, encoded once (the same for all its shares)
            if len(cache) >= _KEYS_KEPT:
                cache.clear()
            key = cache[ident] = share_key_bytes(coin_key, action.address, split_user(action.worker)[1],
                                                 user_agent[:MAX_USER_AGENT])
        seq, future = self.spool.append_share(action.time, action.difficulty, action.achieved, action.height,
                                              action.block, key)
        self._stats.shares += 1
        if action.block:
            self._block_shares[(action.worker, action.time)] = seq
            while len(self._block_shares) > _BLOCK_SHARES_KEPT:
                del self._block_shares[next(iter(self._block_shares))]
        return seq, future

    def rejected(self, coin_key: str, action: ShareRejected, address: str) -> None:
        """Count a rejected share (aggregated; appended with the next periodic flush). Rejects of a session
        with no authorized address are counted in :attr:`stats` only."""
        if not address:
            self._stats.rejected_dropped += 1
            return
        _, worker_name = split_user(action.worker)
        minute = action.time - action.time % 60.0
        key = (coin_key, address, worker_name, action.reason, minute)
        self._rejects[key] = self._rejects.get(key, 0) + 1
        self._stats.rejected += 1

    def block_share_seq(self, worker: str, time: float) -> int | None:
        """The seq of the accepted block share of ``worker`` at ``time`` (the BlockCandidate's ``worker`` and
        ``time``; the session emits the share right after the candidate, so it is known by the time the
        block is submitted)."""
        return self._block_shares.get((worker, time))

    def block(self, coin_key: str, *, height: int, hash_display: str, reward: int, finder_address: str,
              finder_worker: str, share_seq: int, network_difficulty: float, scheme: str, accepted: bool,
              submit_result: str, fee_ppm: int, fee_address: str, pplns_window_factor: float = 2.0,
              time: float | None = None) -> asyncio.Future[None]:
        """Append a found block (after its submission). ``finder_worker`` is the full user name
        (``BlockCandidate.worker``: ``ADDRESS[.WORKER]``); ``reward`` the coinbase value in base units;
        ``network_difficulty`` in share-difficulty units. The loader writes the block row and its credits in
        one transaction once every share up to ``share_seq`` is in the database."""
        _, worker_name = split_user(finder_worker)
        record = BlockRecord(0, self.clock() if time is None else time, coin_key, height, hash_display, reward,
                             finder_address, worker_name, share_seq, network_difficulty, scheme, accepted,
                             submit_result, fee_ppm, fee_address, pplns_window_factor)
        _, future = self.spool.append(record)
        self._stats.blocks += 1
        return future

    @property
    def stats(self) -> RecorderStats:
        """The counters; ``not_durable`` counts every spool record whose write failed."""
        self._stats.not_durable = self.spool.stats().records_failed
        return self._stats

    # ----- life cycle

    def flush_rejects(self) -> int:
        """Append the aggregated reject counts now; returns how many records were appended."""
        rejects, self._rejects = self._rejects, {}
        for (coin_key, address, worker_name, reason, minute), count in rejects.items():
            self.spool.append(RejectedRecord(0, minute, coin_key, address, worker_name, reason, count))
        return len(rejects)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reject_flush_seconds)
            try:
                self.flush_rejects()
            except Exception:  # a bug here must not stop the counting
                log.exception("reject_flush_failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_loop(), name="reject-flush")

    async def stop(self) -> None:
        """Append the pending reject counts and wait for the last group commit."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush_rejects()
        await self.spool.flush()
