"""The common and mining protocol messages a mining device uses (sv2-spec 03 "Common Protocol Messages", 05
"Mining Protocol Messages", 08 "Message Types"), each a dataclass that encodes to and decodes from one whole
plaintext frame (the 6-byte header of ``frame.py``, then the payload).

Each class names its fields once, in wire order, with their SV2 types (``_FIELDS``); encoding and decoding
walk that list. Hashes (prev_hash, merkle root, merkle path) stay 32 raw bytes, as the block header holds them;
targets are integers (a U256 is little-endian). Group channels, custom jobs (job declaration) and
ChannelEndpointChanged are not here: no mining device sends or needs them.

:func:`decode_frame` raises :class:`~stratum_pool.protocol.v2.codec.CodecError` for anything malformed and
:class:`UnknownMessage` (a CodecError) for a well-framed message this module does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

from stratum_pool.protocol.v2.codec import CodecError, Reader, Writer
from stratum_pool.protocol.v2.frame import CHANNEL_MSG_BIT, HEADER_SIZE, FrameError, decode_header, encode_frame

M = TypeVar("M", bound="Message")

# SetupConnection.protocol
PROTOCOL_MINING: Final = 0
# The only protocol version there is (SetupConnection min_version/max_version, .Success used_version).
SV2_VERSION: Final = 2
# SetupConnection.flags for the mining protocol (bit 0 is the least significant)
REQUIRES_STANDARD_JOBS: Final = 1 << 0
REQUIRES_WORK_SELECTION: Final = 1 << 1
REQUIRES_VERSION_ROLLING: Final = 1 << 2
# SetupConnection.Success.flags for the mining protocol
REQUIRES_FIXED_VERSION: Final = 1 << 0
REQUIRES_EXTENDED_CHANNELS: Final = 1 << 1


class UnknownMessage(CodecError):
    """A well-formed frame whose (extension, message type) no message here has."""

    def __init__(self, extension: int, msg_type: int, channel_msg: bool) -> None:
        super().__init__(f"unknown message type 0x{msg_type:02x} of extension 0x{extension:04x}")
        self.extension = extension
        self.msg_type = msg_type
        self.channel_msg = channel_msg


def _opt_u32_write(w: Writer, value: int | None) -> None:
    w.option(value, Writer.u32)


def _opt_u32_read(r: Reader) -> int | None:
    return r.option(Reader.u32)


def _path_write(w: Writer, value: tuple[bytes, ...]) -> None:
    w.seq0_255(value, Writer.u256_bytes)


def _path_read(r: Reader) -> tuple[bytes, ...]:
    return tuple(r.seq0_255(Reader.u256_bytes))


# The field kinds: how each SV2 type is written and read.
_KINDS: Final[dict[str, tuple[Callable[[Writer, Any], object], Callable[[Reader], Any]]]] = {
    "U8": (Writer.u8, Reader.u8),
    "U16": (Writer.u16, Reader.u16),
    "U32": (Writer.u32, Reader.u32),
    "U64": (Writer.u64, Reader.u64),
    "U256": (Writer.u256, Reader.u256),
    "HASH": (Writer.u256_bytes, Reader.u256_bytes),  # a U256 kept as its 32 bytes
    "F32": (Writer.f32, Reader.f32),
    "BOOL": (Writer.boolean, Reader.boolean),
    "STR0_255": (Writer.str0_255, Reader.str0_255),
    "B0_32": (Writer.b0_32, Reader.b0_32),
    "B0_64K": (Writer.b0_64k, Reader.b0_64k),
    "OPTION[U32]": (_opt_u32_write, _opt_u32_read),
    "SEQ0_255[U256]": (_path_write, _path_read),
}


class Message:
    """One SV2 message: ``MSG_TYPE`` and ``CHANNEL_MSG`` from the spec's table, ``_FIELDS`` in wire order."""

    __slots__ = ()
    MSG_TYPE: ClassVar[int]
    CHANNEL_MSG: ClassVar[bool]
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]]

    def payload(self) -> bytes:
        w = Writer()
        for name, kind in self._FIELDS:
            _KINDS[kind][0](w, getattr(self, name))
        return w.getvalue()

    def encode(self) -> bytes:
        """The whole plaintext frame."""
        return encode_frame(CHANNEL_MSG_BIT if self.CHANNEL_MSG else 0, self.MSG_TYPE, self.payload())

    @classmethod
    def decode_payload(cls: type[M], payload: bytes | bytearray | memoryview) -> M:
        r = Reader(payload)
        values = [_KINDS[kind][1](r) for _, kind in cls._FIELDS]
        r.end()
        return cls(*values)


MESSAGES: dict[int, type[Message]] = {}


def _register(cls: type[M]) -> type[M]:
    assert cls.MSG_TYPE not in MESSAGES, cls
    assert all(kind in _KINDS for _, kind in cls._FIELDS), cls
    MESSAGES[cls.MSG_TYPE] = cls
    return cls


