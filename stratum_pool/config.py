"""One TOML file -> validated settings. Every error names the key, the bad value and what is allowed."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Set
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast, get_type_hints

from stratum_pool.coins import (
    BUILTIN_KEYS,
    COINS,
    Coin,
    CoinDefinitionError,
    coin_key,
    parse_coin_definitions,
    register,
)
from stratum_pool.server.limits import BanPolicy, ServerLimits
from stratum_pool.server.tls import TlsError, server_context
from stratum_pool.setting import ANY, PORT, RULE, TABLE, Rule, above, at_least, between, is_port, one_of, rule
from stratum_pool.shares.core import MAX_EXTRANONCE2_SIZE, MIN_EXTRANONCE2_SIZE
from stratum_pool.shares.vardiff import SUGGESTION_POLICIES
from stratum_pool.webhooks.settings import NotifySettings

T = TypeVar("T")

MODES = ("solo", "pplns", "prop")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
_OR_LEVELS = f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}"  # "debug, info, warning or error"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the key."""


def _is_hex32(v: str) -> bool:
    try:
        return len(v) == 8 and int(v, 16) >= 0
    except ValueError:
        return False


def _is_hostport_or_empty(v: str) -> bool:
    if not v:
        return True
    host, _, port = v.rpartition(":")
    return bool(host) and port.isdigit() and is_port(int(port))


# Each field that is a config key declares its default and bounds once (setting.py); the loader below walks
# dataclasses.fields(). A key without a default is required, unless the loader derives one (from the coin).


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    name: str = field(metadata=ANY)  # the url by default
    url: str = field(metadata=rule(lambda u: u.startswith(("http://", "https://")), "an http:// or https:// URL"))
    user: str = field(default="", metadata=ANY)
    password: str = field(default="", metadata=ANY)
    cookie_file: str = field(default="", metadata=ANY)
    timeout_seconds: float = field(default=30.0, metadata=above(0, allowed="more than 0"))


_POSITIVE = above(0, allowed="a number above 0")


@dataclass(frozen=True, slots=True)
class VardiffSettings:
    initial: float = field(default=1.0, metadata=_POSITIVE)
    minimum: float = field(default=1e-9, metadata=_POSITIVE)
    maximum: float = field(default=1e15, metadata=_POSITIVE)
    target_seconds: float = field(default=15.0, metadata=_POSITIVE)
    retarget_seconds: float = field(default=60.0, metadata=_POSITIVE)
    # What a miner's suggest_difficulty / d= does: the starting point (vardiff moves from it), a floor,
    # or a fixed difficulty.
    suggestion_policy: str = field(default="start", metadata=one_of(SUGGESTION_POLICIES))


