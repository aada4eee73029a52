"""The Stratum V2 frame header: round trips and the channel_msg bit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.protocol.v2.frame import (
    CHANNEL_MSG_BIT,
    HEADER_SIZE,
    MAX_PAYLOAD,
    FrameError,
    decode_header,
    encode_frame,
    encode_header,
)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, MAX_PAYLOAD))
def test_a_header_round_trips(extension_type: int, msg_type: int, length: int) -> None:
    raw = encode_header(extension_type, msg_type, length)
    assert len(raw) == HEADER_SIZE
    header = decode_header(raw)
    assert (header.extension_type, header.msg_type, header.length) == (extension_type, msg_type, length)
    assert header.channel_msg == bool(extension_type & CHANNEL_MSG_BIT)
    assert header.extension == extension_type & 0x7FFF


def test_the_header_is_little_endian_with_a_u24_length() -> None:
    assert encode_frame(0x8000, 0x1B, b"\x01\x02") == bytes.fromhex("00801b020000") + b"\x01\x02"


@pytest.mark.parametrize("args", [(-1, 0, 0), (0x10000, 0, 0), (0, 256, 0), (0, 0, MAX_PAYLOAD + 1)])
def test_out_of_range_headers_are_refused(args: tuple[int, int, int]) -> None:
    with pytest.raises(FrameError):
        encode_header(*args)


def test_a_short_header_is_refused() -> None:
    with pytest.raises(FrameError):
        decode_header(b"\x00" * 5)
