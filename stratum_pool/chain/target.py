"""Targets, compact ``nBits`` and difficulty.

A hash meets a target when ``int.from_bytes(hash_internal, "little") <= target``. Difficulty is
``diff1 / target``; ``diff1`` is the coin's difficulty-1 target (``Coin.diff1_target``), bitcoind's bdiff
``DIFF1_TARGET`` by default.
"""

from __future__ import annotations

import math

from stratum_pool.coins import DIFF1_TARGET

MAX_TARGET = 2**256 - 1


def bits_to_target(nbits: int) -> int:
    """Expand compact ``nBits`` into the target integer.

    Like Bitcoin Core's ``arith_uint256::SetCompact``, but encodings Core flags as negative or overflowing
    (which no valid block carries) raise ValueError instead of yielding a number.
    """
    if not 0 <= nbits <= 0xFFFFFFFF:
        raise ValueError(f"nbits {nbits:#x} is not a 32-bit number")
    exponent = nbits >> 24
    mantissa = nbits & 0x007FFFFF
    if exponent <= 3:
        target = mantissa >> (8 * (3 - exponent))
    else:
        target = mantissa << (8 * (exponent - 3))
    if mantissa and nbits & 0x00800000:
        raise ValueError(f"nbits {nbits:08x} encodes a negative target")
    if target > MAX_TARGET:
        raise ValueError(f"nbits {nbits:08x} encodes a target above 2**256")
    return target


def target_to_bits(target: int) -> int:
    """The canonical compact encoding of ``target``, as Core's ``GetCompact`` (keeps only the top 3 bytes)."""
    if not 0 <= target <= MAX_TARGET:
        raise ValueError("target must be in 0 .. 2**256-1")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    # 0x00800000 is the sign bit of the compact form: move a set top bit into a larger exponent
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def target_to_difficulty(target: int, diff1: int = DIFF1_TARGET) -> float:
    """``diff1 / target`` as a float (Python divides the big integers with correct rounding)."""
    if target <= 0:
        raise ValueError("target must be positive")
    return diff1 / target


def difficulty_to_target(difficulty: float, diff1: int = DIFF1_TARGET) -> int:
    """The target a share of ``difficulty`` must meet, clamped to ``2**256 - 1``.

    Integral difficulties use exact integer division (``diff1 // d``), the rest ``int(diff1 / d)`` as
    docs/architecture.md specifies; a float keeps 53 bits, plenty for difficulties down to 1e-9 (whose
    targets exceed 2**256 and clamp).
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
        raise TypeError(f"difficulty must be a number, not {type(difficulty).__name__}")
    if not math.isfinite(difficulty) or difficulty <= 0:
        raise ValueError(f"difficulty must be a positive finite number, not {difficulty!r}")
    if isinstance(difficulty, int) or difficulty.is_integer():
        target = diff1 // int(difficulty)
    else:
        target = int(diff1 / difficulty)
    return min(target, MAX_TARGET)


def hash_to_int(hash_internal: bytes) -> int:
    """A hash in internal order read as the number compared with targets."""
    if len(hash_internal) != 32:
        raise ValueError(f"hash must be 32 bytes, got {len(hash_internal)}")
    return int.from_bytes(hash_internal, "little")


def hash_difficulty(hash_internal: bytes, diff1: int = DIFF1_TARGET) -> float:
    """The difficulty a hash achieves (infinite for the all-zero hash)."""
    value = hash_to_int(hash_internal)
    return math.inf if value == 0 else diff1 / value
