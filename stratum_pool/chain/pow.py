"""Proof-of-work hashing: the native extension when it is built, the pure-Python reference otherwise.

Byte orders: every hash here is in *internal* order (the raw digest, as stored in headers and merkle
trees); read it as a number with ``int.from_bytes(h, "little")``. Display order (block explorers) is the
reverse.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

from stratum_pool.coins import ALGO_SCRYPT, ALGO_SHA256D

_sha256 = hashlib.sha256


def sha256d_py(data: bytes) -> bytes:
    """sha256(sha256(data)), the reference implementation."""
    return _sha256(_sha256(data).digest()).digest()


def scrypt_py(header: bytes) -> bytes:
    """Litecoin's proof of work: scrypt(N=1024, r=1, p=1) with the header as password and salt."""
    return hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)


def pow_hash_py(algorithm: int, header: bytes) -> bytes:
    if algorithm == ALGO_SHA256D:
        return sha256d_py(header)
    if algorithm == ALGO_SCRYPT:
        return scrypt_py(header)
    raise ValueError(f"unknown algorithm id {algorithm}")


def check_share_py(
    algorithm: int,
    coinb1: bytes,
    extranonce1: bytes,
    extranonce2: bytes,
    coinb2: bytes,
    branch: bytes,
    version: int,
    prevhash: bytes,
    ntime: int,
    nbits: int,
    nonce: int,
) -> tuple[bytes, bytes]:
    """The fused share check, pure Python: the reference the native one must always equal.

    ``branch`` is the merkle branch as concatenated 32-byte hashes (internal order), ``prevhash`` the
    previous block hash in internal order. Returns ``(header, pow_hash)``: the 80-byte header and its
    proof-of-work hash in internal order.
    """
    h = sha256d_py(coinb1 + extranonce1 + extranonce2 + coinb2)
    for i in range(0, len(branch), 32):
        h = sha256d_py(h + branch[i : i + 32])
    header = struct.pack("<I", version) + prevhash + h + struct.pack("<III", ntime, nbits, nonce)
    return header, pow_hash_py(algorithm, header)


CheckShare = Callable[[int, bytes, bytes, bytes, bytes, bytes, int, bytes, int, int, int], tuple[bytes, bytes]]

try:  # the Cython extension built from native/ by setup.py
    from stratum_pool import _native

    sha256d: Callable[[bytes], bytes] = _native.sha256d
    pow_hash: Callable[[int, bytes], bytes] = _native.pow_hash
    check_share: CheckShare = _native.check_share
    NATIVE = True
except ImportError:  # pragma: no cover - exercised only when the extension is not built
    sha256d = sha256d_py
    pow_hash = pow_hash_py
    check_share = check_share_py
    NATIVE = False
