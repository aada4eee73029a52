"""Scale-out on one machine: ``workers = N`` pool processes sharing each stratum port.

A supervisor (:func:`run_workers`, ``python -m stratum_pool.multiproc serve --config FILE``) starts N worker
processes (``python -m stratum_pool.multiproc worker --config FILE --index I``), each a full pool: its own
event loop (uvloop when installed), daemon client, job manager, share rules and sessions. They listen
on the same port with SO_REUSEPORT, so the kernel spreads new connections over them, and each hands out
extranonce1 values from its own slice: the first byte is ``pool.node_id``, the second the worker index, so
no two processes (and no two pool machines with distinct node ids) ever give a miner the same coinbase.

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
labelled with its ``worker``; bans go the same way (``peers``).
Workers die with the supervisor (PR_SET_PDEATHSIG) even when it is killed with SIGKILL.

Use :func:`run_loop` to run a coroutine on uvloop when it is installed (``asyncio.run`` otherwise).
"""

from __future__ import annotations

import argparse
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
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from stratum_pool.config import Settings

T = TypeVar("T")

log = structlog.get_logger("stratum_pool.multiproc")

# A worker prints this, then one JSON object, on its stdout once it serves (read by the supervisor).
STATUS_TAG = "STRATUM-POOL-WORKER "
STOP_TIMEOUT_SECONDS = 20.0
RESTART_BACKOFF_MIN = 1.0
RESTART_BACKOFF_MAX = 30.0
# A worker that lived this long before dying is restarted after the minimum backoff again.
HEALTHY_AFTER_SECONDS = 60.0
MAX_WORKERS = 255
# config.py allows at most 64 workers; with 256 node ids that keeps spool identities within smallint
SPOOL_SLOTS_PER_NODE = 64


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop when installed, else on the standard asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def worker_prefix(node_id: int, index: int) -> bytes:
    """The extranonce1 prefix of worker ``index`` on node ``node_id``: two bytes, node then worker."""
    if not 0 <= node_id <= 255 or not 0 <= index < MAX_WORKERS:
        raise ValueError(f"node_id must be 0..255 and the worker index 0..{MAX_WORKERS - 1}")
    return bytes([node_id, index])


def spool_node_id(node_id: int, index: int) -> int:
    """The share-spool identity of worker ``index`` of node ``node_id``: shares are ordered and
    checkpointed per spool, so two workers never share one. Fits the smallint columns (<= 16383)."""
    return node_id * SPOOL_SLOTS_PER_NODE + index


def worker_settings(settings: Settings, index: int = 0) -> Settings:
    """A worker's settings: every coin's ``notify_listen`` moved to an ephemeral loopback port (the
    supervisor listens on the configured one and relays), the HTTP API on worker 0 only (one port), and a
    spool directory of its own."""
    coins = tuple(
        dataclasses.replace(cs, notify_listen="127.0.0.1:0") if cs.notify_listen else cs for cs in settings.coins
    )
    changes: dict[str, Any] = {"coins": coins}
    api = getattr(settings, "api", None)
    if api is not None and index != 0 and getattr(api, "enabled", False):
        changes["api"] = dataclasses.replace(api, enabled=False)
    database = settings.database
    if database.dsn:
        # each worker has its own spool, loaded under its own identity (spool_node_id)
        changes["database"] = dataclasses.replace(database, spool_dir=str(Path(database.spool_dir) / f"worker-{index}"))
    return dataclasses.replace(settings, **changes)


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


# ----- the worker


