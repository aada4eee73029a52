"""The pure-Python reference judge: a test oracle only, never on the share path.

It states the share rules as plainly as Python can (the same order, the same arithmetic) and the tests hold
the native core (``shares.core``) equal to it, verdict for verdict and state for state, over generated
submits, jobs, vardiff steps and new blocks (tests/test_sharecore.py). Like ``chain.pow.check_share_py`` for
the fused hash: if the two ever differ, one of them is wrong, and this one is the easier to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stratum_pool.chain.pow import check_share_py, sha256d_py
from stratum_pool.coins import ALGO_SHA256D
from stratum_pool.jobs.job import Job
from stratum_pool.shares import verdicts as v
from stratum_pool.shares.names import clean_name
from stratum_pool.shares.records import BlockCandidate, ShareAccepted, ShareRejected
from stratum_pool.shares.vardiff import VardiffConfig

MAX_TRACKED_JOBS = 256
_HEX = frozenset("0123456789abcdefABCDEF")


def _u32(text: str) -> int | None:
    return int(text, 16) if len(text) == 8 and _HEX.issuperset(text) else None


class ReferenceVardiff:
    """The vardiff controller, in Python (``_native.Vardiff``'s twin)."""

    def __init__(self, config: VardiffConfig, start: float, now: float, enabled: bool = True) -> None:
        self.config = config
        self.enabled = enabled
        self.floor = config.minimum
        self.difficulty = self.clamp(start)
        self.last_retarget = now
        self.count = 0

    def clamp(self, difficulty: float) -> float:
        if not math.isfinite(difficulty) or difficulty <= 0:
            difficulty = self.config.minimum
        return min(max(difficulty, self.floor, self.config.minimum), self.config.maximum)

    def restart(self, difficulty: float, now: float) -> float:
        self.difficulty = self.clamp(difficulty)
        self.last_retarget = now
        self.count = 0
        return self.difficulty

    def set_floor(self, floor: float) -> float:
        self.floor = min(max(floor, self.config.minimum), self.config.maximum)
        self.difficulty = self.clamp(self.difficulty)
        return self.difficulty

    def record_share(self, now: float) -> float | None:
        self.count += 1
        if not self.enabled:
            return None
        elapsed = now - self.last_retarget
        if elapsed >= self.config.retarget_interval or self.count >= self.config.window:
            return self._retarget(now, elapsed, self.count)
        return None

    def tick(self, now: float) -> float | None:
        if not self.enabled:
            return None
        elapsed = now - self.last_retarget
        if elapsed < self.config.retarget_interval:
            return None
        if self.count and elapsed / self.count <= self.config.target_interval * (1 + self.config.variance):
            return None
        return self._retarget(now, elapsed, self.count)

    def _retarget(self, now: float, elapsed: float, count: int) -> float | None:
        interval = max(elapsed, 1e-3) / max(count, 1)
        ratio = self.config.target_interval / interval
        self.last_retarget = now
        self.count = 0
        if abs(ratio - 1) <= self.config.variance:
            return None
        ratio = min(max(ratio, 1 / self.config.max_step), self.config.max_step)
        new = self.clamp(float(f"{self.difficulty * ratio:.4g}"))
        if new == self.difficulty:
            return None
        self.difficulty = new
        return new


@dataclass
class ReferenceBook:
    """Live jobs by id, the tip, and each job's duplicate set (``_native.JobBook``'s twin)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    seen: dict[str, set[tuple[bytes, bytes, int, int, int]]] = field(default_factory=dict)
    tip: bytes | None = None

    def add(self, job: Job) -> None:
        self.jobs[job.job_id] = job
        self.seen[job.job_id] = set()

    def discard(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.seen.pop(job_id, None)


class ReferenceJudge:
    """One session's share state and judge, in Python (``_native.ShareCore``'s twin)."""

    def __init__(self, diff1_target: int, ntime_max_future: int, ntime_past_slack: int, book: ReferenceBook,
                 session_id: str, extranonce1: bytes, extranonce2_size: int, vardiff: ReferenceVardiff,
                 rate: float, burst: float, now: float) -> None:
        self.diff1_target = diff1_target
        self.ntime_max_future = ntime_max_future
        self.ntime_past_slack = ntime_past_slack
        self.book = book
        self.session_id = session_id
        self.extranonce1 = extranonce1
        self.extranonce2_size = extranonce2_size
        self.vardiff = vardiff
        self.rate, self.burst = rate, burst
        self.tokens, self.tokens_at = burst, now
        self.version_mask = 0
        self.subscribed = False
        self.workers: dict[str, str] = {}
        self.address = ""
        self.job_difficulty: dict[str, float] = {}
        self.best_difficulty = 0.0
        self.best_by_worker: dict[str, float] = {}
        self.malformed = 0
        self.candidate: BlockCandidate | None = None
        self.retarget: float | None = None

    def authorize(self, worker: str, address: str) -> None:
        self.workers[worker] = address
        self.address = address

    def job_sent(self, job_id: str, difficulty: float) -> None:
        self.job_difficulty.pop(job_id, None)
        self.job_difficulty[job_id] = difficulty
        while len(self.job_difficulty) > MAX_TRACKED_JOBS:
            del self.job_difficulty[next(iter(self.job_difficulty))]

    def required_difficulty(self, job_id: str) -> float:
        sent = self.job_difficulty.get(job_id)
        current = self.vardiff.difficulty
        return current if sent is None else min(sent, current)

    def _reject(self, reject: v.Reject, worker: str, job_id: str, now: float, message: str | None = None,
                achieved: float = 0.0) -> ShareRejected:
        return ShareRejected(self.session_id, worker if worker in self.workers else clean_name(worker),
                             clean_name(job_id, v.MAX_JOB_ID_LENGTH), reject.code, reason=reject.reason,
                             time=now, message=reject.message if message is None else message, achieved=achieved)

    def judge_binary(self, worker: str, job_id: str, extranonce2: bytes, ntime: int, nonce: int, version: int,
                     now: float) -> ShareAccepted | ShareRejected:
        """A share whose fields came as numbers (Stratum V2): the same rules, ``version`` the full version."""
        return self.judge((worker, job_id, extranonce2, ntime, nonce, version), now, binary=True)

    def judge(self, params: tuple[object, ...], now: float, binary: bool = False) -> ShareAccepted | ShareRejected:
        self.candidate = self.retarget = None
        worker = params[0] if params and isinstance(params[0], str) else ""
        job_id = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
        if self.rate > 0:
            tokens = min(self.burst, self.tokens + max(0.0, now - self.tokens_at) * self.rate)
            self.tokens_at = now
            if tokens < 1.0:
                self.tokens = tokens
                self.malformed += 1
                return self._reject(v.RATE_LIMITED, worker, job_id, now)
            self.tokens = tokens - 1.0
        if (not 5 <= len(params) <= 6 or not (binary or all(isinstance(p, str) for p in params))
                or len(job_id) > v.MAX_JOB_ID_LENGTH):
            self.malformed += 1
            return self._reject(v.BAD_PARAMS, worker, job_id, now)
        if not self.subscribed:
            self.malformed += 1
            return self._reject(v.NOT_SUBSCRIBED, worker, job_id, now)
        if worker not in self.workers:
            self.malformed += 1
            return self._reject(v.UNAUTHORIZED, worker, job_id, now)
        job = self.book.jobs.get(job_id)
        if job is None or job.payout_key not in ("", self.address):
            return self._reject(v.UNKNOWN_JOB, worker, job_id, now)
        if self.book.tip is not None and job.template.prevhash != self.book.tip:
            return self._reject(v.STALE, worker, job_id, now)
        required = self.required_difficulty(job_id)
        size = self.extranonce2_size
        raw_en2, raw_ntime, raw_nonce = params[2], params[3], params[4]
        if binary:  # already numbers and bytes: only the extranonce's size can be wrong
            assert isinstance(raw_en2, bytes) and isinstance(raw_ntime, int) and isinstance(raw_nonce, int)
            if len(raw_en2) != size:
                return self._reject(v.BAD_EXTRANONCE2, worker, job_id, now,
                                    v.bad_extranonce2_message(size, 2 * len(raw_en2)))
            extranonce2 = raw_en2
            ntime_or_none: int | None = raw_ntime
            nonce_or_none: int | None = raw_nonce
        else:
            en2_hex = str(raw_en2)
            if len(en2_hex) != 2 * size or not _HEX.issuperset(en2_hex):
                return self._reject(v.BAD_EXTRANONCE2, worker, job_id, now,
                                    v.bad_extranonce2_message(size, len(en2_hex)))
            extranonce2 = bytes.fromhex(en2_hex)
            ntime_or_none, nonce_or_none = _u32(str(raw_ntime)), _u32(str(raw_nonce))
        if ntime_or_none is None:
            return self._reject(v.BAD_NTIME, worker, job_id, now)
        ntime = ntime_or_none
        t = job.template
        if ntime < (t.mintime if t.mintime > 0 else t.curtime - self.ntime_past_slack):
            return self._reject(v.NTIME_TOO_OLD, worker, job_id, now)
        if ntime > now + self.ntime_max_future:
            return self._reject(v.NTIME_TOO_NEW, worker, job_id, now)
        if nonce_or_none is None:
            return self._reject(v.BAD_NONCE, worker, job_id, now)
        nonce = nonce_or_none
        version, mask = t.version, self.version_mask
        if binary:
            full = params[5]
            assert isinstance(full, int)
            if (full ^ version) & ~mask:
                return self._reject(v.VERSION_OUTSIDE_MASK, worker, job_id, now)
            version = full
        elif len(params) == 6:
            bits = _u32(str(params[5]))
            if bits is None:
                return self._reject(v.BAD_VERSION, worker, job_id, now)
            if bits & ~mask:
                return self._reject(v.VERSION_OUTSIDE_MASK, worker, job_id, now)
            version = (version & ~mask) | (bits & mask)
        key = (self.extranonce1, extranonce2, ntime, nonce, version)
        seen = self.book.seen[job_id]
        if key in seen:
            return self._reject(v.DUPLICATE, worker, job_id, now)
        seen.add(key)
        algorithm = t.coin.algorithm_id
        header, pow_hash = check_share_py(algorithm, job.coinb1, self.extranonce1, extranonce2, job.coinb2,
                                          job.branch, version, t.prevhash, ntime, t.nbits, nonce)
        value = int.from_bytes(pow_hash, "little")
        achieved = self.diff1_target / value if value else math.inf
        block = value <= t.target
        if value > int(self.diff1_target / required):
            if not block:
                return self._reject(v.LOW_DIFFICULTY, worker, job_id, now,
                                    v.low_difficulty_message(achieved, required), achieved)
            required = achieved
        address = self.workers[worker]
        if block:
            block_hash = pow_hash if algorithm == ALGO_SHA256D else sha256d_py(header)
            self.candidate = BlockCandidate(job, header, self.extranonce1, extranonce2, block_hash, pow_hash,
                                            worker, address, achieved, now)
        record = ShareAccepted(self.session_id, worker, address, job_id, t.height, required, achieved, block, now)
        self.best_difficulty = max(self.best_difficulty, achieved)
        if achieved > self.best_by_worker.get(worker, 0.0):
            self.best_by_worker[worker] = achieved
        self.retarget = self.vardiff.record_share(now)
        return record
