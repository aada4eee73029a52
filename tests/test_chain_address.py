"""Addresses -> scriptPubKeys: BIP173/BIP350 vectors, base58check, network checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.chain.address import (
    AddressError,
    Encoding,
    address_to_script,
    base58check_decode,
    base58check_encode,
    bech32_decode,
    decode_segwit,
    encode_segwit,
    script_to_address,
)
from stratum_pool.coins import COINS, Coin

BTC = COINS["bitcoin-mainnet"]
TBTC = COINS["bitcoin-testnet"]
RBTC = COINS["bitcoin-regtest"]
LTC = COINS["litecoin-mainnet"]
RLTC = COINS["litecoin-regtest"]

# ------------------------------------------------------------------ BIP173 / BIP350 checksum vectors

BECH32_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11" + "q" * 82 + "c8247j",  # exactly 90 characters, the maximum
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

BECH32M_VALID = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11" + "l" * 82 + "ludsr8",  # exactly 90 characters, the maximum
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

BECH32_INVALID = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    # overall max length exceeded
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with uppercase form of HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]

BECH32M_INVALID = [
    "\x201xj0phk",
    "\x7f1g6xzxy",
    "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
]


@pytest.mark.parametrize("text", BECH32_VALID)
def test_bech32_valid(text: str) -> None:
    hrp, _, encoding = bech32_decode(text)
    assert encoding is Encoding.BECH32
    assert hrp == text[: text.rfind("1")].lower()


@pytest.mark.parametrize("text", BECH32M_VALID)
def test_bech32m_valid(text: str) -> None:
    _, _, encoding = bech32_decode(text)
    assert encoding is Encoding.BECH32M


@pytest.mark.parametrize("text", BECH32_INVALID + BECH32M_INVALID)
def test_bech32_invalid(text: str) -> None:
    with pytest.raises(AddressError):
        bech32_decode(text)


# (address, scriptPubKey) from BIP350's list (which supersedes BIP173's for witness versions 1+)
SEGWIT_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]


def _coin_for_hrp(hrp: str) -> Coin:
    return {"bc": BTC, "tb": TBTC}[hrp]


@pytest.mark.parametrize(("address", "script"), SEGWIT_VALID)
def test_segwit_valid(address: str, script: str) -> None:
    coin = _coin_for_hrp(address[:2].lower())
    assert address_to_script(address, coin).hex() == script
    # encoding gives the canonical lowercase form back
    assert script_to_address(bytes.fromhex(script), coin) == address.lower()


SEGWIT_INVALID = [
    # invalid human-readable part
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    # invalid checksum (bech32 instead of bech32m)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    # invalid checksum (bech32m instead of bech32)
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    # invalid character in checksum
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    # invalid witness version
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    # invalid program length (1 byte)
    "bc1pw5dgrnzv",
    # invalid program length (41 bytes)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    # invalid program length for witness version 0 (per BIP141)
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    # mixed case
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    # more than 4 padding bits
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    # non-zero padding in 8-to-5 conversion
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    # empty data section
    "bc1gmk9yu",
]


@pytest.mark.parametrize("address", SEGWIT_INVALID)
def test_segwit_invalid(address: str) -> None:
    for coin in (BTC, TBTC):
        with pytest.raises(AddressError):
            address_to_script(address, coin)


# These invalid addresses fail for a reason other than their checksum; a vector copied wrong would fail
# the checksum instead, so check the checksum holds to be sure each one tests what it claims.
@pytest.mark.parametrize(
    ("address", "encoding", "reason"),
    [
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            Encoding.BECH32,
            "bech32m checksum",
        ),
        (
            "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
            Encoding.BECH32,
            "bech32m checksum",
        ),
        (
            "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
            Encoding.BECH32,
            "bech32m checksum",
        ),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", Encoding.BECH32M, "bech32 checksum"),
        (
            "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
            Encoding.BECH32M,
            "bech32 checksum",
        ),
        ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", Encoding.BECH32M, "version 17"),
        ("bc1pw5dgrnzv", Encoding.BECH32M, "1 bytes"),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
            Encoding.BECH32M,
            "41 bytes",
        ),
        ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", Encoding.BECH32, "20 or 32 bytes"),
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", Encoding.BECH32M, "4 bits"),
        ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", Encoding.BECH32M, "non-zero"),
        ("bc1gmk9yu", Encoding.BECH32, "no witness version"),
    ],
)
def test_segwit_invalid_for_the_stated_reason(address: str, encoding: Encoding, reason: str) -> None:
    _, _, found = bech32_decode(address)
    assert found is encoding
    with pytest.raises(AddressError, match=reason):
        decode_segwit(address)


# --------------------------------------------------------------------------------------- base58check


def test_genesis_coinbase_address() -> None:
    script = address_to_script("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", BTC)
    assert script.hex() == "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"
    assert script_to_address(script, BTC) == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_p2sh_mainnet_address() -> None:
    # P2SH of the hash 0x00..0x13 built here, plus a well-known mainnet P2SH address
    script = b"\xa9\x14" + bytes(range(20)) + b"\x87"
    address = script_to_address(script, BTC)
    assert address.startswith("3")
    assert address_to_script(address, BTC) == script
    known = address_to_script("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", BTC)
    assert known[:2] == b"\xa9\x14" and known[-1:] == b"\x87" and len(known) == 23


def test_base58_leading_zeros() -> None:
    payload = b"\x00\x00\x01\x02"
    encoded = base58check_encode(payload)
    assert encoded.startswith("11")
    assert base58check_decode(encoded) == payload


def test_base58_bad_checksum() -> None:
    with pytest.raises(AddressError, match="checksum"):
        address_to_script("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", BTC)


def test_base58_bad_character() -> None:
    with pytest.raises(AddressError, match="base58"):
        address_to_script("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0", BTC)


# ------------------------------------------------------------------------------------ network checks


def test_mainnet_address_refused_on_regtest() -> None:
    with pytest.raises(AddressError, match="another network"):
        address_to_script("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", RBTC)
    with pytest.raises(AddressError, match="expected bech32 prefix 'bcrt'"):
        address_to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", RBTC)


def test_regtest_address_refused_on_mainnet() -> None:
    address = encode_segwit("bcrt", 0, bytes(20))
    with pytest.raises(AddressError, match="expected bech32 prefix 'bc'"):
        address_to_script(address, BTC)


def test_testnet_and_regtest_share_base58_prefixes() -> None:
    script = b"\x76\xa9\x14" + bytes(range(20)) + b"\x88\xac"
    address = script_to_address(script, TBTC)
    assert address[0] in "mn"
    assert address_to_script(address, RBTC) == script


@pytest.mark.parametrize(
    ("coin", "hrp"), [(RBTC, "bcrt"), (BTC, "bc"), (TBTC, "tb"), (LTC, "ltc"), (RLTC, "rltc")]
)
@pytest.mark.parametrize(("version", "size"), [(0, 20), (0, 32), (1, 32), (16, 2), (2, 40)])
def test_bech32_round_trip_per_coin(coin: Coin, hrp: str, version: int, size: int) -> None:
    program = bytes(range(7, 7 + size))
    address = encode_segwit(hrp, version, program)
    assert address.startswith(hrp + "1")
    script = address_to_script(address, coin)
    assert script[0] == (0 if version == 0 else 0x50 + version)
    assert script[1:] == bytes((size,)) + program
    assert script_to_address(script, coin) == address
    assert address_to_script(address.upper(), coin) == script


def test_litecoin_addresses() -> None:
    p2wpkh = address_to_script(encode_segwit("ltc", 0, bytes(20)), LTC)
    assert p2wpkh == b"\x00\x14" + bytes(20)
    with pytest.raises(AddressError, match="expected bech32 prefix 'rltc'"):
        address_to_script(encode_segwit("ltc", 0, bytes(20)), RLTC)
    with pytest.raises(AddressError, match="expected bech32 prefix 'ltc'"):
        address_to_script(encode_segwit("bc", 0, bytes(20)), LTC)
    legacy = script_to_address(b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", LTC)
    assert legacy.startswith("L")
    p2sh = script_to_address(b"\xa9\x14" + bytes(20) + b"\x87", LTC)
    assert p2sh.startswith("M")
    assert address_to_script(p2sh, LTC) == b"\xa9\x14" + bytes(20) + b"\x87"
    with pytest.raises(AddressError, match="another network"):
        address_to_script(legacy, BTC)


@pytest.mark.parametrize("bad", ["", " 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "bcrt1", "hello world"])
def test_garbage_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        address_to_script(bad, RBTC)


def test_bad_checksum_on_own_network_names_checksum() -> None:
    good = encode_segwit("bcrt", 0, bytes(20))
    bad = good[:-1] + ("q" if good[-1] != "q" else "p")
    with pytest.raises(AddressError, match="checksum"):
        address_to_script(bad, RBTC)


def test_address_error_is_value_error() -> None:
    assert issubclass(AddressError, ValueError)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(sorted(COINS)))
def test_script_round_trip(hash160: bytes, coin_key: str) -> None:
    coin = COINS[coin_key]
    for script in (
        b"\x76\xa9\x14" + hash160 + b"\x88\xac",
        b"\xa9\x14" + hash160 + b"\x87",
        b"\x00\x14" + hash160,
        b"\x51\x20" + hash160 + hash160[:12],
    ):
        if script[0] in (0, 0x51) and not coin.bech32_hrp:
            continue  # a coin without segwit has no witness addresses (tests/test_cashaddr.py)
        assert address_to_script(script_to_address(script, coin), coin) == script


def test_script_to_address_refuses_nonstandard() -> None:
    with pytest.raises(ValueError):
        script_to_address(b"\x6a\x00", BTC)
    with pytest.raises(ValueError):
        script_to_address(b"", BTC)
