"""The asyncio adapter: sockets in, :class:`~stratum_pool.protocol.session.Session` objects behind them.

Thin on purpose: split bytes into lines, feed them to the session, write what it sends, close when it
says so, and hand every other action (shares, blocks, authorizations) to ``on_action`` synchronously;
the pool queues them. New work fans out through :meth:`StratumServer.broadcast`, which serializes each
job's ``mining.notify`` once and writes the same bytes to every session on that job.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog

from stratum_pool.jobs.job import Job
from stratum_pool.protocol import messages as msg
from stratum_pool.protocol.actions import Action, Close, Send, ShareAccepted, ShareRejected
from stratum_pool.protocol.session import Resumable, Session
from stratum_pool.protocol.work import WorkSource
from stratum_pool.server import proxy
from stratum_pool.server.limits import Ban, Guard, ServerLimits
from stratum_pool.shares.verdicts import ERR_OTHER

# The defaults of limits.max_line_bytes and limits.max_write_buffer_bytes (``limits.ServerLimits``).
# The longest request line we buffer. A mining.submit is ~200 bytes and a configure ~300; 16 KiB is
# the limit h11 uses for HTTP headers and leaves room for odd user agents without inviting floods.
MAX_LINE_BYTES = ServerLimits().max_line_bytes
# A miner that stops reading while we keep writing is dropped once this much output is queued.
MAX_WRITE_BUFFER_BYTES = ServerLimits().max_write_buffer_bytes
# Pending connections the kernel queues for us: thousands of miners reconnect at once after a pool restart
# or a network blip, and asyncio's default of 100 turns that into SYN retransmits (1 s, 3 s, ...).
LISTEN_BACKLOG = 4096
# How often sessions get tick() for time-based vardiff.
TICK_SECONDS = 5.0


class ExtranonceAllocator:
    """Unique extranonce1 values for live sessions: ``prefix`` (node/worker id) + a wrapping counter."""

    def __init__(self, prefix: bytes = b"", size: int = 4, start: int = 0) -> None:
        if not 0 <= len(prefix) < size:
            raise ValueError(f"extranonce1 prefix must be shorter than {size} bytes")
        self.prefix = prefix
        self.size = size
        self._space = 1 << (8 * (size - len(prefix)))
        self._next = start % self._space
        self._in_use: set[bytes] = set()

    def allocate(self) -> bytes:
        for _ in range(self._space):
            value = self._next
            self._next = (self._next + 1) % self._space
            candidate = self.prefix + value.to_bytes(self.size - len(self.prefix), "big")
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        raise RuntimeError("every extranonce1 is in use")

    def release(self, extranonce1: bytes) -> None:
        self._in_use.discard(extranonce1)

    def claim(self, extranonce1: bytes) -> bool:
        """Take ``extranonce1`` (a resumed session's) if it is this allocator's and no live session holds it."""
        if (len(extranonce1) != self.size or not extranonce1.startswith(self.prefix)
                or extranonce1 in self._in_use):
            return False
        self._in_use.add(extranonce1)
        return True

    def __len__(self) -> int:
        return len(self._in_use)


# Disconnected sessions kept for resume at most (the oldest go first): a reconnect storm cannot grow memory
# past this (a few hundred bytes each, plus the job difficulties: MAX_TRACKED_JOBS at most).
MAX_RESUMABLE = 100_000


class ResumeBook:
    """Sessions whose connection is gone, for ``resume_seconds``: a miner that subscribes again with its
    session id from the same address gets its extranonce1 back (if no live session holds it), with its
    difficulty and its jobs' difficulties (their duplicate sets live in the JobBook under that extranonce1)."""

    def __init__(self, allocator: ExtranonceAllocator, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allocator = allocator
        self.seconds = seconds
        self.clock = clock
        self._kept: dict[str, tuple[float, str, Resumable]] = {}  # session id -> (gone at, peer, state)
        self.resumed = 0

    def keep(self, session: Session, peer: str) -> None:
        if self.seconds <= 0 or not session.subscribed:
            return
        now = self.clock()
        kept = self._kept
        kept.pop(session.session_id, None)
        kept[session.session_id] = (now, peer, session.resumable())
        while kept:  # oldest first: drop the expired, and the oldest past the cap
            first = next(iter(kept))
            if len(kept) <= MAX_RESUMABLE and now - kept[first][0] <= self.seconds:
                break
            del kept[first]

    def take(self, session: Session, session_id: str, peer: str) -> Resumable | None:
        entry = self._kept.get(session_id)
        if entry is None:
            return None
        gone_at, kept_peer, state = entry
        if self.clock() - gone_at > self.seconds:
            del self._kept[session_id]
            return None
        # another address naming an id (they are no secret) gets nothing: resuming is for the same device
        if kept_peer != peer or not self.allocator.claim(state.extranonce1):
            return None
        del self._kept[session_id]
        self.allocator.release(session.extranonce1)
        self.resumed += 1
        return state

    def __len__(self) -> int:
        return len(self._kept)


class _Connection(asyncio.Protocol):
    """One socket and its session. A TLS connection (``admitted``: its peer, already admitted and counted by
    the TLS accept loop) is made once its handshake is done."""

    def __init__(self, server: StratumServer, admitted: str | None = None) -> None:
        self.server = server
        self.admitted = admitted
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer = ""
        self._buffer = bytearray()
        self._closing = False
        self._counted = False  # in the guard's connection counts
        self.opened_at = self.last_seen = time.monotonic()
        self._malformed_seen = 0
        self._admit_next: Callable[[str, str, str], str | None] | None = None
        self._fresh = True  # nothing received yet
        self._proxy_timer: asyncio.TimerHandle | None = None  # waiting for a PROXY header
        # lines waiting for a durability barrier: (barrier, lines and closes queued behind it), oldest first;
        # a list (a few entries at most: one per group commit in flight, and empty nearly always): an empty
        # deque costs 760 bytes a session
        self._held: list[tuple[asyncio.Future[Any], list[bytes | Close]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no isinstance check here
        self.transport = cast(asyncio.Transport, transport)
        if self.admitted is not None:  # TLS: admitted and counted before the handshake
            self.peer = self.admitted
            self._counted = True
            if self.server.guard.bans.banned(self.peer) is not None:  # banned during the handshake
                self._closing = True
                self.transport.abort()
                return
            self._start_session()
            return
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self.server.proxy_protocol:
            # the client's address comes first, in the header: limits and bans wait for it
            self._proxy_timer = asyncio.get_running_loop().call_later(
                self.server.limits.proxy_header_timeout_seconds, self._proxy_failed, "no PROXY header in time")
            return
        self._admit_and_start()

    def _admit_and_start(self) -> None:
        transport = self.transport
        assert transport is not None
        guard = self.server.guard
        refusal = guard.admit(self.peer)
        if refusal is not None:
            # refused before any session exists: no extranonce drawn, nothing written
            self.server.log.debug("connection_refused", peer=self.peer, reason=refusal)
            self._closing = True
            transport.abort()
            return
        guard.opened(self.peer)
        self._counted = True
        self._start_session()

    def _proxy_header(self, data: bytes) -> None:
        self._buffer += data
        try:
            header = proxy.parse(bytes(self._buffer))  # a v1 line or v2 header is bounded (proxy.V1_MAX, V2_MAX)
        except proxy.ProxyError as exc:
            self._proxy_failed(str(exc))
            return
        if header is None:
            return
        if self._proxy_timer is not None:
            self._proxy_timer.cancel()
            self._proxy_timer = None
        if header.source is not None:
            self.peer = header.source  # LOCAL/UNKNOWN (the proxy's health checks) keep the socket's
        rest = bytes(self._buffer[header.length:])
        self._buffer.clear()
        self._fresh = False
        self._admit_and_start()
        if rest and self.session is not None:
            self.data_received(rest)

    def _proxy_failed(self, reason: str) -> None:
        if self._proxy_timer is not None:
            self._proxy_timer.cancel()
            self._proxy_timer = None
        if self._closing or self.session is not None:
            return
        self.server.log.info("proxy_header_refused", peer=self.peer, reason=reason)
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def _start_session(self) -> None:
        transport = self.transport
        assert transport is not None
        try:
            self.session = self.server.session_factory(self.peer)
        except Exception:
            self.server.log.exception("session_factory_failed", peer=self.peer)
            self._closing = True
            transport.close()
            return
        # a worker banned from this address (invalid shares) is refused at authorize, before the pool's own check
        self._admit_next = self.session.admit
        self.session.admit = self._admit
        if self.server.resumes is not None:
            self.session.resumer = self._resume
        self.server._register(self)

    def _resume(self, session: Session, session_id: str) -> Resumable | None:
        resumes = self.server.resumes
        return resumes.take(session, session_id, self.peer) if resumes is not None else None

    def _admit(self, session_id: str, user: str, address: str) -> str | None:
        refusal = self.server.guard.worker_refusal(self.peer, user)
        if refusal is not None:
            return refusal
        admit = self._admit_next
        return admit(session_id, user, address) if admit is not None else None

    def data_received(self, data: bytes) -> None:
        if self._closing or self.session is None:
            if self._proxy_timer is not None and not self._closing:
                self._proxy_header(data)
            return
        if self._fresh:
            self._fresh = False
            if proxy.starts_like_header(data):
                # a header here is a client claiming an address, not a proxy of ours: refused, not trusted
                self.write(msg.encode_error(None, ERR_OTHER, "PROXY protocol header on a port not configured for it"))
                self.close("unexpected PROXY header")
                self.server.guard.malformed(self.peer)
                return
        self.last_seen = time.monotonic()
        session = self.session
        max_line = self.server.guard.limits.max_line_bytes
        buffer = self._buffer
        if not buffer and data.find(b"\n") == len(data) - 1 and len(data) <= max_line:
            self._feed(session, data)  # the common case: one whole line in this read, nothing buffered before
            return
        buffer += data
        start = 0
        while not self._closing:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end - start > max_line:
                self._too_long(max_line)
                return
            line = bytes(buffer[start:end])
            start = end + 1
            if not self._feed(session, line):
                return
        del buffer[:start]
        if len(buffer) > max_line and not self._closing:
            self._too_long(max_line)

    def _feed(self, session: Session, line: bytes) -> bool:
        """One line through the session and its actions; False when a bug closed the connection."""
        try:
            actions = session.feed_line(line)
        except Exception:  # a bug must cost one connection, not the server
            self.server.log.exception("session_error", peer=self.peer, session=session.session_id)
            self.close("internal error")
            return False
        self.handle(actions)
        if session.malformed != self._malformed_seen:
            count = session.malformed - self._malformed_seen
            self._malformed_seen = session.malformed
            self.server.guard.malformed(self.peer, count)  # a ban drops this connection too
        return True

    def _too_long(self, max_line: int) -> None:
        self.write(msg.encode_error(None, ERR_OTHER, f"Line longer than {max_line} bytes"))
        self.close("line too long")
        self.server.guard.malformed(self.peer)

    def handle(self, actions: list[Action]) -> None:
        # Hand the pool its actions first: an accepted share is acknowledged only once it is durable, so
        # when the pool answers with an awaitable, this batch's lines (and every later one, to keep their
        # order) wait for it.
        barrier: Awaitable[object] | None = None
        for action in actions:
            kind = type(action)
            if kind is not Send and kind is not Close:
                waits = self._account(action)
                if waits is not None:
                    barrier = waits if barrier is None or barrier is waits else asyncio.gather(barrier, waits)
        if barrier is not None:
            self._hold_one(barrier)
        for action in actions:
            if isinstance(action, Send):
                self.write(action.data)
            elif isinstance(action, Close):
                if self._held:
                    self._held[-1][1].append(action)
                else:
                    self.close(action.reason)

    def _account(self, action: Action) -> Awaitable[object] | None:
        """The guard's count of a judged share, then the pool's handling of ``action``; what the lines after
        it wait for (None: nothing)."""
        kind = type(action)
        server = self.server
        if kind is ShareAccepted:
            server.shares_accepted += 1
            server.guard.valid(self.peer, action.worker)  # type: ignore[union-attr]
        elif kind is ShareRejected:
            server.shares_rejected += 1
            server.guard.share(self.peer, action.reason, action.worker)  # type: ignore[union-attr]
        try:
            return self.server.on_action(action)
        except Exception:
            self.server.log.exception("on_action_failed", action=kind.__name__)
            return None

    def _hold_one(self, barrier: Awaitable[object]) -> None:
        # Shares appended in one group-commit window share one future: a connection already waiting on it
        # just queues behind it (one entry per connection and fsync, not per share).
        held = self._held
        if held and held[-1][0] is barrier:
            return
        waiter: asyncio.Future[Any] = barrier if isinstance(barrier, asyncio.Future) else asyncio.ensure_future(barrier)
        held.append((waiter, []))
        # one callback per group commit for all the connections it holds (not one each: a loop handle apiece)
        waiting = self.server._waiting
        conns = waiting.get(waiter)
        if conns is None:
            conns = waiting[waiter] = []
            waiter.add_done_callback(self.server._release_held)
        conns.append(self)

    def _release(self) -> None:
        while self._held and self._held[0][0].done():
            waiter, pending = self._held.pop(0)
            if not waiter.cancelled() and waiter.exception() is not None:
                self.server.log.error("share_not_durable", peer=self.peer, error=str(waiter.exception()))
            for item in pending:
                if isinstance(item, Close):
                    self.close(item.reason)
                else:
                    self._write_now(item)

    def write(self, data: bytes) -> None:
        if self._held:
            self._held[-1][1].append(data)
        else:
            self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self._closing:
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.guard.limits.max_write_buffer_bytes:
            self.server.log.warning("miner_not_reading", peer=self.peer)
            self._closing = True
            transport.abort()

    def close(self, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        session_id = self.session.session_id if self.session else ""
        self.server.log.info("connection_closed", peer=self.peer, session=session_id, reason=reason)
        if self.transport is not None:
            self.transport.close()  # flushes what was written first

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._proxy_timer is not None:
            self._proxy_timer.cancel()
            self._proxy_timer = None
        if self._counted:
            self._counted = False
            guard = self.server.guard
            guard.closed(self.peer)
            if self.session is not None and not self.session.authorized:
                guard.unauthenticated(self.peer)  # churn of such connections bans the address
        self.server._forget(self)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _read_proxy_header(sock: socket.socket) -> proxy.ProxyHeader:
    """The PROXY header at the start of ``sock`` (non-blocking), consuming exactly its bytes."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = sock.recv(proxy.V2_MAX, socket.MSG_PEEK)
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            continue
        if not data:
            raise proxy.ProxyError("closed before a PROXY header")
        header = proxy.parse(data)
        if header is not None:
            sock.recv(header.length)  # already queued: the socket's first bytes, exactly the header
            return header
        await asyncio.sleep(0.01)  # half a header queued (rare): the socket stays readable, so poll gently


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class StratumServer:
    """Listens on ``host:port`` and runs one :class:`Session` per connection."""

    # what serves one socket (the Stratum V2 listener, server/sv2.py, has its own), and the protocol's name
    connection_class: type[_Connection] = _Connection
    protocol = "v1"

    def __init__(
        self,
        host: str,
        port: int,
        session_factory: Callable[[str], Session],
        on_action: Callable[[Action], Awaitable[object] | None],
        *,
        allocator: ExtranonceAllocator | None = None,
        tick_seconds: float = TICK_SECONDS,
        logger: Any = None,
        reuse_port: bool = False,
        sock: socket.socket | None = None,
        guard: Guard | None = None,
        on_disconnect: Callable[[Session], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
        tls_port: int = 0,
        on_tls: Callable[[str], None] | None = None,
        proxy_protocol: bool = False,
        resume_seconds: float = 0.0,
        tls_proxy_protocol: bool = False,
    ) -> None:
        """``session_factory(peer_ip)`` makes a session; when it draws extranonce1 values from
        ``allocator``, pass the allocator here too so they are released on disconnect. ``reuse_port`` sets
        SO_REUSEPORT on the listening socket, so several processes (``stratum_pool.cluster``) share the
        port and the kernel spreads new connections over them. ``sock``: serve an already listening socket
        (handed down by a supervisor) instead of binding ``host:port``. ``guard`` holds the limits
        (``guard.limits``, read at use time so a reload applies at once), connection counts and bans;
        ``on_disconnect(session)`` is called once a session's connection is gone. With ``tls_context``, a
        second listener on ``host:tls_port`` serves the same sessions over TLS (its context is read per
        connection: assign a renewed one to ``tls_context``); ``on_tls(result)`` hears of every handshake
        ("ok", "timeout", "failed", "closed"). ``proxy_protocol``: every connection on ``port`` starts with a
        PROXY v1 or v2 header (a load balancer's), whose client address is the one limits, bans and logs see;
        without one it is closed. On other ports a header is refused as a protocol error. ``resume_seconds``
        (with ``allocator``): how long a disconnected session may be resumed (:class:`ResumeBook`; 0: never)."""
        self.host = host
        self.port = port
        self.session_factory = session_factory
        self.on_action = on_action
        self.allocator = allocator
        self.tick_seconds = tick_seconds
        self.reuse_port = reuse_port
        self.sock = sock
        self.log = logger if logger is not None else structlog.get_logger("stratum_pool.server")
        self.guard = guard if guard is not None else Guard()
        self.guard.bans.listeners.append(self._on_ban)
        self.on_disconnect = on_disconnect
        self.tls_context = tls_context
        self.proxy_protocol = proxy_protocol
        self.tls_proxy_protocol = tls_proxy_protocol  # the same for the TLS port (TLS passed through)
        self.resumes = ResumeBook(allocator, resume_seconds) if allocator is not None and resume_seconds > 0 else None
        self.tls_port = tls_port
        self.on_tls = on_tls
        self._tls_socket: socket.socket | None = None
        self._tls_accept: asyncio.Task[None] | None = None
        self._handshakes: dict[asyncio.Task[None], None] = {}  # TLS handshakes under way
        self.shares_accepted = 0  # shares judged on this listener (metrics read them by protocol)
        self.shares_rejected = 0
        self._connections: dict[_Connection, None] = {}  # insertion-ordered set
        # a durability barrier -> the connections holding lines behind it (_Connection._hold_one)
        self._waiting: dict[asyncio.Future[Any], list[_Connection]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.sock is not None:
            self._server = await loop.create_server(lambda: self.connection_class(self), sock=self.sock,
                                                    backlog=LISTEN_BACKLOG)
        else:
            self._server = await loop.create_server(lambda: self.connection_class(self), self.host, self.port,
                                                    reuse_port=self.reuse_port or None, backlog=LISTEN_BACKLOG)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # the real port when asked for port 0
        if self.tls_context is not None:
            # workers of one machine each bind it with SO_REUSEPORT (no socket handed down for it)
            self._tls_socket = _listen(self.host, self.tls_port, self.reuse_port)
            self.tls_port = int(self._tls_socket.getsockname()[1])
            self._tls_accept = asyncio.create_task(self._accept_tls(self._tls_socket))
            self.log.info("stratum_tls_listening", host=self.host, port=self.tls_port)
        self._ticker = asyncio.create_task(self._tick_loop())
        self.log.info("stratum_listening", host=self.host, port=self.port)

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            self._server.close()
        if self._tls_accept is not None:
            self._tls_accept.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tls_accept
            self._tls_accept = None
        if self._tls_socket is not None:
            self._tls_socket.close()
            self._tls_socket = None
        for conn in list(self._connections):
            conn.close("server shutting down")
        for handshake in list(self._handshakes):
            handshake.cancel()
        with contextlib.suppress(ValueError):
            self.guard.bans.listeners.remove(self._on_ban)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept_tls(self, listener: socket.socket) -> None:
        """Accept TLS connections: admit each by its address first (a handshake flood meets the same
        per-address cap and bans), then hand the socket to the loop's TLS with the handshake bounded in time.
        The socket is not read before TLS owns it, so no byte of the handshake is lost."""
        loop = asyncio.get_running_loop()
        guard = self.guard
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors, say: keep serving the others
                self.log.warning("tls_accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            peer = str(address[0]) if isinstance(address, tuple) and address else ""
            if self.tls_proxy_protocol:  # the client's address comes first, in the clear, before TLS
                task = asyncio.create_task(self._proxied_tls(sock, peer))
            else:
                refusal = guard.admit(peer)
                if refusal is not None:
                    self.log.debug("connection_refused", peer=peer, reason=refusal)
                    sock.close()
                    continue
                guard.opened(peer)
                task = asyncio.create_task(self._handshake(sock, peer))
            self._handshakes[task] = None
            task.add_done_callback(self._handshakes.pop)

    async def _proxied_tls(self, sock: socket.socket, peer: str) -> None:
        """A TLS port behind a TCP proxy: read the PROXY header off the socket (exactly its bytes, the
        ClientHello stays queued), admit the client's address, then the handshake."""
        try:
            header = await asyncio.wait_for(_read_proxy_header(sock), self.limits.proxy_header_timeout_seconds)
        except (TimeoutError, proxy.ProxyError, OSError) as exc:
            self.log.info("proxy_header_refused", peer=peer, reason=str(exc) or "no PROXY header in time")
            sock.close()
            return
        except BaseException:
            sock.close()
            raise
        if header.source is not None:
            peer = header.source
        refusal = self.guard.admit(peer)
        if refusal is not None:
            self.log.debug("connection_refused", peer=peer, reason=refusal)
            sock.close()
            return
        self.guard.opened(peer)
        await self._handshake(sock, peer)

    async def _handshake(self, sock: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        context = self.tls_context  # read now: a SIGHUP may have swapped in a renewed certificate
        assert context is not None
        conn = _Connection(self, admitted=peer)
        try:
            await loop.connect_accepted_socket(lambda: conn, sock, ssl=context,
                                               ssl_handshake_timeout=self.limits.tls_handshake_timeout_seconds)
        except BaseException as exc:  # a failure costs this connection only, and is counted
            if isinstance(exc, TimeoutError) or (isinstance(exc, ConnectionAbortedError)
                                                 and "taking longer" in str(exc)):
                result = "timeout"
            elif isinstance(exc, ssl.SSLError):
                result = "failed"
            else:
                result = "closed"  # the client went away, or the server is closing
            sock.close()
            if conn.transport is None:  # never made: the count taken at accept is given back here
                self.guard.closed(peer)
                self.guard.unauthenticated(peer)
            if not isinstance(exc, Exception):
                raise
            self.log.info("tls_handshake_failed", peer=peer, result=result, error=str(exc)[:200])
            self._tls_result(result)
            return
        self._tls_result("ok")

    def _tls_result(self, result: str) -> None:
        if self.on_tls is not None:
            try:
                self.on_tls(result)
            except Exception:
                self.log.exception("on_tls_failed")

    @property
    def sessions(self) -> list[Session]:
        return [c.session for c in self._connections if c.session is not None]

    def broadcast(self, clean: bool, work: WorkSource) -> int:
        """Push ``work.current_job(session.payout_key)`` to every working session; returns how many.

        Latency first: the notify line is serialized once per job (per payout key in solo mode) and written
        to every session in one tight loop, with one call into the session for the bookkeeping push_job does
        (:meth:`Session.job_notified`: the job's difficulty) beside each write (the connection's own, with
        its slow-reader check and its lines held behind a durability barrier). A session with a difficulty
        change to send first takes the full path (push_job) in the loop.
        """
        lines: dict[str, tuple[Job, bytes] | None] = {}
        sent = 0
        for conn in list(self._connections):
            session = conn.session
            if session is None:
                continue
            key = session.working_key()
            if key is None:
                continue
            if key in lines:
                entry = lines[key]
            else:
                job: Job | None = work.current_job(key)
                entry = lines[key] = (job, msg.notify(job, clean)) if job is not None else None
            if entry is None:
                continue
            if session.job_notified(entry[0]):
                conn.write(entry[1])  # all push_job would answer: this line
            else:
                conn.handle(session.push_job(entry[0], clean, entry[1]))
            sent += 1
        return sent

    @property
    def limits(self) -> ServerLimits:
        return self.guard.limits

    def tick(self) -> None:
        """Run every session's tick() once (the loop does this every ``tick_seconds``), and close the
        connections past a timeout: not subscribed, not authorized or silent for too long."""
        limits = self.limits
        now = time.monotonic()
        for conn in list(self._connections):
            session = conn.session
            if session is None or conn._closing:
                continue
            age = now - conn.opened_at
            if not session.subscribed and age > limits.subscribe_timeout_seconds:
                conn.close("subscribe timeout")
            elif not session.authorized and age > limits.authorize_timeout_seconds:
                conn.close("authorize timeout")
            elif now - conn.last_seen > limits.idle_timeout_seconds:
                conn.close("idle timeout")
            else:
                actions = session.tick()
                if actions:
                    conn.handle(actions)
        self.guard.prune()

    def kick(self, ip: str, reason: str) -> int:
        """Close every connection from ``ip``; returns how many."""
        conns = [c for c in self._connections if c.peer == ip and not c._closing]
        for conn in conns:
            conn.close(reason)
        return len(conns)

    def kick_worker(self, ip: str, worker: str, reason: str) -> int:
        """Close every connection from ``ip`` with ``worker`` authorized on it; returns how many."""
        conns = [c for c in self._connections if c.peer == ip and not c._closing
                 and c.session is not None and worker in c.session.workers]
        for conn in conns:
            conn.close(reason)
        return len(conns)

    def _on_ban(self, ban: Ban) -> None:
        if ban.worker:
            self.kick_worker(ban.ip, ban.worker, f"worker banned: {ban.reason}")
        else:
            self.kick(ban.ip, f"banned: {ban.reason}")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self.tick()
            except Exception:
                self.log.exception("tick_failed")

    def _release_held(self, waiter: asyncio.Future[Any]) -> None:
        """A group commit is done: every connection holding lines behind it writes them (in its own order)."""
        for conn in self._waiting.pop(waiter, ()):
            conn._release()

    def _register(self, conn: _Connection) -> None:
        self._connections[conn] = None

    def _forget(self, conn: _Connection) -> None:
        was_live = conn in self._connections
        self._connections.pop(conn, None)
        if was_live and conn.session is not None:
            if self.resumes is not None:
                self.resumes.keep(conn.session, conn.peer)
            if self.allocator is not None:
                self.allocator.release(conn.session.extranonce1)
            if self.on_disconnect is not None:
                try:
                    self.on_disconnect(conn.session)
                except Exception:
                    self.log.exception("on_disconnect_failed")
