"""Property tests of Session.feed_line with structured-but-wrong messages (test_session_fuzz.py covers
arbitrary values): no exception escapes, every request with a usable id gets exactly one answer, or the
session answers and closes (then nothing more is fed). Rate limit, worker cap and strict hex are on.

An atheris harness of the same property is ``tests/fuzz_session_atheris.py`` (not collected); the last
test runs it briefly when atheris is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miner import FakeWork, make_job

from stratum_pool.coins import get_coin
from stratum_pool.protocol.actions import Close, Send, ShareRejected
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.server.limits import WorkerRegistry

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qfuzz"
HEX = "0123456789abcdefABCDEF"

hexish = st.one_of(
    st.text(HEX, min_size=0, max_size=20),  # right characters, any length
    st.text(HEX, min_size=8, max_size=8),
    st.sampled_from(["0x123456", "+1234567", "1_234567", " 1234567", "1234567 ", "12345678\n",
                     "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
                     "ffffffff", "00000000", "zzzzzzzz", "", "-0000001", "0X000000"]),
    st.text(max_size=12),
)
wrong_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.lists(st.none()),
                          st.dictionaries(st.text(max_size=3), st.none(), max_size=2))
field = hexish | wrong_scalars
workers = st.one_of(st.just(f"{ADDRESS}.w1"), st.just(f"{ADDRESS}.w2"), st.just(ADDRESS),
                    st.text(max_size=80).map(lambda t: f"{ADDRESS}.{t}"), st.text(max_size=20), wrong_scalars)
job_ids = st.one_of(st.just("j1"), st.just("j0"), st.text(max_size=80), wrong_scalars)
submit_params = st.tuples(workers, job_ids, field, field, field).flatmap(
    lambda base: st.lists(field, max_size=2).map(lambda extra: [*base, *extra]))
ids = st.one_of(st.integers(0, 2**31), st.text(max_size=8), st.none(), st.floats(), st.booleans(), st.lists(st.none()))
messages = st.one_of(
    st.fixed_dictionaries({"id": ids, "method": st.just("mining.submit"), "params": submit_params}),
    st.fixed_dictionaries({"id": ids, "method": st.just("mining.authorize"),
                           "params": st.lists(workers | field, max_size=3)}),
    st.fixed_dictionaries({"id": ids, "method": st.sampled_from(["mining.suggest_target", "mining.suggest_difficulty"]),
                           "params": st.lists(field, max_size=2)}),
    st.fixed_dictionaries({"id": ids, "method": st.just("mining.configure"),
                           "params": st.tuples(st.lists(st.sampled_from(
                               ["version-rolling", "minimum-difficulty", "subscribe-extranonce", "x"]) | field,
                               max_size=4), st.dictionaries(st.sampled_from(
                               ["version-rolling.mask", "minimum-difficulty.value", "x"]), field, max_size=3)
                               | field).map(list)}),
    st.fixed_dictionaries({"id": ids, "method": st.sampled_from(["mining.subscribe", "mining.ping", "mining.nope", ""])
                           | wrong_scalars, "params": st.lists(field, max_size=3) | field}),
)


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q") and address.isalnum():
        return bytes(22)
    raise ValueError("not a regtest address")


def new_session(registry: WorkerRegistry | None = None) -> Session:
    work = FakeWork()
    work.add(make_job("j1"))
    config = SessionConfig(COIN, initial_difficulty=1e-6, submits_per_second=2.0, submit_burst=5)
    times = iter(range(10**9))
    return Session(config, work, check_address, "s1", bytes(4), lambda: 1_700_000_000.0 + next(times) * 0.1,
                   admit=(registry or WorkerRegistry(1)).admit)


def answers(actions: list[Any], rid: object) -> int:
    count = 0
    for action in actions:
        if isinstance(action, Send):
            assert action.data.endswith(b"\n")
            for line in action.data.splitlines():
                message = orjson.loads(line)
                if message.get("method") is None and message["id"] == rid and type(message["id"]) is type(rid):
                    count += 1
    return count


def usable_id(rid: object) -> bool:
    return rid is None or (isinstance(rid, int | str) and not isinstance(rid, bool))


SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def feed_and_check(session: Session, line: bytes, rid: object) -> bool:
    """Feed one line; False once the session closed."""
    actions = session.feed_line(line)
    closed = any(isinstance(a, Close) for a in actions)
    for action in actions:
        if isinstance(action, ShareRejected):  # never an unsafe name towards logs, metrics, SQL
            assert action.worker in session.workers or set(action.worker) <= SAFE, action.worker
            assert set(action.job_id) <= SAFE and len(action.job_id) <= 64
    if usable_id(rid) and rid is not None:
        assert answers(actions, rid) == 1, (line, actions)
    elif not closed and rid is not None:
        pytest.fail(f"unusable id {rid!r} answered without closing: {actions}")
    return not closed


@settings(max_examples=400, deadline=None)
@given(st.lists(messages, min_size=1, max_size=15))
def test_structured_but_wrong_messages(batch: list[dict[str, Any]]) -> None:
    session = new_session()
    prelude = [{"id": 1, "method": "mining.subscribe", "params": []},
               {"id": 2, "method": "mining.authorize", "params": [f"{ADDRESS}.w1", "x"]}]
    for message in prelude + batch:
        line = orjson.dumps(message)
        if not feed_and_check(session, line, orjson.loads(line)["id"]):  # inf and nan go out as null
            break
    assert set(session.workers) <= {f"{ADDRESS}.w1", ADDRESS} | set(session.workers)
    for user in session.workers:  # every authorized worker name passed the rule
        worker = user.partition(".")[2]
        assert len(worker) <= 64 and set(worker) <= SAFE


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_mutated_lines(batch: list[dict[str, Any]], data: st.DataObject) -> None:
    """Valid-looking lines with bytes cut, flipped or inserted."""
    session = new_session()
    for message in batch:
        line = bytearray(orjson.dumps(message))
        for _ in range(data.draw(st.integers(0, 3))):
            pos = data.draw(st.integers(0, len(line)))
            op = data.draw(st.sampled_from(["cut", "flip", "insert"]))
            if op == "cut":
                del line[pos:]
            elif op == "flip" and pos < len(line):
                line[pos] ^= data.draw(st.integers(1, 255))
            else:
                line[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        actions = session.feed_line(bytes(line))
        if any(isinstance(a, Close) for a in actions):
            break
        for action in actions:
            if isinstance(action, Send):
                assert action.data.endswith(b"\n")


def test_worker_cap_is_shared_between_sessions() -> None:
    registry = WorkerRegistry(1)
    a, b = new_session(registry), new_session(registry)
    b.session_id = "s2"
    for s in (a, b):
        s.feed_line(b'{"id":1,"method":"mining.subscribe","params":[]}')
    assert answers(a.feed_line(orjson.dumps({"id": 2, "method": "mining.authorize",
                                             "params": [f"{ADDRESS}.w1", "x"]})), 2) == 1
    reply = b.feed_line(orjson.dumps({"id": 2, "method": "mining.authorize", "params": [f"{ADDRESS}.w2", "x"]}))
    assert b"too many workers" in reply[0].data  # type: ignore[union-attr]
    registry.release("s1")
    reply = b.feed_line(orjson.dumps({"id": 3, "method": "mining.authorize", "params": [f"{ADDRESS}.w2", "x"]}))
    assert b'"result":true' in reply[0].data  # type: ignore[union-attr]


HARNESS = Path(__file__).with_name("fuzz_session_atheris.py")


def test_atheris_harness_short_run() -> None:
    pytest.importorskip("atheris")
    result = subprocess.run([sys.executable, str(HARNESS), "-runs=3000", "-max_len=512"], capture_output=True,
                            text=True, timeout=120, cwd=HARNESS.parent,
                            env={**os.environ, "PYTHONPATH": str(HARNESS.parent)})
    assert result.returncode == 0, result.stderr[-3000:]
