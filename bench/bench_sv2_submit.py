"""Stratum V2 against V1, in one run: the pool's own CPU per accepted share, in process, without sockets.

    .venv/bin/python bench/bench_sv2_submit.py [--shares 20000] [--sessions 200]

The same ``CoinPool`` (the settings ``bench/load.py`` uses, solo, no database, the mainnet-sized template of
block 574200) serves both. V2: each of ``--sessions`` connections completes a real Noise handshake with the
project's client (tests/sv2_client.py, a NoiseInitiator), opens an extended channel and is fed encrypted
SubmitSharesExtended frames of real shares through ``Sv2Connection.data_received`` (decrypt, decode, the share
core, the pool's accounting, the encrypted SubmitShares.Success); V1: ``bench_submit``'s measure, the same
shares' cost through ``_Connection.data_received``. Each figure is the least mean over 5 rounds. A third row:
one whole Noise handshake on the pool's side.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from bench_submit import CountingTransport, best_of, per_call_ns, pool_from_config, write_bench_config  # noqa: E402
from bench_submit import measure as measure_v1  # noqa: E402
from load import ADDRESSES, COIN, SHARE_DIFFICULTY, print_result  # noqa: E402
from standin_daemon import base_template  # noqa: E402
from sv2_client import Sv2Client  # noqa: E402

from stratum_pool.protocol.v2.keys import create_authority_key_file  # noqa: E402
from stratum_pool.protocol.v2.noise import NoiseInitiator, NoiseResponder  # noqa: E402
from stratum_pool.server.sv2 import Sv2Connection  # noqa: E402


class _Client:
    """One V2 miner fed to an in-process connection: Noise initiator + the sans-IO client."""

    def __init__(self, conn: Sv2Connection, transport: CountingTransport, user: str) -> None:
        self.conn, self.transport = conn, transport
        self.noise = NoiseInitiator(None)
        self.client = Sv2Client(COIN, user, extended=True)
        conn.data_received(self.noise.data_to_send())
        self._pump()
        for frame in (self.client.setup_frame(), self.client.open_frame()):
            conn.data_received(self.noise.send(frame))
            self._pump()

    def _pump(self) -> None:
        data = b"".join(self.transport.lines)
        self.transport.lines.clear()
        for frame in self.noise.receive(data):
            self.client.receive(frame)


async def measure(shares: int, sessions: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="stratum-bench-sv2-"))
    config = tmp / "pool.toml"
    write_bench_config(config)
    key = tmp / "authority.key"
    create_authority_key_file(key)
    text = config.read_text()  # the coin table's keys, before its sub-tables
    anchor = "template_refresh_seconds = 3600\n"
    config.write_text(text.replace(anchor, f'{anchor}sv2_port = 3336\nsv2_authority_key_file = "{key}"\n', 1))
    coin = pool_from_config(config)
    coin.jobs.update(base_template())
    server = coin.sv2_server
    assert server is not None

    clients: list[_Client] = []
    for i in range(sessions):
        transport = CountingTransport()
        conn = Sv2Connection(server)
        conn.connection_made(transport)  # type: ignore[arg-type]
        clients.append(_Client(conn, transport, f"{ADDRESSES[i % len(ADDRESSES)]}.v2bench{i}"))
    target = int(COIN.diff1_target / SHARE_DIFFICULTY)
    per = -(-shares // sessions)
    order: list[tuple[Sv2Connection, bytes]] = []
    for _ in range(per):
        for c in clients:
            assert c.client.job is not None, "no job on the channel"
            share = c.client.find_share(target=target)
            order.append((c.conn, c.noise.send(c.client.submit(share))))  # encrypted in the order fed
    for c in clients:
        c.transport.keep = False

    def feed(item: tuple[Sv2Connection, bytes]) -> None:
        item[0].data_received(item[1])

    accepted_before = coin.stats.shares_accepted
    warm = order[: len(order) // 10]
    per_call_ns(feed, warm)
    v2_ns = best_of(feed, order[len(warm):], repeat=False)
    accepted = coin.stats.shares_accepted - accepted_before
    if accepted != len(order) or coin.stats.shares_rejected:
        raise SystemExit(f"expected every V2 share accepted: {accepted} of {len(order)}, "
                         f"rejected {dict(coin.stats.shares_rejected)}")

    keys = coin.sv2_keys
    hellos = [NoiseInitiator(None).data_to_send() for _ in range(200)]

    def handshake(hello: bytes) -> None:
        responder = NoiseResponder.for_server(keys, int(time.time()))
        responder.receive(hello)
        responder.data_to_send()

    handshake_ns = best_of(handshake, hellos)
    v1 = await measure_v1(shares, sessions)
    return {"bench": "sv2_submit", "shares": len(order), "sessions": sessions,
            "v2_us_per_accepted_share": round(v2_ns / 1000, 3), "v1_us_per_accepted_share": v1["pool_us_per_submit"],
            "v2_over_v1": round(v2_ns / 1000 / v1["pool_us_per_submit"], 2),
            "handshake_responder_ms": round(handshake_ns / 1e6, 3)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="Stratum V2 against V1: the pool's CPU per accepted share")
    p.add_argument("--shares", type=int, default=20_000)
    p.add_argument("--sessions", type=int, default=200)
    args = p.parse_args(argv)
    r = asyncio.run(measure(args.shares, args.sessions))
    rows = [
        ("V2: Sv2Connection.data_received, accepted share (decrypt .. encrypted answer)",
         f"{r['v2_us_per_accepted_share']} us"),
        ("V1: _Connection.data_received, accepted share", f"{r['v1_us_per_accepted_share']} us"),
        ("V2 / V1", f"{r['v2_over_v1']}x"),
        ("one Noise handshake, the pool's side", f"{r['handshake_responder_ms']} ms"),
    ]
    print_result(rows, r)
    return r


def run() -> dict[str, Any]:
    return main(["--shares", "10000"])


if __name__ == "__main__":
    main()
