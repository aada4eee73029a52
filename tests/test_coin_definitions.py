"""Coin definitions as data: the built-in coins.toml (every coin's address formats against published
vectors), its validation (errors name the coin, network, key and what is allowed), and coins an operator
defines in the config."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import pytest

from stratum_pool.chain.address import AddressError, address_to_script, script_to_address
from stratum_pool.coins import BUILTIN_KEYS, COINS, CoinDefinitionError, get_coin, parse_coin_definitions
from stratum_pool.config import ConfigError, parse_settings

BUILTIN = tomllib.loads(resources.files("stratum_pool").joinpath("coins.toml").read_text())


def test_every_coin_and_network_the_issue_names_is_built_in() -> None:
    expected = {
        "bitcoin": {"mainnet", "testnet", "testnet4", "signet", "regtest"},
        "bitcoincash": {"mainnet", "testnet", "testnet4", "chipnet", "regtest"},
        "ecash": {"mainnet", "testnet", "regtest"},
        "bitcoinsv": {"mainnet", "testnet", "regtest"},
        "digibyte": {"mainnet", "testnet", "regtest"},
        "namecoin": {"mainnet", "testnet", "regtest"},
        "litecoin": {"mainnet", "testnet", "regtest"},
    }
    assert {f"{n}-{net}" for n, nets in expected.items() for net in nets} == set(BUILTIN_KEYS)
    assert {c.algorithm for c in COINS.values() if c.name != "litecoin"} == {"sha256d"}


def test_bitcoin_and_litecoin_rows_are_unchanged() -> None:
    # the values the coin table held as Python rows before it became data
    btc, ltc = get_coin("bitcoin", "mainnet"), get_coin("litecoin", "regtest")
    assert (btc.symbol, btc.p2pkh_prefix, btc.p2sh_prefix, btc.bech32_hrp, btc.gbt_rules, btc.coinbase_maturity,
            btc.rpc_port, btc.stratum_port, btc.version_rolling_mask, btc.share_multiplier, btc.block_time_seconds,
            btc.segwit, btc.mweb) == ("BTC", 0, 5, "bc", ("segwit",), 100, 8332, 3333, 0x1FFFE000, 1, 600, True, False)
    assert (ltc.symbol, ltc.p2pkh_prefix, ltc.p2sh_prefix, ltc.bech32_hrp, ltc.gbt_rules, ltc.rpc_port,
            ltc.stratum_port, ltc.share_multiplier, ltc.block_time_seconds, ltc.segwit, ltc.mweb) == (
        "rLTC", 0x6F, 0x3A, "rltc", ("mweb", "segwit"), 19443, 3334, 65536, 150, True, True)
    assert get_coin("bitcoin", "signet").gbt_rules == ("segwit", "signet")


def test_coins_without_segwit_ask_for_no_rules_and_pad_where_needed() -> None:
    for name in ("bitcoincash", "ecash", "bitcoinsv"):
        coin = get_coin(name, "mainnet")
        assert not coin.segwit and coin.gbt_rules == () and coin.bech32_hrp == ""
    assert get_coin("bitcoincash", "regtest").min_tx_size == 100
    assert get_coin("bitcoin", "mainnet").min_tx_size == 0
    # Namecoin's chain ID lives in version bits 16..31: only 13..15 may roll
    assert get_coin("namecoin", "mainnet").version_rolling_mask == 0x0000E000
    assert len({COINS[k].stratum_port for k in BUILTIN_KEYS if k.endswith("-mainnet")}) == 7


# Published mainnet addresses of each coin (the coins' documentation, explorers' well-known addresses),
# with the script they pay; each must be read on its coin and refused on the others.
MAINNET_VECTORS = [
    ("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"),
    ("bitcoin", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("bitcoincash", "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
     "76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac"),
    ("bitcoincash", "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu", "76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac"),
    ("bitcoinsv", "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu", "76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac"),
    ("ecash", "ecash:qpm2qsznhks23z7629mms6s4cwef74vcwva87rkuu2", "76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac"),
    # Bitcoin ABC's regtest miner fund address (test/functional/abc_mining_basic.py)
    ("ecash", "ecregtest:prfhcnyqnl5cgrnmlfmms675w93ld7mvvq9jcw0zsn", None),
    ("litecoin", "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kgmn4n9", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
]


@pytest.mark.parametrize(("name", "address", "script"), MAINNET_VECTORS)
def test_published_addresses(name: str, address: str, script: str | None) -> None:
    coin = get_coin(name, "regtest" if address.startswith("ecregtest:") else "mainnet")
    if script is None:  # a P2SH address: its script is the hash in it
        script = address_to_script(address, coin).hex()
        assert script.startswith("a914") and script.endswith("87")
    assert address_to_script(address, coin).hex() == script
    assert address_to_script(script_to_address(bytes.fromhex(script), coin), coin).hex() == script


@pytest.mark.parametrize("key", sorted(BUILTIN_KEYS))
def test_every_coin_reads_its_own_address_formats(key: str) -> None:
    coin = COINS[key]
    h = bytes(range(20))
    p2pkh, p2sh = b"\x76\xa9\x14" + h + b"\x88\xac", b"\xa9\x14" + h + b"\x87"
    from stratum_pool.chain.address import base58check_encode, encode_segwit

    # legacy base58 on every coin
    assert address_to_script(base58check_encode(bytes((coin.p2pkh_prefix,)) + h), coin) == p2pkh
    assert address_to_script(base58check_encode(bytes((coin.p2sh_prefix,)) + h), coin) == p2sh
    if coin.bech32_hrp:
        assert address_to_script(encode_segwit(coin.bech32_hrp, 0, h), coin) == b"\x00\x14" + h
    if coin.cashaddr_prefix:
        from stratum_pool.chain import cashaddr

        assert address_to_script(cashaddr.encode(coin.cashaddr_prefix, 1, h), coin) == p2sh
    # another coin's segwit address is refused with the reason
    other = "tb" if coin.bech32_hrp != "tb" else "bc"
    with pytest.raises(AddressError, match="another network"):
        address_to_script(encode_segwit(other, 0, h), coin)


def test_digibyte_and_namecoin_prefixes() -> None:
    from stratum_pool.chain.address import base58check_encode

    h = bytes(20)
    assert script_to_address(b"\x76\xa9\x14" + h + b"\x88\xac", get_coin("digibyte", "mainnet")).startswith("D")
    assert script_to_address(b"\xa9\x14" + h + b"\x87", get_coin("digibyte", "mainnet")).startswith("S")
    assert script_to_address(b"\x76\xa9\x14" + h + b"\x88\xac", get_coin("namecoin", "mainnet"))[0] in "MN"
    assert script_to_address(b"\x00\x14" + h, get_coin("namecoin", "mainnet")).startswith("nc1")
    assert script_to_address(b"\x00\x14" + h, get_coin("digibyte", "regtest")).startswith("dgbrt1")
    with pytest.raises(AddressError, match="another network"):
        address_to_script(base58check_encode(b"\x00" + h), get_coin("namecoin", "mainnet"))


# ----------------------------------------------------------------------------------------- validation


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BUILTIN)
    table = data
    for p in path[:-1]:
        table = table[p]
    table[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "message"), [
    (("bitcoincash", "algorithm"), "x11", r"bitcoincash\.algorithm: 'x11' is not allowed; allowed: one of sha256d, "
                                          "scrypt"),
    (("bitcoincash", "regtest", "p2pkh_prefix"), 256, r"bitcoincash\.regtest\.p2pkh_prefix: 256 is not allowed; "
                                                      r"allowed: 0\.\.255"),
    (("bitcoin", "mainnet", "bech32_hrp"), "BC", r"bitcoin\.mainnet\.bech32_hrp: 'BC' is not allowed; allowed: "
                                                 "empty or 1..83 lower-case"),
    (("litecoin", "segwit"), "yes", r"litecoin\.segwit: 'yes' is not a bool"),
    (("namecoin", "gbt_rules"), [], r"namecoin\.(mainnet|testnet|regtest)\.gbt_rules: \[\] lacks \"segwit\""),
    (("ecash", "regtest", "colour"), "red", r"ecash\.regtest\.colour: unknown key; known: algorithm, "),
    (("digibyte", "min_tx_size"), 5000, r"digibyte\.min_tx_size: 5000 is not allowed; allowed: 0\.\.1000 bytes"),
    (("bitcoinsv", "regtest", "rpc_port"), 70000, r"bitcoinsv\.regtest\.rpc_port: 70000 is not allowed"),
    (("bitcoinsv", "mainnet", "p2sh_prefix"), 0, r"bitcoinsv\.mainnet\.p2sh_prefix: 0 equals p2pkh_prefix"),
    (("Bitcoin",), {"mainnet": {}}, r"Bitcoin: a coin name is 1\.\.19 lower-case letters or digits"),
    (("bitcoin", "test_net"), {}, r"bitcoin\.test_net: a network name is 1\.\.19 lower-case"),
])
def test_bad_definitions_name_coin_network_key_and_allowed(path: tuple[str, ...], value: Any, message: str) -> None:
    with pytest.raises(CoinDefinitionError, match=message):
        parse_coin_definitions(_with(path, value), "")


def test_missing_keys_are_named() -> None:
    data = _with(("bitcoinsv",), {"title": "x", "mainnet": {"symbol": "X"}})
    with pytest.raises(CoinDefinitionError, match=r"bitcoinsv\.mainnet: missing algorithm, p2pkh_prefix"):
        parse_coin_definitions(data, "")


def test_the_shipped_file_parses_to_the_table() -> None:
    assert parse_coin_definitions(BUILTIN, "coins.toml") == {k: COINS[k] for k in BUILTIN_KEYS}


# ------------------------------------------------------------------------------- coins in the config

HOBBY = {"hobbycoin": {
    "title": "Hobbycoin", "algorithm": "sha256d", "block_time_seconds": 120, "stratum_port": 3400,
    "p2pkh_prefix": 0x6F, "p2sh_prefix": 0xC4, "cashaddr_prefix": "hobreg",
    "regtest": {"symbol": "rHOB", "rpc_port": 18443, "gbt_params": {"capabilities": ["proposal"]}},
}}


def hobby_doc(**extra: Any) -> dict[str, Any]:
    return {"coin_definitions": copy.deepcopy(HOBBY), "coins": [{
        "coin": "hobbycoin", "network": "regtest",
        "daemons": [{"url": "http://127.0.0.1:18443", "user": "u", "password": "p"}], **extra}]}


def test_a_coin_defined_in_the_config() -> None:
    from stratum_pool.chain import cashaddr

    pay = cashaddr.encode("hobreg", 0, bytes(20))
    settings = parse_settings(hobby_doc(pool_address=pay, mode="solo"), address_check=address_to_script)
    cs = settings.coins[0]
    assert cs.coin.key == "hobbycoin-regtest" and cs.coin.display_name == "Hobbycoin regtest"
    assert cs.stratum_port == 3400 and cs.coin.gbt_params == {"capabilities": ["proposal"]}
    assert settings.coin_definitions == (cs.coin,)
    assert COINS["hobbycoin-regtest"] == cs.coin  # the API and store find it by key


def test_a_defined_coin_is_validated_like_the_builtin_ones() -> None:
    doc = hobby_doc()
    doc["coin_definitions"]["hobbycoin"]["regtest"]["p2pkh_prefix"] = -1
    with pytest.raises(ConfigError, match=r"coin_definitions\.hobbycoin\.regtest\.p2pkh_prefix: -1 is not allowed; "
                                          r"allowed: 0\.\.255"):
        parse_settings(doc)
    doc = hobby_doc()
    doc["coin_definitions"]["bitcoin"] = {"regtest": dict(HOBBY["hobbycoin"]["regtest"], **{
        k: v for k, v in HOBBY["hobbycoin"].items() if k != "regtest"})}
    with pytest.raises(ConfigError, match=r"coin_definitions\.bitcoin\.regtest: 'bitcoin-regtest' is a built-in"):
        parse_settings(doc)


def test_an_undefined_coin_says_how_to_define_it() -> None:
    doc = hobby_doc()
    del doc["coin_definitions"]
    doc["coins"][0]["coin"] = "nosuchcoin"
    with pytest.raises(ConfigError, match=r"coins\[0\]\.coin/network: 'nosuchcoin-regtest' is not a known coin.*"
                                          r"coin_definitions"):
        parse_settings(doc)
