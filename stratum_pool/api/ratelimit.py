"""Per-client token buckets for the HTTP API: steady requests pass, floods get 429 with Retry-After."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    # A dashboard page load makes about ten requests at once and then one every few seconds per panel.
    requests_per_second: float = 5.0
    burst: int = 40
    # Buckets kept at most; past that the least recently seen client is forgotten (it starts full again),
    # so a scan from many addresses costs bounded memory.
    max_clients: int = 10_000
    # Behind a reverse proxy every request comes from the proxy: name the header it sets (e.g.
    # "X-Forwarded-For") to limit by its last entry instead. Empty: the peer address.
    client_ip_header: str = ""
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0:
            raise ValueError(f"requests_per_second: {self.requests_per_second} must be above 0")
        if self.burst < 1:
            raise ValueError(f"burst: {self.burst} must be at least 1")
        if self.max_clients < 1:
            raise ValueError(f"max_clients: {self.max_clients} must be at least 1")


class RateLimiter:
    """``take(client)`` spends one token of the client's bucket, or says how long until one is back."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def take(self, client: str) -> float:
        """0.0 if the request may proceed, else the seconds to wait before the next one will."""
        s = self.settings
        now = self._clock()
        tokens, at = self._buckets.pop(client, (float(s.burst), now))
        tokens = min(float(s.burst), tokens + max(0.0, now - at) * s.requests_per_second)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / s.requests_per_second
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > s.max_clients:
            self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        """The Retry-After header value (whole seconds, at least 1) for a wait."""
        return str(max(1, math.ceil(wait)))

    def __len__(self) -> int:
        return len(self._buckets)
