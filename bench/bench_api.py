"""The API's HTTP server: requests per second and the server's CPU per request, over keep-alive connections.

A table, then one JSON line. Run with ``python bench/run.py`` (every bench) or ``python bench/bench_api.py``.
The API (``create_app`` without a database, a registry of 50 counters for /metrics) is served by its own
process, as the pool serves it; the clients (raw keep-alive GETs, one or 20 connections) run here, so the
server's CPU is its process's alone. Its resident memory after the run is printed too.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/health", "/metrics", "/api/pool")


def serve() -> None:
    """The server process: print the bound port, then serve until killed."""
    from prometheus_client import CollectorRegistry, Counter

    from stratum_pool.api import RateLimitSettings, create_app, start_api_server

    registry = CollectorRegistry()
    counter = Counter("bench_events", "events", ["coin"], registry=registry)
    for i in range(50):
        counter.labels(f"coin{i}").inc(i)

    async def main() -> None:
        app = create_app(None, [], registry, rate_limit=RateLimitSettings(enabled=False), cache_seconds=0)
        _, port = await start_api_server(app, "127.0.0.1", 0)
        sys.stdout.write(f"port {port}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


async def client(port: int, path: str, count: int) -> None:
    """``count`` GETs of ``path`` on one keep-alive connection, each answer read whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head[:40]
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
    finally:
        writer.close()


def run(requests: int = 4000) -> dict[str, Any]:
    from load import cpu_seconds, rss_bytes  # the load bench's /proc readers

    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        while line and not line.startswith("port "):
            line = server.stdout.readline()
        port = int(line.split()[1])
        result: dict[str, Any] = {"bench": "api", "requests": requests}
        rows = []
        for path in PATHS:
            for connections in (1, 20):
                asyncio.run(client(port, path, 50))  # warm up
                cpu, start = cpu_seconds([server.pid]), time.perf_counter()

                async def load(path: str = path, connections: int = connections) -> None:
                    await asyncio.gather(*(client(port, path, requests // connections) for _ in range(connections)))

                asyncio.run(load())
                seconds, cpu = time.perf_counter() - start, cpu_seconds([server.pid]) - cpu
                key = f"{path.strip('/').replace('/', '_')}_{connections}"
                result[f"{key}_per_second"] = round(requests / seconds)
                result[f"{key}_server_us"] = round(cpu / requests * 1e6, 1)
                rows.append((path, connections, requests / seconds, cpu / requests * 1e6))
        result["server_rss_mb"] = round(rss_bytes([server.pid]) / 2**20, 1)
    finally:
        server.kill()
        server.wait()
    print(f"{'path':12} {'connections':>11} {'requests/s':>11} {'server CPU us/request':>22}")
    for path, connections, per_second, us in rows:
        print(f"{path:12} {connections:>11} {per_second:>11.0f} {us:>22.1f}")
    print(f"server RSS after the run: {result['server_rss_mb']} MiB (the API alone, no pool)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        run()
