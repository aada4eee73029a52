"""What a session asks its caller to do: small records (treat them as immutable), one class per kind.

The server writes :class:`Send` bytes and honours :class:`Close`; every other action goes to the pool
(share accounting, block submission, worker bookkeeping).
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_pool.jobs.job import Job


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Send:
    """Bytes to write to the miner: one or more complete lines, each ending in ``b"\\n"``."""

    data: bytes


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Close:
    """Close the connection after writing what was sent before."""

    reason: str


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Authorized:
    session_id: str
    worker: str  # the full user name, ADDRESS[.WORKER]
    address: str


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
    code: int  # the Stratum error code sent to the miner
    # A short machine word: stale, duplicate, low-difficulty, bad-extranonce2, bad-ntime, bad-version,
    # bad-nonce, unknown-job, unauthorized, not-subscribed, bad-params.
    reason: str
    time: float


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


Action = Send | Close | Authorized | ShareAccepted | ShareRejected | BlockCandidate
