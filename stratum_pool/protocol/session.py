"""One Stratum V1 connection as a plain object: lines in, lines and actions out (no sockets, no clock).

Feed every received line to :meth:`Session.feed_line`; give it new work with :meth:`Session.push_job`;
call :meth:`Session.tick` every few seconds. Each returns a list of actions (``protocol.actions``):
``Send`` bytes to write, ``Close`` the connection, and share/authorization events for the pool.

Real miners speak in different orders (ESP-Miner: subscribe, configure, suggest_difficulty, authorize;
cgminer: configure or not, subscribe, authorize) and all of them are served: work starts as soon as the
session is both subscribed and authorized.

Difficulty rule: a miner applies ``mining.set_difficulty`` only to jobs that arrive after it, and may
keep submitting shares of older jobs. A share is therefore judged by
``min(difficulty sent with its job, current difficulty)``: lowering helps old jobs at once, raising
never rejects work done under the easier difficulty the miner had been given. A job sent again (a
difficulty change takes effect at once by re-sending the current job with clean_jobs) is judged by the
difficulty it was re-sent with.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from stratum_pool.chain import pow as pow_mod
from stratum_pool.coins import Coin
from stratum_pool.jobs.job import Job
from stratum_pool.jobs.manager import JobManager
from stratum_pool.protocol import messages as msg
from stratum_pool.protocol.actions import (
    Action,
    Authorized,
    BlockCandidate,
    Close,
    Send,
    ShareAccepted,
    ShareRejected,
)
from stratum_pool.protocol.work import WorkSource
from stratum_pool.shares.validate import (
    DUPLICATE,
    LOW_DIFFICULTY,
    NTIME_MAX_FUTURE_SECONDS,
    NTIME_PAST_SLACK_SECONDS,
    STALE,
    ShareValidator,
    Submission,
    low_difficulty_message,
)
from stratum_pool.shares.vardiff import Vardiff, VardiffConfig

__all__ = ["DifficultyPolicy", "Session", "SessionConfig", "WorkSource"]

DifficultyPolicy = Literal["start", "floor", "fixed"]

# Jobs whose send-time difficulty we remember per session; older ones are judged by the current one.
MAX_TRACKED_JOBS = 256
# A user name longer than this is not a miner's.
MAX_USER_LENGTH = 256
# The WORKER part of ADDRESS[.WORKER]: at most 64 characters of A-Z a-z 0-9 . _ - (anything else is refused
# at authorize, so no other character reaches logs, metrics or SQL).
MAX_WORKER_LENGTH = 64
WORKER_RE = re.compile(r"[A-Za-z0-9._-]{0,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_JOB_ID_LENGTH = 64

_REASON_FOR_CODE = {
    msg.ERR_UNAUTHORIZED: "unauthorized",
    msg.ERR_NOT_SUBSCRIBED: "not-subscribed",
}


@dataclass(frozen=True, slots=True)
class SessionConfig:
    coin: Coin
    extranonce2_size: int = 4
    # Version bits miners may roll (BIP310); None means the coin's mask.
    version_mask: int | None = None
    vardiff: VardiffConfig = field(default_factory=VardiffConfig)
    vardiff_enabled: bool = True
    # What a miner's suggestion (suggest_difficulty, suggest_target, password d=) means:
    # "start": vardiff starts there and may move; "floor": also the lowest vardiff goes; "fixed": no vardiff.
    suggestion_policy: DifficultyPolicy = "start"
    minimum_difficulty: float = 1e-9
    maximum_difficulty: float = 1e15
    initial_difficulty: float = 1.0
    ntime_max_future: int = NTIME_MAX_FUTURE_SECONDS
    ntime_past_slack: int = NTIME_PAST_SLACK_SECONDS
    # Submits per second per session (token bucket of submit_burst); 0 = unlimited.
    submits_per_second: float = 0.0
    submit_burst: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.extranonce2_size <= 16:
            raise ValueError(f"extranonce2_size must be 1..16, got {self.extranonce2_size}")
        if self.suggestion_policy not in ("start", "floor", "fixed"):
            raise ValueError(
                f"suggestion_policy must be start, floor or fixed, got {self.suggestion_policy!r}"
            )
        if not 0 < self.minimum_difficulty <= self.initial_difficulty <= self.maximum_difficulty:
            raise ValueError("difficulties must satisfy 0 < minimum <= initial <= maximum")

    @property
    def allowed_version_mask(self) -> int:
        return self.coin.version_rolling_mask if self.version_mask is None else self.version_mask

    def make_validator(self) -> ShareValidator:
        """A validator with this config's ntime window; share one between all sessions of a pool."""
        return ShareValidator(self.coin, ntime_max_future=self.ntime_max_future,
                              ntime_past_slack=self.ntime_past_slack)  # fmt: skip


