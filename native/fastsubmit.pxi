# Included by _native.pyx: the share path's fast lane, a native twin of Session._submit for the common case.
#
# ``FastSubmit.submit(session, line, now)`` judges one ``mining.submit`` line for a
# ``stratum_pool.protocol.session.Session``. When the share is accepted and is not a block it records it
# exactly as the Python path would (rate-limit tokens, the job's duplicate set, best difficulties, the vardiff
# share count) and returns the same actions: ``[Send(answer), ShareAccepted(...)]``; a stale, duplicate or
# low-difficulty share of an authorized worker it answers as the Python path does too:
# ``[Send(error), ShareRejected(...)]``. For every other line (not a submit in the plain form miners send,
# any other check failing, a block, a vardiff retarget due) it returns None having changed nothing but the
# validator's caches (the job's context, the share target of a difficulty: filled where check() fills them),
# and the Python path judges the line: it is the reference, and the fast lane only ever agrees with it. A twin-session property test
# (tests/test_fastsubmit.py) holds the two equal, action for action and state for state.
#
# What it saves is the interpreter and the object traffic, which on a busy pool (the kernel's network path
# running on the same core between two submits) cost far more than in a hot loop:
#   - the line is scanned in C (no dict, list or str objects), accepting only the plain form: an object with
#     "id" (an integer of at most 18 digits, a string or null), "method" and "params" (5 or 6 strings), any
#     key order and JSON whitespace, strings of printable ASCII without escapes; anything else is declined;
#   - what stays the same between a session's shares (its config's numbers, its objects, its last worker
#     name, its last job with that job's fields and context) is kept in a per-session ``_LaneCache`` made on
#     first use, checked for identity on every share (a reload that replaces the config or a new job under an
#     id is seen at once), so a share reads a handful of Python attributes instead of seventy.
# The session's state itself stays in its Python objects: both paths read and write the same truth.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.string cimport memcmp, memcpy, memset, strlen


cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char *data, size_t n, int little_endian, int is_signed)

# id kinds
cdef enum:
    ID_INT = 1
    ID_STR = 2
    ID_NULL = 3

# the longest id kept on the lane (digits, or characters of a string id)
DEF MAX_ID = 40


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t length


cdef struct Parsed:
    int id_kind
    Span id
    int nparams
    Span params[6]


