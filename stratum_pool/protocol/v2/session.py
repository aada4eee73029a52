"""One Stratum V2 connection's mining protocol as a plain object: plaintext frames in, frames and actions out.

No sockets, no clock, no encryption: the adapter decrypts each Noise transport message into one plaintext
frame, hands it to :meth:`Sv2Session.feed_frame` with the time, encrypts every ``Send`` it gets back, and
honours ``Close``. New work goes out with :meth:`Sv2Session.push_job`, and :meth:`Sv2Session.tick` (every few
seconds) lowers the difficulty of channels whose shares stopped, flushes batched acknowledgements and closes a
connection that holds no channel a minute after it was made. Every share is judged by a :class:`ShareCore`,
one per channel, as V1 sessions' shares are; its records, block candidates and ``Authorized`` go to the pool
unchanged.

What the pool serves (and what ESP-Miner, the Bitaxe firmware, needs):

- SetupConnection for the mining protocol, version 2, flags REQUIRES_STANDARD_JOBS and REQUIRES_VERSION_ROLLING
  (work selection is refused with ``unsupported-feature-flags``); the Success flags are 0 (version rolling
  allowed, both channel types).
- Standard channels: the whole extranonce is fixed by the pool (an extranonce1 of the allocator, then
  ``extranonce2_size`` zero bytes), so each NewMiningJob carries the channel's own merkle root.
- Extended channels: the extranonce prefix is the extranonce1, the miner rolls ``extranonce2_size`` bytes after
  it; NewExtendedMiningJob carries the coinbase halves (no witness data, as V1's) and the merkle path.
- A job on a new previous block goes out as a future job, followed at once by the SetNewPrevHash naming it
  (one future job at a time: ESP-Miner keeps the last pending one); a job on the same block goes out with
  ``min_ntime`` set and is mined at once.
- Vardiff retargets go out as SetTarget at once; the miner applies a target from its next job, and a share is
  judged by ``min(difficulty its job was sent with, current difficulty)`` (the core's rule, as in V1), so work
  done under an easier target is never refused for a raise. ``max_target`` from the miner floors the
  difficulty; ``nominal_hash_rate`` only picks the starting difficulty (ESP-Miner always says 1e12).
- Job ids: each channel counts its own U32 job ids and maps them to the pool's job ids (strings), the last
  :data:`MAX_CHANNEL_JOBS` of them; the records name the pool's id, as V1's do.
- The version rolling mask is the coin's (ESP-Miner rolls under 0x1fffe000 without negotiating); the submitted
  full version must keep the job's bits outside it.

Group channels, custom jobs (job declaration) and extension negotiation are not served: no mining device
needs them. Messages of unknown extensions are ignored (the spec says so); unknown mining message types are
ignored and counted as malformed; malformed frames, messages out of order and server-only messages close the
connection.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from stratum_pool.chain.merkle import root_from_branch
from stratum_pool.chain.pow import sha256d
from stratum_pool.jobs.job import Job
from stratum_pool.protocol.actions import Action, Authorized, Close, Send, ShareAccepted
from stratum_pool.protocol.session import SessionConfig
from stratum_pool.protocol.v2 import messages as m
from stratum_pool.protocol.v2.codec import U32_MAX, U64_MAX, U256_MAX, CodecError
from stratum_pool.protocol.v2.frame import CHANNEL_MSG_BIT, HEADER_SIZE, encode_header
from stratum_pool.protocol.work import WorkSource
from stratum_pool.shares.core import ShareCore, ShareRules, Vardiff
from stratum_pool.shares.names import MAX_USER_LENGTH, WORKER_RE, split_user

__all__ = ["MAX_CHANNELS", "MAX_CHANNEL_JOBS", "MAX_FRAME_SIZE", "SETUP_TIMEOUT_SECONDS", "SUBMIT_ERRORS", "Sv2Session"]

# The largest frame a mining client sends: SetupConnection with every string at 255 bytes is 1,297 bytes; a
# larger frame is refused before it is decoded (the adapter may stop reading at this many bytes).
MAX_FRAME_SIZE: Final = 2048
# Channels one connection may hold open (a device opens one; a proxy would need groups, not served).
MAX_CHANNELS: Final = 16
# Jobs a channel remembers (SV2 job id -> the pool's): the share core keeps as many jobs' difficulties, and a
# job older than this is long stale.
MAX_CHANNEL_JOBS: Final = 256
# A connection with no open channel this long after it was made is closed (the spec: "SHOULD close the
# connection for inactivity").
SETUP_TIMEOUT_SECONDS: Final = 60.0

# SubmitShares.Error codes by the core's reject reason (the spec's words where it has them).
SUBMIT_ERRORS: Final = {
    "stale": "stale-share",
    "duplicate": "duplicate-share",
    "low-difficulty": "difficulty-too-low",
    "unknown-job": "invalid-job-id",
    "bad-extranonce2": "invalid-extranonce-size",
    "bad-ntime": "invalid-timestamp",
    "bad-version": "invalid-version",
    "rate-limited": "rate-limited",
}
# Flags a SetupConnection may carry for the mining protocol; any other is answered unsupported-feature-flags.
_SUPPORTED_FLAGS: Final = m.REQUIRES_STANDARD_JOBS | m.REQUIRES_VERSION_ROLLING
# The share path's frames, read and written without the general codec (the same bytes: tests hold them equal):
# SubmitSharesStandard/Extended start with six U32s, SubmitShares.Success is three U32s and a U64.
_SUBMIT_FIELDS: Final = struct.Struct("<6I")
_SUBMIT_STANDARD_LENGTH: Final = (_SUBMIT_FIELDS.size).to_bytes(3, "little")
_SUCCESS_HEADER: Final = encode_header(CHANNEL_MSG_BIT, m.SubmitSharesSuccess.MSG_TYPE, 20)
_SUCCESS_FIELDS: Final = struct.Struct("<IIIQ")
# Messages only a server sends: a client sending one is broken.
_SERVER_ONLY: Final = (
    m.SetupConnectionSuccess, m.SetupConnectionError, m.Reconnect, m.OpenStandardMiningChannelSuccess,
    m.OpenExtendedMiningChannelSuccess, m.OpenMiningChannelError, m.UpdateChannelError, m.SetExtranoncePrefix,
    m.SubmitSharesSuccess, m.SubmitSharesError, m.NewMiningJob, m.NewExtendedMiningJob, m.SetNewPrevHash,
    m.SetTarget,
)


def _send(message: m.Message) -> Send:
    return Send(message.encode())


@dataclass(slots=True)
class _Channel:
    channel_id: int
    extended: bool
    user: str  # ADDRESS[.WORKER]
    core: ShareCore
    # standard channels: the pool-chosen rest of the extranonce after core.extranonce1 (b"" when extended)
    fixed: bytes
    floor: float = 0.0  # the least difficulty the miner's max_target allows
    max_target: int = U256_MAX  # the miner's: no target sent is above it
    target_difficulty: float = 0.0  # the difficulty of the target last sent
    prevhash: bytes = b""  # the previous block hash last sent (SetNewPrevHash)
    job_id: str = ""  # the job last sent
    # SV2 job ids are U32s counted per channel; the pool's are strings of any length (JobManager's grow past
    # 8 hex digits after 16.7 million jobs), so each channel maps its own to the pool's, the newest last
    job_ids: dict[int, str] = field(default_factory=dict)
    next_job: int = 1
    # submits accepted and not yet acknowledged (SubmitShares.Success batches them)
    ack_sequence: int = 0
    ack_count: int = 0
    ack_sum: float = 0.0

    @property
    def extranonce_prefix(self) -> bytes:
        return self.core.extranonce1 + self.fixed


class Sv2Session:
    """One SV2 connection's mining protocol state; share state is per channel, in each channel's core."""

    def __init__(
        self,
        config: SessionConfig,
        work: WorkSource,
        check_address: Callable[[str], bytes],
        session_id: str,
        allocate_extranonce1: Callable[[], bytes],
        release_extranonce1: Callable[[bytes], None],
        now: float,
        rules: ShareRules | None = None,
        admit: Callable[[str, str, str], str | None] | None = None,
        ack_batch: int = 1,
        max_channels: int = MAX_CHANNELS,
    ) -> None:
        """``allocate_extranonce1`` gives each channel a pool-wide unique extranonce1 (the V1 allocator's), and
        ``release_extranonce1`` takes it back when the channel closes (:meth:`release` at connection end).
        ``ack_batch``: accepted submits acknowledged by one SubmitShares.Success (the rest at the next tick).
        ``admit`` as in V1's ``Session``."""
        if ack_batch < 1:
            raise ValueError(f"ack_batch must be at least 1, got {ack_batch}")
        self._config = config
        self.work = work
        self.check_address = check_address
        self.session_id = session_id
        self.admit = admit
        self.rules = rules if rules is not None else config.make_rules()
        self._allocate = allocate_extranonce1
        self._release = release_extranonce1
        self.ack_batch = ack_batch
        self.max_channels = max_channels
        self.opened_at = now
        self.setup: m.SetupConnection | None = None
        self.channels: dict[int, _Channel] = {}
        self._next_channel_id = 1
        self._malformed = 0
        self.closed = False

    # ----- state the adapter and the pool read

    @property
    def config(self) -> SessionConfig:
        return self._config

    @config.setter
    def config(self, config: SessionConfig) -> None:
        """A reloaded config: its submit rate applies to every channel from the next share on, the rest to
        channels opened from now on."""
        self._config = config
        for channel in self.channels.values():
            channel.core.set_rate(config.submits_per_second, float(config.submit_burst))

    @property
    def malformed(self) -> int:
        """Malformed frames and broken submits so far, all channels together (the adapter bans on it)."""
        return self._malformed + sum(c.core.malformed for c in self.channels.values())

    @property
    def user_agent(self) -> str:
        """What the device says it is (SetupConnection's vendor, hardware and firmware), as V1's
        ``mining.subscribe`` agent: at most 128 characters, "" before setup."""
        setup = self.setup
        if setup is None:
            return ""
        return " ".join(p for p in (setup.vendor, setup.hardware_version, setup.firmware) if p)[:128]

    @property
    def working(self) -> bool:
        return bool(self.channels)

    @property
    def workers(self) -> dict[str, str]:
        """User identity -> address of every open channel."""
        return {c.user: c.core.address for c in self.channels.values()}

    # ----- input

    def feed_frame(self, frame: bytes, now: float) -> list[Action]:
        """Handle one whole plaintext frame (header and payload)."""
        if self.closed:
            return []
        size = len(frame)
        if size > MAX_FRAME_SIZE:
            self._malformed += 1
            return self._close(f"frame of {size} bytes, over {MAX_FRAME_SIZE}")
        # the share path: a well-formed submit of extension 0 is unpacked here; anything else about it (a bad
        # length, a short extranonce field) takes the general decoder below, which says what is wrong
        if size >= 30 and frame[0] == 0 and not frame[1] & 0x7F and self.setup is not None:
            kind = frame[2]
            if kind == 0x1A and size == 30 and frame[3:6] == _SUBMIT_STANDARD_LENGTH:
                channel_id, sequence, job_id, nonce, ntime, version = _SUBMIT_FIELDS.unpack_from(frame, HEADER_SIZE)
                return self._submit(channel_id, sequence, job_id, nonce, ntime, version, None, now)
            if (kind == 0x1B and size >= 31 and frame[30] == size - 31 <= 32
                    and int.from_bytes(frame[3:6], "little") == size - HEADER_SIZE):
                channel_id, sequence, job_id, nonce, ntime, version = _SUBMIT_FIELDS.unpack_from(frame, HEADER_SIZE)
                return self._submit(channel_id, sequence, job_id, nonce, ntime, version, frame[31:], now)
        try:
            message = m.decode_frame(frame)
        except m.UnknownMessage as exc:
            if exc.extension != 0:
                return []  # the spec: an unknown extension's message to this endpoint is discarded
            self._malformed += 1
            return []
        except CodecError as exc:
            self._malformed += 1
            name = _name(frame)
            return self._close(f"malformed {name}: {exc}")
        if self.setup is None:
            if isinstance(message, m.SetupConnection):
                return self._setup_connection(message)
            self._malformed += 1
            return self._close(f"{type(message).__name__} before SetupConnection")
        match message:
            case m.SubmitSharesStandard():
                return self._submit(message.channel_id, message.sequence_number, message.job_id, message.nonce,
                                    message.ntime, message.version, None, now)
            case m.SubmitSharesExtended():
                return self._submit(message.channel_id, message.sequence_number, message.job_id, message.nonce,
                                    message.ntime, message.version, message.extranonce, now)
            case m.OpenStandardMiningChannel() | m.OpenExtendedMiningChannel():
                return self._open_channel(message, now)
            case m.UpdateChannel():
                return self._update_channel(message, now)
            case m.CloseChannel():
                return self._close_channel(message.channel_id)
            case m.SetupConnection():
                self._malformed += 1
                return self._close("SetupConnection sent twice")
            case _:
                self._malformed += 1
                return self._close(f"{type(message).__name__} is a server's message")

    def push_job(self, now: float) -> list[Action]:
        """New work for every open channel: its payout key's current job, if not sent already (a job on a new
        previous block as a future job and its SetNewPrevHash, otherwise one mined at once)."""
        actions: list[Action] = []
        if self.closed:
            return actions
        for channel in self.channels.values():
            actions += self._send_job(channel)
        return actions

    def tick(self, now: float) -> list[Action]:
        """Time-based work: lower the difficulty of starving channels, flush acknowledgements, drop a
        connection that holds no channel :data:`SETUP_TIMEOUT_SECONDS` after it was made."""
        if self.closed:
            return []
        if not self.channels and now - self.opened_at > SETUP_TIMEOUT_SECONDS:
            return self._close(f"no channel opened in {SETUP_TIMEOUT_SECONDS:g} s")
        actions: list[Action] = []
        for channel in self.channels.values():
            self._flush_ack(channel, actions)
            if channel.core.vardiff.tick(now) is not None:
                self._retarget(channel, actions)
        return actions

    def reconnect(self, host: str = "", port: int = 0) -> list[Action]:
        """Ask the miner to reconnect (to this host and port when empty and 0)."""
        return [_send(m.Reconnect(host, port))]

    def release(self) -> None:
        """The connection is gone: give back every channel's extranonce1."""
        for channel in self.channels.values():
            self._release(channel.core.extranonce1)
        self.channels.clear()
        self.closed = True

    # ----- connection and channels

    def _close(self, reason: str) -> list[Action]:
        self.closed = True
        return [Close(reason)]

    def _setup_connection(self, message: m.SetupConnection) -> list[Action]:
        if message.protocol != m.PROTOCOL_MINING:
            return [_send(m.SetupConnectionError(0, "unsupported-protocol")),
                    *self._close(f"SetupConnection for protocol {message.protocol}, only mining (0) is served")]
        if not message.min_version <= m.SV2_VERSION <= message.max_version:
            return [_send(m.SetupConnectionError(0, "protocol-version-mismatch")),
                    *self._close(f"SetupConnection versions {message.min_version}..{message.max_version},"
                                 f" only {m.SV2_VERSION} is served")]
        unsupported = message.flags & ~_SUPPORTED_FLAGS
        if unsupported:
            return [_send(m.SetupConnectionError(unsupported, "unsupported-feature-flags")),
                    *self._close(f"SetupConnection flags 0x{unsupported:08x} are not served")]
        self.setup = message
        return [_send(m.SetupConnectionSuccess(m.SV2_VERSION, 0))]

    def _open_channel(self, message: m.OpenStandardMiningChannel | m.OpenExtendedMiningChannel,
                      now: float) -> list[Action]:
        extended = isinstance(message, m.OpenExtendedMiningChannel)
        rid = message.request_id

        def refuse(code: str) -> list[Action]:
            return [_send(m.OpenMiningChannelError(rid, code))]

        if len(self.channels) >= self.max_channels:
            return refuse("too-many-channels")
        config = self.config
        if isinstance(message, m.OpenExtendedMiningChannel) and message.min_extranonce_size > config.extranonce2_size:
            return refuse("min-extranonce-size-too-large")
        user = message.user_identity.strip()
        address = self._check_user(user)
        if address is None:
            return refuse("unknown-user")
        floor = config.minimum_difficulty
        if message.max_target < U256_MAX:
            if message.max_target <= 0:
                return refuse("max-target-out-of-range")
            floor = max(floor, self.rules.diff1_target / message.max_target)
            if floor > config.maximum_difficulty:
                return refuse("max-target-out-of-range")
        if self.admit is not None and user not in self.workers:
            if self.admit(self.session_id, user, address) is not None:
                return refuse("unknown-user")
        start = self._start_difficulty(message.nominal_hash_rate)
        vardiff_config = replace(config.vardiff, minimum=config.minimum_difficulty,
                                 maximum=config.maximum_difficulty)
        vardiff = Vardiff(vardiff_config, start, now, config.vardiff_enabled)
        if floor > config.minimum_difficulty:
            vardiff.set_floor(floor)
        extranonce1 = self._allocate()
        core = ShareCore(self.rules, self.work.book, self.session_id, extranonce1, config.extranonce2_size, vardiff,
                         config.submits_per_second, float(config.submit_burst), now)
        core.version_mask = config.allowed_version_mask
        core.authorize(user, address)
        core.subscribed = True
        channel_id = self._next_channel_id
        while channel_id in self.channels:  # only after 2**32 channels opened on one connection
            channel_id = channel_id + 1 if channel_id < U32_MAX else 1
        self._next_channel_id = channel_id + 1 if channel_id < U32_MAX else 1
        fixed = b"" if extended else bytes(config.extranonce2_size)
        channel = _Channel(channel_id, extended, user, core, fixed, floor, message.max_target, vardiff.difficulty)
        self.channels[channel_id] = channel
        target = self._target(channel, channel.target_difficulty)
        success: m.Message
        if extended:
            success = m.OpenExtendedMiningChannelSuccess(rid, channel_id, target, config.extranonce2_size,
                                                         extranonce1, 0)
        else:
            success = m.OpenStandardMiningChannelSuccess(rid, channel_id, target, channel.extranonce_prefix, 0)
        actions: list[Action] = [_send(success), Authorized(self.session_id, user, address)]
        actions += self._send_job(channel)
        return actions

    def _check_user(self, user: str) -> str | None:
        """The payout address of ``ADDRESS[.WORKER]`` under V1's rules (shares.names), or None."""
        if not user or len(user) > MAX_USER_LENGTH:
            return None
        address, worker_name = split_user(user)
        if not WORKER_RE.fullmatch(worker_name):
            return None
        try:
            self.check_address(address)
        except ValueError:
            return None
        return address

    def _start_difficulty(self, hash_rate: float) -> float:
        """The difficulty that gives one share per vardiff interval at ``hash_rate`` (or the configured start)."""
        config = self.config
        if not (math.isfinite(hash_rate) and hash_rate > 0):
            return config.initial_difficulty
        hashes_per_share = hash_rate * config.vardiff.target_interval
        difficulty = hashes_per_share * self.rules.diff1_target / 2**256
        return min(max(difficulty, config.minimum_difficulty), config.maximum_difficulty)

    def _update_channel(self, message: m.UpdateChannel, now: float) -> list[Action]:
        channel = self.channels.get(message.channel_id)
        if channel is None:
            return [_send(m.UpdateChannelError(message.channel_id, "invalid-channel-id"))]
        if message.maximum_target <= 0:
            return [_send(m.UpdateChannelError(message.channel_id, "max-target-out-of-range"))]
        floor = max(self.config.minimum_difficulty, self.rules.diff1_target / message.maximum_target)
        if floor > self.config.maximum_difficulty:
            return [_send(m.UpdateChannelError(message.channel_id, "max-target-out-of-range"))]
        # the spec: a maximum target below the one in use MUST be followed (a SetTarget); a larger one only
        # lowers the floor, vardiff moves on from there
        channel.floor, channel.max_target = floor, message.maximum_target
        channel.core.vardiff.set_floor(floor)
        actions: list[Action] = []
        self._retarget(channel, actions)
        return actions

    def _close_channel(self, channel_id: int) -> list[Action]:
        channel = self.channels.pop(channel_id, None)
        if channel is not None:
            self._malformed += channel.core.malformed  # closing a channel does not clear a record
            self._release(channel.core.extranonce1)
        return []

    # ----- work

    def _target(self, channel: _Channel, difficulty: float) -> int:
        # the floor came from the miner's max_target by a float division: clamp, never send more than it takes
        return min(self.rules.target_for(difficulty), channel.max_target, U256_MAX)

    def _send_job(self, channel: _Channel) -> list[Action]:
        core = channel.core
        job = self.work.current_job(core.address)
        if job is None or job.job_id == channel.job_id:
            return []
        template = job.template
        job_u32 = channel.next_job
        channel.next_job = job_u32 + 1 if job_u32 < U32_MAX else 1
        job_ids = channel.job_ids
        job_ids[job_u32] = job.job_id
        if len(job_ids) > MAX_CHANNEL_JOBS:
            del job_ids[next(iter(job_ids))]
        future = template.prevhash != channel.prevhash
        min_ntime = None if future else template.curtime
        job_message: m.Message
        if channel.extended:
            job_message = m.NewExtendedMiningJob(
                channel.channel_id, job_u32, min_ntime, template.version, core.version_mask != 0,
                template.merkle_branch, job.coinb1, job.coinb2,
            )
        else:
            job_message = m.NewMiningJob(channel.channel_id, job_u32, min_ntime, template.version,
                                         self._merkle_root(job, channel))
        actions: list[Action] = [_send(job_message)]
        if future:
            actions.append(_send(m.SetNewPrevHash(channel.channel_id, job_u32, template.prevhash, template.curtime,
                                                  template.nbits)))
            channel.prevhash = template.prevhash
        channel.job_id = job.job_id
        # the job keeps the target in force when it was sent (the miner applies a SetTarget from its next job)
        core.job_sent(job.job_id, channel.target_difficulty)
        return actions

    @staticmethod
    def _merkle_root(job: Job, channel: _Channel) -> bytes:
        coinbase = job.coinb1 + channel.extranonce_prefix + job.coinb2
        return root_from_branch(sha256d(coinbase), job.template.merkle_branch)

    def _retarget(self, channel: _Channel, actions: list[Action]) -> None:
        """A SetTarget when the channel's difficulty moved from the one last sent."""
        difficulty = channel.core.vardiff.difficulty
        if difficulty != channel.target_difficulty:
            channel.target_difficulty = difficulty
            actions.append(_send(m.SetTarget(channel.channel_id, self._target(channel, difficulty))))

    # ----- shares

    def _submit(self, channel_id: int, sequence: int, job_id: int, nonce: int, ntime: int, version: int,
                extranonce: bytes | None, now: float) -> list[Action]:
        """One SubmitShares (``extranonce`` None: a standard one) judged by its channel's core."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.extended != (extranonce is not None):
            self._malformed += 1
            return [_send(m.SubmitSharesError(channel_id, sequence, "invalid-channel-id"))]
        core = channel.core
        # a job id never sent on this channel gets a pool id no job has: the core says unknown-job
        pool_job_id = channel.job_ids.get(job_id) or f"sv2-{job_id}"
        record = core.judge_binary(channel.user, pool_job_id, channel.fixed if extranonce is None else extranonce,
                                   ntime, nonce, version, now)
        actions: list[Action] = []
        if isinstance(record, ShareAccepted):
            channel.ack_sequence = sequence
            channel.ack_count += 1
            channel.ack_sum += record.difficulty
            if channel.ack_count >= self.ack_batch:
                self._flush_ack(channel, actions)
        else:
            # acknowledge what came before, so the miner's counts stay in order
            self._flush_ack(channel, actions)
            code = SUBMIT_ERRORS.get(record.reason, "invalid-share")
            actions.append(_send(m.SubmitSharesError(channel_id, sequence, code)))
        actions.append(record)
        if core.followup:
            candidate, retarget = core.take_followup()
            if candidate is not None:
                actions.insert(0, candidate)  # the pool submits the block before anything else
            if retarget is not None:
                self._retarget(channel, actions)
        return actions

    @staticmethod
    def _flush_ack(channel: _Channel, actions: list[Action]) -> None:
        if not channel.ack_count:
            return
        # new_shares_sum is a U64: whole difficulty units (fractional difficulties only exist on test networks)
        shares_sum = min(int(channel.ack_sum), U64_MAX)
        actions.append(Send(_SUCCESS_HEADER + _SUCCESS_FIELDS.pack(channel.channel_id, channel.ack_sequence,
                                                                  channel.ack_count, shares_sum)))
        channel.ack_count = 0
        channel.ack_sum = 0.0


def _name(frame: bytes) -> str:
    """The message name of a frame's header, for a close reason."""
    if len(frame) >= HEADER_SIZE:
        cls = m.MESSAGES.get(frame[2]) if frame[0] == 0 and frame[1] & 0x7F == 0 else None
        if cls is not None:
            return cls.__name__
        return f"message 0x{frame[2]:02x}"
    return "frame"
