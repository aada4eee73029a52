"""Config validation: every shipped example loads, and each error names the key and the bad value."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from stratum_pool.config import (
    ApiSettings,
    CoinSettings,
    ConfigError,
    DaemonSettings,
    DatabaseSettings,
    Settings,
    VardiffSettings,
    load_settings,
    parse_settings,
)
from stratum_pool.server.limits import BanPolicy, ServerLimits
from stratum_pool.setting import RULE

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))


def minimal(**coin: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "coin": "bitcoin", "network": "regtest",
        "daemons": [{"url": "http://127.0.0.1:18443", "user": "u", "password": "p"}],
    }
    base.update(coin)
    return {"coins": [base]}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_config_loads(path: Path) -> None:
    settings = load_settings(path)
    assert settings.coins
    for cs in settings.coins:
        assert cs.daemons


def test_defaults_come_from_the_coin_table() -> None:
    cs = parse_settings(minimal()).coins[0]
    assert cs.coin.name == "bitcoin" and cs.coin.network == "regtest"
    assert cs.stratum_port == 3333
    assert cs.version_mask == 0x1FFFE000
    assert cs.mode == "solo"


def test_two_coins_on_one_port_is_refused() -> None:
    doc = minimal()
    doc["coins"].append(dict(doc["coins"][0], coin="litecoin", stratum_port=3333))
    with pytest.raises(ConfigError, match=r"coins\[1\]\.stratum_port: 3333 is already used"):
        parse_settings(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"coin": "dogecoin"}, r"coins\[0\]\.coin/network: 'dogecoin-regtest' is not a known coin"),
        ({"mode": "pps"}, r"coins\[0\]\.mode: 'pps' is not allowed; one of solo, pplns, prop"),
        ({"stratum_port": 70000}, r"coins\[0\]\.stratum_port: 70000 is not allowed; 0\.\.65535"),
        ({"stratum_port": "3333"}, r"coins\[0\]\.stratum_port: '3333' is a str; expected an integer"),
        ({"extranonce2_size": 1}, r"coins\[0\]\.extranonce2_size: 1 is not allowed; 2\.\.8 bytes"),
        ({"version_mask": "zz"}, r"coins\[0\]\.version_mask: 'zz' is not allowed; 8 hex digits"),
        ({"version_mask": "ffffffff"}, r"coins\[0\]\.version_mask: ffffffff allows bits outside"),
        ({"mode": "pplns"}, r"coins\[0\]\.pool_address: required when mode = 'pplns'"),
        ({"fee_percent": 1.5}, r"coins\[0\]\.fee_address: required when fee_percent is above 0"),
        ({"longpoll": "yes"}, r"coins\[0\]\.longpoll: 'yes' is a str; expected true/false"),
        ({"daemons": []}, r"coins\[0\]\.daemons: \[\] is not allowed"),
        ({"vardiff": {"initial": 0}}, r"coins\[0\]\.vardiff\.initial: 0\.0 is not allowed"),
        ({"vardiff": {"minimum": 5.0, "maximum": 1.0}}, r"coins\[0\]\.vardiff\.minimum: 5\.0 is above"),
        ({"vardiff": {"suggestion_policy": "max"}}, r"suggestion_policy: 'max' is not allowed; one of start"),
        ({"bogus": 1}, r"coins\[0\]\.bogus: unknown setting"),
        ({"notify_listen": "3390"}, r"coins\[0\]\.notify_listen: '3390' is not allowed; HOST:PORT"),
    ],
)
def test_bad_values_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(minimal(**change))


def test_daemon_needs_credentials() -> None:
    with pytest.raises(ConfigError, match=r"coins\[0\]\.daemons\[0\]: give password"):
        parse_settings(minimal(daemons=[{"url": "http://127.0.0.1:1"}]))


def test_bad_address_is_named_with_the_key() -> None:
    def check(address: str, coin: object) -> bytes:
        raise ValueError("bad checksum")

    with pytest.raises(ConfigError, match=r"coins\[0\]\.fee_address: 'xyz' is not a bitcoin-regtest address"):
        parse_settings(minimal(fee_percent=1.0, fee_address="xyz"), address_check=check)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[pool\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_config_examples_are_valid_toml() -> None:
    for path in CONFIGS:
        tomllib.loads(path.read_text())


def test_database_dsn_forms_and_a_bad_one_without_echoing_it() -> None:
    for dsn in ("postgresql://pool@127.0.0.1/pool", "host=127.0.0.1 dbname=pool user=pool"):
        assert parse_settings({**minimal(), "database": {"dsn": dsn}}).database.dsn == dsn
    with pytest.raises(ConfigError, match=r"database\.dsn: not a PostgreSQL connection string") as info:
        parse_settings({**minimal(), "database": {"dsn": "host=x password=s3cret 'unterminated"}})
    assert "s3cret" not in str(info.value)


def test_pool_modes_need_a_database() -> None:
    doc = minimal(mode="pplns", pool_address="x")
    with pytest.raises(ConfigError, match=r"database\.dsn: required when a coin's mode is pplns"):
        parse_settings(doc)


def test_every_settings_field_is_a_declared_key() -> None:
    """A field added without its rule would be silently unconfigurable: each names its key, default and bounds."""
    for cls in (DaemonSettings, VardiffSettings, CoinSettings, DatabaseSettings, ApiSettings, ServerLimits, BanPolicy):
        assert [f.name for f in fields(cls) if RULE not in f.metadata] == [], cls.__name__
    assert [f.name for f in fields(Settings) if RULE not in f.metadata] == ["source", "extra"]


def test_defaults_are_the_dataclass_defaults() -> None:
    s = parse_settings(minimal())
    assert (s.api, s.database, s.coins[0].vardiff) == (ApiSettings(), DatabaseSettings(), VardiffSettings())
    assert (s.node_id, s.workers, s.log_level, s.log_format) == (0, 1, "info", "auto")
    daemon = s.coins[0].daemons[0]
    assert daemon == DaemonSettings(name=daemon.url, url=daemon.url, user="u", password="p")


def test_api_max_connections() -> None:
    assert parse_settings(minimal()).api.max_connections == 256
    assert parse_settings({**minimal(), "api": {"max_connections": 20}}).api.max_connections == 20
    with pytest.raises(ConfigError, match=r"api\.max_connections: 0 is not allowed"):
        parse_settings({**minimal(), "api": {"max_connections": 0}})
