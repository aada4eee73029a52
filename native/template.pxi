# A getblocktemplate answer's hex, for the new-block path (included by _native.pyx): its transactions' data
# and txids decoded, and the coinbase's branch over the txids, without a Python object per hash on the way.
# chain.encoding and chain.merkle hold the pure-Python references.

from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdlib cimport malloc, free


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL


cdef extern from "sha256.h":
    void sp_sha256d_64(const uint8_t *data, uint8_t *out) nogil


cdef extern from "hex.h":
    int sp_unhex(const uint8_t *data, size_t nbytes, uint8_t *out) nogil


cdef inline bint _unhex(const uint8_t *p, Py_ssize_t nbytes, uint8_t *out) noexcept nogil:
    """``nbytes`` bytes from ``2 * nbytes`` hex digits (either case, as unhexlify; no whitespace, unlike
    bytes.fromhex); False when any is not a digit."""
    return sp_unhex(p, <size_t>nbytes, out) == 0


def hex_decode_many(list hexes):
    """Each of ``hexes`` (str of hex digits, as getblocktemplate's ``data`` fields) as bytes, in a tuple: what
    ``binascii.unhexlify`` gives each. ValueError naming the index of the first entry that is not a str of an
    even number of hex digits."""
    cdef Py_ssize_t n = len(hexes)
    cdef Py_ssize_t i, length
    cdef const uint8_t *p
    cdef object item
    cdef bytes raw
    result = PyTuple_New(n)
    for i in range(n):
        item = hexes[i]
        if type(item) is not str:
            raise ValueError(f"transaction {i} is not a hex string: {type(item).__name__}")
        p = <const uint8_t *>PyUnicode_AsUTF8AndSize(item, &length)
        raw = PyBytes_FromStringAndSize(NULL, length // 2)
        if length % 2 or not _unhex(p, length // 2, <uint8_t *>PyBytes_AS_STRING(raw)):
            raise ValueError(f"transaction {i} is not valid hex")
        Py_INCREF(raw)
        PyTuple_SET_ITEM(result, i, raw)
    return result


def txids_from_display(list hexes):
    """``(txids, leaves)`` from display-order hex strings (getblocktemplate's ``txid`` fields): each as 32
    bytes in internal order (a tuple of bytes), and all of them concatenated. ValueError naming the index of
    the first entry that is not a str of 64 hex digits."""
    cdef Py_ssize_t n = len(hexes)
    cdef Py_ssize_t i, j, length
    cdef const uint8_t *p
    cdef bytes leaves = PyBytes_FromStringAndSize(NULL, n * 32)
    cdef uint8_t *out = <uint8_t *>PyBytes_AS_STRING(leaves)
    cdef uint8_t *h
    cdef object item
    for i in range(n):
        item = hexes[i]
        if type(item) is not str:
            raise ValueError(f"txid {i} is not a hex string: {item!r}")
        p = <const uint8_t *>PyUnicode_AsUTF8AndSize(item, &length)
        if length != 64:
            raise ValueError(f"txid {i} is not 64 hex digits: {item!r}")
        h = out + i * 32
        if not _unhex(p, 32, h):
            raise ValueError(f"txid {i} is not 64 hex digits: {item!r}")
        # display order is the reverse of the internal one
        for j in range(16):
            h[j], h[31 - j] = h[31 - j], h[j]
    txids = PyTuple_New(n)
    cdef bytes txid
    for i in range(n):
        txid = PyBytes_FromStringAndSize(<const char *>(out + i * 32), 32)
        Py_INCREF(txid)
        PyTuple_SET_ITEM(txids, i, txid)
    return txids, leaves


def merkle_branch(leaves):
    """The merkle branch of the leaf at index 0 (the coinbase, not given) over the other ``leaves``,
    concatenated 32-byte hashes in internal order and block order: one hash per tree level, concatenated
    (empty for no leaves). Odd levels pair their last hash with itself. Equal to
    ``b"".join(chain.merkle.merkle_branch_py(...))``."""
    cdef bytes b = _as_bytes(leaves, "leaves")
    cdef Py_ssize_t size = PyBytes_GET_SIZE(b)
    if size % 32:
        raise ValueError(f"leaves must be concatenated 32-byte hashes, got {size} bytes")
    cdef Py_ssize_t n = size // 32
    cdef Py_ssize_t m, i, depth = 0
    cdef uint8_t branch[64 * 32]  # a level per bit of the leaf count: 63 at most
    # one level at a time, in place: hash i of the next level is written over index i, after its pair
    # (indices 2i + 1 and 2i + 2 of ``rest``, the level without its first hash) was read
    cdef uint8_t *rest = <uint8_t *>malloc((n + 1) * 32)
    if rest == NULL:
        raise MemoryError("merkle branch")
    memcpy(rest, _ptr(b), size)
    with nogil:
        while n > 0:
            memcpy(branch + depth * 32, rest, 32)  # the sibling of the coinbase's path at this level
            depth += 1
            m = n - 1  # the level above pairs up rest[1:]
            if m % 2:
                memcpy(rest + (m + 1) * 32, rest + m * 32, 32)  # duplicate the last hash
                m += 1
            for i in range(m // 2):
                sp_sha256d_64(rest + 32 + i * 64, rest + i * 32)
            n = m // 2
    free(rest)
    return PyBytes_FromStringAndSize(<const char *>branch, depth * 32)
