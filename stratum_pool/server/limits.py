"""Limits against bad input and abuse: connection caps, timeouts, bans, worker caps (pure, no sockets).

``ServerLimits`` and ``BanPolicy`` are the validated ``[limits]`` and ``[bans]`` settings (``config.py``
builds them); the server and the pool read them at use time, so a SIGHUP reload swaps them in place.

* :class:`BanList` holds banned IPs (shared by every coin of a process) and tells listeners (servers) to
  drop an IP's connections when it is banned. ``clear()`` lifts every ban (SIGHUP).
* :class:`Guard` (one per stratum server) counts connections per IP and, over tumbling windows, what it
  bans for. Many honest devices share one public address (a home, a farm behind NAT), so the penalty fits
  the offender: invalid shares are counted per worker name and address, and past the ratio cost only that
  worker (its connections closed, the name refused from that address for the ban period; other workers
  behind the address mine on). A whole address is banned only for what no honest device does: malformed
  lines, connection floods past the per-address cap, and churn of connections that never authorize.
* :class:`WorkerRegistry` caps the distinct worker names authorized per payout address across sessions.

Each setting's default and bounds are its field's (``setting.py``); config, server and pool all use it.
Imports nothing from the package but ``setting``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stratum_pool.setting import ANY, above, at_least, between

# Reasons a rejected share is not held against the miner: stale work after a new block is normal, and the
# protocol-level refusals (bad params, rate limited, unauthorized) are counted as malformed messages instead.
NOT_INVALID_REASONS = frozenset({"stale", "bad-params", "rate-limited", "unauthorized", "not-subscribed"})
# Per-IP counters kept at most (the oldest are dropped first); a flood of addresses cannot grow memory.
MAX_TRACKED_IPS = 100_000
UNLIMITED = "0 (unlimited) or more"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """``[limits]``: what one connection and one IP may use. Every value applies on SIGHUP reload for new
    events (a lowered connection cap does not drop connections already open)."""

    # a longer line is answered with error 20, then the connection closes
    max_line_bytes: int = field(default=16 * 1024, metadata=between(1024, 1 << 20, "bytes"))
    # output queued to a miner that does not read; then dropped
    max_write_buffer_bytes: int = field(default=1024 * 1024, metadata=between(16 * 1024, 1 << 30, "bytes"))
    max_connections: int = field(default=100_000, metadata=at_least(1))  # per stratum port
    # per stratum port; farms behind one NAT need many
    max_connections_per_ip: int = field(default=1000, metadata=at_least(1))
    # connect -> mining.subscribe, else closed
    subscribe_timeout_seconds: float = field(default=30.0, metadata=above(0))
    # connect -> a successful mining.authorize, else closed
    authorize_timeout_seconds: float = field(default=60.0, metadata=above(0))
    idle_timeout_seconds: float = field(default=900.0, metadata=above(0))  # no line received for this long: closed
    # per session, token bucket; 0 = unlimited
    submits_per_second: float = field(default=100.0, metadata=at_least(0, UNLIMITED))
    submit_burst: int = field(default=1000, metadata=at_least(1))  # bucket size
    # distinct ADDRESS.WORKER names live at once per address; 0 = unlimited
    max_workers_per_account: int = field(default=1000, metadata=at_least(0, UNLIMITED))
    # stratum+tls: connect -> finished TLS handshake, else closed (counted by stratum_pool_tls_handshakes_total);
    # a stalled handshake holds only a socket and a few kilobytes of TLS state until then
    tls_handshake_timeout_seconds: float = field(default=10.0, metadata=above(0))
    # a port with proxy_protocol: connect -> the whole PROXY header, else closed (before any limit sees it)
    proxy_header_timeout_seconds: float = field(default=5.0, metadata=above(0))


@dataclass(frozen=True, slots=True)
class BanPolicy:
    """``[bans]``: when an IP is disconnected and refused for ``duration_seconds``."""

    enabled: bool = field(default=True, metadata=ANY)
    duration_seconds: float = field(default=600.0, metadata=above(0))
    window_seconds: float = field(default=300.0, metadata=above(0))
    # invalid shares / all judged shares in a window, once the window holds at least min_shares shares
    invalid_ratio: float = field(default=0.9, metadata=above(0, at_most=1))
    min_shares: int = field(default=50, metadata=at_least(1))
    # malformed messages (bad JSON, wrong types, rate-limited submits, overlong lines) in a window
    max_malformed: int = field(default=50, metadata=at_least(1))
    # connections refused for limits.max_connections_per_ip in a window, then the address is banned; a device
    # refused at the cap retries every few seconds, so this is far above what a few retrying devices make
    # (a farm past the cap raises limits.max_connections_per_ip)
    max_refused_connections: int = field(default=1000, metadata=at_least(1))
    # connections closed without a successful mining.authorize in a window (scanners, connect-and-drop churn);
    # a misconfigured device reconnecting once a second makes 300 in the default window
    max_unauthenticated: int = field(default=1000, metadata=at_least(1))


# Why a whole address is banned (and the word in logs, metrics and the API); a worker ban's is INVALID_SHARES.
INVALID_SHARES = "invalid-shares"
MALFORMED = "malformed"
CONNECTION_FLOOD = "connection-flood"
UNAUTHENTICATED_CHURN = "unauthenticated-churn"


@dataclass(frozen=True, slots=True)
class Ban:
    ip: str
    until: float  # clock time (wall clock by default)
    reason: str  # "invalid-shares" | "malformed" | "connection-flood" | "unauthenticated-churn" | an operator's
    since: float = 0.0  # when it was decided (clock time)
    # "": the whole address; else the one worker name (``ADDRESS.WORKER`` as authorized) refused from ``ip``
    worker: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.ip, self.worker)


class BanList:
    """Banned IPs, and worker names banned from one IP, with their expiry; listeners hear of every new ban (to
    drop the connections it covers)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._bans: dict[tuple[str, str], Ban] = {}  # (ip, worker): worker "" bans the whole address
        self.listeners: list[Callable[[Ban], None]] = []
        self.cleared_at = 0.0  # when clear() last lifted every ban (clock time)
        self.lifted_at: dict[str, float] = {}  # when lift() last lifted each IP's ban (an operator's command)

    def ban(self, ip: str, seconds: float, reason: str, worker: str = "") -> Ban:
        now = self.clock()
        entry = Ban(ip, now + seconds, reason, now, worker)
        self._bans[entry.key] = entry
        for listener in list(self.listeners):
            listener(entry)
        return entry

    def adopt(self, entry: Ban) -> bool:
        """Hold a ban decided elsewhere (another worker of the pool) as if decided here, listeners told;
        False (nothing done) when it has expired, was decided before the last :meth:`clear` (the lift applies
        to it too), or a ban of that IP lasting as long is held already."""
        if entry.until <= self.clock() or entry.since < self.cleared_at:
            return False
        if entry.since <= self.lifted_at.get(entry.ip, -1.0):  # lifted by the operator after it was decided
            return False
        held = self._bans.get(entry.key)
        if held is not None and held.until >= entry.until:
            return False
        self._bans[entry.key] = entry
        for listener in list(self.listeners):
            listener(entry)
        return True

    def banned(self, ip: str, worker: str = "") -> Ban | None:
        """The ban on the whole address ``ip`` (``worker`` ""), or on ``worker`` from ``ip``; None if none."""
        key = (ip, worker)
        entry = self._bans.get(key)
        if entry is None:
            return None
        if entry.until <= self.clock():
            del self._bans[key]
            return None
        return entry

    def refuses(self, ip: str, worker: str) -> Ban | None:
        """What keeps ``worker`` from mining from ``ip``: a ban of the address or of that name there."""
        return self.banned(ip) or self.banned(ip, worker)

    def active(self) -> list[Ban]:
        now = self.clock()
        for key in [key for key, b in self._bans.items() if b.until <= now]:
            del self._bans[key]
        return sorted(self._bans.values(), key=lambda b: b.until)

    def lift(self, ip: str, at: float | None = None) -> bool:
        """Lift ``ip``'s bans, the address's and its workers' (one decided after ``at``, default now, stays); a
        ban of it decided before that, held by another worker, is then never adopted here. True when a ban was
        held."""
        when = self.clock() if at is None else at
        self.lifted_at[ip] = max(when, self.lifted_at.get(ip, when))
        lifted = [key for key, held in self._bans.items() if held.ip == ip and held.since <= when]
        for key in lifted:
            del self._bans[key]
        return bool(lifted)

    def clear(self) -> int:
        count = len(self._bans)
        self._bans.clear()
        self.cleared_at = self.clock()
        return count

    def __len__(self) -> int:
        return len(self.active())


