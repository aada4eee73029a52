"""The Stratum V2 data types (sv2-spec, 03-Protocol-Overview.md, "Data Types Mapping"), sans-IO.

:class:`Reader` takes one message payload apart field by field and :class:`Writer` puts one together. Every
malformed form a reader can meet (a buffer too short, a length prefix over the type's bound, a string that is
not UTF-8, bytes left over after the last field, a value out of range when writing) raises
:class:`CodecError` and nothing else, so a session catches exactly one exception per frame.

All integers are little-endian. BOOL is read from its least significant bit only: the spec says receivers
MUST NOT interpret the other seven bits and senders MAY set them (they are reserved for future flags).
F32 is an IEEE-754 single (``nominal_hash_rate``); the codec hands any value on, the session judges it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

T = TypeVar("T")

U8_MAX: Final = 0xFF
U16_MAX: Final = 0xFFFF
U24_MAX: Final = 0xFF_FFFF
U32_MAX: Final = 0xFFFF_FFFF
U64_MAX: Final = 0xFFFF_FFFF_FFFF_FFFF
U256_MAX: Final = (1 << 256) - 1

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")


class CodecError(ValueError):
    """Bytes that are not the SV2 encoding of what was asked for (or a value that has none)."""


class Reader:
    """Fields read in order from one payload; :meth:`end` checks that nothing is left over."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, size: int, what: str) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise CodecError(f"{what} needs {size} bytes at offset {self._pos}, only {self.remaining} left")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def end(self) -> None:
        if self._pos != len(self._data):
            raise CodecError(f"{self.remaining} trailing bytes after the last field")

    # ----- fixed sizes

    def u8(self) -> int:
        return self._take(1, "U8")[0]

    def u16(self) -> int:
        return int(_U16.unpack(self._take(2, "U16"))[0])

    def u24(self) -> int:
        return int.from_bytes(self._take(3, "U24"), "little")

    def u32(self) -> int:
        return int(_U32.unpack(self._take(4, "U32"))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self._take(8, "U64"))[0])

    def u256(self) -> int:
        return int.from_bytes(self._take(32, "U256"), "little")

    def u256_bytes(self) -> bytes:
        """A U256 as its 32 raw bytes (a hash: prev_hash, merkle root and path, as the header holds them)."""
        return self._take(32, "U256")

    def f32(self) -> float:
        return float(_F32.unpack(self._take(4, "F32"))[0])

    def boolean(self) -> bool:
        return bool(self._take(1, "BOOL")[0] & 1)

    # ----- length-prefixed

    def _bytes8(self, limit: int, what: str) -> bytes:
        length = self.u8()
        if length > limit:
            raise CodecError(f"{what} length {length} is over its maximum of {limit}")
        return self._take(length, what)

    def str0_255(self) -> str:
        raw = self._bytes8(255, "STR0_255")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"STR0_255 is not UTF-8: {exc.reason} at byte {exc.start}") from None

    def b0_32(self) -> bytes:
        return self._bytes8(32, "B0_32")

    def b0_255(self) -> bytes:
        return self._bytes8(255, "B0_255")

    def b0_64k(self) -> bytes:
        return self._take(self.u16(), "B0_64K")

    def seq0_255(self, item: Callable[[Reader], T]) -> list[T]:
        return [item(self) for _ in range(self.u8())]

    def seq0_64k(self, item: Callable[[Reader], T]) -> list[T]:
        count = self.u16()
        if count > self.remaining:  # every element is at least one byte: refuse before looping 65,535 times
            raise CodecError(f"SEQ0_64K of {count} elements in {self.remaining} bytes")
        return [item(self) for _ in range(count)]

    def option(self, item: Callable[[Reader], T]) -> T | None:
        count = self.u8()
        if count > 1:
            raise CodecError(f"OPTION holds at most one element, got {count}")
        return item(self) if count else None


class Writer:
    """Fields appended in order; :meth:`getvalue` is the payload."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def _int(self, value: int, size: int, maximum: int, what: str) -> Writer:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            raise CodecError(f"{what} must be an integer in 0..{maximum}, got {value!r}")
        self._parts.append(value.to_bytes(size, "little"))
        return self

    def u8(self, value: int) -> Writer:
        return self._int(value, 1, U8_MAX, "U8")

    def u16(self, value: int) -> Writer:
        return self._int(value, 2, U16_MAX, "U16")

    def u24(self, value: int) -> Writer:
        return self._int(value, 3, U24_MAX, "U24")

    def u32(self, value: int) -> Writer:
        return self._int(value, 4, U32_MAX, "U32")

    def u64(self, value: int) -> Writer:
        return self._int(value, 8, U64_MAX, "U64")

    def u256(self, value: int) -> Writer:
        return self._int(value, 32, U256_MAX, "U256")

    def u256_bytes(self, value: bytes) -> Writer:
        if len(value) != 32:
            raise CodecError(f"U256 is 32 bytes, got {len(value)}")
        self._parts.append(bytes(value))
        return self

    def f32(self, value: float) -> Writer:
        try:
            self._parts.append(_F32.pack(value))
        except (struct.error, OverflowError, TypeError) as exc:
            raise CodecError(f"F32 cannot hold {value!r}: {exc}") from None
        return self

    def boolean(self, value: bool) -> Writer:
        self._parts.append(b"\x01" if value else b"\x00")
        return self

    def _bytes8(self, value: bytes, limit: int, what: str) -> Writer:
        if len(value) > limit:
            raise CodecError(f"{what} holds at most {limit} bytes, got {len(value)}")
        self._parts.append(bytes((len(value),)) + bytes(value))
        return self

    def str0_255(self, value: str) -> Writer:
        return self._bytes8(value.encode("utf-8"), 255, "STR0_255")

    def b0_32(self, value: bytes) -> Writer:
        return self._bytes8(value, 32, "B0_32")

    def b0_255(self, value: bytes) -> Writer:
        return self._bytes8(value, 255, "B0_255")

    def b0_64k(self, value: bytes) -> Writer:
        if len(value) > U16_MAX:
            raise CodecError(f"B0_64K holds at most {U16_MAX} bytes, got {len(value)}")
        self._parts.append(_U16.pack(len(value)) + bytes(value))
        return self

    def seq0_255(self, items: Sequence[T], item: Callable[[Writer, T], object]) -> Writer:
        if len(items) > U8_MAX:
            raise CodecError(f"SEQ0_255 holds at most {U8_MAX} elements, got {len(items)}")
        self.u8(len(items))
        for value in items:
            item(self, value)
        return self

    def seq0_64k(self, items: Sequence[T], item: Callable[[Writer, T], object]) -> Writer:
        if len(items) > U16_MAX:
            raise CodecError(f"SEQ0_64K holds at most {U16_MAX} elements, got {len(items)}")
        self.u16(len(items))
        for value in items:
            item(self, value)
        return self

    def option(self, value: T | None, item: Callable[[Writer, T], object]) -> Writer:
        if value is None:
            return self.u8(0)
        self.u8(1)
        item(self, value)
        return self
