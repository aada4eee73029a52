# Included by _native.pyx: the share core. Every share, whatever protocol brought it, is judged here and only
# here (docs/architecture.md lists each rule and where it lives):
#
#   JobBook    the live jobs of one work source by id (their data entered once per job: coinbase parts, merkle
#              branch, header fields, network target, the duplicate set) and the chain tip they are stale against;
#   ShareRules what every session of one coin's pool judges by: diff1 target, ntime window, share targets by
#              difficulty, the reject table (shares/verdicts.py) and the record classes (shares/records.py);
#   Vardiff    one session's difficulty controller;
#   ShareCore  one session's (one channel's) share state: rate-limit tokens, the difficulty each job was sent
#              with, its vardiff, best difficulties, its authorized workers; ``judge`` returns the share's
#              record: ShareAccepted (with ``block`` set for a block candidate) or ShareRejected.
#
# Python objects hold none of this state; the core reads no attribute of a Python object per share (a job's
# fields are read once, by JobBook.add). shares/reference.py is the pure-Python twin the tests hold it equal to.

from libc.math cimport isfinite, fabs


cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)


# Indexes into shares.verdicts.REJECTS (the checks' order; keep the two in step).
cdef enum:
    R_RATE = 0
    R_PARAMS = 1
    R_UNSUBSCRIBED = 2
    R_UNAUTHORIZED = 3
    R_UNKNOWN_JOB = 4
    R_STALE = 5
    R_EXTRANONCE2 = 6
    R_NTIME = 7
    R_NTIME_OLD = 8
    R_NTIME_NEW = 9
    R_NONCE = 10
    R_VERSION = 11
    R_VERSION_MASK = 12
    R_DUPLICATE = 13
    R_LOW = 14
    R_COUNT = 15

# Distinct share difficulties whose targets are kept (vardiff moves in few steps; cleared when full).
DEF MAX_CACHED_TARGETS = 4096
# Jobs whose send-time difficulty a session remembers; older ones are judged by the current difficulty.
DEF MAX_TRACKED_JOBS = 256
# The longest extranonce1 and extranonce2 a session may have (the share records' buffers).
DEF MAX_EXTRANONCE = 16


