"""The project's own Stratum V2 mining client, sans-IO over plaintext frames (Noise goes around it elsewhere).

It behaves like ESP-Miner (Bitaxe): SetupConnection for the mining protocol (flags 0x01 for a standard channel,
0 for extended), one channel opened with request id 1, future jobs held until a SetNewPrevHash names one, a
SetTarget applied from the next job on, version bits rolled under 0x1fffe000 without negotiating. It builds
headers from the messages alone, as the spec defines them, and hashes them for real: the merkle root of an
extended job is folded here with hashlib, not with the pool's code.

Use: ``frames = client.hello()`` (SetupConnection and the channel opening), feed every frame the pool sends
to :meth:`Sv2Client.receive`, then ``share = client.find_share()`` and ``client.submit(share)`` for the frame.
Import as ``from sv2_client import Sv2Client`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

from stratum_pool.chain.pow import pow_hash
from stratum_pool.coins import Coin
from stratum_pool.protocol.v2 import messages as m
from stratum_pool.protocol.v2.codec import U256_MAX

ESP_MINER_VERSION_MASK = 0x1FFFE000


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@dataclass
class ClientJob:
    """A job as the client holds it: header fields, plus the coinbase halves and path of an extended job."""

    job_id: int
    version: int
    target: int  # the target in force when the job arrived (a later SetTarget applies from the next job)
    merkle_root: bytes = b""  # standard jobs
    merkle_path: tuple[bytes, ...] = ()  # extended jobs
    coinbase_prefix: bytes = b""
    coinbase_suffix: bytes = b""
    prev_hash: bytes = b""
    ntime: int = 0
    nbits: int = 0


@dataclass(frozen=True)
class Share:
    job_id: int
    nonce: int
    ntime: int
    version: int
    extranonce: bytes  # empty on a standard channel
    hash_value: int  # the header's PoW hash as a little-endian integer

    def achieved(self, coin: Coin) -> float:
        return coin.diff1_target / self.hash_value if self.hash_value else float("inf")


@dataclass
class Sv2Client:
    coin: Coin
    user: str
    extended: bool = True
    nominal_hash_rate: float = 0.0
    max_target: int = U256_MAX
    min_extranonce_size: int = 2
    version_mask: int = ESP_MINER_VERSION_MASK
    # what the pool told it
    setup_ok: bool = False
    channel_id: int | None = None
    target: int = 0
    extranonce_prefix: bytes = b""
    extranonce_size: int = 0
    prev_hash: bytes | None = None
    nbits: int = 0
    min_ntime: int = 0
    pending: dict[int, ClientJob] = field(default_factory=dict)  # future jobs
    job: ClientJob | None = None  # the job being mined
    jobs: dict[int, ClientJob] = field(default_factory=dict)  # every job activated, by id
    received: list[m.Message] = field(default_factory=list)
    accepted: int = 0  # submits acknowledged by SubmitShares.Success (new_submits_accepted_count summed)
    accepted_sum: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (sequence_number, error_code)
    _next_nonce: dict[int, int] = field(default_factory=dict)  # per job: where the next search starts
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _extranonce: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ----- what the client sends

    def setup_frame(self, flags: int | None = None) -> bytes:
        if flags is None:
            flags = 0 if self.extended else m.REQUIRES_STANDARD_JOBS
        return m.SetupConnection(m.PROTOCOL_MINING, 2, 2, flags, "127.0.0.1", 3334, "stratum-pool-tests",
                                 "sv2-client", "0.1", "").encode()

    def open_frame(self, request_id: int = 1) -> bytes:
        if self.extended:
            return m.OpenExtendedMiningChannel(request_id, self.user, self.nominal_hash_rate, self.max_target,
                                               self.min_extranonce_size).encode()
        return m.OpenStandardMiningChannel(request_id, self.user, self.nominal_hash_rate, self.max_target).encode()

    def submit(self, share: Share, sequence_number: int | None = None) -> bytes:
        assert self.channel_id is not None, "no channel"
        seq = next(self._sequence) if sequence_number is None else sequence_number
        if self.extended:
            return m.SubmitSharesExtended(self.channel_id, seq, share.job_id, share.nonce, share.ntime,
                                          share.version, share.extranonce).encode()
        return m.SubmitSharesStandard(self.channel_id, seq, share.job_id, share.nonce, share.ntime,
                                      share.version).encode()

    # ----- what the pool sends

    def receive(self, frame: bytes) -> m.Message:
        message = m.decode_frame(frame)
        self.received.append(message)
        match message:
            case m.SetupConnectionSuccess():
                assert message.used_version == 2
                self.setup_ok = True
            case m.OpenExtendedMiningChannelSuccess():
                self.channel_id, self.target = message.channel_id, message.target
                self.extranonce_prefix, self.extranonce_size = message.extranonce_prefix, message.extranonce_size
            case m.OpenStandardMiningChannelSuccess():
                self.channel_id, self.target = message.channel_id, message.target
                self.extranonce_prefix, self.extranonce_size = message.extranonce_prefix, 0
            case m.NewMiningJob():
                self._job(message.job_id, message.min_ntime,
                          ClientJob(message.job_id, message.version, self.target, merkle_root=message.merkle_root))
            case m.NewExtendedMiningJob():
                job = ClientJob(message.job_id, message.version, self.target, merkle_path=message.merkle_path,
                                coinbase_prefix=message.coinbase_tx_prefix,
                                coinbase_suffix=message.coinbase_tx_suffix)
                self._job(message.job_id, message.min_ntime, job)
            case m.SetNewPrevHash():
                self.prev_hash, self.min_ntime, self.nbits = message.prev_hash, message.min_ntime, message.nbits
                assert message.job_id in self.pending, f"SetNewPrevHash names job {message.job_id}, never future"
                job = self.pending.pop(message.job_id)
                self.pending.clear()  # the other queued jobs are invalid now
                self._activate(job, message.min_ntime)
            case m.SetTarget():
                self.target = message.maximum_target
            case m.SubmitSharesSuccess():
                self.accepted += message.new_submits_accepted_count
                self.accepted_sum += message.new_shares_sum
            case m.SubmitSharesError():
                self.errors.append((message.sequence_number, message.error_code))
        return message

    def _job(self, job_id: int, min_ntime: int | None, job: ClientJob) -> None:
        if min_ntime is None:
            self.pending[job_id] = job
        else:
            assert self.prev_hash is not None, "a non-future job before any SetNewPrevHash"
            self._activate(job, min_ntime)

    def _activate(self, job: ClientJob, ntime: int) -> None:
        assert self.prev_hash is not None
        job.prev_hash, job.ntime, job.nbits = self.prev_hash, ntime, self.nbits
        self.job = job
        self.jobs[job.job_id] = job

    # ----- hashing

    def next_extranonce(self) -> bytes:
        """The miner's part of the extranonce: a counter, big-endian, right-aligned (as ESP-Miner rolls it)."""
        return next(self._extranonce).to_bytes(self.extranonce_size, "big")

    def merkle_root(self, job: ClientJob, extranonce: bytes) -> bytes:
        if not self.extended:
            return job.merkle_root
        root = sha256d(job.coinbase_prefix + self.extranonce_prefix + extranonce + job.coinbase_suffix)
        for leaf in job.merkle_path:  # deepest first
            root = sha256d(root + leaf)
        return root

    def find_share(
        self,
        job: ClientJob | None = None,
        *,
        target: int | None = None,
        above: int | None = None,
        version_bits: int = 0x2000,
        extranonce: bytes | None = None,
        start_nonce: int | None = None,
    ) -> Share:
        """The first nonce whose hash is at most ``target`` (the job's own by default) and, with ``above``,
        over ``above`` (a share that misses a harder target). Searches go on where the last one on the job
        stopped, so a standard channel's fixed extranonce never yields the same share twice."""
        job = job or self.job
        assert job is not None, "no job yet"
        if self.extended and extranonce is None:
            extranonce = self.next_extranonce()
        extranonce = extranonce or b""
        limit = job.target if target is None else target
        version = (job.version & ~self.version_mask) | ((version_bits << 13) & self.version_mask)
        prefix = (version.to_bytes(4, "little") + job.prev_hash + self.merkle_root(job, extranonce)
                  + job.ntime.to_bytes(4, "little") + job.nbits.to_bytes(4, "little"))
        start = self._next_nonce.get(job.job_id, 0) if start_nonce is None else start_nonce
        for nonce in range(start, 2**32):
            value = int.from_bytes(pow_hash(self.coin.algorithm_id, prefix + nonce.to_bytes(4, "little")), "little")
            if value <= limit and (above is None or value > above):
                self._next_nonce[job.job_id] = nonce + 1
                return Share(job.job_id, nonce, job.ntime, version, extranonce, value)
        raise RuntimeError("nonce space exhausted")
