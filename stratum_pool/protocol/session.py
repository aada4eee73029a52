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
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from stratum_pool._native import V1Submit
from stratum_pool.coins import Coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol import messages as msg
from stratum_pool.protocol.actions import Action, Authorized, Close, Send, ShareAccepted
from stratum_pool.protocol.work import WorkSource
from stratum_pool.shares.core import (
    MAX_EXTRANONCE2_SIZE,
    MIN_EXTRANONCE2_SIZE,
    NTIME_MAX_FUTURE_SECONDS,
    NTIME_PAST_SLACK_SECONDS,
    ShareCore,
    ShareRules,
    Vardiff,
    make_rules,
)
from stratum_pool.shares.names import MAX_USER_LENGTH, MAX_WORKER_LENGTH, WORKER_RE, clean_name, split_user
from stratum_pool.shares.vardiff import SUGGESTION_POLICIES, SuggestionPolicy, VardiffConfig
from stratum_pool.shares.verdicts import ERR_OTHER, ERR_UNAUTHORIZED

__all__ = ["DifficultyPolicy", "Session", "SessionConfig", "WorkSource", "clean_name"]

DifficultyPolicy = SuggestionPolicy



@dataclass(frozen=True, slots=True)
class SessionConfig:
    coin: Coin
    extranonce2_size: int = 4
    # Version bits miners may roll (BIP310); None means the coin's mask.
    version_mask: int | None = None
    vardiff: VardiffConfig = field(default_factory=VardiffConfig)
    vardiff_enabled: bool = True
    suggestion_policy: SuggestionPolicy = "start"  # what a miner's suggestion means (shares.vardiff)
    minimum_difficulty: float = 1e-9
    maximum_difficulty: float = 1e15
    initial_difficulty: float = 1.0
    ntime_max_future: int = NTIME_MAX_FUTURE_SECONDS
    ntime_past_slack: int = NTIME_PAST_SLACK_SECONDS
    # Submits per second per session (token bucket of submit_burst); 0 = unlimited.
    submits_per_second: float = 0.0
    submit_burst: int = 200

    def __post_init__(self) -> None:
        if not MIN_EXTRANONCE2_SIZE <= self.extranonce2_size <= MAX_EXTRANONCE2_SIZE:
            raise ValueError(f"extranonce2_size must be {MIN_EXTRANONCE2_SIZE}..{MAX_EXTRANONCE2_SIZE},"
                             f" got {self.extranonce2_size}")
        if self.suggestion_policy not in SUGGESTION_POLICIES:
            raise ValueError(
                f"suggestion_policy must be {', '.join(SUGGESTION_POLICIES)}, got {self.suggestion_policy!r}"
            )
        if not 0 < self.minimum_difficulty <= self.initial_difficulty <= self.maximum_difficulty:
            raise ValueError("difficulties must satisfy 0 < minimum <= initial <= maximum")

    @property
    def allowed_version_mask(self) -> int:
        return self.coin.version_rolling_mask if self.version_mask is None else self.version_mask

    def make_rules(self) -> ShareRules:
        """The share rules of this config's coin and ntime window; share one between all sessions of a pool."""
        return make_rules(self.coin, self.ntime_max_future, self.ntime_past_slack)


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


def _is_hex(text: str) -> bool:
    """Only 0-9 a-f A-F (``int(x, 16)`` alone takes "0x", "+", "_" and spaces)."""
    return text.isascii() and bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def password_difficulty(password: str) -> float | None:
    """The ``d=DIFF`` option of a password (``d=0.5`` or among options: ``x,d=1000``), if any."""
    for option in password.split(","):
        key, sep, value = option.strip().partition("=")
        if sep and key.strip().lower() == "d":
            return _number(value.strip())
    return None


# Submit lines in the plain form miners send are scanned in C and handed straight to the share core
# (native/v1submit.pxi); every other submit line is parsed here and handed to the same core.
_SCAN_SUBMIT = V1Submit(Send)


@dataclass(slots=True)
class Resumable:
    """What a disconnected session leaves for its miner to resume (``mining.subscribe`` with its id): the
    extranonce1 (its jobs' duplicate sets in the JobBook are keyed by it, so they come back with it), the
    difficulty controller, and the difficulty each job was sent with."""

    session_id: str
    extranonce1: bytes
    vardiff: Vardiff
    job_difficulty: dict[str, float]
    best_difficulty: float


