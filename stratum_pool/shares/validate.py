"""Share validation: the cheap checks first, then one fused hash (``pow.check_share``), then the targets.

One :class:`ShareValidator` serves every session of a pool: per-job work (ntime bounds, the duplicate
set) is done once per job in a :class:`JobContext`, not once per share, and a true duplicate is caught
even when it arrives on a new connection that was given the same extranonce1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from stratum_pool.chain import pow as pow_mod
from stratum_pool.coins import ALGO_SHA256D, Coin
from stratum_pool.jobs.job import Job

# Error codes, repeated from protocol.messages (shares sits below protocol and must not import it).
ERR_OTHER = 20
ERR_JOB_NOT_FOUND = 21
ERR_DUPLICATE = 22
ERR_LOW_DIFFICULTY = 23

# Bitcoin refuses headers more than two hours ahead of its adjusted time.
NTIME_MAX_FUTURE_SECONDS = 7200
# Without a template mintime, allow ntime this far before the template's curtime.
NTIME_PAST_SLACK_SECONDS = 600
# Beyond this many live job contexts the oldest are dropped even if nobody pruned them.
MAX_JOB_CONTEXTS = 4096
# Distinct share difficulties whose targets are kept (vardiff moves in few steps; the cache is cleared when full).
MAX_CACHED_TARGETS = 4096

DuplicateKey = tuple[bytes, bytes, int, int, int]

# (code, reason, message) of the rejections the native fast lane answers too (it is handed these)
STALE: tuple[int, str, str] = (ERR_JOB_NOT_FOUND, "stale", "Stale share: job is from a previous block")
DUPLICATE: tuple[int, str, str] = (ERR_DUPLICATE, "duplicate", "Duplicate share")
LOW_DIFFICULTY: tuple[int, str] = (ERR_LOW_DIFFICULTY, "low-difficulty")


def low_difficulty_message(achieved: float, required: float) -> str:
    return f"Low difficulty share: {achieved:.6g} < {required:.6g}"


class SeenShares(Protocol):
    """The shares seen on one job: a set of :data:`DuplicateKey` (``_native.ShareSet`` when the extension is
    built, which the native fast lane also reads and writes without making tuples; else a set)."""

    def __contains__(self, key: object, /) -> bool: ...
    def add(self, key: DuplicateKey, /) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[DuplicateKey]: ...


def _seen_shares() -> SeenShares:
    if pow_mod.NATIVE:
        from stratum_pool import _native

        return _native.ShareSet()
    return set()


@dataclass(slots=True)
class JobContext:
    """What is computed once per job: the bounds and the set of shares already seen on it."""

    job: Job
    algorithm: int
    min_ntime: int
    target: int
    seen: SeenShares = field(default_factory=_seen_shares)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Submission:
    """The fields of one ``mining.submit``, still as the miner sent them (hex strings)."""

    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class ShareResult:
    """The verdict. ``code`` is 0 for an accepted share; ``reason`` is a short machine word."""

    code: int
    reason: str
    message: str
    required: float = 0.0
    achieved: float = 0.0
    block: bool = False
    header: bytes = b""
    pow_hash: bytes = b""
    block_hash: bytes = b""
    extranonce2: bytes = b""

    @property
    def accepted(self) -> bool:
        return self.code == 0


def _reject(code: int, reason: str, message: str, required: float = 0.0) -> ShareResult:
    return ShareResult(code, reason, message, required)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _parse_hex_u32(text: str) -> int | None:
    """Exactly 8 hex digits (``int(x, 16)`` alone would take "0x", "+", "_" and spaces)."""
    if len(text) != 8 or not _HEX_DIGITS.issuperset(text):
        return None
    return int(text, 16)


def _from_hex(text: str) -> bytes | None:
    """The bytes of a hex string of hex digits only (``bytes.fromhex`` alone would skip spaces)."""
    if not _HEX_DIGITS.issuperset(text):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def achieved_difficulty(coin: Coin, pow_hash: bytes) -> float:
    """The difficulty a proof-of-work hash (internal order) reached on ``coin``."""
    value = int.from_bytes(pow_hash, "little")
    return math.inf if value == 0 else coin.diff1_target / value


def share_target(coin: Coin, difficulty: float) -> int:
    """The largest hash value that meets ``difficulty`` on ``coin``."""
    return int(coin.diff1_target / difficulty)


class ShareValidator:
    """Checks submissions against jobs for one coin; shared by every session of a pool."""

    def __init__(
        self,
        coin: Coin,
        check_share: pow_mod.CheckShare | None = None,
        ntime_max_future: int = NTIME_MAX_FUTURE_SECONDS,
        ntime_past_slack: int = NTIME_PAST_SLACK_SECONDS,
        fast: bool = True,
    ) -> None:
        """``fast``: sessions may judge their common shares in the native fast lane (``_native.FastSubmit``),
        which agrees with :meth:`check`; it is used only when ``check_share`` is the native fused check."""
        self.coin = coin
        self.diff1_target = coin.diff1_target  # a property of Coin, computed each time: read per share
        self._check_share = check_share if check_share is not None else pow_mod.check_share
        self.fast = fast and pow_mod.NATIVE and self._check_share is pow_mod.check_share
        self._sha256d = pow_mod.sha256d
        self.ntime_max_future = ntime_max_future
        self.ntime_past_slack = ntime_past_slack
        self._contexts: dict[str, JobContext] = {}
        # share difficulty -> target: a pool uses a handful of difficulties, so each is divided out once
        self._targets: dict[float, int] = {}

    def context(self, job: Job) -> JobContext:
        """The job's context, made on first use (a new Job object under an old id replaces it)."""
        ctx = self._contexts.get(job.job_id)
        if ctx is None or ctx.job is not job:
            if len(self._contexts) >= MAX_JOB_CONTEXTS:
                # dicts keep insertion order: drop the oldest half
                for key in list(self._contexts)[: MAX_JOB_CONTEXTS // 2]:
                    del self._contexts[key]
            t = job.template
            min_ntime = t.mintime if t.mintime > 0 else t.curtime - self.ntime_past_slack
            ctx = JobContext(job, t.coin.algorithm_id, min_ntime, t.target)
            self._contexts[job.job_id] = ctx
        return ctx

    def target_for(self, required: float) -> int:
        """The share target of difficulty ``required``, divided out once and cached."""
        target = self._targets.get(required)
        if target is None:
            if len(self._targets) >= MAX_CACHED_TARGETS:
                self._targets.clear()
            target = self._targets[required] = share_target(self.coin, required)
        return target

    def forget(self, job_id: str) -> None:
        self._contexts.pop(job_id, None)

    def prune(self, get_job: Callable[[str], Job | None]) -> int:
        """Drop the contexts (and duplicate sets) of jobs ``get_job`` no longer knows; returns how many."""
        gone = [jid for jid, ctx in self._contexts.items() if get_job(jid) is not ctx.job]
        for jid in gone:
            del self._contexts[jid]
        return len(gone)

    def __len__(self) -> int:
        return len(self._contexts)

    def check(
        self,
        job: Job | None,
        stale: bool,
        submission: Submission,
        extranonce1: bytes,
        extranonce2_size: int,
        version_mask: int,
        required: float,
        now: float,
    ) -> ShareResult:
        """Judge one share. ``job`` is the work source's job for ``submission.job_id`` (None if unknown),
        ``stale`` whether the work source calls it stale, ``required`` the difficulty to meet."""
        if job is None:
            return _reject(ERR_JOB_NOT_FOUND, "unknown-job", "Job not found", required)
        if stale:
            return _reject(*STALE, required)
        en2_hex = submission.extranonce2
        extranonce2 = _from_hex(en2_hex) if len(en2_hex) == 2 * extranonce2_size else None
        if extranonce2 is None:
            return _reject(
                ERR_OTHER,
                "bad-extranonce2",
                f"extranonce2 must be {2 * extranonce2_size} hex characters ({extranonce2_size} bytes),"
                f" got {len(en2_hex)}",
                required,
            )
        ntime = _parse_hex_u32(submission.ntime)
        if ntime is None:
            return _reject(ERR_OTHER, "bad-ntime", "ntime must be 8 hex characters", required)
        ctx = self.context(job)
        if ntime < ctx.min_ntime:
            return _reject(ERR_OTHER, "bad-ntime", "ntime is older than the job allows", required)
        if ntime > now + self.ntime_max_future:
            return _reject(ERR_OTHER, "bad-ntime", "ntime is too far in the future", required)
        nonce = _parse_hex_u32(submission.nonce)
        if nonce is None:
            return _reject(ERR_OTHER, "bad-nonce", "nonce must be 8 hex characters", required)
        version = job.template.version
        if submission.version_bits is not None:
            bits = _parse_hex_u32(submission.version_bits)
            if bits is None:
                return _reject(ERR_OTHER, "bad-version", "version bits must be 8 hex characters", required)
            if bits & ~version_mask:
                return _reject(ERR_OTHER, "bad-version", "version bits outside the negotiated mask", required)
            version = (version & ~version_mask) | (bits & version_mask)
        key = (extranonce1, extranonce2, ntime, nonce, version)
        if key in ctx.seen:
            return _reject(*DUPLICATE, required)
        ctx.seen.add(key)

        header, pow_hash = self._check_share(
            ctx.algorithm, job.coinb1, extranonce1, extranonce2, job.coinb2, job.branch,
            version, job.template.prevhash, ntime, job.template.nbits, nonce,
        )  # fmt: skip
        value = int.from_bytes(pow_hash, "little")
        achieved = math.inf if value == 0 else self.diff1_target / value
        block = value <= ctx.target
        target = self.target_for(required)
        if value > target:
            if block:
                # Below the share difficulty yet a block (regtest, testnet: the network is easier than
                # the miner's difficulty): never lose a block; credit what the share achieved.
                required = achieved
            else:
                return ShareResult(*LOW_DIFFICULTY, low_difficulty_message(achieved, required), required, achieved)
        if block:
            block_hash = pow_hash if ctx.algorithm == ALGO_SHA256D else self._sha256d(header)
        else:
            block_hash = b""
        return ShareResult(
            0, "accepted", "", required, achieved, block, header, pow_hash, block_hash, extranonce2
        )
