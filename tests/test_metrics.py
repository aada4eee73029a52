"""The metrics a pool exposes parse as Prometheus text and move with shares."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stratum_pool.cluster.peers import Snapshots, all_workers_registry, write_snapshot
from stratum_pool.metrics import HASHES_PER_DIFF1, HASHRATE_WINDOW_SECONDS, PoolMetrics


def samples(metrics: PoolMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_shares_and_hashrate_move() -> None:
    now = [1000.0]
    m = PoolMetrics(clock=lambda: now[0])
    m.watch_coin("bitcoin-regtest")
    for _ in range(3):
        m.share_accepted("bitcoin-regtest", 2.0, 1)
    m.shares.labels("bitcoin-regtest", "rejected", "stale").inc()
    now[0] += 60.0  # the pool has run for a minute: the figure covers that minute, not ten
    got = samples(m)
    accepted = ("stratum_pool_shares_total", (("coin", "bitcoin-regtest"), ("reason", ""), ("result", "accepted")))
    assert got[accepted] == 3
    assert got[("stratum_pool_shares_total", (("coin", "bitcoin-regtest"), ("reason", "stale"),
                                              ("result", "rejected")))] == 1
    assert got[("stratum_pool_accepted_difficulty_total", (("coin", "bitcoin-regtest"),))] == 6.0
    expected = 6.0 * HASHES_PER_DIFF1 / 60.0
    assert got[("stratum_pool_hashrate_hashes_per_second", (("coin", "bitcoin-regtest"),))] == expected
    now[0] += HASHRATE_WINDOW_SECONDS  # the window now starts 10 s after that minute's shares
    assert m.hashrate_of("bitcoin-regtest") == 0.0
    m.share_accepted("bitcoin-regtest", 3.0, 1)
    # the pool has now run for longer than the window: the figure covers the window
    assert m.hashrate_of("bitcoin-regtest") == 3.0 * HASHES_PER_DIFF1 / HASHRATE_WINDOW_SECONDS


def test_scrypt_shares_stand_for_fewer_hashes() -> None:
    now = [5.0]
    m = PoolMetrics(clock=lambda: now[0])
    m.watch_coin("litecoin-regtest")
    m.share_accepted("litecoin-regtest", 65536.0, 65536)
    now[0] += 300.0
    assert m.hashrate_of("litecoin-regtest") == HASHES_PER_DIFF1 / 300.0


def test_rpc_observer_counts_latency_and_errors() -> None:
    m = PoolMetrics()
    m.rpc_observer("node1", "getblocktemplate", 0.02, None)
    m.rpc_observer("node1", "getblocktemplate", 1.5, "timeout")
    got = samples(m)
    assert got[("stratum_pool_rpc_seconds_count", (("daemon", "node1"), ("method", "getblocktemplate")))] == 2
    assert got[("stratum_pool_rpc_errors_total", (("daemon", "node1"), ("kind", "timeout"),
                                                  ("method", "getblocktemplate")))] == 1


def test_share_counts_kept_between_scrapes_all_reach_each_scrape() -> None:
    m = PoolMetrics(clock=lambda: 7.0)
    key = ("stratum_pool_shares_total", (("coin", "bitcoin-regtest"), ("reason", "duplicate"), ("result", "rejected")))
    accepted = ("stratum_pool_shares_total", (("coin", "bitcoin-regtest"), ("reason", ""), ("result", "accepted")))
    m.share_rejected("bitcoin-regtest", "duplicate")
    m.share_rejected("bitcoin-regtest", "duplicate")
    m.share_accepted("bitcoin-regtest", 0.5, 1)
    first = samples(m)
    assert first[key] == 2 and first[accepted] == 1
    assert samples(m)[key] == 2  # a second scrape adds nothing twice
    m.share_rejected("bitcoin-regtest", "duplicate")
    m.share_accepted("bitcoin-regtest", 0.25, 1)
    later = samples(m)
    assert later[key] == 3 and later[accepted] == 2
    assert later[("stratum_pool_accepted_difficulty_total", (("coin", "bitcoin-regtest"),))] == 0.75


def test_all_workers_label_each_workers_samples(tmp_path: Path) -> None:
    own, other = PoolMetrics(clock=lambda: 7.0), PoolMetrics(clock=lambda: 7.0)
    own.share_accepted("bitcoin-regtest", 1.0, 1)
    for _ in range(3):
        other.share_accepted("bitcoin-regtest", 2.0, 1)
    other.share_rejected("bitcoin-regtest", "stale")
    write_snapshot(other.registry, tmp_path, 1)
    text = generate_latest(all_workers_registry(own.registry, Snapshots(tmp_path, 0))).decode()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}
    coin = ("coin", "bitcoin-regtest")
    assert got[("stratum_pool_shares_total", (coin, ("reason", ""), ("result", "accepted"), ("worker", "0")))] == 1
    assert got[("stratum_pool_shares_total", (coin, ("reason", ""), ("result", "accepted"), ("worker", "1")))] == 3
    assert got[("stratum_pool_shares_total", (coin, ("reason", "stale"), ("result", "rejected"), ("worker", "1")))] == 1
    assert got[("stratum_pool_accepted_difficulty_total", (coin, ("worker", "1")))] == 6.0
    assert got[("stratum_pool_worker_metrics_age_seconds", (("worker", "0"),))] == 0.0
    assert got[("stratum_pool_worker_metrics_age_seconds", (("worker", "1"),))] >= 0.0
    assert text.count("# TYPE stratum_pool_shares_total counter") == 1  # one family, both workers' samples
