# Included by _native.pyx: ShareSet, the set of shares already seen on one job (the duplicate check).
#
# A share is (extranonce1, extranonce2, ntime, nonce, version): what makes its header unique. The Python path
# (tests, the reference judge) adds and tests these as tuples; the share core (sharecore.pxi) as the same
# fields packed in C, with no tuple, bytes or int objects made. Both reach one table of fixed 32-byte keys (the
# two extranonces side by side in 16 bytes: the pool's are 4 + 2..8), hashed with Python's own keyed SipHash
# (the key is random per process, so miners who choose their nonces cannot aim collisions at it), open
# addressing, at most two thirds full: 48-96 bytes a share (it was 96-192 with 48-byte keys at most half full,
# 10-20 MB for the 100,000 shares one job takes at 5,000/s for 20 s). A key whose extranonces do not fit
# together in 16 bytes goes to an ordinary set beside the table.

from libc.stdlib cimport calloc, free


cdef extern from "Python.h":
    Py_hash_t _Py_HashBytes(const void *src, Py_ssize_t length)


DEF KEY_EXTRANONCES = 16


cdef struct ShareKey:
    uint32_t ntime
    uint32_t nonce
    uint32_t version
    uint8_t en1_length
    uint8_t en2_length
    uint8_t used
    uint8_t pad
    uint8_t en[KEY_EXTRANONCES]  # extranonce1 then extranonce2, zeros after


cdef inline bint _key_equal(const ShareKey *a, const ShareKey *b) noexcept nogil:
    return (a.ntime == b.ntime and a.nonce == b.nonce and a.version == b.version
            and a.en1_length == b.en1_length and a.en2_length == b.en2_length
            and memcmp(a.en, b.en, a.en1_length + a.en2_length) == 0)


cdef inline bint _key_fill(ShareKey *key, const uint8_t *en1, Py_ssize_t en1_length, const uint8_t *en2,
                           Py_ssize_t en2_length, uint32_t ntime, uint32_t nonce, uint32_t version) noexcept nogil:
    # False when the extranonces do not fit the key together (the overflow set's)
    if en1_length + en2_length > KEY_EXTRANONCES:
        return False
    memset(key, 0, sizeof(ShareKey))
    key.en1_length = <uint8_t>en1_length
    key.en2_length = <uint8_t>en2_length
    memcpy(key.en, en1, <size_t>en1_length)
    memcpy(key.en + en1_length, en2, <size_t>en2_length)
    key.ntime = ntime
    key.nonce = nonce
    key.version = version
    return True


cdef class ShareSet:
    """The shares seen on one job: ``key in s``, ``s.add(key)``, ``len(s)`` and iteration, with keys as
    ``(extranonce1, extranonce2, ntime, nonce, version)`` tuples (bytes, bytes, int, int, int)."""

    cdef ShareKey *table
    cdef Py_ssize_t capacity
    cdef Py_ssize_t count
    cdef set overflow

    def __cinit__(self):
        self.capacity = 64
        self.count = 0
        self.table = <ShareKey *>calloc(self.capacity, sizeof(ShareKey))
        if self.table == NULL:
            raise MemoryError("ShareSet")
        self.overflow = set()

    def __dealloc__(self):
        free(self.table)

    cdef Py_ssize_t _slot(self, const ShareKey *key) noexcept:
        # the key's slot, or the empty one where it would go (``key`` has used = 0: it is hashed whole)
        cdef size_t h = <size_t>_Py_HashBytes(key, sizeof(ShareKey))
        cdef Py_ssize_t mask = self.capacity - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & <size_t>mask)
        while self.table[i].used and not _key_equal(&self.table[i], key):
            i = (i + 1) & mask
        return i

    cdef int _insert(self, const ShareKey *key) except -1:
        # 1 when ``key`` is in the table already; else it is added and 0
        cdef Py_ssize_t i = self._slot(key)
        if self.table[i].used:
            return 1
        self.table[i] = key[0]
        self.table[i].used = 1
        self.count += 1
        if 3 * self.count > 2 * self.capacity:
            self._grow()
        return 0

    cdef int seen_or_add(self, const uint8_t *en1, Py_ssize_t en1_length, const uint8_t *en2,
                         Py_ssize_t en2_length, uint32_t ntime, uint32_t nonce, uint32_t version) except -1:
        """The share core's duplicate check: 1 when this share was seen on the job; else it is added and 0."""
        cdef ShareKey key
        if _key_fill(&key, en1, en1_length, en2, en2_length, ntime, nonce, version):
            return self._insert(&key)
        long_key = (PyBytes_FromStringAndSize(<const char *>en1, en1_length),
                    PyBytes_FromStringAndSize(<const char *>en2, en2_length), ntime, nonce, version)
        if long_key in self.overflow:
            return 1
        self.overflow.add(long_key)
        return 0

    cdef int _grow(self) except -1:
        cdef ShareKey *old = self.table
        cdef Py_ssize_t old_capacity = self.capacity
        cdef ShareKey *table = <ShareKey *>calloc(2 * old_capacity, sizeof(ShareKey))
        if table == NULL:
            raise MemoryError("ShareSet")
        self.table = table
        self.capacity = 2 * old_capacity
        cdef Py_ssize_t i
        cdef ShareKey key
        for i in range(old_capacity):
            if old[i].used:
                key = old[i]
                key.used = 0
                self.table[self._slot(&key)] = old[i]
        free(old)
        return 0

    cdef bint _pack(self, key, ShareKey *out) except -1:
        # a tuple key packed; False when it belongs in the overflow set
        if type(key) is not tuple or len(<tuple>key) != 5:
            raise TypeError("a share key is (extranonce1, extranonce2, ntime, nonce, version)")
        en1, en2, ntime, nonce, version = <tuple>key
        if type(en1) is not bytes or type(en2) is not bytes:
            raise TypeError("extranonce1 and extranonce2 must be bytes")
        cdef uint32_t t = ntime, n = nonce, v = version  # OverflowError outside 0 .. 2**32 - 1
        return _key_fill(out, <const uint8_t *>PyBytes_AS_STRING(en1), len(<bytes>en1),
                         <const uint8_t *>PyBytes_AS_STRING(en2), len(<bytes>en2), t, n, v)

    def __contains__(self, key):
        cdef ShareKey packed
        if not self._pack(key, &packed):
            return key in self.overflow
        return self.table[self._slot(&packed)].used != 0

    def add(self, key):
        cdef ShareKey packed
        if not self._pack(key, &packed):
            self.overflow.add(key)
        else:
            self._insert(&packed)

    def __len__(self):
        return self.count + len(self.overflow)

    def __iter__(self):
        cdef Py_ssize_t i
        keys = []
        for i in range(self.capacity):
            if self.table[i].used:
                k = &self.table[i]
                keys.append((PyBytes_FromStringAndSize(<const char *>k.en, k.en1_length),
                             PyBytes_FromStringAndSize(<const char *>k.en + k.en1_length, k.en2_length),
                             k.ntime, k.nonce, k.version))
        keys.extend(self.overflow)
        return iter(keys)
