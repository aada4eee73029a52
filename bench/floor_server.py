"""The floor: the least a Stratum server on uvloop can do, for ``bench/load.py --baseline`` and ``--compare``.

It speaks just enough Stratum for the load generator's clients: a subscribe gets a fresh extranonce1, an
authorize gets ``true``, the fixed share difficulty and one job, and every ``mining.submit`` is answered
``true`` without being looked at (no JSON parse, no hashing, no bookkeeping, no persistence). A datagram on
the notify port (what ``stratum-pool notify`` sends the pool) writes a new ``clean_jobs`` job to every session
in one loop, with no template to fetch (``--zmq ENDPOINT``: a ZMQ ``hashblock`` message does the same, for
``load.py --signal zmq``). What this process spends per submit, and how long its fan-out takes, is
what the event loop, the kernel and this machine cost before a pool does any work: the pool's figures are read
against it, in the same run.

``--spool DIR`` makes it the durable floor (``load.py --baseline --floor-spool``): every submit also appends a
fixed share record to the pool's own spool (``ShareSpool``, the same group commit, ``--group-commit-ms``),
and its ``true`` waits until that record is fsynced, with one callback per group commit, as the pool's
answers do. Nothing is parsed or loaded into a database: what durability alone costs on this machine.

    python bench/floor_server.py --port P --notify-port U [--zmq tcp://127.0.0.1:Z] [--workers N] [--difficulty D]
        [--spool DIR [--group-commit-ms 2]]

``--workers N`` forks N processes sharing the port with SO_REUSEPORT, like the pool's supervisor
(``stratum_pool.cluster``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):  # run as a script from a source checkout: the durable floor uses the pool's spool
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# A synthetic job in mining.notify's shape: the clients hash real headers against it (nothing checks them).
_PREVHASH = "00" * 4 + "11" * 28
_COINB1 = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20030a0b0c"
_COINB2 = "ffffffff0100f2052a010000001976a914" + "22" * 20 + "88ac00000000"
_BRANCH = [f"{i:02x}" * 32 for i in range(1, 13)]  # 12 levels, as a mainnet template's
_VERSION, _NBITS, _NTIME = "20000000", "1d00ffff", "5f5e1000"


def notify_line(job_number: int, clean: bool) -> bytes:
    params = [f"{job_number:x}", _PREVHASH[:-8] + f"{job_number:08x}", _COINB1, _COINB2, _BRANCH, _VERSION,
              _NBITS, _NTIME, clean]
    return orjson.dumps({"id": None, "method": "mining.notify", "params": params}) + b"\n"


class FloorServer:
    def __init__(self, difficulty: float, worker: int, spool: Any = None, key: bytes = b"") -> None:
        self.difficulty = difficulty
        self.connections: list[FloorConnection] = []
        self.job_number = 1
        self.notify = notify_line(self.job_number, True)
        self.next_extranonce = worker << 24
        self.spool = spool  # a ShareSpool: the durable floor
        self.key = key  # its share records' encoded strings
        # a group commit's future -> the answers it holds, in order
        self.held: dict[asyncio.Future[None], list[tuple[Any, bytes]]] = {}

    def answer_durably(self, transport: Any, answer: bytes) -> None:
        future = self.spool.append_share(time.time(), 1.0, 1.0, 0, False, self.key)[1]
        held = self.held.get(future)
        if held is None:
            held = self.held[future] = []
            future.add_done_callback(self.release)
        held.append((transport, answer))

    def release(self, future: asyncio.Future[None]) -> None:
        for transport, answer in self.held.pop(future, ()):
            if not transport.is_closing():
                transport.write(answer)

    def new_block(self) -> None:
        self.job_number += 1
        line = self.notify = notify_line(self.job_number, True)
        for conn in self.connections:
            transport = conn.transport
            if transport is not None and conn.authorized:
                transport.write(line)


class FloorConnection(asyncio.Protocol):
    __slots__ = ("authorized", "buffer", "server", "transport")

    def __init__(self, server: FloorServer) -> None:
        self.server = server
        self.transport: Any = None
        self.buffer = b""
        self.authorized = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.server.connections.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(ValueError):
            self.server.connections.remove(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if not self.buffer and data.find(b"\n") == len(data) - 1:
            self.line(data)
            return
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for line in lines:
            self.line(line)

    def line(self, line: bytes) -> None:
        # '{"id":N,"method":...' as the load generator writes it: the id is what stands before the first comma
        rid = line[6:line.find(b",")]
        if b'"mining.submit"' in line:
            if self.server.spool is None:
                self.transport.write(b'{"id":%s,"result":true,"error":null}\n' % rid)
            else:
                self.server.answer_durably(self.transport, b'{"id":%s,"result":true,"error":null}\n' % rid)
        elif b'"mining.subscribe"' in line:
            server = self.server
            server.next_extranonce += 1
            result = [[["mining.notify", "1"]], f"{server.next_extranonce:08x}", 4]
            self.transport.write(orjson.dumps({"id": int(rid), "result": result, "error": None}) + b"\n")
        elif b'"mining.authorize"' in line:
            self.authorized = True
            difficulty = orjson.dumps({"id": None, "method": "mining.set_difficulty",
                                       "params": [self.server.difficulty]})
            self.transport.write(b'{"id":%s,"result":true,"error":null}\n%s\n%s' % (rid, difficulty,
                                                                                     self.server.notify))
        else:
            self.transport.write(b'{"id":%s,"result":null,"error":[20,"unknown",null]}\n' % rid)


class NotifyListener(asyncio.DatagramProtocol):
    """A new block: the other workers are told first (as the pool's own relay does), then this one's sessions."""

    def __init__(self, server: FloorServer, relays: list[socket.socket]) -> None:
        self.server = server
        self.relays = relays

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for relay in self.relays:
            relay.send(b"1")
        self.server.new_block()


async def zmq_hashblock(endpoint: str, listener: NotifyListener) -> None:
    """A ZMQ SUB on the daemon's ``hashblock`` (the pool's ZmqBlockSubscriber's socket): each message is a new
    block, told to the workers and written to the sessions as a notify datagram would be."""
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"hashblock")
    sub.connect(endpoint)
    try:
        while True:
            await sub.recv_multipart()
            listener.datagram_received(b"", None)
    finally:
        sub.close(linger=0)
        ctx.term()


async def serve(sock: socket.socket, notify: socket.socket, relays: list[socket.socket], difficulty: float,
                worker: int, zmq_endpoint: str = "", spool_dir: str = "", group_commit_ms: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    spool, key = None, b""
    if spool_dir:
        from stratum_pool.store.spool import ShareSpool, share_key_bytes

        spool = ShareSpool(spool_dir, group_commit_seconds=group_commit_ms / 1000)
        key = share_key_bytes("bitcoin", "floor", "worker", "floor")
    server = FloorServer(difficulty, worker, spool, key)
    stratum = await loop.create_server(lambda: FloorConnection(server), sock=sock, backlog=4096)
    listener = NotifyListener(server, relays)
    await loop.create_datagram_endpoint(lambda: listener, sock=notify)
    subscriber = asyncio.create_task(zmq_hashblock(zmq_endpoint, listener)) if zmq_endpoint else None
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    if subscriber is not None:
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
    stratum.close()
    if spool is not None:
        await spool.close()


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--notify-port", type=int, required=True)
    p.add_argument("--zmq", default="", help="also take new blocks from a ZMQ hashblock publisher (worker 0)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--difficulty", type=float, default=2.0**-30)
    p.add_argument("--spool", default="", help="the durable floor: answers wait for this spool's group commit")
    p.add_argument("--group-commit-ms", type=float, default=2.0)
    args = p.parse_args()
    if args.spool and args.workers > 1:
        p.error("--spool: one worker only")
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    notify = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    notify.bind(("127.0.0.1", args.notify_port))
    notify.setblocking(False)
    children: list[int] = []
    relays: list[socket.socket] = []
    for worker in range(1, args.workers):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        pid = os.fork()
        if pid == 0:
            notify.close()
            for other in relays:
                other.close()
            mine.close()
            theirs.setblocking(False)
            run(listening_socket(args), theirs, [], args.difficulty, worker)
            os._exit(0)
        theirs.close()
        relays.append(mine)
        children.append(pid)
    run(listening_socket(args), notify, relays, args.difficulty, 0, args.zmq, args.spool, args.group_commit_ms)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)


def listening_socket(args: argparse.Namespace) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.workers > 1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def run(sock: socket.socket, notify: socket.socket, relays: list[socket.socket], difficulty: float,
        worker: int, zmq_endpoint: str = "", spool_dir: str = "", group_commit_ms: float = 2.0) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(sock, notify, relays, difficulty, worker, zmq_endpoint, spool_dir, group_commit_ms))


if __name__ == "__main__":
    sys.exit(main())
