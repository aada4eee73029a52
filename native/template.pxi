# A getblocktemplate answer's hex, for the new-block path (included by _native.pyx): its transactions' data
# and txids decoded, and the coinbase's branch over the txids, without a Python object per hash on the way.
# chain.encoding and chain.merkle hold the pure-Python references.

from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdlib cimport free, malloc, realloc


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


cdef inline bint _unhex_display32(const uint8_t *p, uint8_t *out) noexcept nogil:
    """A hash's 64 display-order hex digits as its 32 bytes in internal order (the reverse); False when any is
    not a digit."""
    cdef Py_ssize_t j
    if not _unhex(p, 32, out):
        return False
    for j in range(16):
        out[j], out[31 - j] = out[31 - j], out[j]
    return True


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
    cdef Py_ssize_t i, length
    cdef const uint8_t *p
    cdef bytes leaves = PyBytes_FromStringAndSize(NULL, n * 32)
    cdef uint8_t *out = <uint8_t *>PyBytes_AS_STRING(leaves)
    cdef object item
    for i in range(n):
        item = hexes[i]
        if type(item) is not str:
            raise ValueError(f"txid {i} is not a hex string: {item!r}")
        p = <const uint8_t *>PyUnicode_AsUTF8AndSize(item, &length)
        if length != 64:
            raise ValueError(f"txid {i} is not 64 hex digits: {item!r}")
        if not _unhex_display32(p, out + i * 32):
            raise ValueError(f"txid {i} is not 64 hex digits: {item!r}")
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


# ----- a getblocktemplate answer's transactions, straight from the answer's bytes -----------------------------
#
# orjson makes a dict and three strings per transaction of a 3 MB mainnet template (4 ms here), which the
# template then decodes and drops. scan_template_transactions reads the JSON-RPC answer's bytes itself: it walks
# the answer's structure (every value checked against JSON's grammar, as a parser would), finds the array at
# result.transactions, and decodes each entry's data, txid and hash straight into bytes. Anything it does not
# take (an escape in a key, a byte over 0x7f in the array, a duplicate key it reads, an entry without data or
# txid, a txid that is not 64 hex digits, data that is not hex, a nesting deeper than 32) makes it answer None,
# and the caller parses the whole answer the ordinary way, which also reports what is wrong.

cdef extern from "string.h":
    const void *memchr(const void *s, int c, size_t n) nogil

cdef enum:
    _gbt_MAX_DEPTH = 32


cdef Py_ssize_t _gbt_string_end(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, bint *escaped,
                                bint ascii_only) noexcept nogil:
    """``p[i]`` is a string's opening quote: the index after its closing quote, or -1 (not JSON, or not taken: a
    raw control character, or with ``ascii_only`` a byte over 0x7f: inside the array, where orjson will not check
    the UTF-8). ``escaped``: whether it holds an escape."""
    cdef const uint8_t *q
    cdef Py_ssize_t j, end
    cdef uint8_t c, bad = 0
    cdef uint8_t high = 128 if ascii_only else 0  # c & high: a byte over 0x7f, when those are refused
    escaped[0] = False
    i += 1
    q = <const uint8_t *>memchr(p + i, 34, <size_t>(n - i))
    if q == NULL:
        return -1
    end = q - p
    for j in range(i, end):  # no branch per byte: vectorizes over a transaction's long hex
        c = p[j]
        bad |= (c < 32) | ((c & high) != 0) | (c == 92)
    if not bad:
        return end + 1
    # an escape somewhere (or a byte not taken): the exact way, from the start
    j = i
    while j < n:
        c = p[j]
        if c == 34:
            return j + 1
        if c < 32 or (c & high):
            return -1
        if c == 92:
            escaped[0] = True
            if j + 1 >= n:
                return -1
            c = p[j + 1]
            if c == 117:  # \uXXXX
                if j + 5 >= n or (_hexval(p[j + 2]) | _hexval(p[j + 3]) | _hexval(p[j + 4])
                                  | _hexval(p[j + 5])) < 0:
                    return -1
                j += 6
            elif c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
                j += 2
            else:
                return -1
            continue
        j += 1
    return -1