def _number(value: object) -> float | None:
    """A positive finite number from a JSON value (numbers, or numeric strings some firmwares send)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number > 0:
            return number
    return None


def clean_name(text: str, limit: int = MAX_USER_LENGTH) -> str:
    """``text`` made safe for logs, metrics and SQL: truncated, characters outside [A-Za-z0-9._-] -> "_"."""
    return _UNSAFE.sub("_", text[:limit])


def _is_hex(text: str) -> bool:
    """Only 0-9 a-f A-F (``int(x, 16)`` alone takes "0x", "+", "_" and spaces)."""
    return text.isascii() and bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def _all_str(values: tuple[object, ...]) -> bool:
    for value in values:
        if not isinstance(value, str):
            return False
    return True


def password_difficulty(password: str) -> float | None:
    """The ``d=DIFF`` option of a password (``d=0.5`` or among options: ``x,d=1000``), if any."""
    for option in password.split(","):
        key, sep, value = option.strip().partition("=")
        if sep and key.strip().lower() == "d":
            return _number(value.strip())
    return None


# The share path's native fast lane: judges the common shares (accepted and not a block; stale, duplicate,
# low difficulty) exactly as _submit would, and returns None for every other line, which _submit then judges
# (native/fastsubmit.pxi).
_FAST: Callable[[Session, bytes, float], list[Action] | None] | None = None
if pow_mod.NATIVE:
    from stratum_pool import _native

    _FAST = _native.FastSubmit(Send, ShareAccepted, ShareRejected, MAX_JOB_ID_LENGTH, JobManager, clean_name,
                               STALE, DUPLICATE, LOW_DIFFICULTY, low_difficulty_message).submit


def fast_lane(session: Session) -> Callable[[Session, bytes, float], list[Action] | None] | None:
    """The native fast lane for ``session``'s shares, or None (no extension, or a validator that asks for the
    Python path). ``lane(session, line, now)`` returns the actions of an accepted share that is not a block,
    or of a stale, duplicate or low-difficulty share, exactly as :meth:`Session.feed_line` would; else None:
    then call ``feed_line(line, now, lane=False)``."""
    return _FAST if session.validator.fast else None


class Session:
    """One miner connection's Stratum state machine."""

    def __init__(
        self,
        config: SessionConfig,
        work: WorkSource,
        check_address: Callable[[str], bytes],
        session_id: str,
        extranonce1: bytes,
        clock: Callable[[], float],
        validator: ShareValidator | None = None,
        admit: Callable[[str, str, str], str | None] | None = None,
    ) -> None:
        """``admit(session_id, user, address)`` (optional) may refuse an authorization: it returns the
        refusal's text, or None to let it through (the pool caps workers per account with it)."""
        self.config = config
        self.work = work
        self.check_address = check_address
        self.session_id = session_id
        self.extranonce1 = extranonce1
        self.clock = clock
        self.validator = validator if validator is not None else config.make_validator()
        self.admit = admit
        # Malformed messages so far (bad JSON or shape, wrong types, rate-limited submits); the adapter
        # watches it to ban abusive peers.
        self.malformed = 0
        self._tokens = float(config.submit_burst)
        self._tokens_at = clock()
        vardiff_config = replace(
            config.vardiff, minimum=config.minimum_difficulty, maximum=config.maximum_difficulty
        )
        self.vardiff = Vardiff(vardiff_config, config.initial_difficulty, clock(), config.vardiff_enabled)

        self.subscribed = False
        self.user_agent = ""
        # the session id a resuming miner asked for (the adapter may use it)
        self.requested_session_id: str | None = None
        self.extranonce_subscribed = False
        self.version_mask = 0  # negotiated by mining.configure
        self.workers: dict[str, str] = {}  # authorized user name -> address
        self._address = ""
        self._sent_difficulty: float | None = None
        self._job_difficulty: OrderedDict[str, float] = OrderedDict()
        self.best_difficulty = 0.0
        self.best_by_worker: dict[str, float] = {}
        self._lane: Any = None  # the native fast lane's cache of this session's objects (made on first use)

    # ----- state the adapter and the pool read

    @property
    def payout_key(self) -> str:
        """The authorized payout address ("" before authorization)."""
        return self._address

    @property
    def authorized(self) -> bool:
        return bool(self.workers)

    @property
    def working(self) -> bool:
        """Subscribed and authorized: the session receives jobs."""
        return self.subscribed and bool(self.workers)

    @property
    def difficulty(self) -> float:
        """The current share difficulty (possibly not yet sent to the miner)."""
        return self.vardiff.difficulty

    @property
    def sent_difficulty(self) -> float | None:
        return self._sent_difficulty

    # ----- input

    def feed_line(self, line: bytes, now: float | None = None, lane: bool = True) -> list[Action]:
        """Handle one received line (the newline may be present or not).

        ``now`` and ``lane=False`` are for a caller that has just offered the line to :func:`fast_lane` at
        ``now`` and been declined: the line is judged at that time, without asking the lane again."""
        line = line.strip()
        if not line:
            return []
        if b'"mining.submit"' in line:  # the share path: no Request object, no dispatch
            if now is None:
                now = self.clock()
            fast = fast_lane(self) if lane else None
            if fast is not None:
                actions = fast(self, line, now)
                if actions is not None:
                    return actions
            submit = msg.parse_submit(line)
            if submit is not None:
                return self._submit(submit[0], submit[1], now)
        try:
            parsed = msg.parse_line(line)
        except msg.ProtocolError as exc:
            self.malformed += 1
            if exc.has_id:
                return [Send(msg.encode_error(exc.request_id, msg.ERR_OTHER, f"Invalid request: {exc}"))]
            return [
                Send(msg.encode_error(None, msg.ERR_OTHER, f"Invalid request: {exc}")),
                Close(f"protocol error: {exc}"),
            ]
        if isinstance(parsed, msg.Response):
            return []
        rid, params = parsed.id, parsed.params
        match parsed.method:
            case "mining.submit":
                return self._submit(rid, params)
            case "mining.subscribe":
                return self._subscribe(rid, params)
            case "mining.authorize":
                return self._authorize(rid, params)
            case "mining.configure":
                return self._configure(rid, params)
            case "mining.suggest_difficulty":
                return self._suggest_difficulty(rid, params)
            case "mining.suggest_target":
                return self._suggest_target(rid, params)
            case "mining.extranonce.subscribe":
                self.extranonce_subscribed = True
                return [Send(msg.encode_result(rid, True))]
            case "mining.ping":
                return [Send(msg.encode_result(rid, "pong"))]
            case _:
                return [Send(msg.encode_error(rid, msg.ERR_OTHER, f"Unknown method {parsed.method[:64]!r}"))]

    def push_job(self, job: Job, clean: bool, notify_line: bytes | None = None) -> list[Action]:
        """New work for this miner: a pending ``set_difficulty`` first, then the notify.

        ``notify_line`` is the job's encoded notify when the caller serialized it once for many sessions.
        Returns nothing before the session is subscribed and authorized.
        """
        if not (self.subscribed and self.workers):
            return []
        if clean and self._lane is not None:
            self._lane.forget_job()  # a template of the old block must not stay alive in the lane's cache
        actions = self._difficulty_update()
        actions.append(Send(notify_line if notify_line is not None else msg.notify(job, clean)))
        # A job sent again (a difficulty change re-notifies the current job, clean) takes the new
        # difficulty: the miner was told to drop the old copy.
        sent = self._job_difficulty
        job_id = job.job_id
        if job_id in sent:
            del sent[job_id]
        sent[job_id] = self._sent_difficulty or self.vardiff.difficulty
        if len(sent) > MAX_TRACKED_JOBS:
            while len(sent) > MAX_TRACKED_JOBS:
                sent.popitem(last=False)
        return actions

    def tick(self) -> list[Action]:
        """Time-based vardiff: lowers the difficulty of a miner whose shares stopped coming."""
        if not self.working:
            return []
        if self.vardiff.tick(self.clock()) is None:
            return []
        return self._renotify_if_lower()

    # ----- difficulty

    def required_difficulty(self, job_id: str) -> float:
        """The difficulty a share of ``job_id`` is judged by (see the module docstring)."""
        sent = self._job_difficulty.get(job_id)
        current = self.difficulty
        return current if sent is None else min(sent, current)

    def _difficulty_update(self) -> list[Action]:
        difficulty = self.vardiff.difficulty
        if self._sent_difficulty == difficulty:
            return []
        self._sent_difficulty = difficulty
        return [Send(msg.set_difficulty(difficulty))]

    def _renotify(self) -> list[Action]:
        """Send the new difficulty now, with a fresh notify so miners apply it at once."""
        if not self.working:
            return []
        job = self.work.current_job(self._address)
        if job is None:
            return self._difficulty_update()
        return self.push_job(job, True)

    def _renotify_if_lower(self) -> list[Action]:
        # A raise waits for the next job (no hurry); a lower one goes out now, the miner is starving.
        if self._sent_difficulty is not None and self.difficulty < self._sent_difficulty:
            return self._renotify()
        return []

    def _apply_suggestion(self, difficulty: float) -> None:
        now = self.clock()
        policy = self.config.suggestion_policy
        if policy == "floor":
            self.vardiff.set_floor(difficulty)
        elif policy == "fixed":
            self.vardiff.enabled = False
        self.vardiff.restart(difficulty, now)

    # ----- handlers

    def _subscribe(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        if params and isinstance(params[0], str):
            self.user_agent = params[0][:128]
        if len(params) > 1 and isinstance(params[1], str) and params[1]:
            self.requested_session_id = params[1][:64]
        first = not self.subscribed
        self.subscribed = True
        result = [
            [["mining.set_difficulty", self.session_id], ["mining.notify", self.session_id]],
            self.extranonce1.hex(),
            self.config.extranonce2_size,
        ]
        actions: list[Action] = [Send(msg.encode_result(rid, result))]
        if first and self.authorized:  # authorized before subscribing: start work now
            actions += self._renotify()
        return actions

    def _authorize(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        if not params or not isinstance(params[0], str) or not params[0]:
            if not params or not isinstance(params[0], str):
                self.malformed += 1
            text = "user name must be ADDRESS[.WORKER]"
            return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, text, False))]
        user = params[0].strip()
        if len(user) > MAX_USER_LENGTH:
            return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, "user name too long", False))]
        password = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
        address, _, worker_name = user.partition(".")
        if not WORKER_RE.fullmatch(worker_name):
            text = (f"worker name must be at most {MAX_WORKER_LENGTH} characters of A-Z a-z 0-9 . _ -,"
                    f" got {clean_name(worker_name, 80)!r}")
            return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, text, False))]
        try:
            self.check_address(address)
        except ValueError as exc:
            text = f"invalid payout address {clean_name(address, 100)!r}: {exc}"
            return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, text, False))]
        if self._address and address != self._address:
            text = f"this connection already mines for {self._address}; open another for {address[:100]}"
            return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, text, False))]
        if self.admit is not None and user not in self.workers:
            refusal = self.admit(self.session_id, user, address)
            if refusal is not None:
                return [Send(msg.encode_error(rid, msg.ERR_UNAUTHORIZED, refusal, False))]
        first = not self.authorized
        self.workers[user] = address
        self._address = address
        suggested = password_difficulty(password)
        if suggested is not None:
            self._apply_suggestion(suggested)
        actions: list[Action] = [
            Send(msg.encode_result(rid, True)),
            Authorized(self.session_id, user, address),
        ]
        if first or suggested is not None:
            actions += self._renotify()
        return actions

    def _configure(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        if not params or not isinstance(params[0], list):
            return [Send(msg.encode_error(rid, msg.ERR_OTHER, "configure expects [extensions, parameters]"))]
        extensions = params[0]
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        result: dict[str, object] = {}
        renotify = False
        for name in extensions:
            if not isinstance(name, str):
                continue
            if name == "version-rolling":
                requested = options.get("version-rolling.mask", "ffffffff")
                ok = isinstance(requested, str) and len(requested) <= 8 and _is_hex(requested)
                mask = int(requested, 16) if ok else -1
                if mask < 0:
                    result[name] = False
                    result["version-rolling.mask"] = "00000000"
                    continue
                self.version_mask = mask & self.config.allowed_version_mask
                result[name] = self.version_mask != 0
                result["version-rolling.mask"] = f"{self.version_mask:08x}"
            elif name == "minimum-difficulty":
                value = _number(options.get("minimum-difficulty.value"))
                if value is None:
                    result[name] = False
                    continue
                before = self.difficulty
                self.vardiff.set_floor(value)
                renotify = renotify or self.difficulty != before
                result[name] = True
            elif name == "subscribe-extranonce":
                self.extranonce_subscribed = True
                result[name] = True
            else:
                result[name[:64]] = False
        actions: list[Action] = [Send(msg.encode_result(rid, result))]
        if renotify and self._sent_difficulty is not None:
            actions += self._renotify()
        return actions

    def _suggest(self, rid: msg.RequestId, difficulty: float) -> list[Action]:
        self._apply_suggestion(difficulty)
        actions: list[Action] = [Send(msg.encode_result(rid, True))]
        if self._sent_difficulty is not None and self._sent_difficulty != self.difficulty:
            actions += self._renotify()
        return actions

    def _suggest_difficulty(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        value = _number(params[0]) if params else None
        if value is None:
            text = "suggest_difficulty expects a positive number"
            return [Send(msg.encode_error(rid, msg.ERR_OTHER, text))]
        return self._suggest(rid, value)

    def _suggest_target(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        target = 0
        if params and isinstance(params[0], str) and 0 < len(params[0]) <= 64 and _is_hex(params[0]):
            target = int(params[0], 16)
        if target <= 0:
            return [Send(msg.encode_error(rid, msg.ERR_OTHER, "suggest_target expects a hex target"))]
        return self._suggest(rid, self.config.coin.diff1_target / target)

    def _submit(self, rid: msg.RequestId, params: tuple[object, ...], now: float | None = None) -> list[Action]:
        if now is None:
            now = self.clock()
        worker = params[0] if params and isinstance(params[0], str) else ""
        job_id = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
        if self.config.submits_per_second > 0 and not self._take_token(now):
            self.malformed += 1
            return self._reject(rid, worker, job_id, msg.ERR_OTHER, "rate-limited", "rate limited", now)
        if not 5 <= len(params) <= 6 or not _all_str(params) or len(job_id) > MAX_JOB_ID_LENGTH:
            self.malformed += 1
            return self._reject(rid, worker, job_id, msg.ERR_OTHER, "bad-params",
                                "submit expects [worker, job_id, extranonce2, ntime, nonce, (version_bits)]",
                                now)  # fmt: skip
        if not self.subscribed:
            self.malformed += 1
            return self._reject(rid, worker, job_id, msg.ERR_NOT_SUBSCRIBED, "not-subscribed", None, now)
        if worker not in self.workers:
            self.malformed += 1
            return self._reject(rid, worker, job_id, msg.ERR_UNAUTHORIZED, "unauthorized", None, now)
        strings: tuple[str, ...] = params  # type: ignore[assignment]  # all checked to be str above
        job = self.work.get_job(job_id)
        if job is not None and job.payout_key not in ("", self._address):
            job = None  # another address's coinbase: not this miner's job
        stale = job is not None and self.work.is_stale(job)
        version_bits = strings[5] if len(strings) == 6 else None
        submission = Submission(job_id, strings[2], strings[3], strings[4], version_bits)
        # positional: extranonce1, extranonce2_size, version_mask, required, now
        result = self.validator.check(job, stale, submission, self.extranonce1, self.config.extranonce2_size,
                                      self.version_mask, self.required_difficulty(job_id), now)
        if not result.accepted or job is None:
            return self._reject(rid, worker, job_id, result.code, result.reason, result.message, now)
        address = self.workers[worker]
        actions: list[Action] = []
        if result.block:
            actions.append(
                BlockCandidate(job, result.header, self.extranonce1, result.extranonce2, result.block_hash,
                               result.pow_hash, worker, address, result.achieved, now)
            )
        actions.append(Send(msg.encode_true(rid)))
        actions.append(
            ShareAccepted(self.session_id, worker, address, job_id, job.template.height, result.required,
                          result.achieved, result.block, now)
        )
        if result.achieved > self.best_difficulty:
            self.best_difficulty = result.achieved
        if result.achieved > self.best_by_worker.get(worker, 0.0):
            self.best_by_worker[worker] = result.achieved
        if self.vardiff.record_share(now) is not None:
            actions += self._renotify_if_lower()
        return actions

    def _take_token(self, now: float) -> bool:
        rate, burst = self.config.submits_per_second, float(self.config.submit_burst)
        tokens = min(burst, self._tokens + max(0.0, now - self._tokens_at) * rate)
        self._tokens_at = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True

    def _reject(
        self,
        rid: msg.RequestId,
        worker: str,
        job_id: str,
        code: int,
        reason: str,
        message: str | None,
        now: float,
    ) -> list[Action]:
        return [
            Send(msg.encode_error(rid, code, message)),
            # names the miner never authorized are cleaned before they reach logs, metrics or SQL
            ShareRejected(self.session_id, worker if worker in self.workers else clean_name(worker),
                          clean_name(job_id, MAX_JOB_ID_LENGTH), code, reason, now),
        ]
