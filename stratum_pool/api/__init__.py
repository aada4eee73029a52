"""The HTTP side: read-only JSON API, the dashboard page and /metrics."""

from stratum_pool.api.app import PoolView, create_app, start_api_server
from stratum_pool.api.live import CoinPoolView, LiveView
from stratum_pool.api.ratelimit import RateLimitSettings

__all__ = ["CoinPoolView", "LiveView", "PoolView", "RateLimitSettings", "create_app", "start_api_server"]
