"""``CoinPoolView``: a running ``pool.CoinPool`` seen as the API's ``PoolView``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratum_pool.coins import DIFF1_TARGET

if TYPE_CHECKING:
    from stratum_pool.peers import PeerGauges
    from stratum_pool.pool import CoinPool


class CoinPoolView:
    """Reads the live state of one coin pool; holds nothing of its own."""

    def __init__(self, pool: CoinPool, peers: PeerGauges | None = None) -> None:
        """``peers``: in a multi-process pool, the other workers' gauges, added to this process's own live
        figures (connections, workers online, hashrate)."""
        self._pool = pool
        self._peers = peers

    def _others(self, name: str) -> float:
        return self._peers.total(name, coin=self._pool.coin.key) if self._peers is not None else 0.0

    @property
    def coin_key(self) -> str:
        return self._pool.coin.key

    @property
    def algorithm(self) -> str:
        return self._pool.coin.algorithm

    @property
    def scheme(self) -> str:
        return self._pool.settings.mode

    @property
    def fee_percent(self) -> float:
        return self._pool.settings.fee_percent

    @property
    def stratum_port(self) -> int:
        return self._pool.port

    @property
    def height(self) -> int | None:
        template = self._pool.jobs.template
        return template.height if template is not None else None

    @property
    def network_difficulty(self) -> float | None:
        # As the daemons report it (getdifficulty): the diff-1 target over the network target, for sha256d
        # and scrypt coins alike.
        template = self._pool.jobs.template
        return DIFF1_TARGET / template.target if template is not None and template.target > 0 else None

    @property
    def connections(self) -> int:
        return len(self._pool.server.sessions) + int(self._others("stratum_pool_connections_open"))

    @property
    def workers_online(self) -> int:
        own = sum(1 for s in self._pool.server.sessions if s.authorized)
        return own + int(self._others("stratum_pool_sessions_authorized"))

    @property
    def hashrate(self) -> float:
        own = self._pool.metrics.hashrate_of(self._pool.coin.key)
        return own + self._others("stratum_pool_hashrate_hashes_per_second")


if TYPE_CHECKING:
    from stratum_pool.api.app import PoolView

    _conforms: type[PoolView] = CoinPoolView
