"""systemd's notify protocol as ``Type=notify`` + ``WatchdogSec=`` use it, with this test in systemd's place:
a unix datagram socket named by ``$NOTIFY_SOCKET``. ``stratum-pool serve`` (alone, and as the supervisor of
two workers) sends READY=1 only once its stratum port accepts connections, then WATCHDOG=1 at half
``$WATCHDOG_USEC``, and STOPPING=1 when SIGTERM starts the drain."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bcoin_fixtures import regtest_coin_toml

from stratum_pool.devnet.bcoin import BcoinNode
from stratum_pool.devnet.common import free_port
from stratum_pool.server.sdnotify import SystemdNotifier


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: a real AF_UNIX datagram socket."""

    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.address = str(path)

    def receive(self, timeout: float = 10.0) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    listener = FakeSystemd(tmp_path / "notify")
    yield listener
    listener.close()


def test_messages_reach_the_socket(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": systemd.address})
    assert notifier.enabled and notifier.watchdog_seconds is None
    assert notifier.ready("bitcoin-regtest on port 3333")
    assert systemd.receive() == {"READY": "1", "STATUS": "bitcoin-regtest on port 3333", "MAINPID": str(os.getpid())}
    assert notifier.stopping()
    assert systemd.receive() == {"STOPPING": "1", "STATUS": "draining"}


def test_abstract_namespace_socket() -> None:
    name = f"stratum-pool-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = FakeSystemd("\0" + name)
    try:
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        assert listener.receive() == {"READY": "1"}
    finally:
        listener.close()


def test_not_under_systemd_does_nothing() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    asyncio.run(asyncio.wait_for(notifier.watchdog(), 1))  # returns at once


def test_a_gone_socket_is_no_error(tmp_path: Path) -> None:
    assert not SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")}).notify("READY=1")


def test_watchdog_pings_at_half_the_interval(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"})
    assert notifier.watchdog_seconds == 0.2

    async def run() -> list[dict[str, str]]:
        task = asyncio.create_task(notifier.watchdog())
        try:
            return [await asyncio.to_thread(systemd.receive, 10.0) for _ in range(3)]
        finally:
            task.cancel()

    assert asyncio.run(run()) == [{"WATCHDOG": "1"}] * 3


def test_watchdog_meant_for_another_process_is_ignored(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier(env).watchdog_seconds is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert SystemdNotifier(env).watchdog_seconds == 0.2


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def config(path: Path, node: BcoinNode, port: int, workers: int) -> Path:
    path.write_text(f"""
[pool]
workers = {workers}

[api]
enabled = false

{regtest_coin_toml(node, port)}""")
    return path


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_is_ready_when_the_port_listens(workers: int, bcoin_node: BcoinNode, systemd: FakeSystemd,
                                              tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "1000000"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "stratum_pool.cli", "serve", "--config",
                             str(config(tmp_path / "pool.toml", bcoin_node, port, workers))],
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = systemd.receive(timeout=90)
        # the first message is READY, sent by the main process, and the port already takes miners
        assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid), ready
        assert port_accepts(port)
        if workers == 1:
            assert ready["STATUS"] == f"bitcoin-regtest on port {port}"
        else:
            assert ready["STATUS"] == "2 workers serving"
        assert systemd.receive() == {"WATCHDOG": "1"}
        assert systemd.receive() == {"WATCHDOG": "1"}
        proc.send_signal(signal.SIGTERM)
        while (message := systemd.receive()) == {"WATCHDOG": "1"}:
            pass
        assert message == {"STOPPING": "1", "STATUS": "draining"}
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
