"""Stratum V2 end to end: the project's own client (Noise initiator + ``sv2_client.Sv2Client``) over real
sockets against a real pool on bcoin regtest, on both channel types: the handshake with the pool's authority
key, jobs, real blocks whose coinbase pays the miner, stale / duplicate / low-difficulty shares, and a wrong
authority key refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sv2_client import Sv2Client
from test_integration_mining import coinbase_scripts

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import get_coin
from stratum_pool.config import parse_settings
from stratum_pool.devnet.common import free_port
from stratum_pool.pool import CoinPool
from stratum_pool.protocol.v2 import messages as m
from stratum_pool.protocol.v2.keys import create_authority_key_file, decode_authority_key, new_secret, xonly_public_key
from stratum_pool.protocol.v2.noise import NoiseError, NoiseInitiator

pytestmark = pytest.mark.integration

BTC = get_coin("bitcoin", "regtest")
SHARE_DIFFICULTY = 1e-12  # below regtest's network difficulty, so a share need not be a block


@pytest.fixture
async def pool(bcoin_node: Any, tmp_path: Path) -> AsyncIterator[CoinPool]:
    key_file = tmp_path / "authority.key"
    create_authority_key_file(key_file)
    doc = {"coins": [{
        "coin": "bitcoin", "network": "regtest", "mode": "solo", "stratum_host": "127.0.0.1", "stratum_port": 0,
        "sv2_port": free_port(), "sv2_authority_key_file": str(key_file), "poll_interval_seconds": 0.5,
        "vardiff": {"initial": SHARE_DIFFICULTY, "minimum": SHARE_DIFFICULTY, "suggestion_policy": "fixed"},
        "daemons": [{"url": bcoin_node.url, "user": bcoin_node.rpc_user, "password": bcoin_node.rpc_password}],
    }]}
    coin_pool = CoinPool(parse_settings(doc, address_check=address_to_script).coins[0])
    await coin_pool.start(ready_timeout=30)
    try:
        yield coin_pool
    finally:
        await coin_pool.stop()


class Connection:
    """One SV2 miner over a real socket: Noise around the project's sans-IO client."""

    def __init__(self, client: Sv2Client, authority: bytes | None) -> None:
        self.client = client
        self.noise = NoiseInitiator(authority, now=int(time.time()))
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(self.noise.data_to_send())
        self._task = asyncio.create_task(self._read())
        await self.send(self.client.setup_frame())
        await self.expect(m.SetupConnectionSuccess)
        await self.send(self.client.open_frame())

    async def _read(self) -> None:
        assert self.reader is not None
        while data := await self.reader.read(65536):
            for frame in self.noise.receive(data):
                await self.frames.put(frame)
        await self.frames.put(b"")  # the pool closed the connection

    async def send(self, frame: bytes) -> None:
        while not self.noise.handshake_complete:  # the pool's answer completes the handshake
            await asyncio.sleep(0.005)
        assert self.writer is not None
        self.writer.write(self.noise.send(frame))
        await self.writer.drain()

    async def expect(self, kind: type[m.Message], timeout: float = 15.0) -> Any:
        """Feed the client every frame until one of ``kind`` arrives; return it."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await asyncio.wait_for(self.frames.get(), max(0.01, deadline - time.monotonic()))
            assert frame, "the pool closed the connection"
            message = self.client.receive(frame)
            if isinstance(message, kind):
                return message

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            frame = await asyncio.wait_for(self.frames.get(), max(0.01, deadline - time.monotonic()))
            assert frame, "the pool closed the connection"
            self.client.receive(frame)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()


def network_target(client: Sv2Client) -> int:
    from stratum_pool.chain.target import bits_to_target

    return bits_to_target(client.nbits)


@pytest.mark.parametrize("extended", [True, False], ids=["extended", "standard"])
async def test_a_miner_mines_real_blocks_through_sv2_paying_its_address(
        pool: CoinPool, bcoin_node: Any, extended: bool) -> None:
    address = bcoin_node.new_address()
    authority = decode_authority_key(pool.sv2_keys.authority_key)
    assert pool.sv2_url == f"stratum2+tcp://127.0.0.1:{pool.sv2_server.port}/{pool.sv2_keys.authority_key}"  # type: ignore[union-attr]
    conn = Connection(Sv2Client(BTC, f"{address}.bitaxe", extended=extended), authority)
    await conn.open(pool.sv2_server.port)  # type: ignore[union-attr]
    try:
        await conn.until(lambda: conn.client.job is not None)
        for _ in range(3):
            client = conn.client
            assert client.job is not None
            old = client.prev_hash
            share = client.find_share(target=network_target(client))
            await conn.send(client.submit(share))
            await conn.until(lambda c=client, o=old: c.accepted >= 1 and c.prev_hash != o)  # type: ignore[misc]
            client.accepted = 0
    finally:
        await conn.close()
    deadline = time.monotonic() + 15
    while len(pool.stats.blocks) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    blocks = pool.stats.blocks
    assert [b.accepted for b in blocks] == [True, True, True], blocks
    # the same metrics as V1's, and the shares counted by protocol
    metrics = generate_latest(pool.metrics.registry).decode()
    assert 'stratum_pool_blocks_found_total{coin="bitcoin-regtest",result="accepted"} 3.0' in metrics
    assert 'stratum_pool_protocol_shares_total{coin="bitcoin-regtest",protocol="v2",result="accepted"} 3.0' in metrics
    assert 'stratum_pool_protocol_shares_total{coin="bitcoin-regtest",protocol="v1",result="accepted"} 0.0' in metrics
    script = address_to_script(address, BTC)
    for found in blocks:
        assert found.in_best_chain and found.worker == f"{address}.bitaxe"
        assert bcoin_node.rpc("getblockhash", found.height) == found.block_hash
        raw = bytes.fromhex(bcoin_node.rpc("getblock", found.block_hash, False))
        assert sha256d(raw[:80])[::-1].hex() == found.block_hash
        assert script in coinbase_scripts(raw)


@pytest.mark.parametrize("extended", [True, False], ids=["extended", "standard"])
async def test_stale_duplicate_and_low_difficulty_shares_over_sv2(
        pool: CoinPool, bcoin_node: Any, extended: bool) -> None:
    address = bcoin_node.new_address()
    conn = Connection(Sv2Client(BTC, f"{address}.rig", extended=extended),
                      decode_authority_key(pool.sv2_keys.authority_key))
    await conn.open(pool.sv2_server.port)  # type: ignore[union-attr]
    try:
        client = conn.client
        await conn.until(lambda: client.job is not None)
        net = network_target(client)
        # duplicate: a share that is not a block, sent twice
        share = client.find_share(above=net)
        await conn.send(client.submit(share))
        await conn.until(lambda: client.accepted == 1)
        await conn.send(client.submit(share))
        await conn.until(lambda: len(client.errors) == 1)
        assert client.errors[-1][1] == "duplicate-share"
        # stale: a share of a job from before a new block found elsewhere
        held = client.find_share(above=net)
        old = client.prev_hash
        bcoin_node.generate(1, bcoin_node.mining_address)
        await conn.until(lambda: client.prev_hash != old)
        await conn.send(client.submit(held))
        await conn.until(lambda: len(client.errors) == 2)
        assert client.errors[-1][1] == "stale-share"
    finally:
        await conn.close()
    assert pool.stats.shares_accepted >= 1
    assert pool.stats.shares_rejected["duplicate"] == 1
    assert pool.stats.shares_rejected["stale"] == 1


async def test_a_wrong_authority_key_is_refused_by_the_miner(pool: CoinPool) -> None:
    conn = Connection(Sv2Client(BTC, "x"), xonly_public_key(new_secret()))
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.sv2_server.port)  # type: ignore[union-attr]
    try:
        writer.write(conn.noise.data_to_send())
        answer = await asyncio.wait_for(reader.readexactly(234), 10)
        with pytest.raises(NoiseError, match="not signed by the configured authority key"):
            conn.noise.receive(answer)
    finally:
        writer.close()


async def test_garbage_instead_of_a_handshake_closes_the_connection_and_counts(pool: CoinPool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.sv2_server.port)  # type: ignore[union-attr]
    try:
        writer.write(b"\x00" * 300)  # more than the initiator's 64 bytes before any answer
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
    samples = pool.metrics.sv2_noise_failures.labels(pool.coin.key, "handshake")
    assert samples._value.get() == 1  # prometheus_client keeps a child's count there
