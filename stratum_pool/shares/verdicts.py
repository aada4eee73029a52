"""Every outcome of a submitted share, named once: Stratum error codes, reject reasons and the miner's texts.

The share core (``native/sharecore.pxi``) is handed :data:`REJECTS` and answers with these; the V1 session
encodes them (``protocol/messages.py`` takes its codes from here); the pure reference judge
(``shares/reference.py``) uses the same table, so the two can only differ in how they judge.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, NamedTuple

# Stratum V1 error codes (the de-facto set cgminer, ckpool and ESP-Miner know).
ERR_OTHER: Final = 20
ERR_JOB_NOT_FOUND: Final = 21
ERR_DUPLICATE: Final = 22
ERR_LOW_DIFFICULTY: Final = 23
ERR_UNAUTHORIZED: Final = 24
ERR_NOT_SUBSCRIBED: Final = 25

ERROR_MESSAGES = MappingProxyType(
    {
        ERR_OTHER: "Other/Unknown",
        ERR_JOB_NOT_FOUND: "Job not found (stale)",
        ERR_DUPLICATE: "Duplicate share",
        ERR_LOW_DIFFICULTY: "Low difficulty share",
        ERR_UNAUTHORIZED: "Unauthorized worker",
        ERR_NOT_SUBSCRIBED: "Not subscribed",
    }
)

# A job id longer than this is not one of ours (ours are 8 hex digits).
MAX_JOB_ID_LENGTH: Final = 64


class Reject(NamedTuple):
    """One way a share is refused: the Stratum code, a short machine word (metrics, logs, the rejected-share
    rows) and the text the miner reads (a ``str.format`` template where it has fields)."""

    code: int
    reason: str
    message: str


RATE_LIMITED = Reject(ERR_OTHER, "rate-limited", "rate limited")
BAD_PARAMS = Reject(ERR_OTHER, "bad-params",
                    "submit expects [worker, job_id, extranonce2, ntime, nonce, (version_bits)]")
NOT_SUBSCRIBED = Reject(ERR_NOT_SUBSCRIBED, "not-subscribed", ERROR_MESSAGES[ERR_NOT_SUBSCRIBED])
UNAUTHORIZED = Reject(ERR_UNAUTHORIZED, "unauthorized", ERROR_MESSAGES[ERR_UNAUTHORIZED])
UNKNOWN_JOB = Reject(ERR_JOB_NOT_FOUND, "unknown-job", "Job not found")
STALE = Reject(ERR_JOB_NOT_FOUND, "stale", "Stale share: job is from a previous block")
BAD_EXTRANONCE2 = Reject(ERR_OTHER, "bad-extranonce2",
                         "extranonce2 must be {expected} hex characters ({size} bytes), got {got}")
BAD_NTIME = Reject(ERR_OTHER, "bad-ntime", "ntime must be 8 hex characters")
NTIME_TOO_OLD = Reject(ERR_OTHER, "bad-ntime", "ntime is older than the job allows")
NTIME_TOO_NEW = Reject(ERR_OTHER, "bad-ntime", "ntime is too far in the future")
BAD_NONCE = Reject(ERR_OTHER, "bad-nonce", "nonce must be 8 hex characters")
BAD_VERSION = Reject(ERR_OTHER, "bad-version", "version bits must be 8 hex characters")
VERSION_OUTSIDE_MASK = Reject(ERR_OTHER, "bad-version", "version bits outside the negotiated mask")
DUPLICATE = Reject(ERR_DUPLICATE, "duplicate", "Duplicate share")
LOW_DIFFICULTY = Reject(ERR_LOW_DIFFICULTY, "low-difficulty", "Low difficulty share: {achieved:.6g} < {required:.6g}")

# In the order the core's checks run (native/sharecore.pxi indexes this tuple: keep the two in step).
REJECTS: tuple[Reject, ...] = (
    RATE_LIMITED, BAD_PARAMS, NOT_SUBSCRIBED, UNAUTHORIZED, UNKNOWN_JOB, STALE, BAD_EXTRANONCE2, BAD_NTIME,
    NTIME_TOO_OLD, NTIME_TOO_NEW, BAD_NONCE, BAD_VERSION, VERSION_OUTSIDE_MASK, DUPLICATE, LOW_DIFFICULTY,
)
# The rejections a miner's firmware causes by breaking the protocol (they count towards a ban as malformed).
MALFORMED = frozenset({RATE_LIMITED, BAD_PARAMS, NOT_SUBSCRIBED, UNAUTHORIZED})


def bad_extranonce2_message(size: int, got: int) -> str:
    return BAD_EXTRANONCE2.message.format(expected=2 * size, size=size, got=got)


def low_difficulty_message(achieved: float, required: float) -> str:
    return LOW_DIFFICULTY.message.format(achieved=achieved, required=required)
