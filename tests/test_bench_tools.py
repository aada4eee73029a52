"""The benchmarks' own parts: the floor server speaks enough Stratum for the load generator, and the in-process
submit bench drives the pool's real connection object with shares it accepts."""

from __future__ import annotations

import asyncio
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
