"""Run the pool: :func:`serve` runs one ``Pool`` until SIGTERM, as the only process or as one worker of a
supervisor (``cluster``); :func:`run` is ``stratum-pool serve``: the supervisor when ``workers > 1``, else
:func:`serve` in this process. Both read the config file with ``config.load_pool_settings``.

``python -m stratum_pool.serve supervise --config FILE [--workers N]`` runs the supervisor (even for one
worker); it starts each worker as ``python -m stratum_pool.serve worker --config FILE --index I``.

Signals: SIGINT and SIGTERM stop a single process (a worker stops on SIGTERM only; SIGINT is the
supervisor's); SIGHUP re-reads the config file (settings that need a restart, such as ``workers``, wait for
one); the supervisor passes SIGHUP and SIGTERM on to every worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from stratum_pool.cluster.supervisor import Supervisor, listening_socket
from stratum_pool.cluster.worker import Worker, spool_node_id, status_line, worker_prefix, worker_settings
from stratum_pool.config import ConfigError, Settings, load_pool_settings
from stratum_pool.logs import configure_logging
from stratum_pool.osmemory import one_malloc_arena
from stratum_pool.pool import Pool
from stratum_pool.server.sdnotify import SystemdNotifier

T = TypeVar("T")

log = structlog.get_logger("stratum_pool.serve")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop when installed, else on the standard asyncio loop (every thread of
    the process allocating from one malloc arena: ``osmemory``)."""
    one_malloc_arena()  # before any thread starts
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve(settings: Settings, config_path: str | None = None, worker: Worker | None = None) -> None:
    """Run every configured coin until SIGTERM (and SIGINT, unless ``worker``); SIGHUP re-reads
    ``config_path``. With ``worker``, run as that worker of a supervisor: its own extranonce1 slice, spool
    and settings (``cluster.worker``), the listening sockets it inherited, and a status line when it serves."""
    if worker is None:
        pool = Pool(settings)
        stop_on: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    else:
        structlog.contextvars.bind_contextvars(worker=worker.index)
        sockets = [socket.socket(fileno=fd) if fd >= 0 else None for fd in worker.fds]
        if not sockets:
            sockets = [listening_socket(cs.stratum_host, cs.stratum_port) for cs in settings.coins]
        index = worker.index
        pool = Pool(worker_settings(settings, index), extranonce_prefix=worker_prefix(settings.node_id, index),
                    listen_sockets=sockets, spool_node_id=spool_node_id(settings.node_id, index),
                    workers_dir=worker.workers_dir, worker_index=index)
        stop_on = (signal.SIGTERM,)
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_on:
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        if config_path is None:
            return
        try:
            fresh = load_pool_settings(config_path)
            pool.reload(fresh if worker is None else worker_settings(fresh, worker.index))
        except ConfigError as exc:  # keep running on the old settings
            if worker is None:
                print(f"config error on reload (nothing changed): {exc}", file=sys.stderr, flush=True)
            else:
                log.error("config_reload_failed", worker=worker.index, error=str(exc))

    loop.add_signal_handler(signal.SIGHUP, reload)
    await pool.start()
    # under systemd (Type=notify): ready once every stratum port listens, then the watchdog pings (a worker's
    # supervisor speaks for the service)
    notifier = SystemdNotifier() if worker is None else None
    watchdog: asyncio.Task[None] | None = None
    if notifier is not None and notifier.enabled:
        notifier.ready(", ".join(f"{c.coin.key} on port {c.port}" for c in pool.coins))
        watchdog = asyncio.create_task(notifier.watchdog(), name="sd-watchdog")
    if worker is None:
        for coin in pool.coins:
            print(f"stratum+tcp://{coin.settings.stratum_host}:{coin.port}  {coin.coin.name} {coin.coin.network} "
                  f"({coin.coin.algorithm})", flush=True)
            if coin.sv2_url:
                print(f"{coin.sv2_url}  Stratum V2 (Noise)", flush=True)
            if coin.tls_port is not None:
                print(f"stratum+tls://{coin.settings.stratum_host}:{coin.tls_port}  {coin.coin.name} "
                      f"{coin.coin.network} ({coin.coin.algorithm})  certificate: {coin.settings.tls_cert_file}",
                      flush=True)
    else:
        print(status_line(worker.index, os.getpid(), [(c.coin.key, c.port, c.notify_port) for c in pool.coins]),
              flush=True)
    try:
        await stop.wait()
    finally:
        if notifier is not None:
            notifier.stopping()
        await pool.stop()
        if watchdog is not None:
            watchdog.cancel()


def run_workers(settings: Settings, config_path: str | Path) -> int:
    """Supervise ``settings.workers`` worker processes until SIGTERM or SIGINT; returns the exit status
    (logging set up first)."""
    return run_loop(Supervisor(settings, config_path).run())


def run(settings: Settings, config_path: str) -> int:
    """``stratum-pool serve``: the supervisor and ``settings.workers`` workers when more than one, else the
    pool in this process (logging set up first)."""
    if settings.workers > 1:
        return run_workers(settings, config_path)
    run_loop(serve(settings, config_path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stratum_pool.serve",
                                     description="several pool processes on one stratum port")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("supervise", help="the supervisor: start pool.workers workers and keep them running")
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
        # a reload that arrives while the worker still starts must not kill it (serve handles SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        settings = load_pool_settings(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "worker":
        fds = [int(fd) for fd in args.fds.split(",") if fd.strip()]
        worker = Worker(args.index, fds, Path(args.workers_dir) if args.workers_dir else None)
        run_loop(serve(settings, args.config, worker))
        return 0
    try:
        supervisor = Supervisor(settings, args.config, workers=args.workers)
    except ValueError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    return run_loop(supervisor.run())


if __name__ == "__main__":
    sys.exit(main())
