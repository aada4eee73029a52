"""The asyncio adapter for Stratum V2: sockets in, a Noise responder and an :class:`Sv2Session` behind each.

As thin as the V1 adapter it extends (:mod:`stratum_pool.server.stratum`): the Noise layer
(``protocol/v2/noise.py``) turns the socket's bytes into whole plaintext frames and each frame the session
sends back into ciphertext; the session (``protocol/v2/session.py``) turns frames into frames and actions, and
its channels' shares are judged by the same share core as V1's. Everything else is V1's: the limits and bans of
the guard, the pool's ``on_action`` (an accepted share is acknowledged only once it is durable: the frames
behind it wait in the connection's queue, as V1's lines do), slow readers dropped, timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from stratum_pool.protocol.v2.keys import ServerKeys
from stratum_pool.protocol.v2.noise import NoiseError, NoiseResponder
from stratum_pool.protocol.v2.session import Sv2Session
from stratum_pool.protocol.work import WorkSource
from stratum_pool.server.stratum import StratumServer, _Connection


class Sv2Connection(_Connection):
    """One socket: the Noise handshake, then encrypted frames to and from its :class:`Sv2Session`."""

    server: Sv2Server
    session: Sv2Session | None  # type: ignore[assignment]

    def __init__(self, server: Sv2Server) -> None:
        super().__init__(server)
        self.noise = NoiseResponder.for_server(server.keys, int(server.clock()))

    def data_received(self, data: bytes) -> None:
        session = self.session
        if self._closing or session is None:
            return
        self.last_seen = time.monotonic()
        noise = self.noise
        try:
            frames = noise.receive(data)
        except NoiseError as exc:
            self.server.metrics_handshake_failed(noise.handshake_complete)
            self.server.guard.malformed(self.peer)
            self.close(f"sv2: {exc}")
            return
        answer = noise.data_to_send()  # the handshake's answer, before any frame
        if answer and self.transport is not None:
            self.transport.write(answer)
        now = self.server.clock()
        for frame in frames:
            if self._closing:
                return
            try:
                actions = session.feed_frame(frame, now)
            except Exception:  # a bug must cost one connection, not the server
                self.server.log.exception("session_error", peer=self.peer, session=session.session_id)
                self.close("internal error")
                return
            self.handle(actions)
            if session.malformed != self._malformed_seen:
                count = session.malformed - self._malformed_seen
                self._malformed_seen = session.malformed
                self.server.guard.malformed(self.peer, count)

    def _write_now(self, data: bytes) -> None:
        """``data`` is one whole plaintext frame: it leaves encrypted, in the order it was queued."""
        if self.transport is None or self._closing:
            return
        try:
            ciphertext = self.noise.send(data)
        except NoiseError as exc:
            self.close(f"sv2: {exc}")
            return
        super()._write_now(ciphertext)


class Sv2Server(StratumServer):
    """Listens on the coin's ``sv2_port`` and runs one :class:`Sv2Session` per connection."""

    connection_class = Sv2Connection
    protocol = "v2"

    def __init__(self, host: str, port: int, session_factory: Callable[[str], Sv2Session],
                 on_action: Callable[..., Any], *, keys: ServerKeys, clock: Callable[[], float] = time.time,
                 on_handshake_failure: Callable[[bool], None] | None = None, **kwargs: Any) -> None:
        """``keys``: the pool's authority key, static key and certificate (``protocol/v2/keys.py``);
        ``on_handshake_failure(after_handshake)`` counts a connection the Noise layer refused."""
        super().__init__(host, port, cast(Callable[[str], Any], session_factory), on_action, **kwargs)
        self.keys = keys
        self.clock = clock
        self._on_handshake_failure = on_handshake_failure

    @property
    def v2_sessions(self) -> list[Sv2Session]:
        return [cast(Sv2Session, c.session) for c in self._connections if c.session is not None]

    def metrics_handshake_failed(self, after_handshake: bool) -> None:
        if self._on_handshake_failure is not None:
            self._on_handshake_failure(after_handshake)

    def broadcast(self, clean: bool, work: WorkSource) -> int:
        """New work for every channel of every connection (each session asks ``work`` for its channels' jobs,
        sending a job only once per channel); returns how many connections got some."""
        now = self.clock()
        sent = 0
        for conn in list(self._connections):
            session = conn.session
            if session is None or conn._closing or not session.working:
                continue
            actions = cast(Sv2Session, session).push_job(now)
            if actions:
                conn.handle(actions)
                sent += 1
        return sent

    def tick(self) -> None:
        """Every session's tick (vardiff on silence, batched acknowledgements, the setup timeout), and the
        idle timeout."""
        limits = self.limits
        mono, now = time.monotonic(), self.clock()
        for conn in list(self._connections):
            session = cast(Sv2Session | None, conn.session)
            if session is None or conn._closing:
                continue
            if mono - conn.last_seen > limits.idle_timeout_seconds:
                conn.close("idle timeout")
                continue
            actions = session.tick(now)
            if actions:
                conn.handle(actions)
        self.guard.prune()

    def _forget(self, conn: _Connection) -> None:
        was_live = conn in self._connections
        self._connections.pop(conn, None)
        session = cast(Sv2Session | None, conn.session)
        if was_live and session is not None:
            session.release()  # every channel's extranonce1 back to the allocator
            if self.on_disconnect is not None:
                try:
                    self.on_disconnect(session)  # type: ignore[arg-type]
                except Exception:
                    self.log.exception("on_disconnect_failed")