@dataclass(frozen=True, slots=True, kw_only=True)
class CoinSettings:
    coin: Coin = field(metadata=rule(kind=str))  # with `network` ("mainnet" by default): a key of COINS
    mode: str = field(default="solo", metadata=one_of(MODES))
    stratum_host: str = field(default="0.0.0.0", metadata=ANY)
    stratum_port: int = field(metadata=PORT)  # the coin's by default
    daemons: tuple[DaemonSettings, ...] = field(
        metadata=rule(lambda v: len(v) > 0, "at least one [[...daemons]] table", kind=list, table=True))
    vardiff: VardiffSettings = field(default_factory=VardiffSettings, metadata=TABLE)
    extranonce2_size: int = field(default=4, metadata=between(MIN_EXTRANONCE2_SIZE, MAX_EXTRANONCE2_SIZE, "bytes"))
    pool_tag: str = field(default="/stratum-pool/", metadata=rule(lambda v: len(v.encode()) <= 40, "at most 40 bytes"))
    pool_address: str = field(default="", metadata=ANY)
    fee_address: str = field(default="", metadata=ANY)
    fee_percent: float = field(default=0.0, metadata=rule(lambda v: 0 <= v < 100, "0 <= percent < 100"))
    template_refresh_seconds: float = field(default=30.0, metadata=at_least(1))
    poll_interval_seconds: float = field(default=2.0, metadata=above(0))
    longpoll: bool = field(default=True, metadata=ANY)
    zmq_hashblock: str = field(default="", metadata=ANY)
    # host:port for `stratum-pool notify` (-blocknotify); "" = off
    notify_listen: str = field(default="", metadata=rule(_is_hostport_or_empty, "HOST:PORT or empty"))
    # 8 hex digits in the file, the coin's version_rolling_mask by default
    version_mask: int = field(default=0, metadata=rule(_is_hex32, "8 hex digits, e.g. 1fffe000", kind=str))
    # PPLNS: the last N shares by difficulty, N = this factor times the network difficulty of the block.
    pplns_window_factor: float = field(default=2.0, metadata=above(0, at_most=100))
    # Accounts are paid once their confirmed balance reaches this (base units); per-account overrides in DB.
    payout_threshold: int = field(default=1_000_000,
                                  metadata=above(0, allowed="a positive amount in base units (satoshis)"))
    # At most this many outputs in one sendmany.
    payout_batch_max: int = field(default=200, metadata=between(1, 2000))
    # The wallet RPC the payout worker pays from (defaults to the first daemon); bcoin serves it on its own port.
    wallet: DaemonSettings | None = field(default=None, metadata=TABLE)
    # Stratum V2 (Noise-encrypted): its port (0 = off) and the authority key file (`stratum-pool sv2-keys`).
    sv2_port: int = field(default=0, metadata=PORT)
    sv2_authority_key_file: str = field(default="", metadata=ANY)
    # stratum+tls: with a certificate (PEM, chain after the leaf) and its key, the same sessions on tls_port
    # too (on stratum_host; TLS 1.2 and 1.3); both files are re-read on SIGHUP (renewals). "" = no TLS port.
    tls_cert_file: str = field(default="", metadata=ANY)
    tls_key_file: str = field(default="", metadata=ANY)
    tls_port: int = field(default=3443, metadata=PORT)
    # stratum_port sits behind a load balancer or TLS terminator (HAProxy send-proxy / send-proxy-v2, nginx
    # proxy_protocol): each connection starts with a PROXY v1 or v2 header naming the client, whose address
    # limits, bans, logs and metrics use; a connection without one is closed. Never on a port clients reach
    # directly (they could name any address); off, a header is refused as a protocol error.
    proxy_protocol: bool = field(default=False, metadata=ANY)
    # the same for tls_port, behind a TCP proxy that passes TLS through (the header comes before the handshake)
    tls_proxy_protocol: bool = field(default=False, metadata=ANY)
    # a miner that subscribes again with its session id within this long of its disconnect (from the same
    # address, on the same process) gets its extranonce1, difficulty and jobs back; 0 = never
    resume_seconds: float = field(default=120.0, metadata=at_least(0, "0 (never) or more seconds"))

    @property
    def fee_ppm(self) -> int:
        return round(self.fee_percent * 10_000)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    # "" = no database: shares are counted in memory only (solo mining without accounting)
    dsn: str = field(default="", metadata=ANY)
    spool_dir: str = field(default="/var/lib/stratum-pool/spool", metadata=rule(bool, "a directory path"))
    # Found blocks without a database (kept across restarts): "" = found-blocks.jsonl in spool_dir.
    found_blocks_file: str = field(default="", metadata=ANY)
    # days of shares kept in the shares table (whole daily partitions dropped after); 0 keeps them all. A
    # partition a pending block's window or an open PROP round still needs is kept (store/retention.py).
    retention_days: int = field(default=0, metadata=at_least(0, "0 (keep every share) or a number of days"))
    # The spool's group commit: accepted shares of this many milliseconds (counted from the first) are made
    # durable with one fdatasync, and their miners answered then. Longer: less CPU per share, later answers.
    group_commit_ms: float = field(default=2.0, metadata=at_least(0, "0 (every batch at once) or more milliseconds"))
    # While shares flow, the loader copies them into PostgreSQL at most this often (in one transaction): longer
    # costs less CPU per share and shows them later (a trickle of shares is loaded as it comes).
    load_interval_seconds: float = field(default=1.0, metadata=_POSITIVE)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    enabled: bool = field(default=True, metadata=ANY)
    # loopback by default: put a reverse proxy in front to publish it
    host: str = field(default="127.0.0.1", metadata=rule(bool, "a host name or address"))
    port: int = field(default=8080, metadata=PORT)
    requests_per_second: float = field(default=5.0, metadata=above(0))
    burst: int = field(default=40, metadata=at_least(1))
    client_ip_header: str = field(default="", metadata=ANY)  # e.g. "X-Forwarded-For" behind a reverse proxy
    metrics_enabled: bool = field(default=True, metadata=ANY)
    # open connections at once; past it new ones are closed unanswered (stratum_pool_api_connections_refused_total)
    max_connections: int = field(default=256, metadata=at_least(1))


