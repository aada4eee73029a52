"""Two pool workers on one stratum port (SO_REUSEPORT) behind the supervisor, against the bench's stand-in
daemon (a mainnet-sized template from block 574200): sessions land on both workers, each worker hands out
extranonce1 values from its own slice (node id, worker index), shares are accepted on both, a block
notification reaches both through the supervisor's relay, and SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from miner import Miner
from prometheus_client.parser import text_string_to_metric_families

from stratum_pool.cluster.worker import worker_prefix
from stratum_pool.coins import get_coin
from stratum_pool.daemon.blocknotify import send_block_notify
from stratum_pool.devnet.common import free_port_below_ephemeral

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from standin_daemon import start_standin  # noqa: E402

COIN = get_coin("bitcoin", "mainnet")
ADDRESS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
NODE_ID = 7
SESSIONS = 24  # the kernel hashes each connection to a worker: all on one would be a 2**-23 chance




def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


@pytest.fixture
def standin() -> Iterator[object]:
    server = start_standin()
    yield server
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def _supervisor(tmp_path: Path, standin: object, api_port: int | None = None, extra: str = ""
                ) -> Iterator[tuple[subprocess.Popen[bytes], int, int, object]]:
    port, notify = free_port_below_ephemeral(), free_port_below_ephemeral(socket.SOCK_DGRAM)
    daemon_port = standin.server_address[1]  # type: ignore[attr-defined]
    api = "enabled = false" if api_port is None else f"enabled = true\nhost = \"127.0.0.1\"\nport = {api_port}"
    config = tmp_path / "pool.toml"
    config.write_text(f"""
[api]
{api}

[pool]
node_id = {NODE_ID}
workers = 2
log_level = "warning"
log_format = "json"

[[coins]]
coin = "bitcoin"
network = "mainnet"
mode = "solo"
stratum_host = "127.0.0.1"
stratum_port = {port}
longpoll = false
notify_listen = "127.0.0.1:{notify}"
poll_interval_seconds = 3600
template_refresh_seconds = 3600

[coins.vardiff]
initial = 1e-9
minimum = 1e-9
suggestion_policy = "fixed"

[[coins.daemons]]
url = "http://127.0.0.1:{daemon_port}"
user = "test"
password = "test"
{extra}
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "stratum_pool.serve", "supervise", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc, port, notify, standin
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def supervisor(tmp_path: Path, standin: object) -> Iterator[tuple[subprocess.Popen[bytes], int, int, object]]:
    with _supervisor(tmp_path, standin) as running:
        yield running


async def _wait_listening(port: int, proc: subprocess.Popen[bytes], workers: int) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"supervisor exited with {proc.returncode}: {out[-2000:]}")
        if len(_children(proc.pid)) == workers:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                pass
            else:
                writer.close()
                # both workers bind the port; give the slower one its moment
                await asyncio.sleep(1.0)
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the workers never listened")


async def _miner(port: int, i: int) -> Miner:
    miner = Miner("127.0.0.1", port, COIN, ADDRESS, f"w{i}", order="cpuminer")
    return await miner.start()


async def test_two_workers_share_a_port(supervisor: tuple[subprocess.Popen[bytes], int, int, object]) -> None:
    proc, port, notify, standin = supervisor
    await _wait_listening(port, proc, 2)
    workers = _children(proc.pid)
    assert len(workers) == 2

    miners = await asyncio.gather(*(_miner(port, i) for i in range(SESSIONS)))
    try:
        prefixes = {m.extranonce1[:2] for m in miners}
        # every extranonce1 is unique and carries (node id, worker index)
        assert len({m.extranonce1 for m in miners}) == SESSIONS
        assert prefixes <= {worker_prefix(NODE_ID, 0), worker_prefix(NODE_ID, 1)}
        assert prefixes == {worker_prefix(NODE_ID, 0), worker_prefix(NODE_ID, 1)}, "sessions on one worker only"

        # one accepted share on each worker
        for prefix in sorted(prefixes):
            miner = next(m for m in miners if m.extranonce1[:2] == prefix)
            reply = await miner.mine_share()
            assert reply.get("result") is True, reply

        # a block notification to the configured address reaches every worker (clean work on all sessions)
        before = {id(m): m.job for m in miners}
        tip = standin.chain.new_block()  # type: ignore[attr-defined]
        send_block_notify("127.0.0.1", notify, tip)
        for miner in miners:
            job = await miner.wait_job(timeout=30)
            assert job.clean and job is not before[id(miner)]
        for prefix in sorted(prefixes):
            miner = next(m for m in miners if m.extranonce1[:2] == prefix)
            reply = await miner.mine_share()
            assert reply.get("result") is True, reply
    finally:
        await asyncio.gather(*(m.close() for m in miners))

    # SIGTERM: the supervisor stops its workers and exits cleanly
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert proc.returncode == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


