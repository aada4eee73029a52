"""A solo miner's odds: the closed forms, nothing else.

Network difficulty is as the daemons report it (``getdifficulty``: the diff-1 target 0xffff * 2**208 over the
network target, for sha256d and scrypt coins alike), so a block takes ``difficulty * 2**32`` hashes on average
and blocks come as a Poisson process: the chance of at least one in ``t`` seconds is ``1 - exp(-t / expected)``.
"""

from __future__ import annotations

import math

HASHES_PER_DIFF1 = 2**32
DAY = 86400.0
# The periods a chance of a block is given for; a month is a twelfth of a year of 365 days.
PERIODS: dict[str, float] = {"day": DAY, "week": 7 * DAY, "month": 365 * DAY / 12, "year": 365 * DAY}
TERAHASH = 1e12


def expected_seconds_to_block(network_difficulty: float | None, hashrate: float) -> float | None:
    """Mean time to a block at ``hashrate`` H/s; None when it is unknown or never (no hashrate)."""
    if network_difficulty is None or network_difficulty <= 0 or hashrate <= 0:
        return None
    return network_difficulty * HASHES_PER_DIFF1 / hashrate


def chance_within(expected_seconds: float | None, seconds: float) -> float:
    """The chance of at least one block within ``seconds``."""
    if expected_seconds is None:
        return 0.0
    return -math.expm1(-seconds / expected_seconds)


def chance_of_block(expected_seconds: float | None) -> dict[str, float]:
    return {name: chance_within(expected_seconds, seconds) for name, seconds in PERIODS.items()}


def blocks_per_year(network_difficulty: float | None, hashrate: float) -> float:
    """Expected blocks in a year of 365 days at ``hashrate`` H/s."""
    expected = expected_seconds_to_block(network_difficulty, hashrate)
    return 0.0 if expected is None else PERIODS["year"] / expected


def network_hashrate(network_difficulty: float | None, block_time_seconds: float) -> float | None:
    """The network's hashrate that finds a block every ``block_time_seconds`` at this difficulty (the
    difficulty adjustment aims there)."""
    if network_difficulty is None or network_difficulty <= 0 or block_time_seconds <= 0:
        return None
    return network_difficulty * HASHES_PER_DIFF1 / block_time_seconds


def odds(network_difficulty: float | None, hashrate: float) -> dict[str, object]:
    """The odds fields of an API answer: ``expected_seconds_to_block`` and ``chance_of_block``."""
    expected = expected_seconds_to_block(network_difficulty, hashrate)
    return {"expected_seconds_to_block": expected, "chance_of_block": chance_of_block(expected)}
