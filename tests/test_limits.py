"""The [limits] and [bans] settings, the guard's bookkeeping, GET /api/bans and SIGHUP lifting bans."""

from __future__ import annotations

from typing import Any

import pytest
from api_client import ApiClient

from stratum_pool.api import create_app
from stratum_pool.config import ConfigError, parse_settings
from stratum_pool.pool import CoinPool, Pool
from stratum_pool.server.limits import BanList, BanPolicy, Guard, ServerLimits, WorkerRegistry

DAEMON = {"url": "http://127.0.0.1:1", "user": "u", "password": "p"}


def doc(**tables: Any) -> dict[str, Any]:
    return {"coins": [{"coin": "bitcoin", "network": "regtest", "stratum_port": 0, "daemons": [DAEMON]}], **tables}


def test_defaults_and_values() -> None:
    s = parse_settings(doc())
    assert s.limits == ServerLimits() and s.bans == BanPolicy()
    s = parse_settings(doc(limits={"max_connections_per_ip": 10, "idle_timeout_seconds": 60, "submits_per_second": 0},
                           bans={"enabled": False, "invalid_ratio": 0.5}))
    assert s.limits.max_connections_per_ip == 10 and s.limits.idle_timeout_seconds == 60.0
    assert s.limits.submits_per_second == 0 and not s.bans.enabled and s.bans.invalid_ratio == 0.5


