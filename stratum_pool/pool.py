"""Wiring of one coin: daemons -> job manager -> stratum server, and block candidates to ``blocks.py``.

This is the only place that knows every part; each part stays testable alone.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry

from stratum_pool.blocks import BlockSubmitter, FoundBlock
from stratum_pool.chain.address import address_to_script
from stratum_pool.cluster.peers import PeerGauges, Snapshots, WorkerExchange, all_workers_registry
from stratum_pool.config import CoinSettings, Settings
from stratum_pool.daemon.gcpause import gc_paused
from stratum_pool.daemon.notify import (
    BestBlockPoller,
    BlockNotifyListener,
    LongpollWatcher,
    NewBlockDeduplicator,
    ZmqBlockSubscriber,
)
from stratum_pool.daemon.rpc import DaemonClient, DaemonEndpoint, DaemonError
from stratum_pool.hashrate import (
    HASHES_PER_DIFF1,
    WINDOWS,
    Rate,
    WorkerBook,
    WorkerFigures,
    address_history,
    figures,
    worker_history,
)
from stratum_pool.jobs.manager import JobManager
from stratum_pool.metrics import PoolMetrics
from stratum_pool.osmemory import release_free_memory
from stratum_pool.protocol.actions import (
    Action,
    Authorized,
    BlockCandidate,
    ShareAccepted,
    ShareRejected,
)
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.server.admin import AdminServer, normalize_ip
from stratum_pool.server.limits import Ban, BanList, BanPolicy, Guard, ServerLimits, WorkerRegistry
from stratum_pool.server.stratum import ExtranonceAllocator, StratumServer
from stratum_pool.server.tls import TlsError, server_context
from stratum_pool.shares.names import split_user
from stratum_pool.shares.vardiff import VardiffConfig
from stratum_pool.store.found import FILE_NAME as FOUND_BLOCKS_FILE
from stratum_pool.store.found import FoundBlockLog, FoundRecord
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import ShareSpool
from stratum_pool.webhooks import Notifier
from stratum_pool.webhooks import events as notify_events

if TYPE_CHECKING:  # imported where used: Stratum V2 (coincurve, cryptography) and the loader (psycopg) cost
    # memory a pool without them does not need
    from stratum_pool.api.http import HTTPServer
    from stratum_pool.protocol.v2.session import Sv2Session
    from stratum_pool.server.sv2 import Sv2Server
    from stratum_pool.store.loader import SpoolLoader

log = structlog.get_logger("stratum_pool.pool")

MAX_AUTHORIZED_REMEMBERED = 100_000
# How often found blocks are checked on the daemon (they mature in ~100 blocks; no hurry, but an orphan
# should void its credits before the payout worker runs).
CONFIRMATIONS_INTERVAL_SECONDS = 60.0
# share partitions are whole days: looking hourly drops one within the hour its day falls out of retention
RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass
class PoolStats:
    shares_accepted: int = 0
    difficulty_accepted: float = 0.0
    shares_rejected: Counter[str] = field(default_factory=Counter)
    blocks: list[FoundBlock] = field(default_factory=list)
    templates: int = 0
    new_blocks_seen: int = 0


class CoinLive:
    """A running ``CoinPool`` as the API reads it (``api.live.LiveView``): this process's live figures."""

    def __init__(self, pool: CoinPool) -> None:
        # coin, mode and fee change only with a restart (``CoinPool.reload``)
        self._pool = pool
        self.coin_key, self.algorithm = pool.coin.key, pool.coin.algorithm
        self.scheme, self.fee_percent = pool.settings.mode, pool.settings.fee_percent

    @property
    def stratum_port(self) -> int:
        return self._pool.port

    @property
    def height(self) -> int | None:
        template = self._pool.jobs.template
        return None if template is None else template.height

    @property
    def network_target(self) -> int | None:
        template = self._pool.jobs.template
        return None if template is None else template.target

    @property
    def connections(self) -> int:
        pool = self._pool
        return len(pool.server.sessions) + (len(pool.sv2_server.sessions) if pool.sv2_server is not None else 0)

    @property
    def workers_online(self) -> int:
        pool = self._pool
        v2 = pool.sv2_server.v2_sessions if pool.sv2_server is not None else []
        return sum(1 for s in pool.server.sessions if s.authorized) + sum(1 for s in v2 if s.working)

    @property
    def hashrate(self) -> float:
        return self._pool.metrics.hashrate_of(self.coin_key)

    def rates(self) -> dict[str, Rate]:
        """The coin's hashrate over each window (``hashrate.WINDOWS``), with the share count behind it."""
        return self._pool.metrics.meter(self.coin_key).rates(self._pool.clock())

    def best_share(self) -> dict[str, float]:
        """The best share (achieved difficulty, share units) of any worker: since the last network block, in
        this session of the pool (since it started) and of all time (as far as this process knows)."""
        book = self._pool.worker_book
        workers = list(book.workers.values())
        session = max((w.best_ever for w in workers), default=0.0)
        return {"since_block": max((book.best_round(w) for w in workers), default=0.0),
                "session": session, "all_time": session}

    def workers_of(self, address: str) -> list[WorkerFigures]:
        """The live workers of ``address`` on this coin (those that authorized in this process), with the
        device of each one connected (firmware, current difficulty)."""
        found = figures(self._pool.worker_book, address, self._pool.clock())
        if not found:
            return found
        devices = {}
        for session in self._pool.server.sessions:
            for user, owner in session.workers.items():
                if owner == address:
                    devices[user.partition(".")[2]] = (session.user_agent, session.difficulty)
        return [replace(f, connected=True, user_agent=devices[f.name][0], difficulty=devices[f.name][1])
                if f.name in devices else f for f in found]

    def devices(self) -> dict[str, int]:
        """Authorized connections by firmware (mining.subscribe's user agent; "" when it sent none)."""
        return dict(Counter(s.user_agent for s in self._pool.server.sessions if s.authorized))

    def address_history(self, address: str, start: float, end: float, step: float) -> dict[float, float]:
        """Hashes per ``step`` bucket of ``address``'s workers in [start, end), from memory."""
        return address_history(self._pool.worker_book, address, start, end, step)

    def worker_history(self, address: str, start: float, end: float, step: float) -> dict[str, dict[float, float]]:
        """Hashes per ``step`` bucket of each of ``address``'s workers in [start, end), from memory."""
        return worker_history(self._pool.worker_book, address, start, end, step)

    def pool_history(self, start: float, end: float, step: float) -> dict[float, float]:
        """Hashes per ``step`` bucket of the whole coin in [start, end), from memory."""
        return self._pool.metrics.meter(self.coin_key).history(start, end, step)

    def miners(self) -> list[tuple[str, float, float]]:
        """Every address this process has seen: (address, hashrate over 10 minutes, best share ever)."""
        now, out = self._pool.clock(), []
        for address, workers in self._pool.worker_book.by_address.items():
            out.append((address, sum(w.meter.rate(now, WINDOWS["10m"]).hashrate for w in workers.values()),
                        max((w.best_ever for w in workers.values()), default=0.0)))
        return out

    def found_blocks(self, limit: int, finder: str | None = None) -> list[FoundRecord]:
        """This coin's found blocks kept without a database (memory and the local file), the newest first."""
        return self._pool.found_blocks.recent(self.coin_key, limit, finder)


