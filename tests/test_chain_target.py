"""Compact bits, targets and difficulty."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mainnet import MAINNET_HEIGHTS, mainnet_case

from stratum_pool.chain.target import (
    MAX_TARGET,
    bits_to_target,
    difficulty_to_target,
    hash_difficulty,
    hash_to_int,
    target_to_bits,
    target_to_difficulty,
)
from stratum_pool.coins import COINS, DIFF1_TARGET


def test_diff1() -> None:
    assert bits_to_target(0x1D00FFFF) == DIFF1_TARGET
    assert target_to_difficulty(bits_to_target(0x1D00FFFF)) == 1.0
    assert target_to_bits(DIFF1_TARGET) == 0x1D00FFFF
    assert difficulty_to_target(1) == DIFF1_TARGET
    assert difficulty_to_target(1.0) == DIFF1_TARGET


def test_regtest_bits() -> None:
    target = bits_to_target(0x207FFFFF)
    assert target == 0x7FFFFF << (8 * 29)
    assert target_to_bits(target) == 0x207FFFFF
    assert target_to_difficulty(target) == pytest.approx(4.6565423739069247e-10)


@pytest.mark.parametrize(
    ("nbits", "difficulty"),
    [
        # network difficulties at these heights, as bitcoind's getblock reports them
        (0x1903A30C, 1_180_923_195.258026),
        (0x1729D72D, 6_727_225_469_722.534),
        (0x172C4E11, 6_353_030_562_983.983),
        (0x170ED0EB, 18_997_641_161_758.953),
    ],
)
def test_mainnet_bits(nbits: int, difficulty: float) -> None:
    target = bits_to_target(nbits)
    assert target_to_bits(target) == nbits
    assert target_to_difficulty(target) == pytest.approx(difficulty, rel=1e-12)


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_real_blocks_meet_their_targets(height: int) -> None:
    case = mainnet_case(height)
    target = bits_to_target(case.block.bits)
    assert hash_to_int(case.block.hash) <= target
    assert hash_difficulty(case.block.hash) >= target_to_difficulty(target)


@pytest.mark.parametrize(
    ("nbits", "target"),
    [
        (0x00000000, 0),
        (0x01003456, 0x00),
        (0x01123456, 0x12),
        (0x02008000, 0x80),
        (0x05009234, 0x92340000),
        (0x04123456, 0x12345600),
        (0x03123456, 0x123456),
        (0x02123456, 0x1234),
        (0x20123456, 0x123456 << 232),
    ],
)
def test_bits_to_target_core_vectors(nbits: int, target: int) -> None:
    # from Bitcoin Core's arith_uint256 SetCompact tests
    assert bits_to_target(nbits) == target


@pytest.mark.parametrize("nbits", [0x01FEDCBA, 0x04923456, 0xFF123456, 0x21010000, -1, 2**32])
def test_bits_to_target_refuses_negative_and_overflow(nbits: int) -> None:
    with pytest.raises(ValueError):
        bits_to_target(nbits)


@pytest.mark.parametrize(
    ("target", "nbits"),
    [(0, 0), (0x12, 0x01120000), (0x80, 0x02008000), (0x1234, 0x02123400), (0x92340000, 0x05009234)],
)
def test_target_to_bits_canonical(target: int, nbits: int) -> None:
    assert target_to_bits(target) == nbits


@given(st.integers(min_value=1, max_value=MAX_TARGET))
def test_bits_round_trip(target: int) -> None:
    nbits = target_to_bits(target)
    expanded = bits_to_target(nbits)
    # compact keeps the top 3 significant bytes: rounding down, never up, within one mantissa step
    assert expanded <= target
    assert target - expanded < (1 << max(0, target.bit_length() - 15))
    assert target_to_bits(expanded) == nbits


@given(
    st.integers(min_value=3, max_value=32),
    st.integers(min_value=0x008000, max_value=0x7FFFFF),
)
def test_canonical_bits_round_trip(exponent: int, mantissa: int) -> None:
    nbits = (exponent << 24) | mantissa
    assert target_to_bits(bits_to_target(nbits)) == nbits


@pytest.mark.parametrize("difficulty", [1e-9, 1e-6, 0.001, 0.5, 1.5, 2, 3.0, 1024, 65536.25, 1e12])
def test_difficulty_to_target(difficulty: float) -> None:
    target = difficulty_to_target(difficulty)
    assert 0 < target <= MAX_TARGET
    if target < MAX_TARGET:
        assert target_to_difficulty(target) == pytest.approx(difficulty, rel=1e-12)


def test_tiny_difficulty_clamps() -> None:
    # sha256d difficulty 1e-9 is still below 2**256 ...
    assert difficulty_to_target(1e-9) == int(DIFF1_TARGET / 1e-9) < MAX_TARGET
    # ... scrypt share difficulty 1 is 65536 times easier, so there 1e-9 must clamp
    diff1_scrypt = COINS["litecoin-mainnet"].diff1_target
    assert difficulty_to_target(1, diff1_scrypt) == DIFF1_TARGET * 65536
    assert difficulty_to_target(1e-9, diff1_scrypt) == MAX_TARGET
    assert difficulty_to_target(1e-80) == MAX_TARGET


def test_integral_difficulty_is_exact() -> None:
    assert difficulty_to_target(3) == DIFF1_TARGET // 3
    assert difficulty_to_target(3.0) == DIFF1_TARGET // 3
    assert difficulty_to_target(0.5) == DIFF1_TARGET * 2


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf")])
def test_difficulty_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        difficulty_to_target(bad)


def test_difficulty_type() -> None:
    with pytest.raises(TypeError):
        difficulty_to_target("1")  # type: ignore[arg-type]


def test_hash_to_int() -> None:
    assert hash_to_int(b"\x01" + b"\x00" * 31) == 1
    assert hash_to_int(b"\x00" * 31 + b"\x01") == 1 << 248
    assert hash_difficulty(b"\x00" * 32) == float("inf")
    with pytest.raises(ValueError):
        hash_to_int(b"\x00" * 31)


def test_target_to_difficulty_refuses_zero() -> None:
    with pytest.raises(ValueError):
        target_to_difficulty(0)
