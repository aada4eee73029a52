"""Bitcoin wire encodings: CompactSize varints, script numbers, data pushes and Stratum's prevhash form.

Everything here is a pure function of its arguments. Byte strings named ``*_internal`` are in internal
(header) order; ``*_display`` ones are reversed, as RPC and block explorers print them.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence

try:  # the Cython extension built from native/ by setup.py
    from stratum_pool import _native
except ImportError:  # pragma: no cover - exercised only when the extension is not built
    _native = None  # type: ignore[assignment]

_OP_0 = 0x00
_OP_PUSHDATA1 = 0x4C
_OP_PUSHDATA2 = 0x4D
_OP_PUSHDATA4 = 0x4E
_OP_1 = 0x51  # OP_1..OP_16 are 0x51..0x60

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def u32le(n: int) -> bytes:
    """``n`` as 4 little-endian bytes (struct.error when out of range)."""
    return _U32.pack(n)


def u64le(n: int) -> bytes:
    """``n`` as 8 little-endian bytes (struct.error when out of range)."""
    return _U64.pack(n)


def read_u32le(buf: bytes, offset: int) -> tuple[int, int]:
    """Read a little-endian uint32 at ``offset``; returns ``(value, new_offset)``."""
    if offset + 4 > len(buf):
        raise ValueError("truncated data: uint32 runs past the end")
    return _U32.unpack_from(buf, offset)[0], offset + 4


def read_u64le(buf: bytes, offset: int) -> tuple[int, int]:
    """Read a little-endian uint64 at ``offset``; returns ``(value, new_offset)``."""
    if offset + 8 > len(buf):
        raise ValueError("truncated data: uint64 runs past the end")
    return _U64.unpack_from(buf, offset)[0], offset + 8


def varint(n: int) -> bytes:
    """Bitcoin's CompactSize encoding of a non-negative integer below 2**64."""
    if n < 0:
        raise ValueError(f"varint cannot encode a negative number ({n})")
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    if n <= 0xFFFFFFFFFFFFFFFF:
        return b"\xff" + n.to_bytes(8, "little")
    raise ValueError(f"varint cannot encode {n}: larger than 2**64-1")


def read_varint(buf: bytes, offset: int) -> tuple[int, int]:
    """Decode a CompactSize at ``offset``; returns ``(value, new_offset)``.

    Non-canonical encodings (a value that fits a shorter form) are refused, as Bitcoin Core refuses them
    when deserializing, so that parse -> serialize always round-trips byte for byte.
    """
    if offset >= len(buf):
        raise ValueError("truncated data: varint runs past the end")
    first = buf[offset]
    if first < 0xFD:
        return first, offset + 1
    size, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
    end = offset + 1 + size
    if end > len(buf):
        raise ValueError("truncated data: varint runs past the end")
    value = int.from_bytes(buf[offset + 1 : end], "little")
    if value < minimum:
        raise ValueError(f"non-canonical varint encoding of {value}")
    return value, end


def script_num(n: int) -> bytes:
    """CScriptNum serialization: minimal little-endian magnitude, sign in the top bit of the last byte.

    Zero is the empty string. When the magnitude's top byte already uses bit 0x80, an extra byte carries
    the sign (0x00 positive, 0x80 negative) so the number is not misread as negative.
    """
    if n == 0:
        return b""
    negative = n < 0
    magnitude = -n if negative else n
    out = bytearray()
    while magnitude:
        out.append(magnitude & 0xFF)
        magnitude >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes) -> int:
    """Inverse of :func:`script_num` (accepts non-minimal encodings too)."""
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        # the sign bit is not part of the magnitude
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def push_header(length: int) -> bytes:
    """The opcode (and length bytes) that push ``length`` bytes of data: direct, PUSHDATA1/2/4."""
    if length < 0:
        raise ValueError(f"push length cannot be negative ({length})")
    if length < _OP_PUSHDATA1:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((_OP_PUSHDATA1, length))
    if length <= 0xFFFF:
        return bytes((_OP_PUSHDATA2,)) + length.to_bytes(2, "little")
    if length <= 0xFFFFFFFF:
        return bytes((_OP_PUSHDATA4,)) + length.to_bytes(4, "little")
    raise ValueError(f"push of {length} bytes is too large")


def push_data(data: bytes) -> bytes:
    """A script push of ``data`` with the smallest push opcode that fits its length.

    (Empty data becomes OP_0, the same byte as a zero-length direct push.)
    """
    return push_header(len(data)) + data