async def test_a_dead_worker_is_restarted(supervisor: tuple[subprocess.Popen[bytes], int, int, object]) -> None:
    proc, port, _, _ = supervisor
    await _wait_listening(port, proc, 2)
    # connections held open on the port while a worker is replaced (the replacement must still listen)
    held = await asyncio.gather(*(_miner(port, i) for i in range(8)))
    first = _children(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    for _ in range(300):
        now = _children(proc.pid)
        if len(now) == 2 and first[0] not in now:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the killed worker was not replaced")
    # the replacement serves: new sessions land on both workers again
    await _wait_listening(port, proc, 2)
    miners = await asyncio.gather(*(_miner(port, i) for i in range(SESSIONS)))
    try:
        assert {m.extranonce1[:2] for m in miners} == {worker_prefix(NODE_ID, 0), worker_prefix(NODE_ID, 1)}
    finally:
        await asyncio.gather(*(m.close() for m in [*miners, *held]))


def _scrape(api_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_of_every_worker_on_one_endpoint(tmp_path: Path, standin: object) -> None:
    api_port = free_port_below_ephemeral()
    with _supervisor(tmp_path, standin, api_port) as (proc, port, _, _):
        await _wait_listening(port, proc, 2)
        miners = await asyncio.gather(*(_miner(port, i) for i in range(SESSIONS)))
        try:
            on_worker = {w: [m for m in miners if m.extranonce1[:2] == worker_prefix(NODE_ID, w)] for w in (0, 1)}
            assert on_worker[0] and on_worker[1], "sessions on one worker only"
            accepted = {0: 0, 1: 0}
            for w in (0, 1):  # two shares on worker 0, three on worker 1
                for _ in range(2 + w):
                    reply = await on_worker[w][0].mine_share()
                    assert reply.get("result") is True, reply
                    accepted[w] += 1

            coin = ("coin", COIN.key)
            want = {w: {("stratum_pool_connections_open", (coin, ("worker", str(w)))): len(on_worker[w]),
                        ("stratum_pool_shares_total", (coin, ("reason", ""), ("result", "accepted"),
                                                       ("worker", str(w)))): accepted[w]} for w in (0, 1)}
            deadline = time.monotonic() + 30  # worker 1's figures arrive with its next snapshot (every second)
            while True:
                got = await asyncio.to_thread(_scrape, api_port)
                seen = {key: got.get(key) for w in (0, 1) for key in want[w]}
                if all(seen[key] == value for w in (0, 1) for key, value in want[w].items()):
                    break
                assert time.monotonic() < deadline, f"metrics never showed both workers: {seen}"
                await asyncio.sleep(0.5)
            ages = {dict(labels)["worker"]: value for (name, labels), value in got.items()
                    if name == "stratum_pool_worker_metrics_age_seconds"}
            assert ages["0"] == 0.0 and 0.0 <= ages["1"] < 30
            # the JSON API's live figures count both workers' sessions
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/pool", timeout=10) as response:
                (live,) = orjson.loads(response.read())["coins"]
            assert live["connections"] == SESSIONS and live["workers_online"] == SESSIONS
            assert live["hashrate"] > 0
        finally:
            await asyncio.gather(*(m.close() for m in miners))


async def test_sighup_reloads_every_worker_and_stops_none(tmp_path: Path, standin: object) -> None:
    with _supervisor(tmp_path, standin) as (proc, port, _, _):
        await _wait_listening(port, proc, 2)
        workers = sorted(_children(proc.pid))
        held = await asyncio.gather(*(_miner(port, i) for i in range(8)))
        config = tmp_path / "pool.toml"
        config.write_text(config.read_text().replace("initial = 1e-9", "initial = 2e-9"))
        proc.send_signal(signal.SIGHUP)
        miners: list[Miner] = []
        try:
            deadline = time.monotonic() + 30
            while True:  # the new initial difficulty, on sessions opened on both workers after the reload
                miners += await asyncio.gather(*(_miner(port, 100 + i) for i in range(SESSIONS)))
                fresh = {w: [m.difficulty for m in miners if m.extranonce1[:2] == worker_prefix(NODE_ID, w)]
                         for w in (0, 1)}
                if all(fresh[w] and fresh[w][-1] == 2e-9 for w in (0, 1)):
                    break
                assert time.monotonic() < deadline, f"the reload did not reach both workers: {fresh}"
                await asyncio.sleep(0.5)
            assert proc.poll() is None and sorted(_children(proc.pid)) == workers  # nothing restarted
            reply = await held[0].mine_share()  # sessions from before the reload keep mining
            assert reply.get("result") is True, reply
        finally:
            await asyncio.gather(*(m.close() for m in [*held, *miners]))


async def _refused(port: int, source: str) -> bool:
    """Whether a connection from ``source`` is dropped without an answer to its subscribe."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        line = await asyncio.wait_for(reader.readline(), 10)
    except (ConnectionError, TimeoutError):
        return True
    finally:
        writer.close()
    return line == b""


async def test_an_ip_banned_by_one_worker_is_refused_by_all(tmp_path: Path, standin: object) -> None:
    bans = "\n[bans]\nenabled = true\nmax_malformed = 3\nduration_seconds = 600\n"
    with _supervisor(tmp_path, standin, extra=bans) as (proc, port, _, _):
        await _wait_listening(port, proc, 2)
        _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.5", 0))
        # malformed requests (answered, the connection kept) until whichever worker took it bans the address
        writer.write(b'{"id":1,"method":""}\n' * 10)
        await writer.drain()
        writer.close()
        deadline = time.monotonic() + 30
        while True:  # within a second or two the other worker holds the ban too
            refused = await asyncio.gather(*(_refused(port, "127.0.0.5") for _ in range(SESSIONS)))
            if all(refused):
                break
            assert time.monotonic() < deadline, f"still admitted by a worker: {refused}"
            await asyncio.sleep(0.5)
        miners = await asyncio.gather(*(_miner(port, i) for i in range(SESSIONS)))  # others are served
        try:
            assert {m.extranonce1[:2] for m in miners} == {worker_prefix(NODE_ID, 0), worker_prefix(NODE_ID, 1)}
        finally:
            await asyncio.gather(*(m.close() for m in miners))