class _Window:
    # valid/invalid are counted in a window keyed (ip, worker), the rest in one keyed by the ip
    __slots__ = ("invalid", "malformed", "refused", "start", "unauthenticated", "valid")

    def __init__(self, start: float) -> None:
        self.start = start
        self.valid = 0
        self.invalid = 0
        self.malformed = 0
        self.refused = 0
        self.unauthenticated = 0


class Guard:
    """Per stratum server: connection counting and admission, per-IP misbehaviour windows, bans."""

    def __init__(self, limits: ServerLimits | None = None, policy: BanPolicy | None = None,
                 bans: BanList | None = None, clock: Callable[[], float] = time.monotonic,
                 on_ban: Callable[[Ban], None] | None = None) -> None:
        """``clock`` drives the windows (monotonic); ``bans`` has its own (wall) clock for expiry.
        ``on_ban`` is told of the bans this guard decides (logging, metrics)."""
        self.limits = limits if limits is not None else ServerLimits()
        self.policy = policy if policy is not None else BanPolicy()
        self.bans = bans if bans is not None else BanList()
        self.clock = clock
        self.on_ban = on_ban
        self.total = 0
        self.per_ip: dict[str, int] = {}
        self.refused = 0
        # per ip (address-wide counts) and per (ip, worker) (share counts); MAX_TRACKED_IPS of them at most
        self._windows: dict[str | tuple[str, str], _Window] = {}

    # ----- connections

    def admit(self, ip: str) -> str | None:
        """None if ``ip`` may open a connection now, else the reason it is refused."""
        if self.bans.banned(ip) is not None:
            reason = "banned"
        elif self.total >= self.limits.max_connections:
            reason = "too many connections"
        elif self.per_ip.get(ip, 0) >= self.limits.max_connections_per_ip:
            reason = "too many connections from this address"
            window = self._window(ip)
            window.refused += 1
            if self.policy.enabled and window.refused > self.policy.max_refused_connections:
                self.ban(ip, CONNECTION_FLOOD)  # drops the connections it has open too
        else:
            return None
        self.refused += 1
        return reason

    def opened(self, ip: str) -> None:
        self.total += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1

    def closed(self, ip: str) -> None:
        self.total -= 1
        left = self.per_ip.get(ip, 0) - 1
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)

    # ----- misbehaviour

    def _window(self, key: str | tuple[str, str]) -> _Window:
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.policy.window_seconds:
            if window is None and len(self._windows) >= MAX_TRACKED_IPS:
                self.prune()
                if len(self._windows) >= MAX_TRACKED_IPS:
                    del self._windows[next(iter(self._windows))]
            window = self._windows[key] = _Window(now)
        return window

    def valid(self, ip: str, worker: str = "") -> None:
        """One accepted share of ``worker`` from ``ip``: ``share(ip, None, worker)``, made for the share path
        (one call, no ban)."""
        key = (ip, worker)
        window = self._windows.get(key)
        if window is not None and self.clock() - window.start < self.policy.window_seconds:
            window.valid += 1
        else:
            self._window(key).valid += 1

    def share(self, ip: str, reason: str | None, worker: str = "") -> Ban | None:
        """One judged share of ``worker`` from ``ip``: ``reason`` None when accepted, else the rejection's
        reason word. Returns the worker's ban when this share tipped that worker (on that address) over the
        invalid-share ratio: the address's other workers are not touched."""
        if reason is None:
            self.valid(ip, worker)
            return None
        if reason in NOT_INVALID_REASONS:
            return None
        # never "" here: that key is the whole address's (a nameless share is refused as bad-params anyway)
        worker = worker or "?"
        window = self._window((ip, worker))
        window.invalid += 1
        policy = self.policy
        judged = window.valid + window.invalid
        if policy.enabled and judged >= policy.min_shares and window.invalid / judged >= policy.invalid_ratio:
            return self.ban(ip, INVALID_SHARES, worker)
        return None

    def malformed(self, ip: str, count: int = 1) -> Ban | None:
        """``count`` malformed messages from ``ip``; returns the ban when they passed the threshold."""
        window = self._window(ip)
        window.malformed += count
        if self.policy.enabled and window.malformed > self.policy.max_malformed:
            return self.ban(ip, MALFORMED)
        return None

    def unauthenticated(self, ip: str) -> Ban | None:
        """A connection from ``ip`` closed without ever authorizing; returns the ban when such connections
        passed the threshold (churn)."""
        window = self._window(ip)
        window.unauthenticated += 1
        if self.policy.enabled and window.unauthenticated > self.policy.max_unauthenticated:
            return self.ban(ip, UNAUTHENTICATED_CHURN)
        return None

    def worker_refusal(self, ip: str, worker: str) -> str | None:
        """Why ``worker`` may not authorize from ``ip`` now (the miner reads it), or None."""
        entry = self.bans.refuses(ip, worker)
        if entry is None:
            return None
        left = max(0, int(entry.until - self.bans.clock()))
        what = f"worker {worker[:100]}" if entry.worker else "this address"
        return f"{what} is banned for {left} s more ({entry.reason})"

    def ban(self, ip: str, reason: str, worker: str = "") -> Ban:
        """Ban the address ``ip`` (``worker`` ""), or only ``worker`` from it."""
        self._windows.pop((ip, worker) if worker else ip, None)
        entry = self.bans.ban(ip, self.policy.duration_seconds, reason, worker)
        if self.on_ban is not None:
            self.on_ban(entry)
        return entry

    def prune(self) -> int:
        """Forget windows that ended; returns how many."""
        now, span = self.clock(), self.policy.window_seconds
        gone = [ip for ip, w in self._windows.items() if now - w.start >= span]
        for ip in gone:
            del self._windows[ip]
        return len(gone)

    def reset(self) -> None:
        """Forget every window (SIGHUP, with the bans lifted)."""
        self._windows.clear()


