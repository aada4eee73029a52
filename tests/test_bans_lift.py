"""``stratum-pool bans lift IP``: the running pool lifts one IP's ban at once, through its admin socket
(``[pool] admin_socket``); with ``workers = N`` the supervisor hands the lift to every worker through their
shared directory, and no worker adopts the lifted ban back from another. Real BanLists and exchange files,
then the real pool (one process and two workers) on a bcoin node, banned for malformed lines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bcoin_fixtures import regtest_coin_toml
from prometheus_client import CollectorRegistry

from stratum_pool.cluster.peers import WorkerExchange, write_lift
from stratum_pool.devnet.bcoin import BcoinNode
from stratum_pool.devnet.common import free_port
from stratum_pool.server.admin import AdminServer, normalize_ip, request
from stratum_pool.server.limits import Ban, BanList


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lift_keeps_later_bans_and_refuses_older_ones_from_elsewhere() -> None:
    clock = Clock()
    bans = BanList(clock)
    bans.ban("203.0.113.7", 600, "malformed")
    clock.now += 1
    assert bans.lift("203.0.113.7")
    assert bans.banned("203.0.113.7") is None
    # another worker still offers the ban decided before the lift: not taken back
    assert not bans.adopt(Ban("203.0.113.7", 1600.0, "malformed", 1000.0))
    # a ban decided after the lift is a new ban
    assert bans.adopt(Ban("203.0.113.7", 1700.0, "malformed", 1002.0))
    assert not bans.lift("198.51.100.1")  # not banned


def test_lift_reaches_every_worker_and_settles(tmp_path: Path) -> None:
    clock = Clock()
    lists = [BanList(clock) for _ in range(3)]
    exchanges = [WorkerExchange(tmp_path, i, CollectorRegistry(), b) for i, b in enumerate(lists)]

    def settle() -> None:
        for _ in range(3):
            for exchange in exchanges:
                exchange._seen.clear()  # mtimes may not move within one test's second: read every file
                exchange.step()

    lists[0].ban("203.0.113.7", 600, "invalid-shares")
    settle()
    assert all(b.banned("203.0.113.7") for b in lists)
    clock.now += 1
    write_lift(tmp_path, "203.0.113.7", clock.now)
    for exchange in exchanges:
        exchange._lifts_seen = -1.0
    settle()
    assert not any(b.banned("203.0.113.7") for b in lists)
    assert all(json.loads((tmp_path / f"bans-worker-{i}.json").read_text())["bans"] == [] for i in range(3))


async def test_admin_socket_answers(tmp_path: Path) -> None:
    bans = BanList()
    bans.ban("203.0.113.7", 600, "malformed")
    path = tmp_path / "admin.sock"
    server = AdminServer(path, {"bans.lift": lambda r: {"lifted": bans.lift(normalize_ip(r["ip"]))}})
    await server.start()
    try:
        assert path.stat().st_mode & 0o777 == 0o660
        import asyncio

        ask = lambda message: asyncio.to_thread(request, path, message)  # noqa: E731
        assert await ask({"command": "bans.lift", "ip": "203.0.113.7"}) == {"ok": True, "lifted": True}
        assert await ask({"command": "bans.lift", "ip": "203.0.113.7"}) == {"ok": True, "lifted": False}
        assert await ask({"command": "bans.lift", "ip": "nonsense"}) == {
            "ok": False, "error": "'nonsense' is not an IP address"}
        assert (await ask({"command": "reboot"}))["error"].startswith("unknown command 'reboot'")
        # a second pool on the same socket is refused; the first keeps it
        with pytest.raises(OSError, match="another pool is listening"):
            await AdminServer(path, {}).start()
    finally:
        await server.close()
    assert not path.exists()
    # a stale socket file (the pool died) is taken over
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    again = AdminServer(path, {})
    await again.start()
    await again.close()


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratum_pool.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def answered(port: int) -> bool:
    """Whether the pool answers a mining.subscribe from 127.0.0.1 (a banned IP's connection is closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b'{"id": 1, "method": "mining.subscribe", "params": []}\n')
        try:
            return sock.recv(4096).startswith(b"{")
        except ConnectionResetError:
            return False


def get_banned(port: int) -> None:
    """Malformed lines past [bans] max_malformed (a line that is not JSON closes its connection and counts
    one; with workers, each counts its own connections): 127.0.0.1 is banned."""
    for _ in range(12):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                sock.sendall(b"this is not json\n")
                sock.recv(4096)
            except OSError:
                pass


def until(check: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_bans_lift_on_the_running_pool(workers: int, bcoin_node: BcoinNode, tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    admin = tmp_path / "admin.sock"
    config = tmp_path / "pool.toml"
    config.write_text(f"""
[pool]
workers = {workers}
admin_socket = "{admin}"

[api]
port = {api_port}

[bans]
max_malformed = 2

{regtest_coin_toml(bcoin_node, port)}""")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "stratum_pool.cli", "serve", "--config", str(config)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert until(lambda: admin.exists() and cli("bans", "list", "--config", config).returncode == 0, 90)
        assert answered(port)
        get_banned(port)
        # every worker refuses it (a worker adopts another's ban within a second)
        assert until(lambda: not any(answered(port) for _ in range(4)))
        # the API is worker 0's: the four refusals above may all have come from the worker that banned, and
        # worker 0 adopts its ban within a second
        assert until(lambda: cli("bans", "list", "--config", config).stdout.startswith(
            "1 ban(s)\n  127.0.0.1: malformed"), 15)

        lifted = cli("bans", "lift", "--config", config, "127.0.0.1")
        assert lifted.returncode == 0, lifted.stderr
        if workers == 1:
            assert lifted.stdout.strip() == "127.0.0.1: ban lifted"
            assert answered(port)  # at once
        else:
            assert lifted.stdout.strip() == "127.0.0.1: ban lifted on all 2 workers (within a second)"
            assert until(lambda: all(answered(port) for _ in range(4)), 15)
        time.sleep(2.5)  # workers exchange bans every second: nobody took the lifted ban back
        assert all(answered(port) for _ in range(4))
        assert cli("bans", "list", "--config", config).stdout.startswith("0 ban(s)")
        if workers == 1:
            assert cli("bans", "lift", "--config", config, "127.0.0.1").stdout.strip() == "127.0.0.1: was not banned"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    # the pool is gone: one line
    gone = cli("bans", "lift", "--config", config, "127.0.0.1")
    assert gone.returncode == 1 and gone.stderr.startswith(f"bans: no pool answers on {admin}: ")
    assert len(gone.stderr.strip().splitlines()) == 1


def test_bans_lift_refuses_bad_arguments(tmp_path: Path) -> None:
    config = tmp_path / "pool.toml"
    config.write_text('[[coins]]\ncoin = "bitcoin"\nnetwork = "regtest"\n\n[[coins.daemons]]\n'
                      'url = "http://127.0.0.1:1"\npassword = "x"\n')
    result = cli("bans", "lift", "--config", config, "127.0.0.1")
    assert result.returncode == 2 and result.stderr.startswith("config error: pool.admin_socket: not set")
    config.write_text(f'[pool]\nadmin_socket = "{tmp_path / "a.sock"}"\n' + config.read_text())
    result = cli("bans", "lift", "--config", config, "not-an-ip")
    assert result.returncode == 2 and result.stderr.strip() == "IP: 'not-an-ip' is not an IP address"
