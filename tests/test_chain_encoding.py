"""Wire encodings: varints, script numbers, pushes, BIP34 heights, Stratum's prevhash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mainnet import MAINNET_HEIGHTS, mainnet_case

from stratum_pool.chain.encoding import (
    bip34_height_push,
    decode_script_num,
    display_from_internal,
    internal_from_display,
    prevhash_from_stratum,
    push_data,
    read_bip34_height,
    read_varint,
    script_num,
    stratum_prevhash,
    varint,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),
        (0x100000000, "ff0000000001000000"),
        (2**64 - 1, "ffffffffffffffffff"),
    ],
)
def test_varint(n: int, encoded: str) -> None:
    assert varint(n).hex() == encoded
    assert read_varint(b"\xaa" + bytes.fromhex(encoded) + b"\xbb", 1) == (n, 1 + len(encoded) // 2)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(n: int) -> None:
    assert read_varint(varint(n), 0) == (n, len(varint(n)))


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_varint_range(bad: int) -> None:
    with pytest.raises(ValueError):
        varint(bad)


@pytest.mark.parametrize("raw", ["fd", "fdff", "fe000001", "ff00000000000000", "fdfc00", "fe00ff0000"])
def test_read_varint_truncated_or_non_canonical(raw: str) -> None:
    with pytest.raises(ValueError):
        read_varint(bytes.fromhex(raw), 0)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, ""),
        (1, "01"),
        (-1, "81"),
        (127, "7f"),
        (128, "8000"),
        (-128, "8080"),
        (255, "ff00"),
        (256, "0001"),
        (-255, "ff80"),
        (32767, "ff7f"),
        (32768, "008000"),
        (-32768, "008080"),
        (65535, "ffff00"),
        (8388607, "ffff7f"),
        (8388608, "00008000"),
        (2**31 - 1, "ffffff7f"),
        (-(2**31 - 1), "ffffffff"),
    ],
)
def test_script_num(n: int, encoded: str) -> None:
    assert script_num(n).hex() == encoded
    assert decode_script_num(bytes.fromhex(encoded)) == n


@given(st.integers(min_value=-(2**63), max_value=2**63))
def test_script_num_round_trip_and_minimal(n: int) -> None:
    encoded = script_num(n)
    assert decode_script_num(encoded) == n
    # minimal: the last byte is not a bare sign byte unless the one before needs it
    if len(encoded) > 1:
        assert encoded[-1] & 0x7F or encoded[-2] & 0x80


@pytest.mark.parametrize("height", range(1, 17))
def test_bip34_small_heights_are_opcodes(height: int) -> None:
    assert bip34_height_push(height) == bytes((0x50 + height,))
    assert read_bip34_height(bip34_height_push(height) + b"\x01\x02") == (height, 1)


def test_bip34_height_zero_is_op_0() -> None:
    assert bip34_height_push(0) == b"\x00"


@pytest.mark.parametrize(
    ("height", "encoded"),
    [
        (17, "0111"),
        (127, "017f"),
        (128, "028000"),
        (255, "02ff00"),
        (256, "020001"),
        (32767, "02ff7f"),
        (32768, "03008000"),
        (65535, "03ffff00"),
        (65536, "03000001"),
        (8388607, "03ffff7f"),
        (8388608, "0400008000"),
        (277647, "038f3c04"),
        (540107, "03cb3d08"),
        (574200, "03f8c208"),
        (702861, "038db90a"),
    ],
)
def test_bip34_height_push(height: int, encoded: str) -> None:
    assert bip34_height_push(height).hex() == encoded
    assert read_bip34_height(bytes.fromhex(encoded) + b"\xff") == (height, len(encoded) // 2)


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_bip34_matches_real_coinbases(height: int) -> None:
    script_sig_start = 4 + 1 + 36 + 1
    coinbase = mainnet_case(height).block.txs[0].raw_nowitness
    assert coinbase[script_sig_start:].startswith(bip34_height_push(height))


def test_bip34_negative_height() -> None:
    with pytest.raises(ValueError):
        bip34_height_push(-1)


@pytest.mark.parametrize(
    ("length", "prefix"),
    [
        (0, "00"),
        (1, "01"),
        (75, "4b"),
        (76, "4c4c"),
        (255, "4cff"),
        (256, "4d0001"),
        (65535, "4dffff"),
        (65536, "4e00000100"),
    ],
)
def test_push_data(length: int, prefix: str) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    assert push_data(data) == bytes.fromhex(prefix) + data


def test_stratum_prevhash() -> None:
    # block 702861's parent as getbestblockhash prints it, and as mining.notify sends it
    display = "00000000000000000009c3deb8b5e706d7be57a427f4f03f01c49d5219213b5f"
    internal = internal_from_display(display)
    assert internal == mainnet_case(702861).block.prevhash
    # the display hex's 8-digit words in reverse order
    expected = "19213b5f01c49d5227f4f03fd7be57a4b8b5e7060009c3de0000000000000000"
    assert stratum_prevhash(internal) == expected
    assert prevhash_from_stratum(stratum_prevhash(internal)) == internal
    assert display_from_internal(internal) == display


@given(st.binary(min_size=32, max_size=32))
def test_stratum_prevhash_round_trip(prevhash: bytes) -> None:
    assert prevhash_from_stratum(stratum_prevhash(prevhash)) == prevhash


def test_stratum_prevhash_length() -> None:
    with pytest.raises(ValueError):
        stratum_prevhash(b"\x00" * 31)
    with pytest.raises(ValueError):
        prevhash_from_stratum("00" * 33)


# --- a template's transactions, decoded in one call (the new-block path) ---


@pytest.mark.parametrize("native", [True, False], ids=["extension", "pure-python"])
def test_hex_decode_many_on_a_real_block(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from stratum_pool.chain import encoding

    if not native:
        monkeypatch.setattr(encoding, "_native", None)
    else:
        assert encoding._native is not None, "the extension is built by make (setup.py build_ext)"
    raws = [tx.raw for tx in mainnet_case(574200).block.txs[1:]]
    hexes = [raw.hex() for raw in raws]
    hexes[1] = hexes[1].upper()  # either case, as unhexlify
    assert encoding.hex_decode_many(hexes) == tuple(raws)
    assert encoding.hex_decode_many([]) == ()
    assert encoding.hex_decode_many([""]) == (b"",)


@pytest.mark.parametrize("native", [True, False], ids=["extension", "pure-python"])
@pytest.mark.parametrize("bad", ["0", "0g", " 00", "00 ", "é0", None, b"00", 0])
def test_hex_decode_many_names_the_first_bad_transaction(native: bool, bad: object,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from stratum_pool.chain import encoding

    if not native:
        monkeypatch.setattr(encoding, "_native", None)
    with pytest.raises(ValueError, match="transaction 2 "):
        encoding.hex_decode_many(["00", "ab" * 100, bad, "zz"])
