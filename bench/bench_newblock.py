"""The pool's own part of a new block, in process: the template's fetch, parse and job, and the broadcast's cost
per session, each beside what it is made of (issue 19, target 3).

    .venv/bin/python bench/bench_newblock.py [--sessions 10000] [--rounds 15]

A ``CoinPool`` is built from the settings ``bench/load.py`` uses (solo mode, no database) with ``--sessions``
connections on transports that only count bytes, each subscribed and authorized as its own worker. Then, for
the mainnet-sized template the stand-in daemon serves (block 574200: 3,314 transactions, a 12-level branch;
3 MB of JSON), each figure is the median over ``--rounds`` rounds (min and max beside it):

* ``getblocktemplate``: the pool's RPC call (``daemon.rpc.blocking_call``: the HTTP round trip and
  ``daemon.gbt.parse_template_answer``, which decodes the transactions straight from the answer's bytes)
  against ``bench/standin_daemon.py`` in a process of its own; beside it, in process, that parse of the same
  bytes and the ordinary one it replaces (``orjson.loads`` of the whole answer);
* ``template_from_gbt``: the answer to a ``Template`` (txids, branch, transactions): from the scanned answer
  (as the pool runs), from orjson's (the extension's hex and branch), and from orjson's with the pure-Python
  reference instead (``chain`` without ``_native``), in the same run;
* ``update``: ``JobManager.update`` of a new block from a scanned answer (the template, the job book) and the
  first job built;
* ``broadcast``: ``StratumServer.broadcast`` of a new block to every session (one line per payout address,
  written to every transport), per session; beside it the floor's (``bench/floor_server.py``: one prepared
  line written to every session) and the full path per session (``Session.push_job`` and its actions, which
  every session took before the broadcast went through ``Session.job_notified``).

What a kernel write to a loopback socket adds (about 10 µs a session here) and the clients' reads are in
``bench/load.py --compare --signal zmq``, which times the whole path from the daemon's own ZMQ message.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_submit import CountingTransport, pool_from_config, write_bench_config  # noqa: E402
from floor_server import FloorConnection, FloorServer  # noqa: E402
from load import ADDRESSES, print_result  # noqa: E402
from load import _lines as session_lines  # noqa: E402
from standin_daemon import base_template  # noqa: E402

from stratum_pool.chain import encoding, merkle  # noqa: E402
from stratum_pool.coins import get_coin  # noqa: E402
from stratum_pool.daemon.gbt import parse_template_answer  # noqa: E402
from stratum_pool.daemon.gcpause import gc_paused  # noqa: E402
from stratum_pool.daemon.rpc import DaemonEndpoint, blocking_call  # noqa: E402
from stratum_pool.jobs.builder import template_from_gbt  # noqa: E402
from stratum_pool.protocol import messages as msg  # noqa: E402
from stratum_pool.server.stratum import _Connection  # noqa: E402


def timed_ms(fn: Callable[[], Any], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def spread(times: list[float], digits: int = 2) -> dict[str, float]:
    return {"median": round(statistics.median(times), digits), "min": round(min(times), digits),
            "max": round(max(times), digits)}


def fetch_figures(rounds: int) -> dict[str, Any]:
    """getblocktemplate from the stand-in daemon in its own process, and orjson.loads of its answer."""
    daemon = subprocess.Popen([sys.executable, str(HERE / "standin_daemon.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        port = int(daemon.stdout.readline().split()[1])
        endpoint = DaemonEndpoint("bench", f"http://127.0.0.1:{port}", user="bench", password="bench")
        request = [{"rules": ["segwit"]}]
        blocking_call(endpoint, "getblocktemplate", request)  # the daemon's first answer is serialized once
        fetch = timed_ms(lambda: blocking_call(endpoint, "getblocktemplate", request), rounds)
    finally:
        daemon.terminate()
        daemon.wait(10)
    answer = answer_bytes()
    parse = timed_ms(lambda: orjson.loads(answer), rounds)
    scan = timed_ms(lambda: parse_template_answer(answer), rounds)
    return {"answer_bytes": len(answer), "getblocktemplate_ms": spread(fetch), "orjson_loads_ms": spread(parse),
            "parse_template_answer_ms": spread(scan)}


def answer_bytes(gbt: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"result": gbt or base_template(), "error": None, "id": 1})


def template_figures(coin: Any, rounds: int) -> dict[str, Any]:
    gbt = base_template()
    scanned_gbt = parse_template_answer(answer_bytes(gbt))["result"]
    gc.disable()  # as the pool parses a template (gcpause)
    scanned = timed_ms(lambda: template_from_gbt(dict(scanned_gbt), coin), rounds)
    native = timed_ms(lambda: template_from_gbt(dict(gbt), coin), rounds)
    modules: list[Any] = [encoding, merkle]
    saved = [module._native for module in modules]
    for module in modules:
        module._native = None  # the modules' pure-Python paths
    try:
        reference = template_from_gbt(dict(gbt), coin)
        python = timed_ms(lambda: template_from_gbt(dict(gbt), coin), rounds)
    finally:
        gc.enable()
        for module, extension in zip(modules, saved, strict=True):
            module._native = extension
    if not template_from_gbt(dict(gbt), coin) == template_from_gbt(scanned_gbt, coin) == reference:
        raise SystemExit("the native and scanned templates differ from the pure-Python reference")
    return {"template_scanned_ms": spread(scanned), "template_native_ms": spread(native),
            "template_python_ms": spread(python)}


def new_tip(gbt: dict[str, Any], height: int) -> dict[str, Any]:
    """``gbt`` on a new tip, its transactions as the pool's RPC call now reads them (``daemon.gbt``)."""
    answer = answer_bytes({**gbt, "previousblockhash": f"{height:064x}", "height": height})
    return parse_template_answer(answer)["result"]  # type: ignore[no-any-return]


