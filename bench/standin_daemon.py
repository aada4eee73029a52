"""A stand-in bitcoind for load tests: JSON-RPC over HTTP on 127.0.0.1, mainnet-sized templates.

The template is rebuilt from the real mainnet block 574200 (3,314 transactions, a 12-level merkle branch;
``tests/mainnet.py: gbt_from_block``), so the pool parses and serves work exactly as big as a real one.
Answers ``getblocktemplate`` (long polling too: a request carrying the current ``longpollid`` waits for
the next block), ``submitblock``, ``getbestblockhash``, ``getblockhash``, ``getblockcount``,
``getblockchaininfo``, ``getnetworkinfo``, ``validateaddress``, and two bench-only methods:

* ``bench_newblock`` -> the new tip's hash (display order): the chain moves on by one block, later
  templates build on it (the caller then tells the pool, e.g. with ``stratum-pool notify``);
* ``bench_newblock_signal`` with ``"zmq"`` or ``"blocknotify"`` -> ``[tip, t0]``: the chain moves on by one
  block and the daemon signals it itself, as bitcoind does, ``t0`` (``time.monotonic()``, system-wide on
  Linux) taken just before the ZMQ publish or the shell's start;
* ``bench_stats`` -> ``{"calls": {method: n}, "submitted": n, "height": n}``.

The daemon's own new-block signals, as bitcoind sends them:

* ``--zmq-port N`` (``-zmqpubhashblock=tcp://127.0.0.1:N``): a ZMQ PUB socket publishing the multipart
  ``[b"hashblock", the 32-byte hash in display order (as RPC prints it), the 4-byte little-endian sequence
  number]``, the sequence counting from 0;
* ``--blocknotify CMD`` (``-blocknotify=CMD``): every ``%s`` replaced with the hash (display hex), run through
  ``/bin/sh -c`` and not waited for (a thread of its own reaps it, as bitcoind's detached thread does).

Run alone: ``python bench/standin_daemon.py --port 18443`` (prints ``listening PORT`` when ready), or in
a process of your own with :func:`start_standin` (a daemon thread; returns the server).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

SOURCE_HEIGHT = 574200
LONGPOLL_WAIT_SECONDS = 60.0


@cache
def base_template() -> dict[str, Any]:
    """The getblocktemplate answer block 574200 could have been mined from (parsed once per process)."""
    from mainnet import gbt_from_block, read_block

    from stratum_pool.chain.block import parse_block

    block = parse_block(read_block(SOURCE_HEIGHT))
    gbt = gbt_from_block(block, SOURCE_HEIGHT, block.version)
    gbt["rules"] = ["csv", "!segwit"]
    return gbt


class Signals:
    """The daemon's own new-block signals: a ZMQ ``hashblock`` publisher and a ``-blocknotify`` command.

    The HTTP server answers on many threads and a ZMQ socket is not thread-safe: the PUB socket (and its
    sequence number) is only touched under ``_lock``.
    """

    def __init__(self, zmq_port: int = 0, blocknotify: str = "") -> None:
        self.blocknotify = blocknotify
        self._lock = threading.Lock()
        self._sequence = 0
        self._ctx: Any = None
        self._pub: Any = None
        self.zmq_port = 0
        if zmq_port:  # -1: any free port (tests), see zmq_port after
            import zmq

            self._ctx = zmq.Context()
            self._pub = self._ctx.socket(zmq.PUB)
            self._pub.setsockopt(zmq.LINGER, 0)
            if zmq_port == -1:
                self.zmq_port = self._pub.bind_to_random_port("tcp://127.0.0.1")
            else:
                self._pub.bind(f"tcp://127.0.0.1:{zmq_port}")
                self.zmq_port = zmq_port

    def publish_hashblock(self, tip: str) -> float:
        """Publish ``tip`` (display hex) as bitcoind's ``hashblock``; returns t0, taken just before the send."""
        if self._pub is None:
            raise ValueError("no ZMQ publisher (start the stand-in with --zmq-port)")
        body = bytes.fromhex(tip)  # display order, as bitcoind sends it (it reverses the uint256's bytes)
        with self._lock:
            seq = self._sequence.to_bytes(4, "little")
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            t0 = time.monotonic()
            self._pub.send_multipart([b"hashblock", body, seq])
        return t0

    def run_blocknotify(self, tip: str) -> float:
        """Run the ``-blocknotify`` command for ``tip`` as bitcoind does; returns t0, taken just before the
        shell starts. Not waited for: a thread reaps it (no zombies pile up)."""
        if not self.blocknotify:
            raise ValueError("no -blocknotify command (start the stand-in with --blocknotify)")
        command = self.blocknotify.replace("%s", tip)
        t0 = time.monotonic()
        process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL)
        threading.Thread(target=process.wait, name="blocknotify-reaper", daemon=True).start()
        return t0

    def close(self) -> None:
        with self._lock:
            if self._pub is not None:
                self._pub.close(linger=0)
                self._ctx.term()
                self._pub = self._ctx = None


