"""The native extension against known vectors, real mainnet blocks and the pure-Python reference.

Every equivalence test runs under each SHA-256 backend this CPU offers (portable C, and SHA-NI or ARMv8
where present), so a fast path can never hide behind another one.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_pool import _native
from stratum_pool.chain import pow as pow_ref
from stratum_pool.coins import ALGO_SCRYPT, ALGO_SHA256D

BACKENDS = _native.available_sha_backends()
MAINNET = Path(__file__).parent / "data" / "mainnet"


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the body with `name` forced, then go back to the best backend."""
    _native.set_sha_backend(name)
    try:
        assert _native.sha_backend() == name
        yield
    finally:
        _native.set_sha_backend("best")


per_backend = pytest.mark.parametrize("name", BACKENDS)


def bits_to_target(bits: int) -> int:
    """The compact nBits encoding as a number: mantissa * 256**(exponent - 3)."""
    exponent, mantissa = bits >> 24, bits & 0x7FFFFF
    return mantissa << (8 * (exponent - 3)) if exponent > 3 else mantissa >> (8 * (3 - exponent))


def header(version: int, prev_display: str, root_display: str, ntime: int, bits: int, nonce: int) -> bytes:
    """An 80-byte header from explorer-style (display order) hashes."""
    return (
        struct.pack("<I", version)
        + bytes.fromhex(prev_display)[::-1]
        + bytes.fromhex(root_display)[::-1]
        + struct.pack("<III", ntime, bits, nonce)
    )


# ---- backends ----


def test_backends_listed_and_best_selected() -> None:
    assert "portable" in BACKENDS
    assert BACKENDS[-1] == "portable"
    assert _native.sha_backend() == BACKENDS[0]  # the best one is chosen at import
    # The run-time cpuid check must agree with what the kernel reports.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and " sha_ni" in cpuinfo.read_text(errors="replace"):
        assert "sha-ni" in BACKENDS


def test_set_backend_errors() -> None:
    with pytest.raises(ValueError, match="unknown"):
        _native.set_sha_backend("sha-3000")
    for name in ("sha-ni", "armv8"):
        if name not in BACKENDS:
            with pytest.raises(ValueError, match="not available"):
                _native.set_sha_backend(name)
    assert _native.sha_backend() == BACKENDS[0]  # a refused switch changes nothing


def test_pow_module_uses_native() -> None:
    assert pow_ref.NATIVE
    assert pow_ref.check_share is _native.check_share


# ---- SHA-256 known answers ----

NIST = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
        b"mnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@per_backend
@pytest.mark.parametrize(("message", "digest"), NIST, ids=["empty", "abc", "448bit", "896bit", "million-a"])
def test_nist_vectors(name: str, message: bytes, digest: str) -> None:
    with backend(name):
        assert _native._sha256(message).hex() == digest
        assert _native.sha256d(message) == hashlib.sha256(bytes.fromhex(digest)).digest()


@per_backend
def test_every_length_up_to_300(name: str) -> None:
    # Deterministic sweep over all padding shapes: 0..300 covers the 55/56/63/64/119/120/128 boundaries.
    data = bytes(range(256)) * 2
    with backend(name):
        for n in range(301):
            assert _native.sha256d(data[:n]) == pow_ref.sha256d_py(data[:n]), n
            assert _native._sha256(data[:n]) == hashlib.sha256(data[:n]).digest(), n


BITCOIN_GENESIS = header(
    1,
    "00" * 32,
    "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    1231006505,
    0x1D00FFFF,
    2083236893,
)


@per_backend
def test_bitcoin_genesis(name: str) -> None:
    with backend(name):
        digest = _native.sha256d_header(BITCOIN_GENESIS)
        assert digest[::-1].hex() == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        assert _native.pow_hash(ALGO_SHA256D, BITCOIN_GENESIS) == digest
        assert _native.sha256d(BITCOIN_GENESIS) == digest
        assert int.from_bytes(digest, "little") <= bits_to_target(0x1D00FFFF)


