"""The pool's own Python per share submit, without sockets: the server's connection object, a real session,
the real share core and the pool's accounting, fed one submit line at a time (the best of 5 rounds).

    .venv/bin/python bench/bench_submit.py [--shares 50000]

A ``CoinPool`` is built from the settings ``bench/load.py`` uses (solo mode, no database) and given the
mainnet-sized template the stand-in daemon serves (block 574200: a 12-level branch). 200 connections with
transports that only count bytes subscribe and authorize; then submit lines of real shares (found by hashing at
the pool's low fixed difficulty, as the load generator's clients do) go through ``_Connection.data_received``,
one session after the other, and the least mean time per line over 5 rounds is printed. Beside it, in the
same run: the floor server's ``data_received`` (``bench/floor_server.py``: answers ``true`` without reading
the line), the native fused share check alone, and ``orjson.loads`` of the same line, so the figure reads as
a ratio to what any server, and what the hashing alone, costs. The kernel's part (the socket read and write,
the event loop's wake-ups) is what ``bench/load.py --compare`` adds on top.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from floor_server import FloorConnection, FloorServer  # noqa: E402
from load import ADDRESSES, COIN, SHARE_DIFFICULTY, job_from_notify, print_result, write_config  # noqa: E402
from load import _lines as session_lines  # noqa: E402
from standin_daemon import base_template  # noqa: E402

from stratum_pool import _native  # noqa: E402
from stratum_pool.coins import ALGO_SHA256D  # noqa: E402
from stratum_pool.config import load_settings  # noqa: E402
from stratum_pool.logs import configure_logging  # noqa: E402
from stratum_pool.pool import CoinPool  # noqa: E402
from stratum_pool.server.stratum import _Connection  # noqa: E402

ROUNDS = 5


class CountingTransport:
    """What a connection writes to, counted and dropped."""

    def __init__(self) -> None:
        self.written = 0
        self.lines: list[bytes] = []
        self.keep = True

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.keep:
            self.lines.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.2", 40000) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def share_lines(notify: dict[str, Any], extranonce1: bytes, user: str, count: int) -> list[bytes]:
    """``count`` submit lines of distinct shares that meet the pool's difficulty, as a miner finds them."""
    job = job_from_notify(notify["params"])
    target = int(COIN.diff1_target / SHARE_DIFFICULTY)
    lines = []
    for i in range(count):
        en2 = i.to_bytes(4, "big")
        nonce = random.getrandbits(32)
        while True:
            _, pow_hash = _native.check_share(ALGO_SHA256D, job.coinb1, extranonce1, en2, job.coinb2, job.branch,
                                              job.version, job.prevhash, job.ntime, job.nbits, nonce)
            if int.from_bytes(pow_hash, "little") <= target:
                break
            nonce = (nonce + 1) & 0xFFFFFFFF
        params = orjson.dumps([user, job.job_id, en2.hex(), f"{job.ntime:08x}", f"{nonce:08x}"])
        lines.append(b'{"id":%d,"method":"mining.submit","params":%s}\n' % (i + 10, params))
    return lines


def per_call_ns(fn: Any, items: list[Any]) -> float:
    start = time.perf_counter_ns()
    for item in items:
        fn(item)
    return (time.perf_counter_ns() - start) / len(items)


def best_of(fn: Any, items: list[Any], rounds: int = ROUNDS, repeat: bool = True) -> float:
    """The least mean time per call over ``rounds`` rounds (this machine's noise only ever adds time): all of
    ``items`` each round when ``repeat``, else a fresh slice of them each round (shares may not be repeated)."""
    if repeat:
        return min(per_call_ns(fn, items) for _ in range(rounds))
    size = len(items) // rounds
    return min(per_call_ns(fn, items[i * size:(i + 1) * size]) for i in range(rounds))


def write_bench_config(config: Path) -> None:
    """The settings ``bench/load.py`` gives the pool (solo, no database), for a pool that only runs in process."""
    write_config(config, stratum_port=3333, daemon_port=18443, notify_port=18444, workers=1, longpoll=False,
                 dsn="", log_level="warning", api_port=18445)


def pool_from_config(config: Path) -> CoinPool:
    """The ``CoinPool`` of ``config``'s first coin, its logging configured, nothing started."""
    settings = load_settings(config)
    configure_logging("warning", "json")
    return CoinPool(settings.coins[0], limits=settings.limits, ban_policy=settings.bans)


