"""Payout addresses <-> scriptPubKeys: base58check (P2PKH, P2SH), bech32 (BIP173), bech32m (BIP350) and
cashaddr (Bitcoin Cash, eCash: ``chain/cashaddr.py``).

An address is only accepted for the network of the coin it is given with: a mainnet address on regtest
is refused with a message that says which prefix was expected, because paying a coinbase to a script
derived from the wrong network's address would still be a valid block but could lose the reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from stratum_pool.chain import cashaddr
from stratum_pool.chain.encoding import push_data, regroup_bits
from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import Coin


class AddressError(ValueError):
    """An address that cannot be paid on the given coin; the message says why, for a person to read."""


# ---------------------------------------------------------------------------------------------- base58

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def base58_encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58_ALPHABET[rem])
    # each leading zero byte is written as a leading '1' (the number itself loses them)
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def base58_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        digit = _B58_INDEX.get(ch)
        if digit is None:
            raise AddressError(f"character {ch!r} is not used in base58 addresses")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def base58check_encode(payload: bytes) -> str:
    return base58_encode(payload + sha256d(payload)[:4])


def base58check_decode(text: str) -> bytes:
    raw = base58_decode(text)
    if len(raw) < 5:
        raise AddressError("address is too short")
    payload, checksum = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != checksum:
        raise AddressError("address checksum is wrong (a typo?)")
    return payload


# ---------------------------------------------------------------------------------------- bech32(m)

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_MAX_LENGTH = 90


class Encoding(Enum):
    """The two checksum constants: BIP173 bech32 (witness v0) and BIP350 bech32m (witness v1+)."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_BECH32_GENERATORS):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_create_checksum(hrp: str, data: Sequence[int], encoding: Encoding) -> list[int]:
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ encoding.value
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def bech32_encode(hrp: str, data: Sequence[int], encoding: Encoding) -> str:
    combined = [*data, *bech32_create_checksum(hrp, data, encoding)]
    return hrp + "1" + "".join(_BECH32_CHARSET[d] for d in combined)