@dataclass(frozen=True, slots=True)
class Settings:
    """The tables (``metadata=TABLE``) are top-level TOML tables; the other keys live in ``[pool]``."""

    coins: tuple[CoinSettings, ...] = field(
        metadata=rule(lambda v: len(v) > 0, "at least one [[coins]] table", kind=list, table=True))
    database: DatabaseSettings = field(default_factory=DatabaseSettings, metadata=TABLE)
    api: ApiSettings = field(default_factory=ApiSettings, metadata=TABLE)
    limits: ServerLimits = field(default_factory=ServerLimits, metadata=TABLE)
    bans: BanPolicy = field(default_factory=BanPolicy, metadata=TABLE)
    # [[notify]] tables: webhooks for found blocks, workers offline and back, payouts
    notify: tuple[NotifySettings, ...] = field(default=(), metadata=rule(kind=list, table=True))
    node_id: int = field(default=0, metadata=between(0, 255))
    # Processes sharing each stratum port (SO_REUSEPORT), each with its own slice of the extranonce1 space.
    workers: int = field(default=1, metadata=between(1, 64))
    # unix socket of the running pool for `stratum-pool bans lift` ("" = none), e.g. /run/stratum-pool/admin.sock
    admin_socket: str = field(default="", metadata=ANY)
    log_level: str = field(default="info", metadata=one_of(LOG_LEVELS, _OR_LEVELS))
    log_format: str = field(default="auto", metadata=one_of(LOG_FORMATS))
    # [coin_definitions.NAME]: coins the operator adds, in the format of the built-in coins.toml
    coin_definitions: tuple[Coin, ...] = field(default=(), metadata=rule(kind=dict, table=True))
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