MAINNET_BLOCKS = {
    277647: "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8",
    540107: "00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab",
    574200: "0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2",
    702861: "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae",
}


@per_backend
@pytest.mark.parametrize("height", sorted(MAINNET_BLOCKS))
def test_mainnet_headers(name: str, height: int) -> None:
    head = (MAINNET / f"block-{height}.raw").read_bytes()[:80]
    with backend(name):
        digest = _native.sha256d_header(head)
        assert digest[::-1].hex() == MAINNET_BLOCKS[height]
        assert _native.pow_hash(ALGO_SHA256D, head) == digest
        (bits,) = struct.unpack_from("<I", head, 72)
        assert int.from_bytes(digest, "little") <= bits_to_target(bits)


# ---- the fused check rebuilding real mainnet blocks ----


def read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    first = raw[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(raw[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def read_tx(raw: bytes, pos: int) -> tuple[bytes, int]:
    """One transaction at `pos`: (its serialization without witness data, the position after it)."""
    start = pos
    pos += 4
    segwit = raw[pos] == 0 and raw[pos + 1] == 1
    if segwit:
        pos += 2
    body_start = pos
    n_in, pos = read_varint(raw, pos)
    for _ in range(n_in):
        pos += 36
        script_len, pos = read_varint(raw, pos)
        pos += script_len + 4
    n_out, pos = read_varint(raw, pos)
    for _ in range(n_out):
        pos += 8
        script_len, pos = read_varint(raw, pos)
        pos += script_len
    body_end = pos
    if segwit:
        for _ in range(n_in):
            n_items, pos = read_varint(raw, pos)
            for _ in range(n_items):
                item_len, pos = read_varint(raw, pos)
                pos += item_len
    stripped = raw[start : start + 4] + raw[body_start:body_end] + raw[pos : pos + 4]
    return stripped, pos + 4


def coinbase_and_branch(raw: bytes) -> tuple[bytes, bytes]:
    """The coinbase (no witness) and the merkle branch proving it, as a pool builds them for a job."""
    n_tx, pos = read_varint(raw, 80)
    txids = []
    coinbase = b""
    for i in range(n_tx):
        tx, pos = read_tx(raw, pos)
        if i == 0:
            coinbase = tx
        txids.append(hashlib.sha256(hashlib.sha256(tx).digest()).digest())
    assert pos == len(raw)
    branch = b""
    level = txids
    while len(level) > 1:
        if len(level) % 2:
            level = [*level, level[-1]]
        branch += level[1]
        level = [pow_ref.sha256d_py(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return coinbase, branch


@per_backend
@pytest.mark.parametrize("height", sorted(MAINNET_BLOCKS))
def test_check_share_rebuilds_mainnet_block(name: str, height: int) -> None:
    raw = (MAINNET / f"block-{height}.raw").read_bytes()
    coinbase, branch = coinbase_and_branch(raw)
    version, ntime, nbits, nonce = struct.unpack_from("<I", raw, 0) + struct.unpack_from("<III", raw, 68)
    # Split the coinbase as a job would: coinb1 | extranonce1 (4) | extranonce2 (8) | coinb2.
    split = 42
    parts = (coinbase[:split], coinbase[split : split + 4], coinbase[split + 4 : split + 12],
             coinbase[split + 12 :])
    with backend(name):
        head, digest = _native.check_share(
            ALGO_SHA256D, *parts, branch, version, raw[4:36], ntime, nbits, nonce
        )
    assert head == raw[:80]
    assert digest[::-1].hex() == MAINNET_BLOCKS[height]


# ---- scrypt ----

LITECOIN_GENESIS = header(
    1,
    "00" * 32,
    "97ddfbbae6be97fd6cdf3e7ca13232a3afff2353e29badfab7f73011edd4ced9",
    1317972665,
    0x1E0FFFF0,
    2084524493,
)


@per_backend
def test_litecoin_genesis(name: str) -> None:
    with backend(name):
        assert _native.sha256d_header(LITECOIN_GENESIS)[::-1].hex() == (
            "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2"
        )
        pow_digest = _native.scrypt_1024_1_1(LITECOIN_GENESIS)
        assert pow_digest == pow_ref.scrypt_py(LITECOIN_GENESIS)
        assert _native.pow_hash(ALGO_SCRYPT, LITECOIN_GENESIS) == pow_digest
        assert int.from_bytes(pow_digest, "little") <= bits_to_target(0x1E0FFFF0)


def test_scrypt_in_threads() -> None:
    # scrypt runs without the GIL on a per-thread scratchpad: concurrent calls must not disturb each other.
    headers = [bytes([i]) * 80 for i in range(8)]
    expected = [pow_ref.scrypt_py(h) for h in headers]
    results: dict[int, list[bytes]] = {}

    def work(k: int) -> None:
        results[k] = [_native.scrypt_1024_1_1(h) for h in headers * 3]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == expected * 3 for k in range(4))


# ---- property tests against the reference ----

BOUNDARY_LENGTHS = [0, 1, 31, 32, 55, 56, 57, 63, 64, 65, 80, 119, 120, 127, 128, 129, 191, 192]
any_bytes = st.one_of(
    st.binary(max_size=600),
    st.sampled_from(BOUNDARY_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
hash32 = st.binary(min_size=32, max_size=32)
header80 = st.binary(min_size=80, max_size=80)


@per_backend
@settings(max_examples=300, deadline=None)
@given(data=any_bytes)
def test_sha256d_matches_hashlib(name: str, data: bytes) -> None:
    with backend(name):
        assert _native.sha256d(data) == hashlib.sha256(hashlib.sha256(data).digest()).digest()
        assert _native._sha256(data) == hashlib.sha256(data).digest()


@per_backend
@settings(max_examples=200, deadline=None)
@given(head=header80)
def test_header_and_pow_match_reference(name: str, head: bytes) -> None:
    with backend(name):
        assert _native.sha256d_header(head) == pow_ref.sha256d_py(head)
        assert _native.pow_hash(ALGO_SHA256D, head) == pow_ref.pow_hash_py(ALGO_SHA256D, head)


@per_backend
@settings(max_examples=40, deadline=None)
@given(head=header80)
def test_scrypt_matches_hashlib(name: str, head: bytes) -> None:
    with backend(name):
        assert _native.scrypt_1024_1_1(head) == hashlib.scrypt(head, salt=head, n=1024, r=1, p=1, dklen=32)


@per_backend
@settings(max_examples=150, deadline=None)
@given(
    algorithm=st.sampled_from([ALGO_SHA256D, ALGO_SHA256D, ALGO_SHA256D, ALGO_SCRYPT]),
    coinb1=st.binary(max_size=300),
    extranonce1=st.binary(max_size=8),
    extranonce2=st.binary(max_size=16),
    coinb2=st.binary(max_size=300),
    branch=st.lists(hash32, max_size=14).map(b"".join),
    version=u32,
    prevhash=hash32,
    ntime=u32,
    nbits=u32,
    nonce=u32,
)
def test_check_share_matches_reference(
    name: str,
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
) -> None:
    args = (algorithm, coinb1, extranonce1, extranonce2, coinb2, branch, version, prevhash, ntime, nbits,
            nonce)
    with backend(name):
        assert _native.check_share(*args) == pow_ref.check_share_py(*args)


# ---- errors ----


@pytest.mark.parametrize("length", [0, 79, 81, 160])
def test_wrong_header_length(length: int) -> None:
    for fn in (_native.sha256d_header, _native.scrypt_1024_1_1):
        with pytest.raises(ValueError, match="80 bytes"):
            fn(bytes(length))
    with pytest.raises(ValueError, match="80 bytes"):
        _native.pow_hash(ALGO_SHA256D, bytes(length))


@pytest.mark.parametrize("algorithm", [-1, 2, 99])
def test_bad_algorithm(algorithm: int) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        _native.pow_hash(algorithm, bytes(80))
    with pytest.raises(ValueError, match="algorithm"):
        _native.check_share(algorithm, b"", b"", b"", b"", b"", 1, bytes(32), 0, 0, 0)


@pytest.mark.parametrize("branch_len", [1, 31, 33, 63, 65])
def test_bad_branch_length(branch_len: int) -> None:
    with pytest.raises(ValueError, match="branch"):
        _native.check_share(ALGO_SHA256D, b"", b"", b"", b"", bytes(branch_len), 1, bytes(32), 0, 0, 0)


@pytest.mark.parametrize("prev_len", [0, 31, 33])
def test_bad_prevhash_length(prev_len: int) -> None:
    with pytest.raises(ValueError, match="prevhash"):
        _native.check_share(ALGO_SHA256D, b"", b"", b"", b"", b"", 1, bytes(prev_len), 0, 0, 0)


@pytest.mark.parametrize("position", [6, 8, 9, 10])  # version, ntime, nbits, nonce
@pytest.mark.parametrize("value", [-1, 2**32, 2**64])
def test_out_of_range_u32(position: int, value: int) -> None:
    args: list[object] = [ALGO_SHA256D, b"", b"", b"", b"", b"", 1, bytes(32), 0, 0, 0]
    args[position] = value
    with pytest.raises((ValueError, OverflowError)):
        _native.check_share(*args)  # type: ignore[arg-type]


def test_wrong_types() -> None:
    with pytest.raises(TypeError):
        _native.sha256d("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.sha256d(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.check_share(ALGO_SHA256D, b"", b"", b"", b"", b"", 1.0, bytes(32), 0, 0, 0)  # type: ignore[arg-type]


def test_bytes_like_inputs_accepted() -> None:
    assert _native.sha256d(bytearray(b"abc")) == _native.sha256d(b"abc")
    assert _native.sha256d_header(memoryview(BITCOIN_GENESIS)) == _native.sha256d_header(BITCOIN_GENESIS)


# ----- ShareSet: the duplicate set of one job (the share core packs keys in C; tests and the reference use tuples)

share_keys = st.tuples(st.binary(min_size=0, max_size=20), st.binary(min_size=1, max_size=20),
                       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))  # fmt: skip


@given(st.lists(share_keys, max_size=300), st.lists(share_keys, max_size=50))
def test_share_set_behaves_as_a_set_of_its_tuples(added: list[Any], probes: list[Any]) -> None:
    native, reference = _native.ShareSet(), set()
    for key in added:
        assert (key in native) == (key in reference)
        native.add(key)
        reference.add(key)
        assert key in native
    assert len(native) == len(reference)
    assert set(native) == reference
    for key in probes:
        assert (key in native) == (key in reference)


def test_share_set_grows_and_keeps_every_key() -> None:
    s = _native.ShareSet()
    keys = [(b"\0\0\0\1", i.to_bytes(4, "big"), 1_700_000_000, i * 7919 % 2**32, 0x20000000) for i in range(20_000)]
    for key in keys:
        s.add(key)
    s.add(keys[0])  # again: nothing new
    assert len(s) == 20_000
    assert all(key in s for key in keys)
    assert (b"\0\0\0\1", b"\0\0\0\0", 1_700_000_000, 1, 0x20000000) not in s


def test_share_set_refuses_what_is_not_a_share_key() -> None:
    s = _native.ShareSet()
    with pytest.raises(TypeError):
        s.add((b"", b"", 1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s.add(("a", b"", 1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        s.add((b"", b"", 2**32, 2, 3))
