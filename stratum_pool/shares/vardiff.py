"""Variable difficulty: steer each session toward one share every ``target_interval`` seconds.

The policy's numbers live here (:class:`VardiffConfig`); the controller itself is the share core's
(``_native.Vardiff``, native/sharecore.pxi), pure arithmetic over the times it is handed, and its
pure-Python twin is ``shares.reference.ReferenceVardiff``. The difficulty may be fractional (regtest, tests
and ESP32 NerdMiners work far below 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from stratum_pool._native import Vardiff

__all__ = ["SUGGESTION_POLICIES", "SuggestionPolicy", "Vardiff", "VardiffConfig"]

# What a miner's suggestion (suggest_difficulty, suggest_target, password d=) means: "start": vardiff starts
# there and may move; "floor": also the lowest vardiff goes; "fixed": no vardiff.
SuggestionPolicy = Literal["start", "floor", "fixed"]
SUGGESTION_POLICIES: tuple[str, ...] = get_args(SuggestionPolicy)


@dataclass(frozen=True, slots=True)
class VardiffConfig:
    target_interval: float = 15.0  # seconds between shares we aim for
    retarget_interval: float = 90.0  # least seconds between two retargets (unless shares pour in)
    window: int = 20  # this many shares since the last retarget retarget at once
    variance: float = 0.3  # no change while the observed interval is within +-30% of the target
    max_step: float = 4.0  # one retarget changes the difficulty by at most this factor
    minimum: float = 1e-9
    maximum: float = 1e15

    def __post_init__(self) -> None:
        if not (self.target_interval > 0 and self.retarget_interval > 0 and self.window >= 1):
            raise ValueError("vardiff intervals must be positive and window at least 1")
        if not (self.max_step > 1 and 0 <= self.variance < 1):
            raise ValueError("vardiff max_step must be > 1 and variance in [0, 1)")
        if not (0 < self.minimum <= self.maximum):
            raise ValueError("vardiff minimum must be positive and not above maximum")
