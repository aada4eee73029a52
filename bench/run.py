"""Run every benchmark: ``python bench/run.py`` (``make bench``). Add a bench by listing its module below."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Make the benches and the package importable from a plain source checkout (build_ext --inplace).
sys.path[:0] = [str(HERE), str(HERE.parent)]

# Each module has a run() that prints its table and one JSON line.
BENCHES = [
    "bench_native",
    "bench_submit",  # the pool's Python per accepted submit, in process, against the floor and the native check
    "bench_store",  # spool append/fsync and share rows per second into PostgreSQL
    "bench_sv2_handshake",  # Stratum V2's Noise: one handshake, a share-sized frame encrypted and decrypted
    "bench_sv2_submit",  # Stratum V2 against V1: the pool's CPU per accepted share, in one run
    "load",  # end to end, the floor then the pool: 5,000 sessions (bench/load.py for the full run)
    # issue 19's figures: the durable path beside the in-memory one and the floors; a found block to clean work
    # (bcoin regtest); what a -blocknotify command costs; the pool's own part of a new block, in process
    # (bench/load.py --compare --signal zmq for the whole fan-out from the daemon's ZMQ message)
    "bench_durable",
    "bench_found_block",
    "bench_blocknotify",
    "bench_newblock",
    "bench_api",  # the API's own HTTP server: requests/s and server CPU per request, keep-alive
]


def main() -> int:
    for name in BENCHES:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        importlib.import_module(name).run()
        print(f"== {name} done in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