cdef Py_ssize_t _gbt_number_end(const uint8_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """A JSON number at ``i``: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; the index after it, or -1."""
    cdef Py_ssize_t start
    if i < n and p[i] == 45:
        i += 1
    if i >= n:
        return -1
    if p[i] == 48:
        i += 1
    elif 49 <= p[i] <= 57:
        while i < n and 48 <= p[i] <= 57:
            i += 1
    else:
        return -1
    if i < n and p[i] == 46:
        i += 1
        start = i
        while i < n and 48 <= p[i] <= 57:
            i += 1
        if i == start:
            return -1
    if i < n and (p[i] == 101 or p[i] == 69):
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        start = i
        while i < n and 48 <= p[i] <= 57:
            i += 1
        if i == start:
            return -1
    return i


cdef inline bint _gbt_literal(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, const char *word,
                          Py_ssize_t length) noexcept nogil:
    return i + length <= n and memcmp(p + i, word, length) == 0


cdef Py_ssize_t _gbt_value_end(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, int depth,
                               bint ascii_only) noexcept nogil:
    """The index after the JSON value at ``i`` (whitespace skipped before it), or -1."""
    cdef bint escaped
    cdef uint8_t c
    i = _skip_ws(p, i, n)
    if i >= n or depth > _gbt_MAX_DEPTH:
        return -1
    c = p[i]
    if c == 34:
        return _gbt_string_end(p, i, n, &escaped, ascii_only)
    if c == 123 or c == 91:  # { or [
        i = _skip_ws(p, i + 1, n)
        if i < n and p[i] == c + 2:  # {} or []
            return i + 1
        while True:
            if c == 123:  # a member: a key, a colon
                if i >= n or p[i] != 34:
                    return -1
                i = _gbt_string_end(p, i, n, &escaped, ascii_only)
                if i < 0:
                    return -1
                i = _skip_ws(p, i, n)
                if i >= n or p[i] != 58:
                    return -1
                i += 1
            i = _gbt_value_end(p, i, n, depth + 1, ascii_only)
            if i < 0:
                return -1
            i = _skip_ws(p, i, n)
            if i >= n:
                return -1
            if p[i] == 44:
                i = _skip_ws(p, i + 1, n)
                continue
            if p[i] == c + 2:
                return i + 1
            return -1
    if c == 116:
        return i + 4 if _gbt_literal(p, i, n, "true", 4) else -1
    if c == 102:
        return i + 5 if _gbt_literal(p, i, n, "false", 5) else -1
    if c == 110:
        return i + 4 if _gbt_literal(p, i, n, "null", 4) else -1
    return _gbt_number_end(p, i, n)


ctypedef struct _gbt_Entry:
    Py_ssize_t data, data_len, txid, txid_len, hash, hash_len  # offsets of the strings' contents; -1: absent


cdef inline bint _gbt_key_is(const uint8_t *p, Py_ssize_t start, Py_ssize_t end, const char *word,
                         Py_ssize_t length) noexcept nogil:
    """Whether the key whose quotes are at ``start`` and ``end - 1`` is ``word``."""
    return end - start - 2 == length and memcmp(p + start + 1, word, length) == 0


cdef Py_ssize_t _gbt_entries(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, _gbt_Entry **entries,
                         Py_ssize_t *count) noexcept nogil:
    """The transactions array at ``i`` (its ``[``): each entry's data, txid and hash located; the index after
    the array, or -1 (see above: not taken)."""
    cdef Py_ssize_t capacity = 0, key, end, value_end
    cdef _gbt_Entry *grown
    cdef _gbt_Entry *e
    cdef bint escaped
    count[0] = 0
    i = _skip_ws(p, i + 1, n)
    if i < n and p[i] == 93:
        return i + 1
    while True:
        if i >= n or p[i] != 123:
            return -1
        if count[0] == capacity:
            capacity = capacity * 2 if capacity else 4096
            grown = <_gbt_Entry *>realloc(entries[0], capacity * sizeof(_gbt_Entry))
            if grown == NULL:
                return -1
            entries[0] = grown
        e = entries[0] + count[0]
        e.data = e.txid = e.hash = -1
        e.data_len = e.txid_len = e.hash_len = 0
        count[0] += 1
        i = _skip_ws(p, i + 1, n)
        if i < n and p[i] == 125:  # {}: no data, not taken
            return -1
        while True:
            if i >= n or p[i] != 34:
                return -1
            key = i
            end = _gbt_string_end(p, i, n, &escaped, True)
            if end < 0 or escaped:
                return -1
            i = _skip_ws(p, end, n)
            if i >= n or p[i] != 58:
                return -1
            i = _skip_ws(p, i + 1, n)
            if i >= n:
                return -1
            if (_gbt_key_is(p, key, end, "data", 4) or _gbt_key_is(p, key, end, "txid", 4)
                    or _gbt_key_is(p, key, end, "hash", 4)):
                if p[i] != 34:
                    return -1
                value_end = _gbt_string_end(p, i, n, &escaped, True)
                if value_end < 0 or escaped:
                    return -1
                if p[key + 1] == 100:  # data
                    if e.data >= 0:
                        return -1
                    e.data, e.data_len = i + 1, value_end - i - 2
                elif p[key + 1] == 116:  # txid
                    if e.txid >= 0:
                        return -1
                    e.txid, e.txid_len = i + 1, value_end - i - 2
                else:
                    if e.hash >= 0:
                        return -1
                    e.hash, e.hash_len = i + 1, value_end - i - 2
                i = value_end
            else:
                i = _gbt_value_end(p, i, n, 3, True)
                if i < 0:
                    return -1
            i = _skip_ws(p, i, n)
            if i >= n:
                return -1
            if p[i] == 44:
                i = _skip_ws(p, i + 1, n)
                continue
            if p[i] == 125:
                i += 1
                break
            return -1
        if e.data < 0 or e.txid < 0 or e.txid_len != 64 or (e.hash >= 0 and e.hash_len != 64) or e.data_len % 2:
            return -1
        i = _skip_ws(p, i, n)
        if i >= n:
            return -1
        if p[i] == 44:
            i = _skip_ws(p, i + 1, n)
            continue
        if p[i] == 93:
            return i + 1
        return -1


cdef Py_ssize_t _gbt_members(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, int depth, Py_ssize_t *start,
                         Py_ssize_t *stop, _gbt_Entry **entries, Py_ssize_t *count) noexcept nogil:
    """The object at ``i`` (its ``{``): the answer (depth 1), whose ``result`` object (depth 2) holds the
    transactions array; its span goes to ``start``/``stop``. The index after the object, or -1."""
    cdef Py_ssize_t key, end
    cdef bint escaped
    cdef bint seen = False
    i = _skip_ws(p, i + 1, n)
    if i < n and p[i] == 125:
        return i + 1
    while True:
        if i >= n or p[i] != 34:
            return -1
        key = i
        end = _gbt_string_end(p, i, n, &escaped, False)
        if end < 0 or escaped:  # a key with an escape could spell result or transactions: not taken
            return -1
        i = _skip_ws(p, end, n)
        if i >= n or p[i] != 58:
            return -1
        i = _skip_ws(p, i + 1, n)
        if i >= n:
            return -1
        if depth == 1 and _gbt_key_is(p, key, end, "result", 6) and p[i] == 123:
            if seen:
                return -1
            seen = True
            i = _gbt_members(p, i, n, 2, start, stop, entries, count)
        elif depth == 2 and _gbt_key_is(p, key, end, "transactions", 12) and p[i] == 91:
            if start[0] >= 0:
                return -1
            start[0] = i
            i = _gbt_entries(p, i, n, entries, count)
            stop[0] = i
        elif depth == 1 and _gbt_key_is(p, key, end, "result", 6):
            return -1  # a result that is not an object: nothing to scan
        else:
            i = _gbt_value_end(p, i, n, depth, False)  # outside the array: orjson checks it again
        if i < 0:
            return -1
        i = _skip_ws(p, i, n)
        if i >= n:
            return -1
        if p[i] == 44:
            i = _skip_ws(p, i + 1, n)
            continue
        if p[i] == 125:
            return i + 1
        return -1


def scan_template_transactions(bytes body):
    """``(start, stop, data, txids, leaves, wtxids)`` from a getblocktemplate JSON-RPC answer's bytes: the span
    of the ``result.transactions`` array in ``body`` (``body[:start] + b"[]" + body[stop:]`` is the rest of the
    answer), each transaction's ``data`` as bytes, each ``txid`` as 32 bytes in internal order (a tuple) and all
    of them concatenated, and each ``hash`` (the wtxid) likewise, or None where an entry has none. None for an
    answer it does not take (see above): parse that one the ordinary way."""
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
    cdef Py_ssize_t i, start = -1, stop = -1, count = 0, k
    cdef _gbt_Entry *entries = NULL
    cdef _gbt_Entry *e
    cdef bytes raw
    try:
        with nogil:
            i = _skip_ws(p, 0, n)
            if i < n and p[i] == 123:
                i = _gbt_members(p, i, n, 1, &start, &stop, &entries, &count)
                if i >= 0:
                    i = _skip_ws(p, i, n)
        if i != n or start < 0 or stop < 0:
            return None
        data = PyTuple_New(count)
        wtxids = PyTuple_New(count)
        leaves = PyBytes_FromStringAndSize(NULL, count * 32)
        for k in range(count):
            e = entries + k
            raw = PyBytes_FromStringAndSize(NULL, e.data_len // 2)
            if not _unhex(p + e.data, e.data_len // 2, <uint8_t *>PyBytes_AS_STRING(raw)):
                return None
            Py_INCREF(raw)
            PyTuple_SET_ITEM(data, k, raw)
            if not _unhex_display32(p + e.txid, <uint8_t *>PyBytes_AS_STRING(leaves) + k * 32):
                return None
            if e.hash < 0:
                Py_INCREF(None)
                PyTuple_SET_ITEM(wtxids, k, None)
            else:
                raw = PyBytes_FromStringAndSize(NULL, 32)
                if not _unhex_display32(p + e.hash, <uint8_t *>PyBytes_AS_STRING(raw)):
                    return None
                Py_INCREF(raw)
                PyTuple_SET_ITEM(wtxids, k, raw)
        txids = PyTuple_New(count)
        for k in range(count):
            raw = PyBytes_FromStringAndSize(<const char *>PyBytes_AS_STRING(leaves) + k * 32, 32)
            Py_INCREF(raw)
            PyTuple_SET_ITEM(txids, k, raw)
        return start, stop, data, txids, leaves, wtxids
    finally:
        free(entries)