async def broadcast_figures(sessions: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stratum-bench-newblock-") as tmp:
        return await _broadcast_figures(Path(tmp) / "pool.toml", sessions, rounds)


async def _broadcast_figures(config: Path, sessions: int, rounds: int) -> dict[str, Any]:
    write_bench_config(config)  # its limits admit load.py's sessions from one address
    coin = pool_from_config(config)
    gbt = base_template()
    coin.jobs.update(gbt)
    conns: list[_Connection] = []
    floor = FloorServer(1.0, 0)
    for i in range(sessions):
        conn = _Connection(coin.server)
        transport = CountingTransport()
        transport.keep = False
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(session_lines(f"{ADDRESSES[i % len(ADDRESSES)]}.nb{i}"))
        conns.append(conn)
        floor_conn = FloorConnection(floor)
        floor_conn.connection_made(CountingTransport())  # type: ignore[arg-type]
        floor_conn.authorized = True
        floor.connections.append(floor_conn)
    working = sum(1 for c in conns if c.session is not None and c.session.working)
    if working != sessions:
        raise SystemExit(f"only {working} of {sessions} sessions are working")

    height = gbt["height"]
    update, broadcast, full = [], [], []
    tips = [new_tip(gbt, height + 1 + i) for i in range(2 * rounds)]
    for _ in range(rounds):
        height += 1
        tip = tips.pop(0)
        with gc_paused():  # as the pool's _apply runs them
            start = time.perf_counter()
            new_block = coin.jobs.update(tip)
            coin.jobs.current_job(ADDRESSES[0])  # solo: the first address's job
            update.append((time.perf_counter() - start) * 1000)
            assert new_block
            start = time.perf_counter()
            sent = coin.server.broadcast(True, coin.jobs)
            broadcast.append((time.perf_counter() - start) * 1e6 / sent)
        if sent != sessions:
            raise SystemExit(f"broadcast reached {sent} of {sessions} sessions")
        # the full path, as every session took it before: push_job's actions handled per session
        height += 1
        coin.jobs.update(tips.pop(0))
        lines: dict[str, Any] = {}
        gc.disable()
        start = time.perf_counter()
        for conn in conns:
            session = conn.session
            assert session is not None
            key = session.payout_key
            if key not in lines:
                job = coin.jobs.current_job(key)
                assert job is not None
                lines[key] = (job, msg.notify(job, True))
            job, line = lines[key]
            conn.handle(session.push_job(job, True, line))
        full.append((time.perf_counter() - start) * 1e6 / sessions)
        gc.enable()
    floor_us = []
    for _ in range(rounds):
        start = time.perf_counter()
        floor.new_block()
        floor_us.append((time.perf_counter() - start) * 1e6 / sessions)
    return {"sessions": sessions, "update_ms": spread(update), "broadcast_us_per_session": spread(broadcast, 3),
            "floor_broadcast_us_per_session": spread(floor_us, 3),
            "push_job_path_us_per_session": spread(full, 3)}


def _fmt(figure: dict[str, float], unit: str) -> str:
    return f"{figure['median']} {unit} (min {figure['min']}, max {figure['max']})"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="the pool's own part of a new block, in process")
    p.add_argument("--sessions", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    coin = get_coin("bitcoin", "mainnet")
    r: dict[str, Any] = {"bench": "newblock", "rounds": args.rounds}
    r.update(fetch_figures(args.rounds))
    r.update(template_figures(coin, args.rounds))
    r.update(asyncio.run(broadcast_figures(args.sessions, args.rounds)))
    r["own_part_ms_median"] = round(r["getblocktemplate_ms"]["median"] + r["update_ms"]["median"], 2)
    rows = [
        (f"getblocktemplate ({r['answer_bytes']:,} bytes)", _fmt(r["getblocktemplate_ms"], "ms")),
        ("  of which parse_template_answer", _fmt(r["parse_template_answer_ms"], "ms")),
        ("  orjson.loads of the whole answer instead", _fmt(r["orjson_loads_ms"], "ms")),
        ("template_from_gbt, scanned answer", _fmt(r["template_scanned_ms"], "ms")),
        ("template_from_gbt, orjson's answer", _fmt(r["template_native_ms"], "ms")),
        ("  the same, pure Python", _fmt(r["template_python_ms"], "ms")),
        ("JobManager.update + first job", _fmt(r["update_ms"], "ms")),
        ("fetch + update (the own part before the first write)", f"{r['own_part_ms_median']} ms (medians)"),
        (f"broadcast per session ({r['sessions']:,} sessions)", _fmt(r["broadcast_us_per_session"], "us")),
        ("  floor: the prepared line to every session", _fmt(r["floor_broadcast_us_per_session"], "us")),
        ("  push_job's full path per session", _fmt(r["push_job_path_us_per_session"], "us")),
    ]
    print_result(rows, r)
    return r


def run() -> dict[str, Any]:
    return main([])


if __name__ == "__main__":
    main()
