"""Pending blocks -> confirmed (credits to the ledger) or orphaned (credits void).

The maturity rule. Consensus (Bitcoin/Litecoin Core ``CheckTxInputs``) lets a coinbase output be spent by
a transaction in a block at height >= coinbase height + COINBASE_MATURITY (100). The wallets are one block
more careful: Core's ``CWalletTx::GetBlocksToMaturity`` is ``max(0, (COINBASE_MATURITY + 1) - depth)``, so
the wallet counts (and spends) the coinbase only once its depth (``tip - height + 1``) is at least 101.
A block is therefore confirmed here when ``confirmations = tip - height + 1 >= coin.coinbase_maturity + 1``
(:func:`required_confirmations`): at that point the wallet that must pay the credits can spend the coins.

Main-chain membership is decided by comparing ``getblockhash(height)`` with the block's hash
(:meth:`DaemonClient.is_in_main_chain`), never by a ``confirmations`` field (bcoin reports positive
confirmations for side-branch blocks). A block is orphaned when the chain has reached its height and holds
another block there (the replacement at least ``orphan_depth`` deep); a daemon that has not reached the
height yet decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import psycopg

from stratum_pool.coins import Coin
from stratum_pool.store import accounting


class ChainView(Protocol):
    """What confirmation tracking asks of a daemon (:class:`~stratum_pool.daemon.rpc.DaemonClient` fits)."""

    async def getblockcount(self) -> int: ...

    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def required_confirmations(coin: Coin) -> int:
    """Depth (``tip - height + 1``) at which a block's coinbase is spendable by the wallet: maturity + 1."""
    return coin.coinbase_maturity + 1


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    block_id: int
    height: int
    hash: str
    status: str  # confirmed | orphaned | pending
    confirmations: int
    credited: int = 0  # base units put on balances (confirmed blocks)
    credits_changed: int = 0  # credits confirmed/paid (confirmed) or voided (orphaned)


@dataclass(slots=True)
class ConfirmationReport:
    coin: str
    tip: int | None = None
    blocks: list[BlockOutcome] = field(default_factory=list)

    def _with(self, status: str) -> list[BlockOutcome]:
        return [b for b in self.blocks if b.status == status]

    @property
    def confirmed(self) -> list[BlockOutcome]:
        return self._with("confirmed")

    @property
    def orphaned(self) -> list[BlockOutcome]:
        return self._with("orphaned")

    @property
    def pending(self) -> list[BlockOutcome]:
        return self._with("pending")

    @property
    def credited(self) -> int:
        return sum(b.credited for b in self.blocks)

    def lines(self) -> list[str]:
        out = [f"{self.coin}: tip {self.tip}, {len(self.confirmed)} confirmed, {len(self.orphaned)} orphaned,"
               f" {len(self.pending)} pending"]
        for b in self.blocks:
            if b.status != "pending":
                out.append(f"  block {b.height} {b.hash}: {b.status} ({b.confirmations} confirmations,"
                           f" {b.credits_changed} credits, {b.credited} credited)")
        return out


async def track_confirmations(dsn: str, daemon: ChainView, coin: Coin, *,
                              clock: Callable[[], datetime] = utc_now, orphan_depth: int = 1,
                              required: int | None = None) -> ConfirmationReport:
    """Bring every pending block of ``coin`` up to date: confirmations counted, confirmed at
    ``required`` (default :func:`required_confirmations`) with its credits in the ledger, or orphaned with
    its credits void. Each block changes in one transaction of its own; safe to run at any time and
    concurrently (a block only leaves ``pending`` once)."""
    need = required_confirmations(coin) if required is None else required
    report = ConfirmationReport(coin.key)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        coin_id = await accounting.get_coin_id(conn, coin)
        if coin_id is None:
            return report
        blocks = await accounting.pending_blocks(conn, coin_id)
        if not blocks:
            return report
        tip = await daemon.getblockcount()
        report.tip = tip
        for block in blocks:
            report.blocks.append(await _track_one(conn, daemon, block, tip, need, orphan_depth, clock))
    return report


async def _track_one(conn: accounting.AsyncConn, daemon: ChainView, block: accounting.PendingBlock, tip: int,
                     need: int, orphan_depth: int, clock: Callable[[], datetime]) -> BlockOutcome:
    pending = BlockOutcome(block.id, block.height, block.hash, "pending", block.confirmations)
    if block.height > tip:
        return pending  # this daemon has not reached the block's height: nothing to decide
    if not await daemon.is_in_main_chain(block.height, block.hash):
        # Re-read the tip: a chain that shrank below the height in between proves nothing.
        tip_now = await daemon.getblockcount()
        if tip_now < block.height or tip_now - block.height + 1 < orphan_depth:
            return pending
        voided = await accounting.orphan_block(conn, block.id, clock())
        if voided is None:
            return pending
        return BlockOutcome(block.id, block.height, block.hash, "orphaned", 0, 0, voided)
    confirmations = tip - block.height + 1
    if confirmations < need:
        if confirmations != block.confirmations:
            await accounting.set_block_confirmations(conn, block.id, confirmations, clock())
        return BlockOutcome(block.id, block.height, block.hash, "pending", confirmations)
    done = await accounting.confirm_block(conn, block.id, confirmations, clock())
    if done is None:
        return pending
    return BlockOutcome(block.id, block.height, block.hash, "confirmed", confirmations, done.credited_total,
                        len(done.credited) + done.solo_paid)
