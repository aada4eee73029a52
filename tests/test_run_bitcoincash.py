"""``make run RUN_ARGS=--coin=bitcoincash``: bcash and the pool start, the stratum URL names Bitcoin Cash and
a bchreg: cashaddr user name, and a miner gets work there; Ctrl-C stops everything."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from miner import Miner

from stratum_pool.coins import get_coin
from stratum_pool.devnet.common import free_port

pytestmark = pytest.mark.integration


async def test_make_run_serves_bitcoin_cash(bcash_installed: bool) -> None:
    port, api = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratum_pool.devnet.run", "--coin=bitcoincash", "--no-database",
         f"--bch-port={port}", f"--api-port={api}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), deadline - time.monotonic())
            except TimeoutError:
                break  # the SIGINT below ends the child, and with it the read
            if not line:
                break
            lines.append(line)
            url = re.search(rf"stratum\+tcp://127\.0\.0\.1:{port}  bitcoincash regtest \(sha256d\)  "
                            r"user: (bchreg:[a-z0-9]+)\[\.worker\]  password: x  \(Bitcoin Cash regtest\)", line)
        assert url is not None, "".join(lines)
        address = url.group(1)
        async with Miner("127.0.0.1", port, get_coin("bitcoincash", "regtest"), address, "bitaxe") as miner:
            assert miner.job is not None
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, "".join(lines) + out
    assert "stopped: the pool and the regtest node(s) it started" in out
