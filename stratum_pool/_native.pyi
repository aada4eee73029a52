"""Type stub of the Cython extension built from native/_native.pyx (see docs/architecture.md).

Byte arguments are bytes by contract (the fast path); bytearray and memoryview are accepted and copied.
"""

from collections.abc import Callable, Iterator
from typing import Any

_Bytes = bytes | bytearray | memoryview

def sha256d(data: _Bytes) -> bytes: ...
def _sha256(data: _Bytes) -> bytes: ...
def sha256d_header(header: _Bytes) -> bytes: ...
def scrypt_1024_1_1(header: _Bytes) -> bytes: ...
def pow_hash(algorithm: int, header: _Bytes) -> bytes: ...
def check_share(
    algorithm: int,
    coinb1: _Bytes,
    extranonce1: _Bytes,
    extranonce2: _Bytes,
    coinb2: _Bytes,
    branch: _Bytes,
    version: int,
    prevhash: _Bytes,
    ntime: int,
    nbits: int,
    nonce: int,
) -> tuple[bytes, bytes]: ...
def sha_backend() -> str: ...
def available_sha_backends() -> list[str]: ...
def set_sha_backend(name: str) -> None: ...

class FastSubmit:
    """The share path's fast lane (native/fastsubmit.pxi): ``submit`` returns a session's actions for an
    accepted share that is not a block, else None with nothing changed."""

    def __init__(
        self, send: type, accepted: type, rejected: type, max_job_id: int, job_manager: type,
        clean_name: Callable[[str, int], str], stale: tuple[int, str, str], duplicate: tuple[int, str, str],
        low: tuple[int, str], low_message: Callable[[float, float], str],
    ) -> None: ...
    def submit(self, session: object, line: bytes, now: float) -> list[Any] | None: ...

class ShareSet:
    """The shares seen on one job (native/shareset.pxi): keys are (extranonce1, extranonce2, ntime, nonce,
    version) tuples."""

    def __contains__(self, key: object, /) -> bool: ...
    def add(self, key: tuple[bytes, bytes, int, int, int], /) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[tuple[bytes, bytes, int, int, int]]: ...
