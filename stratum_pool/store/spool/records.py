"""The records the spool holds: what the pool appends and the loader reads back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class ShareRecord:
    """An accepted share. ``difficulty`` is its weight (what it was judged by); ``worker_name`` is the part
    of the user name after the first dot ('' for none)."""

    seq: int
    time: float
    coin_key: str
    address: str
    worker_name: str
    user_agent: str
    difficulty: float
    achieved: float
    height: int
    is_block: bool


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class RejectedRecord:
    """``count`` shares of one worker rejected for ``reason`` in the minute starting at ``time``."""

    seq: int
    time: float
    coin_key: str
    address: str
    worker_name: str
    reason: str
    count: int


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class BlockRecord:
    """A block the pool found and submitted. ``reward`` is the coinbase value in base units; ``share_seq``
    is the seq of the block's own share (the end of its reward window); ``network_difficulty`` is in the
    same units as share difficulty."""

    seq: int
    time: float
    coin_key: str
    height: int
    hash_display: str
    reward: int
    finder_address: str
    finder_worker: str
    share_seq: int
    network_difficulty: float
    scheme: str  # solo | pplns | prop
    accepted: bool  # did the daemons take it at submission
    submit_result: str
    fee_ppm: int
    fee_address: str
    pplns_window_factor: float = 2.0


SpoolRecord = ShareRecord | RejectedRecord | BlockRecord