def decode_frame(frame: bytes | bytearray | memoryview) -> Message:
    """The message in one whole plaintext frame (header and exactly ``msg_length`` payload bytes).

    The channel_msg bit is not checked against the message type: it is a routing hint for proxies, and the
    payload's layout (channel_id first or not) is the message type's alone."""
    try:
        header = decode_header(frame)
    except FrameError as exc:
        raise CodecError(str(exc)) from None
    if len(frame) != HEADER_SIZE + header.length:
        raise CodecError(f"frame of {len(frame)} bytes, its header says {HEADER_SIZE + header.length}")
    cls = MESSAGES.get(header.msg_type) if header.extension == 0 else None
    if cls is None:
        raise UnknownMessage(header.extension, header.msg_type, header.channel_msg)
    return cls.decode_payload(memoryview(frame)[HEADER_SIZE:])


# ----- common protocol


@_register
@dataclass(slots=True)
class SetupConnection(Message):
    MSG_TYPE: ClassVar[int] = 0x00
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("protocol", "U8"), ("min_version", "U16"), ("max_version", "U16"), ("flags", "U32"),
        ("endpoint_host", "STR0_255"), ("endpoint_port", "U16"), ("vendor", "STR0_255"),
        ("hardware_version", "STR0_255"), ("firmware", "STR0_255"), ("device_id", "STR0_255"),
    )
    protocol: int
    min_version: int
    max_version: int
    flags: int
    endpoint_host: str
    endpoint_port: int
    vendor: str
    hardware_version: str
    firmware: str
    device_id: str


@_register
@dataclass(slots=True)
class SetupConnectionSuccess(Message):
    MSG_TYPE: ClassVar[int] = 0x01
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("used_version", "U16"), ("flags", "U32"))
    used_version: int
    flags: int


@_register
@dataclass(slots=True)
class SetupConnectionError(Message):
    MSG_TYPE: ClassVar[int] = 0x02
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("flags", "U32"), ("error_code", "STR0_255"))
    flags: int
    error_code: str


@_register
@dataclass(slots=True)
class Reconnect(Message):
    MSG_TYPE: ClassVar[int] = 0x04
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("new_host", "STR0_255"), ("new_port", "U16"))
    new_host: str
    new_port: int


# ----- mining protocol: channels


@_register
@dataclass(slots=True)
class OpenStandardMiningChannel(Message):
    MSG_TYPE: ClassVar[int] = 0x10
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("request_id", "U32"), ("user_identity", "STR0_255"), ("nominal_hash_rate", "F32"), ("max_target", "U256"),
    )
    request_id: int
    user_identity: str
    nominal_hash_rate: float  # hashes per second
    max_target: int


@_register
@dataclass(slots=True)
class OpenStandardMiningChannelSuccess(Message):
    MSG_TYPE: ClassVar[int] = 0x11
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("request_id", "U32"), ("channel_id", "U32"), ("target", "U256"), ("extranonce_prefix", "B0_32"),
        ("group_channel_id", "U32"),
    )
    request_id: int
    channel_id: int
    target: int
    extranonce_prefix: bytes
    group_channel_id: int


@_register
@dataclass(slots=True)
class OpenMiningChannelError(Message):
    MSG_TYPE: ClassVar[int] = 0x12
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("request_id", "U32"), ("error_code", "STR0_255"))
    request_id: int
    error_code: str


@_register
@dataclass(slots=True)
class OpenExtendedMiningChannel(Message):
    MSG_TYPE: ClassVar[int] = 0x13
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("request_id", "U32"), ("user_identity", "STR0_255"), ("nominal_hash_rate", "F32"), ("max_target", "U256"),
        ("min_extranonce_size", "U16"),
    )
    request_id: int
    user_identity: str
    nominal_hash_rate: float
    max_target: int
    min_extranonce_size: int


@_register
@dataclass(slots=True)
class OpenExtendedMiningChannelSuccess(Message):
    MSG_TYPE: ClassVar[int] = 0x14
    CHANNEL_MSG: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("request_id", "U32"), ("channel_id", "U32"), ("target", "U256"), ("extranonce_size", "U16"),
        ("extranonce_prefix", "B0_32"), ("group_channel_id", "U32"),
    )
    request_id: int
    channel_id: int
    target: int
    extranonce_size: int  # the miner's part, after the prefix
    extranonce_prefix: bytes
    group_channel_id: int


@_register
@dataclass(slots=True)
class UpdateChannel(Message):
    MSG_TYPE: ClassVar[int] = 0x16
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("nominal_hash_rate", "F32"), ("maximum_target", "U256"),
    )
    channel_id: int
    nominal_hash_rate: float
    maximum_target: int


@_register
@dataclass(slots=True)
class UpdateChannelError(Message):
    MSG_TYPE: ClassVar[int] = 0x17
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("channel_id", "U32"), ("error_code", "STR0_255"))
    channel_id: int
    error_code: str


@_register
@dataclass(slots=True)
class CloseChannel(Message):
    MSG_TYPE: ClassVar[int] = 0x18
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("channel_id", "U32"), ("reason_code", "STR0_255"))
    channel_id: int
    reason_code: str


