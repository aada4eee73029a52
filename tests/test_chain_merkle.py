"""Merkle roots and the coinbase branch, against real blocks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mainnet import MAINNET_HEIGHTS, mainnet_case

from stratum_pool.chain.merkle import merkle_branch, merkle_root, root_from_branch


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
