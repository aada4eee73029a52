"""One TOML file -> validated settings. Every error names the key, the bad value and what is allowed."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from stratum_pool.coins import COINS, Coin
from stratum_pool.limits import BanPolicy, ServerLimits

T = TypeVar("T")

MODES = ("solo", "pplns", "prop")
DIFFICULTY_POLICIES = ("start", "floor", "fixed")
LOG_FORMATS = ("auto", "json", "console")
DEFAULT_SPOOL_DIR = "/var/lib/stratum-pool/spool"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    name: str
    url: str
    user: str
    password: str
    cookie_file: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class VardiffSettings:
    initial: float = 1.0
    minimum: float = 1e-9
    maximum: float = 1e15
    target_seconds: float = 15.0
    retarget_seconds: float = 60.0
    # What a miner's suggest_difficulty / d= does: the starting point (vardiff moves from it), a floor,
    # or a fixed difficulty.
    suggestion_policy: str = "start"


@dataclass(frozen=True, slots=True)
class CoinSettings:
    coin: Coin
    mode: str
    stratum_host: str
    stratum_port: int
    daemons: tuple[DaemonSettings, ...]
    vardiff: VardiffSettings
    extranonce2_size: int = 4
    pool_tag: str = "/stratum-pool/"
    pool_address: str = ""
    fee_address: str = ""
    fee_percent: float = 0.0
    template_refresh_seconds: float = 30.0
    poll_interval_seconds: float = 2.0
    longpoll: bool = True
    zmq_hashblock: str = ""
    notify_listen: str = ""  # host:port for `stratum-pool notify` (-blocknotify); "" = off
    version_mask: int = 0
    # PPLNS: the last N shares by difficulty, N = this factor times the network difficulty of the block.
    pplns_window_factor: float = 2.0
    # Accounts are paid once their confirmed balance reaches this (base units); per-account overrides in DB.
    payout_threshold: int = 1_000_000
    # At most this many outputs in one sendmany.
    payout_batch_max: int = 200
    # The wallet RPC the payout worker pays from (defaults to the first daemon); bcoin serves it on its own port.
    wallet: DaemonSettings | None = None

    @property
    def fee_ppm(self) -> int:
        return round(self.fee_percent * 10_000)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    dsn: str = ""  # "" = no database: shares are counted in memory only (solo mining without accounting)
    spool_dir: str = DEFAULT_SPOOL_DIR


@dataclass(frozen=True, slots=True)
class ApiSettings:
    enabled: bool = True
    host: str = "127.0.0.1"  # loopback by default: put a reverse proxy in front to publish it
    port: int = 8080
    requests_per_second: float = 5.0
    burst: int = 40
    client_ip_header: str = ""  # e.g. "X-Forwarded-For" behind a reverse proxy
    metrics_enabled: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    coins: tuple[CoinSettings, ...]
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    limits: ServerLimits = field(default_factory=ServerLimits)
    bans: BanPolicy = field(default_factory=BanPolicy)
    node_id: int = 0
    # Processes sharing each stratum port (SO_REUSEPORT), each with its own slice of the extranonce1 space.
    workers: int = 1
    log_level: str = "info"
    log_format: str = "auto"
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _get(table: Mapping[str, Any], key: str, path: str, kind: type[T] | tuple[type, ...],
         default: Any = ..., check: Callable[[Any], bool] | None = None, allowed: str = "") -> Any:
    full = f"{path}.{key}" if path else key
    if key not in table:
        if default is ...:
            raise ConfigError(f"{full}: missing (required{'; ' + allowed if allowed else ''})")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # TOML integers are fine where floats are asked for; booleans are never numbers here.
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{full}: {value!r} is a boolean; expected {_kind_names(kinds)}")
    if not isinstance(value, kinds):
        raise ConfigError(f"{full}: {value!r} is a {type(value).__name__}; expected {_kind_names(kinds)}")
    if check is not None and not check(value):
        raise ConfigError(f"{full}: {value!r} is not allowed; {allowed or 'see the example configs'}")
    return value


def _kind_names(kinds: tuple[type, ...]) -> str:
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false",
                        "list": "a list", "dict": "a table"}.get(k.__name__, k.__name__) for k in kinds)


def _check_unknown(table: Mapping[str, Any], known: set[str], path: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{path + '.' if path else ''}{key}: unknown setting; known: {', '.join(sorted(known))}")


def _port(v: int) -> bool:
    return 0 <= v <= 65535


def _daemon(table: Mapping[str, Any], path: str, default_port: int) -> DaemonSettings:
    _check_unknown(table, {"name", "url", "user", "password", "cookie_file", "timeout_seconds"}, path)
    url = _get(table, "url", path, str, f"http://127.0.0.1:{default_port}",
               lambda u: u.startswith(("http://", "https://")), "an http:// or https:// URL")
    cookie = _get(table, "cookie_file", path, str, "")
    user = _get(table, "user", path, str, "")
    password = _get(table, "password", path, str, "")
    if not cookie and not password:
        raise ConfigError(f"{path}: give password (with user) or cookie_file for the daemon's RPC")
    return DaemonSettings(
        name=_get(table, "name", path, str, url),
        url=url, user=user, password=password, cookie_file=cookie,
        timeout_seconds=_get(table, "timeout_seconds", path, float, 30.0, lambda v: v > 0, "more than 0"),
    )


def _dsn(db: Mapping[str, Any]) -> str:
    value = _get(db, "dsn", "database", str, "")
    if value:
        import psycopg

        try:
            psycopg.conninfo.conninfo_to_dict(value)
        except psycopg.ProgrammingError:
            # the value may hold a password: name the key, not the value
            raise ConfigError("database.dsn: not a PostgreSQL connection string (postgresql://USER@HOST/DB "
                              "or 'host=... dbname=...')") from None
    return str(value)


def _wallet(table: Mapping[str, Any], path: str, default_port: int) -> DaemonSettings | None:
    wallet = table.get("wallet")
    if wallet is None:
        return None
    if not isinstance(wallet, dict):
        raise ConfigError(f"{path}.wallet: expected a table")
    return _daemon(wallet, f"{path}.wallet", default_port)


def _vardiff(table: Mapping[str, Any], path: str) -> VardiffSettings:
    d = VardiffSettings()
    _check_unknown(table, set(VardiffSettings.__slots__), path)
    positive = (lambda v: v > 0), "a number above 0"
    vs = VardiffSettings(
        initial=_get(table, "initial", path, float, d.initial, *positive),
        minimum=_get(table, "minimum", path, float, d.minimum, *positive),
        maximum=_get(table, "maximum", path, float, d.maximum, *positive),
        target_seconds=_get(table, "target_seconds", path, float, d.target_seconds, *positive),
        retarget_seconds=_get(table, "retarget_seconds", path, float, d.retarget_seconds, *positive),
        suggestion_policy=_get(table, "suggestion_policy", path, str, d.suggestion_policy,
                               lambda v: v in DIFFICULTY_POLICIES, f"one of {', '.join(DIFFICULTY_POLICIES)}"),
    )
    if vs.minimum > vs.maximum:
        raise ConfigError(f"{path}.minimum: {vs.minimum} is above {path}.maximum ({vs.maximum})")
    if not vs.minimum <= vs.initial <= vs.maximum:
        raise ConfigError(f"{path}.initial: {vs.initial} is outside [minimum, maximum] = [{vs.minimum}, {vs.maximum}]")
    return vs


_COIN_KEYS = {"coin", "network", "mode", "stratum_host", "stratum_port", "daemons", "vardiff",
              "extranonce2_size", "pool_tag", "pool_address", "fee_address", "fee_percent",
              "template_refresh_seconds", "poll_interval_seconds", "longpoll", "zmq_hashblock",
              "notify_listen", "version_mask", "pplns_window_factor", "payout_threshold", "payout_batch_max",
              "wallet"}


def _coin(table: Mapping[str, Any], path: str, address_check: Callable[[str, Coin], object] | None) -> CoinSettings:
    _check_unknown(table, _COIN_KEYS, path)
    name = _get(table, "coin", path, str, ...,)
    network = _get(table, "network", path, str, "mainnet")
    key = f"{name}-{network}"
    if key not in COINS:
        raise ConfigError(f"{path}.coin/network: {key!r} is not a known coin; known: {', '.join(sorted(COINS))}")
    coin = COINS[key]
    mode = _get(table, "mode", path, str, "solo", lambda v: v in MODES, f"one of {', '.join(MODES)}")
    daemons_raw = _get(table, "daemons", path, list, ..., lambda v: len(v) > 0, "at least one [[...daemons]] table")
    daemons = []
    for i, d in enumerate(daemons_raw):
        if not isinstance(d, dict):
            raise ConfigError(f"{path}.daemons[{i}]: expected a table")
        daemons.append(_daemon(d, f"{path}.daemons[{i}]", coin.rpc_port))
    vd = table.get("vardiff", {})
    if not isinstance(vd, dict):
        raise ConfigError(f"{path}.vardiff: expected a table")
    mask_text = _get(table, "version_mask", path, str, f"{coin.version_rolling_mask:08x}",
                     _is_hex32, "8 hex digits, e.g. 1fffe000")
    mask = int(mask_text, 16)
    if mask & ~coin.version_rolling_mask:
        raise ConfigError(f"{path}.version_mask: {mask_text} allows bits outside what {key} permits "
                          f"({coin.version_rolling_mask:08x})")
    cs = CoinSettings(
        coin=coin, mode=mode,
        stratum_host=_get(table, "stratum_host", path, str, "0.0.0.0"),
        stratum_port=_get(table, "stratum_port", path, int, coin.stratum_port, _port, "0..65535"),
        daemons=tuple(daemons),
        vardiff=_vardiff(vd, f"{path}.vardiff"),
        extranonce2_size=_get(table, "extranonce2_size", path, int, 4, lambda v: 2 <= v <= 8, "2..8 bytes"),
        pool_tag=_get(table, "pool_tag", path, str, "/stratum-pool/", lambda v: len(v.encode()) <= 40,
                      "at most 40 bytes"),
        pool_address=_get(table, "pool_address", path, str, ""),
        fee_address=_get(table, "fee_address", path, str, ""),
        fee_percent=_get(table, "fee_percent", path, float, 0.0, lambda v: 0 <= v < 100, "0 <= percent < 100"),
        template_refresh_seconds=_get(table, "template_refresh_seconds", path, float, 30.0,
                                      lambda v: v >= 1, "at least 1"),
        poll_interval_seconds=_get(table, "poll_interval_seconds", path, float, 2.0, lambda v: v > 0, "above 0"),
        longpoll=_get(table, "longpoll", path, bool, True),
        zmq_hashblock=_get(table, "zmq_hashblock", path, str, ""),
        notify_listen=_get(table, "notify_listen", path, str, "", _is_hostport_or_empty, "HOST:PORT or empty"),
        version_mask=mask,
        pplns_window_factor=_get(table, "pplns_window_factor", path, float, 2.0, lambda v: 0 < v <= 100,
                                 "above 0, at most 100"),
        payout_threshold=_get(table, "payout_threshold", path, int, 1_000_000, lambda v: v > 0,
                              "a positive amount in base units (satoshis)"),
        payout_batch_max=_get(table, "payout_batch_max", path, int, 200, lambda v: 1 <= v <= 2000, "1..2000"),
        wallet=_wallet(table, path, coin.rpc_port),
    )
    if mode != "solo" and not cs.pool_address:
        raise ConfigError(f"{path}.pool_address: required when mode = {mode!r} (the coinbase pays the pool)")
    if cs.fee_percent > 0 and not cs.fee_address:
        raise ConfigError(f"{path}.fee_address: required when fee_percent is above 0")
    if address_check is not None:
        for k in ("pool_address", "fee_address"):
            value = getattr(cs, k)
            if value:
                try:
                    address_check(value, coin)
                except ValueError as exc:
                    raise ConfigError(f"{path}.{k}: {value!r} is not a {key} address: {exc}") from None
    return cs


def _is_hex32(v: str) -> bool:
    try:
        return len(v) == 8 and int(v, 16) >= 0
    except ValueError:
        return False


def _is_hostport_or_empty(v: str) -> bool:
    if not v:
        return True
    host, _, port = v.rpartition(":")
    return bool(host) and port.isdigit() and _port(int(port))


def _limits(data: Mapping[str, Any]) -> ServerLimits:
    raw = data.get("limits", {})
    if not isinstance(raw, dict):
        raise ConfigError("limits: expected a table")
    _check_unknown(raw, set(ServerLimits.__slots__), "limits")
    d, p = ServerLimits(), "limits"
    positive = (lambda v: v > 0), "above 0"
    limits = ServerLimits(
        max_line_bytes=_get(raw, "max_line_bytes", p, int, d.max_line_bytes, lambda v: 1024 <= v <= 1 << 20,
                            "1024..1048576 bytes"),
        max_write_buffer_bytes=_get(raw, "max_write_buffer_bytes", p, int, d.max_write_buffer_bytes,
                                    lambda v: 16 * 1024 <= v <= 1 << 30, "16384..1073741824 bytes"),
        max_connections=_get(raw, "max_connections", p, int, d.max_connections, lambda v: v >= 1, "at least 1"),
        max_connections_per_ip=_get(raw, "max_connections_per_ip", p, int, d.max_connections_per_ip,
                                    lambda v: v >= 1, "at least 1"),
        subscribe_timeout_seconds=_get(raw, "subscribe_timeout_seconds", p, float, d.subscribe_timeout_seconds,
                                       *positive),
        authorize_timeout_seconds=_get(raw, "authorize_timeout_seconds", p, float, d.authorize_timeout_seconds,
                                       *positive),
        idle_timeout_seconds=_get(raw, "idle_timeout_seconds", p, float, d.idle_timeout_seconds, *positive),
        submits_per_second=_get(raw, "submits_per_second", p, float, d.submits_per_second, lambda v: v >= 0,
                                "0 (unlimited) or more"),
        submit_burst=_get(raw, "submit_burst", p, int, d.submit_burst, lambda v: v >= 1, "at least 1"),
        max_workers_per_account=_get(raw, "max_workers_per_account", p, int, d.max_workers_per_account,
                                     lambda v: v >= 0, "0 (unlimited) or more"),
    )
    if limits.max_connections_per_ip > limits.max_connections:
        raise ConfigError(f"limits.max_connections_per_ip: {limits.max_connections_per_ip} is above "
                          f"limits.max_connections ({limits.max_connections})")
    return limits


def _bans(data: Mapping[str, Any]) -> BanPolicy:
    raw = data.get("bans", {})
    if not isinstance(raw, dict):
        raise ConfigError("bans: expected a table")
    _check_unknown(raw, set(BanPolicy.__slots__), "bans")
    d, p = BanPolicy(), "bans"
    positive = (lambda v: v > 0), "above 0"
    return BanPolicy(
        enabled=_get(raw, "enabled", p, bool, d.enabled),
        duration_seconds=_get(raw, "duration_seconds", p, float, d.duration_seconds, *positive),
        window_seconds=_get(raw, "window_seconds", p, float, d.window_seconds, *positive),
        invalid_ratio=_get(raw, "invalid_ratio", p, float, d.invalid_ratio, lambda v: 0 < v <= 1,
                           "above 0, at most 1"),
        min_shares=_get(raw, "min_shares", p, int, d.min_shares, lambda v: v >= 1, "at least 1"),
        max_malformed=_get(raw, "max_malformed", p, int, d.max_malformed, lambda v: v >= 1, "at least 1"),
    )


def parse_settings(data: Mapping[str, Any], source: str = "",
                   address_check: Callable[[str, Coin], object] | None = None) -> Settings:
    """Validate a parsed TOML document."""
    _check_unknown(data, {"pool", "coins", "database", "api", "limits", "bans"}, "")
    api_raw = data.get("api", {})
    if not isinstance(api_raw, dict):
        raise ConfigError("api: expected a table")
    _check_unknown(api_raw, set(ApiSettings.__slots__), "api")
    a = ApiSettings()
    api = ApiSettings(
        enabled=_get(api_raw, "enabled", "api", bool, a.enabled),
        host=_get(api_raw, "host", "api", str, a.host, lambda v: bool(v), "a host name or address"),
        port=_get(api_raw, "port", "api", int, a.port, _port, "0..65535"),
        requests_per_second=_get(api_raw, "requests_per_second", "api", float, a.requests_per_second,
                                 lambda v: v > 0, "above 0"),
        burst=_get(api_raw, "burst", "api", int, a.burst, lambda v: v >= 1, "at least 1"),
        client_ip_header=_get(api_raw, "client_ip_header", "api", str, a.client_ip_header),
        metrics_enabled=_get(api_raw, "metrics_enabled", "api", bool, a.metrics_enabled),
    )
    db = data.get("database", {})
    if not isinstance(db, dict):
        raise ConfigError("database: expected a table")
    _check_unknown(db, {"dsn", "spool_dir"}, "database")
    database = DatabaseSettings(
        dsn=_dsn(db),
        spool_dir=_get(db, "spool_dir", "database", str, DEFAULT_SPOOL_DIR, lambda v: bool(v),
                       "a directory path"),
    )
    pool = data.get("pool", {})
    if not isinstance(pool, dict):
        raise ConfigError("pool: expected a table")
    _check_unknown(pool, {"node_id", "workers", "log_level", "log_format"}, "pool")
    coins_raw = _get(data, "coins", "", list, ..., lambda v: len(v) > 0, "at least one [[coins]] table")
    coins = []
    ports: dict[int, str] = {}
    for i, c in enumerate(coins_raw):
        if not isinstance(c, dict):
            raise ConfigError(f"coins[{i}]: expected a table")
        cs = _coin(c, f"coins[{i}]", address_check)
        if cs.stratum_port and cs.stratum_port in ports:
            raise ConfigError(f"coins[{i}].stratum_port: {cs.stratum_port} is already used by {ports[cs.stratum_port]}")
        ports[cs.stratum_port] = f"coins[{i}]"
        coins.append(cs)
    if database.dsn == "" and any(cs.mode != "solo" for cs in coins):
        raise ConfigError("database.dsn: required when a coin's mode is pplns or prop (credits live there)")
    return Settings(
        coins=tuple(coins),
        database=database,
        api=api,
        limits=_limits(data),
        bans=_bans(data),
        node_id=_get(pool, "node_id", "pool", int, 0, lambda v: 0 <= v <= 255, "0..255"),
        workers=_get(pool, "workers", "pool", int, 1, lambda v: 1 <= v <= 64, "1..64"),
        log_level=_get(pool, "log_level", "pool", str, "info",
                       lambda v: v in ("debug", "info", "warning", "error"), "debug, info, warning or error"),
        log_format=_get(pool, "log_format", "pool", str, "auto", lambda v: v in LOG_FORMATS,
                        f"one of {', '.join(LOG_FORMATS)}"),
        source=source,
    )


def load_settings(path: str | Path, address_check: Callable[[str, Coin], object] | None = None) -> Settings:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_settings(data, str(p), address_check)
