"""The share path's native fast lane (native/fastsubmit.pxi) against the Python session it shortcuts.

Twin sessions, one whose validator lets the fast lane judge common shares and one that judges every line
in Python (the reference), are fed the same lines under the same clock: every answer, every event and every
piece of state they keep must be equal after every line. Separately, the lane's contract: the actions of an
accepted share that is not a block, else None with nothing changed but the validator's caches.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from miner import REGTEST_TARGET, FakeWork, FoundShare, NotifiedJob, find_share, make_job

from stratum_pool.chain import pow as pow_mod
from stratum_pool.coins import get_coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol import session as session_mod
from stratum_pool.protocol.actions import Action, BlockCandidate, Send, ShareAccepted, ShareRejected
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.shares.validate import ShareValidator
from stratum_pool.shares.vardiff import VardiffConfig

pytestmark = pytest.mark.skipif(not pow_mod.NATIVE, reason="the fast lane is part of the native extension")

COIN = get_coin("bitcoin", "regtest")
EN1 = bytes.fromhex("0000002a")
USER = "bcrt1qminer.w1"
EASY = 2e-7  # about 860 hashes per share
NO_BLOCK = 2**200
MASK = 0x1FFFE000
NOW = 1_700_000_100.0


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q"):
        return b"\x00\x14" + bytes(20)
    raise ValueError("not a regtest address")


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def notified(job: Job) -> NotifiedJob:
    t = job.template
    return NotifiedJob(job.job_id, t.prevhash, job.coinb1, job.coinb2, job.branch, t.version, t.nbits, t.curtime,
                       True, EASY)  # fmt: skip


def jobs() -> dict[str, Job]:
    return {
        "j1": make_job("j1", target=NO_BLOCK),
        "old": make_job("old", target=NO_BLOCK, prevhash=bytes(32)),  # stale: not the tip's prevhash
        "blk": make_job("blk", target=REGTEST_TARGET),  # every share of it is a block
    }


@functools.cache
def shares() -> dict[str, list[FoundShare]]:
    """Shares of each job at EASY or better; j1 also with rolled version bits."""
    found: dict[str, list[FoundShare]] = {}
    for job_id, job in jobs().items():
        nj = notified(job)
        count = 24 if job_id == "j1" else 3
        found[job_id] = [find_share(COIN, nj, EN1, i.to_bytes(4, "big"), min_difficulty=EASY) for i in range(count)]
    nj = notified(jobs()["j1"])
    found["j1v"] = [find_share(COIN, nj, EN1, (100 + i).to_bytes(4, "big"), min_difficulty=EASY,
                               version_bits=0x00FFE000 + (i << 13), version_mask=MASK, send_version=True)
                    for i in range(6)]  # fmt: skip
    return found


def make_pair(config: SessionConfig) -> tuple[Session, Session, Clock, FakeWork]:
    work = FakeWork()
    built = jobs()
    work.add(built["old"])
    work.add(built["blk"], make_current=False)
    work.add(built["j1"])
    clock = Clock()
    fast = Session(config, work, check_address, "s1", EN1, clock, ShareValidator(COIN, fast=True))
    slow = Session(config, work, check_address, "s1", EN1, clock, ShareValidator(COIN, fast=False))
    assert fast.validator.fast and not slow.validator.fast
    return fast, slow, clock, work


def state(session: Session, caches: bool = True) -> Any:
    """What a session keeps; ``caches=False`` leaves out what the validator computes once per job or per
    difficulty (a context with no share yet, a share target), which either path fills at the same point."""
    v = session.vardiff
    contexts = {jid: (ctx.min_ntime, ctx.target, frozenset(ctx.seen))
                for jid, ctx in session.validator._contexts.items() if caches or ctx.seen}  # fmt: skip
    targets = dict(session.validator._targets) if caches else {}
    return (session.malformed, session._tokens, session._tokens_at, v.difficulty, v._count, v._last_retarget,
            v.floor, v.enabled, session.best_difficulty, dict(session.best_by_worker), dict(session._job_difficulty),
            session.sent_difficulty, contexts, targets)  # fmt: skip


def submit_line(rid: object, params: list[object], layout: int = 0) -> bytes:
    """A submit line; json (not orjson) writes it, so ids beyond 64 bits can be sent too."""
    if layout == 1:  # cgminer's order
        return json.dumps({"params": params, "id": rid, "method": "mining.submit"}).encode()
    if layout == 2:  # Python's json module's own spacing, non-ASCII escaped
        return json.dumps({"id": rid, "method": "mining.submit", "params": params}).encode()
    message = {"id": rid, "method": "mining.submit", "params": params}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def share_params(share: FoundShare, worker: str = USER) -> list[object]:
    params: list[object] = [worker, share.job_id, share.extranonce2, share.ntime, share.nonce]
    if share.version_bits is not None:
        params.append(share.version_bits)
    return params


IDS = [7, 0, -3, 2**40, 2**63 - 1, 2**63 + 5, 2**64 - 1, 2**64, "abc", "é", None, 1.5, True]
MUTATIONS = ["none", "en2-short", "en2-hex", "ntime-hex", "ntime-future", "ntime-past", "nonce-hex", "version-hex",
             "version-outside", "unknown-job", "worker", "four", "seven", "not-str", "long-job", "upper-hex"]


def mutate(params: list[object], how: str) -> list[object]:
    p = list(params)
    if how == "en2-short":
        p[2] = str(p[2])[:6]
    elif how == "en2-hex":
        p[2] = "zz" + str(p[2])[2:]
    elif how == "ntime-hex":
        p[3] = "0x" + str(p[3])[2:]
    elif how == "ntime-future":
        p[3] = f"{int(NOW) + 7300:08x}"
    elif how == "ntime-past":
        p[3] = f"{1_700_000_000 - 700:08x}"
    elif how == "nonce-hex":
        p[4] = " " + str(p[4])[1:]
    elif how == "version-hex":
        p = [*p[:5], "1fffe00g"]
    elif how == "version-outside":
        p = [*p[:5], "e0000000"]
    elif how == "unknown-job":
        p[1] = "nope"
    elif how == "worker":
        p[0] = "bcrt1qother.w9"
    elif how == "four":
        p = p[:4]
    elif how == "seven":
        p = [*p[:5], "00000000", "extra"]
    elif how == "not-str":
        p[4] = 12345
    elif how == "long-job":
        p[1] = "j" * 65
    elif how == "upper-hex":
        p[4] = str(p[4]).upper()
    return p


# How a submit line may be written besides the compact form: the lane reads the plain ones and leaves the
# others to the Python path; either way both sessions must answer alike.
FORMATS = [
    lambda t: t.replace(":", ": ").replace(",", ", "),
    lambda t: t.replace("{", "{ \t").replace("}", "\r\n }").replace("[", "[\n").replace("]", " ]"),
    lambda t: '{"jsonrpc":"2.0",' + t[1:],
    lambda t: t.replace('{"id":', '{"id":5,"id":'),
    lambda t: t.replace("bcrt1q", "bcrt\\u0031q", 1),
    lambda t: t.replace('"id":7', '"id":7.0'),
    lambda t: t.replace('"id":7', '"id":7e0'),
    lambda t: t.replace('"id":7', '"id":-0'),
    lambda t: t.replace('"id":7', '"id":007'),
    lambda t: t.replace('"id":7', '"id":true'),
    lambda t: t.replace('"id":7', '"id":null'),
    lambda t: t.replace('"id":7', '"id":"s\\"q"'),
    lambda t: t.replace('"id":7', '"id":123456789012345678'),
    lambda t: t.replace('"id":7', '"id":1234567890123456789'),
    lambda t: t.replace('"id":7', '"id":-42'),
    lambda t: t + " x",
    lambda t: t + " \t",
    lambda t: t.replace('"mining.submit"', '"mining.submit "'),
    lambda t: t.replace('"params":[', '"params":[[],'),
    lambda t: t.replace(',"params"', ',"params":[],"params"'),
    lambda t: t.replace('"mining.submit"', '"mining.\\u0073ubmit"'),
]


def formatted(index: int, how: int) -> bytes:
    share = shares()["j1"][index % len(shares()["j1"])]
    text = json.dumps({"id": 7, "method": "mining.submit", "params": share_params(share)}, separators=(",", ":"))
    return FORMATS[how](text).encode()


ops = st.one_of(
    st.tuples(st.just("format"), st.integers(0, 23), st.integers(0, len(FORMATS) - 1)),
    st.tuples(st.just("share"), st.sampled_from(["j1", "j1v", "old", "blk"]), st.integers(0, 23),
              st.sampled_from(IDS), st.sampled_from(MUTATIONS), st.integers(0, 2)),
    st.tuples(st.just("nonce"), st.integers(0, 2**32 - 1), st.sampled_from(IDS)),
    st.tuples(st.just("clock"), st.sampled_from([0.0, 0.05, 0.3, 1.0, 20.0, 100.0])),
    st.tuples(st.just("tick")),
    st.tuples(st.just("suggest"), st.sampled_from([EASY, 1e-7, 4e-7, 1e-6, 1e-9])),
    st.tuples(st.just("new-block")),
    st.tuples(st.just("renotify")),
)


def line_for(op: tuple[Any, ...]) -> bytes | None:
    found = shares()
    if op[0] == "share":
        _, job_id, index, rid, how, layout = op
        pool = found[job_id]
        params = mutate(share_params(pool[index % len(pool)]), how)
        return submit_line(rid, params, layout)
    if op[0] == "format":
        return formatted(op[1], op[2])
    if op[0] == "nonce":
        base = found["j1"][0]
        return submit_line(op[2], [USER, "j1", base.extranonce2, base.ntime, f"{op[1]:08x}"])
    return None


def drive(session: Session, op: tuple[Any, ...], clock: Clock, work: FakeWork) -> list[Action]:
    kind = op[0]
    line = line_for(op)
    if line is not None:
        return session.feed_line(line)
    if kind == "tick":
        return session.tick()
    if kind == "suggest":
        return session.feed_line(orjson.dumps({"id": 3, "method": "mining.suggest_difficulty", "params": [op[1]]}))
    if kind == "new-block":
        job = work.jobs["j1"]
        return session.push_job(job, True)  # j1 again: its sent difficulty is renewed
    if kind == "renotify":
        return session.push_job(work.jobs["blk"], False)
    raise AssertionError(kind)


def start(session: Session) -> None:
    session.feed_line(b'{"id":1,"method":"mining.subscribe","params":["bitaxe/2.4"]}')
    session.feed_line(b'{"id":2,"method":"mining.configure","params":[["version-rolling"],'
                      b'{"version-rolling.mask":"1fffe000"}]}')
    session.feed_line(b'{"id":3,"method":"mining.authorize","params":["' + USER.encode() + b'","x"]}')


configs = st.builds(
    lambda rate, window, interval, vardiff: SessionConfig(
        COIN, initial_difficulty=EASY, submits_per_second=rate, submit_burst=3, vardiff_enabled=vardiff,
        vardiff=VardiffConfig(target_interval=0.5, retarget_interval=interval, window=window)),
    st.sampled_from([0.0, 4.0]), st.sampled_from([3, 20]), st.sampled_from([2.0, 90.0]), st.booleans(),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, sequence=st.lists(ops, min_size=1, max_size=40))
def test_fast_lane_agrees_with_the_python_session_line_for_line(
    config: SessionConfig, sequence: list[tuple[Any, ...]]
) -> None:
    fast, slow, clock, work = make_pair(config)
    start(fast)
    start(slow)
    assert state(fast) == state(slow)
    for op in sequence:
        if op[0] == "clock":
            clock.t += op[1]
            continue
        got, expected = drive(fast, op, clock, work), drive(slow, op, clock, work)
        assert got == expected, op
        assert state(fast) == state(slow), op


def lane() -> Callable[[Session, bytes, float], list[Action] | None]:
    assert session_mod._FAST is not None
    return session_mod._FAST


@contextlib.contextmanager
def lane_counted() -> Iterator[list[int]]:
    """The lane, wrapped to count the lines it takes (``taken[0]``) while the block runs."""
    original = lane()
    taken = [0]

    def counting(session: Session, line: bytes, now: float) -> list[Action] | None:
        actions = original(session, line, now)
        taken[0] += actions is not None
        return actions

    session_mod._FAST = counting
    try:
        yield taken
    finally:
        session_mod._FAST = original


def ready_session(**config: Any) -> Session:
    config.setdefault("initial_difficulty", EASY)
    session = make_pair(SessionConfig(COIN, **config))[0]
    start(session)
    return session


def test_an_accepted_share_takes_the_lane_and_is_recorded_as_the_python_path_would() -> None:
    session = ready_session()
    share = shares()["j1"][0]
    actions = lane()(session, submit_line(41, share_params(share)), NOW)
    assert actions is not None
    send, accepted = actions
    assert send == Send(b'{"id":41,"result":true,"error":null}\n')
    assert isinstance(accepted, ShareAccepted)
    assert (accepted.worker, accepted.address, accepted.job_id, accepted.height) == (USER, "bcrt1qminer", "j1", 101)
    assert accepted.difficulty == EASY and accepted.achieved == pytest.approx(share.achieved)
    assert accepted.block is False and accepted.time == NOW
    assert session.vardiff._count == 1 and session.best_by_worker[USER] == accepted.achieved
    assert len(session.validator._contexts["j1"].seen) == 1


def test_rolled_version_shares_take_the_lane() -> None:
    session = ready_session()
    for share in shares()["j1v"]:
        assert lane()(session, submit_line(5, share_params(share)), NOW) is not None


def situation(kind: str) -> tuple[Session, bytes]:
    """A ready session and the line that makes ``kind`` happen next."""
    config: dict[str, Any] = {}
    if kind == "rate":
        config = {"submits_per_second": 1.0, "submit_burst": 1}
    if kind == "retarget":
        config = {"vardiff": VardiffConfig(window=1)}
    session = ready_session(**config)
    share = shares()["j1"][1]
    line = submit_line(9, share_params(share))
    if kind in ("duplicate", "rate"):
        assert lane()(session, line, NOW) is not None  # the first is accepted by the lane
        line = line if kind == "duplicate" else submit_line(9, share_params(shares()["j1"][2]))
    elif kind == "stale":
        line = submit_line(9, share_params(shares()["old"][0]))
    elif kind == "block":
        line = submit_line(9, share_params(shares()["blk"][0]))
    elif kind == "low":
        session.vardiff.restart(1e6, NOW)  # nothing found at EASY reaches this
        job = session.work.get_job("j1")
        assert job is not None
        session.push_job(job, True)  # sent again at 1e6: shares of it are judged by 1e6
    elif kind == "unknown-job":
        line = submit_line(9, mutate(share_params(share), "unknown-job"))
    elif kind == "worker":
        line = submit_line(9, mutate(share_params(share), "worker"))
    elif kind == "not-a-submit":
        line = b'{"id":9,"method":"mining.submitx","params":[]}'
    elif kind == "bad-json":
        line = b'{"id":9,"method":"mining.submit","params":['
    return session, line


@pytest.mark.parametrize(("kind", "code", "text"), [
    ("duplicate", 22, "Duplicate share"), ("stale", 21, "Stale share: job is from a previous block"),
    ("low", 23, "Low difficulty share: "),
])  # fmt: skip
def test_the_lane_answers_stale_duplicate_and_low_difficulty_shares_as_python_does(
    kind: str, code: int, text: str
) -> None:
    session, line = situation(kind)
    twin, _ = situation(kind)
    twin.validator.fast = False  # the twin answers in Python
    got = lane()(session, line, NOW)
    assert got is not None
    assert got == twin.feed_line(line, NOW)
    assert state(session) == state(twin)
    assert isinstance(got[1], ShareRejected) and got[1].code == code
    answer = orjson.loads(got[0].data)  # type: ignore[attr-defined]
    assert answer["id"] == 9 and answer["error"][0] == code and answer["error"][1].startswith(text)


@pytest.mark.parametrize("kind", ["block", "unknown-job", "worker", "rate", "retarget", "not-a-submit", "bad-json"])
def test_the_lane_declines_everything_else_and_changes_nothing(kind: str) -> None:
    session, line = situation(kind)
    before = copy.deepcopy(state(session, caches=False))
    assert lane()(session, line, NOW) is None
    assert state(session, caches=False) == before
    actions = session.feed_line(line)  # the Python path judges it
    if kind == "block":
        assert any(isinstance(a, BlockCandidate) for a in actions)
    elif kind == "retarget":
        assert any(isinstance(a, ShareAccepted) for a in actions)
    elif kind not in ("not-a-submit", "bad-json"):
        assert not any(isinstance(a, ShareAccepted) for a in actions)


def test_a_pure_python_check_share_never_uses_the_lane() -> None:
    validator = ShareValidator(COIN, check_share=pow_mod.check_share_py)
    assert not validator.fast


def test_twin_sessions_over_a_miners_session_agree_and_the_lane_takes_the_common_shares() -> None:
    """A fixed run (the property test's ops, in an order a miner produces them): equal throughout, and the
    lane really judged the accepted shares (the property test alone could pass with a lane that declines all)."""
    config = SessionConfig(COIN, initial_difficulty=EASY, vardiff=VardiffConfig(target_interval=0.5, window=8))
    fast, slow, clock, work = make_pair(config)
    start(fast)
    start(slow)
    sequence: list[tuple[Any, ...]] = []
    for i in range(24):
        sequence.append(("share", "j1", i, i + 10, "none", i % 3))
        if i % 4 == 0:
            sequence.append(("share", "j1", i, i + 100, "none", 0))  # a duplicate
        if i % 5 == 0:
            sequence.append(("share", "j1v", i % 6, str(i), "none", 0))
        if i % 7 == 0:
            sequence += [("share", "old", 0, 5, "none", 0), ("share", "blk", i % 3, 6, "none", 0),
                         ("share", "j1", i, 7, MUTATIONS[i % len(MUTATIONS)], 0), ("tick",)]
    with lane_counted() as taken:
        for op in sequence:
            clock.t += 0.25
            got, expected = drive(fast, op, clock, work), drive(slow, op, clock, work)
            assert got == expected, op
            assert state(fast) == state(slow), op
    assert sum(len(ctx.seen) for ctx in fast.validator._contexts.values()) >= 30
    assert taken[0] >= 24  # the j1 shares (a few retargets go to Python) and the rolled-version ones


def test_twin_sessions_on_a_job_manager_agree_and_the_lane_reads_its_jobs_directly() -> None:
    """The lane looks a JobManager's jobs and chain tip up itself (not through get_job/is_stale): twin
    sessions on one real manager (solo mode, mainnet block 277647's template) agree through shares of the
    miner's job, another address's job, a duplicate, and a new block that makes the old job stale."""
    from mainnet import gbt_from_block, read_block

    from stratum_pool.chain.address import address_to_script
    from stratum_pool.chain.block import parse_block
    from stratum_pool.jobs.manager import JobManager

    btc = get_coin("bitcoin", "mainnet")
    alice, bob = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    gbt = gbt_from_block(parse_block(read_block(277647)), 277647, 2)
    manager = JobManager(btc, extranonce_size=8, pool_tag=b"/t/", address_to_script=lambda a: address_to_script(a, btc),
                         solo=True, clock=lambda: 100.0)  # fmt: skip
    manager.update(gbt)
    clock = Clock()
    clock.t = float(gbt["curtime"])
    config = SessionConfig(btc, initial_difficulty=EASY)

    def session(fast: bool) -> Session:
        s = Session(config, manager, lambda a: address_to_script(a, btc), "s1", EN1, clock,
                    ShareValidator(btc, fast=fast))  # fmt: skip
        s.feed_line(b'{"id":1,"method":"mining.subscribe","params":[]}')
        s.feed_line(b'{"id":2,"method":"mining.authorize","params":["' + alice.encode() + b'.w1","x"]}')
        return s

    pair = (session(True), session(False))
    user = f"{alice}.w1"

    def found(job: Job, i: int) -> list[object]:
        share = find_share(btc, notified(job), EN1, i.to_bytes(4, "big"), min_difficulty=EASY)
        return [user, job.job_id, share.extranonce2, share.ntime, share.nonce]

    alice_job, bob_job = manager.current_job(alice), manager.current_job(bob)
    assert alice_job is not None and bob_job is not None
    lines = [submit_line(10 + i, found(alice_job, i)) for i in range(6)]
    lines.append(lines[0])  # a duplicate
    lines.append(submit_line(30, found(bob_job, 0)))  # another address's coinbase: not this miner's job
    def feed(line: bytes) -> list[Action]:
        got, expected = pair[0].feed_line(line), pair[1].feed_line(line)
        assert got == expected
        assert state(pair[0]) == state(pair[1])
        return got

    with lane_counted() as taken:
        answers = [feed(line) for line in lines]
        assert taken[0] == 7  # the six shares and the duplicate; the other address's job is Python's
        assert all(isinstance(a[1], ShareAccepted) for a in answers[:6])
        assert [orjson.loads(a[0].data)["error"][0] for a in answers[6:]] == [22, 21]
        manager.update(gbt | {"previousblockhash": "00" * 32})  # a new block: alice's job is stale
        stale = feed(submit_line(40, found(alice_job, 7)))
        assert orjson.loads(stale[0].data)["error"][0] == 21
        new_job = manager.current_job(alice)
        assert new_job is not None and new_job is not alice_job
        assert isinstance(feed(submit_line(41, found(new_job, 8)))[1], ShareAccepted)
        assert taken[0] == 9  # and the stale share, and the new job's


def test_a_new_block_drops_the_lanes_cached_job() -> None:
    """The lane's per-session cache holds the job of the last share (and through it the template): a clean
    push_job (a new block) lets it go, so a session that stops submitting keeps no old template alive."""
    session = ready_session()
    assert lane()(session, submit_line(1, share_params(shares()["j1"][3])), NOW) is not None
    assert session._lane.job_id == "j1"
    job = session.work.get_job("j1")
    assert job is not None
    session.push_job(job, False)
    assert session._lane.job_id == "j1"  # the same block: kept
    session.push_job(job, True)
    assert session._lane.job_id is None
    assert lane()(session, submit_line(2, share_params(shares()["j1"][4])), NOW) is not None  # and made again
    assert session._lane.job_id == "j1"
