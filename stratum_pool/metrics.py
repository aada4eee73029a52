"""Prometheus metrics: one registry per pool process, every name ``stratum_pool_*`` with its unit.

Labels are bounded: coin, result, reason, daemon and method take a handful of values each; nothing is
labelled per worker or per address (those go to the database and the HTTP API instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from stratum_pool.hashrate import HASHES_PER_DIFF1 as HASHES_PER_DIFF1
from stratum_pool.hashrate import RateMeter

# Hashes behind one share of difficulty 1 (sha256d): 2**32 (HASHES_PER_DIFF1). A scrypt share of difficulty 1
# meets a target 65536 times easier (coins.Coin.share_multiplier), so it stands for that many times fewer hashes.
HASHRATE_WINDOW_SECONDS = 600.0


class _Accepted:
    """Accepted shares of one coin counted since the last flush, and its hashrate meter."""

    __slots__ = ("count", "counter", "difficulty", "difficulty_counter", "window")

    def __init__(self, counter: Any, difficulty_counter: Any, window: RateMeter) -> None:
        self.count = 0
        self.difficulty = 0.0
        self.counter = counter
        self.difficulty_counter = difficulty_counter
        self.window = window


class _FlushFirst:
    """A collector of no metrics whose collection runs ``flush``."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._flush()
        return []


class _ByProtocol:
    """Shares judged and connections open per coin and protocol (V1, V2), read from the listeners' own plain
    counts when scraped (nothing more per share than an integer addition)."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, str, Callable[[], tuple[int, int, int]]]] = []

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        shares = CounterMetricFamily("stratum_pool_protocol_shares", "Shares judged, by protocol and result",
                                     labels=["coin", "protocol", "result"])
        connections = GaugeMetricFamily("stratum_pool_protocol_connections_open", "Open miner connections by protocol",
                                        labels=["coin", "protocol"])
        for coin, protocol, figures in self.sources:
            accepted, rejected, open_ = figures()
            shares.add_metric([coin, protocol, "accepted"], accepted)
            shares.add_metric([coin, protocol, "rejected"], rejected)
            connections.add_metric([coin, protocol], open_)
        return [shares, connections]


class _Spool:
    """The spool's own counts when scraped: group commits (one write and fsync each) and records written."""

    def __init__(self) -> None:
        self.figures: Callable[[], tuple[int, int]] | None = None  # (group commits, records fsynced)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        if self.figures is None:
            return []
        commits, records = self.figures()
        return [CounterMetricFamily("stratum_pool_spool_group_commits", "Spool writes made durable (one fsync each)",
                                    value=commits),
                CounterMetricFamily("stratum_pool_spool_records", "Spool records made durable", value=records)]


class PoolMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock
        r = self.registry
        # first in the registry, so a scrape flushes the share counts before the counters are read
        r.register(_FlushFirst(self.flush))
        self._by_protocol = _ByProtocol()
        r.register(self._by_protocol)
        self._spool = _Spool()
        r.register(self._spool)
        self.connections = Gauge("stratum_pool_connections_open", "Open miner connections", ["coin"], registry=r)
        self.sessions_authorized = Gauge("stratum_pool_sessions_authorized", "Authorized sessions", ["coin"],
                                         registry=r)
        self.connections_total = Counter("stratum_pool_connections_total", "Connections accepted", ["coin"],
                                         registry=r)
        self.shares = Counter("stratum_pool_shares_total", "Shares by result and reason",
                              ["coin", "result", "reason"], registry=r)
        self.accepted_difficulty = Counter("stratum_pool_accepted_difficulty_total",
                                           "Sum of the difficulty of accepted shares", ["coin"], registry=r)
        self.hashrate = Gauge("stratum_pool_hashrate_hashes_per_second",
                              f"Pool hashrate estimated from accepted shares over {HASHRATE_WINDOW_SECONDS:.0f} s "
                              "(or since the pool started, when that is shorter)",
                              ["coin"], registry=r)
        self.blocks = Counter("stratum_pool_blocks_found_total", "Block candidates by submit result",
                              ["coin", "result"], registry=r)
        self.template_age = Gauge("stratum_pool_template_age_seconds", "Age of the current block template",
                                  ["coin"], registry=r)
        self.templates = Counter("stratum_pool_templates_total", "Templates fetched, by whether a new block",
                                 ["coin", "new_block"], registry=r)
        self.new_block_to_notify = Histogram(
            "stratum_pool_new_block_to_notify_seconds",
            "From learning of a new block to clean_jobs work written to every session",
            ["coin"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r)
        self.rpc_seconds = Histogram("stratum_pool_rpc_seconds", "Daemon RPC latency", ["daemon", "method"],
                                     buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
                                     registry=r)
        self.rpc_errors = Counter("stratum_pool_rpc_errors_total", "Daemon RPC errors by kind",
                                  ["daemon", "method", "kind"], registry=r)
        self.api_connections_refused = Counter(
            "stratum_pool_api_connections_refused",
            "API connections closed unanswered: [api] max_connections were open", registry=r)
        self.db_queue = Gauge("stratum_pool_db_queue_records", "Spool records not yet in PostgreSQL", registry=r)
        self.spool_bytes = Gauge("stratum_pool_spool_bytes", "Bytes of share spool on disk", registry=r)
        # the loader's consecutive failed attempts: > 0 for a while means PostgreSQL is unreachable (or refusing)
        self.db_load_failures = Gauge("stratum_pool_db_load_failures",
                                      "Consecutive failed attempts to load the spool into PostgreSQL (0: healthy)",
                                      registry=r)
        self.share_not_durable = Counter("stratum_pool_share_spool_errors_total",
                                         "Spool records (accepted shares, reject counts, blocks) that could not "
                                         "be made durable", registry=r)
        self.vardiff_changes = Counter("stratum_pool_vardiff_changes_total", "Difficulty changes sent",
                                       ["coin", "direction"], registry=r)
        self.bans = Counter("stratum_pool_bans_total", "IP addresses banned", ["coin", "reason"], registry=r)
        self.sv2_noise_failures = Counter("stratum_pool_sv2_noise_failures_total",
                                          "Stratum V2 connections the Noise layer refused, by stage",
                                          ["coin", "stage"], registry=r)
        self.tls_handshakes = Counter("stratum_pool_tls_handshakes_total",
                                      "TLS handshakes on stratum+tls ports by result (ok, timeout, failed, closed)",
                                      ["coin", "result"], registry=r)
        self.worker_bans = Counter("stratum_pool_worker_bans_total",
                                   "Worker names banned from one IP address (the address's other workers mine on)",
                                   ["coin", "reason"], registry=r)
        self._window: dict[str, RateMeter] = {}
        self._accepted: dict[str, _Accepted] = {}
        self._rejected: dict[tuple[str, str], int] = {}  # counted since the last flush

    def rpc_observer(self, daemon: str, method: str, seconds: float, error: str | None) -> None:
        """DaemonClient.observer: latency of every call, and errors by kind."""
        self.rpc_seconds.labels(daemon, method).observe(seconds)
        if error is not None:
            self.rpc_errors.labels(daemon, method, error).inc()

    def share_rejected(self, coin: str, reason: str) -> None:
        key = (coin, reason)
        pending = self._rejected
        if key in pending:
            pending[key] += 1
        elif len(pending) < 10_000:  # reasons are a short fixed list; never grow without bound
            pending[key] = 1
        else:
            self.flush()
            pending[key] = 1

    def spool_failed(self, count: int, _error: BaseException) -> None:
        """ShareSpool.on_failure: ``count`` records of a group commit did not reach the disk."""
        self.share_not_durable.inc(count)

    def share_accepted(self, coin: str, difficulty: float, multiplier: int) -> None:
        # per share: plain additions; the Prometheus counters (a lock per inc) take the sums when scraped
        tally = self._accepted.get(coin)
        if tally is None:
            tally = self._accepted[coin] = _Accepted(self.shares.labels(coin, "accepted", ""),
                                                     self.accepted_difficulty.labels(coin),
                                                     self._meter(coin))
        tally.count += 1
        tally.difficulty += difficulty
        # time buckets keep the meter small whatever the share rate
        tally.window.add(self.clock(), difficulty * HASHES_PER_DIFF1 / multiplier)

    def _meter(self, coin: str) -> RateMeter:
        meter = self._window.get(coin)
        if meter is None:  # a coin not watched: judged from its first share on
            meter = self._window[coin] = RateMeter(self.clock())
        return meter

    def flush(self) -> None:
        """Move the share counts kept since the last flush into their Prometheus counters (every collection
        of the registry does this first)."""
        for tally in self._accepted.values():
            if tally.count:
                count, difficulty = tally.count, tally.difficulty
                tally.count, tally.difficulty = 0, 0.0
                tally.counter.inc(count)
                tally.difficulty_counter.inc(difficulty)
        if self._rejected:
            pending, self._rejected = self._rejected, {}
            for (coin, reason), count in pending.items():
                self.shares.labels(coin, "rejected", reason).inc(count)

    def hashrate_of(self, coin: str) -> float:
        """The coin's hashrate in hashes per second, from the accepted shares of the last window over the time
        it covers (since the pool started, when that is shorter)."""
        return self._meter(coin).rate(self.clock(), HASHRATE_WINDOW_SECONDS).hashrate

    def meter(self, coin: str) -> RateMeter:
        """The coin's accepted work (its hashrate over any window, its history)."""
        return self._meter(coin)

    def watch_protocol(self, coin: str, protocol: str, figures: Callable[[], tuple[int, int, int]]) -> None:
        """Export ``figures()`` = (shares accepted, shares rejected, connections open) of ``coin``'s listener of
        ``protocol`` (read when scraped)."""
        self._by_protocol.sources.append((coin, protocol, figures))

    def watch_spool(self, figures: Callable[[], tuple[int, int]]) -> None:
        """Export ``figures()`` = (group commits, records made durable) of the share spool (read when scraped)."""
        self._spool.figures = figures

    def watch_coin(self, coin: str) -> None:
        """Gauges computed when scraped; the coin's hashrate is judged from now on."""
        self._window.setdefault(coin, RateMeter(self.clock()))
        self.hashrate.labels(coin).set_function(lambda: self.hashrate_of(coin))
        # both results exported at 0 from the start: the first rejected block must be an increase an alert sees
        # (a series born at 1 has no increase)
        for result in ("accepted", "rejected"):
            self.blocks.labels(coin, result)

