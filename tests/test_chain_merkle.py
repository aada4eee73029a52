"""Merkle roots and the coinbase branch, against real blocks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mainnet import MAINNET_HEIGHTS, mainnet_case

from stratum_pool.chain.encoding import internal_from_display_many
from stratum_pool.chain.merkle import (
    _native,
    merkle_branch,
    merkle_branch_packed,
    merkle_branch_py,
    merkle_root,
    root_from_branch,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_real_merkle_roots(height: int) -> None:
    block = mainnet_case(height).block
    txids = [tx.txid for tx in block.txs]
    assert merkle_root(txids) == block.merkle_root
    branch = merkle_branch(txids[1:])
    assert root_from_branch(txids[0], branch) == block.merkle_root
    # one branch hash per level: ceil(log2(n))
    assert len(branch) == (len(txids) - 1).bit_length()


def test_block_574200_branch_depth() -> None:
    block = mainnet_case(574200).block
    assert len(block.txs) == 3315
    assert len(merkle_branch([tx.txid for tx in block.txs[1:]])) == 12


def test_single_leaf() -> None:
    leaf = _h(b"coinbase")
    assert merkle_root([leaf]) == leaf
    assert merkle_branch([]) == []
    assert root_from_branch(leaf, []) == leaf


def test_two_and_three_leaves() -> None:
    a, b, c = _h(b"a"), _h(b"b"), _h(b"c")
    assert merkle_root([a, b]) == _h(a + b)
    # odd level: the last hash is paired with itself
    assert merkle_root([a, b, c]) == _h(_h(a + b) + _h(c + c))
    assert merkle_branch([b, c]) == [b, _h(c + c)]


@given(st.integers(min_value=1, max_value=70), st.binary(min_size=1, max_size=8))
def test_branch_agrees_with_root(count: int, salt: bytes) -> None:
    leaves = [_h(salt + i.to_bytes(2, "big")) for i in range(count)]
    assert root_from_branch(leaves[0], merkle_branch(leaves[1:])) == merkle_root(leaves)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(ValueError):
        merkle_root([b"\x00" * 31])
    with pytest.raises(ValueError):
        merkle_branch([b"\x00" * 33])


# --- the native branch (the new-block path) against the pure-Python reference ---


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_native_branch_equals_the_reference_on_real_blocks(height: int) -> None:
    assert _native is not None, "the extension is built by make (setup.py build_ext)"
    txids = [tx.txid for tx in mainnet_case(height).block.txs[1:]]
    expected = merkle_branch_py(txids)
    assert _native.merkle_branch(b"".join(txids)) == b"".join(expected)
    assert merkle_branch_packed(b"".join(txids)) == b"".join(expected)
    assert merkle_branch(txids) == expected


@given(st.integers(min_value=0, max_value=300), st.binary(min_size=1, max_size=4))
def test_native_branch_equals_the_reference_at_every_size(count: int, salt: bytes) -> None:
    leaves = [_h(salt + i.to_bytes(4, "little")) for i in range(count)]
    assert merkle_branch_packed(b"".join(leaves)) == b"".join(merkle_branch_py(leaves))


def test_native_branch_refuses_partial_hashes() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        merkle_branch_packed(bytes(33))
    with pytest.raises(TypeError):
        merkle_branch_packed("00" * 32)  # type: ignore[arg-type]


def test_many_txids_from_display_hex_on_a_real_block() -> None:
    txids = [tx.txid for tx in mainnet_case(574200).block.txs[1:]]
    display = [t[::-1].hex() for t in txids]
    each, packed = internal_from_display_many(display)
    assert each == tuple(txids) and packed == b"".join(txids)
    assert internal_from_display_many([d.upper() for d in display[:5]])[0] == tuple(txids[:5])
    assert internal_from_display_many([]) == ((), b"")


@pytest.mark.parametrize(("bad", "index"), [
    (["00" * 32, "00" * 31], 1),  # short
    (["00" * 33], 0),  # long
    (["00" * 31 + "0g"], 0),  # not hex
    (["00" * 32, None], 1),  # not a string
    ([b"\x00" * 32], 0),  # bytes, not hex
    (["00" * 31 + " 0"], 0),  # whitespace, which bytes.fromhex would skip
    (["00" * 31 + "é0"[:1] + "0"], 0),  # not ASCII
])
def test_many_txids_name_the_first_bad_one(bad: list[object], index: int) -> None:
    with pytest.raises(ValueError, match=f"txid {index} "):
        internal_from_display_many(bad)


def test_without_the_extension_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from stratum_pool.chain import encoding, merkle

    txids = [tx.txid for tx in mainnet_case(574200).block.txs[1:]]
    display = [t[::-1].hex() for t in txids]
    native = internal_from_display_many(display), merkle_branch_packed(b"".join(txids))
    monkeypatch.setattr(encoding, "_native", None)
    monkeypatch.setattr(merkle, "_native", None)
    assert (internal_from_display_many(display), merkle_branch_packed(b"".join(txids))) == native
    with pytest.raises(ValueError, match="txid 1 "):
        internal_from_display_many(["00" * 32, "00" * 31 + " 0"])
    with pytest.raises(ValueError, match="32-byte"):
        merkle_branch_packed(bytes(33))
