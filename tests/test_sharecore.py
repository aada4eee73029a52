"""The native share core against the pure-Python reference judge: the same verdicts, records and state.

Hypothesis drives two sessions (sharing one book of jobs, as every session of a pool does) through generated
operations: jobs added, replaced and dropped, new blocks, authorizations, version masks, difficulties sent
with jobs, vardiff restarts, floors and ticks, time moving, and submits, both real shares and shares with
their fields mutated, repeated or sent by workers that never authorized. After every step the two judges
must agree on the record, the block candidate, the retarget and every piece of share state. The V1 line
scanner is checked to reach the same judge: the same submit as a plain line and as parsed params gives the
same record.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miner import REGTEST_TARGET, make_job

from stratum_pool._native import JobBook, ShareCore, V1Submit
from stratum_pool.coins import get_coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol.actions import Send
from stratum_pool.shares.core import Vardiff, make_rules
from stratum_pool.shares.reference import ReferenceBook, ReferenceJudge, ReferenceVardiff
from stratum_pool.shares.vardiff import VardiffConfig

BTC = get_coin("bitcoin", "regtest")
LTC = get_coin("litecoin", "regtest")
START = 1_700_000_000.0
ADDRESS, OTHER = "bcrt1qalice", "bcrt1qbob"
WORKERS = [f"{ADDRESS}.rig1", f"{ADDRESS}.rig2", "x" * 300, "bad name!", ""]
JOB_IDS = ["j1", "j2", "j3", "j4", "ünknown", "j" * 70]
TIPS = [bytes(range(32)), bytes(range(1, 33))]
MASK = 0x1FFFE000
VARDIFF = VardiffConfig(target_interval=2.0, retarget_interval=6.0, window=5, variance=0.3, max_step=4.0,
                        minimum=1e-10, maximum=1e6)
EN1 = [bytes.fromhex("00000001"), bytes.fromhex("00000002")]


class Pair:
    """The core and the reference, fed the same operations."""

    def __init__(self, coin: Any, rate: float, burst: float, en1: list[bytes] = EN1, en2_size: int = 4) -> None:
        self.coin = coin
        self.book, self.ref_book = JobBook(), ReferenceBook()
        rules = make_rules(coin, 7200, 600)
        self.cores = [ShareCore(rules, self.book, f"s{i}", en1[i], en2_size, Vardiff(VARDIFF, 1e-6, START), rate,
                                burst, START) for i in range(2)]
        self.refs = [ReferenceJudge(coin.diff1_target, 7200, 600, self.ref_book, f"s{i}", en1[i], en2_size,
                                    ReferenceVardiff(VARDIFF, 1e-6, START), rate, burst, START) for i in range(2)]
        self.now = START
        self.sent: list[tuple[int, tuple[object, ...]]] = []

    def both(self, i: int) -> tuple[Any, Any]:
        return self.cores[i], self.refs[i]

    def add_job(self, job: Job) -> None:
        self.book.add(job)
        self.ref_book.add(job)

    def check_state(self) -> None:
        assert sorted(self.book) == sorted(self.ref_book.jobs)
        for job_id in self.book:
            assert set(self.book.seen(job_id) or ()) == self.ref_book.seen[job_id]
        for core, ref in zip(self.cores, self.refs, strict=True):
            assert (core.tokens, core.tokens_at, core.malformed) == (ref.tokens, ref.tokens_at, ref.malformed)
            assert (core.best_difficulty, core.best_by_worker) == (ref.best_difficulty, ref.best_by_worker)
            assert core.jobs_tracked == ref.job_difficulty
            cv, rv = core.vardiff, ref.vardiff
            assert (cv.difficulty, cv.floor, cv.enabled) == (rv.difficulty, rv.floor, rv.enabled)
            assert (cv.shares_since_retarget, cv.last_retarget_time) == (rv.count, rv.last_retarget)


def hex8(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def mostly(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """``good`` nine times in ten: most generated shares get as far as the hash."""
    return draw(bad) if draw(st.integers(0, 9)) == 0 else draw(good)


@st.composite
def submit_params(draw: st.DrawFn, pair: Pair) -> tuple[object, ...]:
    """A submit's params: mostly a well-formed share of a known job (any nonce), sometimes not."""
    if pair.sent and draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(pair.sent[-3:]))[1]  # a repeat: a duplicate, or stale by now
    known = sorted(pair.book)
    job_id = mostly(draw, st.sampled_from(known or JOB_IDS), st.sampled_from(JOB_IDS))
    job = pair.book.get(job_id) if job_id in pair.book else None
    curtime = job.template.curtime if job is not None else int(pair.now)
    worker = mostly(draw, st.sampled_from(WORKERS[:2]), st.sampled_from(WORKERS))
    en2 = mostly(draw, st.integers(0, 2**32 - 1).map(hex8),
                 st.sampled_from(["01", "0000000001", "zzzzzzzz", "0000 001", "ABCDEF01"]))
    ntime = mostly(draw, st.integers(curtime - 50, curtime + 600).map(hex8),
                   st.one_of(st.integers(curtime - 700, curtime + 8000).map(hex8),
                             st.sampled_from(["ffffffff", "123", "0x123456", "gggggggg"])))
    nonce = mostly(draw, st.integers(0, 2**32 - 1).map(hex8), st.sampled_from(["0", "-0000001", "zzzzzzzz"]))
    params: list[object] = [worker, job_id, en2, ntime, nonce]
    version = mostly(draw, st.one_of(st.none(), st.integers(0, 2**32 - 1).map(lambda b: hex8(b & MASK))),
                     st.one_of(st.integers(0, 2**32 - 1).map(hex8), st.just("xyz")))
    if version is not None:
        params.append(version)
    shape = draw(st.integers(0, 29))
    if shape == 0:
        params = params[: draw(st.integers(0, 4))]
    elif shape == 1:
        params[draw(st.integers(0, len(params) - 1))] = draw(st.sampled_from([None, 7, 1.5, [], {}]))
    elif shape == 2:
        params += ["extra", "more"]
    return tuple(params)


