"""The job manager: templates in, jobs per payout key out, staleness, and how long old jobs stay known."""

from __future__ import annotations

from typing import Any

import pytest
from mainnet import gbt_from_block, read_block

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import parse_block
from stratum_pool.coins import get_coin
from stratum_pool.jobs.manager import KEEP_TEMPLATES, JobManager

BTC = get_coin("bitcoin", "mainnet")
ALICE = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
BOB = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
POOL = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"


def gbt(prev: str | None = None, time_shift: int = 0) -> dict[str, Any]:
    answer = gbt_from_block(parse_block(read_block(277647)), 277647, 2)
    if prev is not None:
        answer["previousblockhash"] = prev
    answer["curtime"] += time_shift
    return answer


def manager(solo: bool = True, fee_ppm: int = 0) -> JobManager:
    return JobManager(BTC, extranonce_size=8, pool_tag=b"/test/", address_to_script=lambda a: address_to_script(a, BTC),
                      solo=solo, pool_address="" if solo else POOL, fee_address=POOL if fee_ppm else "",
                      fee_ppm=fee_ppm, node_id=3, clock=lambda: 100.0)


def test_solo_jobs_pay_each_miner_and_share_the_template() -> None:
    m = manager()
    assert m.current_job(ALICE) is None
    assert m.update(gbt()) is True
    a, b = m.current_job(ALICE), m.current_job(BOB)
    assert a is not None and b is not None
    assert a.template is b.template and a.job_id != b.job_id
    assert address_to_script(ALICE, BTC) in a.coinb2 and address_to_script(BOB, BTC) in b.coinb2
    assert m.current_job(ALICE) is a  # built once per template and key
    assert a.job_id.startswith("03")  # node id prefix
    assert m.get_job(a.job_id) is a


def test_pool_mode_pays_the_pool_whoever_mines() -> None:
    m = manager(solo=False)
    m.update(gbt())
    a, b = m.current_job(ALICE), m.current_job(BOB)
    assert a is b and a is not None
    assert address_to_script(POOL, BTC) in a.coinb2
    assert m.reward_for(a) == a.template.coinbase_value


def test_solo_fee_output_and_reward() -> None:
    m = manager(fee_ppm=10_000)  # 1 %
    m.update(gbt())
    job = m.current_job(ALICE)
    assert job is not None
    value = job.template.coinbase_value
    assert m.reward_for(job) == value - value // 100
    assert address_to_script(POOL, BTC) in job.coinb2


def test_same_tip_refresh_is_not_a_new_block_and_old_jobs_stay_valid() -> None:
    m = manager()
    m.update(gbt())
    first = m.current_job(ALICE)
    assert first is not None and first.clean_jobs
    assert m.update(gbt(time_shift=30)) is False
    second = m.current_job(ALICE)
    assert second is not None and second is not first and not second.clean_jobs
    assert not m.is_stale(first) and m.get_job(first.job_id) is first


def test_new_tip_makes_old_jobs_stale_but_known_for_a_while() -> None:
    m = manager()
    m.update(gbt())
    old = m.current_job(ALICE)
    assert old is not None
    assert m.update(gbt(prev="11" * 32)) is True
    assert m.is_stale(old) and m.get_job(old.job_id) is old
    for i in range(KEEP_TEMPLATES):
        m.update(gbt(prev=f"{i:02x}" * 32))
        m.current_job(ALICE)
    assert m.get_job(old.job_id) is None


def test_bad_address_is_refused_when_the_job_is_built() -> None:
    m = manager()
    m.update(gbt())
    with pytest.raises(ValueError):
        m.current_job("not-an-address")