class Chain:
    """The stand-in's view of the chain: a tip that moves on when asked, and the template on top of it."""

    def __init__(self, signals: Signals | None = None) -> None:
        self.signals = signals or Signals()
        self._lock = threading.Condition()
        base = base_template()
        self.height = int(base["height"])
        self.tip = str(base["previousblockhash"])  # display order
        self.tips: dict[int, str] = {self.height - 1: self.tip}
        self.calls: Counter[str] = Counter()
        self.submitted = 0
        self._template_json = b""
        self._rebuild()

    def _rebuild(self) -> None:
        gbt = dict(base_template())
        gbt["previousblockhash"] = self.tip
        gbt["height"] = self.height
        gbt["longpollid"] = f"{self.tip}{self.height}"
        # the template part of a response, serialized once per block: every call reuses these bytes
        self._template_json = orjson.dumps(gbt)

    @property
    def longpollid(self) -> str:
        return f"{self.tip}{self.height}"

    def new_block(self) -> str:
        with self._lock:
            seed = f"{self.tip}{self.height}".encode()
            self.tip = hashlib.sha256(seed).digest()[::-1].hex()
            self.height += 1
            self.tips[self.height - 1] = self.tip
            self._rebuild()
            self._lock.notify_all()
            return self.tip

    def template_json(self, longpollid: str | None) -> bytes:
        with self._lock:
            if longpollid is not None and longpollid == self.longpollid:
                self._lock.wait_for(lambda: longpollid != self.longpollid, timeout=LONGPOLL_WAIT_SECONDS)
            return self._template_json

    def handle(self, method: str, params: list[Any]) -> tuple[bytes | None, Any, Any]:
        """(raw JSON result bytes or None, result, error)."""
        self.calls[method] += 1
        match method:
            case "getblocktemplate":
                request = params[0] if params and isinstance(params[0], dict) else {}
                lpid = request.get("longpollid")
                return self.template_json(lpid if isinstance(lpid, str) else None), None, None
            case "submitblock":
                with self._lock:
                    self.submitted += 1
                return None, None, None
            case "getbestblockhash":
                return None, self.tip, None
            case "getblockcount":
                return None, self.height - 1, None
            case "getblockhash":
                height = params[0] if params else -1
                tip = self.tips.get(height) if isinstance(height, int) else None
                if tip is None:
                    return None, None, {"code": -8, "message": "Block height out of range"}
                return None, tip, None
            case "getblockchaininfo":
                return None, {"chain": "main", "blocks": self.height - 1, "headers": self.height - 1,
                              "bestblockhash": self.tip, "initialblockdownload": False,
                              "verificationprogress": 1.0}, None
            case "getnetworkinfo":
                return None, {"version": 250000, "subversion": "/Satoshi:25.0.0(stand-in)/", "connections": 8,
                              "networkactive": True, "warnings": ""}, None
            case "validateaddress":
                address = params[0] if params else ""
                return None, {"isvalid": True, "address": address}, None
            case "bench_newblock":
                return None, self.new_block(), None
            case "bench_newblock_signal":
                how = params[0] if params else ""
                if how not in ("zmq", "blocknotify"):
                    return None, None, {"code": -8, "message": 'signal: "zmq" or "blocknotify"'}
                tip = self.new_block()
                try:
                    t0 = (self.signals.publish_hashblock(tip) if how == "zmq"
                          else self.signals.run_blocknotify(tip))
                except (ValueError, OSError) as exc:
                    return None, None, {"code": -1, "message": str(exc)}
                return None, [tip, t0], None
            case "bench_stats":
                return None, {"calls": dict(self.calls), "submitted": self.submitted,
                              "height": self.height}, None
            case _:
                return None, None, {"code": -32601, "message": "Method not found"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # the answer goes out in a few writes (headers, the template's bytes as they are, a short tail): none of
    # them may wait for an ACK of the one before
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = orjson.loads(self.rfile.read(length))
            method = str(request.get("method", ""))
            params = request.get("params") or []
            rid = request.get("id")
        except (orjson.JSONDecodeError, AttributeError):
            self._reply(400, b'{"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null}')
            return
        raw, result, error = self.server.chain.handle(method, params if isinstance(params, list) else [params])
        if raw is not None:
            # the template's megabytes are written as they are, not copied into a new body
            self._reply(200, b'{"result":', raw, b',"error":null,"id":' + orjson.dumps(rid) + b"}")
        else:
            self._reply(500 if error is not None else 200, orjson.dumps({"result": result, "error": error, "id": rid}))

    def _reply(self, status: int, *parts: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(sum(len(p) for p in parts)))
        self.end_headers()
        for part in parts:
            self.wfile.write(part)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], chain: Chain) -> None:
        super().__init__(address, _Handler)
        self.chain = chain

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer (a cancelled long poll) is no news


def start_standin(host: str = "127.0.0.1", port: int = 0, *, zmq_port: int = 0, blocknotify: str = "") -> _Server:
    """Serve in a daemon thread of this process; ``server.server_address[1]`` is the port, ``.chain`` the
    chain (``server.chain.new_block()`` moves the tip; ``server.chain.signals`` signals it; ``zmq_port=-1``
    binds the publisher to any free port, ``server.chain.signals.zmq_port``)."""
    server = _Server((host, port), Chain(Signals(zmq_port, blocknotify)))
    threading.Thread(target=server.serve_forever, name="standin-daemon", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--zmq-port", type=int, default=0,
                        help="publish hashblock on tcp://127.0.0.1:N, as bitcoind's -zmqpubhashblock")
    parser.add_argument("--blocknotify", default="",
                        help="run CMD (%%s: the block hash) through /bin/sh -c on each signalled block, as "
                             "bitcoind's -blocknotify")
    args = parser.parse_args(argv)
    signals = Signals(args.zmq_port, args.blocknotify)
    server = _Server((args.host, args.port), Chain(signals))
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signals.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
