"""The benchmarks' own parts: the floor server speaks enough Stratum for the load generator, and the in-process
submit bench drives the pool's real connection object with shares it accepts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

import bench_submit  # noqa: E402
from load import free_port, job_from_notify  # noqa: E402


async def _read_json_lines(reader: asyncio.StreamReader, count: int) -> list[dict[str, object]]:
    return [orjson.loads(await asyncio.wait_for(reader.readline(), 10)) for _ in range(count)]


async def test_floor_server_serves_subscribe_authorize_submit_and_new_blocks() -> None:
    port, notify_port = free_port(), free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_server.py"), "--port", str(port),
                             "--notify-port", str(notify_port), "--difficulty", "0.5"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                assert time.monotonic() < deadline, "the floor server did not listen"
                await asyncio.sleep(0.1)
        writer.write(b'{"id":1,"method":"mining.subscribe","params":["t"]}\n'
                     b'{"id":2,"method":"mining.authorize","params":["a.b","x"]}\n')
        subscribed, authorized, difficulty, notify = await _read_json_lines(reader, 4)
        assert subscribed["id"] == 1 and len(bytes.fromhex(subscribed["result"][1])) == 4  # type: ignore[index]
        assert authorized == {"id": 2, "result": True, "error": None}
        assert difficulty == {"id": None, "method": "mining.set_difficulty", "params": [0.5]}
        first = job_from_notify(notify["params"])  # type: ignore[arg-type]
        assert len(first.branch) == 12 * 32  # a mainnet-sized branch for the clients to hash

        writer.write(b'{"id":77,"method":"mining.submit","params":["a.b","1","00000000","5f5e1000","00000000"]}\n')
        assert await _read_json_lines(reader, 1) == [{"id": 77, "result": True, "error": None}]

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"00" * 32, ("127.0.0.1", notify_port))
        (clean,) = await _read_json_lines(reader, 1)
        assert clean["method"] == "mining.notify" and clean["params"][8] is True  # type: ignore[index]
        assert job_from_notify(clean["params"]).prevhash != first.prevhash  # type: ignore[arg-type]
        writer.close()
    finally:
        proc.terminate()
        proc.wait(20)


async def test_submit_bench_feeds_real_shares_the_pool_accepts() -> None:
    # measure() raises SystemExit unless every share it fed was accepted
    result = await bench_submit.measure(400, 4)
    assert result["shares"] == 400
    assert result["pool_us_per_submit"] > 0 and result["floor_us_per_submit"] > 0


def test_newblock_bench_reaches_every_session_and_checks_the_native_template(
        capsys: pytest.CaptureFixture[str]) -> None:
    import bench_newblock

    # main() raises SystemExit unless the broadcast reached every session and the native template equals the
    # pure-Python one
    result = bench_newblock.main(["--sessions", "60", "--rounds", "2"])
    assert result["sessions"] == 60 and result["answer_bytes"] > 3_000_000
    for key in ("getblocktemplate_ms", "parse_template_answer_ms", "orjson_loads_ms", "template_scanned_ms",
                "template_native_ms", "template_python_ms", "update_ms",
                "broadcast_us_per_session", "floor_broadcast_us_per_session", "push_job_path_us_per_session"):
        assert result[key]["min"] > 0, key
    assert "broadcast per session (60 sessions)" in capsys.readouterr().out


def test_api_bench_serves_every_path_and_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    import bench_api

    result = bench_api.run(requests=200)
    assert orjson.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    for path in ("health", "metrics", "api_pool"):
        for connections in (1, 20):
            assert result[f"{path}_{connections}_per_second"] > 0
            assert result[f"{path}_{connections}_server_us"] >= 0  # the process's CPU clock ticks by 10 ms
    assert result["server_rss_mb"] > 0


def test_sv2_handshake_bench_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    import bench_sv2_handshake

    result = bench_sv2_handshake.run(scale=0.01)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert orjson.loads(line) == result
    # the share frame is SubmitSharesExtended with an 8-byte extranonce: 22 + (33 + 16) bytes on the wire
    assert result["share_frame_bytes"] == 39 and result["share_wire_bytes"] == 71
    for key in ("responder_handshake_us", "full_handshake_us", "share_send_us", "share_receive_us"):
        assert isinstance(result[key], float) and result[key] > 0


async def test_sv2_submit_bench_feeds_real_shares_through_noise_that_the_pool_accepts() -> None:
    import bench_sv2_submit

    # measure() raises SystemExit unless every V2 share (and every V1 share) it fed was accepted
    result = await bench_sv2_submit.measure(200, 4)
    assert result["shares"] == 200
    assert result["v2_us_per_accepted_share"] > 0 and result["v1_us_per_accepted_share"] > 0
    assert result["handshake_responder_ms"] > 0


def _children() -> list[int]:
    """This process's children not yet reaped (running, or exited and waiting to be waited for)."""
    found = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as f:
            found += [int(pid) for pid in f.read().split()]
    return found


