"""What a serving pool keeps in memory: a library only a configured feature needs is imported only when that
feature is configured (psycopg for the database, pyzmq for a ZMQ endpoint, coincurve and cryptography for
Stratum V2; aiohttp never: the API's server and the webhooks' client are the pool's own); the process's
threads share one malloc arena and what startup freed goes back to the OS (``osmemory``).

The pool runs as ``stratum-pool serve`` does (``cli.main``), in a subprocess, against the load bench's stand-in
daemon (a mainnet template with 3,314 transactions); once it listens it reports its ``sys.modules``. No memory
figure is asserted (they depend on the machine): which libraries load decides most of it (docs/performance.md,
"Server RSS").
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum_pool import osmemory
from stratum_pool.config import parse_settings
from stratum_pool.devnet.common import free_port_below_ephemeral as free_port
from stratum_pool.pool import Pool

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from standin_daemon import start_standin  # noqa: E402

# Libraries of features the configs below leave off (importlib.metadata: only ``--version`` needs it).
OPTIONAL = ("aiohttp", "psycopg", "psycopg_pool", "zmq", "coincurve", "cryptography", "importlib.metadata")

# Serve as the console script does; once the stratum port listens (and /metrics answers, with the API), write
# the loaded modules, then stop the pool the way systemd does (SIGTERM).
SERVE = """
import json, os, signal, socket, sys, threading, time, urllib.request
from stratum_pool.cli import main

config, port, api_port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def listening(port: int) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False

def report() -> None:
    try:
        # the API starts after the stratum port
        served = all([listening(p) for p in ((port, api_port) if api_port else (port,))])
        metrics = None
        if api_port and served:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as response:
                metrics = response.status
        with open(out, "w") as f:
            json.dump({"served": served, "modules": sorted(sys.modules), "metrics": metrics}, f)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=report, daemon=True).start()
sys.exit(main(["serve", "--config", config]))
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Any]:
    server = start_standin()
    yield server
    server.shutdown()


def config(tmp_path: Path, daemon: Any, stratum_port: int, api: str) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(f"""
[pool]
log_level = "warning"
log_format = "json"

[database]
spool_dir = "{tmp_path / "spool"}"

{api}

[[coins]]
coin = "bitcoin"
network = "mainnet"
mode = "solo"
stratum_host = "127.0.0.1"
stratum_port = {stratum_port}
poll_interval_seconds = 3600
template_refresh_seconds = 3600

[[coins.daemons]]
url = "http://127.0.0.1:{daemon.server_address[1]}"
user = "bench"
password = "bench"
""")
    return path


def serve_and_report(tmp_path: Path, daemon: Any, api: str = "[api]\nenabled = false",
                     api_port: int = 0) -> dict[str, Any]:
    port = free_port()
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-c", SERVE, str(config(tmp_path, daemon, port, api)), str(port),
                           str(api_port), str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["served"], done.stdout + done.stderr
    return report


def loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_a_pool_without_api_database_or_webhooks_loads_none_of_their_libraries(tmp_path: Path,
                                                                                daemon: Any) -> None:
    modules = serve_and_report(tmp_path, daemon)["modules"]
    assert [name for name in OPTIONAL if loaded(modules, name)] == []
    assert not loaded(modules, "stratum_pool.api")


def test_the_api_and_a_webhook_without_a_database_load_neither_psycopg_nor_aiohttp(tmp_path: Path,
                                                                                   daemon: Any) -> None:
    api_port = free_port()
    report = serve_and_report(tmp_path, daemon, f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n\n'
                              '[[notify]]\nurl = "https://127.0.0.1:1/hook"\nformat = "discord"', api_port)
    assert report["metrics"] == 200
    modules = report["modules"]
    assert loaded(modules, "stratum_pool.api") and loaded(modules, "stratum_pool.webhooks.post")
    assert [name for name in OPTIONAL if loaded(modules, name)] == []


GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")


@GLIBC
def test_release_free_memory_returns_what_a_thread_freed() -> None:
    def churn() -> None:
        # strings too big for Python's small-object allocator: malloc'd in this thread's arena, then freed
        garbage = ["x" * 2000 + str(i) for i in range(5000)]
        del garbage

    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    assert osmemory.release_free_memory()


@GLIBC
@pytest.mark.parametrize(("operator", "expected"), [({}, "True"), ({"MALLOC_ARENA_MAX": "4"}, "False")])
def test_one_malloc_arena_unless_the_operator_chose(operator: dict[str, str], expected: str) -> None:
    # in a process of its own: the setting holds for the rest of the process
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | operator
    code = "from stratum_pool import osmemory; print(osmemory.one_malloc_arena())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == expected


async def test_the_started_pool_gives_freed_memory_back_once(tmp_path: Path, daemon: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[bool] = []
    monkeypatch.setattr("stratum_pool.pool.release_free_memory", lambda: released.append(True) or True)
    settings = parse_settings({
        "coins": [{"coin": "bitcoin", "network": "mainnet", "mode": "solo", "stratum_host": "127.0.0.1",
                   "stratum_port": 0, "poll_interval_seconds": 3600, "template_refresh_seconds": 3600,
                   "daemons": [{"url": f"http://127.0.0.1:{daemon.server_address[1]}", "user": "bench",
                                "password": "bench"}]}],
        "database": {"spool_dir": str(tmp_path)}, "api": {"enabled": False}})
    pool = Pool(settings)
    try:
        await pool.start()
        assert released == []  # not while the callbacks running now may still hold some of it
        await asyncio.sleep(0)
        assert released == [True]
        # a template refresh does not: the next one's parse would fault the pages in again
        await pool.coins[0].refresh("timer")
        await asyncio.sleep(0)
        assert released == [True]
    finally:
        await pool.stop()
