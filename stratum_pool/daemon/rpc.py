"""JSON-RPC to coin daemons without ever blocking the event loop.

Every call runs python-bitcoinrpc's :class:`AuthServiceProxy` in a worker thread, with a fresh proxy (and
HTTP connection) per call: the proxy is not thread-safe. Failover: endpoints are tried in their configured
order; one that fails with a connection error or timeout is marked down and skipped (tried last) until
``recheck_after`` seconds have passed. Whole rounds over all endpoints are retried with exponential backoff
and jitter, a bounded number of times.

Errors:

* :class:`RpcError` - the daemon answered with a JSON-RPC error (``code``, ``message``, ``endpoint``).
* :class:`RpcAuthError` - HTTP 401/403: wrong credentials (or rpcallowip), naming the endpoint.
* :class:`RpcConnectionError` - unreachable, timeout, broken HTTP; one endpoint.
* :class:`DaemonUnavailableError` - every endpoint failed; ``errors`` has each one's reason.

Credentials come from the endpoint (user/password) or the daemon's cookie file (``__cookie__:secret``),
read at each call so a restarted daemon's new cookie is picked up. They are never logged or put in reprs.

Answers of the methods in :data:`FAST_METHODS` (``getblocktemplate`` above all: 1-3 MB on mainnet, on the
new-block path) are parsed with orjson instead of python-bitcoinrpc's ``json`` + ``Decimal``, which also
formats every request and answer for its debug log whether or not that log is on (~7 ms for a mainnet
template). Those answers carry no amounts with a fraction (GBT's ``coinbasevalue`` and ``fee`` are integers
in base units), so their values are the same either way; every other method keeps python-bitcoinrpc's
parsing, numbers with a fraction as ``Decimal`` (the wallet's amounts).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import http.client
import itertools
import json
import logging
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from bitcoinrpc.authproxy import USER_AGENT, AuthServiceProxy, JSONRPCException

from stratum_pool.coins import Coin
from stratum_pool.daemon.gbt import parse_template_answer
from stratum_pool.daemon.gcpause import gc_automatic, gc_paused
from stratum_pool.osthread import name_this_thread

log = logging.getLogger(__name__)

# JSON-RPC error codes of Bitcoin/Litecoin Core that mean "this daemon cannot serve yet".
RPC_IN_WARMUP = -28
RPC_CLIENT_NOT_CONNECTED = -9
RPC_CLIENT_IN_INITIAL_DOWNLOAD = -10
RPC_METHOD_NOT_FOUND = -32601
#: An endpoint answering one of these is skipped for this call (the next endpoint is tried).
NOT_READY_CODES = frozenset({RPC_IN_WARMUP, RPC_CLIENT_NOT_CONNECTED, RPC_CLIENT_IN_INITIAL_DOWNLOAD})

SATOSHIS_PER_COIN = 100_000_000

_HTTP_STATUS = re.compile(r"non-JSON HTTP response with '(\d{3})")

#: Methods whose answers hold no fractional numbers: sent and parsed with orjson (see the module docstring).
#: (orjson keeps integers exact up to 2**64 - 1; none of these answers has larger ones.)
FAST_METHODS = frozenset({"getblocktemplate", "submitblock", "getbestblockhash", "getblockhash",
                          "getblockcount"})
_request_ids = itertools.count(1)
# An answer this big (a template with transactions) has its young objects collected right after parsing.
COLLECT_YOUNG_ABOVE_BYTES = 256 * 1024


# --- errors ------------------------------------------------------------------------------------------------
class DaemonError(Exception):
    """Base of every error of this module."""


class RpcError(DaemonError):
    """A JSON-RPC error returned by a daemon."""

    def __init__(self, code: int, message: str, endpoint: str) -> None:
        super().__init__(f"{endpoint}: RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.endpoint = endpoint


class RpcAuthError(DaemonError):
    """The daemon refused our credentials (HTTP 401) or our address (HTTP 403)."""

    def __init__(self, endpoint: str, status: int) -> None:
        what = "wrong RPC credentials (user/password or cookie)" if status == 401 else \
            "RPC access forbidden (check -rpcallowip)"
        super().__init__(f"daemon {endpoint!r}: {what} (HTTP {status})")
        self.endpoint = endpoint
        self.status = status


class RpcConnectionError(DaemonError):
    """The endpoint could not be reached or did not answer in time."""

    def __init__(self, endpoint: str, detail: str, *, timed_out: bool = False) -> None:
        super().__init__(f"daemon {endpoint!r} unreachable: {detail}")
        self.endpoint = endpoint
        self.detail = detail
        self.timed_out = timed_out


class DaemonUnavailableError(DaemonError):
    """Every endpoint failed; ``errors`` maps endpoint name to the last error."""

    def __init__(self, method: str, errors: Mapping[str, DaemonError]) -> None:
        detail = "; ".join(f"{name}: {err}" for name, err in errors.items())
        super().__init__(f"no daemon could answer {method}: {detail}")
        self.method = method
        self.errors = dict(errors)


class DaemonNotReadyError(DaemonError):
    """:meth:`DaemonClient.wait_ready` timed out; ``states`` maps endpoint name to a readable state."""

    def __init__(self, states: Mapping[str, str]) -> None:
        detail = "; ".join(f"{name}: {state}" for name, state in states.items())
        super().__init__(f"no daemon is ready: {detail}")
        self.states = dict(states)


# --- endpoints ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DaemonEndpoint:
    """One daemon RPC address. ``url`` is ``http://host:port[/path]`` (credentials in it are accepted and
    moved out). Give ``user``/``password`` or ``cookie_file`` (Core's ``.cookie``)."""

    name: str
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    cookie_file: Path | str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"daemon {self.name!r}: bad RPC url (want http://host:port/)")
        if parts.username is not None or parts.password is not None:
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            object.__setattr__(self, "url", urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
            if self.user is None:
                object.__setattr__(self, "user", urllib.parse.unquote(parts.username or ""))
            if self.password is None:
                object.__setattr__(self, "password", urllib.parse.unquote(parts.password or ""))
        if self.password is None and self.cookie_file is None:
            raise ValueError(f"daemon {self.name!r}: give a user/password or a cookie_file")

    def credentials(self) -> tuple[str, str]:
        """(user, password), reading the cookie file now when configured without a password."""
        if self.password is not None:
            return (self.user or "", self.password)
        assert self.cookie_file is not None
        try:
            text = Path(self.cookie_file).read_text().strip()
        except OSError as exc:
            raise RpcConnectionError(self.name, f"cannot read cookie file {self.cookie_file}: "
                                                f"{exc.strerror or exc}") from None
        user, sep, secret = text.partition(":")
        if not sep:
            raise RpcConnectionError(self.name, f"cookie file {self.cookie_file} is malformed")
        return (user, secret)

    def auth_header(self) -> bytes:
        user, password = self.credentials()
        return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@dataclass
class EndpointState:
    """Health of one endpoint as the client sees it."""

    endpoint: DaemonEndpoint
    up: bool = True
    down_since: float | None = None
    last_error: str | None = None
    last_ok: float | None = None
    failures: int = 0


class _Abortable:
    """Holds the HTTP connection of a call running in a thread so a cancelled caller can break it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self.aborted = False

    def set(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
            if self.aborted:
                self._shutdown(conn)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._conn is not None:
                self._shutdown(self._conn)

    @staticmethod
    def _shutdown(conn: http.client.HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
            except OSError:
                pass


def blocking_call(endpoint: DaemonEndpoint, method: str, params: Sequence[Any],
                  timeout: float | None = None, abort: _Abortable | None = None) -> Any:
    """One RPC call, synchronously, mapping every failure to this module's errors. Runs in a thread."""
    parts = urllib.parse.urlsplit(endpoint.url)
    timeout = endpoint.timeout if timeout is None else timeout
    header = endpoint.auth_header()
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 443, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    if abort is not None:
        abort.set(conn)
    try:
        if method in FAST_METHODS:
            return _fast_call(conn, parts.hostname or "", parts.path or "/", header, method, params, timeout)
        # The URL given to the proxy carries dummy credentials; the real header is set below, so a password
        # with URL-special characters works and the password never sits in a URL.
        proxy = AuthServiceProxy(f"{parts.scheme}://x:x@{parts.netloc.rpartition('@')[2]}{parts.path or '/'}",
                                 method, timeout=timeout, connection=conn)
        proxy._AuthServiceProxy__auth_header = header
        return proxy(*params)
    except JSONRPCException as exc:
        code = exc.code if isinstance(exc.code, int) else -1
        message = str(exc.message or "")
        m = _HTTP_STATUS.search(message)
        if code == -342 and m:
            status = int(m.group(1))
            if status in (401, 403):
                raise RpcAuthError(endpoint.name, status) from None
            raise RpcConnectionError(endpoint.name, f"HTTP {status} without a JSON body") from None
        if code in (-342, -343):
            raise RpcConnectionError(endpoint.name, message) from None
        raise RpcError(code, message, endpoint.name) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if abort is not None and abort.aborted:
            raise RpcConnectionError(endpoint.name, "call aborted") from None
        if isinstance(exc, TimeoutError):
            raise RpcConnectionError(endpoint.name, f"timed out after {timeout:g}s", timed_out=True) from None
        raise RpcConnectionError(endpoint.name, f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def _encode_decimal(value: object) -> float:
    if isinstance(value, Decimal):
        return float(round(value, 8))  # as python-bitcoinrpc sends it
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _fast_call(conn: http.client.HTTPConnection, host: str, path: str, auth_header: bytes, method: str,
               params: Sequence[Any], timeout: float) -> Any:
    """What ``AuthServiceProxy(...)(*params)`` does, with orjson and without formatting debug logs: the same
    request, the same checks, the same :class:`JSONRPCException` for the same failures."""
    body = orjson.dumps({"version": "1.1", "method": method, "params": list(params), "id": next(_request_ids)},
                        default=_encode_decimal)
    conn.request("POST", path, body, {"Host": host, "User-Agent": USER_AGENT, "Authorization": auth_header,
                                      "Content-type": "application/json"})
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    http_response = conn.getresponse()
    if http_response.getheader("Content-Type") != "application/json":
        raise JSONRPCException({"code": -342, "message": f"non-JSON HTTP response with "
                                f"'{http_response.status} {http_response.reason}' from server"})
    data = http_response.read()
    # A mainnet template becomes thousands of dicts: no collection while they are made (see gcpause)...
    with gc_paused():
        try:
            # getblocktemplate: its transactions decoded straight from the answer's bytes (daemon.gbt)
            response = parse_template_answer(data) if method == "getblocktemplate" else orjson.loads(data)
        except orjson.JSONDecodeError:
            # orjson refuses what json takes (NaN, numbers beyond a double): python-bitcoinrpc's parsing then
            response = json.loads(data, parse_float=Decimal)  # a ValueError when it is not JSON at all
        if len(data) >= COLLECT_YOUNG_ABOVE_BYTES and gc_automatic():
            # ... and the young generation they filled is collected before collection is back on: otherwise
            # the first allocation after that does it, with whatever older generation is due (now and then a
            # full collection: tens of ms on the way to the broadcast)
            gc.collect(0)
    if not isinstance(response, dict):
        raise JSONRPCException({"code": -343, "message": "JSON-RPC answer is not an object"})
    if response.get("error") is not None:
        raise JSONRPCException(response["error"])
    if "result" not in response:
        raise JSONRPCException({"code": -343, "message": "missing JSON-RPC result"})
    return response["result"]


def only_timeouts(exc: BaseException) -> bool:
    """True when ``exc`` is (or wraps only) timeouts, e.g. a long poll that simply saw nothing happen."""
    if isinstance(exc, RpcConnectionError):
        return exc.timed_out
    if isinstance(exc, DaemonUnavailableError):
        return bool(exc.errors) and all(only_timeouts(e) for e in exc.errors.values())
    return False


# --- amounts -----------------------------------------------------------------------------------------------
def to_satoshis(amount: Decimal | float | int | str) -> int:
    """A coin amount as python-bitcoinrpc returns it (Decimal) -> integer base units (exact for Decimal)."""
    if isinstance(amount, bool):
        raise TypeError("amount is a bool")
    if isinstance(amount, int):
        return amount * SATOSHIS_PER_COIN
    value = Decimal(str(amount)) if isinstance(amount, float | str) else amount
    scaled = value * SATOSHIS_PER_COIN
    result = int(scaled.to_integral_value())
    if scaled != result:
        raise ValueError(f"amount {amount} has more than 8 decimals")
    return result


# --- submitblock results -----------------------------------------------------------------------------------
ACCEPTED = "accepted"


def normalize_submit_result(raw: object) -> str:
    """The outcome of ``submitblock`` as one short reason string.

    ``None``/``""``/``True`` -> ``"accepted"``; Core's bare reasons (``"high-hash"``, ``"duplicate"``,
    ``"inconclusive"``, ``"duplicate-inconclusive"``, ...) unchanged; bcoin's ``"rejected: high-hash"`` ->
    ``"high-hash"``; anything else stripped and lower-cased.
    """
    if raw is None or raw is True:
        return ACCEPTED
    if isinstance(raw, dict):  # some forks answer an object
        raw = raw.get("reason") or raw.get("result") or raw.get("error")
        if raw is None:
            return ACCEPTED
    text = str(raw).strip()
    if not text or text.lower() in ("null", "accepted", "true"):
        return ACCEPTED
    lowered = text.lower()
    for prefix in ("rejected:", "rejected"):
        if lowered.startswith(prefix):
            text = text[len(prefix):].strip()
            break
    return text.lower() or "rejected"


#: Outcomes meaning "this daemon now has the block as valid" (duplicate: it had it already, valid).
GOOD_SUBMIT_RESULTS = frozenset({ACCEPTED, "duplicate"})


@dataclass(frozen=True)
class EndpointSubmit:
    """One endpoint's answer to ``submitblock``: ``reason`` normalized; ``error`` when the call failed."""

    endpoint: str
    reason: str
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None and self.reason in GOOD_SUBMIT_RESULTS


@dataclass(frozen=True)
class SubmitResult:
    """``submitblock`` sent to every endpoint at once. ``accepted`` when at least one took the block.

    Acceptance by a daemon is not confirmation: check :meth:`DaemonClient.is_in_main_chain` later.
    """

    results: tuple[EndpointSubmit, ...]

    @property
    def accepted(self) -> bool:
        return any(r.accepted for r in self.results)

    @property
    def reason(self) -> str:
        """``"accepted"``, else the first endpoint's reason (what to log for a rejected block)."""
        for r in self.results:
            if r.accepted:
                return ACCEPTED
        return self.results[0].reason if self.results else "no-daemon"


# --- the client --------------------------------------------------------------------------------------------
class DaemonClient:
    """Async RPC client over one or more daemon endpoints of one coin."""

    def __init__(self, endpoints: Sequence[DaemonEndpoint], coin: Coin, *, max_workers: int = 8,
                 retries: int = 2, backoff_base: float = 0.25, backoff_max: float = 4.0,
                 recheck_after: float = 5.0, longpoll_timeout: float = 300.0) -> None:
        if not endpoints:
            raise ValueError("at least one daemon endpoint is needed")
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"daemon endpoint names must be unique: {names}")
        self.coin = coin
        self.states = [EndpointState(e) for e in endpoints]
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.recheck_after = recheck_after
        self.longpoll_timeout = longpoll_timeout
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc",
                                            initializer=name_this_thread, initargs=("sp-rpc",))
        # Long polls block for minutes: they get their own threads so they never starve ordinary calls.
        self._long_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rpc-longpoll",
                                                 initializer=name_this_thread, initargs=("sp-rpc-longpoll",))
        self._closed = False
        # Told of every call: (endpoint name, method, seconds, error kind or None). Metrics hook in here.
        self.observer: Callable[[str, str, float, str | None], None] | None = None

    @property
    def endpoints(self) -> list[DaemonEndpoint]:
        return [s.endpoint for s in self.states]

    def state(self, name: str) -> EndpointState:
        for s in self.states:
            if s.endpoint.name == name:
                return s
        raise KeyError(name)

    async def close(self) -> None:
        """Stop the worker threads (running calls end at their timeout or when aborted)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._long_executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- one endpoint ----------------------------------------------------------------------------------
    async def call_endpoint(self, endpoint: DaemonEndpoint, method: str, *params: Any,
                            timeout: float | None = None, long: bool = False) -> Any:
        """One attempt on one endpoint, in a worker thread; cancelling the caller aborts the HTTP call."""
        if self._closed:
            raise RuntimeError("DaemonClient is closed")
        loop = asyncio.get_running_loop()
        abort = _Abortable()
        executor = self._long_executor if long else self._executor
        fut = loop.run_in_executor(executor, blocking_call, endpoint, method, params, timeout, abort)
        started = time.monotonic()
        label = f"{method}(longpoll)" if long else method
        try:
            result = await fut
        except asyncio.CancelledError:
            abort.abort()
            raise
        except RpcConnectionError as exc:
            if not (long and exc.timed_out):  # a long poll that times out is normal
                self._mark_down(endpoint.name, exc)
                self._observe(endpoint.name, label, started, "timeout" if exc.timed_out else "connection")
            raise
        except RpcAuthError as exc:
            self._mark_down(endpoint.name, exc)
            self._observe(endpoint.name, label, started, "auth")
            raise
        except RpcError:
            self._observe(endpoint.name, label, started, "rpc")
            raise
        self._mark_up(endpoint.name)
        self._observe(endpoint.name, label, started, None)
        return result

    def _observe(self, endpoint: str, method: str, started: float, error: str | None) -> None:
        if self.observer is not None:
            self.observer(endpoint, method, time.monotonic() - started, error)

    def _mark_down(self, name: str, exc: DaemonError) -> None:
        s = self.state(name)
        if s.up:
            log.warning("daemon %s marked down: %s", name, exc)
            s.down_since = time.monotonic()
        s.up = False
        s.failures += 1
        s.last_error = str(exc)

    def _mark_up(self, name: str) -> None:
        s = self.state(name)
        if not s.up:
            log.info("daemon %s is back up", name)
        s.up = True
        s.down_since = None
        s.failures = 0
        s.last_ok = time.monotonic()

    def _order(self) -> list[EndpointState]:
        """Up endpoints (and down ones due for a recheck) in configured order, then the other down ones."""
        now = time.monotonic()
        first = [s for s in self.states
                 if s.up or (s.down_since is not None and now - s.down_since >= self.recheck_after)]
        return first + [s for s in self.states if s not in first]

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * 2 ** attempt)
        return random.uniform(cap / 2, cap)

    # --- failover ------------------------------------------------------------------------------------
    async def call(self, method: str, *params: Any, timeout: float | None = None,
                   retries: int | None = None, long: bool = False) -> Any:
        """Call ``method`` on the first endpoint that answers.

        A JSON-RPC error is final (raised as :class:`RpcError`) except the "not ready" codes (-28 warm-up,
        -9 not connected, -10 initial download), which move on to the next endpoint. When no endpoint
        answers, rounds are retried with backoff; then the most telling error is raised: an
        :class:`RpcError` if some daemon answered, else :class:`RpcAuthError` if credentials were refused,
        else :class:`DaemonUnavailableError`.
        """
        rounds = 1 + (self.retries if retries is None else retries)
        errors: dict[str, DaemonError] = {}
        for attempt in range(rounds):
            if attempt:
                await asyncio.sleep(self._backoff(attempt - 1))
            for s in self._order():
                try:
                    return await self.call_endpoint(s.endpoint, method, *params, timeout=timeout, long=long)
                except RpcError as exc:
                    if exc.code not in NOT_READY_CODES:
                        raise
                    errors[s.endpoint.name] = exc
                except (RpcConnectionError, RpcAuthError) as exc:
                    errors[s.endpoint.name] = exc
            if any(isinstance(e, RpcAuthError) for e in errors.values()) and \
                    all(isinstance(e, RpcAuthError | RpcError) for e in errors.values()):
                break  # credentials will not fix themselves
        for err in errors.values():
            if isinstance(err, RpcError):
                raise err
        auth = [e for e in errors.values() if isinstance(e, RpcAuthError)]
        if auth and len(errors) == 1:
            raise auth[0]
        if auth:
            log.error("daemon credentials refused: %s", "; ".join(str(a) for a in auth))
        raise DaemonUnavailableError(method, errors)

    # --- typed helpers -------------------------------------------------------------------------------
    def template_request(self) -> dict[str, Any]:
        """The ``getblocktemplate`` request object of this coin (its rules, then its extra parameters)."""
        return {"rules": list(self.coin.gbt_rules), **self.coin.gbt_params}

    async def getblocktemplate(self, longpollid: str | None = None, *, timeout: float | None = None,
                               long: bool = False, retries: int | None = None) -> dict[str, Any]:
        """``getblocktemplate`` with the coin's rules (``coin.gbt_rules``; Litecoin: mweb + segwit) and any
        further keys its definition asks for (``coin.gbt_params``)."""
        request: dict[str, Any] = self.template_request()
        if longpollid is not None:
            request["longpollid"] = longpollid
        result = await self.call("getblocktemplate", request, timeout=timeout, long=long, retries=retries)
        if not isinstance(result, dict):
            raise DaemonError(f"getblocktemplate returned {type(result).__name__}, not an object")
        return result

    async def longpoll_template(self, longpollid: str, timeout: float | None = None) -> dict[str, Any]:
        """A long-polling ``getblocktemplate`` on the long-call threads (returns when the tip changes).

        No retries; a poll that outlives ``timeout`` raises :class:`DaemonUnavailableError` whose errors are
        all timeouts (see :func:`only_timeouts`) without marking the endpoint down.
        """
        return await self.getblocktemplate(longpollid, timeout=timeout or self.longpoll_timeout, long=True,
                                           retries=0)

    async def submitblock(self, block_hex: str) -> SubmitResult:
        """Submit to EVERY endpoint at once; each answer normalized (:func:`normalize_submit_result`)."""
        async def one(endpoint: DaemonEndpoint) -> EndpointSubmit:
            try:
                raw = await self.call_endpoint(endpoint, "submitblock", block_hex)
            except RpcError as exc:
                return EndpointSubmit(endpoint.name, f"rpc-error {exc.code}: {exc.message}", str(exc))
            except DaemonError as exc:
                return EndpointSubmit(endpoint.name, "unreachable", str(exc))
            return EndpointSubmit(endpoint.name, normalize_submit_result(raw))

        results = await asyncio.gather(*(one(s.endpoint) for s in self.states))
        outcome = SubmitResult(tuple(results))
        for r in results:
            log.info("submitblock to %s: %s", r.endpoint, r.error or r.reason)
        return outcome

    async def getbestblockhash(self) -> str:
        return str(await self.call("getbestblockhash"))

    async def getblockhash(self, height: int) -> str:
        return str(await self.call("getblockhash", height))

    async def getblockcount(self) -> int:
        return int(await self.call("getblockcount"))

    async def getblockchaininfo(self) -> dict[str, Any]:
        return dict(await self.call("getblockchaininfo"))

    async def getnetworkinfo(self) -> dict[str, Any]:
        return dict(await self.call("getnetworkinfo"))

    async def validateaddress(self, address: str) -> dict[str, Any]:
        return dict(await self.call("validateaddress", address))

    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool:
        """True when the main chain's block at ``height`` is ``block_hash_display`` (display order hex).

        Compares ``getblockhash(height)``: right on every daemon (bcoin reports positive confirmations for
        side-branch blocks). A height above the tip (-8 "Block height out of range") is False.
        """
        try:
            return (await self.getblockhash(height)).lower() == block_hash_display.lower()
        except RpcError as exc:
            if exc.code == -8:
                return False
            raise

    # --- readiness -----------------------------------------------------------------------------------
    async def probe(self, endpoint: DaemonEndpoint) -> str | None:
        """None when ``endpoint`` serves templates, else a readable reason it does not (yet)."""
        try:
            await self.call_endpoint(endpoint, "getblocktemplate", self.template_request(),
                                     timeout=min(endpoint.timeout, 10.0))
        except RpcAuthError as exc:
            return f"wrong credentials: {exc}"
        except RpcConnectionError as exc:
            return f"unreachable: {exc.detail}"
        except RpcError as exc:
            if exc.code == RPC_IN_WARMUP:
                return f"starting up (-28 {exc.message})"
            if exc.code == RPC_CLIENT_IN_INITIAL_DOWNLOAD:
                return f"still syncing / initial block download (-10 {exc.message})"
            if exc.code == RPC_CLIENT_NOT_CONNECTED:
                return f"not connected to any peer (-9 {exc.message})"
            return f"getblocktemplate failed: {exc.code} {exc.message}"
        return None

    async def wait_ready(self, timeout: float = 60.0, interval: float = 1.0,
                         fail_fast_on_auth: bool = True) -> str:
        """Wait until some endpoint serves ``getblocktemplate``; returns its name.

        Raises :class:`RpcAuthError` at once when every endpoint refuses our credentials (with
        ``fail_fast_on_auth``), and :class:`DaemonNotReadyError` (each endpoint's state) at the timeout.
        """
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while True:
            reasons = await asyncio.gather(*(self.probe(s.endpoint) for s in self.states))
            for s, reason in zip(self.states, reasons, strict=True):
                if reason is None:
                    return s.endpoint.name
                states[s.endpoint.name] = reason
            refused = [s.endpoint.name for s, r in zip(self.states, reasons, strict=True)
                       if r is not None and r.startswith("wrong credentials")]
            if fail_fast_on_auth and len(refused) == len(self.states):
                raise RpcAuthError(", ".join(refused), 401)
            if time.monotonic() >= deadline:
                raise DaemonNotReadyError(states)
            log.info("waiting for a daemon: %s", "; ".join(f"{k}: {v}" for k, v in states.items()))
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
