"""Test helpers: a small asyncio Stratum miner, plus jobs and an in-memory work source to feed sessions.

``Miner`` talks like ESP-Miner (Bitaxe) by default: subscribe, configure (version-rolling mask
ffffffff), suggest_difficulty, authorize ``ADDRESS.worker``; ``order="cgminer"`` configures first and
``order="cpuminer"`` never configures. It hashes in pure Python (``pow.check_share``), so keep share
difficulties low (regtest). Import as ``from miner import Miner`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from stratum_pool._native import JobBook
from stratum_pool.chain import pow as pow_mod
from stratum_pool.coins import Coin, get_coin
from stratum_pool.jobs.job import Job, Template

REGTEST_NBITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))
Order = Literal["esp-miner", "cgminer", "cpuminer"]


# ----- jobs and work for tests that drive sessions directly


def make_job(
    job_id: str,
    *,
    coin: Coin | None = None,
    prevhash: bytes = bytes(range(32)),
    height: int = 101,
    version: int = 0x20000000,
    curtime: int = 1_700_000_000,
    mintime: int = 0,
    target: int = REGTEST_TARGET,
    payout_key: str = "",
    branch: bytes = b"",
    coinb1: bytes = bytes.fromhex("01000000010000"),
    coinb2: bytes = bytes.fromhex("ffffffff0100f2052a01000000"),
) -> Job:
    """A job with real header fields (regtest nbits); ``target`` decides what counts as a block."""
    template = Template(
        coin=coin or get_coin("bitcoin", "regtest"),
        height=height,
        prevhash=prevhash,
        version=version,
        nbits=REGTEST_NBITS,
        target=target,
        curtime=curtime,
        mintime=mintime,
        coinbase_value=5_000_000_000,
        transactions=(),
        txids=(),
        merkle_branch=tuple(branch[i : i + 32] for i in range(0, len(branch), 32)),
        witness_commitment=None,
        mweb=None,
    )
    return Job(job_id, template, coinb1 + height.to_bytes(4, "little"), coinb2, branch, True, payout_key)


@dataclass
class FakeWork:
    """An in-memory WorkSource: jobs by id (in the share core's book), one current job, the book's tip."""

    current: Job | None = None
    book: JobBook = field(default_factory=JobBook)

    def add(self, job: Job, make_current: bool = True) -> Job:
        self.book.add(job)
        if make_current:
            self.current = job
            self.book.tip = job.template.prevhash
        return job

    def current_job(self, payout_key: str) -> Job | None:
        return self.current

    def get_job(self, job_id: str) -> Job | None:
        return self.book.get(job_id)

    def is_stale(self, job: Job) -> bool:
        return self.book.is_stale(job)


# ----- hashing shares the way a miner does, from mining.notify fields


def unswap_prevhash(stratum_hex: str) -> bytes:
    raw = bytes.fromhex(stratum_hex)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


@dataclass
class NotifiedJob:
    """A job as the miner received it, with the difficulty in force when it arrived (Bitaxe behaviour)."""

    job_id: str
    prevhash: bytes
    coinb1: bytes
    coinb2: bytes
    branch: bytes
    version: int
    nbits: int
    ntime: int
    clean: bool
    difficulty: float

    @classmethod
    def from_params(cls, params: list[Any], difficulty: float) -> NotifiedJob:
        job_id, prev, cb1, cb2, branch, version, nbits, ntime, clean = params[:9]
        return cls(job_id, unswap_prevhash(prev), bytes.fromhex(cb1), bytes.fromhex(cb2),
                   b"".join(bytes.fromhex(h) for h in branch), int(version, 16), int(nbits, 16),
                   int(ntime, 16), bool(clean), difficulty)  # fmt: skip


@dataclass(frozen=True)
class FoundShare:
    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    achieved: float
    hashes: int = 0  # the headers hashed to find it (the miner's own count, for hashrate checks)


def find_share(
    coin: Coin,
    job: NotifiedJob,
    extranonce1: bytes,
    extranonce2: bytes,
    *,
    min_difficulty: float,
    max_difficulty: float | None = None,
    version_bits: int = 0,
    version_mask: int = 0,
    send_version: bool = False,
    start_nonce: int = 0,
) -> FoundShare:
    """Search nonces until the share's difficulty is in [min_difficulty, max_difficulty)."""
    version = (job.version & ~version_mask) | (version_bits & version_mask)
    limit = coin.diff1_target / min_difficulty
    floor = coin.diff1_target / max_difficulty if max_difficulty else -1.0
    for nonce in range(start_nonce, 2**32):
        _, pow_hash = pow_mod.check_share(
            coin.algorithm_id, job.coinb1, extranonce1, extranonce2, job.coinb2, job.branch,
            version, job.prevhash, job.ntime, job.nbits, nonce,
        )  # fmt: skip
        value = int.from_bytes(pow_hash, "little")
        if floor < value <= limit:
            achieved = coin.diff1_target / value if value else float("inf")
            bits = f"{version_bits & version_mask:08x}" if send_version else None
            ntime, nonce_hex = f"{job.ntime:08x}", f"{nonce:08x}"
            return FoundShare(job.job_id, extranonce2.hex(), ntime, nonce_hex, bits, achieved,
                              nonce - start_nonce + 1)
    raise RuntimeError("nonce space exhausted")


# ----- the network miner


class Miner:
    """An asyncio Stratum client for integration tests."""

    def __init__(
        self,
        host: str,
        port: int,
        coin: Coin,
        address: str,
        worker: str = "bitaxe",
        *,
        order: Order = "esp-miner",
        suggest_difficulty: float | None = None,
        password: str = "x",
        version_mask: int = 0xFFFFFFFF,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        source: str | None = None,
    ) -> None:
        """``tls``: connect over stratum+tls with this client context (verifying the certificate against
        ``server_hostname``, by default ``host``), as ESP-Miner does. ``source``: the local address to connect
        from (127.0.0.x: several "clients" on one machine)."""
        self.host, self.port, self.coin = host, port, coin
        self.tls, self.server_hostname = tls, server_hostname
        self.local_addr = (source, 0) if source is not None else None
        # the session id to resume at subscribe (cgminer's second parameter), and the one the pool gave
        self.resume_id: str | None = None
        self.session_id = ""
        self.user = f"{address}.{worker}" if worker else address
        self.order: Order = order
        self.suggest = suggest_difficulty
        self.password = password
        self.requested_mask = version_mask
        self.extranonce1 = b""
        self.extranonce2_size = 0
        self.version_mask = 0
        self.difficulty = 1.0
        self.jobs: dict[str, NotifiedJob] = {}
        self.job: NotifiedJob | None = None
        self.notifications: list[dict[str, Any]] = []
        self.hashes = 0  # headers hashed by find() so far: the truth a pool's hashrate is held to
        self._ids = itertools.count(1)
        self._en2 = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._new_job = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> Miner:
        if self.tls is not None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls, server_hostname=self.server_hostname or self.host,
                local_addr=self.local_addr)
        else:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, local_addr=self.local_addr)
        self._task = asyncio.create_task(self._read_loop())
        return self

    async def start(self) -> Miner:
        """Connect and handshake in this miner's order; waits for the first job."""
        await self.connect()
        if self.order == "cgminer":
            await self.configure()
        await self.subscribe()
        if self.order == "esp-miner":
            await self.configure()
            if self.suggest is not None:
                await self.request("mining.suggest_difficulty", [self.suggest])
        reply = await self.authorize()
        if reply.get("result") is not True:
            raise RuntimeError(f"authorize refused: {reply.get('error')}")
        if self.order != "esp-miner" and self.suggest is not None:
            await self.request("mining.suggest_difficulty", [self.suggest])
        await self.wait_job()
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            # the server may already have reset the connection (e.g. it was stopped): nothing to close then
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await self._task

    async def __aenter__(self) -> Miner:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- requests

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        await self._writer.drain()

    async def request(self, method: str, params: list[Any], timeout: float = 10.0) -> dict[str, Any]:
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        await self.send_raw(orjson.dumps({"id": rid, "method": method, "params": params}) + b"\n")
        return await asyncio.wait_for(future, timeout)

    async def subscribe(self) -> dict[str, Any]:
        params = ["test-miner/1.0"] if self.resume_id is None else ["test-miner/1.0", self.resume_id]
        reply = await self.request("mining.subscribe", params)
        subscriptions, en1, size = reply["result"]
        self.extranonce1, self.extranonce2_size = bytes.fromhex(en1), size
        self.session_id = str(subscriptions[0][1])
        return reply

    async def configure(self) -> dict[str, Any]:
        params = [["version-rolling"], {"version-rolling.mask": f"{self.requested_mask:08x}"}]
        reply = await self.request("mining.configure", params)
        result = reply.get("result") or {}
        if result.get("version-rolling"):
            self.version_mask = int(result["version-rolling.mask"], 16)
        return reply

    async def authorize(self) -> dict[str, Any]:
        return await self.request("mining.authorize", [self.user, self.password])

    async def submit(
        self, job_id: str, extranonce2: str, ntime: str, nonce: str, version_bits: str | None = None
    ) -> dict[str, Any]:
        params = [self.user, job_id, extranonce2, ntime, nonce]
        if version_bits is not None:
            params.append(version_bits)
        return await self.request("mining.submit", params)

    async def wait_job(self, timeout: float = 10.0) -> NotifiedJob:
        """The newest job, waiting for one if none arrived since the last call."""
        if self.job is None or not self._new_job.is_set():
            await asyncio.wait_for(self._new_job.wait(), timeout)
        self._new_job.clear()
        assert self.job is not None
        return self.job

    def next_extranonce2(self) -> bytes:
        return next(self._en2).to_bytes(self.extranonce2_size, "big")

    def find(
        self,
        min_difficulty: float | None = None,
        max_difficulty: float | None = None,
        roll_version: bool = True,
    ) -> FoundShare:
        """A share of the newest job at the job's difficulty (or ``min_difficulty``), not submitted."""
        job = self.job
        assert job is not None, "no job yet"
        rolling = roll_version and self.version_mask != 0
        bits = (next(self._en2) << 13) & self.version_mask if rolling else 0  # vary some allowed bits
        share = find_share(
            self.coin, job, self.extranonce1, self.next_extranonce2(),
            min_difficulty=min_difficulty if min_difficulty is not None else job.difficulty,
            max_difficulty=max_difficulty, version_bits=bits, version_mask=self.version_mask,
            send_version=rolling,
        )  # fmt: skip
        self.hashes += share.hashes
        return share

    async def mine_share(
        self, min_difficulty: float | None = None, roll_version: bool = True
    ) -> dict[str, Any]:
        """Find a share meeting the current job's difficulty and submit it; returns the response."""
        share = self.find(min_difficulty, roll_version=roll_version)
        return await self.submit_share(share)

    async def submit_share(self, share: FoundShare) -> dict[str, Any]:
        s = share
        return await self.submit(s.job_id, s.extranonce2, s.ntime, s.nonce, s.version_bits)

    # ----- reading

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            message = orjson.loads(line)
            method = message.get("method")
            if method is None:
                future = self._pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            self.notifications.append(message)
            params = message.get("params") or []
            if method == "mining.set_difficulty":
                self.difficulty = float(params[0])
            elif method == "mining.set_extranonce":
                self.extranonce1, self.extranonce2_size = bytes.fromhex(params[0]), int(params[1])
            elif method == "mining.notify":
                self.job = NotifiedJob.from_params(params, self.difficulty)
                self.jobs[self.job.job_id] = self.job
                self._new_job.set()
            elif method == "mining.set_version_mask":
                self.version_mask = int(params[0], 16)
            elif method == "mining.set_extranonce":
                self.extranonce1, self.extranonce2_size = bytes.fromhex(params[0]), int(params[1])
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