async def measure(shares: int, sessions: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="stratum-bench-submit-"))
    config = tmp / "pool.toml"
    write_bench_config(config)
    coin = pool_from_config(config)
    coin.jobs.update(base_template())
    user = f"{ADDRESSES[0]}.bench"

    # like the load generator's: many sessions, each submit from the next one (their state is not all in cache)
    conns: list[_Connection] = []
    per_conn: list[list[bytes]] = []
    per = -(-shares // sessions)
    notify: dict[str, Any] = {}
    for i in range(sessions):
        user = f"{ADDRESSES[i % len(ADDRESSES)]}.bench{i}"
        transport = CountingTransport()
        conn = _Connection(coin.server)
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(session_lines(user))
        answers = [orjson.loads(x) for chunk in transport.lines for x in chunk.splitlines()]
        subscribe = next(a for a in answers if a.get("id") == 1)
        notify = next(a for a in answers if a.get("method") == "mining.notify")
        extranonce1 = bytes.fromhex(subscribe["result"][1])
        per_conn.append(share_lines(notify, extranonce1, user, per))
        transport.keep = False
        conns.append(conn)
    order = [(conns[i % sessions], per_conn[i % sessions][i // sessions]) for i in range(per * sessions)]
    lines = [line for _, line in order]

    floor_transport = CountingTransport()
    floor_transport.keep = False
    floor = FloorConnection(FloorServer(SHARE_DIFFICULTY, 0))
    floor.connection_made(floor_transport)  # type: ignore[arg-type]

    job = job_from_notify(notify["params"])
    extranonce1 = bytes(4)
    nonces = [int(orjson.loads(line)["params"][4], 16) for line in lines]

    def native_only(nonce: int) -> None:
        _native.check_share(ALGO_SHA256D, job.coinb1, extranonce1, b"\0\0\0\1", job.coinb2, job.branch,
                            job.version, job.prevhash, job.ntime, job.nbits, nonce)

    warm = order[: len(order) // 10]
    floor_ns = best_of(floor.data_received, lines)
    native_ns = best_of(native_only, nonces)
    parse_ns = best_of(orjson.loads, lines)
    accepted_before = coin.stats.shares_accepted
    def feed(item: tuple[_Connection, bytes]) -> None:
        item[0].data_received(item[1])

    per_call_ns(feed, warm)  # the first job lookups, vardiff's first window
    pool_ns = best_of(feed, order[len(warm):], repeat=False)
    accepted = coin.stats.shares_accepted - accepted_before
    rejected = dict(coin.stats.shares_rejected)
    if accepted != len(order) or rejected:
        raise SystemExit(f"expected every share accepted: {accepted} of {len(lines)}, rejected {rejected}")
    return {"bench": "submit", "shares": len(lines), "sessions": sessions,
            "pool_us_per_submit": round(pool_ns / 1000, 3),
            "floor_us_per_submit": round(floor_ns / 1000, 3), "native_check_us": round(native_ns / 1000, 3),
            "orjson_loads_us": round(parse_ns / 1000, 3),
            "pool_minus_floor_us": round((pool_ns - floor_ns) / 1000, 3),
            "pool_over_native_check": round(pool_ns / native_ns, 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="the pool's Python per share submit, in process")
    p.add_argument("--shares", type=int, default=50_000)
    p.add_argument("--sessions", type=int, default=200, help="submitting sessions, taken in turn (default 200)")
    args = p.parse_args(argv)
    r = asyncio.run(measure(args.shares, args.sessions))
    rows = [
        ("pool: _Connection.data_received, accepted share", f"{r['pool_us_per_submit']} us"),
        ("floor: answer true, line unread", f"{r['floor_us_per_submit']} us"),
        ("native fused share check alone", f"{r['native_check_us']} us"),
        ("orjson.loads of the submit line", f"{r['orjson_loads_us']} us"),
        ("pool - floor", f"{r['pool_minus_floor_us']} us"),
        ("pool / native check", f"{r['pool_over_native_check']}x"),
    ]
    print_result(rows, r)
    return r


def run() -> dict[str, Any]:
    return main([])


if __name__ == "__main__":
    main()
