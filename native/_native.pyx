# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Native code for stratum-pool: sha256d, scrypt(1024, 1, 1), the fused share check, and the share core.

Thin Python bindings over the C in native/ (sha256.c + CPU backends, scrypt.c, share.c). Every hash is
returned in internal order (the raw digest). ``stratum_pool.chain.pow`` holds the pure-Python reference
each function here must equal.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcmp, memcpy, memset, strlen


cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char *data, size_t n, int little_endian, int is_signed)


cdef extern from "sha256.h":
    enum:
        SP_SHA_PORTABLE
        SP_SHA_SHANI
        SP_SHA_ARMV8
    int sp_sha256_available(int id)
    int sp_sha256_select(int id)
    int sp_sha256_current()
    int sp_sha256_autodetect()
    void sp_sha256(const uint8_t *data, size_t length, uint8_t *out) nogil
    void sp_sha256d(const uint8_t *data, size_t length, uint8_t *out) nogil
    void sp_sha256d_80(const uint8_t *data, uint8_t *out) nogil


cdef extern from "scrypt.h":
    int sp_scrypt_1024_1_1(const uint8_t *header, uint8_t *out) nogil


cdef extern from "share.h":
    void sp_build_header(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *extranonce1,
                         size_t extranonce1_len, const uint8_t *extranonce2, size_t extranonce2_len,
                         const uint8_t *coinb2, size_t coinb2_len, const uint8_t *branch, size_t nbranch,
                         uint32_t version, const uint8_t *prevhash, uint32_t ntime, uint32_t nbits,
                         uint32_t nonce, uint8_t *header) nogil


# Mirrors coins.ALGO_SHA256D / coins.ALGO_SCRYPT (the extension imports nothing from the package).
cdef enum:
    ALGO_SHA256D = 0
    ALGO_SCRYPT = 1

_BACKEND_NAMES = {SP_SHA_PORTABLE: "portable", SP_SHA_SHANI: "sha-ni", SP_SHA_ARMV8: "armv8"}
_BACKEND_IDS = {name: i for i, name in _BACKEND_NAMES.items()}
# The fastest backend this CPU runs, chosen once at import.
_BEST_BACKEND = _BACKEND_NAMES[sp_sha256_autodetect()]


cdef inline bytes _as_bytes(object value, str name):
    # bytes is the contract and the fast path; other bytes-like objects are copied once rather than refused.
    if type(value) is bytes:
        return <bytes>value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


cdef inline const uint8_t *_ptr(bytes value):
    return <const uint8_t *>PyBytes_AS_STRING(value)


cdef inline bytes _digest(const uint8_t *out):
    return PyBytes_FromStringAndSize(<const char *>out, 32)


cdef inline uint32_t _u32(object value, str name) except? 0:
    # Refuse floats explicitly: Cython's own conversion would truncate 1.5 to 1 without a word.
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    cdef uint32_t result = value  # OverflowError outside 0 .. 2**32 - 1
    return result


cdef inline bytes _header80(object header):
    cdef bytes h = _as_bytes(header, "header")
    if PyBytes_GET_SIZE(h) != 80:
        raise ValueError(f"header must be 80 bytes, got {PyBytes_GET_SIZE(h)}")
    return h


cdef inline void _scrypt(const uint8_t *header, uint8_t *out) except *:
    cdef int rc
    # ~100 us of pure C: let other Python threads run meanwhile.
    with nogil:
        rc = sp_scrypt_1024_1_1(header, out)
    if rc != 0:
        raise MemoryError("scrypt scratchpad")


def sha256d(data):
    """sha256(sha256(data)), 32 bytes in internal order."""
    cdef bytes b = _as_bytes(data, "data")
    cdef uint8_t out[32]
    sp_sha256d(_ptr(b), <size_t>PyBytes_GET_SIZE(b), out)
    return _digest(out)


def _sha256(data):
    """Single sha256(data); exposed for tests against the NIST vectors."""
    cdef bytes b = _as_bytes(data, "data")
    cdef uint8_t out[32]
    sp_sha256(_ptr(b), <size_t>PyBytes_GET_SIZE(b), out)
    return _digest(out)


def sha256d_header(header):
    """sha256d of an 80-byte block header (ValueError for any other length)."""
    cdef bytes h = _header80(header)
    cdef uint8_t out[32]
    sp_sha256d_80(_ptr(h), out)
    return _digest(out)