def _check_unknown(table: Mapping[str, Any], known: Set[str], path: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{path + '.' if path else ''}{key}: unknown setting; known: {', '.join(sorted(known))}")


@cache
def _keys(cls: type) -> dict[str, tuple[Field[Any], Rule, type]]:
    """The config keys of a settings dataclass: each field with a Rule, its rule and its TOML type."""
    hints = get_type_hints(cls)
    keys = {}
    for f in fields(cls):
        r = f.metadata.get(RULE)
        if r is not None:
            keys[f.name] = (f, r, r.kind or (dict if r.table else hints[f.name]))
    return keys


def _names(cls: type, tables: bool) -> frozenset[str]:
    """The keys of ``cls`` that are (``tables``) or are not TOML tables of their own."""
    return frozenset(name for name, (_, r, _) in _keys(cls).items() if r.table == tables)


def _value(cls: type, key: str, table: Mapping[str, Any], path: str, default: Any = MISSING) -> Any:
    """``table[key]`` checked by the rule of ``cls``'s field ``key``; absent: ``default``, else the field's
    default, else an error (required)."""
    f, r, kind = _keys(cls)[key]
    if default is MISSING:
        default = ... if f.default is MISSING else f.default
    return _get(table, key, path, kind, default, r.check, r.allowed)


def _values(cls: type, table: Mapping[str, Any], path: str, given: Mapping[str, Any] | None = None,
            defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every key of ``cls`` that is not a table, read from ``table`` (``defaults`` before the fields'), after
    the ones ``given`` (read by the caller)."""
    values = dict(given or {})
    defaults = defaults or {}
    for key, (_, r, _) in _keys(cls).items():
        if not r.table and key not in values:
            values[key] = _value(cls, key, table, path, defaults.get(key, MISSING))
    return values


def _table(data: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    """The sub-table ``data[key]``, None when absent."""
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{path + '.' if path else ''}{key}: expected a table")
    return value


def _daemon(table: Mapping[str, Any], path: str, default_port: int) -> DaemonSettings:
    _check_unknown(table, _keys(DaemonSettings).keys(), path)
    url = _value(DaemonSettings, "url", table, path, f"http://127.0.0.1:{default_port}")
    daemon = DaemonSettings(**_values(DaemonSettings, table, path, {"url": url}, {"name": url}))
    if not daemon.cookie_file and not daemon.password:
        raise ConfigError(f"{path}: give password (with user) or cookie_file for the daemon's RPC")
    return daemon


def _dsn(db: Mapping[str, Any]) -> str:
    value = _value(DatabaseSettings, "dsn", db, "database")
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
    wallet = _table(table, "wallet", path)
    return None if wallet is None else _daemon(wallet, f"{path}.wallet", default_port)


def _vardiff(table: Mapping[str, Any], path: str) -> VardiffSettings:
    _check_unknown(table, _keys(VardiffSettings).keys(), path)
    vs = VardiffSettings(**_values(VardiffSettings, table, path))
    if vs.minimum > vs.maximum:
        raise ConfigError(f"{path}.minimum: {vs.minimum} is above {path}.maximum ({vs.maximum})")
    if not vs.minimum <= vs.initial <= vs.maximum:
        raise ConfigError(f"{path}.initial: {vs.initial} is outside [minimum, maximum] = [{vs.minimum}, {vs.maximum}]")
    return vs


def _coin_definitions(data: Mapping[str, Any]) -> dict[str, Coin]:
    """The coins ``[coin_definitions.NAME]`` adds (coins.toml's format), by key; none may be a built-in one."""
    table = _table(data, "coin_definitions", "") or {}
    try:
        defined = parse_coin_definitions(table, "")
    except CoinDefinitionError as exc:
        raise ConfigError(f"coin_definitions.{exc}") from None
    for key, coin in defined.items():
        if key in BUILTIN_KEYS:
            raise ConfigError(f"coin_definitions.{coin.name}.{coin.network}: {key!r} is a built-in coin; "
                              "give the coin another name")
    return defined


def _coin(table: Mapping[str, Any], path: str, address_check: Callable[[str, Coin], object] | None,
          defined: Mapping[str, Coin] | None = None) -> CoinSettings:
    _check_unknown(table, _keys(CoinSettings).keys() | {"network"}, path)
    name = _value(CoinSettings, "coin", table, path)
    key = coin_key(name, _get(table, "network", path, str, "mainnet"))
    known = {**{k: c for k, c in COINS.items() if k in BUILTIN_KEYS}, **(defined or {})}
    if key not in known:
        raise ConfigError(f"{path}.coin/network: {key!r} is not a known coin; known: {', '.join(sorted(known))} "
                          "(or define it under [coin_definitions])")
    coin = known[key]
    daemons = []
    for i, d in enumerate(_value(CoinSettings, "daemons", table, path)):
        if not isinstance(d, dict):
            raise ConfigError(f"{path}.daemons[{i}]: expected a table")
        daemons.append(_daemon(d, f"{path}.daemons[{i}]", coin.rpc_port))
    vardiff = _vardiff(_table(table, "vardiff", path) or {}, f"{path}.vardiff")
    mask_text = _value(CoinSettings, "version_mask", table, path, f"{coin.version_rolling_mask:08x}")
    mask = int(mask_text, 16)
    if mask & ~coin.version_rolling_mask:
        raise ConfigError(f"{path}.version_mask: {mask_text} allows bits outside what {key} permits "
                          f"({coin.version_rolling_mask:08x})")
    given = {"coin": coin, "daemons": tuple(daemons), "vardiff": vardiff, "version_mask": mask,
             "wallet": _wallet(table, path, coin.rpc_port)}
    cs = CoinSettings(**_values(CoinSettings, table, path, given, {"stratum_port": coin.stratum_port}))
    if cs.mode != "solo" and not cs.pool_address:
        raise ConfigError(f"{path}.pool_address: required when mode = {cs.mode!r} (the coinbase pays the pool)")
    if cs.fee_percent > 0 and not cs.fee_address:
        raise ConfigError(f"{path}.fee_address: required when fee_percent is above 0")
    if cs.sv2_port and not cs.sv2_authority_key_file:
        raise ConfigError(f"{path}.sv2_authority_key_file: required when sv2_port is set "
                          "(make one with `stratum-pool sv2-keys --out FILE`)")
    _check_tls(cs, path)
    if address_check is not None:
        for k in ("pool_address", "fee_address"):
            value = getattr(cs, k)
            if value:
                try:
                    address_check(value, coin)
                except ValueError as exc:
                    raise ConfigError(f"{path}.{k}: {value!r} is not a {key} address: {exc}") from None
    return cs


def _check_tls(cs: CoinSettings, path: str) -> None:
    """Both TLS files or neither, and they load (the text names the key, the file and why not)."""
    if bool(cs.tls_cert_file) != bool(cs.tls_key_file):
        given, missing = ("tls_cert_file", "tls_key_file") if cs.tls_cert_file else ("tls_key_file", "tls_cert_file")
        raise ConfigError(f"{path}.{missing}: required with {given} ({getattr(cs, given)!r}); give both or neither")
    if cs.tls_cert_file:
        if cs.tls_port == cs.stratum_port and cs.tls_port != 0:
            raise ConfigError(f"{path}.tls_port: {cs.tls_port} is the stratum_port; give another port")
        try:
            server_context(cs.tls_cert_file, cs.tls_key_file)
        except TlsError as exc:
            raise ConfigError(f"{path}.tls_cert_file: {cs.tls_cert_file!r} is not allowed; a PEM certificate "
                              f"matching tls_key_file: {exc}") from None


def _section(data: Mapping[str, Any], key: str, cls: type[T]) -> T:
    """The top-level table ``key`` read into ``cls`` (its defaults when absent)."""
    raw, settings = _table(data, key, "") or {}, cast(type, cls)  # type[T] is no Hashable to mypy (_keys caches)
    _check_unknown(raw, _keys(settings).keys(), key)
    return cls(**_values(settings, raw, key))


def _limits(data: Mapping[str, Any]) -> ServerLimits:
    limits = _section(data, "limits", ServerLimits)
    if limits.max_connections_per_ip > limits.max_connections:
        raise ConfigError(f"limits.max_connections_per_ip: {limits.max_connections_per_ip} is above "
                          f"limits.max_connections ({limits.max_connections})")
    return limits


def _notify(data: Mapping[str, Any]) -> tuple[NotifySettings, ...]:
    raw = data.get("notify", [])
    if not isinstance(raw, list):
        raise ConfigError("notify: expected [[notify]] tables")
    out = []
    for i, table in enumerate(raw):
        path = f"notify[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: expected a table")
        _check_unknown(table, _keys(NotifySettings).keys(), path)
        values = _values(NotifySettings, table, path)
        values["events"], values["addresses"] = tuple(values["events"]), tuple(values["addresses"])
        ns = NotifySettings(**values)
        if ns.format == "telegram" and not ns.chat_id:
            raise ConfigError(f"{path}.chat_id: missing (required when format = 'telegram')")
        out.append(ns)
    return tuple(out)


def parse_settings(data: Mapping[str, Any], source: str = "",
                   address_check: Callable[[str, Coin], object] | None = None) -> Settings:
    """Validate a parsed TOML document."""
    _check_unknown(data, _names(Settings, tables=True) | {"pool"}, "")
    api = _section(data, "api", ApiSettings)
    db = _table(data, "database", "") or {}
    _check_unknown(db, _keys(DatabaseSettings).keys(), "database")
    database = DatabaseSettings(**_values(DatabaseSettings, db, "database", {"dsn": _dsn(db)}))
    pool = _table(data, "pool", "") or {}
    _check_unknown(pool, _names(Settings, tables=False), "pool")
    defined = _coin_definitions(data)
    coins = []
    ports: dict[int, str] = {}
    for i, c in enumerate(_value(Settings, "coins", data, "")):
        if not isinstance(c, dict):
            raise ConfigError(f"coins[{i}]: expected a table")
        cs = _coin(c, f"coins[{i}]", address_check, defined)
        for key in ("stratum_port", "sv2_port"):
            port = getattr(cs, key)
            if port and port in ports:
                raise ConfigError(f"coins[{i}].{key}: {port} is already used by {ports[port]}")
            if port:
                ports[port] = f"coins[{i}]"
        if cs.tls_cert_file and cs.tls_port:
            if cs.tls_port in ports:
                raise ConfigError(f"coins[{i}].tls_port: {cs.tls_port} is already used by {ports[cs.tls_port]}")
            ports[cs.tls_port] = f"coins[{i}] (TLS)"
        coins.append(cs)
    if database.dsn == "" and any(cs.mode != "solo" for cs in coins):
        raise ConfigError("database.dsn: required when a coin's mode is pplns or prop (credits live there)")
    settings = Settings(coins=tuple(coins), database=database, api=api, limits=_limits(data),
                        bans=_section(data, "bans", BanPolicy), coin_definitions=tuple(defined.values()),
                        source=source, **_values(Settings, pool, "pool"), notify=_notify(data))
    for coin in defined.values():
        register(coin)  # the API and the store look coins up by key
    return settings


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


def load_pool_settings(path: str | Path) -> Settings:
    """Read and validate a TOML config file as the pool runs it (``stratum-pool`` and every worker process):
    each payout address checked against its coin (``chain.address``)."""
    from stratum_pool.chain.address import address_to_script

    return load_settings(path, address_check=address_to_script)
