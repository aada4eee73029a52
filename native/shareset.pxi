# Included by _native.pyx: ShareSet, the set of shares already seen on one job (the duplicate check).
#
# A share is (extranonce1, extranonce2, ntime, nonce, version): what makes its header unique. The Python path
# (tests, the reference judge) adds and tests these as tuples; the share core (sharecore.pxi) as the same
# fields packed in C, with no tuple, bytes or int objects made. Both reach one table of fixed 48-byte keys, hashed
# with Python's own keyed SipHash (the key is random per process, so miners who choose their nonces cannot
# aim collisions at it), open addressing, at most half full. A key whose extranonces do not fit (either longer
# than 16 bytes: no pool here hands those out) goes to an ordinary set beside the table.

from libc.stdlib cimport calloc, free


cdef extern from "Python.h":
    Py_hash_t _Py_HashBytes(const void *src, Py_ssize_t length)


cdef struct ShareKey:
    uint8_t en1_length
    uint8_t en2_length
    uint8_t used
    uint8_t pad
    uint32_t ntime
    uint32_t nonce
    uint32_t version
    uint8_t en1[16]
    uint8_t en2[16]


cdef inline bint _key_equal(const ShareKey *a, const ShareKey *b) noexcept nogil:
    return (a.ntime == b.ntime and a.nonce == b.nonce and a.version == b.version
            and a.en1_length == b.en1_length and a.en2_length == b.en2_length
            and memcmp(a.en1, b.en1, a.en1_length) == 0 and memcmp(a.en2, b.en2, a.en2_length) == 0)


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
        # the key's slot, or the empty one where it would go
        cdef ShareKey probe = key[0]
        probe.used = 0
        probe.pad = 0
        cdef size_t h = <size_t>_Py_HashBytes(&probe, sizeof(ShareKey))
        cdef Py_ssize_t mask = self.capacity - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & <size_t>mask)
        while self.table[i].used and not _key_equal(&self.table[i], key):
            i = (i + 1) & mask
        return i

    cdef bint has(self, const ShareKey *key) noexcept:
        return self.table[self._slot(key)].used != 0

    cdef int put(self, const ShareKey *key) except -1:
        cdef Py_ssize_t i = self._slot(key)
        if self.table[i].used:
            return 0
        self.table[i] = key[0]
        self.table[i].used = 1
        self.count += 1
        if 2 * self.count > self.capacity:
            self._grow()
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
        for i in range(old_capacity):
            if old[i].used:
                self.table[self._slot(&old[i])] = old[i]
        free(old)
        return 0

    cdef bint _pack(self, key, ShareKey *out) except -1:
        # a tuple key packed; False when it belongs in the overflow set
        if type(key) is not tuple or len(<tuple>key) != 5:
            raise TypeError("a share key is (extranonce1, extranonce2, ntime, nonce, version)")
        en1, en2, ntime, nonce, version = <tuple>key
        if type(en1) is not bytes or type(en2) is not bytes:
            raise TypeError("extranonce1 and extranonce2 must be bytes")
        if len(<bytes>en1) > 16 or len(<bytes>en2) > 16:
            return False
        memset(out, 0, sizeof(ShareKey))
        out.en1_length = <uint8_t>len(<bytes>en1)
        out.en2_length = <uint8_t>len(<bytes>en2)
        memcpy(out.en1, PyBytes_AS_STRING(en1), out.en1_length)
        memcpy(out.en2, PyBytes_AS_STRING(en2), out.en2_length)
        out.ntime = ntime  # OverflowError outside 0 .. 2**32 - 1
        out.nonce = nonce
        out.version = version
        return True

    def __contains__(self, key):
        cdef ShareKey packed
        if not self._pack(key, &packed):
            return key in self.overflow
        return self.has(&packed)

    def add(self, key):
        cdef ShareKey packed
        if not self._pack(key, &packed):
            self.overflow.add(key)
        else:
            self.put(&packed)

    def __len__(self):
        return self.count + len(self.overflow)

    def __iter__(self):
        cdef Py_ssize_t i
        keys = []
        for i in range(self.capacity):
            if self.table[i].used:
                k = &self.table[i]
                keys.append((PyBytes_FromStringAndSize(<const char *>k.en1, k.en1_length),
                             PyBytes_FromStringAndSize(<const char *>k.en2, k.en2_length),
                             k.ntime, k.nonce, k.version))
        keys.extend(self.overflow)
        return iter(keys)