def scrypt_1024_1_1(header):
    """Litecoin's PoW hash: scrypt(N=1024, r=1, p=1, dkLen=32) with the 80-byte header as password and salt."""
    cdef bytes h = _header80(header)
    cdef uint8_t out[32]
    _scrypt(_ptr(h), out)
    return _digest(out)


def pow_hash(int algorithm, header):
    """The proof-of-work hash of an 80-byte header: algorithm 0 = sha256d, 1 = scrypt."""
    cdef bytes h = _header80(header)
    cdef uint8_t out[32]
    if algorithm == ALGO_SHA256D:
        sp_sha256d_80(_ptr(h), out)
    elif algorithm == ALGO_SCRYPT:
        _scrypt(_ptr(h), out)
    else:
        raise ValueError(f"unknown algorithm id {algorithm}")
    return _digest(out)


def check_share(int algorithm, coinb1, extranonce1, extranonce2, coinb2, branch,
                version, prevhash, ntime, nbits, nonce):
    """The fused share check: coinbase -> merkle root -> header -> PoW hash, in one call.

    ``branch`` is the merkle branch as concatenated 32-byte hashes, ``prevhash`` 32 bytes, both internal
    order. Returns ``(header, pow_hash)``. Equal to ``chain.pow.check_share_py`` for every valid input.
    """
    if algorithm != ALGO_SHA256D and algorithm != ALGO_SCRYPT:
        raise ValueError(f"unknown algorithm id {algorithm}")
    cdef bytes cb1 = _as_bytes(coinb1, "coinb1")
    cdef bytes en1 = _as_bytes(extranonce1, "extranonce1")
    cdef bytes en2 = _as_bytes(extranonce2, "extranonce2")
    cdef bytes cb2 = _as_bytes(coinb2, "coinb2")
    cdef bytes br = _as_bytes(branch, "branch")
    cdef bytes prev = _as_bytes(prevhash, "prevhash")
    cdef Py_ssize_t nbr = PyBytes_GET_SIZE(br)
    if nbr % 32 != 0:
        raise ValueError(f"branch length must be a multiple of 32, got {nbr}")
    if PyBytes_GET_SIZE(prev) != 32:
        raise ValueError(f"prevhash must be 32 bytes, got {PyBytes_GET_SIZE(prev)}")

    cdef uint32_t v = _u32(version, "version")
    cdef uint32_t t = _u32(ntime, "ntime")
    cdef uint32_t bits = _u32(nbits, "nbits")
    cdef uint32_t n = _u32(nonce, "nonce")

    cdef uint8_t header[80]
    cdef uint8_t out[32]
    sp_build_header(_ptr(cb1), <size_t>PyBytes_GET_SIZE(cb1), _ptr(en1), <size_t>PyBytes_GET_SIZE(en1),
                    _ptr(en2), <size_t>PyBytes_GET_SIZE(en2), _ptr(cb2), <size_t>PyBytes_GET_SIZE(cb2),
                    _ptr(br), <size_t>(nbr // 32), v, _ptr(prev), t, bits, n, header)
    if algorithm == ALGO_SHA256D:
        sp_sha256d_80(header, out)
    else:
        _scrypt(header, out)
    return (PyBytes_FromStringAndSize(<const char *>header, 80), _digest(out))


def sha_backend():
    """The SHA-256 implementation in use: "sha-ni", "armv8" or "portable"."""
    return _BACKEND_NAMES[sp_sha256_current()]


def available_sha_backends():
    """Every SHA-256 implementation this CPU can run, best first."""
    return [_BACKEND_NAMES[i] for i in (SP_SHA_SHANI, SP_SHA_ARMV8, SP_SHA_PORTABLE) if sp_sha256_available(i)]


def set_sha_backend(str name):
    """Force a SHA-256 implementation (tests, benchmarks); "best" picks the fastest available one.

    Not thread-safe: switch only while no other thread is hashing.
    """
    if name == "best":
        name = _BEST_BACKEND
    backend = _BACKEND_IDS.get(name)
    if backend is None:
        raise ValueError(f"unknown sha backend {name!r}; known: {', '.join(sorted(_BACKEND_IDS))}")
    if sp_sha256_select(backend) != 0:
        raise ValueError(f"sha backend {name!r} is not available on this CPU")


include "shareset.pxi"
include "sharecore.pxi"
include "v1submit.pxi"
include "groupcommit.pxi"
include "template.pxi"
