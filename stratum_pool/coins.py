"""The coin table: every difference between coins is data here, not an ``if`` elsewhere.

The built-in coins are ``coins.toml`` in this package (each parameter with the source it came from); an
operator adds or describes more in the pool config (``[coin_definitions.NAME]``, same format, read by
``config.py`` through :func:`parse_coin_definitions`). Each field of :class:`Coin` declares its key, default and
allowed values once (``setting.py``), and the definitions are validated at start-up like the config: an error
names the coin, the network, the key, the bad value and what is allowed.

File format: one table per coin with the keys shared by its networks, and one sub-table per network with what
differs there (a network table's keys win)::

    [bitcoincash]
    title = "Bitcoin Cash"
    algorithm = "sha256d"
    ...
    [bitcoincash.regtest]
    symbol = "rBCH"
    cashaddr_prefix = "bchreg"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from types import MappingProxyType
from typing import Any

from stratum_pool.setting import ANY, PORT, RULE, Rule, at_least, between, one_of, rule

ALGO_SHA256D = 0
ALGO_SCRYPT = 1
ALGORITHMS = {"sha256d": ALGO_SHA256D, "scrypt": ALGO_SCRYPT}

# Difficulty 1 target for sha256d: 0x00000000FFFF0000...0000 (bdiff), as bitcoind reports difficulty.
DIFF1_TARGET = 0xFFFF * 2**208

_BECH32_HRP = re.compile(r"[a-z0-9]{1,83}")  # BIP173 allows any of 33..126; every coin uses these
_CASHADDR_PREFIX = re.compile(r"[a-z0-9]{1,40}")
# coin and network names: the key "bitcoin-mainnet" they make is how the API and the store name the coin
_NAME = re.compile(r"[a-z0-9]{1,19}")


def _is_hrp(v: str) -> bool:
    return v == "" or bool(_BECH32_HRP.fullmatch(v))


def _is_cashaddr_prefix(v: str) -> bool:
    return v == "" or bool(_CASHADDR_PREFIX.fullmatch(v))


def _is_word_list(v: list[Any]) -> bool:
    return all(isinstance(x, str) and x for x in v)


@dataclass(frozen=True, slots=True, kw_only=True)
class Coin:
    """Parameters of one coin on one network (a key of the definitions is a field here)."""

    name: str = field(metadata=ANY)  # the coin's table name, e.g. "bitcoincash"
    network: str = field(metadata=ANY)  # its network's sub-table name, e.g. "regtest"
    title: str = field(default="", metadata=ANY)  # for people: "Bitcoin Cash" ("" = the name)
    symbol: str = field(metadata=rule(bool, "a ticker symbol such as BTC"))
    algorithm: str = field(metadata=one_of(ALGORITHMS))
    p2pkh_prefix: int = field(metadata=between(0, 255))
    p2sh_prefix: int = field(metadata=between(0, 255))
    # BIP173 human-readable prefix, "" for coins without segwit addresses
    bech32_hrp: str = field(default="", metadata=rule(_is_hrp, "empty or 1..83 lower-case letters and digits"))
    # CashAddr prefix ("bitcoincash"), "" for coins without cashaddr addresses
    cashaddr_prefix: str = field(default="", metadata=rule(_is_cashaddr_prefix,
                                                          "empty or 1..40 lower-case letters and digits"))
    # getblocktemplate's "rules" (BIP9 deployments the pool understands) and any further keys of its request
    gbt_rules: tuple[str, ...] = field(default=(), metadata=rule(_is_word_list, "a list of non-empty strings",
                                                                 kind=list))
    gbt_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False,
                                          metadata=rule(kind=dict))
    coinbase_maturity: int = field(default=100, metadata=at_least(1, "at least 1 block"))
    # Consensus minimum size of every transaction, the coinbase included (Bitcoin Cash); the coinbase is padded
    min_tx_size: int = field(default=0, metadata=between(0, 1000, "bytes"))
    rpc_port: int = field(metadata=PORT)
    stratum_port: int = field(metadata=PORT)
    # Version bits a miner may roll (BIP310). Coins that use version bits for consensus narrow this.
    version_rolling_mask: int = field(default=0x1FFFE000, metadata=between(0, 0xFFFFFFFF))
    # Stratum difficulty 1 for scrypt coins is 65536 times easier than the sha256d diff-1 target
    # (the convention of cpuminer, cgminer and every Litecoin pool).
    share_multiplier: int = field(default=1, metadata=at_least(1))
    block_time_seconds: int = field(metadata=at_least(1, "at least 1 second"))
    # Blocks between subsidy halvings; 0 for a coin whose subsidy follows another schedule (DigiByte)
    halving_interval: int = field(default=0, metadata=at_least(0))
    segwit: bool = field(default=False, metadata=ANY)
    mweb: bool = field(default=False, metadata=ANY)
    # Derived from the fields above, once (read on the share path and in every log line):
    key: str = field(init=False, repr=False, compare=False)  # "bitcoin-mainnet", the COINS key
    diff1_target: int = field(init=False, repr=False, compare=False)  # the target of a share of difficulty 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", coin_key(self.name, self.network))
        object.__setattr__(self, "diff1_target", DIFF1_TARGET * self.share_multiplier)
        if not isinstance(self.gbt_params, MappingProxyType):
            object.__setattr__(self, "gbt_params", MappingProxyType(dict(self.gbt_params)))

    @property
    def algorithm_id(self) -> int:
        return ALGORITHMS[self.algorithm]

    @property
    def display_name(self) -> str:
        """``Bitcoin Cash regtest``: the coin's title and network, for people."""
        return f"{self.title or self.name} {self.network}"