class CoinPool:
    """One coin served on one stratum port."""

    def __init__(self, settings: CoinSettings, *, node_id: int = 0,
                 clock: Callable[[], float] = time.time, metrics: PoolMetrics | None = None,
                 recorder: ShareRecorder | None = None, extranonce_prefix: bytes | None = None,
                 listen_socket: socket.socket | None = None, limits: ServerLimits | None = None,
                 ban_policy: BanPolicy | None = None, bans: BanList | None = None,
                 found_blocks: FoundBlockLog | None = None, notifier: Notifier | None = None) -> None:
        """``extranonce_prefix`` (default: the node id) keeps extranonce1 values of several processes and
        machines apart; ``listen_socket`` is an already listening SO_REUSEPORT socket (worker processes).
        ``limits``/``ban_policy`` are the ``[limits]``/``[bans]`` settings; ``bans`` the process's ban list
        (shared by every coin). ``found_blocks``: where found blocks are kept without a database (default: in
        memory only); ``notifier``: the ``[[notify]]`` receivers (found blocks go to them)."""
        self.settings = settings
        self.notifier = notifier
        # Where accepted shares and found blocks go to be durable (the share spool); None: in memory only.
        self.recorder = recorder
        # Addresses that passed authorization, so rejected-share counts are only kept for real accounts.
        self._authorized: OrderedDict[str, None] = OrderedDict()
        self.coin = settings.coin
        self.clock = clock
        self.stats = PoolStats()
        self.metrics = metrics if metrics is not None else PoolMetrics(clock=clock)
        # each worker's hashrate and best shares, in memory (the API's live figures, with or without a database)
        self.worker_book = WorkerBook()
        self.found_blocks = found_blocks if found_blocks is not None else FoundBlockLog(None)
        self.daemon = DaemonClient(
            [DaemonEndpoint(name=d.name, url=d.url, user=d.user or None, password=d.password or None,
                            cookie_file=d.cookie_file or None, timeout=d.timeout_seconds)
             for d in settings.daemons],
            settings.coin,
        )
        self.daemon.observer = self.metrics.rpc_observer
        coin = settings.coin

        def check(address: str) -> bytes:
            return address_to_script(address, coin)

        self.check_address = check
        self.jobs = JobManager(
            coin,
            extranonce_size=4 + settings.extranonce2_size,
            pool_tag=settings.pool_tag.encode(),
            address_to_script=check,
            solo=settings.mode == "solo",
            pool_address=settings.pool_address,
            fee_address=settings.fee_address,
            fee_ppm=settings.fee_ppm,
            node_id=node_id,
            clock=clock,
        )
        self.limits = limits if limits is not None else ServerLimits()
        self.session_config = _session_config(settings, self.limits)
        self.share_rules = self.session_config.make_rules()
        self.guard = Guard(self.limits, ban_policy, bans, on_ban=self._banned)
        self.bans = self.guard.bans
        self.worker_registry = WorkerRegistry(self.limits.max_workers_per_account)
        # The first extranonce1 byte is the node id, so several pool machines never hand out the same one.
        self.allocator = ExtranonceAllocator(
            prefix=bytes([node_id]) if extranonce_prefix is None else extranonce_prefix, size=4)
        self.server = StratumServer(
            settings.stratum_host, settings.stratum_port, self._new_session, self.on_action,
            allocator=self.allocator, sock=listen_socket, reuse_port=listen_socket is not None,
            guard=self.guard, on_disconnect=self._session_closed,
            tls_context=(server_context(settings.tls_cert_file, settings.tls_key_file)
                         if settings.tls_cert_file else None),
            tls_port=settings.tls_port, on_tls=self._tls_result, proxy_protocol=settings.proxy_protocol,
            resume_seconds=settings.resume_seconds, tls_proxy_protocol=settings.tls_proxy_protocol,
        )
        # Stratum V2 beside V1: the same sessions' rules, guard, allocator and accounting behind Noise
        self.sv2_server: Sv2Server | None = None
        self._sv2_sessions = 0
        if settings.sv2_port:
            from stratum_pool.protocol.v2.keys import ServerKeys
            from stratum_pool.server.sv2 import Sv2Server

            self.sv2_keys = ServerKeys.from_file(settings.sv2_authority_key_file, int(clock()))
            self.sv2_server = Sv2Server(
                settings.stratum_host, settings.sv2_port, self._new_sv2_session, self.on_action,
                keys=self.sv2_keys, clock=clock, guard=self.guard, on_disconnect=self._session_closed,
                reuse_port=listen_socket is not None, on_handshake_failure=self._sv2_noise_failed,
            )
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._sources: list[Any] = []
        self._on_new_block = NewBlockDeduplicator(self._new_block)
        # a block a daemon took is the new block: fetch work on top of it at once
        self.blocks = BlockSubmitter(settings, self.daemon, self.jobs.reward_for, metrics=self.metrics,
                                     recorder=recorder, clock=clock, log=log,
                                     on_accepted=lambda: self._new_block("found", None), found=self.stats.blocks,
                                     on_found=self._found)
        self.notify_port: int | None = None
        # what the API reads of this coin, and the gauges of the same figures
        self.live = CoinLive(self)
        key = coin.key
        self.metrics.connections.labels(key).set_function(lambda: self.live.connections)
        self.metrics.sessions_authorized.labels(key).set_function(lambda: self.live.workers_online)
        self.metrics.template_age.labels(key).set_function(self._template_age)
        self.metrics.watch_coin(key)
        for listener in (self.server, self.sv2_server):
            if listener is not None:
                self.metrics.watch_protocol(key, listener.protocol, _listener_figures(listener))

    async def _found(self, candidate: BlockCandidate, found: FoundBlock) -> None:
        record = FoundRecord(
            self.coin.key, found.height, found.block_hash, found.address, split_user(found.worker)[1],
            self.jobs.reward_for(candidate.job), self.settings.mode, found.accepted, found.reason, found.time)
        if found.accepted and self.notifier is not None:  # only queued: sent by the notifier's own tasks
            self.notifier.emit(notify_events.block_found(
                record.coin, self.coin.symbol, record.height, record.hash, record.finder, record.worker,
                record.reward, record.found_at))
        await self.found_blocks.add(record)

    def _template_age(self) -> float:
        template = self.jobs.template
        return self.clock() - template.received_at if template is not None else 0.0

    # ----- life cycle

    async def start(self, ready_timeout: float = 60.0) -> None:
        log.info("daemon_wait", coin=self.coin.key)
        await self.daemon.wait_ready(timeout=ready_timeout)
        await self.refresh("startup")
        await self.server.start()
        if self.sv2_server is not None:
            await self.sv2_server.start()
        s = self.settings
        if s.notify_listen:
            host, _, port = s.notify_listen.rpartition(":")
            listener = BlockNotifyListener(self._on_new_block, host, int(port))
            self.notify_port = await listener.start_listening()
            self._sources.append(listener)
        if s.zmq_hashblock:
            self._sources.append(ZmqBlockSubscriber(s.zmq_hashblock, self._on_new_block))
        if s.longpoll:
            self._sources.append(LongpollWatcher(self.daemon, self._on_new_block, self._on_longpoll_template))
        self._sources.append(BestBlockPoller(self.daemon, self._on_new_block, interval=s.poll_interval_seconds))
        for source in self._sources:
            source.start()
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="template-refresh"))
        log.info("pool_started", coin=self.coin.key, algorithm=self.coin.algorithm, port=self.port,
                 mode=s.mode, height=self.jobs.template.height if self.jobs.template else None)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int | None:
        """The stratum+tls port (None: no TLS)."""
        return self.server.tls_port if self.server.tls_context is not None else None

    async def stop(self) -> None:
        # stop accepting, let block submissions in flight finish, then the rest
        await self.server.close()
        if self.sv2_server is not None:
            await self.sv2_server.close()
        await self.blocks.drain(timeout=30)
        for source in self._sources:
            await source.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.daemon.close()
        log.info("pool_stopped", coin=self.coin.key)

    # ----- work

    async def refresh(self, reason: str, since: float | None = None) -> bool:
        """Fetch a template; push it to every session (``clean_jobs`` when it is a new block).

        ``since`` is when the new block was learnt of (monotonic), for the new-block-to-notify histogram.
        """
        async with self._refresh_lock:
            gbt = await self.daemon.getblocktemplate()
            new_block = self._apply(gbt, since)
        if new_block:
            self._log_new_work(reason)
        return new_block

    def _apply(self, gbt: dict[str, Any], since: float | None) -> bool:
        """Make ``gbt`` the work and send it to every session (hold the refresh lock); True for a new block."""
        # from the answer to the last miner's write: nothing but the work (no collector, logs or metrics)
        with gc_paused():
            new_block = self.jobs.update(gbt)
            self.server.broadcast(new_block, self.jobs)
            if self.sv2_server is not None:
                self.sv2_server.broadcast(new_block, self.jobs)
        self.stats.templates += 1
        if new_block:
            self.worker_book.new_block()
        self.metrics.templates.labels(self.coin.key, str(new_block).lower()).inc()
        if new_block and since is not None:
            self.metrics.new_block_to_notify.labels(self.coin.key).observe(time.monotonic() - since)
        return new_block

    async def _on_longpoll_template(self, gbt: dict[str, Any]) -> None:
        """The long poll's answer is a whole template: use it, instead of fetching the same one again (its
        new-block signal, which follows, then finds the work already on that block)."""
        since = time.monotonic()
        async with self._refresh_lock:
            if self._working_on(gbt.get("previousblockhash")):
                return  # no new block (another source was first): fresher transactions come with the timer
            new_block = self._apply(gbt, since)
        if new_block:
            self.stats.new_blocks_seen += 1
            self._log_new_work("longpoll")

    def _log_new_work(self, reason: str) -> None:
        template = self.jobs.template
        assert template is not None
        log.info("new_work", coin=self.coin.key, reason=reason, height=template.height,
                 prevhash=template.prevhash_hex, transactions=len(template.transactions),
                 sessions=len(self.server.sessions))

    def _working_on(self, blockhash: object) -> bool:
        """Whether the current work already builds on ``blockhash`` (display hex)."""
        template = self.jobs.template
        return template is not None and blockhash is not None and blockhash == template.prevhash_hex

    async def _new_block(self, source: str, blockhash: str | None) -> None:
        if self._working_on(blockhash):
            return  # already working on top of it
        self.stats.new_blocks_seen += 1
        try:
            await self.refresh(source, since=time.monotonic())
        except DaemonError as exc:
            log.warning("refresh_failed", coin=self.coin.key, source=source, error=str(exc))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.template_refresh_seconds)
            try:
                await self.refresh("timer")
            except DaemonError as exc:
                log.warning("refresh_failed", coin=self.coin.key, source="timer", error=str(exc))

    def reload(self, settings: CoinSettings) -> list[str]:
        """Apply what can change without dropping miners (vardiff and difficulty policy); returns what
        changed. Ports, daemons, coin and mode need a restart."""
        old = self.settings
        fixed = [k for k in ("coin", "mode", "stratum_host", "stratum_port", "daemons", "extranonce2_size",
                             "pool_address", "tls_port", "proxy_protocol", "tls_proxy_protocol", "resume_seconds")
                 if getattr(old, k) != getattr(settings, k)]
        if bool(old.tls_cert_file) != bool(settings.tls_cert_file):  # a TLS port opened or closed
            fixed.append("tls_cert_file")
        if fixed:
            log.warning("reload_needs_restart", coin=self.coin.key, settings=fixed)
        changed = []
        if settings.vardiff != old.vardiff:
            self.session_config = _session_config(settings, self.limits)
            vardiff_config = self.session_config.vardiff
            v2 = self.sv2_server.v2_sessions if self.sv2_server is not None else []
            vardiffs = [s.vardiff for s in self.server.sessions]
            vardiffs += [c.core.vardiff for s in v2 for c in s.channels.values()]
            for vardiff in vardiffs:
                # running sessions keep their difficulty and move by the new rules from here on
                vardiff.config = vardiff_config
                vardiff.enabled = self.session_config.vardiff_enabled
                vardiff.difficulty = vardiff.clamp(vardiff.difficulty)
            changed.append("vardiff")
        if self.reload_tls(settings):
            changed.append("tls")
        if self.server.tls_context is not None and settings.tls_cert_file:
            self.settings = replace(old, vardiff=settings.vardiff, tls_cert_file=settings.tls_cert_file,
                                    tls_key_file=settings.tls_key_file)
        else:
            self.settings = replace(old, vardiff=settings.vardiff)
        return changed

    def apply_limits(self, limits: ServerLimits, policy: BanPolicy) -> list[str]:
        """SIGHUP: new ``[limits]`` and ``[bans]`` for new events (open connections stay); returns what
        changed."""
        changed = []
        if limits != self.limits:
            self.limits = self.guard.limits = limits
            self.worker_registry.max_per_account = limits.max_workers_per_account
            self.session_config = replace(self.session_config, submits_per_second=limits.submits_per_second,
                                          submit_burst=limits.submit_burst)
            sessions: list[Session | Sv2Session] = [*self.server.sessions]
            if self.sv2_server is not None:
                sessions += self.sv2_server.v2_sessions
            for session in sessions:
                session.config = replace(session.config, submits_per_second=limits.submits_per_second,
                                         submit_burst=limits.submit_burst)
            changed.append("limits")
        if policy != self.guard.policy:
            self.guard.policy = policy
            changed.append("bans")
        self.guard.reset()
        return changed

    # ----- sessions and their actions

    def _new_session(self, peer_ip: str) -> Session:
        extranonce1 = self.allocator.allocate()
        return Session(self.session_config, self.jobs, self.check_address, extranonce1.hex(), extranonce1,
                       self.clock, self.share_rules, admit=self.worker_registry.admit)

    def _new_sv2_session(self, peer_ip: str) -> Sv2Session:
        from stratum_pool.protocol.v2.session import Sv2Session

        self._sv2_sessions += 1
        return Sv2Session(self.session_config, self.jobs, self.check_address, f"v2-{self._sv2_sessions}",
                          self.allocator.allocate, self.allocator.release, self.clock(), rules=self.share_rules,
                          admit=self.worker_registry.admit)

    def _sv2_noise_failed(self, after_handshake: bool) -> None:
        self.metrics.sv2_noise_failures.labels(self.coin.key, "transport" if after_handshake else "handshake").inc()

    @property
    def sv2_url(self) -> str:
        """``stratum2+tcp://HOST:PORT/AUTHORITY_KEY`` as a miner enters it ("" without Stratum V2)."""
        if self.sv2_server is None:
            return ""
        host = self.settings.stratum_host if self.settings.stratum_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"stratum2+tcp://{host}:{self.sv2_server.port}/{self.sv2_keys.authority_key}"

    def _session_closed(self, session: Session | Sv2Session) -> None:
        self.worker_registry.release(session.session_id)

    def _tls_result(self, result: str) -> None:
        self.metrics.tls_handshakes.labels(self.coin.key, result).inc()

    def reload_tls(self, settings: CoinSettings) -> bool:
        """SIGHUP: re-read the certificate and key (a renewal): new TLS connections get them, open ones keep
        theirs. A file that cannot be loaded keeps the old ones (logged). True when a new pair is in use."""
        if not settings.tls_cert_file or self.server.tls_context is None:
            return False
        try:
            self.server.tls_context = server_context(settings.tls_cert_file, settings.tls_key_file)
        except TlsError as exc:
            log.error("tls_reload_failed", coin=self.coin.key, error=str(exc))
            return False
        log.info("tls_certificate_loaded", coin=self.coin.key, cert=settings.tls_cert_file)
        return True

    def _banned(self, ban: Ban) -> None:
        if ban.worker:  # one worker name refused from that address; its neighbours mine on
            log.warning("worker_banned", coin=self.coin.key, ip=ban.ip, worker=ban.worker, reason=ban.reason,
                        until=ban.until)
        else:
            log.warning("ip_banned", coin=self.coin.key, ip=ban.ip, reason=ban.reason, until=ban.until)
        (self.metrics.worker_bans if ban.worker else self.metrics.bans).labels(self.coin.key, ban.reason).inc()

    def on_action(self, action: Action) -> Awaitable[None] | None:
        """Account for a session's action. For an accepted share, returns what the miner's answer waits
        for: the share being durable in the spool."""
        if type(action) is ShareAccepted:  # the share path
            stats, coin = self.stats, self.coin
            stats.shares_accepted += 1
            stats.difficulty_accepted += action.difficulty
            self.metrics.share_accepted(coin.key, action.difficulty, coin.share_multiplier)
            self.worker_book.accepted(action.worker, action.address, action.time,
                                      action.difficulty * HASHES_PER_DIFF1 / coin.share_multiplier, action.achieved)
            if self.recorder is not None:
                return self.recorder.share(coin.key, action)[1]
        elif isinstance(action, ShareRejected):
            self.stats.shares_rejected[action.reason] += 1
            self.metrics.share_rejected(self.coin.key, action.reason)
            log.debug("share_rejected", worker=action.worker, reason=action.reason, job=action.job_id)
            if self.recorder is not None:
                address = split_user(action.worker)[0]
                self.recorder.rejected(self.coin.key, action, address if address in self._authorized else "")
        elif isinstance(action, BlockCandidate):
            self.blocks.submit_soon(action)
        elif isinstance(action, Authorized):
            self._authorized[action.address] = None
            self._authorized.move_to_end(action.address)
            self.worker_book.authorized(action.worker, action.address, self.clock())
            if len(self._authorized) > MAX_AUTHORIZED_REMEMBERED:
                self._authorized.popitem(last=False)
            log.info("authorized", coin=self.coin.key, worker=action.worker, session=action.session_id)
        return None


