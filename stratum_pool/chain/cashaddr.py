"""CashAddr, the address format of Bitcoin Cash and eCash (spec: bitcoincashorg/bitcoincash.org, cashaddr.md).

``prefix:payload`` where the payload is base32 (the bech32 charset) of a version byte and a hash, followed by
a 40-bit BCH checksum over the prefix and the payload. The version byte holds the type in bits 3..6
(0 = P2PKH, 1 = P2SH; 2 and 3 are their CashTokens-aware forms, paying the same scripts) and the hash
size in bits 0..2. A string is all lower or all upper case; the prefix may be left out by a person, in
which case the network's prefix is meant.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratum_pool.chain.encoding import regroup_bits


class CashAddrError(ValueError):
    """Not a valid cashaddr string; the message says why (``chain.address`` hands it on as an AddressError)."""


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATORS = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
# hash size in bits <-> the 3-bit size code of the version byte
_SIZES = (160, 192, 224, 256, 320, 384, 448, 512)

TYPE_P2PKH = 0
TYPE_P2SH = 1
TYPE_TOKEN_P2PKH = 2
TYPE_TOKEN_P2SH = 3


def _regroup(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    try:
        return regroup_bits(data, from_bits, to_bits, pad)
    except ValueError:
        raise CashAddrError("cashaddr payload has extra or non-zero padding bits") from None


def polymod(values: Sequence[int]) -> int:
    """The cashaddr checksum function over 5-bit values (0 for a valid string with its checksum)."""
    c = 1
    for d in values:
        c0 = c >> 35
        c = ((c & 0x07FFFFFFFF) << 5) ^ d
        for i, gen in enumerate(_GENERATORS):
            if (c0 >> i) & 1:
                c ^= gen
    return c ^ 1


def _prefix_values(prefix: str) -> list[int]:
    # the lower 5 bits of each prefix character, then a 0 for the ':' separator
    return [ord(ch) & 31 for ch in prefix] + [0]


def encode_raw(prefix: str, data: Sequence[int]) -> str:
    """``prefix:`` + the 5-bit ``data`` + its checksum, in the charset (lower case)."""
    mod = polymod([*_prefix_values(prefix), *data, 0, 0, 0, 0, 0, 0, 0, 0])
    checksum = [(mod >> 5 * (7 - i)) & 31 for i in range(8)]
    return prefix + ":" + "".join(_CHARSET[d] for d in [*data, *checksum])


def decode_raw(text: str, default_prefix: str = "") -> tuple[str, list[int]]:
    """Split a cashaddr string into ``(prefix, 5-bit data without checksum)``; CashAddrError says why not."""
    if text.lower() != text and text.upper() != text:
        raise CashAddrError("cashaddr address mixes upper and lower case")
    text = text.lower()
    prefix, sep, payload = text.rpartition(":")
    if not sep:
        if not default_prefix:
            raise CashAddrError("cashaddr address has no prefix (e.g. 'bitcoincash:')")
        prefix = default_prefix
    if not prefix or any(not 33 <= ord(c) <= 126 or c == ":" for c in prefix):
        raise CashAddrError("cashaddr prefix is empty or not printable ASCII")
    if len(payload) < 8:
        raise CashAddrError("cashaddr address is too short for its 8-character checksum")
    data = []
    for ch in payload:
        digit = _INDEX.get(ch)
        if digit is None:
            raise CashAddrError(f"character {ch!r} is not used in cashaddr addresses")
        data.append(digit)
    if polymod([*_prefix_values(prefix), *data]) != 0:
        raise CashAddrError("cashaddr address checksum is wrong (a typo?)")
    return prefix, data[:-8]


def encode(prefix: str, kind: int, hash_bytes: bytes) -> str:
    """The cashaddr of a hash of ``kind`` (TYPE_*) under ``prefix`` (e.g. ``bitcoincash``)."""
    size_bits = len(hash_bytes) * 8
    if size_bits not in _SIZES:
        raise CashAddrError(f"a cashaddr hash is 20, 24, 28, 32, 40, 48, 56 or 64 bytes, not {len(hash_bytes)}")
    if not 0 <= kind <= 15:
        raise CashAddrError(f"cashaddr type {kind} does not fit in 4 bits")
    version = kind << 3 | _SIZES.index(size_bits)
    return encode_raw(prefix, _regroup(bytes((version,)) + hash_bytes, 8, 5, pad=True))


def decode(text: str, default_prefix: str = "") -> tuple[str, int, bytes]:
    """A cashaddr address -> ``(prefix, type, hash)``, the hash length checked against the version byte."""
    prefix, data = decode_raw(text, default_prefix)
    raw = bytes(_regroup(data, 5, 8, pad=False))
    if not raw:
        raise CashAddrError("cashaddr address holds no version byte")
    version, hash_bytes = raw[0], raw[1:]
    if version & 0x80:
        raise CashAddrError("cashaddr version byte has its reserved high bit set")
    expected = _SIZES[version & 7] // 8
    if len(hash_bytes) != expected:
        raise CashAddrError(f"cashaddr hash is {len(hash_bytes)} bytes, its version byte says {expected}")
    return prefix, (version >> 3) & 15, hash_bytes