def coin_key(name: str, network: str) -> str:
    """The key of ``name`` on ``network`` in :data:`COINS` (``Coin.key``)."""
    return f"{name}-{network}"


class CoinDefinitionError(ValueError):
    """A coin definition is wrong; the message names the coin, the network, the key and what is allowed."""


_DERIVED = ("name", "network", "key", "diff1_target")  # not keys of a definition
_TOML_TYPES: dict[type, tuple[type, ...]] = {int: (int,), str: (str,), bool: (bool,), list: (list,),
                                             dict: (dict,)}


def _field_rules() -> dict[str, tuple[type, Rule, bool]]:
    """Each definition key: (its TOML type, its rule, whether it has a default)."""
    kinds = {"str": str, "int": int, "bool": bool}
    out = {}
    for f in fields(Coin):
        if f.name in _DERIVED:
            continue
        r: Rule = f.metadata[RULE]
        kind = r.kind or kinds[str(f.type)]
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        out[f.name] = (kind, r, has_default)
    return out


_RULES = _field_rules()


def _check_value(where: str, key: str, value: Any) -> Any:
    kind, r, _ = _RULES[key]
    ok_type = isinstance(value, _TOML_TYPES[kind]) and not (kind is int and isinstance(value, bool))
    if not ok_type:
        raise CoinDefinitionError(f"{where}.{key}: {value!r} is not a {kind.__name__}"
                                  + (f" ({r.allowed})" if r.allowed else ""))
    if not r.check(value):
        raise CoinDefinitionError(f"{where}.{key}: {value!r} is not allowed; allowed: {r.allowed}")
    return tuple(value) if kind is list else value


def _coin(name: str, network: str, values: Mapping[str, Any], where: str) -> Coin:
    missing = [k for k, (_, _, has_default) in _RULES.items() if not has_default and k not in values]
    if missing:
        raise CoinDefinitionError(f"{where}: missing {', '.join(missing)} (in [{name}] or [{name}.{network}])")
    coin = Coin(name=name, network=network, **values)
    if coin.segwit and "segwit" not in coin.gbt_rules:
        raise CoinDefinitionError(f"{where}.gbt_rules: {list(coin.gbt_rules)!r} lacks \"segwit\"; "
                                  "a segwit coin must ask getblocktemplate for it")
    if coin.mweb and not coin.segwit:
        raise CoinDefinitionError(f"{where}.mweb: true needs segwit = true (MWEB is carried by segwit blocks)")
    if coin.segwit and not coin.bech32_hrp:
        raise CoinDefinitionError(f"{where}.bech32_hrp: required when segwit = true")
    if coin.p2pkh_prefix == coin.p2sh_prefix:
        raise CoinDefinitionError(f"{where}.p2sh_prefix: {coin.p2sh_prefix} equals p2pkh_prefix; they must differ")
    return coin


def parse_coin_definitions(data: Mapping[str, Any], source: str) -> dict[str, Coin]:
    """Coin definitions (the format above) -> coins by key; CoinDefinitionError names what is wrong."""
    coins: dict[str, Coin] = {}
    for name, table in data.items():
        where = f"{source}: {name}" if source else name
        if not _NAME.fullmatch(name):
            raise CoinDefinitionError(f"{where}: a coin name is 1..19 lower-case letters or digits")
        if not isinstance(table, dict):
            raise CoinDefinitionError(f"{where}: expected a table")
        shared: dict[str, Any] = {}
        networks: dict[str, dict[str, Any]] = {}
        for key, value in table.items():
            if key in _RULES:
                shared[key] = _check_value(where, key, value)
            elif isinstance(value, dict) and _NAME.fullmatch(key):
                networks[key] = value
            elif isinstance(value, dict):
                raise CoinDefinitionError(f"{where}.{key}: a network name is 1..19 lower-case letters or digits")
            else:
                raise CoinDefinitionError(f"{where}.{key}: unknown key; known: {', '.join(sorted(_RULES))}, "
                                          "or a table per network")
        if not networks:
            raise CoinDefinitionError(f"{where}: no network table (e.g. [{name}.mainnet])")
        for network, overrides in networks.items():
            net_where = f"{where}.{network}"
            values = dict(shared)
            for key, value in overrides.items():
                if key not in _RULES:
                    raise CoinDefinitionError(f"{net_where}.{key}: unknown key; known: {', '.join(sorted(_RULES))}")
                values[key] = _check_value(net_where, key, value)
            coin = _coin(name, network, values, net_where)
            coins[coin.key] = coin
    return coins


def _builtin() -> dict[str, Coin]:
    text = resources.files(__package__ or "stratum_pool").joinpath("coins.toml").read_text()
    return parse_coin_definitions(tomllib.loads(text), "coins.toml")


#: Every known coin by key: the built-in ones (coins.toml), plus those a loaded config defined (:func:`register`).
COINS: dict[str, Coin] = _builtin()
BUILTIN_KEYS = frozenset(COINS)


def register(coin: Coin) -> None:
    """Add an operator-defined coin (from the config) to :data:`COINS`, where the API and store look coins up.
    A built-in coin cannot be replaced: the config would then change what the rest of the process means."""
    if coin.key in BUILTIN_KEYS:
        raise CoinDefinitionError(f"{coin.key}: a built-in coin; define a coin of another name")
    COINS[coin.key] = coin


def get_coin(name: str, network: str) -> Coin:
    """The coin for ``name`` on ``network``; KeyError names what exists."""
    key = coin_key(name, network)
    try:
        return COINS[key]
    except KeyError:
        raise KeyError(f"unknown coin {key!r}; known: {', '.join(sorted(COINS))}") from None