def _listener_figures(listener: StratumServer) -> Callable[[], tuple[int, int, int]]:
    return lambda: (listener.shares_accepted, listener.shares_rejected, len(listener.sessions))


def _session_config(settings: CoinSettings, limits: ServerLimits) -> SessionConfig:
    vd = settings.vardiff
    return SessionConfig(
        submits_per_second=limits.submits_per_second,
        submit_burst=limits.submit_burst,
        coin=settings.coin,
        extranonce2_size=settings.extranonce2_size,
        version_mask=settings.version_mask,
        suggestion_policy=vd.suggestion_policy,  # type: ignore[arg-type]
        minimum_difficulty=vd.minimum,
        maximum_difficulty=vd.maximum,
        initial_difficulty=vd.initial,
        vardiff=VardiffConfig(target_interval=vd.target_seconds, retarget_interval=vd.retarget_seconds,
                              minimum=vd.minimum, maximum=vd.maximum),
        vardiff_enabled=vd.suggestion_policy != "fixed",
    )


class Pool:
    """Every configured coin in one process, with the HTTP API (dashboard, JSON, /metrics) beside them."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time, *,
                 extranonce_prefix: bytes | None = None, listen_sockets: Sequence[socket.socket | None] = (),
                 spool_node_id: int | None = None, workers_dir: Path | None = None, worker_index: int = 0) -> None:
        """A worker process of a multi-process pool passes its extranonce1 slice, the listening sockets
        (one per coin), the identity of its share spool (workers of one node must not share one), and the
        supervisor's directory the workers share (``workers_dir``) with its own index: metrics and bans go
        through it (``peers.WorkerExchange``), and the worker serving the API serves every worker's metrics
        and live figures (``peers.AllWorkers``, ``peers.PeerGauges``)."""
        self.settings = settings
        self.clock = clock
        self.extranonce_prefix = extranonce_prefix
        self.listen_sockets = list(listen_sockets)
        self.spool_node_id = settings.node_id if spool_node_id is None else spool_node_id
        self.workers_dir = workers_dir
        self.worker_index = worker_index
        # the other workers' metrics, read by /metrics and the JSON API of the worker serving them
        self.peer_snapshots = Snapshots(workers_dir, worker_index) if workers_dir is not None else None
        self.metrics = PoolMetrics(clock=clock)
        self.spool: ShareSpool | None = None
        self.recorder: ShareRecorder | None = None
        self.loader: SpoolLoader | None = None
        self.coins: list[CoinPool] = []
        # One ban list for every coin of this process: an IP banned on one port is refused on all.
        self.bans = BanList()
        self._api_server: HTTPServer | None = None
        self.admin: AdminServer | None = None  # the admin socket ([pool] admin_socket), one process alone
        self.api_port: int | None = None
        self.notifier = Notifier(settings.notify, clock=clock)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        settings, clock = self.settings, self.clock
        db = settings.database
        if db.dsn:
            # Shares are durable in the spool before a miner hears "accepted"; the loader moves them on to
            # PostgreSQL, exactly once, whenever it is reachable.
            # a record the spool could not write is still answered (server/stratum.py logs share_not_durable):
            # counted for alerting
            self.spool = ShareSpool(Path(db.spool_dir), self.spool_node_id, on_failure=self.metrics.spool_failed,
                                    group_commit_seconds=db.group_commit_ms / 1000)
            self.recorder = ShareRecorder(self.spool, clock=clock)
            spool = self.spool

            def spool_figures() -> tuple[int, int]:
                stats = spool.stats()
                return stats.fsyncs, stats.records_written

            self.metrics.watch_spool(spool_figures)
            self.recorder.start()
            from stratum_pool.rewards.crediting import credit_block
            from stratum_pool.store.loader import SpoolLoader

            self.loader = SpoolLoader(self.spool, db.dsn, self.spool_node_id, credit_block, clock=clock,
                                      batch_interval=db.load_interval_seconds)
            self.loader.start()
            loader = self.loader
            self.metrics.db_queue.set_function(lambda: loader.stats().backlog)
            self.metrics.spool_bytes.set_function(lambda: loader.stats().spool_bytes)
            self.metrics.db_load_failures.set_function(lambda: loader.stats().failures)
        found_blocks = FoundBlockLog(None)
        if not db.dsn and (self.workers_dir is None or self.worker_index == 0):
            # without a database, found blocks are kept in a small local file (the API's worker writes it)
            found_blocks = FoundBlockLog(Path(db.found_blocks_file or Path(db.spool_dir) / FOUND_BLOCKS_FILE))
            try:
                found_blocks.load()
            except OSError as exc:
                log.warning("found_blocks_unreadable", path=str(found_blocks.path), error=str(exc))
        sockets = self.listen_sockets + [None] * (len(settings.coins) - len(self.listen_sockets))
        self.coins = [CoinPool(cs, node_id=settings.node_id, clock=clock, metrics=self.metrics,
                               recorder=self.recorder, extranonce_prefix=self.extranonce_prefix,
                               listen_socket=sock, limits=settings.limits, ban_policy=settings.bans,
                               bans=self.bans, found_blocks=found_blocks, notifier=self.notifier)
                      for cs, sock in zip(settings.coins, sockets, strict=True)]
        for coin in self.coins:
            await coin.start()
        if self.notifier:
            self.notifier.start()
            self._tasks.append(asyncio.create_task(self._workers_watch(), name="notify-workers"))
        if db.dsn:
            for coin in self.coins:
                self._tasks.append(asyncio.create_task(self._confirmations_loop(coin), name="confirmations"))
            if db.retention_days and self.worker_index == 0:  # one process of a node is enough
                self._tasks.append(asyncio.create_task(self._retention_loop(), name="retention"))
        if self.workers_dir is not None:
            exchange = WorkerExchange(self.workers_dir, self.worker_index, self.metrics.registry, self.bans)
            self._tasks.append(asyncio.create_task(exchange.run(), name="worker-exchange"))
        if settings.admin_socket and self.workers_dir is None:  # with workers, the supervisor listens on it
            self.admin = AdminServer(settings.admin_socket, {"bans.lift": self._admin_lift_ban})
            await self.admin.start()
        api = self.settings.api
        if api.enabled:
            from stratum_pool.api import CoinPoolView, RateLimitSettings, create_app, start_api_server

            snapshots = self.peer_snapshots
            peers = PeerGauges(snapshots) if snapshots is not None else None

            app = create_app(
                self.settings.database.dsn or None, [CoinPoolView(c.live, peers) for c in self.coins],
                self._served_metrics() if api.metrics_enabled else None,
                rate_limit=RateLimitSettings(requests_per_second=api.requests_per_second, burst=api.burst,
                                             client_ip_header=api.client_ip_header),
                bans=self.ban_rows,
            )
            self._api_server, self.api_port = await start_api_server(
                app, api.host, api.port, max_connections=api.max_connections,
                on_refused=self.metrics.api_connections_refused.inc)
        # imports, config and the first template leave megabytes free: back to the OS once the callbacks
        # still holding some of it are done (osmemory: not after every template)
        asyncio.get_running_loop().call_soon(release_free_memory)

    async def _workers_watch(self) -> None:
        """Worker offline and back, for the receivers that want to hear of it: checked a few times within
        the shortest offline time any receiver asks for."""
        shortest = min(n.offline_minutes for n in self.settings.notify) * 60
        interval = min(15.0, max(0.1, shortest / 4))
        while True:
            await asyncio.sleep(interval)
            for coin in self.coins:
                self.notifier.check_workers(coin.coin.key, [(w.address, w.name, w.meter.last_share)
                                                            for w in coin.worker_book.workers.values()])

    def _served_metrics(self) -> CollectorRegistry:
        if self.peer_snapshots is None:
            return self.metrics.registry
        return all_workers_registry(self.metrics.registry, self.peer_snapshots)

    async def stop(self) -> None:
        """Stop accepting miners, flush every acknowledged share to the spool (and, if the database answers,
        into it), then close."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._api_server is not None:
            await self._api_server.close()
            self._api_server = None
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        for coin in self.coins:
            await coin.stop()
        await self.notifier.stop(drain_seconds=5.0)  # found blocks' messages have a moment to go out
        if self.recorder is not None:
            await self.recorder.stop()
        if self.loader is not None:
            await self.loader.stop(drain_seconds=5.0)
        if self.spool is not None:
            await self.spool.close()

    def reload(self, settings: Settings) -> list[str]:
        """SIGHUP: apply the reloadable part of a freshly read config to every coin."""
        from stratum_pool.logs import configure_logging

        changed: list[str] = []
        if (settings.log_level, settings.log_format) != (self.settings.log_level, self.settings.log_format):
            configure_logging(settings.log_level, settings.log_format)
            changed.append("logging")
        lifted = self.bans.clear()
        if lifted:
            log.info("bans_lifted", count=lifted)
        for coin in self.coins:
            changed += [f"{coin.coin.key}.{c}" for c in coin.apply_limits(settings.limits, settings.bans)]
        by_key = {cs.coin.key: cs for cs in settings.coins}
        for coin in self.coins:
            new = by_key.get(coin.coin.key)
            if new is None:
                log.warning("reload_needs_restart", coin=coin.coin.key, settings=["coin removed"])
                continue
            changed += [f"{coin.coin.key}.{c}" for c in coin.reload(new)]
        self.settings = replace(self.settings, log_level=settings.log_level, log_format=settings.log_format,
                                coins=tuple(c.settings for c in self.coins), limits=settings.limits,
                                bans=settings.bans)
        log.info("config_reloaded", changed=changed)
        return changed

    def _admin_lift_ban(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``stratum-pool bans lift IP``: at once, on every coin of this process."""
        ip = normalize_ip(str(request.get("ip", "")))
        lifted = self.bans.lift(ip)
        log.info("ban_lifted", ip=ip, was_banned=lifted)
        return {"ip": ip, "lifted": lifted}

    def ban_rows(self) -> list[dict[str, object]]:
        """The active bans for the API: ip, until (unix time), reason, worker ("" for the whole address)."""
        return [{"ip": b.ip, "until": b.until, "reason": b.reason, "worker": b.worker} for b in self.bans.active()]

    async def _confirmations_loop(self, coin: CoinPool, interval: float = CONFIRMATIONS_INTERVAL_SECONDS) -> None:
        """Follow found blocks on the daemon: orphaned ones void their credits, mature ones credit balances."""
        from stratum_pool.rewards.confirmations import track_confirmations

        while True:
            try:
                await track_confirmations(self.settings.database.dsn, coin.daemon, coin.coin)
            except Exception as exc:  # a database or daemon outage: try again next round
                log.warning("confirmations_failed", coin=coin.coin.key, error=str(exc))
            await asyncio.sleep(interval)

    async def _retention_loop(self, interval: float = RETENTION_INTERVAL_SECONDS) -> None:
        """Drop share partitions older than ``[database] retention_days`` (store/retention.py keeps the ones a
        pending block's window or an open PROP round still needs)."""
        from datetime import UTC, datetime

        from stratum_pool.store.retention import prune_shares

        db = self.settings.database
        prop = [cs.coin.key for cs in self.settings.coins if cs.mode == "prop"]
        while True:
            # each PPLNS coin's next block is paid from the last factor x network difficulty of shares
            windows: dict[str, float | None] = {}
            for coin in self.coins:
                if coin.settings.mode == "pplns":
                    template = coin.jobs.template
                    windows[coin.coin.key] = (coin.settings.pplns_window_factor * coin.coin.diff1_target
                                              / template.target if template is not None else None)
            try:
                report = await asyncio.to_thread(prune_shares, db.dsn, db.retention_days,
                                                 datetime.fromtimestamp(self.clock(), UTC), prop, windows)
                if report.dropped or report.kept_for_windows:
                    log.info("share_partitions_pruned", dropped=report.dropped,
                             kept_for_windows=report.kept_for_windows, retention_days=db.retention_days)
            except Exception as exc:  # a database outage: try again next round
                log.warning("share_retention_failed", error=str(exc))
            await asyncio.sleep(interval)


if TYPE_CHECKING:
    from stratum_pool.api.live import LiveView

    _live_conforms: type[LiveView] = CoinLive