def bech32_decode(text: str) -> tuple[str, list[int], Encoding]:
    """Split a bech32/bech32m string into ``(hrp, 5-bit data without checksum, encoding)``.

    Raises AddressError for anything BIP173/BIP350 call invalid: mixed case, characters outside 33..126,
    a missing or misplaced separator, characters outside the charset, or a checksum of neither kind.
    """
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise AddressError("address contains a character that is not printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise AddressError("bech32 address mixes upper and lower case")
    if len(text) > _BECH32_MAX_LENGTH:
        raise AddressError(f"bech32 address is longer than {_BECH32_MAX_LENGTH} characters")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise AddressError("bech32 address has no human-readable prefix before the '1' separator")
    if sep + 7 > len(text):
        raise AddressError("bech32 address is too short after the '1' separator")
    hrp = text[:sep]
    data = []
    for ch in text[sep + 1 :]:
        digit = _BECH32_INDEX.get(ch)
        if digit is None:
            raise AddressError(f"character {ch!r} is not used in bech32 addresses")
        data.append(digit)
    const = _polymod([*_hrp_expand(hrp), *data])
    for encoding in Encoding:
        if const == encoding.value:
            return hrp, data[:-6], encoding
    raise AddressError("bech32 address checksum is wrong (a typo?)")


def convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    """Regroup a sequence of ``from_bits``-bit numbers into ``to_bits``-bit numbers (BIP173)."""
    try:
        return regroup_bits(data, from_bits, to_bits, pad)
    except ValueError as exc:
        raise AddressError(f"bech32 data {exc}") from None


def decode_segwit(text: str) -> tuple[str, int, bytes]:
    """Decode a segwit address into ``(hrp, witness version, witness program)``, all rules of BIP173/350."""
    hrp, data, encoding = bech32_decode(text)
    if not data:
        raise AddressError("bech32 address has no witness version")
    version = data[0]
    if version > 16:
        raise AddressError(f"witness version {version} does not exist (0..16)")
    program = bytes(convert_bits(data[1:], 5, 8, pad=False))
    if not 2 <= len(program) <= 40:
        raise AddressError(f"witness program of {len(program)} bytes is not 2..40 bytes")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(f"version 0 witness program must be 20 or 32 bytes, not {len(program)}")
    expected = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    if encoding is not expected:
        # BIP350: v0 keeps the bech32 checksum, v1+ must use bech32m (guards against the v1 length bug)
        name = "bech32" if expected is Encoding.BECH32 else "bech32m"
        raise AddressError(f"witness version {version} address must use the {name} checksum")
    return hrp, version, program


def encode_segwit(hrp: str, version: int, program: bytes) -> str:
    encoding = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    text = bech32_encode(hrp, [version, *convert_bits(program, 8, 5, pad=True)], encoding)
    decode_segwit(text)  # refuse to produce an address we would not accept back
    return text


# --------------------------------------------------------------------------------------- public API


def _witness_script(version: int, program: bytes) -> bytes:
    # OP_0 for version 0, OP_1..OP_16 (0x51..0x60) for the rest, then a direct push of the program
    return bytes((0 if version == 0 else 0x50 + version,)) + push_data(program)


_P2PKH_TYPES = (cashaddr.TYPE_P2PKH, cashaddr.TYPE_TOKEN_P2PKH)
_P2SH_TYPES = (cashaddr.TYPE_P2SH, cashaddr.TYPE_TOKEN_P2SH)


def _p2pkh(hash160: bytes) -> bytes:
    # OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG
    return b"\x76\xa9\x14" + hash160 + b"\x88\xac"


def _p2sh(hash160: bytes) -> bytes:
    # OP_HASH160 <20> OP_EQUAL
    return b"\xa9\x14" + hash160 + b"\x87"


def _cashaddr_script(address: str, coin: Coin) -> bytes:
    try:
        prefix, kind, hash_bytes = cashaddr.decode(address, coin.cashaddr_prefix)
    except cashaddr.CashAddrError as exc:
        raise AddressError(str(exc)) from None
    if prefix != coin.cashaddr_prefix:
        expected = (f"expected cashaddr prefix {coin.cashaddr_prefix!r}" if coin.cashaddr_prefix
                    else "it takes no cashaddr addresses")
        raise AddressError(f"address is for another network (cashaddr prefix {prefix!r}): {expected} for {coin.key}")
    if len(hash_bytes) != 20 or kind not in _P2PKH_TYPES + _P2SH_TYPES:
        # 32-byte P2SH and other types exist in the format but pay scripts a coinbase has no use for
        raise AddressError(f"cashaddr type {kind} with a {len(hash_bytes)}-byte hash is not a P2PKH or P2SH address")
    return _p2pkh(hash_bytes) if kind in _P2PKH_TYPES else _p2sh(hash_bytes)


def _is_cashaddr(address: str, coin: Coin) -> bool:
    """Whether ``address`` is meant as a cashaddr: it has a ``prefix:``, or the coin has cashaddr and the
    string decodes under the coin's prefix (a base58 string never passes the 40-bit checksum by chance)."""
    if ":" in address:
        return True
    if not coin.cashaddr_prefix:
        return False
    try:
        cashaddr.decode_raw(address, coin.cashaddr_prefix)
    except cashaddr.CashAddrError:
        return False
    return True


def address_to_script(address: str, coin: Coin) -> bytes:
    """The scriptPubKey that pays ``address`` on ``coin``; AddressError says why when it cannot.

    Accepts base58check P2PKH and P2SH with the coin's version bytes (every coin), bech32/bech32m segwit
    addresses (any witness version) with the coin's human-readable prefix (coins with one), and cashaddr
    P2PKH and P2SH with the coin's prefix, written with or without it (coins with one).
    """
    if not address:
        raise AddressError("address is empty")
    if address != address.strip():
        raise AddressError("address has spaces around it")
    if _is_cashaddr(address, coin):
        return _cashaddr_script(address, coin)
    # Only a coin with a bech32 prefix reads bech32: on a coin without one, a base58 address whose only '1'
    # is its first character would otherwise look like bech32 with an empty prefix and be refused.
    if coin.bech32_hrp:
        sep = address.rfind("1")
        hrp_guess = address[:sep].lower() if sep > 0 else ""
        if hrp_guess == coin.bech32_hrp:
            _, version, program = decode_segwit(address)
            return _witness_script(version, program)
    try:
        other_hrp, _, _ = decode_segwit(address)
    except AddressError:
        pass
    else:
        expected = f"expected bech32 prefix {coin.bech32_hrp!r}" if coin.bech32_hrp else "it has no segwit addresses"
        raise AddressError(f"address is for another network (bech32 prefix {other_hrp!r}): {expected} for {coin.key}")
    payload = base58check_decode(address)
    if len(payload) != 21:
        raise AddressError(f"base58 address holds {len(payload) - 1} bytes, expected a 20-byte hash")
    prefix, hash160 = payload[0], payload[1:]
    if prefix == coin.p2pkh_prefix:
        return _p2pkh(hash160)
    if prefix == coin.p2sh_prefix:
        return _p2sh(hash160)
    others = "".join((f", or bech32 prefix {coin.bech32_hrp!r}" if coin.bech32_hrp else "",
                      f", or cashaddr prefix {coin.cashaddr_prefix!r}" if coin.cashaddr_prefix else ""))
    raise AddressError(
        f"address is for another network (base58 version byte {prefix}): expected version byte "
        f"{coin.p2pkh_prefix} (P2PKH) or {coin.p2sh_prefix} (P2SH) for {coin.key}{others}"
    )


def script_to_address(script: bytes, coin: Coin) -> str:
    """The address of a standard scriptPubKey on ``coin`` (P2PKH, P2SH, segwit); ValueError otherwise.

    P2PKH and P2SH are written as cashaddr on a coin that has it (what its wallets print), base58 otherwise.
    """
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        if coin.cashaddr_prefix:
            return cashaddr.encode(coin.cashaddr_prefix, cashaddr.TYPE_P2PKH, script[3:23])
        return base58check_encode(bytes((coin.p2pkh_prefix,)) + script[3:23])
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22:] == b"\x87":
        if coin.cashaddr_prefix:
            return cashaddr.encode(coin.cashaddr_prefix, cashaddr.TYPE_P2SH, script[2:22])
        return base58check_encode(bytes((coin.p2sh_prefix,)) + script[2:22])
    is_witness_version = script[:1] == b"\x00" or b"\x51" <= script[:1] <= b"\x60"
    if coin.bech32_hrp and 4 <= len(script) <= 42 and is_witness_version and script[1] == len(script) - 2:
        version = 0 if script[0] == 0 else script[0] - 0x50
        try:
            return encode_segwit(coin.bech32_hrp, version, script[2:])
        except AddressError as exc:
            raise ValueError(f"script is not a valid witness output: {exc}") from None
    raise ValueError(f"script {script.hex()} is not a standard output with an address")
