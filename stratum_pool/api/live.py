"""``LiveView``: what the API reads from one running coin pool of this process, and ``CoinPoolView``: that
view (with the other workers' figures, in a multi-process pool) seen as the API's ``PoolView``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from stratum_pool.coins import DIFF1_TARGET

if TYPE_CHECKING:
    from stratum_pool.cluster.peers import PeerGauges
    from stratum_pool.hashrate import Rate, WorkerFigures
    from stratum_pool.store.found import FoundRecord


class CoinFigures(Protocol):
    """What the API shows of one running coin pool (``LiveView``: this process's figures; ``app.PoolView``:
    with the other workers' added)."""

    @property
    def coin_key(self) -> str: ...  # coins.Coin.key, e.g. "bitcoin-regtest"
    @property
    def algorithm(self) -> str: ...
    @property
    def scheme(self) -> str: ...  # solo | pplns | prop
    @property
    def fee_percent(self) -> float: ...
    @property
    def stratum_port(self) -> int: ...
    @property
    def height(self) -> int | None: ...  # of the block being mined; None before the first template
    @property
    def connections(self) -> int: ...
    @property
    def workers_online(self) -> int: ...  # authorized sessions
    @property
    def hashrate(self) -> float: ...  # hashes per second, from the shares of the last window

    # this process's memory (bounded buffers): the same with or without a database
    def rates(self) -> dict[str, Rate]: ...  # the coin's hashrate over each window of hashrate.WINDOWS
    def best_share(self) -> dict[str, float]: ...  # since_block, session, all_time (achieved difficulty)
    def workers_of(self, address: str) -> list[WorkerFigures]: ...
    def address_history(self, address: str, start: float, end: float, step: float) -> dict[float, float]: ...
    def pool_history(self, start: float, end: float, step: float) -> dict[float, float]: ...  # hashes per bucket
    def worker_history(self, address: str, start: float, end: float,
                       step: float) -> dict[str, dict[float, float]]: ...  # by worker name
    def found_blocks(self, limit: int, finder: str | None = None) -> list[FoundRecord]: ...  # without a database
    def miners(self) -> list[tuple[str, float, float]]: ...  # (address, hashrate 10 min, best share ever)
    def devices(self) -> dict[str, int]: ...  # authorized connections by firmware (user agent)


class LiveView(CoinFigures, Protocol):
    """One running coin pool of this process (``pool.CoinLive``): the API reads nothing else of the pool."""

    @property
    def network_target(self) -> int | None: ...  # of the block being mined; None before the first template


class CoinPoolView:
    """Reads the live state of one coin pool; holds nothing of its own."""

    def __init__(self, live: LiveView, peers: PeerGauges | None = None) -> None:
        """``peers``: in a multi-process pool, the other workers' gauges, added to this process's own live
        figures (connections, workers online, hashrate)."""
        self._live = live
        self._peers = peers

    def _others(self, name: str) -> float:
        return self._peers.total(name, coin=self._live.coin_key) if self._peers is not None else 0.0

    @property
    def coin_key(self) -> str:
        return self._live.coin_key

    @property
    def algorithm(self) -> str:
        return self._live.algorithm

    @property
    def scheme(self) -> str:
        return self._live.scheme

    @property
    def fee_percent(self) -> float:
        return self._live.fee_percent

    @property
    def stratum_port(self) -> int:
        return self._live.stratum_port

    @property
    def height(self) -> int | None:
        return self._live.height

    @property
    def network_difficulty(self) -> float | None:
        # As the daemons report it (getdifficulty): the diff-1 target over the network target, for sha256d
        # and scrypt coins alike.
        target = self._live.network_target
        return DIFF1_TARGET / target if target is not None and target > 0 else None

    @property
    def connections(self) -> int:
        return self._live.connections + int(self._others("stratum_pool_connections_open"))

    @property
    def workers_online(self) -> int:
        return self._live.workers_online + int(self._others("stratum_pool_sessions_authorized"))

    @property
    def hashrate(self) -> float:
        return self._live.hashrate + self._others("stratum_pool_hashrate_hashes_per_second")

    # In a multi-process pool these are worker 0's (the API's) own: the others' workers are in the database.
    def rates(self) -> dict[str, Rate]:
        return self._live.rates()

    def best_share(self) -> dict[str, float]:
        return self._live.best_share()

    def workers_of(self, address: str) -> list[WorkerFigures]:
        return self._live.workers_of(address)

    def address_history(self, address: str, start: float, end: float, step: float) -> dict[float, float]:
        return self._live.address_history(address, start, end, step)

    def pool_history(self, start: float, end: float, step: float) -> dict[float, float]:
        return self._live.pool_history(start, end, step)

    def worker_history(self, address: str, start: float, end: float, step: float) -> dict[str, dict[float, float]]:
        return self._live.worker_history(address, start, end, step)

    def found_blocks(self, limit: int, finder: str | None = None) -> list[FoundRecord]:
        return self._live.found_blocks(limit, finder)

    def miners(self) -> list[tuple[str, float, float]]:
        return self._live.miners()

    def devices(self) -> dict[str, int]:
        return self._live.devices()