@pytest.mark.parametrize(("tables", "words"), [
    ({"limits": {"max_line_bytes": 10}}, ["limits.max_line_bytes", "10", "1024..1048576"]),
    ({"limits": {"max_connections_per_ip": 0}}, ["limits.max_connections_per_ip", "at least 1"]),
    ({"limits": {"max_connections": 5, "max_connections_per_ip": 10}}, ["limits.max_connections_per_ip", "above"]),
    ({"limits": {"idle_timeout_seconds": "x"}}, ["limits.idle_timeout_seconds", "a number"]),
    ({"limits": {"nope": 1}}, ["limits.nope", "unknown setting"]),
    ({"bans": {"invalid_ratio": 1.5}}, ["bans.invalid_ratio", "at most 1"]),
    ({"bans": {"min_shares": 0}}, ["bans.min_shares", "at least 1"]),
    ({"bans": 3}, ["bans", "expected a table"]),
])
def test_errors_name_key_value_and_allowed(tables: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(doc(**tables))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_guard_counts_and_bans() -> None:
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    seen: list[str] = []
    guard = Guard(ServerLimits(max_connections=3, max_connections_per_ip=2),
                  BanPolicy(window_seconds=10, min_shares=4, invalid_ratio=0.75, max_malformed=2, duration_seconds=5),
                  bans, clock=lambda: now[0], on_ban=lambda b: seen.append(b.reason))
    for _ in range(2):
        assert guard.admit("1.1.1.1") is None
        guard.opened("1.1.1.1")
    assert guard.admit("1.1.1.1") == "too many connections from this address"
    guard.opened("2.2.2.2")
    assert guard.admit("3.3.3.3") == "too many connections"
    guard.closed("1.1.1.1")
    assert guard.admit("3.3.3.3") is None and guard.refused == 2
    # duplicates alone, under the minimum count: no ban; stale never counts
    for _ in range(3):
        assert guard.share("4.4.4.4", "duplicate", "a.bad") is None
    assert guard.share("4.4.4.4", "stale", "a.bad") is None
    # another worker's good shares from the same address do not dilute a.bad's ratio
    for _ in range(10):
        assert guard.share("4.4.4.4", None, "a.good") is None
    ban = guard.share("4.4.4.4", "low-difficulty", "a.bad")  # 4 invalid of 4 >= 0.75 at the minimum of 4
    assert ban is not None and ban.reason == "invalid-shares" and ban.worker == "a.bad"
    # the worker is banned from that address, not the address, nor the worker from elsewhere
    assert guard.admit("4.4.4.4") is None and bans.banned("4.4.4.4") is None
    assert guard.worker_refusal("4.4.4.4", "a.bad") == "worker a.bad is banned for 5 s more (invalid-shares)"
    assert guard.worker_refusal("4.4.4.4", "a.good") is None and guard.worker_refusal("6.6.6.6", "a.bad") is None
    # a window that ends forgets: 2 malformed, wait, 2 more: no ban; a third in one window bans
    guard.malformed("5.5.5.5", 2)
    now[0] = 11
    assert guard.malformed("5.5.5.5", 2) is None
    assert guard.malformed("5.5.5.5") is not None
    assert seen == ["invalid-shares", "malformed"]
    assert guard.worker_refusal("5.5.5.5", "a.good") == "this address is banned for 5 s more (malformed)"
    now[0] = 20  # bans expire
    assert bans.banned("4.4.4.4", "a.bad") is None and bans.active() == []


def test_whole_address_bans_only_for_floods_and_churn() -> None:
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    guard = Guard(ServerLimits(max_connections_per_ip=2),
                  BanPolicy(window_seconds=10, max_refused_connections=3, max_unauthenticated=4), bans,
                  clock=lambda: now[0])
    for _ in range(2):
        guard.opened("7.7.7.7")
    # refusals at the per-address cap: 3 in a window are tolerated (devices retrying), the 4th bans
    for _ in range(3):
        assert guard.admit("7.7.7.7") == "too many connections from this address"
    assert bans.banned("7.7.7.7") is None
    assert guard.admit("7.7.7.7") == "too many connections from this address"
    flood = bans.banned("7.7.7.7")
    assert flood is not None and flood.reason == "connection-flood" and guard.admit("7.7.7.7") == "banned"
    # connections that close without authorizing: 4 in a window pass, the 5th bans; a new window forgets
    for _ in range(4):
        assert guard.unauthenticated("8.8.8.8") is None
    now[0] = 10
    for _ in range(4):
        assert guard.unauthenticated("8.8.8.8") is None
    churn = guard.unauthenticated("8.8.8.8")
    assert churn is not None and churn.reason == "unauthenticated-churn" and churn.worker == ""


def test_worker_registry() -> None:
    r = WorkerRegistry(2)
    assert r.admit("s1", "a.w1", "a") is None and r.admit("s2", "a.w2", "a") is None
    assert r.admit("s3", "a.w1", "a") is None  # the same name on another session
    assert "too many workers" in (r.admit("s3", "a.w3", "a") or "")
    assert r.admit("s3", "b.w3", "b") is None  # another account
    r.release("s2")
    assert r.admit("s4", "a.w3", "a") is None and r.workers("a") == 2
    for s in ("s1", "s3", "s4"):
        r.release(s)
    assert r.workers("a") == 0 and r.workers("b") == 0


async def test_api_lists_bans() -> None:
    bans = BanList(clock=lambda: 1000.0)
    bans.ban("10.0.0.7", 600, "malformed")
    rows = [{"ip": b.ip, "until": b.until, "reason": b.reason} for b in bans.active()]
    async with ApiClient(create_app(None, [], None, bans=lambda: rows)) as client:
        response = await client.get("/api/bans")
        assert response.status == 200
        assert await response.json() == {"bans": [{"ip": "10.0.0.7", "until": 1600.0, "reason": "malformed"}]}


async def test_sighup_reload_lifts_bans_and_applies_limits() -> None:
    settings = parse_settings(doc())
    pool = Pool(settings)
    coin = CoinPool(settings.coins[0], limits=settings.limits, ban_policy=settings.bans, bans=pool.bans)
    pool.coins = [coin]
    coin.guard.ban("10.0.0.9", "malformed")
    assert pool.ban_rows()[0]["ip"] == "10.0.0.9"
    assert coin.metrics.registry.get_sample_value(
        "stratum_pool_bans_total", {"coin": "bitcoin-regtest", "reason": "malformed"}) == 1
    new = parse_settings(doc(limits={"max_connections_per_ip": 5, "submits_per_second": 3,
                                     "max_workers_per_account": 7}, bans={"min_shares": 9}))
    changed = pool.reload(new)
    assert pool.ban_rows() == [] and coin.guard.admit("10.0.0.9") is None
    assert "bitcoin-regtest.limits" in changed and "bitcoin-regtest.bans" in changed
    assert coin.server.limits.max_connections_per_ip == 5 and coin.guard.policy.min_shares == 9
    assert coin.session_config.submits_per_second == 3 and coin.worker_registry.max_per_account == 7
    await coin.daemon.close()
