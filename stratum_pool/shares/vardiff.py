"""Variable difficulty: steer each session toward one share every ``target_interval`` seconds.

Pure arithmetic over the times the caller passes in (no clock of its own). The difficulty may be
fractional (regtest, tests and ESP32 NerdMiners work far below 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VardiffConfig:
    target_interval: float = 15.0  # seconds between shares we aim for
    retarget_interval: float = 90.0  # least seconds between two retargets (unless shares pour in)
    window: int = 20  # share times kept; this many shares since the last retarget retarget at once
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


def _tidy(difficulty: float) -> float:
    """Keep four significant digits: steadier numbers for miners and logs, same behaviour."""
    return float(f"{difficulty:.4g}")


class Vardiff:
    """One session's difficulty controller."""

    def __init__(self, config: VardiffConfig, start: float, now: float, enabled: bool = True) -> None:
        self.config = config
        self.enabled = enabled
        self.floor = config.minimum
        self.difficulty = self.clamp(start)
        self._last_retarget = now
        self._count = 0  # shares since the last retarget

    def clamp(self, difficulty: float) -> float:
        if not math.isfinite(difficulty) or difficulty <= 0:
            difficulty = self.config.minimum
        return min(max(difficulty, self.floor, self.config.minimum), self.config.maximum)

    def restart(self, difficulty: float, now: float) -> float:
        """Start again from ``difficulty`` (a miner's suggestion); returns the clamped value."""
        self.difficulty = self.clamp(difficulty)
        self._last_retarget = now
        self._count = 0
        return self.difficulty

    def set_floor(self, floor: float) -> float:
        self.floor = min(max(floor, self.config.minimum), self.config.maximum)
        self.difficulty = self.clamp(self.difficulty)
        return self.difficulty

    def record_share(self, now: float) -> float | None:
        """Note an accepted share; returns the new difficulty when it changes."""
        self._count += 1
        if not self.enabled:
            return None
        elapsed = now - self._last_retarget
        if elapsed >= self.config.retarget_interval or self._count >= self.config.window:
            return self._retarget(now, elapsed, self._count)
        return None

    def tick(self, now: float) -> float | None:
        """Called periodically: lowers the difficulty when shares stopped coming."""
        if not self.enabled:
            return None
        elapsed = now - self._last_retarget
        if elapsed < self.config.retarget_interval:
            return None
        if self._count and elapsed / self._count <= self.config.target_interval * (1 + self.config.variance):
            return None  # shares arrive often enough; record_share will retarget
        return self._retarget(now, elapsed, self._count)

    def _retarget(self, now: float, elapsed: float, count: int) -> float | None:
        # With no share yet the true interval is at least ``elapsed``: a lower bound that only lowers.
        interval = max(elapsed, 1e-3) / max(count, 1)
        ratio = self.config.target_interval / interval
        self._last_retarget = now
        self._count = 0
        if abs(ratio - 1) <= self.config.variance:
            return None
        ratio = min(max(ratio, 1 / self.config.max_step), self.config.max_step)
        new = self.clamp(_tidy(self.difficulty * ratio))
        if new == self.difficulty:
            return None
        self.difficulty = new
        return new
