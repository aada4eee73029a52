"""Property tests: whatever a peer sends, the session answers each request once and never raises."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from miner import FakeWork, make_job

from stratum_pool.coins import get_coin
from stratum_pool.protocol.actions import Close, Send
from stratum_pool.protocol.session import Session, SessionConfig

COIN = get_coin("bitcoin", "regtest")
METHODS = [
    "mining.subscribe", "mining.authorize", "mining.configure", "mining.suggest_difficulty",
    "mining.suggest_target", "mining.extranonce.subscribe", "mining.submit", "mining.ping",
    "mining.get_transactions", "client.get_version", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["bcrt1qminer.w1", "j1", "00000001", "ffffffff", "d=0.5", "version-rolling", "1fffe000"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=30), inner, max_size=4),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {"method": st.sampled_from(METHODS), "params": st.lists(json_values, max_size=7) | json_values}
)


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q"):
        return bytes(22)
    raise ValueError("not a regtest address")


def new_session() -> Session:
    work = FakeWork()
    work.add(make_job("j1"))
    config = SessionConfig(COIN, initial_difficulty=1e-6)
    return Session(config, work, check_address, "s1", bytes(4), lambda: 1e9)


def answers(actions: list[Any], rid: int) -> int:
    count = 0
    for action in actions:
        if isinstance(action, Send):
            for line in action.data.splitlines():
                message = orjson.loads(line)
                if message.get("method") is None and message["id"] == rid:
                    count += 1
    return count


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, min_size=1, max_size=12))
def test_every_request_with_an_id_gets_exactly_one_answer(batch: list[dict[str, Any]]) -> None:
    session = new_session()
    prelude = [
        {"method": "mining.subscribe", "params": []},
        {"method": "mining.authorize", "params": ["bcrt1qminer.w1", "x"]},
    ]
    for rid, request in enumerate(prelude + batch, start=1):
        actions = session.feed_line(orjson.dumps({"id": rid, **request}))
        assert answers(actions, rid) == 1
        assert not any(isinstance(a, Close) for a in actions)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_raise(lines: list[bytes]) -> None:
    session = new_session()
    for line in lines:
        for action in session.feed_line(line):
            if isinstance(action, Send):
                assert action.data.endswith(b"\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=8))
def test_arbitrary_json_never_raises(values: list[Any]) -> None:
    session = new_session()
    for value in values:
        session.feed_line(orjson.dumps(value))