async def test_standin_daemon_publishes_hashblock_as_bitcoind_does_to_the_pools_zmq_subscriber() -> None:
    from standin_daemon import Chain, Signals

    from stratum_pool.daemon.notify import ZmqBlockSubscriber

    chain = Chain(Signals(zmq_port=-1))
    seen: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()

    async def on_new_block(source: str, blockhash: str | None) -> None:
        seen.put_nowait((source, blockhash))

    subscriber = ZmqBlockSubscriber(f"tcp://127.0.0.1:{chain.signals.zmq_port}", on_new_block)
    subscriber.start()
    tips: list[str] = []  # by ZMQ sequence number
    try:
        # a PUB drops what it sends before the SUB's subscription reaches it: signal until one gets through
        got: tuple[str, str | None] | None = None
        for _ in range(200):
            _, result, error = chain.handle("bench_newblock_signal", ["zmq"])
            assert error is None and result[0] == chain.tip and isinstance(result[1], float)
            tips.append(result[0])
            with contextlib.suppress(TimeoutError):
                got = await asyncio.wait_for(seen.get(), 0.1)
                break
        assert got is not None, "no hashblock reached the subscriber"
        assert subscriber.last_sequence is not None
        # the hash in display order (what RPC prints), with the sequence number of the publish that sent it
        assert got == ("zmq", tips[subscriber.last_sequence])
        _, result, _ = chain.handle("bench_newblock_signal", ["zmq"])
        tips.append(result[0])
        assert await asyncio.wait_for(seen.get(), 10) == ("zmq", chain.tip)
        assert subscriber.last_sequence == len(tips) - 1
        assert chain.handle("getbestblockhash", [])[1] == chain.tip
    finally:
        await subscriber.stop()
        chain.signals.close()


async def test_standin_daemon_runs_blocknotify_through_sh_with_the_hash_and_reaps_it() -> None:
    from standin_daemon import Chain, Signals

    from stratum_pool.daemon.blocknotify import NOTIFY_TAG, blocknotify_shell_command

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(30)
        port = udp.getsockname()[1]
        # the README's command, then one with %s twice (bitcoind replaces every one)
        chain = Chain(Signals(blocknotify=blocknotify_shell_command("127.0.0.1", port)))
        _, result, error = chain.handle("bench_newblock_signal", ["blocknotify"])
        assert error is None and result[0] == chain.tip
        assert udp.recv(512) == NOTIFY_TAG + chain.tip.encode()
        chain.signals.blocknotify = f"bash -c 'echo -n %s,%s >/dev/udp/127.0.0.1/{port}'"
        _, result, error = chain.handle("bench_newblock_signal", ["blocknotify"])
        assert error is None and udp.recv(512) == f"{chain.tip},{chain.tip}".encode()
    deadline = time.monotonic() + 30
    while _children() and time.monotonic() < deadline:  # the stand-in's reaper threads wait for the shells
        await asyncio.sleep(0.05)
    assert _children() == []  # reaped: no zombies left behind
