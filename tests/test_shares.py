"""Share validation on its own: order of checks, hashing, block detection, per-job state."""

from __future__ import annotations

import pytest
from miner import REGTEST_TARGET, NotifiedJob, find_share, make_job

from stratum_pool.chain.pow import check_share_py, scrypt_py, sha256d_py
from stratum_pool.coins import get_coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol import messages as msg
from stratum_pool.shares.validate import ShareResult, ShareValidator, Submission, achieved_difficulty

BTC = get_coin("bitcoin", "regtest")
LTC = get_coin("litecoin", "regtest")
EN1 = bytes.fromhex("cafebabe")
NOW = 1_700_000_100.0
MASK = 0x1FFFE000


def notified(job: Job) -> NotifiedJob:
    return NotifiedJob.from_params([*msg.notify_params(job), True], 0.0)


def found(
    job: Job, difficulty: float, en2: int = 1, version_bits: int = 0, high: float | None = None
) -> Submission:
    share = find_share(
        job.template.coin, notified(job), EN1, en2.to_bytes(4, "big"), min_difficulty=difficulty,
        max_difficulty=high, version_bits=version_bits, version_mask=MASK, send_version=version_bits != 0,
    )  # fmt: skip
    return Submission(job.job_id, share.extranonce2, share.ntime, share.nonce, share.version_bits)


def check(
    validator: ShareValidator, job: Job | None, sub: Submission, required: float, mask: int = MASK,
    stale: bool = False,
) -> ShareResult:  # fmt: skip
    return validator.check(job, stale, sub, extranonce1=EN1, extranonce2_size=4, version_mask=mask,
                           required=required, now=NOW)  # fmt: skip


def test_unknown_job_comes_before_any_field_check() -> None:
    result = check(ShareValidator(BTC), None, Submission("x", "", "", ""), 1, mask=0)
    assert (result.code, result.reason) == (21, "unknown-job")


def test_stale_comes_before_field_checks() -> None:
    job = make_job("j1")
    result = check(ShareValidator(BTC), job, Submission("j1", "zz", "", ""), 1, mask=0, stale=True)
    assert (result.code, result.reason) == (21, "stale")


def test_accepted_share_matches_the_reference_hash() -> None:
    job = make_job("j1", target=2**200)
    sub = found(job, 1e-7)
    result = check(ShareValidator(BTC), job, sub, 1e-7)
    assert result.accepted and not result.block
    t = job.template
    header, pow_hash = check_share_py(
        0, job.coinb1, EN1, bytes.fromhex(sub.extranonce2), job.coinb2, job.branch, t.version, t.prevhash,
        int(sub.ntime, 16), t.nbits, int(sub.nonce, 16),
    )  # fmt: skip
    assert (result.header, result.pow_hash) == (header, pow_hash)
    assert result.achieved == achieved_difficulty(BTC, pow_hash) >= 1e-7


def test_version_is_job_version_outside_the_mask_and_bits_inside() -> None:
    job = make_job("j1", version=0x20000004, target=2**200)
    sub = found(job, 1e-7, version_bits=0x0000E000)
    result = check(ShareValidator(BTC), job, sub, 1e-7)
    assert result.accepted
    assert int.from_bytes(result.header[:4], "little") == 0x2000E004


def test_scrypt_block_candidate_has_sha256d_block_hash_and_scrypt_pow_hash() -> None:
    job = make_job("l1", coin=LTC, target=REGTEST_TARGET)
    sub = found(job, 1e-4)
    result = check(ShareValidator(LTC), job, sub, 1e-4)
    assert result.accepted and result.block
    assert result.pow_hash == scrypt_py(result.header)
    assert result.block_hash == sha256d_py(result.header)


def test_share_below_required_is_23_with_achieved_difficulty() -> None:
    job = make_job("j1", target=2**200)
    sub = found(job, 1e-8, high=2e-8)
    result = check(ShareValidator(BTC), job, sub, 1e-6)
    assert (result.code, result.reason) == (23, "low-difficulty")
    assert 1e-8 <= result.achieved < 2e-8


def test_duplicates_are_per_job_and_dropped_with_the_job() -> None:
    validator = ShareValidator(BTC)
    job = make_job("j1", target=2**200)
    sub = found(job, 1e-7)
    assert check(validator, job, sub, 1e-7).accepted
    assert check(validator, job, sub, 1e-7).code == 22
    assert validator.prune(lambda job_id: job) == 0
    assert validator.prune(lambda job_id: None) == 1 and len(validator) == 0
    assert check(validator, job, sub, 1e-7).accepted


def test_a_new_job_object_under_an_old_id_gets_a_fresh_context() -> None:
    validator = ShareValidator(BTC)
    first, second = make_job("j1"), make_job("j1", height=200)
    assert validator.context(first) is validator.context(first)
    assert validator.context(second).job is second


def test_ntime_bounds_use_mintime_or_curtime_slack() -> None:
    validator = ShareValidator(BTC, ntime_past_slack=600)
    assert validator.context(make_job("a", curtime=10_000)).min_ntime == 9_400
    assert validator.context(make_job("b", curtime=10_000, mintime=9_900)).min_ntime == 9_900


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("extranonce2", "01", "bad-extranonce2"),
        ("extranonce2", "0000000001", "bad-extranonce2"),
        ("extranonce2", "zzzzzzzz", "bad-extranonce2"),
        ("ntime", "ffffffff", "bad-ntime"),
        ("nonce", "0", "bad-nonce"),
        ("version_bits", "00000001", "bad-version"),
        ("version_bits", "xyz", "bad-version"),
    ],
)
def test_malformed_fields(field: str, value: str, reason: str) -> None:
    job = make_job("j1")
    sub = Submission("j1", "00000001", f"{job.template.curtime:08x}", "00000000", None)
    bad = Submission(**{**{s: getattr(sub, s) for s in Submission.__slots__}, field: value})
    result = check(ShareValidator(BTC), job, bad, 1e-9)
    assert (result.code, result.reason) == (20, reason)


def test_extranonce2_length_message_names_the_expected_length() -> None:
    job = make_job("j1")
    result = check(ShareValidator(BTC), job, Submission("j1", "01", "00000000", "00000000"), 1, mask=0)
    assert "8 hex characters (4 bytes)" in result.message and "got 2" in result.message


def test_a_block_below_the_share_difficulty_is_still_accepted_as_a_block() -> None:
    job = make_job("j1", target=REGTEST_TARGET)  # regtest: the network is easier than the share difficulty
    sub = found(job, 1e-8, high=2e-8)
    result = check(ShareValidator(BTC), job, sub, 1e-6)
    assert result.accepted and result.block
    assert result.required == result.achieved < 1e-6
