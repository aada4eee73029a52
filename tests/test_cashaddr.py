"""CashAddr (Bitcoin Cash, eCash) against the vectors of the cashaddr spec, and the address dispatch of coins
without bech32 (Bitcoin Cash, Bitcoin SV): legacy base58 works on every coin."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.chain import cashaddr
from stratum_pool.chain.address import AddressError, address_to_script, base58check_decode, script_to_address
from stratum_pool.coins import COINS

BCH = COINS["bitcoincash-mainnet"]
TBCH = COINS["bitcoincash-testnet"]
RBCH = COINS["bitcoincash-regtest"]
BTC = COINS["bitcoin-mainnet"]
# A coin with neither bech32 nor cashaddr, only base58 (as Bitcoin SV)
BASE58_ONLY = dataclasses.replace(BTC, name="base58only", bech32_hrp="", gbt_rules=(), segwit=False)

# ------------------------------------------------------------ the spec's checksum vectors (valid strings)

CHECKSUM_VALID = [
    "prefix:x64nx6hz",
    "p:gpf8m4h7",
    "bitcoincash:qpzry9x8gf2tvdw0s3jn54khce6mua7lcw20ayyn",
    "bchtest:testnetaddress4d6njnut",
    "bchreg:555555555555555555555555555555555555555555555udxmlmrz",
]


@pytest.mark.parametrize("text", CHECKSUM_VALID)
def test_checksum_vectors(text: str) -> None:
    prefix, data = cashaddr.decode_raw(text)
    assert prefix == text.split(":")[0]
    assert cashaddr.encode_raw(prefix, data) == text
    assert cashaddr.decode_raw(text.upper())[1] == data
    # any one character changed breaks the checksum
    i = len(text) - 3
    flipped = text[:i] + ("q" if text[i] != "q" else "p") + text[i + 1 :]
    with pytest.raises(cashaddr.CashAddrError, match="checksum"):
        cashaddr.decode_raw(flipped)


# ------------------------------------------- the spec's address vectors: one 20-byte hash, four prefixes/types

HASH = bytes.fromhex("F5BF48B397DAE70BE82B3CCA4793F8EB2B6CDAC9")


@pytest.mark.parametrize(("address", "prefix", "kind"), [
    ("bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2", "bitcoincash", 0),
    ("bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", "bchtest", 1),
    ("pref:pr6m7j9njldwwzlg9v7v53unlr4jkmx6ey65nvtks5", "pref", 1),
    ("prefix:0r6m7j9njldwwzlg9v7v53unlr4jkmx6ey3qnjwsrf", "prefix", 15),
])
def test_address_vectors(address: str, prefix: str, kind: int) -> None:
    assert cashaddr.encode(prefix, kind, HASH) == address
    assert cashaddr.decode(address) == (prefix, kind, HASH)


# --------------------------------- the spec's legacy <-> cashaddr pairs: the same hash in either format, one script

LEGACY_PAIRS = [
    ("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu", "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"),
    ("1KXrWXciRDZUpQwQmuM1DbwsKDLYAYsVLR", "bitcoincash:qr95sy3j9xwd2ap32xkykttr4cvcu7as4y0qverfuy"),
    ("16w1D5WRVKJuZUsSRzdLp9w3YGcgoxDXb", "bitcoincash:qqq3728yw0y47sqn6l2na30mcw6zm78dzqre909m2r"),
    ("3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC", "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq"),
    ("3LDsS579y7sruadqu11beEJoTjdFiFCdX4", "bitcoincash:pr95sy3j9xwd2ap32xkykttr4cvcu7as4yc93ky28e"),
    ("31nwvkZwyPdgzjBJZXfDmSWsC4ZLKpYyUw", "bitcoincash:pqq3728yw0y47sqn6l2na30mcw6zm78dzq5ucqzc37"),
]


@pytest.mark.parametrize(("legacy", "cash"), LEGACY_PAIRS)
def test_legacy_and_cashaddr_pay_the_same_script(legacy: str, cash: str) -> None:
    script = address_to_script(cash, BCH)
    assert address_to_script(legacy, BCH) == script
    # the prefix may be left out, and upper case is the same address
    assert address_to_script(cash.split(":")[1], BCH) == script
    assert address_to_script(cash.upper(), BCH) == script
    payload = base58check_decode(legacy)
    kind = cashaddr.TYPE_P2PKH if payload[0] == 0 else cashaddr.TYPE_P2SH
    assert cashaddr.encode("bitcoincash", kind, payload[1:]) == cash
    assert script_to_address(script, BCH) == cash
    # Bitcoin reads the legacy form of the same script, and refuses the cashaddr form
    assert address_to_script(legacy, BTC) == script
    with pytest.raises(AddressError, match="takes no cashaddr"):
        address_to_script(cash, BTC)


def test_token_aware_types_pay_the_same_scripts() -> None:
    # CashTokens-aware forms (type 2 and 3) of the spec's first pair
    token_p2pkh = cashaddr.encode("bitcoincash", cashaddr.TYPE_TOKEN_P2PKH, base58check_decode(LEGACY_PAIRS[0][0])[1:])
    assert token_p2pkh.startswith("bitcoincash:z")
    assert address_to_script(token_p2pkh, BCH) == address_to_script(LEGACY_PAIRS[0][1], BCH)


# --------------------------------------------------------------------- the dispatch for coins without bech32


def test_base58_with_a_single_leading_one_on_coins_without_bech32() -> None:
    # The only '1' of this address is its first character: read as bech32 it has an empty prefix, which
    # equals the "" bech32 prefix of a coin without segwit; it must still be read as base58.
    address = "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu"
    assert address.count("1") == 1
    script = bytes.fromhex("76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac")
    assert address_to_script(address, BCH) == script
    assert address_to_script(address, BASE58_ONLY) == script
    assert script_to_address(script, BASE58_ONLY) == address


def test_regtest_cashaddr_and_legacy() -> None:
    hash160 = bytes(range(20))
    address = cashaddr.encode("bchreg", cashaddr.TYPE_P2PKH, hash160)
    assert address.startswith("bchreg:q")
    script = address_to_script(address, RBCH)
    assert script == b"\x76\xa9\x14" + hash160 + b"\x88\xac"
    assert script_to_address(script, RBCH) == address
    # Bitcoin Core's regtest base58 prefixes (m/n, 2), as Bitcoin ABC and BCHN use
    from stratum_pool.chain.address import base58check_encode

    assert address_to_script(base58check_encode(b"\x6f" + hash160), RBCH) == script


@pytest.mark.parametrize(("address", "coin", "reason"), [
    ("bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2", RBCH, "expected cashaddr prefix 'bchreg'"),
    ("bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", BCH, "expected cashaddr prefix 'bitcoincash'"),
    # the cashaddr of the testnet vector under the mainnet prefix fails its checksum there
    ("pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", BCH, "base58"),
    ("prefix:0r6m7j9njldwwzlg9v7v53unlr4jkmx6ey3qnjwsrf", COINS["bitcoincash-mainnet"], "another network"),
    ("bitcoincash:Qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2", BCH, "mixes upper and lower case"),
    ("bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg3", BCH, "checksum"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", BCH, "has no segwit addresses"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", BCH, "cashaddr prefix 'bitcoincash'"),
])
def test_refusals_say_why(address: str, coin: object, reason: str) -> None:
    assert isinstance(coin, type(BCH))
    with pytest.raises(AddressError, match=reason):
        address_to_script(address, coin)


def test_type_15_is_refused_on_its_own_prefix() -> None:
    odd = dataclasses.replace(BCH, cashaddr_prefix="prefix")
    with pytest.raises(AddressError, match="type 15"):
        address_to_script("prefix:0r6m7j9njldwwzlg9v7v53unlr4jkmx6ey3qnjwsrf", odd)


@pytest.mark.parametrize("size", [20, 24, 28, 32, 40, 48, 56, 64])
def test_every_hash_size_round_trips(size: int) -> None:
    h = bytes(range(size))
    for kind in range(16):
        assert cashaddr.decode(cashaddr.encode("bchreg", kind, h)) == ("bchreg", kind, h)


def test_bad_sizes_refused() -> None:
    with pytest.raises(cashaddr.CashAddrError, match="not 21"):
        cashaddr.encode("bitcoincash", 0, bytes(21))
    # a version byte that says 24 bytes over a 20-byte hash
    from stratum_pool.chain.cashaddr import _regroup  # the spec's payload packing

    data = _regroup(bytes((1,)) + bytes(20), 8, 5, pad=True)
    with pytest.raises(cashaddr.CashAddrError, match="version byte says 24"):
        cashaddr.decode(cashaddr.encode_raw("bitcoincash", data))


@given(st.binary(min_size=20, max_size=20), st.sampled_from([BCH, TBCH, RBCH]), st.booleans())
def test_script_round_trip(hash160: bytes, coin: object, p2sh: bool) -> None:
    assert isinstance(coin, type(BCH))
    script = b"\xa9\x14" + hash160 + b"\x87" if p2sh else b"\x76\xa9\x14" + hash160 + b"\x88\xac"
    address = script_to_address(script, coin)
    assert address.startswith(coin.cashaddr_prefix + ":")
    assert address_to_script(address, coin) == script


def test_no_witness_address_on_coins_without_segwit() -> None:
    with pytest.raises(ValueError, match="not a standard output"):
        script_to_address(b"\x00\x14" + bytes(20), BCH)
