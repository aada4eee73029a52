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
from stratum_pool.jobs.manager import JobManager
from stratum_pool.metrics import PoolMetrics
from stratum_pool.protocol.actions import (
    Action,
    Authorized,
    BlockCandidate,
    ShareAccepted,
    ShareRejected,
)
from stratum_pool.protocol.session import Session, SessionConfig
from stratum_pool.rewards.crediting import credit_block
from stratum_pool.server.admin import AdminServer, normalize_ip
from stratum_pool.server.limits import Ban, BanList, BanPolicy, Guard, ServerLimits, WorkerRegistry
from stratum_pool.server.stratum import ExtranonceAllocator, StratumServer
from stratum_pool.shares.names import split_user
from stratum_pool.shares.vardiff import VardiffConfig
from stratum_pool.store.loader import SpoolLoader
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import ShareSpool

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
        return len(self._pool.server.sessions)

    @property
    def workers_online(self) -> int:
        return sum(1 for s in self._pool.server.sessions if s.authorized)

    @property
    def hashrate(self) -> float:
        return self._pool.metrics.hashrate_of(self.coin_key)


class CoinPool:
    """One coin served on one stratum port."""

    def __init__(self, settings: CoinSettings, *, node_id: int = 0,
                 clock: Callable[[], float] = time.time, metrics: PoolMetrics | None = None,
                 recorder: ShareRecorder | None = None, extranonce_prefix: bytes | None = None,
                 listen_socket: socket.socket | None = None, limits: ServerLimits | None = None,
                 ban_policy: BanPolicy | None = None, bans: BanList | None = None) -> None:
        """``extranonce_prefix`` (default: the node id) keeps extranonce1 values of several processes and
        machines apart; ``listen_socket`` is an already listening SO_REUSEPORT socket (worker processes).
        ``limits``/``ban_policy`` are the ``[limits]``/``[bans]`` settings; ``bans`` the process's ban list
        (shared by every coin)."""
        self.settings = settings
        # Where accepted shares and found blocks go to be durable (the share spool); None: in memory only.
        self.recorder = recorder
        # Addresses that passed authorization, so rejected-share counts are only kept for real accounts.
        self._authorized: OrderedDict[str, None] = OrderedDict()
        self.coin = settings.coin
        self.clock = clock
        self.stats = PoolStats()
        self.metrics = metrics if metrics is not None else PoolMetrics(clock=clock)
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
        )
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._sources: list[Any] = []
        self._on_new_block = NewBlockDeduplicator(self._new_block)
        # a block a daemon took is the new block: fetch work on top of it at once
        self.blocks = BlockSubmitter(settings, self.daemon, self.jobs.reward_for, metrics=self.metrics,
                                     recorder=recorder, clock=clock, log=log,
                                     on_accepted=lambda: self._new_block("found", None), found=self.stats.blocks)
        self.notify_port: int | None = None
        # what the API reads of this coin, and the gauges of the same figures
        self.live = CoinLive(self)
        key = coin.key
        self.metrics.connections.labels(key).set_function(lambda: self.live.connections)
        self.metrics.sessions_authorized.labels(key).set_function(lambda: self.live.workers_online)
        self.metrics.template_age.labels(key).set_function(self._template_age)
        self.metrics.watch_coin(key)

    def _template_age(self) -> float:
        template = self.jobs.template
        return self.clock() - template.received_at if template is not None else 0.0

    # ----- life cycle

    async def start(self, ready_timeout: float = 60.0) -> None:
        log.info("daemon_wait", coin=self.coin.key)
        await self.daemon.wait_ready(timeout=ready_timeout)
        await self.refresh("startup")
        await self.server.start()
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

    async def stop(self) -> None:
        # stop accepting, let block submissions in flight finish, then the rest
        await self.server.close()
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
        self.stats.templates += 1
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
                             "pool_address") if getattr(old, k) != getattr(settings, k)]
        if fixed:
            log.warning("reload_needs_restart", coin=self.coin.key, settings=fixed)
        changed = []
        if settings.vardiff != old.vardiff:
            self.session_config = _session_config(settings, self.limits)
            vardiff_config = self.session_config.vardiff
            for session in self.server.sessions:
                # running sessions keep their difficulty and move by the new rules from here on
                session.vardiff.config = vardiff_config
                session.vardiff.enabled = self.session_config.vardiff_enabled
                session.vardiff.difficulty = session.vardiff.clamp(session.vardiff.difficulty)
            changed.append("vardiff")
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
            for session in self.server.sessions:
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

    def _session_closed(self, session: Session) -> None:
        self.worker_registry.release(session.session_id)

    def _banned(self, ban: Ban) -> None:
        log.warning("ip_banned", coin=self.coin.key, ip=ban.ip, reason=ban.reason, until=ban.until)
        self.metrics.bans.labels(self.coin.key, ban.reason).inc()

    def on_action(self, action: Action) -> Awaitable[None] | None:
        """Account for a session's action. For an accepted share, returns what the miner's answer waits
        for: the share being durable in the spool."""
        if type(action) is ShareAccepted:  # the share path
            stats, coin = self.stats, self.coin
            stats.shares_accepted += 1
            stats.difficulty_accepted += action.difficulty
            self.metrics.share_accepted(coin.key, action.difficulty, coin.share_multiplier)
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
            if len(self._authorized) > MAX_AUTHORIZED_REMEMBERED:
                self._authorized.popitem(last=False)
            log.info("authorized", coin=self.coin.key, worker=action.worker, session=action.session_id)
        return None


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
        self._api_runner: Any = None
        self.admin: AdminServer | None = None  # the admin socket ([pool] admin_socket), one process alone
        self.api_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        settings, clock = self.settings, self.clock
        db = settings.database
        if db.dsn:
            # Shares are durable in the spool before a miner hears "accepted"; the loader moves them on to
            # PostgreSQL, exactly once, whenever it is reachable.
            # a record the spool could not write is still answered (server/stratum.py logs share_not_durable):
            # counted for alerting
            self.spool = ShareSpool(Path(db.spool_dir), self.spool_node_id, on_failure=self.metrics.spool_failed)
            self.recorder = ShareRecorder(self.spool, clock=clock)
            self.recorder.start()
            self.loader = SpoolLoader(self.spool, db.dsn, self.spool_node_id, credit_block, clock=clock)
            self.loader.start()
            loader = self.loader
            self.metrics.db_queue.set_function(lambda: loader.stats().backlog)
            self.metrics.spool_bytes.set_function(lambda: loader.stats().spool_bytes)
            self.metrics.db_load_failures.set_function(lambda: loader.stats().failures)
        sockets = self.listen_sockets + [None] * (len(settings.coins) - len(self.listen_sockets))
        self.coins = [CoinPool(cs, node_id=settings.node_id, clock=clock, metrics=self.metrics,
                               recorder=self.recorder, extranonce_prefix=self.extranonce_prefix,
                               listen_socket=sock, limits=settings.limits, ban_policy=settings.bans,
                               bans=self.bans) for cs, sock in zip(settings.coins, sockets, strict=True)]
        for coin in self.coins:
            await coin.start()
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
            self._api_runner, self.api_port = await start_api_server(app, api.host, api.port)
            log.info("api_listening", host=api.host, port=self.api_port)

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
        if self._api_runner is not None:
            await self._api_runner.cleanup()
            self._api_runner = None
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        for coin in self.coins:
            await coin.stop()
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
        """The active bans for the API: ip, until (unix time), reason."""
        return [{"ip": b.ip, "until": b.until, "reason": b.reason} for b in self.bans.active()]

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
