"""The Stratum V2 frame header (sv2-spec, 03-Protocol-Overview.md, "Framing"): six bytes before every message.

``extension_type`` U16 (its most significant bit is the ``channel_msg`` bit: the payload then starts with the
U32 channel id), ``msg_type`` U8, ``msg_length`` U24 (the payload's length, not counting the header); all
little-endian. The Noise transport (``noise.py``) and the message codec (``codec.py``) both frame with this.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

HEADER_SIZE: Final = 6
CHANNEL_MSG_BIT: Final = 0x8000
MAX_PAYLOAD: Final = (1 << 24) - 1

_HEAD = struct.Struct("<HB")


class FrameError(ValueError):
    """Bytes that are not a Stratum V2 frame."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    extension_type: int  # with the channel_msg bit as sent
    msg_type: int
    length: int

    @property
    def channel_msg(self) -> bool:
        return bool(self.extension_type & CHANNEL_MSG_BIT)

    @property
    def extension(self) -> int:
        """The extension the message belongs to (0: the core protocols), the channel_msg bit ignored."""
        return self.extension_type & ~CHANNEL_MSG_BIT


def encode_header(extension_type: int, msg_type: int, length: int) -> bytes:
    if not (0 <= extension_type <= 0xFFFF and 0 <= msg_type <= 0xFF and 0 <= length <= MAX_PAYLOAD):
        raise FrameError(f"header out of range: extension {extension_type}, type {msg_type}, length {length}")
    return _HEAD.pack(extension_type, msg_type) + length.to_bytes(3, "little")


def decode_header(data: bytes | bytearray | memoryview) -> FrameHeader:
    """The header at the start of ``data`` (at least :data:`HEADER_SIZE` bytes)."""
    if len(data) < HEADER_SIZE:
        raise FrameError(f"a frame header is {HEADER_SIZE} bytes, got {len(data)}")
    extension_type, msg_type = _HEAD.unpack_from(data, 0)
    return FrameHeader(extension_type, msg_type, int.from_bytes(data[3:6], "little"))


def encode_frame(extension_type: int, msg_type: int, payload: bytes) -> bytes:
    """A whole plaintext frame: the header, then ``payload``."""
    return encode_header(extension_type, msg_type, len(payload)) + payload