async def serve_worker(settings: Settings, index: int, fds: Sequence[int] = (),
                       workers_dir: Path | None = None, config_path: str | None = None) -> None:
    """Run one worker until SIGTERM (SIGINT is left to the supervisor; SIGHUP re-reads ``config_path``, as
    the single-process pool does); ``fds[i]`` is coin i's listening socket when the supervisor made it;
    ``workers_dir`` the supervisor's directory for what the workers share (metrics, bans)."""
    from stratum_pool.pool import Pool

    structlog.contextvars.bind_contextvars(worker=index)
    sockets = [socket.socket(fileno=fd) if fd >= 0 else None for fd in fds]
    if not sockets:
        sockets = [listening_socket(cs.stratum_host, cs.stratum_port) for cs in settings.coins]
    pool = Pool(worker_settings(settings, index), extranonce_prefix=worker_prefix(settings.node_id, index),
                listen_sockets=sockets, spool_node_id=spool_node_id(settings.node_id, index),
                workers_dir=workers_dir, worker_index=index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def reload() -> None:
        if config_path is None:
            return
        from stratum_pool.config import ConfigError

        try:
            pool.reload(worker_settings(_load(config_path), index))
        except ConfigError as exc:  # keep running on the old settings
            log.error("config_reload_failed", worker=index, error=str(exc))

    loop.add_signal_handler(signal.SIGHUP, reload)
    await pool.start()
    status = {"index": index, "pid": os.getpid(),
              "coins": [{"coin": c.coin.key, "port": c.port, "notify_port": c.notify_port} for c in pool.coins]}
    print(STATUS_TAG + json.dumps(status), flush=True)
    try:
        await stop.wait()
    finally:
        await pool.stop()


# ----- the supervisor


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
        # what the workers share: each one's metrics and bans (stratum_pool.peers)
        self.workers_dir: Path | None = None

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
        for worker in self.workers:
            self._sockets[worker.index] = [listening_socket(cs.stratum_host, cs.stratum_port)
                                           for cs in self.settings.coins]
        self._tasks = [asyncio.create_task(self._keep(worker), name=f"worker-{worker.index}")
                       for worker in self.workers]
        log.info("workers_starting", workers=len(self.workers), pid=os.getpid())
        try:
            await self.stopping.wait()
        finally:
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

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every worker has reported that it serves."""
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in self.workers)), timeout)

    async def _spawn(self, worker: WorkerProcess) -> asyncio.subprocess.Process:
        worker.ready.clear()
        worker.notify_ports.clear()
        fds = [s.fileno() for s in self._sockets.get(worker.index, [])]
        process = await asyncio.create_subprocess_exec(
            self.python, "-m", "stratum_pool.multiproc", "worker", "--config", self.config_path,
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


def run_workers(settings: Settings, config_path: str | Path) -> int:
    """``stratum-pool serve`` with ``workers > 1``: supervise ``settings.workers`` workers until SIGTERM or
    SIGINT; returns the exit status. Call it instead of the single-process serve (logging set up first)."""
    return run_loop(Supervisor(settings, config_path).run())


def _load(path: str) -> Settings:
    from stratum_pool.chain.address import address_to_script
    from stratum_pool.config import load_settings

    return load_settings(path, address_check=address_to_script)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stratum_pool.multiproc",
                                     description="several pool processes on one stratum port")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="the supervisor: start pool.workers workers and keep them running")
    p_serve.add_argument("--config", required=True)
    p_serve.add_argument("--workers", type=int, default=None, help="override pool.workers")
    p_worker = sub.add_parser("worker", help="one worker (started by the supervisor)")
    p_worker.add_argument("--config", required=True)
    p_worker.add_argument("--index", type=int, required=True)
    p_worker.add_argument("--fds", default="", help="inherited listening sockets, one per coin (comma-separated)")
    p_worker.add_argument("--workers-dir", default="",
                          help="the supervisor's directory for what the workers share (metrics, bans)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        # a reload that arrives while the worker still starts must not kill it (serve_worker handles SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    from stratum_pool.config import ConfigError
    from stratum_pool.logs import configure_logging

    try:
        settings = _load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "worker":
        fds = [int(fd) for fd in args.fds.split(",") if fd.strip()]
        run_loop(serve_worker(settings, args.index, fds, Path(args.workers_dir) if args.workers_dir else None,
                              args.config))
        return 0
    try:
        supervisor = Supervisor(settings, args.config, workers=args.workers)
    except ValueError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    return run_loop(supervisor.run())


if __name__ == "__main__":
    sys.exit(main())
