# Included by _native.pyx: Stratum V1's mining.submit line, scanned in C and handed to the share core.
#
# ``V1Submit(send)(core, line, now)`` scans ``line`` for the plain form miners send: an object with "id" (an
# integer of at most 18 digits, a string or null), "method" and "params" (5 or 6 strings), any key order and
# JSON whitespace, strings of printable ASCII without escapes. It decodes the hex fields, has the core judge
# the share (ShareCore._judge: the same judge every submit reaches) and returns ``[Send(answer), record]``.
# Any other line it leaves alone (None): the V1 session parses it with the general JSON parser and hands
# the params to the same core (ShareCore.judge). It judges nothing itself.

# id kinds
cdef enum:
    ID_INT = 1
    ID_STR = 2
    ID_NULL = 3

# the longest id the scanner takes (digits, or characters of a string id)
DEF MAX_ID = 40


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t length


cdef struct Parsed:
    int id_kind
    Span id
    int nparams
    Span params[6]


cdef inline Py_ssize_t _skip_ws(const uint8_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and _ws(p[i]):
        i += 1
    return i


cdef inline Py_ssize_t _string(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, Span *out) noexcept nogil:
    # p[i] is the opening quote; a string of printable ASCII without escapes, else -1; returns past the quote
    cdef Py_ssize_t start = i + 1
    i = start
    while i < n:
        if p[i] == 34:  # "
            out.start = start
            out.length = i - start
            return i + 1
        if p[i] < 32 or p[i] > 126 or p[i] == 92:  # control, non-ASCII, backslash
            return -1
        i += 1
    return -1


cdef inline Py_ssize_t _integer(const uint8_t *p, Py_ssize_t i, Py_ssize_t n, Span *out) noexcept nogil:
    # -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a fraction or an exponent; else -1
    cdef Py_ssize_t start = i
    if i < n and p[i] == 45:  # -
        i += 1
    cdef Py_ssize_t digits = i
    if i >= n or p[i] < 48 or p[i] > 57:
        return -1
    if p[i] == 48:
        i += 1
        if p[start] == 45:
            return -1  # "-0": its value prints as 0
    else:
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if i - digits > 18 or (i < n and (p[i] == 46 or p[i] == 101 or p[i] == 69)):
        return -1
    out.start = start
    out.length = i - start
    return i


cdef inline bint _key(const uint8_t *p, Span key, const char *name, Py_ssize_t length) noexcept nogil:
    return key.length == length and memcmp(p + key.start, name, <size_t>length) == 0


cdef bint _parse(const uint8_t *p, Py_ssize_t n, Parsed *out) noexcept nogil:
    """The plain form of a mining.submit line (see the top of this file); False for anything else."""
    cdef Py_ssize_t i = _skip_ws(p, 0, n)
    cdef Span key, value
    cdef bint seen_id = False, seen_method = False, seen_params = False
    if i >= n or p[i] != 123:  # {
        return False
    i = _skip_ws(p, i + 1, n)
    while True:
        if i >= n or p[i] != 34:
            return False
        i = _string(p, i, n, &key)
        if i < 0:
            return False
        i = _skip_ws(p, i, n)
        if i >= n or p[i] != 58:  # :
            return False
        i = _skip_ws(p, i + 1, n)
        if i >= n:
            return False
        if _key(p, key, b"id", 2):
            if seen_id:
                return False
            seen_id = True
            if p[i] == 34:
                i = _string(p, i, n, &out.id)
                out.id_kind = ID_STR
            elif p[i] == 110:  # null
                if n - i < 4 or memcmp(p + i, b"null", 4) != 0:
                    return False
                i += 4
                out.id_kind = ID_NULL
            else:
                i = _integer(p, i, n, &out.id)
                out.id_kind = ID_INT
            if i < 0 or out.id.length > MAX_ID:
                return False
        elif _key(p, key, b"method", 6):
            if seen_method or p[i] != 34:
                return False
            seen_method = True
            i = _string(p, i, n, &value)
            if i < 0 or not _key(p, value, b"mining.submit", 13):
                return False
        elif _key(p, key, b"params", 6):
            if seen_params or p[i] != 91:  # [
                return False
            seen_params = True
            out.nparams = 0
            i = _skip_ws(p, i + 1, n)
            while True:
                if out.nparams == 6 or i >= n or p[i] != 34:
                    return False
                i = _string(p, i, n, &out.params[out.nparams])
                if i < 0:
                    return False
                out.nparams += 1
                i = _skip_ws(p, i, n)
                if i < n and p[i] == 44:  # ,
                    i = _skip_ws(p, i + 1, n)
                    continue
                if i < n and p[i] == 93:  # ]
                    i += 1
                    break
                return False
        else:
            return False  # another key: the general parser reads it
        i = _skip_ws(p, i, n)
        if i < n and p[i] == 44:
            i = _skip_ws(p, i + 1, n)
            continue
        if i < n and p[i] == 125:  # }
            i = _skip_ws(p, i + 1, n)
            break
        return False
    return i == n and seen_id and seen_method and seen_params and out.nparams >= 5


cdef class V1Submit:
    """The V1 adapter's C half for submit lines (see the top of native/v1submit.pxi): made once with the
    ``Send`` action class."""

    cdef object send

    def __init__(self, send):
        self.send = send

    def __call__(self, ShareCore core, bytes line, now):
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(line)
        cdef Parsed parsed
        memset(&parsed, 0, sizeof(Parsed))
        if not _parse(p, PyBytes_GET_SIZE(line), &parsed):
            return None
        cdef Span w = parsed.params[0]
        cdef Span jb = parsed.params[1]
        cdef Span field
        cdef Submit s
        memset(&s, 0, sizeof(Submit))
        field = parsed.params[2]
        s.en2_got = field.length
        s.en2_ok = core._extranonce2(p + field.start, field.length, &s)
        field = parsed.params[3]
        s.ntime_ok = _u32_hex(p + field.start, field.length, &s.ntime)
        field = parsed.params[4]
        s.nonce_ok = _u32_hex(p + field.start, field.length, &s.nonce)
        if parsed.nparams == 6:
            field = parsed.params[5]
            s.version_state = 1 if _u32_hex(p + field.start, field.length, &s.version_bits) else -1
        record = core._judge(jb.length <= core.rules.max_job_id, p + w.start, w.length, p + jb.start, jb.length,
                             &s, now)
        send = self.send.__new__(self.send)
        if type(record) is core.rules.accepted_cls:
            send.data = _answer(p, &parsed)
        else:
            send.data = b'{"id":%s,"result":null,"error":[%d,"%s",null]}\n' % (
                _id_text(p, &parsed), record.code, (<str>record.message).encode("ascii"))
        return [send, record]


cdef Py_ssize_t _put_id(char *buf, const uint8_t *p, Parsed *parsed) noexcept:
    # the id as the miner wrote it, into buf (MAX_ID + 2 bytes at most): its plain form prints as it reads,
    # which is what orjson writes for its value; returns the length
    if parsed.id_kind == ID_NULL:
        memcpy(buf, b"null", 4)
        return 4
    if parsed.id_kind == ID_STR:
        buf[0] = 34
        memcpy(buf + 1, p + parsed.id.start, <size_t>parsed.id.length)
        buf[parsed.id.length + 1] = 34
        return parsed.id.length + 2
    memcpy(buf, p + parsed.id.start, <size_t>parsed.id.length)
    return parsed.id.length


cdef bytes _id_text(const uint8_t *p, Parsed *parsed):
    cdef char buf[MAX_ID + 2]
    return PyBytes_FromStringAndSize(buf, _put_id(buf, p, parsed))


cdef const char *_TAIL = b',"result":true,"error":null}\n'
cdef size_t _TAIL_LENGTH = strlen(_TAIL)


cdef bytes _answer(const uint8_t *p, Parsed *parsed):
    # messages.encode_true's bytes
    cdef char buf[128]
    memcpy(buf, b'{"id":', 6)
    cdef Py_ssize_t n = 6 + _put_id(buf + 6, p, parsed)
    memcpy(buf + n, _TAIL, _TAIL_LENGTH)
    return PyBytes_FromStringAndSize(buf, n + <Py_ssize_t>_TAIL_LENGTH)
