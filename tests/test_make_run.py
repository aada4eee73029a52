"""The quick start's `make run`, as a newcomer runs it: bcoin regtest + the pool, a Bitaxe-like miner mines.

The test runs the real command, reads the stratum URL it prints, mines three blocks through it, checks them
on the bcoin node, then stops it like Ctrl-C does (a signal to the foreground process group) and checks
that the node it started is gone too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy
from miner import Miner

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import read_tx
from stratum_pool.chain.encoding import read_varint
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.devnet.bcoin import DEFAULT_API_KEY
from stratum_pool.devnet.common import free_port
from stratum_pool.protocol.v2.keys import decode_authority_key, xonly_public_key

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
BTC_REGTEST = get_coin("bitcoin", "regtest")


class Output:
    """Collects a child's stdout lines on a thread so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for text in self._proc.stdout:
            self.lines.append(text.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.lines:
                match = re.search(pattern, text)
                if match:
                    return match
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-40:]))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("database", [True, False], ids=["database", "no-database"])
async def test_make_run_serves_bitcoin_regtest_on_bcoin_and_stops_cleanly(database: bool, tmp_path: Path) -> None:
    port, api_port, tls_port, sv2_port = free_port(), free_port(), free_port(), free_port()
    sv2_dir = tmp_path / "sv2"
    extra = "" if database else " --no-database"
    proc = subprocess.Popen(
        ["make", "-s", "run", f"RUN_ARGS=--port {port} --ltc-port {free_port()} --api-port {api_port} "
                              f"--tls-port {tls_port} --tls-dir {tmp_path / 'tls'} "
                              f"--sv2-port {sv2_port} --sv2-dir {sv2_dir}{extra}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    out = Output(proc)
    try:
        node_url = out.wait_for(r"bcoin regtest node: http://127\.0\.0\.1:(\d+)", 300)
        line = out.wait_for(rf"stratum\+tcp://127\.0\.0\.1:{port}  bitcoin regtest \(sha256d\)  user: (\S+)\[", 120)
        address = line.group(1)
        assert address.startswith("bcrt1")
        # the Stratum V2 URL beside it, with the authority key a miner enters (kept in --sv2-dir)
        sv2 = out.wait_for(rf"stratum2\+tcp://127\.0\.0\.1:{sv2_port}/(\w+)  Stratum V2", 5)
        secret = bytes.fromhex((sv2_dir / "authority.key").read_text())
        assert decode_authority_key(sv2.group(1)) == xonly_public_key(secret)
        node_port = int(node_url.group(1))
        rpc = AuthServiceProxy(f"http://x:{DEFAULT_API_KEY}@127.0.0.1:{node_port}", timeout=30)

        found: list[str] = []
        async with Miner("127.0.0.1", port, BTC_REGTEST, address, "bitaxe", order="esp-miner") as miner:
            for _ in range(3):
                assert miner.job is not None
                old = miner.job.prevhash
                network = BTC_REGTEST.diff1_target / bits_to_target(miner.job.nbits)
                share = miner.find(min_difficulty=network)
                reply = await miner.submit_share(share)
                assert reply["result"] is True, reply
                deadline = time.monotonic() + 15
                while miner.job.prevhash == old:
                    assert time.monotonic() < deadline, "no new job after a block"
                    await __import__("asyncio").sleep(0.02)
                found.append(miner.job.prevhash[::-1].hex())  # the new job builds on our block
        assert rpc.getbestblockhash() == found[-1]
        script = address_to_script(address, BTC_REGTEST)
        for block_hash in found:
            raw = bytes.fromhex(rpc.getblock(block_hash, False))
            _, start = read_varint(raw, 80)
            assert script.hex() in read_tx(raw, start)[0].raw_nowitness.hex()
        for block_hash in found:
            out.wait_for(rf"block_submitted.*hash={block_hash}", 10)
        out.wait_for(rf"dashboard and JSON API: http://127\.0\.0\.1:{api_port}/", 5)
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/pool", timeout=10) as answer:
            status = json.load(answer)
        coin = status["coins"][0]
        assert coin["coin"] == "bitcoin-regtest" and coin["height"] >= 3
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        assert 'stratum_pool_blocks_found_total{coin="bitcoin-regtest",result="accepted"} 3.0' in metrics
        if database:  # the shares went through the spool into the private PostgreSQL make run started
            out.wait_for(r"^database: .*host=127\.0\.0\.1", 1)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/miner/{address}", timeout=10) as answer:
                    miner_view = json.load(answer)
                # the loader moves the spool into PostgreSQL in batches: the account can show before all 3 shares
                if miner_view["accounts"][0]["accepted_24h"] >= 3 or time.monotonic() > deadline:
                    break
            except urllib.error.HTTPError as exc:  # 404 until the loader has written the account
                assert exc.code == 404 and time.monotonic() < deadline, exc
            time.sleep(0.2)
        account = miner_view["accounts"][0]
        assert [w["name"] for w in account["workers"]] == ["bitaxe"]
        assert account["accepted_24h"] == 3
        # the TLS port, with the certificate make run printed, verified by name as ESP-Miner does
        tls_line = out.wait_for(rf"stratum\+tls://127\.0\.0\.1:{tls_port}  bitcoin regtest .*paste into the "
                                rf"miner: (\S+)\)", 5)
        pem = Path(tls_line.group(1))
        assert pem == tmp_path / "tls" / "cert.pem" and len(pem.read_text()) < 3000  # fits AxeOS's field
        for name in ("localhost", "127.0.0.1"):
            context = ssl.create_default_context(cafile=str(pem))
            async with Miner("127.0.0.1", tls_port, BTC_REGTEST, address, "tls", tls=context,
                             server_hostname=name) as tls_miner:
                assert (await tls_miner.mine_share())["result"] is True
        # the miner's odds, with or without a database (regtest: a block is all but certain within a day)
        assert miner_view["hashrate"] > 0 and miner_view["network_difficulty"] == coin["network_difficulty"]
        assert miner_view["expected_seconds_to_block"] == pytest.approx(
            miner_view["network_difficulty"] * 2**32 / miner_view["hashrate"])
        assert miner_view["chance_of_block"]["day"] == pytest.approx(1.0)
        if not database:  # the blocks it found, kept in the local file
            assert [c["block_height"] for c in account["credits"]] == sorted(
                (c["block_height"] for c in account["credits"]), reverse=True)
            assert len(account["credits"]) == 3
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(60)
    # make itself dies of the SIGINT, as with Ctrl-C; what it ran must have stopped everything first
    assert code in (0, -signal.SIGINT), "\n".join(out.lines[-30:])
    out.wait_for(r"^stopped: the pool and the regtest node\(s\) it started$", 5)
    assert not port_open(port)
    assert not port_open(node_port), "make run left the bcoin node running"