class Session:
    """One miner connection's Stratum state machine; its share state is its :class:`ShareCore`'s."""

    def __init__(
        self,
        config: SessionConfig,
        work: WorkSource,
        check_address: Callable[[str], bytes],
        session_id: str,
        extranonce1: bytes,
        clock: Callable[[], float],
        rules: ShareRules | None = None,
        admit: Callable[[str, str, str], str | None] | None = None,
    ) -> None:
        """``rules``: the pool's shared :class:`ShareRules` (made from ``config`` when None). ``admit(session_id,
        user, address)`` (optional) may refuse an authorization: it returns the refusal's text, or None to let
        it through (the pool caps workers per account with it)."""
        self._config = config
        self.work = work
        self.check_address = check_address
        self.clock = clock
        self.admit = admit
        now = clock()
        vardiff_config = replace(
            config.vardiff, minimum=config.minimum_difficulty, maximum=config.maximum_difficulty
        )
        self.core = ShareCore(
            rules if rules is not None else config.make_rules(), work.book, session_id, extranonce1,
            config.extranonce2_size, Vardiff(vardiff_config, config.initial_difficulty, now, config.vardiff_enabled),
            config.submits_per_second, float(config.submit_burst), now,
        )
        self.user_agent = ""
        # the session id a resuming miner asked for (the adapter may use it)
        self.requested_session_id: str | None = None
        self.extranonce_subscribed = False
        # the adapter's book of disconnected sessions: ``resumer(self, requested_id)`` hands back one to resume
        # (its extranonce1 already this session's to take) or None
        self.resumer: Callable[[Session, str], Resumable | None] | None = None
        self.resumed = False
        self._sent_difficulty: float | None = None

    # ----- state the adapter and the pool read (the share state is the core's)

    @property
    def config(self) -> SessionConfig:
        return self._config

    @config.setter
    def config(self, config: SessionConfig) -> None:
        """A reloaded config: its submit rate applies from the next share on."""
        self._config = config
        self.core.set_rate(config.submits_per_second, float(config.submit_burst))

    @property
    def session_id(self) -> str:
        return self.core.session_id

    @session_id.setter
    def session_id(self, session_id: str) -> None:
        self.core.session_id = session_id

    @property
    def extranonce1(self) -> bytes:
        return self.core.extranonce1

    @property
    def rules(self) -> ShareRules:
        return self.core.rules

    @property
    def vardiff(self) -> Vardiff:
        return self.core.vardiff

    @property
    def subscribed(self) -> bool:
        return self.core.subscribed

    @property
    def workers(self) -> dict[str, str]:
        """Authorized user name -> address (read only: :meth:`ShareCore.authorize` adds)."""
        return self.core.workers

    @property
    def version_mask(self) -> int:
        """The version bits negotiated by mining.configure (BIP310)."""
        return self.core.version_mask

    @property
    def malformed(self) -> int:
        """Malformed messages so far (bad JSON or shape, wrong types, rate-limited submits, ...); the adapter
        watches it to ban abusive peers."""
        return self.core.malformed

    @property
    def best_difficulty(self) -> float:
        return self.core.best_difficulty

    @property
    def best_by_worker(self) -> dict[str, float]:
        return self.core.best_by_worker

    @property
    def payout_key(self) -> str:
        """The authorized payout address ("" before authorization)."""
        return self.core.address

    @property
    def authorized(self) -> bool:
        return bool(self.core.workers)

    @property
    def working(self) -> bool:
        """Subscribed and authorized: the session receives jobs."""
        core = self.core
        return core.subscribed and bool(core.workers)

    @property
    def difficulty(self) -> float:
        """The current share difficulty (possibly not yet sent to the miner)."""
        return self.core.vardiff.difficulty

    @property
    def sent_difficulty(self) -> float | None:
        return self._sent_difficulty

    # ----- input

    def feed_line(self, line: bytes, now: float | None = None) -> list[Action]:
        """Handle one received line (the newline may be present or not); ``now`` defaults to the clock."""
        if b'"mining.submit"' in line:  # the share path: no Request object, no dispatch
            core = self.core
            if now is None:
                now = self.clock()
            actions = _SCAN_SUBMIT(core, line, now)
            if actions is None:
                submit = msg.parse_submit(line)
                if submit is not None:
                    actions = self._submit(submit[0], submit[1], now)
            if actions is not None:
                return self._followup(actions) if core.followup else actions
        line = line.strip()
        if not line:
            return []
        try:
            parsed = msg.parse_line(line)
        except msg.ProtocolError as exc:
            self.core.malformed += 1
            if exc.has_id:
                return [Send(msg.encode_error(exc.request_id, ERR_OTHER, f"Invalid request: {exc}"))]
            return [
                Send(msg.encode_error(None, ERR_OTHER, f"Invalid request: {exc}")),
                Close(f"protocol error: {exc}"),
            ]
        if isinstance(parsed, msg.Response):
            return []
        rid, params = parsed.id, parsed.params
        match parsed.method:
            case "mining.submit":
                actions = self._submit(rid, params, self.clock() if now is None else now)
                return self._followup(actions) if self.core.followup else actions
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
                return [Send(msg.encode_error(rid, ERR_OTHER, f"Unknown method {parsed.method[:64]!r}"))]

    def push_job(self, job: Job, clean: bool, notify_line: bytes | None = None) -> list[Action]:
        """New work for this miner: a pending ``set_difficulty`` first, then the notify.

        ``notify_line`` is the job's encoded notify when the caller serialized it once for many sessions.
        Returns nothing before the session is subscribed and authorized.
        """
        if not self.working:
            return []
        actions = self._difficulty_update()
        actions.append(Send(notify_line if notify_line is not None else msg.notify(job, clean)))
        # The difficulty the miner has is now the current one: the job is recorded at it (a job sent again,
        # when a difficulty change re-notifies the current job, clean, takes the new one: the miner was told
        # to drop the old copy).
        self.job_notified(job)
        return actions

    def tick(self) -> list[Action]:
        """Time-based vardiff: lowers the difficulty of a miner whose shares stopped coming."""
        if not self.working:
            return []
        if self.core.vardiff.tick(self.clock()) is None:
            return []
        return self._renotify_if_lower()

    # ----- difficulty

    def required_difficulty(self, job_id: str) -> float:
        """The difficulty a share of ``job_id`` is judged by (see the module docstring)."""
        return self.core.required_difficulty(job_id)

    def working_key(self) -> str | None:
        """The payout key of a working session (subscribed and authorized), None otherwise: the broadcast's one
        question per session."""
        core = self.core
        return core.address if core.subscribed and core.workers else None

    def job_notified(self, job: Job) -> bool:
        """The broadcast's fast path for a working session: with no difficulty change to send first, ``job``
        is recorded as sent at the difficulty the miner has (what :meth:`push_job` records) and the caller
        writes the job's notify line, which is all push_job would answer. False when there is a difficulty
        to send first: nothing is recorded and the caller takes :meth:`push_job`."""
        sent = self._sent_difficulty
        core = self.core
        if sent is None or sent != core.vardiff.difficulty:
            return False
        core.job_sent(job.job_id, sent)
        return True

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
        job = self.work.current_job(self.core.address)
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

    def resumable(self) -> Resumable:
        """This session's state for a later resume (taken when its connection is gone)."""
        core = self.core
        return Resumable(core.session_id, core.extranonce1, core.vardiff, core.jobs_tracked, core.best_difficulty)

    def resume(self, state: Resumable) -> None:
        """Take over ``state``: its session id, extranonce1, difficulty and its jobs' difficulties. The share
        state that belongs to this connection (negotiated version mask, authorized workers, rate tokens,
        malformed count) stays."""
        old = self.core
        # an authorized session keeps its id: the pool's per-session books (workers per account) know it by it
        session_id = old.session_id if old.workers else state.session_id
        core = ShareCore(old.rules, old.book, session_id, state.extranonce1, old.extranonce2_size,
                         state.vardiff, old.rate, old.burst, self.clock())
        core.version_mask = old.version_mask
        core.subscribed = old.subscribed
        core.malformed = old.malformed
        core.best_difficulty = state.best_difficulty
        for worker, address in old.workers.items():
            core.authorize(worker, address)
        for job_id, difficulty in state.job_difficulty.items():  # oldest first, as they were sent
            core.job_sent(job_id, difficulty)
        self.core = core
        self.resumed = True
        self._sent_difficulty = None  # the miner hears the resumed difficulty with its next job

    def _try_resume(self, requested: str) -> bool:
        if self.resumer is None or requested == self.session_id:
            return False
        state = self.resumer(self, requested)
        if state is None:
            return False
        self.resume(state)
        return True

    def _subscribe(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        if params and isinstance(params[0], str):
            self.user_agent = params[0][:128]
        first = not self.subscribed
        moved = False
        if len(params) > 1 and isinstance(params[1], str) and params[1]:
            self.requested_session_id = params[1][:64]
            # a miner back after a short disconnect gets its extranonce1 back, with its jobs' difficulties and
            # duplicate sets: work in flight stays valid. Once the miner holds an extranonce1, it may only
            # change when the miner takes mining.set_extranonce.
            if first or self.extranonce_subscribed:
                moved = self._try_resume(self.requested_session_id) and not first
        self.core.subscribed = True
        result = [
            [["mining.set_difficulty", self.session_id], ["mining.notify", self.session_id]],
            self.extranonce1.hex(),
            self.config.extranonce2_size,
        ]
        actions: list[Action] = [Send(msg.encode_result(rid, result))]
        if moved:  # the extranonce changed under a subscribed miner: tell it, then work on the new one
            actions.append(Send(msg.set_extranonce(self.extranonce1, self.config.extranonce2_size)))
            actions += self._renotify()
        elif first and self.authorized:  # authorized before subscribing: start work now
            actions += self._renotify()
        return actions

    def _authorize(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        if not params or not isinstance(params[0], str) or not params[0]:
            if not params or not isinstance(params[0], str):
                self.core.malformed += 1
            text = "user name must be ADDRESS[.WORKER]"
            return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, text, False))]
        user = params[0].strip()
        if len(user) > MAX_USER_LENGTH:
            return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, "user name too long", False))]
        password = params[1] if len(params) > 1 and isinstance(params[1], str) else ""
        address, worker_name = split_user(user)
        if not WORKER_RE.fullmatch(worker_name):
            text = (f"worker name must be at most {MAX_WORKER_LENGTH} characters of A-Z a-z 0-9 . _ -,"
                    f" got {clean_name(worker_name, 80)!r}")
            return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, text, False))]
        try:
            self.check_address(address)
        except ValueError as exc:
            text = f"invalid payout address {clean_name(address, 100)!r}: {exc}"
            return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, text, False))]
        if self.core.address and address != self.core.address:
            text = f"this connection already mines for {self.core.address}; open another for {address[:100]}"
            return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, text, False))]
        if self.admit is not None and user not in self.workers:
            refusal = self.admit(self.session_id, user, address)
            if refusal is not None:
                return [Send(msg.encode_error(rid, ERR_UNAUTHORIZED, refusal, False))]
        first = not self.authorized
        self.core.authorize(user, address)
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
            return [Send(msg.encode_error(rid, ERR_OTHER, "configure expects [extensions, parameters]"))]
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
                self.core.version_mask = mask & self.config.allowed_version_mask
                result[name] = self.core.version_mask != 0
                result["version-rolling.mask"] = f"{self.core.version_mask:08x}"
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
            return [Send(msg.encode_error(rid, ERR_OTHER, text))]
        return self._suggest(rid, value)

    def _suggest_target(self, rid: msg.RequestId, params: tuple[object, ...]) -> list[Action]:
        target = 0
        if params and isinstance(params[0], str) and 0 < len(params[0]) <= 64 and _is_hex(params[0]):
            target = int(params[0], 16)
        if target <= 0:
            return [Send(msg.encode_error(rid, ERR_OTHER, "suggest_target expects a hex target"))]
        return self._suggest(rid, self.config.coin.diff1_target / target)

    def _submit(self, rid: msg.RequestId, params: tuple[object, ...], now: float) -> list[Action]:
        """A submit the C scanner left to the general parser: the same core judges it."""
        record = self.core.judge(params, now)
        if isinstance(record, ShareAccepted):
            return [Send(msg.encode_true(rid)), record]
        return [Send(msg.encode_error(rid, record.code, record.message)), record]

    def _followup(self, actions: list[Action]) -> list[Action]:
        """What the core's last share asks of the protocol: a block candidate goes first (the pool submits
        it), and a lowered difficulty goes out at once."""
        candidate, retarget = self.core.take_followup()
        if candidate is not None:
            actions.insert(0, candidate)
        if retarget is not None:
            actions += self._renotify_if_lower()
        return actions
