"""The two kinds of work: a block template from the daemon, and a Stratum job built from it."""

from __future__ import annotations

from dataclasses import dataclass, field

from stratum_pool.coins import Coin


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed getblocktemplate answer. Byte strings are in internal (header) order."""

    coin: Coin
    height: int
    prevhash: bytes  # 32 bytes, internal order, as in the header
    version: int
    nbits: int
    target: int  # network target as an integer
    curtime: int
    mintime: int
    coinbase_value: int  # satoshis (base units) available to the coinbase
    transactions: tuple[bytes, ...]  # raw transactions (with witness when they have it), template order
    txids: tuple[bytes, ...]  # internal order, template order
    merkle_branch: tuple[bytes, ...]  # branch for the coinbase at index 0, internal order
    witness_commitment: bytes | None  # scriptPubKey of the commitment output, or None
    mweb: bytes | None  # Litecoin MWEB extension block bytes (appended after the txs), or None
    longpollid: str | None = None
    received_at: float = 0.0

    @property
    def prevhash_hex(self) -> str:
        """Display order (as getbestblockhash prints it)."""
        return self.prevhash[::-1].hex()


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of Stratum work: a template plus a coinbase split around the extranonces."""

    job_id: str
    template: Template
    coinb1: bytes
    coinb2: bytes
    branch: bytes  # merkle branch, concatenated 32-byte hashes, internal order
    clean_jobs: bool
    payout_key: str = ""  # which coinbase outputs this job pays (address in solo mode, "" for pool)
    created_at: float = 0.0
    # mining.notify params serialized once per job, without the clean_jobs flag
    notify_prefix: tuple[object, ...] = field(default=())