cdef inline bint _ws(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline int _hexval(uint8_t c) noexcept nogil:
    if c >= 48 and c <= 57:
        return c - 48
    if c >= 97 and c <= 102:
        return c - 87
    if c >= 65 and c <= 70:
        return c - 55
    return -1


cdef inline bint _u32_hex(const uint8_t *p, Py_ssize_t length, uint32_t *out) noexcept nogil:
    # exactly 8 hex digits
    if length != 8:
        return False
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


cdef inline bint _hex_bytes(const uint8_t *p, Py_ssize_t length, uint8_t *out, Py_ssize_t size) noexcept nogil:
    # exactly 2 * size hex digits
    if length != 2 * size:
        return False
    cdef int hi, lo
    cdef Py_ssize_t i
    for i in range(size):
        hi = _hexval(p[2 * i])
        lo = _hexval(p[2 * i + 1])
        if hi < 0 or lo < 0:
            return False
        out[i] = <uint8_t>((hi << 4) | lo)
    return True


cdef inline bint _same(const uint8_t *p, Py_ssize_t length, bytes raw) noexcept:
    return length == PyBytes_GET_SIZE(raw) and memcmp(p, PyBytes_AS_STRING(raw), <size_t>length) == 0


cdef inline str _text(const uint8_t *p, Py_ssize_t length):
    return PyUnicode_DecodeUTF8(<const char *>p, length, "surrogatepass")


cdef struct Submit:
    # A submit's fields decoded, each with whether it decoded (the protocol adapter fills it: V1 from hex)
    bint en2_ok
    Py_ssize_t en2_got  # what the miner sent, for the message (V1: hex characters)
    uint8_t en2[MAX_EXTRANONCE]
    bint ntime_ok
    uint32_t ntime
    bint nonce_ok
    uint32_t nonce
    int version_state  # 0: none sent, 1: bits sent and decoded, 2: the full version sent, -1: not decodable
    uint32_t version_bits


cdef class CoreJob:
    """One live job as the core judges it (made by JobBook.add from a ``jobs.job.Job``)."""

    cdef readonly object job
    cdef readonly str job_id
    cdef readonly str payout_key
    cdef bytes coinb1, coinb2, branch, prevhash
    cdef uint32_t version, nbits
    cdef long long mintime, curtime
    cdef int algorithm
    cdef object net_target
    cdef object height
    cdef readonly ShareSet seen
    cdef readonly bint live

    cdef void drop(self):
        # gone from the book: a session's cache of it must not keep its template alive
        self.live = False
        self.job = None
        self.coinb1 = self.coinb2 = self.branch = None
        self.seen = None


cdef class JobBook:
    """The live jobs of one work source by id, and the chain tip (previous block hash, internal order) they
    are judged stale against. The work source adds each job once, discards it when it drops it, and moves
    the tip on a new block; every session's core reads it."""

    cdef dict jobs
    cdef bytes _tip

    def __cinit__(self):
        self.jobs = {}
        self._tip = None

    def add(self, job):
        """Take ``job`` (a ``jobs.job.Job``); a job under an id already here replaces it (and its duplicate
        set)."""
        template = job.template
        cdef CoreJob j = CoreJob.__new__(CoreJob)
        j.job = job
        j.job_id = job.job_id
        j.payout_key = job.payout_key
        j.coinb1, j.coinb2, j.branch, j.prevhash = job.coinb1, job.coinb2, job.branch, template.prevhash
        if len(j.prevhash) != 32 or len(j.branch) % 32 != 0:
            raise ValueError("a job's prevhash is 32 bytes and its branch a multiple of 32")
        j.version = template.version
        j.nbits = template.nbits
        j.mintime = template.mintime
        j.curtime = template.curtime
        j.algorithm = template.coin.algorithm_id
        if j.algorithm != ALGO_SHA256D and j.algorithm != ALGO_SCRYPT:
            raise ValueError(f"unknown algorithm id {j.algorithm}")
        j.net_target = template.target
        j.height = template.height
        j.seen = ShareSet()
        j.live = True
        cdef CoreJob old = self.jobs.get(j.job_id)
        if old is not None:
            old.drop()
        self.jobs[j.job_id] = j

    def discard(self, str job_id):
        cdef CoreJob old = self.jobs.pop(job_id, None)
        if old is not None:
            old.drop()

    @property
    def tip(self):
        return self._tip

    @tip.setter
    def tip(self, prevhash):
        if prevhash is not None and (type(prevhash) is not bytes or len(prevhash) != 32):
            raise ValueError("the tip is a 32-byte hash or None")
        self._tip = prevhash

    def get(self, str job_id):
        """The ``Job`` under ``job_id``, or None."""
        cdef CoreJob j = self.jobs.get(job_id)
        return None if j is None else j.job

    def is_stale(self, job):
        """A job is stale once the tip moved past the block it builds on (no tip yet: nothing is)."""
        return self._tip is not None and job.template.prevhash != self._tip

    def seen(self, str job_id):
        """The duplicate set of the job under ``job_id``, or None."""
        cdef CoreJob j = self.jobs.get(job_id)
        return None if j is None else j.seen

    def __len__(self):
        return len(self.jobs)

    def __contains__(self, job_id):
        return job_id in self.jobs

    def __iter__(self):
        return iter(list(self.jobs))


cdef class ShareRules:
    """What every session of one coin's pool judges shares by (share one between them)."""

    cdef readonly object diff1_target
    cdef readonly long long ntime_max_future
    cdef readonly long long ntime_past_slack
    cdef readonly Py_ssize_t max_job_id
    cdef dict targets
    cdef tuple rejects
    cdef object accepted_cls, rejected_cls, candidate_cls, clean_name

    def __init__(self, diff1_target, long long ntime_max_future, long long ntime_past_slack, tuple rejects,
                 records, clean_name, Py_ssize_t max_job_id):
        """``rejects``: shares.verdicts.REJECTS; ``records``: (ShareAccepted, ShareRejected, BlockCandidate);
        ``clean_name(text, limit)`` makes a name the miner never authorized safe for logs and SQL."""
        if len(rejects) != R_COUNT:
            raise ValueError(f"the core knows {R_COUNT} rejections, got {len(rejects)}")
        for reject in rejects:
            text = reject[2]
            if not (text.isascii() and text.isprintable() and '"' not in text and "\\" not in text):
                raise ValueError(f"a reject message must be printable ASCII without quotes: {text!r}")
        self.diff1_target = int(diff1_target)
        self.ntime_max_future = ntime_max_future
        self.ntime_past_slack = ntime_past_slack
        self.max_job_id = max_job_id
        self.targets = {}
        self.rejects = rejects
        self.accepted_cls, self.rejected_cls, self.candidate_cls = records
        self.clean_name = clean_name

    def target_for(self, required):
        """The largest hash value that meets difficulty ``required`` (divided out once, then cached)."""
        return self._target(required)

    cdef object _target(self, object required):
        target = self.targets.get(required)
        if target is None:
            if len(self.targets) >= MAX_CACHED_TARGETS:
                self.targets.clear()
            target = self.targets[required] = int(self.diff1_target / required)
        return target


cdef double _tidy(double difficulty):
    # four significant digits: steadier numbers for miners and logs, same behaviour
    return float(format(difficulty, ".4g"))


cdef class Vardiff:
    """One session's difficulty controller: steers toward one share every ``target_interval`` seconds.

    Pure arithmetic over the times it is handed (no clock of its own). ``config`` is a
    ``shares.vardiff.VardiffConfig``; assigning a new one applies its numbers from the next share on."""

    cdef object _config
    cdef double target_interval, retarget_interval, variance, max_step, minimum, maximum
    cdef long window
    cdef public bint enabled
    cdef readonly double floor
    cdef public double difficulty
    cdef double last_retarget
    cdef long count  # shares since the last retarget

    def __init__(self, config, double start, double now, bint enabled=True):
        self.config = config
        self.enabled = enabled
        self.floor = self.minimum
        self.difficulty = self.clamp(start)
        self.last_retarget = now
        self.count = 0

    @property
    def config(self):
        return self._config

    @config.setter
    def config(self, config):
        self.target_interval = config.target_interval
        self.retarget_interval = config.retarget_interval
        self.window = config.window
        self.variance = config.variance
        self.max_step = config.max_step
        self.minimum = config.minimum
        self.maximum = config.maximum
        self._config = config

    cpdef double clamp(self, double difficulty):
        if not isfinite(difficulty) or difficulty <= 0:
            difficulty = self.minimum
        if difficulty < self.floor:
            difficulty = self.floor
        if difficulty < self.minimum:
            difficulty = self.minimum
        return difficulty if difficulty < self.maximum else self.maximum

    def restart(self, double difficulty, double now):
        """Start again from ``difficulty`` (a miner's suggestion); returns the clamped value."""
        self.difficulty = self.clamp(difficulty)
        self.last_retarget = now
        self.count = 0
        return self.difficulty

    def set_floor(self, double floor):
        self.floor = min(max(floor, self.minimum), self.maximum)
        self.difficulty = self.clamp(self.difficulty)
        return self.difficulty

    def record_share(self, double now):
        """Note an accepted share; returns the new difficulty when it changes."""
        return self._record(now)

    cdef object _record(self, double now):
        self.count += 1
        if not self.enabled:
            return None
        cdef double elapsed = now - self.last_retarget
        if elapsed >= self.retarget_interval or self.count >= self.window:
            return self._retarget(now, elapsed, self.count)
        return None

    def tick(self, double now):
        """Called periodically: lowers the difficulty when shares stopped coming."""
        if not self.enabled:
            return None
        cdef double elapsed = now - self.last_retarget
        if elapsed < self.retarget_interval:
            return None
        if self.count and elapsed / self.count <= self.target_interval * (1 + self.variance):
            return None  # shares arrive often enough; a share will retarget
        return self._retarget(now, elapsed, self.count)

    cdef object _retarget(self, double now, double elapsed, long count):
        # With no share yet the true interval is at least ``elapsed``: a lower bound that only lowers.
        cdef double interval = max(elapsed, 1e-3) / max(count, 1)
        cdef double ratio = self.target_interval / interval
        self.last_retarget = now
        self.count = 0
        if fabs(ratio - 1) <= self.variance:
            return None
        ratio = min(max(ratio, 1 / self.max_step), self.max_step)
        cdef double new = self.clamp(_tidy(self.difficulty * ratio))
        if new == self.difficulty:
            return None
        self.difficulty = new
        return new

    @property
    def shares_since_retarget(self):
        return self.count

    @property
    def last_retarget_time(self):
        return self.last_retarget


cdef class ShareCore:
    """One session's (one mining channel's) share state and its judge.

    ``judge(params, now)`` takes a V1 submit's params as decoded from JSON; the V1 line scanner
    (v1submit.pxi) and later protocols reach the same C judge with their fields decoded. It returns the
    share's record (``shares.records``); after it, ``followup`` says whether the share asks more of the
    protocol: ``candidate`` (a block to submit) or ``retarget`` (vardiff moved the difficulty) is set."""

    cdef readonly ShareRules rules
    cdef readonly JobBook book
    cdef public str session_id
    cdef readonly bytes extranonce1
    cdef readonly Py_ssize_t extranonce2_size
    cdef public uint32_t version_mask
    cdef readonly double rate, burst
    cdef readonly double tokens, tokens_at
    cdef public bint subscribed
    cdef readonly dict workers
    cdef readonly str address
    cdef dict job_difficulty
    cdef readonly Vardiff vardiff
    cdef public double best_difficulty
    cdef readonly dict best_by_worker
    cdef public Py_ssize_t malformed
    cdef readonly bint followup
    cdef readonly object candidate
    cdef readonly object retarget
    # the last worker name and job a share named (checked byte for byte on every share)
    cdef bytes worker_raw
    cdef str worker_name, worker_address
    cdef CoreJob last_job
    cdef bytes last_job_raw

    def __init__(self, ShareRules rules, JobBook book, str session_id, bytes extranonce1,
                 Py_ssize_t extranonce2_size, Vardiff vardiff, double rate, double burst, double now):
        if len(extranonce1) > MAX_EXTRANONCE or not 1 <= extranonce2_size <= MAX_EXTRANONCE:
            raise ValueError(f"extranonces are at most {MAX_EXTRANONCE} bytes")
        self.rules = rules
        self.book = book
        self.session_id = session_id
        self.extranonce1 = extranonce1
        self.extranonce2_size = extranonce2_size
        self.version_mask = 0
        self.set_rate(rate, burst)
        self.tokens = burst
        self.tokens_at = now
        self.subscribed = False
        self.workers = {}
        self.address = ""
        self.job_difficulty = {}
        self.vardiff = vardiff
        self.best_difficulty = 0.0
        self.best_by_worker = {}
        self.malformed = 0
        self.followup = False

    def set_rate(self, double rate, double burst):
        """Submits per second (a token bucket of ``burst``); 0 = unlimited. The tokens held stay."""
        self.rate = rate
        self.burst = burst

    def authorize(self, str worker, str address):
        """``worker`` may submit from now on, for ``address`` (one address a session)."""
        if self.address and address != self.address:
            raise ValueError(f"this session mines for {self.address}")
        self.workers[worker] = address
        self.address = address

    def job_sent(self, str job_id, double difficulty):
        """``job_id`` went to the miner at ``difficulty`` (a job sent again takes the new one)."""
        sent = self.job_difficulty
        sent.pop(job_id, None)
        sent[job_id] = difficulty
        while len(sent) > MAX_TRACKED_JOBS:
            del sent[next(iter(sent))]

    def required_difficulty(self, str job_id):
        """The difficulty a share of ``job_id`` is judged by: the one its job was sent with, or the current
        one when lower (a raise never rejects work done under the easier difficulty)."""
        return self._required(job_id)

    cdef double _required(self, str job_id):
        cdef double current = self.vardiff.difficulty
        sent = self.job_difficulty.get(job_id)
        return current if sent is None else min(<double>sent, current)

    @property
    def jobs_tracked(self):
        return dict(self.job_difficulty)

    def judge(self, tuple params, now):
        """The record of one V1 ``mining.submit``: ``params`` as decoded from JSON
        ``[worker, job_id, extranonce2, ntime, nonce, (version_bits)]``, hex strings as the miner sent them."""
        cdef Py_ssize_t n = len(params)
        worker = params[0] if n > 0 and isinstance(params[0], str) else ""
        job_id = params[1] if n > 1 and isinstance(params[1], str) else ""
        cdef bint shape_ok = 5 <= n <= 6 and len(job_id) <= self.rules.max_job_id
        cdef Py_ssize_t i
        if shape_ok:
            for i in range(n):
                if not isinstance(params[i], str):
                    shape_ok = False
        cdef bytes w = (<str>worker).encode("utf-8", "surrogatepass")
        cdef bytes j = (<str>job_id).encode("utf-8", "surrogatepass")
        cdef Submit s
        memset(&s, 0, sizeof(Submit))
        if shape_ok:
            en2 = _ascii(params[2])
            s.en2_got = len(<str>params[2])
            s.en2_ok = en2 is not None and self._extranonce2(_ptr(en2), PyBytes_GET_SIZE(en2), &s)
            ntime = _ascii(params[3])
            s.ntime_ok = ntime is not None and _u32_hex(_ptr(ntime), PyBytes_GET_SIZE(ntime), &s.ntime)
            nonce = _ascii(params[4])
            s.nonce_ok = nonce is not None and _u32_hex(_ptr(nonce), PyBytes_GET_SIZE(nonce), &s.nonce)
            if n == 6:
                bits = _ascii(params[5])
                s.version_state = 1 if bits is not None and _u32_hex(_ptr(bits), PyBytes_GET_SIZE(bits),
                                                                     &s.version_bits) else -1
        return self._judge(shape_ok, _ptr(w), PyBytes_GET_SIZE(w), _ptr(j), PyBytes_GET_SIZE(j), &s, now)

    def judge_binary(self, str worker, str job_id, bytes extranonce2, uint32_t ntime, uint32_t nonce,
                     uint32_t version, now):
        """The record of one share whose fields arrived as numbers and bytes (Stratum V2's SubmitShares):
        ``extranonce2`` is the part of the extranonce after ``extranonce1`` and ``version`` the full header
        version (bits outside the negotiated mask must be the job's)."""
        cdef bytes w = worker.encode("utf-8", "surrogatepass")
        cdef bytes j = job_id.encode("utf-8", "surrogatepass")
        cdef Submit s
        memset(&s, 0, sizeof(Submit))
        s.en2_got = 2 * len(extranonce2)
        s.en2_ok = len(extranonce2) == self.extranonce2_size
        if s.en2_ok:
            memcpy(s.en2, PyBytes_AS_STRING(extranonce2), <size_t>self.extranonce2_size)
        s.ntime_ok = True
        s.ntime = ntime
        s.nonce_ok = True
        s.nonce = nonce
        s.version_state = 2
        s.version_bits = version
        return self._judge(len(job_id) <= self.rules.max_job_id, _ptr(w), PyBytes_GET_SIZE(w), _ptr(j),
                           PyBytes_GET_SIZE(j), &s, now)

    cdef inline bint _extranonce2(self, const uint8_t *p, Py_ssize_t length, Submit *s) noexcept:
        return _hex_bytes(p, length, s.en2, self.extranonce2_size)

    cdef object _reject(self, int index, str worker, const uint8_t *w, Py_ssize_t wlen, const uint8_t *jb,
                        Py_ssize_t jlen, object now_obj, object message=None, object achieved=0.0):
        rules = self.rules
        code, reason, text = rules.rejects[index]
        if worker is None:  # a name the miner never authorized is cleaned before it reaches logs or SQL
            worker = _text(w, wlen)
            if worker not in self.workers:
                worker = rules.clean_name(worker)
        record = rules.rejected_cls.__new__(rules.rejected_cls)
        record.session_id = self.session_id
        record.worker = worker
        record.job_id = rules.clean_name(_text(jb, jlen), rules.max_job_id)
        record.code = code
        record.reason = reason
        record.time = now_obj
        record.message = text if message is None else message
        record.achieved = achieved
        return record

    cdef object _judge(self, bint shape_ok, const uint8_t *w, Py_ssize_t wlen, const uint8_t *jb,
                       Py_ssize_t jlen, Submit *s, object now_obj):
        cdef double now = now_obj
        cdef ShareRules rules = self.rules
        self.followup = False

        # ----- the session: rate limit, the submit's shape, subscribed, an authorized worker
        cdef double tokens
        if self.rate > 0:
            tokens = self.tokens + max(0.0, now - self.tokens_at) * self.rate
            if tokens > self.burst:
                tokens = self.burst
            self.tokens_at = now
            if tokens < 1.0:
                self.tokens = tokens
                self.malformed += 1
                return self._reject(R_RATE, None, w, wlen, jb, jlen, now_obj)
            self.tokens = tokens - 1.0
        if not shape_ok:
            self.malformed += 1
            return self._reject(R_PARAMS, None, w, wlen, jb, jlen, now_obj)
        if not self.subscribed:
            self.malformed += 1
            return self._reject(R_UNSUBSCRIBED, None, w, wlen, jb, jlen, now_obj)
        if self.worker_raw is None or not _same(w, wlen, self.worker_raw):
            # workers are only ever added, each to the session's one address: a name found stays valid
            name = _text(w, wlen)
            address = self.workers.get(name)
            if address is None:
                self.malformed += 1
                return self._reject(R_UNAUTHORIZED, None, w, wlen, jb, jlen, now_obj)
            self.worker_raw = PyBytes_FromStringAndSize(<const char *>w, wlen)
            self.worker_name = name
            self.worker_address = address
        worker = self.worker_name

        # ----- the job: live in the book, paying this session, on the current tip
        cdef CoreJob j = self.last_job
        if j is None or not j.live or not _same(jb, jlen, self.last_job_raw):
            j = self.book.jobs.get(_text(jb, jlen))
            if j is None:
                return self._reject(R_UNKNOWN_JOB, worker, w, wlen, jb, jlen, now_obj)
            self.last_job = j
            self.last_job_raw = PyBytes_FromStringAndSize(<const char *>jb, jlen)
        if not (j.payout_key == "" or j.payout_key == self.address):
            return self._reject(R_UNKNOWN_JOB, worker, w, wlen, jb, jlen, now_obj)  # another address's coinbase
        tip = self.book._tip
        if tip is not None and tip is not j.prevhash and memcmp(PyBytes_AS_STRING(tip),
                                                                  PyBytes_AS_STRING(j.prevhash), 32) != 0:
            return self._reject(R_STALE, worker, w, wlen, jb, jlen, now_obj)
        job_id = j.job_id
        required = self._required(job_id)

        # ----- the fields: extranonce2, ntime (format, window), nonce, version bits (format, mask)
        if not s.en2_ok:
            size = self.extranonce2_size
            return self._reject(R_EXTRANONCE2, worker, w, wlen, jb, jlen, now_obj,
                                rules.rejects[R_EXTRANONCE2][2].format(expected=2 * size, size=size, got=s.en2_got))
        if not s.ntime_ok:
            return self._reject(R_NTIME, worker, w, wlen, jb, jlen, now_obj)
        cdef long long min_ntime = j.mintime if j.mintime > 0 else j.curtime - rules.ntime_past_slack
        if <long long>s.ntime < min_ntime:
            return self._reject(R_NTIME_OLD, worker, w, wlen, jb, jlen, now_obj)
        if <double>s.ntime > now + <double>rules.ntime_max_future:
            return self._reject(R_NTIME_NEW, worker, w, wlen, jb, jlen, now_obj)
        if not s.nonce_ok:
            return self._reject(R_NONCE, worker, w, wlen, jb, jlen, now_obj)
        cdef uint32_t version = j.version
        cdef uint32_t mask = self.version_mask
        if s.version_state < 0:
            return self._reject(R_VERSION, worker, w, wlen, jb, jlen, now_obj)
        if s.version_state == 2:  # a full header version (Stratum V2): outside the mask, the job's bits
            if (s.version_bits ^ version) & ~mask:
                return self._reject(R_VERSION_MASK, worker, w, wlen, jb, jlen, now_obj)
            version = s.version_bits
        elif s.version_state > 0:
            if s.version_bits & ~mask:
                return self._reject(R_VERSION_MASK, worker, w, wlen, jb, jlen, now_obj)
            version = (version & ~mask) | (s.version_bits & mask)

        # ----- a duplicate: the same header on this job, from any session that was given this extranonce1
        cdef ShareSet seen = j.seen
        if seen.seen_or_add(<const uint8_t *>PyBytes_AS_STRING(self.extranonce1), PyBytes_GET_SIZE(self.extranonce1),
                            s.en2, self.extranonce2_size, s.ntime, s.nonce, version):
            return self._reject(R_DUPLICATE, worker, w, wlen, jb, jlen, now_obj)

        # ----- the hash, then the targets
        cdef uint8_t header[80]
        cdef uint8_t out[32]
        sp_build_header(_ptr(j.coinb1), <size_t>PyBytes_GET_SIZE(j.coinb1), _ptr(self.extranonce1),
                        <size_t>PyBytes_GET_SIZE(self.extranonce1), s.en2, <size_t>self.extranonce2_size,
                        _ptr(j.coinb2), <size_t>PyBytes_GET_SIZE(j.coinb2), _ptr(j.branch),
                        <size_t>(PyBytes_GET_SIZE(j.branch) // 32), version, _ptr(j.prevhash), s.ntime, j.nbits,
                        s.nonce, header)
        if j.algorithm == ALGO_SHA256D:
            sp_sha256d_80(header, out)
        else:
            _scrypt(header, out)
        value = _PyLong_FromByteArray(out, 32, 1, 0)
        achieved = rules.diff1_target / value if value else float("inf")
        cdef bint block = value <= j.net_target
        if value > rules._target(required):
            if not block:
                return self._reject(R_LOW, worker, w, wlen, jb, jlen, now_obj,
                                    rules.rejects[R_LOW][2].format(achieved=achieved, required=required), achieved)
            # Below the share difficulty yet a block (regtest, testnet: the network is easier than the
            # miner's difficulty): never lose a block; credit what the share achieved.
            required = achieved

        # ----- accepted: the record, the session's bests, vardiff
        address = self.worker_address
        if block:
            pow_hash = PyBytes_FromStringAndSize(<const char *>out, 32)
            if j.algorithm == ALGO_SHA256D:
                block_hash = pow_hash
            else:
                sp_sha256d_80(header, out)
                block_hash = PyBytes_FromStringAndSize(<const char *>out, 32)
            self.candidate = rules.candidate_cls(
                j.job, PyBytes_FromStringAndSize(<const char *>header, 80), self.extranonce1,
                PyBytes_FromStringAndSize(<const char *>s.en2, self.extranonce2_size), block_hash, pow_hash,
                worker, address, achieved, now_obj)
            self.followup = True
        record = rules.accepted_cls.__new__(rules.accepted_cls)
        record.session_id = self.session_id
        record.worker = worker
        record.address = address
        record.job_id = job_id
        record.height = j.height
        record.difficulty = required
        record.achieved = achieved
        record.block = block
        record.time = now_obj
        if achieved > self.best_difficulty:
            self.best_difficulty = achieved
        best_by_worker = self.best_by_worker
        if achieved > best_by_worker.get(worker, 0.0):
            best_by_worker[worker] = achieved
        new = self.vardiff._record(now)
        if new is not None:
            self.retarget = new
            self.followup = True
        return record

    def take_followup(self):
        """``(candidate, retarget)`` of the last share (each None when it asks nothing), cleared."""
        candidate, retarget = self.candidate, self.retarget
        self.candidate = self.retarget = None
        self.followup = False
        return candidate, retarget


cdef inline bytes _ascii(object text):
    # a str's ASCII bytes, or None for any other character (no hex field has one)
    if not (<str>text).isascii():
        return None
    return (<str>text).encode("ascii")
