"""The share core on its own: order of checks, hashing, block detection, per-job state."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from miner import REGTEST_TARGET, NotifiedJob, find_share, make_job

from stratum_pool._native import JobBook, ShareCore
from stratum_pool.chain.pow import check_share_py, scrypt_py, sha256d_py
from stratum_pool.coins import Coin, get_coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol import messages as msg
from stratum_pool.shares.core import Vardiff, make_rules
from stratum_pool.shares.records import BlockCandidate, ShareAccepted, ShareRejected
from stratum_pool.shares.vardiff import VardiffConfig

BTC = get_coin("bitcoin", "regtest")
LTC = get_coin("litecoin", "regtest")
EN1 = bytes.fromhex("cafebabe")
NOW = 1_700_000_100.0
MASK = 0x1FFFE000
WORKER = "bcrt1qminer.rig"


@dataclass
class Submission:
    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None = None


@dataclass
class Result:
    record: ShareAccepted | ShareRejected
    candidate: BlockCandidate | None

    @property
    def accepted(self) -> bool:
        return type(self.record) is ShareAccepted

    @property
    def block(self) -> bool:
        return self.candidate is not None

    def __getattr__(self, name: str) -> object:
        return getattr(self.record, name)


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


def core_for(book: JobBook, required: float, mask: int = MASK, coin: Coin = BTC, past_slack: int = 600) -> ShareCore:
    """A subscribed, authorized session's core whose shares must meet ``required``."""
    vardiff = Vardiff(VardiffConfig(minimum=1e-12), required, NOW, False)
    core = ShareCore(make_rules(coin, ntime_past_slack=past_slack), book, "s1", EN1, 4, vardiff, 0.0, 0.0, NOW)
    core.subscribed = True
    core.authorize(WORKER, "bcrt1qminer")
    core.version_mask = mask
    return core


def judge(core: ShareCore, sub: Submission) -> Result:
    params: tuple[object, ...] = (WORKER, sub.job_id, sub.extranonce2, sub.ntime, sub.nonce)
    if sub.version_bits is not None:
        params += (sub.version_bits,)
    record = core.judge(params, NOW)
    return Result(record, core.take_followup()[0])


def check(job: Job | None, sub: Submission, required: float, mask: int = MASK, stale: bool = False,
          coin: Coin = BTC) -> Result:  # fmt: skip
    book = JobBook()
    if job is not None:
        book.add(job)
        book.tip = bytes(32) if stale else job.template.prevhash
    return judge(core_for(book, required, mask, coin), sub)


def achieved_difficulty(coin: Coin, pow_hash: bytes) -> float:
    return coin.diff1_target / int.from_bytes(pow_hash, "little")


def test_unknown_job_comes_before_any_field_check() -> None:
    result = check(None, Submission("x", "", "", ""), 1, mask=0)
    assert (result.code, result.reason) == (21, "unknown-job")


def test_stale_comes_before_field_checks() -> None:
    job = make_job("j1")
    result = check(job, Submission("j1", "zz", "", ""), 1, mask=0, stale=True)
    assert (result.code, result.reason) == (21, "stale")


def test_accepted_share_matches_the_reference_hash() -> None:
    job = make_job("j1", target=2**200)
    sub = found(job, 1e-7)
    result = check(job, sub, 1e-7)
    assert result.accepted and not result.block and result.candidate is None
    t = job.template
    header, pow_hash = check_share_py(
        0, job.coinb1, EN1, bytes.fromhex(sub.extranonce2), job.coinb2, job.branch, t.version, t.prevhash,
        int(sub.ntime, 16), t.nbits, int(sub.nonce, 16),
    )  # fmt: skip
    assert result.achieved == achieved_difficulty(BTC, pow_hash) >= 1e-7
    assert len(header) == 80


def test_version_is_job_version_outside_the_mask_and_bits_inside() -> None:
    job = make_job("j1", version=0x20000004, target=2**200)
    sub = found(job, 1e-7, version_bits=0x0000E000)
    result = check(job, sub, 1e-7)
    assert result.accepted
    t = job.template
    header, _ = check_share_py(0, job.coinb1, EN1, bytes.fromhex(sub.extranonce2), job.coinb2, job.branch,
                               0x2000E004, t.prevhash, int(sub.ntime, 16), t.nbits, int(sub.nonce, 16))
    assert achieved_difficulty(BTC, sha256d_py(header)) == result.achieved


def test_scrypt_block_candidate_has_sha256d_block_hash_and_scrypt_pow_hash() -> None:
    job = make_job("l1", coin=LTC, target=REGTEST_TARGET)
    sub = found(job, 1e-4)
    result = check(job, sub, 1e-4, coin=LTC)
    assert result.accepted and result.block and result.candidate is not None
    assert result.candidate.pow_hash == scrypt_py(result.candidate.header)
    assert result.candidate.block_hash == sha256d_py(result.candidate.header)


def test_share_below_required_is_23_with_achieved_difficulty() -> None:
    job = make_job("j1", target=2**200)
    sub = found(job, 1e-8, high=2e-8)
    result = check(job, sub, 1e-6)
    assert (result.code, result.reason) == (23, "low-difficulty")
    assert 1e-8 <= result.achieved < 2e-8


def test_duplicates_are_per_job_and_dropped_with_the_job() -> None:
    book = JobBook()
    job = make_job("j1", target=2**200)
    book.add(job)
    core = core_for(book, 1e-7)
    sub = found(job, 1e-7)
    assert judge(core, sub).accepted
    assert judge(core, sub).code == 22
    book.discard("j1")
    assert judge(core, sub).reason == "unknown-job" and len(book) == 0
    book.add(job)
    assert judge(core, sub).accepted


def test_a_new_job_object_under_an_old_id_gets_a_fresh_duplicate_set() -> None:
    book = JobBook()
    first = make_job("j1", target=2**200)
    book.add(first)
    core = core_for(book, 1e-7)
    sub = found(first, 1e-7)
    assert judge(core, sub).accepted
    seen = book.seen("j1")
    book.add(make_job("j1", target=2**200))
    assert book.seen("j1") is not seen and len(book.seen("j1") or ()) == 0
    assert judge(core, sub).accepted


def test_ntime_bounds_use_mintime_or_curtime_slack() -> None:
    for job, oldest in ((make_job("a", curtime=10_000), 9_400), (make_job("b", curtime=10_000, mintime=9_900), 9_900)):
        book = JobBook()
        book.add(job)
        core = core_for(book, 1e-12)
        too_old = judge(core, Submission(job.job_id, "00000001", f"{oldest - 1:08x}", "00000000"))
        assert (too_old.reason, too_old.message) == ("bad-ntime", "ntime is older than the job allows")
        assert judge(core, Submission(job.job_id, "00000002", f"{oldest:08x}", "00000000")).accepted


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
    bad = Submission(**{**sub.__dict__, field: value})
    result = check(job, bad, 1e-9)
    assert (result.code, result.reason) == (20, reason)


def test_extranonce2_length_message_names_the_expected_length() -> None:
    job = make_job("j1")
    result = check(job, Submission("j1", "01", "00000000", "00000000"), 1, mask=0)
    assert "8 hex characters (4 bytes)" in result.message and "got 2" in result.message


def test_a_block_below_the_share_difficulty_is_still_accepted_as_a_block() -> None:
    job = make_job("j1", target=REGTEST_TARGET)  # regtest: the network is easier than the share difficulty
    sub = found(job, 1e-8, high=2e-8)
    result = check(job, sub, 1e-6)
    assert result.accepted and result.block
    assert result.difficulty == result.achieved < 1e-6
