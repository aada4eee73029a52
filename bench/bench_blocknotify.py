"""What a ``-blocknotify`` command costs, from the daemon starting it to the datagram at the pool (issue 19, target 2).

    .venv/bin/python bench/bench_blocknotify.py [--runs 30]

bitcoind and litecoind run the ``-blocknotify`` string through ``/bin/sh -c`` (``%s`` replaced by the block
hash, in a new thread) for every new block; this does the same with each command in turn, alternating, and
times ``/bin/sh -c`` starting to the datagram arriving at a UDP socket bound like the pool's
``notify_listen`` (each datagram checked as the listener checks it: the tag, then a 64-hex-digit hash).

* ``stratum-pool notify``: ``stratum-pool notify --to 127.0.0.1:PORT %s`` (a Python process start);
* ``bash /dev/udp``: ``daemon.blocknotify.blocknotify_shell_command`` (no Python: bash writes the datagram).

Prints every run's median, min and max per command and one JSON line. Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from stratum_pool.daemon.blocknotify import NOTIFY_TAG, blocknotify_shell_command
from stratum_pool.daemon.notify import parse_block_hash

BLOCK_HASH = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"


def time_command(command: str, sock: socket.socket) -> float:
    """Seconds from ``sh -c command`` starting to its datagram arriving (the daemon's own way of running it)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(["/bin/sh", "-c", command.replace("%s", BLOCK_HASH)])
    data = sock.recv(512)
    t1 = time.perf_counter()
    process.wait()
    assert data.startswith(NOTIFY_TAG) and parse_block_hash(data[len(NOTIFY_TAG):]) == BLOCK_HASH, data
    return t1 - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    cli = Path(sys.executable).parent / "stratum-pool"  # the console script next to this interpreter
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        commands = {
            "stratum-pool notify": f"{cli} notify --to 127.0.0.1:{port} %s",
            "bash /dev/udp": blocknotify_shell_command("127.0.0.1", port),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():
            time_command(command, sock)  # warm the page cache once
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(time_command(command, sock) * 1000)
    print(f"-blocknotify command -> datagram at the pool's socket, {args.runs} runs each (ms):")
    result: dict[str, object] = {"runs": args.runs}
    for name, values in times.items():
        median, low, high = statistics.median(values), min(values), max(values)
        print(f"  {name.ljust(22)} median {median:7.2f}   min {low:7.2f}   max {high:7.2f}   ({commands[name]})")
        key = name.replace(" ", "_").replace("/", "").replace("-", "_")
        result[f"{key}_ms_median"], result[f"{key}_ms_min"], result[f"{key}_ms_max"] = (
            round(median, 2), round(low, 2), round(high, 2))
    print(json.dumps(result))


def run() -> None:
    """For bench/run.py."""
    main([])


if __name__ == "__main__":
    main()
