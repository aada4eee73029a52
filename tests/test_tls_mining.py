"""stratum+tls end to end: `stratum-pool serve` as its own process on a real bcoin regtest node, a Bitaxe-like
miner over TLS (verifying the certificate by name, as ESP-Miner does) mines real blocks; a renewed
certificate is picked up on SIGHUP by new connections while the miner already connected keeps mining."""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from bcoin_fixtures import regtest_coin_toml
from miner import Miner
from test_serve_signals import Serve

from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import get_coin
from stratum_pool.devnet.certs import make_self_signed
from stratum_pool.devnet.common import free_port

pytestmark = pytest.mark.integration
BTC = get_coin("bitcoin", "regtest")


TLS_COIN = """tls_port = {tls_port}
tls_cert_file = "{cert}"
tls_key_file = "{key}"
poll_interval_seconds = 0.5

[coins.vardiff]
initial = 1e-12
minimum = 1e-12
suggestion_policy = "fixed"
"""


def config_text(node: Any, port: int, tls_port: int, api_port: int, cert: Path, key: Path) -> str:
    return f"""
[pool]
log_format = "json"

[api]
port = {api_port}

{regtest_coin_toml(node, port, TLS_COIN.format(tls_port=tls_port, cert=cert, key=key))}"""


def tls_to(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))  # CERT_REQUIRED, names checked


def peer_certificate(miner: Miner) -> bytes:
    assert miner._writer is not None
    tls = miner._writer.get_extra_info("ssl_object")
    assert isinstance(tls, ssl.SSLObject)
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


async def mine_block(miner: Miner) -> str:
    """Submit a share meeting the network target of the current job; returns the job's prevhash."""
    assert miner.job is not None
    old = miner.job.prevhash
    network = BTC.diff1_target / bits_to_target(miner.job.nbits)
    reply = await miner.submit_share(miner.find(min_difficulty=network))
    assert reply["result"] is True, reply
    deadline = time.monotonic() + 15
    while miner.job.prevhash == old:  # the next block's work arrives
        assert time.monotonic() < deadline, "no new job after a block"
        await asyncio.sleep(0.02)
    return old.hex()


def metric(api_port: int, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5).read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1:line.index("}")].split(",")))
            if got == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_bitaxe_over_tls_mines_blocks_and_a_renewal_applies_on_sighup(bcoin_node: Any, tmp_path: Path) -> None:
    port, tls_port, api_port = free_port(), free_port(), free_port()
    cert, key = tmp_path / "pool.pem", tmp_path / "pool.key"
    make_self_signed(cert, key, ["localhost"], ["127.0.0.1"])
    first_pem = tmp_path / "first.pem"
    first_pem.write_bytes(cert.read_bytes())  # what the owner pasted into AxeOS
    config = tmp_path / "pool.toml"
    config.write_text(config_text(bcoin_node, port, tls_port, api_port, cert, key))
    serve = Serve(config)
    try:
        await serve.wait_for(rf"stratum\+tls://127\.0\.0\.1:{tls_port} .*certificate: {cert}")
        address = bcoin_node.new_address()
        start_height = bcoin_node.rpc("getblockcount")
        old = await Miner("127.0.0.1", tls_port, BTC, address, "bitaxe", order="esp-miner", suggest_difficulty=1000,
                          tls=tls_to(first_pem), server_hostname="127.0.0.1").start()
        try:
            first_der = peer_certificate(old)
            for _ in range(3):
                await mine_block(old)
            assert bcoin_node.rpc("getblockcount") == start_height + 3  # real blocks on the node, found over TLS
            # renewal in place (a new key too), then SIGHUP
            make_self_signed(cert, key, ["localhost"], ["127.0.0.1"])
            serve.proc.send_signal(signal.SIGHUP)
            await serve.wait_for(r'"tls_certificate_loaded"')
            async with Miner("127.0.0.1", tls_port, BTC, address, "new", tls=tls_to(cert),
                             server_hostname="localhost") as new:
                assert peer_certificate(new) != first_der
                await mine_block(new)
            # the miner connected before the renewal keeps its connection and mines on
            await mine_block(old)
            assert bcoin_node.rpc("getblockcount") == start_height + 5
            # a client that still trusts only the old certificate is refused by its own check, as ESP-Miner's
            with pytest.raises(ssl.SSLCertVerificationError):
                await Miner("127.0.0.1", tls_port, BTC, address, "stale", tls=tls_to(first_pem)).connect()
        finally:
            await old.close()
        assert metric(api_port, "stratum_pool_tls_handshakes_total", coin="bitcoin-regtest", result="ok") == 2
    finally:
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(60) == 0
