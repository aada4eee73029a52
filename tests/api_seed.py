"""A small pool history in plain SQL, and fake live pools, shared by the API and dashboard tests.

The clock stands at ``NOW`` (a whole ten minutes, so history buckets line up with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from stratum_pool.hashrate import Rate, WorkerFigures
from stratum_pool.store.found import FoundRecord

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW_EPOCH = int(NOW.timestamp())
MIN = timedelta(minutes=1)

ALICE = "bcrt1qalice0000000000000000000000000000000"
BOB = "bcrt1qbob00000000000000000000000000000000"
CAROL = "rltc1qcarol000000000000000000000000000000"
FEE = "bcrt1qfee00000000000000000000000000000000"
TXID = "ab" * 32
BLOCK_HASHES = {101: "01" * 32, 103: "03" * 32, 105: "05" * 32}


@dataclass(frozen=True)
class FakePool:
    coin_key: str
    algorithm: str
    scheme: str
    fee_percent: float
    stratum_port: int
    height: int | None
    network_difficulty: float | None
    connections: int
    workers_online: int
    hashrate: float
    # this process's memory: the coin's rates and best shares, live workers by address, history (hashes per
    # bucket start) by address ("" for the pool)
    live_rates: dict[str, Rate] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    live_workers: dict[str, list[WorkerFigures]] = field(default_factory=dict)
    history: dict[str, dict[float, float]] = field(default_factory=dict)
    found: list[FoundRecord] = field(default_factory=list)  # the newest last, as store.found keeps them
    firmware: dict[str, int] = field(default_factory=dict)  # authorized connections by user agent

    def found_blocks(self, limit: int, finder: str | None = None) -> list[FoundRecord]:
        return [r for r in reversed(self.found) if finder is None or r.finder == finder][:limit]

    def devices(self) -> dict[str, int]:
        return dict(self.firmware)

    def miners(self) -> list[tuple[str, float, float]]:
        return [(a, sum(w.rates["10m"].hashrate for w in ws), max(w.best_ever for w in ws))
                for a, ws in self.live_workers.items()]

    def rates(self) -> dict[str, Rate]:
        return self.live_rates

    def best_share(self) -> dict[str, float]:
        return self.best

    def workers_of(self, address: str) -> list[WorkerFigures]:
        return self.live_workers.get(address, [])

    def address_history(self, address: str, start: float, end: float, step: float) -> dict[float, float]:
        return _bucketed(self.history.get(address, {}), start, end, step)

    def pool_history(self, start: float, end: float, step: float) -> dict[float, float]:
        return _bucketed(self.history.get("", {}), start, end, step)

    def worker_history(self, address: str, start: float, end: float, step: float) -> dict[str, dict[float, float]]:
        # the tests' workers share the address's history in halves
        names = [w.name for w in self.live_workers.get(address, [])]
        whole = _bucketed(self.history.get(address, {}), start, end, step)
        return {n: {t: h / len(names) for t, h in whole.items()} for n in names}


def _bucketed(points: dict[float, float], start: float, end: float, step: float) -> dict[float, float]:
    out: dict[float, float] = {}
    for t, hashes in points.items():
        if start <= t < end:
            key = start + (t - start) // step * step
            out[key] = out.get(key, 0.0) + hashes
    return out


POOLS = [
    FakePool("bitcoin-regtest", "sha256d", "pplns", 1.0, 3333, 106, 4.656542373906925e-10, 3, 2, 1.5e9,
             live_rates={"10m": Rate(1.5e9, 500, 600.0), "1h": Rate(1.2e9, 2000, 3600.0),
                         "24h": Rate(1.0e9, 9000, 86000.0)},
             best={"since_block": 1e-10, "session": 9e-10, "all_time": 9e-10},
             firmware={"bitaxe/BM1366/v2.4.0": 1, "cpuminer/2.5.1": 1}),
    FakePool("litecoin-regtest", "scrypt", "prop", 0.5, 3334, 250, 0.0005, 1, 1, 2.0e6),
]


def seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=False) as conn:
        ex = conn.execute
        ex("INSERT INTO coins (id, key, symbol, maturity) VALUES (1, 'bitcoin-regtest', 'rBTC', 100),"
           " (2, 'litecoin-regtest', 'rLTC', 100)")
        ex("INSERT INTO accounts (id, coin_id, address, is_fee_account) VALUES"
           " (1, 1, %s, false), (2, 1, %s, false), (3, 2, %s, false), (4, 1, %s, true)", (ALICE, BOB, CAROL, FEE))
        ex("INSERT INTO workers (id, account_id, name, best_difficulty, last_seen) VALUES"
           " (1, 1, 'rig1', 1234.5, %(now)s), (2, 1, 'rig2', 99, %(now)s), (3, 2, '', 50, %(now)s),"
           " (4, 3, 'l1', 70000, %(now)s)", {"now": NOW})
        stats: list[tuple[int, datetime, int, int, float]] = []
        # rig1: difficulty 6 in each of the last ten minutes (T-9 .. T), 3 accepted and 1 rejected each;
        # one busier minute just outside the hashrate window; one more than a day ago.
        stats += [(1, NOW - i * MIN, 3, 1, 6.0) for i in range(10)]
        stats += [(1, NOW - 10 * MIN, 50, 2, 100.0), (1, NOW - timedelta(hours=25), 1000, 0, 5000.0)]
        stats += [(2, NOW - timedelta(hours=2), 4, 0, 8.0)]
        stats += [(3, NOW - 5 * MIN, 10, 0, 30.0)]
        stats += [(4, NOW - MIN, 3, 0, 3 * 65536.0)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO share_stats_minute (worker_id, minute, accepted, rejected, difficulty)"
                            " VALUES (%s, %s, %s, %s, %s)", stats)
        ex("INSERT INTO blocks (id, coin_id, height, hash, reward, finder_account_id, finder_worker_id, scheme,"
           " status, confirmations, node_id, share_seq, found_at) VALUES"
           " (1, 1, 101, %s, 5000000000, 1, 1, 'pplns', 'confirmed', 100, 0, 10, %s),"
           " (2, 1, 103, %s, 5000000000, 1, 2, 'pplns', 'orphaned', 0, 0, 20, %s),"
           " (3, 1, 105, %s, 5000000000, 2, 3, 'pplns', 'pending', 3, 0, 30, %s)",
           (BLOCK_HASHES[101], NOW - timedelta(hours=3), BLOCK_HASHES[103], NOW - timedelta(hours=2),
            BLOCK_HASHES[105], NOW - timedelta(hours=1)))
        ex("INSERT INTO credits (id, block_id, account_id, amount, scheme, status) VALUES"
           " (1, 1, 1, 3000000000, 'pplns', 'confirmed'), (2, 1, 2, 1950000000, 'pplns', 'confirmed'),"
           " (3, 1, 4, 50000000, 'pplns', 'confirmed'),"
           " (4, 3, 1, 1000000000, 'pplns', 'pending'), (5, 3, 2, 2000000000, 'pplns', 'pending')")
        ex("INSERT INTO balances (account_id, confirmed) VALUES (1, 123456789), (2, 0)")
        ex("INSERT INTO payout_batches (id, coin_id, status, txid, total, error, created_at, finished_at) VALUES"
           " (1, 1, 'sent', %s, 2876543211, '', %s, %s), (2, 1, 'failed', NULL, 5000, 'wallet said no', %s, %s)",
           (TXID, NOW - timedelta(hours=2), NOW - timedelta(hours=2) + timedelta(seconds=10),
            NOW - MIN * 30, NOW - MIN * 29))
        ex("INSERT INTO payouts (batch_id, account_id, address, amount) VALUES"
           " (1, 1, %s, 2000000000), (1, 2, %s, 876543211), (2, 1, %s, 5000)", (ALICE, BOB, ALICE))
        conn.commit()
