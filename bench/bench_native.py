"""Native PoW hashing vs hashlib and the pure-Python reference: a table, then one JSON line.

Run with ``python bench/run.py`` (every bench) or ``python bench/bench_native.py`` (this one). Numbers are
the best of several timed runs (the least disturbed by the rest of the machine), per call, including the
Python call overhead a pool pays.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stratum_pool import _native
from stratum_pool.chain.pow import check_share_py, scrypt_py
from stratum_pool.coins import ALGO_SHA256D

REPEATS = 5


def timed(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of `fn` over one run of `number` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(native: Callable[[], object], reference: Callable[[], object], number: int,
            repeats: int = REPEATS) -> tuple[float, float]:
    """Best seconds per call of (native, reference), the runs interleaved so that load from the rest of the
    machine hits both sides alike and the ratio stays honest."""
    best_native = best_ref = float("inf")
    for _ in range(repeats):
        best_native = min(best_native, timed(native, number))
        best_ref = min(best_ref, timed(reference, max(1, number // 2)))
    return best_native, best_ref


def share_args() -> tuple[int, bytes, bytes, bytes, bytes, bytes, int, bytes, int, int, int]:
    """A realistic share: ~200-byte coinbase around 4 + 8 bytes of extranonce, 12-level branch."""
    rnd = os.urandom
    return (ALGO_SHA256D, rnd(100), rnd(4), rnd(8), rnd(88), rnd(32 * 12), 0x20000000, rnd(32),
            1_700_000_000, 0x1703A30C, 12345)


def run() -> dict[str, object]:
    header = os.urandom(80)
    sha = hashlib.sha256
    native_header = _native.sha256d_header
    native_share = _native.check_share
    native_scrypt = _native.scrypt_1024_1_1
    args = share_args()
    backends = _native.available_sha_backends()
    rows: list[tuple[str, str, str, str]] = []
    result: dict[str, object] = {"bench": "native", "best_backend": _native.sha_backend(),
                                 "backends": backends}

    try:
        for name in backends:
            _native.set_sha_backend(name)
            ns, hashlib_ns = compare(lambda: native_header(header),
                                     lambda: sha(sha(header).digest()).digest(), 200_000)
            share, share_py = compare(lambda: native_share(*args), lambda: check_share_py(*args), 20_000)
            scrypt, scrypt_hashlib = compare(lambda: native_scrypt(header), lambda: scrypt_py(header), 300, 3)
            ns, hashlib_ns = ns * 1e9, hashlib_ns * 1e9
            share_us, share_py_us = share * 1e6, share_py * 1e6
            scrypt_us, scrypt_hashlib_us = scrypt * 1e6, scrypt_hashlib * 1e6
            rows.append((f"sha256d 80-byte header [{name}]", f"{ns:.1f} ns", f"hashlib {hashlib_ns:.1f} ns",
                         f"{hashlib_ns / ns:.2f}x"))
            rows.append((f"check_share sha256d, 12 levels [{name}]", f"{share_us:.3f} us",
                         f"check_share_py {share_py_us:.3f} us", f"{share_py_us / share_us:.2f}x"))
            rows.append((f"scrypt 1024,1,1 [{name}]", f"{scrypt_us:.1f} us",
                         f"hashlib.scrypt {scrypt_hashlib_us:.1f} us",
                         f"{scrypt_hashlib_us / scrypt_us:.2f}x"))
            result[name] = {
                "sha256d_80_ns": round(ns, 1),
                "sha256d_80_hashlib_ns": round(hashlib_ns, 1),
                "sha256d_80_ratio": round(hashlib_ns / ns, 2),
                "check_share_us": round(share_us, 3),
                "check_share_py_us": round(share_py_us, 3),
                "check_share_ratio": round(share_py_us / share_us, 2),
                "scrypt_us": round(scrypt_us, 1),
                "scrypt_hashlib_us": round(scrypt_hashlib_us, 1),
                "scrypt_ratio": round(scrypt_hashlib_us / scrypt_us, 2),
            }
    finally:
        _native.set_sha_backend("best")

    titles = ("case", "native", "reference", "speed-up")
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
    print("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(json.dumps(result))
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
