"""Scale-out on one machine: ``workers = N`` pool processes sharing each stratum port.

A supervisor (:class:`Supervisor`; ``stratum-pool serve`` with ``workers > 1``, or
``python -m stratum_pool.serve supervise --config FILE``) starts N worker processes
(``python -m stratum_pool.serve worker --config FILE --index I``), each a full pool: its own
event loop (uvloop when installed), daemon client, job manager, share rules and sessions. They listen
on the same port with SO_REUSEPORT, so the kernel spreads new connections over them, and each hands out
extranonce1 values from its own slice (``cluster.worker``): the first byte is ``pool.node_id``, the second
the worker index, so no two processes (and no two pool machines with distinct node ids) ever give a miner
the same coinbase.

The supervisor

* restarts a worker that dies (backing off from 1 s up to 30 s while it keeps dying young);
* forwards SIGTERM/SIGINT to every worker as SIGTERM, waits for them (20 s, then SIGKILL) and exits;
* passes SIGHUP (``systemctl reload``) on to every worker, which re-reads the config as a single-process pool
  does (settings that need a restart, such as ``workers``, wait for one);
* owns each coin's ``notify_listen`` UDP address and relays every ``stratum-pool notify`` datagram to
  each worker (a UDP port shared with SO_REUSEPORT would hand a datagram to one worker only); workers
  listen on an ephemeral loopback port they report to the supervisor.

ZMQ, long polling and polling work unchanged in every worker (each subscribes/polls on its own). The HTTP API
runs in worker 0; every worker writes its metrics each second to a directory the supervisor makes (under
``$RUNTIME_DIRECTORY`` when systemd gives one), and worker 0's ``/metrics`` serves all of them, each sample
labelled with its ``worker``; bans go the same way (``cluster.peers``).
Workers die with the supervisor (PR_SET_PDEATHSIG) even when it is killed with SIGKILL.

The supervisor never imports the pool: a worker is a process running ``stratum_pool.serve`` (what runs a
``Pool``, one process or a worker), so this folder sits below the pool and the pool may use ``cluster.peers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from stratum_pool.cluster.peers import write_lift
from stratum_pool.cluster.worker import MAX_WORKERS, STATUS_TAG
from stratum_pool.config import Settings
from stratum_pool.server.admin import AdminServer, normalize_ip
from stratum_pool.server.sdnotify import SystemdNotifier

log = structlog.get_logger("stratum_pool.cluster.supervisor")

# The module a worker process runs (``python -m WORKER_MODULE worker ...``): started, never imported.
WORKER_MODULE = "stratum_pool.serve"
STOP_TIMEOUT_SECONDS = 20.0
RESTART_BACKOFF_MIN = 1.0
RESTART_BACKOFF_MAX = 30.0
# A worker that lived this long before dying is restarted after the minimum backoff again.
HEALTHY_AFTER_SECONDS = 60.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A SO_REUSEPORT listening socket on ``host:port``, inheritable by a worker.

    The supervisor binds every worker's socket before any connection exists and keeps it across restarts:
    Linux refuses a new SO_REUSEPORT bind on a port that already carries established connections, so a
    restarted worker could not bind the port itself."""
    from stratum_pool.server.stratum import LISTEN_BACKLOG

    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """In the child (preexec): get SIGTERM when the supervisor dies, however it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Relay(asyncio.DatagramProtocol):
    """The configured notify_listen socket of one coin: every datagram goes to each worker's port."""

    def __init__(self, supervisor: Supervisor, coin_index: int) -> None:
        self.supervisor = supervisor
        self.coin_index = coin_index
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport (uvloop's or asyncio's)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is None:
            return
        for worker in self.supervisor.workers:
            port = worker.notify_ports.get(self.coin_index)
            if port:
                with contextlib.suppress(OSError):
                    self.transport.sendto(data, ("127.0.0.1", port))


