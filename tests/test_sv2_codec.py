"""The Stratum V2 data types: round trips of every type, hand-computed layouts, and every malformed form
refused by the one exception type."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.protocol.v2.codec import CodecError, Reader, Writer

# (writer method, reader method, values) for each fixed-size and length-prefixed type
TYPES: dict[str, tuple[Callable[[Writer, Any], Writer], Callable[[Reader], Any], st.SearchStrategy[Any]]] = {
    "U8": (Writer.u8, Reader.u8, st.integers(0, 2**8 - 1)),
    "U16": (Writer.u16, Reader.u16, st.integers(0, 2**16 - 1)),
    "U24": (Writer.u24, Reader.u24, st.integers(0, 2**24 - 1)),
    "U32": (Writer.u32, Reader.u32, st.integers(0, 2**32 - 1)),
    "U64": (Writer.u64, Reader.u64, st.integers(0, 2**64 - 1)),
    "U256": (Writer.u256, Reader.u256, st.integers(0, 2**256 - 1)),
    "F32": (Writer.f32, Reader.f32, st.floats(width=32, allow_nan=False)),
    "BOOL": (Writer.boolean, Reader.boolean, st.booleans()),
    "STR0_255": (Writer.str0_255, Reader.str0_255,
                 st.text(max_size=255).filter(lambda s: len(s.encode()) <= 255)),
    "B0_32": (Writer.b0_32, Reader.b0_32, st.binary(max_size=32)),
    "B0_255": (Writer.b0_255, Reader.b0_255, st.binary(max_size=255)),
    "B0_64K": (Writer.b0_64k, Reader.b0_64k, st.binary(max_size=600)),
}


@st.composite
def fields(draw: st.DrawFn) -> list[tuple[str, Any]]:
    names = draw(st.lists(st.sampled_from(sorted(TYPES)), max_size=8))
    return [(name, draw(TYPES[name][2])) for name in names]


@given(fields())
def test_any_sequence_of_fields_round_trips(values: list[tuple[str, Any]]) -> None:
    w = Writer()
    for name, value in values:
        TYPES[name][0](w, value)
    r = Reader(w.getvalue())
    for name, value in values:
        assert TYPES[name][1](r) == value
    r.end()


@given(st.lists(st.integers(0, 2**32 - 1), max_size=300))
def test_sequences_and_options_round_trip(items: list[int]) -> None:
    w = Writer()
    w.seq0_255(items[:255], Writer.u32).seq0_64k(items, Writer.u32)
    w.option(None, Writer.u32).option(items[0] if items else 7, Writer.u32)
    r = Reader(w.getvalue())
    assert r.seq0_255(Reader.u32) == items[:255]
    assert r.seq0_64k(Reader.u32) == items
    assert r.option(Reader.u32) is None
    assert r.option(Reader.u32) == (items[0] if items else 7)
    r.end()


def test_hand_computed_layouts() -> None:
    w = Writer().u8(1).u16(0x0203).u24(0x040506).u32(0x0708090A).u64(1).boolean(True).boolean(False)
    assert w.getvalue().hex() == "01" "0302" "060504" "0a090807" "0100000000000000" "01" "00"
    assert Writer().u256(1).getvalue() == b"\x01" + bytes(31)
    assert Writer().f32(1.0).getvalue() == struct.pack("<f", 1.0) == bytes.fromhex("0000803f")
    assert Writer().str0_255("ab").getvalue() == b"\x02ab"
    assert Writer().b0_64k(b"xyz").getvalue() == b"\x03\x00xyz"
    assert Writer().seq0_64k([1], Writer.u8).getvalue() == b"\x01\x00\x01"
    assert Writer().option(5, Writer.u32).getvalue() == b"\x01\x05\x00\x00\x00"
    assert Writer().option(None, Writer.u32).getvalue() == b"\x00"


def test_the_longest_b0_64k_and_str0_255_round_trip() -> None:
    data, text = bytes(range(256)) * 255 + bytes(255), "é" * 127 + "x"
    r = Reader(Writer().b0_64k(data).str0_255(text).getvalue())
    assert (r.b0_64k(), r.str0_255()) == (data, text)
    r.end()


def test_a_bool_reads_only_its_lowest_bit() -> None:
    # the spec: receivers MUST NOT interpret the other bits, senders MAY set them
    assert Reader(b"\xfe").boolean() is False
    assert Reader(b"\x03").boolean() is True


def test_f32_carries_what_the_miner_sent() -> None:
    assert Reader(struct.pack("<f", 1e12)).f32() == pytest.approx(1e12, rel=1e-7)
    assert math.isnan(Reader(struct.pack("<f", math.nan)).f32())


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (b"", Reader.u8), (b"\x01", Reader.u16), (b"\x01\x02", Reader.u24), (b"\x01\x02\x03", Reader.u32),
        (bytes(7), Reader.u64), (bytes(31), Reader.u256), (bytes(31), Reader.u256_bytes), (bytes(3), Reader.f32),
        (b"", Reader.boolean), (b"", Reader.str0_255), (b"\x03ab", Reader.str0_255), (b"\x02a", Reader.b0_32),
        (b"\x21" + bytes(33), Reader.b0_32), (b"\x05abcd", Reader.b0_255), (b"\x01", Reader.b0_64k),
        (b"\x03\x00ab", Reader.b0_64k), (b"\x02\xff\xfe", Reader.str0_255),
        (b"\x02\x01", lambda r: r.seq0_255(Reader.u8)), (b"\x01\x00\x01\x00", lambda r: r.seq0_255(Reader.u32)),
        (b"\xff\xff\x00", lambda r: r.seq0_64k(Reader.u8)), (b"\x02\x01\x02", lambda r: r.option(Reader.u8)),
        (b"\x01", lambda r: r.option(Reader.u8)),
    ],
)
def test_malformed_forms_are_refused(data: bytes, read: Callable[[Reader], Any]) -> None:
    with pytest.raises(CodecError):
        read(Reader(data))


def test_trailing_bytes_are_refused() -> None:
    r = Reader(b"\x01\x02")
    assert r.u8() == 1
    with pytest.raises(CodecError, match="1 trailing"):
        r.end()


@given(st.binary(max_size=64))
def test_any_bytes_either_decode_or_raise_codec_error(data: bytes) -> None:
    r = Reader(data)
    try:
        r.str0_255()
        r.seq0_64k(Reader.u256)
        r.option(Reader.u32)
        r.b0_64k()
        r.end()
    except CodecError:
        pass


@pytest.mark.parametrize(
    ("write", "value"),
    [
        (Writer.u8, 256), (Writer.u8, -1), (Writer.u16, 2**16), (Writer.u24, 2**24), (Writer.u32, 2**32),
        (Writer.u64, 2**64), (Writer.u256, 2**256), (Writer.u32, True), (Writer.u256_bytes, bytes(31)),
        (Writer.f32, 1e39), (Writer.str0_255, "x" * 256), (Writer.str0_255, "é" * 128), (Writer.b0_32, bytes(33)),
        (Writer.b0_255, bytes(256)), (Writer.b0_64k, bytes(65536)),
    ],
)
def test_values_without_an_encoding_are_refused(write: Callable[[Writer, Any], Writer], value: Any) -> None:
    with pytest.raises(CodecError):
        write(Writer(), value)


def test_oversized_sequences_are_refused() -> None:
    with pytest.raises(CodecError):
        Writer().seq0_255([0] * 256, Writer.u8)
    with pytest.raises(CodecError):
        Writer().seq0_64k([0] * 65536, Writer.u8)
