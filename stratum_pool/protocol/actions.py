"""What a session asks its caller to do: small records (treat them as immutable), one class per kind.

The server writes :class:`Send` bytes and honours :class:`Close`; every other action goes to the pool
(share accounting, block submission, worker bookkeeping). The share records are the core's
(``shares.records``), handed on unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_pool.shares.records import BlockCandidate, ShareAccepted, ShareRejected


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Send:
    """Bytes to write to the miner: one or more complete lines, each ending in ``b"\\n"`` (from a Stratum V2
    session: one whole plaintext frame, which the transport encrypts)."""

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


Action = Send | Close | Authorized | ShareAccepted | ShareRejected | BlockCandidate

__all__ = ["Action", "Authorized", "BlockCandidate", "Close", "Send", "ShareAccepted", "ShareRejected"]
