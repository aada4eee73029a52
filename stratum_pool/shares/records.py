"""What the share core says of a judged share: small records (treat them as immutable), protocol-neutral.

The core (``native/sharecore.pxi``) makes them; each protocol adapter hands them on to the pool unchanged
(``protocol.actions`` re-exports them as actions).
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_pool.jobs.job import Job


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class ShareAccepted:
    session_id: str
    worker: str
    address: str
    job_id: str
    height: int
    difficulty: float  # the difficulty the share was judged by
    achieved: float  # the difficulty the share's hash reached
    block: bool
    time: float


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class ShareRejected:
    session_id: str
    worker: str
    job_id: str
    code: int  # the Stratum error code (shares.verdicts)
    # A short machine word (shares.verdicts.REJECTS): stale, duplicate, low-difficulty, bad-extranonce2,
    # bad-ntime, bad-version, bad-nonce, unknown-job, unauthorized, not-subscribed, bad-params, rate-limited.
    reason: str
    time: float
    message: str = ""  # the text the miner reads
    achieved: float = 0.0  # the difficulty the share's hash reached (low-difficulty shares; 0 when not hashed)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class BlockCandidate:
    """A share whose hash meets the network target: the pool builds the block and submits it."""

    job: Job
    header: bytes  # 80 bytes
    extranonce1: bytes
    extranonce2: bytes
    block_hash: bytes  # sha256d(header), internal order
    pow_hash: bytes  # internal order (equals block_hash for sha256d coins)
    worker: str
    address: str
    achieved: float
    time: float