class WorkerRegistry:
    """Distinct worker names (``ADDRESS.WORKER``) authorized per address over all live sessions."""

    def __init__(self, max_per_account: int = 0) -> None:
        self.max_per_account = max_per_account  # 0 = unlimited
        self._by_address: dict[str, dict[str, set[str]]] = {}  # address -> user -> session ids
        self._by_session: dict[str, list[tuple[str, str]]] = {}

    def admit(self, session_id: str, user: str, address: str) -> str | None:
        """Register ``user`` for ``session_id``; None when admitted, else the refusal's text."""
        users = self._by_address.setdefault(address, {})
        sessions = users.get(user)
        if sessions is None:
            limit = self.max_per_account
            if limit and len(users) >= limit:
                if not users:
                    del self._by_address[address]
                return (f"too many workers for {address[:100]}: at most {limit} connected at once "
                        f"(limits.max_workers_per_account)")
            sessions = users[user] = set()
        if session_id not in sessions:
            sessions.add(session_id)
            self._by_session.setdefault(session_id, []).append((address, user))
        return None

    def release(self, session_id: str) -> None:
        for address, user in self._by_session.pop(session_id, ()):
            users = self._by_address.get(address)
            if users is None:
                continue
            sessions = users.get(user)
            if sessions is not None:
                sessions.discard(session_id)
                if not sessions:
                    del users[user]
            if not users:
                del self._by_address[address]

    def workers(self, address: str) -> int:
        return len(self._by_address.get(address, ()))
