"""Crediting a found block: the block row, and its credits from the coin's reward scheme.

:func:`credit_block` is the share loader's :class:`~stratum_pool.store.loader.CreditBlock`: the loader calls
it for each block record, in spool order, inside the batch's transaction, so the block row and its credits
commit together with the shares before it and the spool checkpoint (exactly once), or not at all.

It picks the scheme (:mod:`stratum_pool.rewards.schemes`), asks the store for the share window the scheme
names, computes the credits and writes the block and its credits. Every SQL statement is the store's
(:mod:`stratum_pool.store.shares`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from stratum_pool.rewards.schemes import Window, scheme_for
from stratum_pool.store import shares as q
from stratum_pool.store.loader import BlockIds
from stratum_pool.store.spool import BlockRecord

log = structlog.get_logger("stratum_pool.rewards.crediting")


def credit_block(conn: q.Conn, b: BlockRecord, ids: BlockIds, /) -> bool:
    """Insert the block (``pending``, or ``orphaned`` when the daemons refused it) and, when accepted, its
    credits. Returns False, writing nothing, when a block with that hash is already recorded.
    ValueError for an unknown scheme; AssertionError when a scheme's credits do not add up to the reward."""
    scheme = scheme_for(b.scheme)
    block_id = q.insert_block(
        conn, coin_id=ids.coin_id, height=b.height, hash_display=b.hash_display, reward=b.reward,
        finder_account_id=ids.finder_account_id, finder_worker_id=ids.finder_worker_id, scheme=scheme.name,
        accepted=b.accepted, submit_result=b.submit_result, node_id=ids.node_id, share_seq=b.share_seq,
        found_at=datetime.fromtimestamp(b.time, UTC), network_difficulty=b.network_difficulty,
        pplns_window_factor=b.pplns_window_factor)
    if block_id is None:
        log.warning("block_already_recorded", hash=b.hash_display, height=b.height)
        return False
    if not b.accepted:
        log.info("block_recorded", hash=b.hash_display, height=b.height, accepted=False)
        return True
    fee_account = q.ensure_fee_account(conn, ids.coin_id, b.fee_address) if b.fee_address else None
    window = share_window(conn, scheme.window, b, ids)
    credits = scheme.credits(b.reward, window, ids.finder_account_id, fee_account, b.fee_ppm)
    assert sum(credits.values()) == b.reward, "a scheme must credit exactly the reward"
    q.insert_credits(conn, block_id, credits, scheme.name)
    log.info("block_recorded", hash=b.hash_display, height=b.height, accepted=True, scheme=scheme.name,
             reward=b.reward, credits=len(credits), window_shares=len(window))
    return True


def share_window(conn: q.Conn, window: Window, b: BlockRecord, ids: BlockIds) -> list[tuple[int, float]]:
    """The ``(account_id, weight)`` pairs of the window a scheme names, ending at the block's own share."""
    if window == "pplns":
        return q.pplns_window(conn, ids.coin_id, ids.node_id, b.share_seq,
                              b.pplns_window_factor * b.network_difficulty)
    if window == "round":
        return q.round_window(conn, ids.coin_id, ids.node_id, b.share_seq)
    return []
