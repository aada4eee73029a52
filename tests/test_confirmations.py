"""track_confirmations against a real litecoind pair: depth counting, maturity at 101, a real reorg."""

from __future__ import annotations

import pytest
from daemon_fixtures import NotifyingRegtest
from test_accounting import balance, rows, seed_account, seed_block

from stratum_pool.coins import Coin
from stratum_pool.daemon.rpc import DaemonClient
from stratum_pool.rewards.confirmations import track_confirmations
from stratum_pool.store.accounting import verify_ledger

pytestmark = pytest.mark.integration


async def test_real_chain_confirms_at_101_and_orphans_after_a_reorg(
        pg_dsn: str, litecoin_pair: NotifyingRegtest, ltc_client: DaemonClient, ltc_regtest: Coin) -> None:
    pair = litecoin_pair
    a, b = seed_account(pg_dsn, "miner-a"), seed_account(pg_dsn, "miner-b")
    found = pair.generate(1)[0]
    height = int(pair.a.rpc("getblockcount"))
    block = seed_block(pg_dsn, height, found, [(a, 300_000_000, "pplns"), (b, 200_000_000, "pplns")])

    report = await track_confirmations(pg_dsn, ltc_client, ltc_regtest)
    assert [(o.status, o.confirmations) for o in report.blocks] == [("pending", 1)]

    pair.generate(99, on="b")  # 100 deep: consensus would allow a spend in the next block, the wallet not yet
    report = await track_confirmations(pg_dsn, ltc_client, ltc_regtest)
    assert [(o.status, o.confirmations) for o in report.blocks] == [("pending", 100)]
    assert rows(pg_dsn, "SELECT count(*) FROM ledger") == [(0,)]

    pair.generate(1, on="b")
    report = await track_confirmations(pg_dsn, ltc_client, ltc_regtest)
    assert [(o.status, o.confirmations, o.credited) for o in report.blocks] == [("confirmed", 101, 500_000_000)]
    assert rows(pg_dsn, "SELECT status FROM blocks WHERE id = %s", block) == [("confirmed",)]
    assert (balance(pg_dsn, a), balance(pg_dsn, b)) == (300_000_000, 200_000_000)

    # A block that a reorg takes out of the main chain: orphaned, credits void.
    doomed = pair.generate(1)[0]
    doomed_height = int(pair.a.rpc("getblockcount"))
    seed_block(pg_dsn, doomed_height, doomed, [(a, 100, "pplns")])
    report = await track_confirmations(pg_dsn, ltc_client, ltc_regtest)
    assert [o.status for o in report.blocks] == ["pending"]
    pair.a.rpc("invalidateblock", doomed)
    replacement = pair.a.generate(2)
    pair.sync(replacement[-1])
    report = await track_confirmations(pg_dsn, ltc_client, ltc_regtest)
    assert [(o.height, o.status) for o in report.blocks] == [(doomed_height, "orphaned")]
    assert rows(pg_dsn, "SELECT status FROM credits WHERE amount = 100") == [("void",)]
    assert balance(pg_dsn, a) == 300_000_000
    assert await verify_ledger(pg_dsn) == []