@st.composite
def step(draw: st.DrawFn, pair: Pair) -> None:
    i = draw(st.integers(0, 1))
    core, ref = pair.both(i)
    kind = draw(st.sampled_from(["submit"] * 10 + ["binary"] * 3 + ["job", "tip", "drop", "auth", "mask", "sent",
                                                                     "vardiff", "time", "time", "tick"]))
    if kind == "submit":
        params = draw(submit_params(pair))
        pair.sent.append((i, params))
        record = core.judge(params, pair.now)
        expected = ref.judge(params, pair.now)
        assert record == expected, (params, record, expected)
        assert core.take_followup() == (ref.candidate, ref.retarget)
    elif kind == "binary":  # a share whose fields came as numbers and bytes (Stratum V2)
        known = sorted(pair.book)
        job_id = mostly(draw, st.sampled_from(known or JOB_IDS), st.sampled_from(JOB_IDS))
        job = pair.book.get(job_id) if job_id in pair.book else None
        curtime = job.template.curtime if job is not None else int(pair.now)
        base = job.template.version if job is not None else 0x20000000
        worker = mostly(draw, st.sampled_from(WORKERS[:2]), st.sampled_from(WORKERS))
        en2 = mostly(draw, st.binary(min_size=4, max_size=4), st.binary(max_size=8))
        ntime = mostly(draw, st.integers(curtime - 50, curtime + 600), st.integers(0, 2**32 - 1))
        nonce = draw(st.integers(0, 2**32 - 1))
        version = mostly(draw, st.integers(0, 2**32 - 1).map(lambda b: (base & ~MASK) | (b & MASK)),
                         st.integers(0, 2**32 - 1))
        fields = (worker, job_id, en2, ntime, nonce, version)
        record = core.judge_binary(*fields, pair.now)
        expected = ref.judge_binary(*fields, pair.now)
        assert record == expected, (fields, record, expected)
        assert core.take_followup() == (ref.candidate, ref.retarget)
    elif kind == "job":
        job_id = draw(st.sampled_from(JOB_IDS[:4]))
        target = draw(st.sampled_from([REGTEST_TARGET, 2**200, 2**255]))
        payout = draw(st.sampled_from(["", ADDRESS, OTHER]))
        job = make_job(job_id, coin=pair.coin, prevhash=draw(st.sampled_from(TIPS)), target=target,
                       payout_key=payout, curtime=int(pair.now) - draw(st.integers(0, 900)),
                       mintime=draw(st.sampled_from([0, int(pair.now) - 100])),
                       branch=draw(st.sampled_from([b"", bytes(32), bytes(range(64))])))
        pair.add_job(job)
    elif kind == "tip":
        tip = draw(st.sampled_from([*TIPS, None]))
        pair.book.tip = pair.ref_book.tip = tip
    elif kind == "drop":
        job_id = draw(st.sampled_from(JOB_IDS[:4]))
        pair.book.discard(job_id)
        pair.ref_book.discard(job_id)
    elif kind == "auth":
        core.subscribed = ref.subscribed = True
        worker = draw(st.sampled_from(WORKERS[:2]))
        core.authorize(worker, ADDRESS)
        ref.authorize(worker, ADDRESS)
    elif kind == "mask":
        core.version_mask = ref.version_mask = draw(st.sampled_from([0, MASK, 0xFFFFFFFF]))
    elif kind == "sent":
        job_id = draw(st.sampled_from(JOB_IDS[:4]))
        difficulty = draw(st.sampled_from([1e-9, 1e-7, 1e-6, 1e-3, 2.0]))
        core.job_sent(job_id, difficulty)
        ref.job_sent(job_id, difficulty)
    elif kind == "vardiff":
        what = draw(st.sampled_from(["restart", "floor", "toggle"]))
        value = draw(st.sampled_from([1e-12, 1e-9, 1e-7, 1e-6, 1e-3, 1e9, math.inf, -1.0]))
        if what == "restart":
            core.vardiff.restart(value, pair.now)
            ref.vardiff.restart(value, pair.now)
        elif what == "floor":
            core.vardiff.set_floor(value)
            ref.vardiff.set_floor(value)
        else:
            core.vardiff.enabled = ref.vardiff.enabled = not ref.vardiff.enabled
    elif kind == "time":
        pair.now += draw(st.sampled_from([0.0, 0.05, 0.5, 3.0, 10.0, 100.0]))
    else:
        assert core.vardiff.tick(pair.now) == ref.vardiff.tick(pair.now)
    pair.check_state()


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from([BTC, LTC]), st.sampled_from([(0.0, 0.0), (2.0, 3.0), (50.0, 200.0)]))
def test_the_core_judges_as_the_reference_does(data: st.DataObject, coin: Any, limits: tuple[float, float]) -> None:
    pair = Pair(coin, *limits)
    for i, job_id in enumerate(JOB_IDS[:3]):  # a session at work: jobs on the tip, workers authorized
        pair.add_job(make_job(job_id, coin=coin, prevhash=TIPS[i // 2], target=[REGTEST_TARGET, 2**200][i % 2],
                              curtime=int(START) - 60))
    pair.book.tip = pair.ref_book.tip = TIPS[0]
    for core, ref in zip(pair.cores, pair.refs, strict=True):
        core.subscribed = ref.subscribed = data.draw(st.integers(0, 9)) > 0
        core.authorize(WORKERS[0], ADDRESS)
        ref.authorize(WORKERS[0], ADDRESS)
    for _ in range(data.draw(st.integers(20, 60))):
        data.draw(step(pair))


def _line(rid: object, params: tuple[object, ...]) -> bytes:
    return orjson.dumps({"id": rid, "method": "mining.submit", "params": list(params)}) + b"\n"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_plain_submit_line_reaches_the_same_judge_as_parsed_params(data: st.DataObject) -> None:
    """The V1 scanner only decodes: the line's record equals the record of its params handed to judge()."""
    scan = V1Submit(Send)
    pair = Pair(BTC, 0.0, 0.0)
    twin = Pair(BTC, 0.0, 0.0)
    for p in (pair, twin):
        for i, job_id in enumerate(JOB_IDS[:3]):
            p.add_job(make_job(job_id, prevhash=TIPS[i % 2], curtime=int(START) - 60))
        p.book.tip = TIPS[0]
        for core in p.cores:
            core.subscribed = True
            core.authorize(WORKERS[0], ADDRESS)
            core.version_mask = MASK
    for n in range(data.draw(st.integers(5, 30))):
        params = data.draw(submit_params(pair))
        if not all(isinstance(p, str) and p.isascii() and p.isprintable() and '"' not in p and "\\" not in p
                   for p in params) or not 5 <= len(params) <= 6:
            continue  # not the plain form: the scanner leaves it to the general parser
        rid = data.draw(st.one_of(st.integers(-(10**17), 10**17), st.text("abc123", max_size=8), st.none()))
        actions = scan(pair.cores[0], _line(rid, params), START + n)
        assert actions is not None
        send, record = actions
        expected = twin.cores[0].judge(params, START + n)
        assert record == expected
        assert pair.cores[0].take_followup() == twin.cores[0].take_followup()
        answer = orjson.loads(send.data)
        assert answer["id"] == rid
        if type(record).__name__ == "ShareAccepted":
            assert send.data == orjson.dumps({"id": rid, "result": True, "error": None}) + b"\n"
        else:
            assert send.data == orjson.dumps({"id": rid, "result": None,
                                              "error": [record.code, record.message, None]}) + b"\n"


def test_a_share_record_is_the_same_object_kind_whatever_the_route() -> None:
    """A rejected share's record carries the miner's text and, for low difficulty, what the hash reached."""
    pair = Pair(BTC, 0.0, 0.0)
    pair.add_job(make_job("j1", target=2**200, curtime=int(START) - 60))
    core = pair.cores[0]
    core.subscribed = True
    core.authorize(WORKERS[0], ADDRESS)
    core.vardiff.restart(1e6, START)
    record = core.judge((WORKERS[0], "j1", "00000000", hex8(int(START)), "00000000"), START)
    assert record.reason == "low-difficulty" and 0 < record.achieved < 1e6
    assert record.message.startswith("Low difficulty share: ") and record.message.endswith("< 1e+06")
    assert replace(record, message="") != record


@pytest.mark.parametrize(("en1_size", "en2_size"), [(4, 12), (8, 8), (4, 13), (16, 16)])
def test_duplicates_whatever_the_extranonce_sizes(en1_size: int, en2_size: int) -> None:
    """The duplicate set keeps extranonces of up to 16 bytes together in its table and longer ones beside it:
    either way a share sent twice is a duplicate the second time, for the core as for the reference."""
    pair = Pair(BTC, 0.0, 0.0, [bytes([1]) * en1_size, bytes([2]) * en1_size], en2_size)
    job = make_job("j1", coin=BTC, prevhash=TIPS[0], target=REGTEST_TARGET, curtime=int(START) - 60)
    pair.add_job(job)
    pair.book.tip = pair.ref_book.tip = TIPS[0]
    for core, ref in zip(pair.cores, pair.refs, strict=True):
        core.subscribed = ref.subscribed = True
        core.authorize(WORKERS[0], ADDRESS)
        ref.authorize(WORKERS[0], ADDRESS)
    reasons = []
    for i, nonce in ((0, 7), (0, 7), (1, 7), (0, 8), (1, 7)):
        core, ref = pair.both(i)
        fields = (WORKERS[0], "j1", bytes(range(en2_size)), job.template.curtime, nonce, job.template.version)
        record = core.judge_binary(*fields, pair.now)
        assert record == ref.judge_binary(*fields, pair.now)
        reasons.append(getattr(record, "reason", "accepted"))
        pair.check_state()
    # the same share again is a duplicate; the other session's (another extranonce1) is not
    assert [r == "duplicate" for r in reasons] == [False, True, False, False, True], reasons
    assert len(set(pair.book.seen("j1") or ())) == 3
