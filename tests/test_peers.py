"""Workers of one pool share bans (and metrics) through the supervisor's directory."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry

from stratum_pool.cluster.peers import PeerGauges, Snapshots, WorkerExchange, write_snapshot
from stratum_pool.metrics import PoolMetrics
from stratum_pool.server.limits import Ban, BanList


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _worker(tmp_path: Path, index: int, clock: Clock) -> tuple[WorkerExchange, BanList, list[Ban]]:
    bans = BanList(clock)
    heard: list[Ban] = []
    bans.listeners.append(heard.append)  # what a stratum server does: drop that IP's connections
    return WorkerExchange(tmp_path, index, CollectorRegistry(), bans), bans, heard


def test_a_ban_on_one_worker_is_held_by_the_others(tmp_path: Path) -> None:
    clock = Clock()
    (a, bans_a, _), (b, bans_b, heard_b), (c, bans_c, _) = (_worker(tmp_path, i, clock) for i in range(3))
    entry = bans_a.ban("127.0.0.9", 600, "malformed")
    a.step()
    assert b.step() == 1 and c.step() == 1
    assert bans_b.banned("127.0.0.9") == entry and bans_c.banned("127.0.0.9") == entry
    assert heard_b == [entry]
    # it settles: nobody adopts it again, whoever writes it
    assert [w.step() for w in (a, b, c, a, b, c)] == [0] * 6
    assert heard_b == [entry]
    assert (tmp_path / "worker-0.prom").exists()  # the metrics snapshot goes the same way


def test_a_worker_ban_travels_as_a_worker_ban(tmp_path: Path) -> None:
    clock = Clock()
    (a, bans_a, _), (b, bans_b, heard_b) = (_worker(tmp_path, i, clock) for i in range(2))
    entry = bans_a.ban("127.0.0.9", 600, "invalid-shares", "addr.broken")
    a.step()
    assert b.step() == 1 and heard_b == [entry]
    assert bans_b.banned("127.0.0.9", "addr.broken") == entry and bans_b.banned("127.0.0.9") is None
    assert bans_b.refuses("127.0.0.9", "addr.broken") == entry and bans_b.refuses("127.0.0.9", "addr.ok") is None


def test_expired_bans_are_not_adopted(tmp_path: Path) -> None:
    clock = Clock()
    (a, bans_a, _), (b, bans_b, _) = (_worker(tmp_path, i, clock) for i in range(2))
    bans_a.ban("127.0.0.9", 10, "malformed")
    a.step()
    clock.now += 11
    assert b.step() == 0 and bans_b.banned("127.0.0.9") is None


def test_sighup_lifts_every_workers_bans_for_good(tmp_path: Path) -> None:
    clock = Clock()
    (a, bans_a, _), (b, bans_b, _) = (_worker(tmp_path, i, clock) for i in range(2))
    bans_a.ban("127.0.0.9", 600, "malformed")
    a.step()
    b.step()
    clock.now += 1
    # the supervisor passes SIGHUP on: each worker lifts its bans when its own loop gets to it
    bans_a.clear()
    a.step()
    b.step()  # b has not lifted yet and writes nothing new; a must not take the ban back from b's file
    bans_b.clear()
    b.step()
    a.step()
    clock.now += 1
    assert [a.step(), b.step(), a.step()] == [0, 0, 0]
    assert bans_a.banned("127.0.0.9") is None and bans_b.banned("127.0.0.9") is None
    # a ban decided after the lift travels as usual
    later = bans_b.ban("127.0.0.10", 600, "invalid-shares")
    b.step()
    assert a.step() == 1 and bans_a.banned("127.0.0.10") == later


def test_peer_gauges_sum_the_other_workers_fresh_snapshots(tmp_path: Path) -> None:
    clock = Clock()
    registries = []
    for index, open_ in enumerate((3, 5, 7)):
        metrics = PoolMetrics()
        metrics.connections.labels("bitcoin-mainnet").set(open_)
        metrics.connections.labels("litecoin-mainnet").set(100)
        write_snapshot(metrics.registry, tmp_path, index)
        registries.append(metrics)
    clock.now = (tmp_path / "worker-2.prom").stat().st_mtime + 1
    peers = PeerGauges(Snapshots(tmp_path, 0), max_age=10, clock=clock)
    assert peers.total("stratum_pool_connections_open", coin="bitcoin-mainnet") == 12  # workers 1 and 2
    assert peers.total("stratum_pool_connections_open", coin="dogecoin-mainnet") == 0
    # worker 2 stops writing (dead, not yet back): after max_age its last figures count no more
    registries[1].connections.labels("bitcoin-mainnet").set(6)
    write_snapshot(registries[1].registry, tmp_path, 1)
    os.utime(tmp_path / "worker-2.prom", (clock.now - 60, clock.now - 60))
    assert peers.total("stratum_pool_connections_open", coin="bitcoin-mainnet") == 6
