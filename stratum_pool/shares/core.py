"""The share core's Python face: every share is judged by one native core (``native/sharecore.pxi``).

``ShareRules`` (one per coin's pool) holds what every session judges by; ``ShareCore`` (one per session or
mining channel) holds that session's share state and judges its shares; ``JobBook`` (one per work source)
holds the live jobs, entered once per job. ``shares/reference.py`` is the pure-Python twin the tests hold the
core equal to; nothing else judges a share.
"""

from __future__ import annotations

from typing import Final

from stratum_pool._native import JobBook, ShareCore, ShareRules, Vardiff
from stratum_pool.coins import Coin
from stratum_pool.shares import verdicts
from stratum_pool.shares.names import clean_name
from stratum_pool.shares.records import BlockCandidate, ShareAccepted, ShareRejected

__all__ = ["MAX_EXTRANONCE2_SIZE", "MIN_EXTRANONCE2_SIZE", "NTIME_MAX_FUTURE_SECONDS", "NTIME_PAST_SLACK_SECONDS",
           "JobBook", "ShareCore", "ShareRules", "Vardiff", "make_rules"]

# Bitcoin refuses headers more than two hours ahead of its adjusted time.
NTIME_MAX_FUTURE_SECONDS: Final = 7200
# Without a template mintime, allow ntime this far before the template's curtime.
NTIME_PAST_SLACK_SECONDS: Final = 600
# The extranonce2 sizes a pool may hand out: 2 bytes is 65,536 coinbases per job, the least a fast ASIC
# rolls between two jobs; 8 bytes is more than any firmware asks for (the core itself holds up to 16).
MIN_EXTRANONCE2_SIZE: Final = 2
MAX_EXTRANONCE2_SIZE: Final = 8


def make_rules(coin: Coin, ntime_max_future: int = NTIME_MAX_FUTURE_SECONDS,
               ntime_past_slack: int = NTIME_PAST_SLACK_SECONDS) -> ShareRules:
    """The rules of ``coin``'s shares; share one object between every session of a pool."""
    return ShareRules(coin.diff1_target, ntime_max_future, ntime_past_slack, verdicts.REJECTS,
                      (ShareAccepted, ShareRejected, BlockCandidate), clean_name,
                      verdicts.MAX_JOB_ID_LENGTH)