def bip34_height_push(height: int) -> bytes:
    """Exactly what Bitcoin Core's ``CScript() << height`` emits, the BIP34 prefix of a coinbase scriptSig.

    Core encodes small integers as opcodes rather than data pushes: 0 is OP_0 and 1..16 are OP_1..OP_16;
    everything else is a push of the CScriptNum bytes. Core checks the coinbase starts with these exact
    bytes, so any other encoding (e.g. a push of b"\\x01" for height 1) makes the block invalid.
    """
    if height < 0:
        raise ValueError(f"block height cannot be negative ({height})")
    if height == 0:
        return bytes((_OP_0,))
    if height <= 16:
        return bytes((_OP_1 + height - 1,))
    return push_data(script_num(height))


def read_bip34_height(script_sig: bytes) -> tuple[int, int]:
    """Decode the BIP34 height at the start of a coinbase scriptSig; returns ``(height, push_length)``."""
    if not script_sig:
        raise ValueError("empty coinbase scriptSig has no BIP34 height")
    first = script_sig[0]
    if first == _OP_0:
        return 0, 1
    if _OP_1 <= first <= _OP_1 + 15:
        return first - _OP_1 + 1, 1
    if 1 <= first < _OP_PUSHDATA1:
        end = 1 + first
        if end > len(script_sig):
            raise ValueError("coinbase scriptSig height push runs past the end")
        return decode_script_num(script_sig[1:end]), end
    raise ValueError(f"coinbase scriptSig does not start with a height push (opcode {first:#04x})")


def stratum_prevhash(prevhash_internal: bytes) -> str:
    """The previous block hash as mining.notify sends it: internal order with each 4-byte word swapped.

    Miners reverse each 32-bit word back before hashing (a quirk inherited from getwork, which handed out
    the header as big-endian words).
    """
    if len(prevhash_internal) != 32:
        raise ValueError(f"prevhash must be 32 bytes, got {len(prevhash_internal)}")
    return _swap_words(prevhash_internal).hex()


def prevhash_from_stratum(prevhash_stratum: str) -> bytes:
    """Inverse of :func:`stratum_prevhash`: the internal-order prevhash."""
    raw = bytes.fromhex(prevhash_stratum)
    if len(raw) != 32:
        raise ValueError(f"stratum prevhash must be 64 hex digits, got {len(prevhash_stratum)}")
    return _swap_words(raw)


def _swap_words(data: bytes) -> bytes:
    return b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))


def internal_from_display(hash_display: str) -> bytes:
    """A hash printed by RPC / explorers (display hex) as internal-order bytes."""
    raw = bytes.fromhex(hash_display)
    if len(raw) != 32:
        raise ValueError(f"hash must be 64 hex digits, got {len(hash_display)}")
    return raw[::-1]


def hex_decode_many(hexes: Sequence[object]) -> tuple[bytes, ...]:
    """Each hex string as bytes, as ``binascii.unhexlify`` decodes it (a template's transactions); ValueError
    naming the index of the first that is not a str of hex digit pairs. Native when the extension is built:
    one call for the whole list."""
    if _native is not None:
        return _native.hex_decode_many(list(hexes))
    decoded: list[bytes] = []
    for i, h in enumerate(hexes):
        if not isinstance(h, str):
            raise ValueError(f"transaction {i} is not a hex string: {type(h).__name__}")
        try:
            decoded.append(binascii.unhexlify(h))
        except (ValueError, binascii.Error):
            raise ValueError(f"transaction {i} is not valid hex") from None
    return tuple(decoded)


def internal_from_display_many(hashes_display: Sequence[object]) -> tuple[tuple[bytes, ...], bytes]:
    """Many display-hex hashes (a template's txids) as internal-order bytes: each one, and all of them
    concatenated (ValueError naming the index of the first that is not 64 hex digits). Native when the
    extension is built: no Python object per hash but the result."""
    if _native is not None:
        return _native.txids_from_display(list(hashes_display))
    hashes: list[bytes] = []
    for i, h in enumerate(hashes_display):
        try:
            raw = bytes.fromhex(h) if isinstance(h, str) and len(h) == 64 and h.isascii() else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:  # bytes.fromhex skips whitespace: a shorter answer
            raise ValueError(f"txid {i} is not 64 hex digits: {h!r}")
        hashes.append(raw[::-1])
    return tuple(hashes), b"".join(hashes)


def display_from_internal(hash_internal: bytes) -> str:
    """An internal-order hash as display hex (as RPC and block explorers print it)."""
    return hash_internal[::-1].hex()


def regroup_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    """Regroup a sequence of ``from_bits``-bit numbers into ``to_bits``-bit numbers (bech32's and cashaddr's
    base32 payloads). Without ``pad`` the leftover bits must be fewer than ``from_bits`` and all zero;
    ValueError says what is wrong."""
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise ValueError("value out of range")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits:
        raise ValueError(f"has more than {from_bits - 1} bits of padding")
    elif (acc << (to_bits - bits)) & maxv:
        raise ValueError("has non-zero padding")
    return out
