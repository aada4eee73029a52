"""The share path's parser and answer encoder agree with the general ones on every input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.protocol import messages as msg

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
submit_like = st.fixed_dictionaries(
    {"method": st.sampled_from(["mining.submit", "mining.subscribe", "", 5])},
    optional={"id": json_values, "params": json_values, "result": json_values},
)


def _general(line: bytes) -> tuple[object, tuple[object, ...]] | str:
    try:
        parsed = msg.parse_line(line)
    except msg.ProtocolError as exc:
        return f"error: {exc}"
    if isinstance(parsed, msg.Response) or parsed.method != "mining.submit":
        return "other"
    return parsed.id, parsed.params


@given(submit_like)
def test_parse_submit_gives_what_parse_line_gives_or_leaves_the_line_to_it(obj: dict[str, object]) -> None:
    line = orjson.dumps(obj)
    fast = msg.parse_submit(line)
    if fast is not None:
        assert _general(line) == fast


@given(st.binary(max_size=64))
def test_parse_submit_never_takes_what_is_not_a_submit(line: bytes) -> None:
    fast = msg.parse_submit(line)
    if fast is not None:
        assert _general(line) == fast


def test_parse_submit_takes_a_miners_submit() -> None:
    line = b'{"id":7,"method":"mining.submit","params":["a.b","1f","00000001","5f5e1000","deadbeef"]}\n'
    assert msg.parse_submit(line) == (7, ("a.b", "1f", "00000001", "5f5e1000", "deadbeef"))
    assert msg.parse_submit(b'{"id":true,"method":"mining.submit","params":[]}') is None  # parse_line refuses it
    assert msg.parse_submit(b'{"id":1,"method":"mining.submit"}') is None  # no params: parse_line's default


@pytest.mark.parametrize("rid", [0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, "abc", None, 'q"uote'])
def test_encode_true_is_encode_result_true(rid: msg.RequestId) -> None:
    assert msg.encode_true(rid) == msg.encode_result(rid, True)


@given(st.integers(-(2**63), 2**64 - 1))
def test_encode_true_for_every_integer_id(rid: int) -> None:
    assert msg.encode_true(rid) == msg.encode_result(rid, True)