cdef inline bint _ws(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


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
            return False  # another key: the Python path reads it
        i = _skip_ws(p, i, n)
        if i < n and p[i] == 44:
            i = _skip_ws(p, i + 1, n)
            continue
        if i < n and p[i] == 125:  # }
            i = _skip_ws(p, i + 1, n)
            break
        return False
    return i == n and seen_id and seen_method and seen_params and out.nparams >= 5


cdef inline int _hexval(uint8_t c) noexcept nogil:
    if c >= 48 and c <= 57:
        return c - 48
    if c >= 97 and c <= 102:
        return c - 87
    if c >= 65 and c <= 70:
        return c - 55
    return -1


cdef inline bint _u32_hex(const uint8_t *p, Span s, uint32_t *out) noexcept nogil:
    # exactly 8 hex digits, as validate._parse_hex_u32
    if s.length != 8:
        return False
    cdef uint32_t value = 0
    cdef int digit
    cdef int i
    for i in range(8):
        digit = _hexval(p[s.start + i])
        if digit < 0:
            return False
        value = (value << 4) | <uint32_t>digit
    out[0] = value
    return True


cdef inline bint _hex_bytes(const uint8_t *p, Span s, uint8_t *out, Py_ssize_t size) noexcept nogil:
    # exactly 2 * size hex digits, as validate._from_hex after the session's length check
    if s.length != 2 * size:
        return False
    cdef int hi, lo
    cdef Py_ssize_t i
    for i in range(size):
        hi = _hexval(p[s.start + 2 * i])
        lo = _hexval(p[s.start + 2 * i + 1])
        if hi < 0 or lo < 0:
            return False
        out[i] = <uint8_t>((hi << 4) | lo)
    return True


cdef inline bint _same(const uint8_t *p, Span s, bytes raw) noexcept:
    return s.length == PyBytes_GET_SIZE(raw) and memcmp(p + s.start, PyBytes_AS_STRING(raw), <size_t>s.length) == 0


cdef class _JobCache:
    """One job as a session's shares use it: its fields, its validator context, and the chain tip it was last
    found current against."""

    cdef bytes job_id_raw
    cdef object job_id
    cdef object job
    cdef object ctx
    cdef ShareSet seen
    cdef object template
    cdef object tip  # the work source's template (JobManager) it was last not stale against
    cdef object payout_key
    cdef bytes coinb1, coinb2, branch, prevhash
    cdef uint32_t version, nbits
    cdef long long min_ntime
    cdef int algorithm
    cdef object net_target
    cdef object height


cdef class _LaneCache:
    """What stays the same between one session's shares (see the top of this file)."""

    cdef object config
    cdef double rate, burst
    cdef Py_ssize_t en2_size
    cdef object work
    cdef bint job_manager
    cdef object validator
    cdef object vardiff
    cdef object vconfig
    cdef double retarget_interval
    cdef object window
    cdef object workers
    cdef object job_difficulty
    cdef object best_by_worker
    cdef bytes extranonce1
    cdef object session_id
    cdef bytes worker_raw
    cdef object worker
    cdef object address
    cdef _JobCache job

    def forget_job(self):
        """Drop the cached job (Session.push_job calls this on a new block): the cache must not keep an old
        template alive in a session that stops submitting."""
        self.job = None

    @property
    def job_id(self):
        """The cached job's id, or None."""
        return None if self.job is None else self.job.job_id


cdef class FastSubmit:
    """The share path's fast lane (see the comment at the top of native/fastsubmit.pxi).

    Made once with what it builds its answer from: the ``Send``, ``ShareAccepted`` and ``ShareRejected`` action
    classes, the
    longest job id a submit may name, and ``JobManager``: a session working for one is looked up in its
    ``_recent`` jobs and judged stale against its ``template`` directly (what its ``get_job`` and ``is_stale``
    do), any other work source through those two methods.
    """

    cdef object send
    cdef object accepted
    cdef object rejected
    cdef Py_ssize_t max_job_id
    cdef object job_manager
    cdef object clean_name
    cdef tuple stale, duplicate, low
    cdef object low_message

    def __init__(self, send, accepted, rejected, Py_ssize_t max_job_id, job_manager, clean_name,
                 tuple stale, tuple duplicate, tuple low, low_message):
        self.send = send
        self.accepted = accepted
        self.rejected = rejected
        self.max_job_id = max_job_id
        self.job_manager = job_manager
        self.clean_name = clean_name
        self.stale = stale
        self.duplicate = duplicate
        self.low = low
        self.low_message = low_message

    cdef list _rejected(self, session, _LaneCache c, const uint8_t *p, Parsed *parsed, double tokens, str job_id,
                        int code, str reason, str text, now_obj):
        # Session._reject for a stale, duplicate or low-difficulty share of an authorized worker, after
        # Session._submit's token (the only state those change besides the validator's, done by the caller)
        if c.rate > 0:
            session._tokens_at = now_obj
            session._tokens = tokens - 1.0
        send = self.send.__new__(self.send)
        send.data = b'{"id":%s,"result":null,"error":[%d,"%s",null]}\n' % (_id_text(p, parsed), code,
                                                                             text.encode("ascii"))
        rejected = self.rejected.__new__(self.rejected)
        rejected.session_id = c.session_id
        rejected.worker = c.worker
        rejected.job_id = self.clean_name(job_id, self.max_job_id)
        rejected.code = code
        rejected.reason = reason
        rejected.time = now_obj
        return [send, rejected]

    cdef _LaneCache _cache(self, session):
        cdef _LaneCache c = _LaneCache.__new__(_LaneCache)
        config = session.config
        c.config = config
        c.rate = config.submits_per_second
        c.burst = <double>config.submit_burst
        c.en2_size = config.extranonce2_size
        c.work = session.work
        c.job_manager = type(c.work) is self.job_manager
        c.validator = session.validator
        c.vardiff = session.vardiff
        c.vconfig = c.vardiff.config
        c.retarget_interval = c.vconfig.retarget_interval
        c.window = c.vconfig.window
        c.workers = session.workers
        c.job_difficulty = session._job_difficulty
        c.best_by_worker = session.best_by_worker
        extranonce1 = session.extranonce1
        if type(extranonce1) is not bytes or len(<bytes>extranonce1) > 16 or type(c.workers) is not dict:
            return None
        c.extranonce1 = <bytes>extranonce1
        c.session_id = session.session_id
        session._lane = c
        return c

    cdef _JobCache _job(self, _LaneCache c, job, str job_id, bytes raw):
        # job is the work source's current object for job_id, not stale, paying this session
        validator = c.validator
        ctx = validator._contexts.get(job_id)
        if ctx is None or ctx.job is not job:
            ctx = validator.context(job)
        template = job.template
        coinb1, coinb2, branch, prevhash = job.coinb1, job.coinb2, job.branch, template.prevhash
        if not (type(coinb1) is bytes and type(coinb2) is bytes and type(branch) is bytes
                and type(prevhash) is bytes and len(<bytes>prevhash) == 32 and len(<bytes>branch) % 32 == 0):
            return None
        version, nbits, algorithm = template.version, template.nbits, ctx.algorithm
        if not (0 <= version <= 0xFFFFFFFF and 0 <= nbits <= 0xFFFFFFFF
                and (algorithm == ALGO_SHA256D or algorithm == ALGO_SCRYPT)):
            return None
        if type(ctx.seen) is not ShareSet:
            return None
        cdef _JobCache j = _JobCache.__new__(_JobCache)
        j.job_id_raw = raw
        j.job_id = job_id
        j.job = job
        j.ctx = ctx
        j.seen = ctx.seen
        j.template = template
        j.tip = c.work.template if c.job_manager else None
        j.payout_key = job.payout_key
        j.coinb1, j.coinb2, j.branch, j.prevhash = coinb1, coinb2, branch, prevhash
        j.version, j.nbits = version, nbits
        j.min_ntime = ctx.min_ntime
        j.algorithm = algorithm
        j.net_target = ctx.target
        j.height = template.height
        c.job = j
        return j

    def submit(self, session, bytes line, now_obj):
        """The actions for ``line`` when it is an accepted share that is not a block, else None (nothing
        changed but the validator's caches: the Python path judges it)."""
        cdef double now = now_obj
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(line)
        cdef Parsed parsed
        memset(&parsed, 0, sizeof(Parsed))
        if not _parse(p, PyBytes_GET_SIZE(line), &parsed):
            return None
        cdef Span worker_span = parsed.params[0]
        cdef Span job_span = parsed.params[1]
        if job_span.length > self.max_job_id:  # ASCII: bytes are characters
            return None

        # ----- the session: its cache (made on first use, checked for identity), rate limit, subscribed, worker
        cdef _LaneCache c = session._lane
        config = session.config
        if c is None or c.config is not config:
            c = self._cache(session)
            if c is None:
                return None
        cdef double tokens = 0.0
        if c.rate > 0:
            tokens = session._tokens + max(0.0, now - <double>session._tokens_at) * c.rate
            if c.burst < tokens:
                tokens = c.burst
            if tokens < 1.0:
                return None
        if not session.subscribed:
            return None
        if c.worker_raw is None or not _same(p, worker_span, c.worker_raw):
            # workers are only ever added, each to the session's one address: a name found stays valid
            worker = PyUnicode_DecodeASCII(<const char *>p + worker_span.start, worker_span.length, NULL)
            address = (<dict>c.workers).get(worker)
            if address is None:
                return None
            c.worker_raw = PyBytes_FromStringAndSize(<const char *>p + worker_span.start, worker_span.length)
            c.worker = worker
            c.address = address

        # ----- the job: the work source's current object for the id, not stale, paying this session
        cdef _JobCache j = c.job
        cdef PyObject *found
        work = c.work
        if j is not None and _same(p, job_span, j.job_id_raw):
            job_id = j.job_id
        else:
            j = None
            job_id = PyUnicode_DecodeASCII(<const char *>p + job_span.start, job_span.length, NULL)
        if c.job_manager:
            found = PyDict_GetItem(work._recent, job_id)  # JobManager.get_job
            if found == NULL:
                return None
            job = <object>found
        else:
            job = work.get_job(job_id)
            if job is None:
                return None
        if j is not None and (j.job is not job or c.validator._contexts.get(job_id) is not j.ctx):
            j = None
        payout_key = job.payout_key if j is None else j.payout_key
        if not (payout_key == "" or payout_key == session._address):
            return None  # another address's coinbase: "unknown job", from the Python path
        cdef bint stale
        if c.job_manager:
            tip = work.template  # JobManager.is_stale
            if j is not None and j.tip is tip:
                stale = False
            else:
                stale = tip is None or job.template.prevhash != tip.prevhash
                if not stale and j is not None:
                    j.tip = tip
        else:
            stale = work.is_stale(job)
        if stale:
            code, reason, text = self.stale
            return self._rejected(session, c, p, &parsed, tokens, job_id, code, reason, text, now_obj)

        # Session.required_difficulty: the difficulty the job was sent with, or the current one if lower
        vardiff = c.vardiff
        if vardiff.config is not c.vconfig:
            c = self._cache(session)
            if c is None:
                return None
        current = vardiff.difficulty
        sent = c.job_difficulty.get(job_id)
        required = current if sent is None else min(sent, current)

        # ----- ShareValidator.check, up to the hash
        cdef uint8_t en2[16]
        cdef Py_ssize_t en2_size = c.en2_size
        if en2_size < 1 or en2_size > 16 or not _hex_bytes(p, parsed.params[2], en2, en2_size):
            return None
        cdef uint32_t ntime, nonce, bits
        if not _u32_hex(p, parsed.params[3], &ntime):
            return None
        if j is None:  # the job's context is made here, where check() makes it
            j = self._job(c, job, job_id, PyBytes_FromStringAndSize(<const char *>p + job_span.start,
                                                                    job_span.length))
            if j is None:
                return None
        if <long long>ntime < j.min_ntime:
            return None
        if <double>ntime > now + <double>c.validator.ntime_max_future:
            return None
        if not _u32_hex(p, parsed.params[4], &nonce):
            return None
        cdef uint32_t version = j.version
        cdef long long mask_wide = session.version_mask
        if not 0 <= mask_wide <= 0xFFFFFFFF:
            return None
        cdef uint32_t mask = <uint32_t>mask_wide
        if parsed.nparams == 6:
            if not _u32_hex(p, parsed.params[5], &bits) or (bits & ~mask):
                return None
            version = (version & ~mask) | (bits & mask)
        # the duplicate check, on the job's ShareSet without making the tuple check() makes
        cdef ShareKey key
        memset(&key, 0, sizeof(ShareKey))
        key.en1_length = <uint8_t>PyBytes_GET_SIZE(c.extranonce1)
        memcpy(key.en1, PyBytes_AS_STRING(c.extranonce1), key.en1_length)
        key.en2_length = <uint8_t>en2_size
        memcpy(key.en2, en2, <size_t>en2_size)
        key.ntime = ntime
        key.nonce = nonce
        key.version = version
        seen = j.seen
        if seen.has(&key):
            code, reason, text = self.duplicate
            return self._rejected(session, c, p, &parsed, tokens, job_id, code, reason, text, now_obj)

        # ----- the hash (validate's _check_share: the native fused check)
        cdef uint8_t header[80]
        cdef uint8_t out[32]
        sp_build_header(_ptr(j.coinb1), <size_t>PyBytes_GET_SIZE(j.coinb1), _ptr(c.extranonce1),
                        <size_t>PyBytes_GET_SIZE(c.extranonce1), en2, <size_t>en2_size, _ptr(j.coinb2),
                        <size_t>PyBytes_GET_SIZE(j.coinb2), _ptr(j.branch), <size_t>(PyBytes_GET_SIZE(j.branch) // 32),
                        version, _ptr(j.prevhash), ntime, j.nbits, nonce, header)
        if j.algorithm == ALGO_SHA256D:
            sp_sha256d_80(header, out)
        else:
            _scrypt(header, out)

        # ----- the targets
        value = _PyLong_FromByteArray(out, 32, 1, 0)
        if not value or value <= j.net_target:
            return None  # a block: the Python path builds the candidate
        validator = c.validator
        target = validator._targets.get(required)
        if target is None:
            target = validator.target_for(required)  # as check() would, at the same point
        achieved = validator.diff1_target / value  # value > net target >= 0
        if value > target:  # a low-difficulty share: seen all the same (check() adds it before hashing)
            seen.put(&key)
            code, reason = self.low
            return self._rejected(session, c, p, &parsed, tokens, job_id, code, reason,
                                  self.low_message(achieved, required), now_obj)

        # ----- vardiff: a retarget due goes to the Python path
        count = vardiff._count + 1
        if vardiff.enabled:
            if now - <double>vardiff._last_retarget >= c.retarget_interval or count >= c.window:
                return None

        # ----- accepted: record it as Session._submit does, then answer
        if c.rate > 0:
            session._tokens_at = now_obj
            session._tokens = tokens - 1.0
        seen.put(&key)
        vardiff._count = count
        if achieved > session.best_difficulty:
            session.best_difficulty = achieved
        worker = c.worker
        best_by_worker = c.best_by_worker
        if achieved > best_by_worker.get(worker, 0.0):
            best_by_worker[worker] = achieved
        # the two actions made without running their dataclass __init__ (a Python frame each): same fields
        send = self.send.__new__(self.send)
        send.data = _answer(p, &parsed)
        accepted = self.accepted.__new__(self.accepted)
        accepted.session_id = c.session_id
        accepted.worker = worker
        accepted.address = c.address
        accepted.job_id = job_id
        accepted.height = j.height
        accepted.difficulty = required
        accepted.achieved = achieved
        accepted.block = False
        accepted.time = now_obj
        return [send, accepted]


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
