# Included by _native.pyx: the share path's fast lane, a native twin of Session._submit for the common case.
#
# ``FastSubmit.submit(session, line, now)`` judges one ``mining.submit`` line for a
# ``stratum_pool.protocol.session.Session``. When the share is accepted and is not a block it records it
# exactly as the Python path would (rate-limit tokens, the job's duplicate set, best difficulties, the vardiff
# share count) and returns the same actions: ``[Send(answer), ShareAccepted(...)]``. For every other line
# (not a submit the Python parser would take, any check failing, a duplicate, a low-difficulty share, a block,
# a vardiff retarget due) it returns None having changed nothing but the validator's caches (the job's
# context, the share target of a difficulty: filled where check() fills them), and the Python path judges the
# line: it is the reference, and the fast lane only ever agrees with it. A twin-session
# property test (tests/test_fastsubmit.py) holds the two equal, action for action and state for state.
#
# It reads the session's Python objects (no copies of their state), so both lanes share one truth; what it
# saves is the interpreter: no Submission, no ShareResult, no bytecode per check.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.long cimport PyLong_FromUnsignedLong
from libc.stdio cimport snprintf


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    const uint8_t *PyUnicode_1BYTE_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    object _PyLong_FromByteArray(const unsigned char *data, size_t n, int little_endian, int is_signed)


cdef inline int _hexval(uint8_t c) noexcept nogil:
    if c >= 48 and c <= 57:
        return c - 48
    if c >= 97 and c <= 102:
        return c - 87
    if c >= 65 and c <= 70:
        return c - 55
    return -1


cdef inline bint _u32_hex(str text, uint32_t *out) noexcept:
    # exactly 8 hex digits, as validate._parse_hex_u32
    if PyUnicode_GET_LENGTH(text) != 8 or not PyUnicode_IS_ASCII(text):
        return False
    cdef const uint8_t *p = PyUnicode_1BYTE_DATA(text)
    cdef uint32_t value = 0
    cdef int digit
    cdef int i
    for i in range(8):
        digit = _hexval(p[i])
        if digit < 0:
            return False
        value = (value << 4) | <uint32_t>digit
    out[0] = value
    return True


cdef inline bint _hex_bytes(str text, uint8_t *out, Py_ssize_t size) noexcept:
    # exactly 2 * size hex digits, as validate._from_hex after the session's length check
    if PyUnicode_GET_LENGTH(text) != 2 * size or not PyUnicode_IS_ASCII(text):
        return False
    cdef const uint8_t *p = PyUnicode_1BYTE_DATA(text)
    cdef int hi, lo
    cdef Py_ssize_t i
    for i in range(size):
        hi = _hexval(p[2 * i])
        lo = _hexval(p[2 * i + 1])
        if hi < 0 or lo < 0:
            return False
        out[i] = <uint8_t>((hi << 4) | lo)
    return True


cdef inline bint _is_bytes(object value):
    return type(value) is bytes