@_register
@dataclass(slots=True)
class SetExtranoncePrefix(Message):
    MSG_TYPE: ClassVar[int] = 0x19
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("channel_id", "U32"), ("extranonce_prefix", "B0_32"))
    channel_id: int
    extranonce_prefix: bytes


# ----- mining protocol: shares


@_register
@dataclass(slots=True)
class SubmitSharesStandard(Message):
    MSG_TYPE: ClassVar[int] = 0x1A
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("sequence_number", "U32"), ("job_id", "U32"), ("nonce", "U32"), ("ntime", "U32"),
        ("version", "U32"),
    )
    channel_id: int
    sequence_number: int
    job_id: int
    nonce: int
    ntime: int
    version: int  # the full header version


@_register
@dataclass(slots=True)
class SubmitSharesExtended(Message):
    MSG_TYPE: ClassVar[int] = 0x1B
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        *SubmitSharesStandard._FIELDS, ("extranonce", "B0_32"),
    )
    channel_id: int
    sequence_number: int
    job_id: int
    nonce: int
    ntime: int
    version: int
    extranonce: bytes  # the miner's part, after the channel's prefix


@_register
@dataclass(slots=True)
class SubmitSharesSuccess(Message):
    MSG_TYPE: ClassVar[int] = 0x1C
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("last_sequence_number", "U32"), ("new_submits_accepted_count", "U32"),
        ("new_shares_sum", "U64"),
    )
    channel_id: int
    last_sequence_number: int
    new_submits_accepted_count: int
    new_shares_sum: int


@_register
@dataclass(slots=True)
class SubmitSharesError(Message):
    MSG_TYPE: ClassVar[int] = 0x1D
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("sequence_number", "U32"), ("error_code", "STR0_255"),
    )
    channel_id: int
    sequence_number: int
    error_code: str


# ----- mining protocol: work


@_register
@dataclass(slots=True)
class NewMiningJob(Message):
    MSG_TYPE: ClassVar[int] = 0x15
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("job_id", "U32"), ("min_ntime", "OPTION[U32]"), ("version", "U32"),
        ("merkle_root", "HASH"),
    )
    channel_id: int
    job_id: int
    min_ntime: int | None  # None: a future job, mined once a SetNewPrevHash names it
    version: int
    merkle_root: bytes  # as the header holds it


@_register
@dataclass(slots=True)
class NewExtendedMiningJob(Message):
    MSG_TYPE: ClassVar[int] = 0x1F
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("job_id", "U32"), ("min_ntime", "OPTION[U32]"), ("version", "U32"),
        ("version_rolling_allowed", "BOOL"), ("merkle_path", "SEQ0_255[U256]"), ("coinbase_tx_prefix", "B0_64K"),
        ("coinbase_tx_suffix", "B0_64K"),
    )
    channel_id: int
    job_id: int
    min_ntime: int | None
    version: int
    version_rolling_allowed: bool
    merkle_path: tuple[bytes, ...]  # deepest first, each folded in as sha256d(root || leaf)
    coinbase_tx_prefix: bytes  # the coinbase without witness data, up to the extranonce
    coinbase_tx_suffix: bytes


@_register
@dataclass(slots=True)
class SetNewPrevHash(Message):
    MSG_TYPE: ClassVar[int] = 0x20
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("channel_id", "U32"), ("job_id", "U32"), ("prev_hash", "HASH"), ("min_ntime", "U32"), ("nbits", "U32"),
    )
    channel_id: int
    job_id: int
    prev_hash: bytes  # as the header holds it
    min_ntime: int
    nbits: int


@_register
@dataclass(slots=True)
class SetTarget(Message):
    MSG_TYPE: ClassVar[int] = 0x21
    CHANNEL_MSG: ClassVar[bool] = True
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("channel_id", "U32"), ("maximum_target", "U256"))
    channel_id: int
    maximum_target: int


__all__ = [
    "MESSAGES", "PROTOCOL_MINING", "REQUIRES_EXTENDED_CHANNELS", "REQUIRES_FIXED_VERSION", "REQUIRES_STANDARD_JOBS",
    "REQUIRES_VERSION_ROLLING", "REQUIRES_WORK_SELECTION", "SV2_VERSION", "CloseChannel", "Message",
    "NewExtendedMiningJob", "NewMiningJob", "OpenExtendedMiningChannel", "OpenExtendedMiningChannelSuccess",
    "OpenMiningChannelError", "OpenStandardMiningChannel", "OpenStandardMiningChannelSuccess", "Reconnect",
    "SetExtranoncePrefix", "SetNewPrevHash", "SetTarget", "SetupConnection", "SetupConnectionError",
    "SetupConnectionSuccess", "SubmitSharesError", "SubmitSharesExtended", "SubmitSharesStandard",
    "SubmitSharesSuccess", "UnknownMessage", "UpdateChannel", "UpdateChannelError", "decode_frame",
]