@dataclasses.dataclass
class WorkerProcess:
    index: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF_MIN
    notify_ports: dict[int, int] = dataclasses.field(default_factory=dict)
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class Supervisor:
    def __init__(self, settings: Settings, config_path: str | Path, *, python: str | None = None,
                 workers: int | None = None) -> None:
        self.settings = settings
        self.config_path = str(config_path)
        self.python = python or sys.executable
        count = workers if workers is not None else settings.workers
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS}, got {count}")
        for cs in settings.coins:
            if cs.stratum_port == 0:
                raise ValueError(f"{cs.coin.key}: stratum_port 0 cannot be shared by workers; give a port")
        self.workers = [WorkerProcess(i) for i in range(count)]
        # each worker's listening socket per coin, bound once and kept across restarts
        self._sockets: dict[int, list[socket.socket]] = {}
        self.stopping = asyncio.Event()
        self._relays: list[asyncio.DatagramTransport] = []
        self._tasks: list[asyncio.Task[None]] = []
        # what the workers share: each one's metrics and bans (cluster.peers)
        self.workers_dir: Path | None = None
        self._admin: AdminServer | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        # systemctl reload: every worker re-reads the config (the supervisor's own settings need a restart)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        for i, cs in enumerate(self.settings.coins):
            if cs.notify_listen:
                host, _, port = cs.notify_listen.rpartition(":")
                transport, _ = await loop.create_datagram_endpoint(functools.partial(_Relay, self, i),
                                                                   local_addr=(host, int(port)))
                self._relays.append(transport)
        # systemd's RuntimeDirectory= when the unit has one, else the system's temporary directory
        self.workers_dir = Path(tempfile.mkdtemp(prefix="stratum-pool-workers-",
                                                 dir=os.environ.get("RUNTIME_DIRECTORY") or None))
        if self.settings.admin_socket:
            self._admin = AdminServer(self.settings.admin_socket, {"bans.lift": self._admin_lift_ban})
            await self._admin.start()
        for worker in self.workers:
            self._sockets[worker.index] = [listening_socket(cs.stratum_host, cs.stratum_port)
                                           for cs in self.settings.coins]
        self._tasks = [asyncio.create_task(self._keep(worker), name=f"worker-{worker.index}")
                       for worker in self.workers]
        notifier = SystemdNotifier()
        if notifier.enabled:
            self._tasks.append(asyncio.create_task(self._notify_systemd(notifier), name="sd-notify"))
        log.info("workers_starting", workers=len(self.workers), pid=os.getpid())
        try:
            await self.stopping.wait()
        finally:
            if notifier.enabled:
                notifier.stopping()
            if self._admin is not None:
                await self._admin.close()
            await self._shutdown()
        log.info("workers_stopped")
        return 0

    def reload(self) -> None:
        """SIGHUP: passed on to every running worker."""
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGHUP)
        log.info("workers_reloading", workers=len(self.workers))

    def _admin_lift_ban(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``stratum-pool bans lift IP``: every worker lifts it within a second (cluster.peers.write_lift)."""
        ip = normalize_ip(str(request.get("ip", "")))
        assert self.workers_dir is not None
        write_lift(self.workers_dir, ip, time.time())
        log.info("ban_lift_sent", ip=ip, workers=len(self.workers))
        return {"ip": ip, "lifted": "sent", "workers": len(self.workers)}

    async def _notify_systemd(self, notifier: SystemdNotifier) -> None:
        """READY=1 once every worker serves (its ports listen), then the watchdog from this event loop."""
        while True:
            try:
                await self.wait_ready(timeout=3600.0)
                break
            except TimeoutError:
                continue
        notifier.ready(f"{len(self.workers)} workers serving")
        await notifier.watchdog()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every worker has reported that it serves."""
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in self.workers)), timeout)

    async def _spawn(self, worker: WorkerProcess) -> asyncio.subprocess.Process:
        worker.ready.clear()
        worker.notify_ports.clear()
        fds = [s.fileno() for s in self._sockets.get(worker.index, [])]
        process = await asyncio.create_subprocess_exec(
            self.python, "-m", WORKER_MODULE, "worker", "--config", self.config_path,
            "--index", str(worker.index), "--fds", ",".join(map(str, fds)),
            *(["--workers-dir", str(self.workers_dir)] if self.workers_dir is not None else []),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent,
            pass_fds=fds,
        )
        worker.process = process
        worker.started_at = time.monotonic()
        log.info("worker_started", index=worker.index, pid=process.pid)
        return process

    async def _read_status(self, worker: WorkerProcess, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode(errors="replace")
            if text.startswith(STATUS_TAG):
                try:
                    status = json.loads(text[len(STATUS_TAG):])
                    worker.notify_ports = {i: int(c["notify_port"]) for i, c in enumerate(status["coins"])
                                           if c.get("notify_port")}
                except (ValueError, KeyError, TypeError):
                    log.warning("worker_status_unreadable", index=worker.index, line=text[:200])
                worker.ready.set()
                log.info("worker_ready", index=worker.index, pid=process.pid)
            else:
                sys.stdout.write(text)
                sys.stdout.flush()

    async def _keep(self, worker: WorkerProcess) -> None:
        """Run one worker, restarting it whenever it exits, until the supervisor stops."""
        while not self.stopping.is_set():
            process = await self._spawn(worker)
            reader = asyncio.create_task(self._read_status(worker, process))
            code = await process.wait()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 5)
            if self.stopping.is_set():
                return
            lived = time.monotonic() - worker.started_at
            if lived >= HEALTHY_AFTER_SECONDS:
                worker.backoff = RESTART_BACKOFF_MIN
            log.error("worker_died", index=worker.index, pid=process.pid, code=code, lived_seconds=round(lived, 1),
                      restart_in=worker.backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), worker.backoff)
            worker.backoff = min(RESTART_BACKOFF_MAX, worker.backoff * 2)
            worker.restarts += 1

    async def _shutdown(self) -> None:
        self.stopping.set()
        for transport in self._relays:
            transport.close()
        live = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            for process in live:
                if process.returncode is None:
                    log.warning("worker_killed", pid=process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in live))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sockets in self._sockets.values():
            for sock in sockets:
                sock.close()
        if self.workers_dir is not None:
            shutil.rmtree(self.workers_dir, ignore_errors=True)