cdef class FastSubmit:
    """The share path's fast lane (see the comment at the top of native/fastsubmit.pxi).

    Made once with what it builds its answer from: the ``Send`` and ``ShareAccepted`` action classes,
    ``messages.encode_true`` (for ids it does not format itself), the line parser (``orjson.loads``), the
    longest job id a submit may name, and ``JobManager``: a session working for one is looked up in its
    ``_recent`` jobs and judged stale against its ``template`` directly (what its ``get_job`` and ``is_stale``
    do), any other work source through those two methods.
    """

    cdef object send
    cdef object accepted
    cdef object encode_true
    cdef object loads
    cdef Py_ssize_t max_job_id
    cdef object job_manager

    def __init__(self, send, accepted, encode_true, loads, Py_ssize_t max_job_id, job_manager):
        self.send = send
        self.accepted = accepted
        self.encode_true = encode_true
        self.loads = loads
        self.max_job_id = max_job_id
        self.job_manager = job_manager

    def submit(self, session, bytes line, now_obj):
        """The actions for ``line`` when it is an accepted share that is not a block, else None (nothing
        changed: the Python path judges it)."""
        cdef double now = now_obj
        # ----- the line: exactly what messages.parse_submit takes
        try:
            obj = self.loads(line)
        except ValueError:
            return None
        if type(obj) is not dict:
            return None
        cdef dict message = <dict>obj
        method = message.get("method")
        if type(method) is not str or <str>method != "mining.submit":
            return None
        rid = message.get("id")
        params = message.get("params")
        if type(params) is not list:
            return None
        if not (rid is None or type(rid) is int or type(rid) is str):
            return None
        cdef list p = <list>params
        cdef Py_ssize_t n = len(p)
        if n != 5 and n != 6:
            return None
        cdef Py_ssize_t i
        for i in range(n):
            if type(p[i]) is not str:
                return None
        cdef str worker = <str>p[0]
        cdef str job_id = <str>p[1]
        if PyUnicode_GET_LENGTH(job_id) > self.max_job_id:
            return None

        # ----- the session: rate limit, subscribed, authorized worker (Session._submit's order)
        config = session.config
        cdef double rate = config.submits_per_second
        cdef double tokens = 0.0
        cdef double burst
        if rate > 0:
            burst = <double>config.submit_burst
            tokens = session._tokens + max(0.0, now - <double>session._tokens_at) * rate
            if burst < tokens:
                tokens = burst
            if tokens < 1.0:
                return None
        if not session.subscribed:
            return None
        workers = session.workers
        if type(workers) is not dict:
            return None
        address = (<dict>workers).get(worker)
        if address is None:
            return None

        # ----- the job
        work = session.work
        cdef PyObject *found
        if type(work) is self.job_manager:
            found = PyDict_GetItem(work._recent, job_id)  # JobManager.get_job
            if found == NULL:
                return None
            job = <object>found
            payout_key = job.payout_key
            if not (payout_key == "" or payout_key == session._address):
                return None
            tip = work.template  # JobManager.is_stale
            if tip is None or job.template.prevhash != tip.prevhash:
                return None
        else:
            job = work.get_job(job_id)
            if job is None:
                return None
            payout_key = job.payout_key
            if not (payout_key == "" or payout_key == session._address):
                return None
            if work.is_stale(job):
                return None
        # Session.required_difficulty: the difficulty the job was sent with, or the current one if lower
        current = session.vardiff.difficulty
        sent = session._job_difficulty.get(job_id)
        required = current if sent is None else min(sent, current)

        # ----- ShareValidator.check, up to the hash
        validator = session.validator
        cdef uint8_t en2[16]
        cdef Py_ssize_t en2_size = config.extranonce2_size
        if en2_size < 1 or en2_size > 16 or not _hex_bytes(<str>p[2], en2, en2_size):
            return None
        cdef uint32_t ntime, nonce, bits
        if not _u32_hex(<str>p[3], &ntime):
            return None
        ctx = validator._contexts.get(job_id)
        if ctx is None or ctx.job is not job:
            ctx = validator.context(job)
        cdef long long min_ntime = ctx.min_ntime
        if <long long>ntime < min_ntime:
            return None
        if <double>ntime > now + <double>validator.ntime_max_future:
            return None
        if not _u32_hex(<str>p[4], &nonce):
            return None
        template = job.template
        cdef long long template_version = template.version
        cdef long long template_nbits = template.nbits
        cdef long long mask_wide = session.version_mask
        if not (0 <= template_version <= 0xFFFFFFFF and 0 <= template_nbits <= 0xFFFFFFFF
                and 0 <= mask_wide <= 0xFFFFFFFF):
            return None
        cdef uint32_t version = <uint32_t>template_version
        cdef uint32_t mask = <uint32_t>mask_wide
        if n == 6:
            if not _u32_hex(<str>p[5], &bits) or (bits & ~mask):
                return None
            version = (version & ~mask) | (bits & mask)
        extranonce1 = session.extranonce1
        extranonce2 = PyBytes_FromStringAndSize(<const char *>en2, en2_size)
        key = (extranonce1, extranonce2, PyLong_FromUnsignedLong(ntime), PyLong_FromUnsignedLong(nonce),
               PyLong_FromUnsignedLong(version))
        seen = ctx.seen
        if key in seen:
            return None

        # ----- the hash (validate's _check_share: the native fused check)
        coinb1 = job.coinb1
        coinb2 = job.coinb2
        branch = job.branch
        prevhash = template.prevhash
        if not (_is_bytes(coinb1) and _is_bytes(coinb2) and _is_bytes(branch) and _is_bytes(prevhash)
                and _is_bytes(extranonce1)):
            return None
        if len(<bytes>prevhash) != 32 or len(<bytes>branch) % 32 != 0:
            return None
        cdef int algorithm = ctx.algorithm
        if algorithm != ALGO_SHA256D and algorithm != ALGO_SCRYPT:
            return None
        cdef uint8_t header[80]
        cdef uint8_t out[32]
        sp_build_header(_ptr(<bytes>coinb1), <size_t>len(<bytes>coinb1), _ptr(<bytes>extranonce1),
                        <size_t>len(<bytes>extranonce1), en2, <size_t>en2_size, _ptr(<bytes>coinb2),
                        <size_t>len(<bytes>coinb2), _ptr(<bytes>branch), <size_t>(len(<bytes>branch) // 32),
                        version, _ptr(<bytes>prevhash), ntime, <uint32_t>template_nbits, nonce, header)
        if algorithm == ALGO_SHA256D:
            sp_sha256d_80(header, out)
        else:
            _scrypt(header, out)

        # ----- the targets
        value = _PyLong_FromByteArray(out, 32, 1, 0)
        if not value or value <= ctx.target:
            return None  # a block: the Python path builds the candidate
        target = validator._targets.get(required)
        if target is None:
            target = validator.target_for(required)  # as check() would, at the same point
        if value > target:
            return None  # a low-difficulty share: the Python path answers
        achieved = validator.diff1_target / value  # value > target >= 0

        # ----- vardiff: a retarget due goes to the Python path
        vardiff = session.vardiff
        count = vardiff._count + 1
        if vardiff.enabled:
            vconfig = vardiff.config
            if now - <double>vardiff._last_retarget >= <double>vconfig.retarget_interval or count >= vconfig.window:
                return None

        # ----- accepted: record it as Session._submit does, then answer
        if rate > 0:
            session._tokens_at = now_obj
            session._tokens = tokens - 1.0
        seen.add(key)
        vardiff._count = count
        if achieved > session.best_difficulty:
            session.best_difficulty = achieved
        best_by_worker = session.best_by_worker
        if achieved > best_by_worker.get(worker, 0.0):
            best_by_worker[worker] = achieved
        # the two actions made without running their dataclass __init__ (a Python frame each): same fields
        send = self.send.__new__(self.send)
        send.data = self._answer(rid)
        accepted = self.accepted.__new__(self.accepted)
        accepted.session_id = session.session_id
        accepted.worker = worker
        accepted.address = address
        accepted.job_id = job_id
        accepted.height = template.height
        accepted.difficulty = required
        accepted.achieved = achieved
        accepted.block = False
        accepted.time = now_obj
        return [send, accepted]

    cdef object _answer(self, object rid):
        cdef char buf[64]
        cdef long long value
        cdef int length
        if type(rid) is int and -(2**62) <= rid <= 2**62:
            value = rid
            length = snprintf(buf, sizeof(buf), b'{"id":%lld,"result":true,"error":null}\n', value)
            return PyBytes_FromStringAndSize(buf, length)
        return self.encode_true(rid)
