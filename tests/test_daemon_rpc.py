"""Daemon RPC client without a daemon: result normalization, amounts, endpoints, errors, never blocking."""

from __future__ import annotations

import asyncio
import base64
import gc
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from stratum_pool.coins import get_coin
from stratum_pool.daemon import gcpause
from stratum_pool.daemon.rpc import (
    ACCEPTED,
    COLLECT_YOUNG_ABOVE_BYTES,
    FAST_METHODS,
    DaemonClient,
    DaemonEndpoint,
    DaemonUnavailableError,
    EndpointSubmit,
    RpcAuthError,
    RpcConnectionError,
    RpcError,
    SubmitResult,
    normalize_submit_result,
    only_timeouts,
    to_satoshis,
)
from stratum_pool.devnet.common import free_port

LTC = get_coin("litecoin", "regtest")


@pytest.mark.parametrize(("raw", "expected"), [
    (None, ACCEPTED),
    ("", ACCEPTED),
    ("  ", ACCEPTED),
    ("null", ACCEPTED),
    (True, ACCEPTED),
    ({"result": None}, ACCEPTED),
    ("duplicate", "duplicate"),
    ("high-hash", "high-hash"),
    ("inconclusive", "inconclusive"),
    ("duplicate-inconclusive", "duplicate-inconclusive"),
    ("duplicate-invalid", "duplicate-invalid"),
    ("bad-txnmrklroot", "bad-txnmrklroot"),
    ("rejected: high-hash", "high-hash"),     # bcoin 1.0.2
    ("rejected: duplicate", "duplicate"),
    ("rejected: bad-cb-amount", "bad-cb-amount"),
    ("rejected", "rejected"),
    ("High-Hash\n", "high-hash"),
    ({"reason": "bad-diffbits"}, "bad-diffbits"),
])
def test_normalize_submit_result(raw: object, expected: str) -> None:
    assert normalize_submit_result(raw) == expected


def test_submit_result_summary() -> None:
    ok = SubmitResult((EndpointSubmit("a", "high-hash"), EndpointSubmit("b", ACCEPTED)))
    assert ok.accepted and ok.reason == ACCEPTED
    dup = SubmitResult((EndpointSubmit("a", "duplicate"),))
    assert dup.accepted
    bad = SubmitResult((EndpointSubmit("a", "high-hash"), EndpointSubmit("b", "unreachable", "down")))
    assert not bad.accepted and bad.reason == "high-hash"
    assert not EndpointSubmit("a", ACCEPTED, "boom").accepted
    assert SubmitResult(()).reason == "no-daemon"


@pytest.mark.parametrize(("amount", "sats"), [
    (Decimal("50.00000000"), 5_000_000_000),
    (Decimal("0.00000001"), 1),
    (Decimal("12.5"), 1_250_000_000),
    (Decimal("0"), 0),
    (3, 300_000_000),
    (0.1, 10_000_000),
    ("21000000.12345678", 2_100_000_012_345_678),
])
def test_to_satoshis(amount: Decimal | float | int | str, sats: int) -> None:
    assert to_satoshis(amount) == sats


def test_to_satoshis_rejects_sub_satoshi() -> None:
    with pytest.raises(ValueError):
        to_satoshis(Decimal("0.000000001"))
    with pytest.raises(TypeError):
        to_satoshis(True)


def test_endpoint_moves_credentials_out_of_url() -> None:
    ep = DaemonEndpoint("main", "http://alice:p%40ss%3Aword@127.0.0.1:19443/")
    assert ep.url == "http://127.0.0.1:19443/"
    assert ep.credentials() == ("alice", "p@ss:word")
    assert "p@ss" not in repr(ep) and "ss%3A" not in repr(ep)


def test_endpoint_needs_credentials_and_http() -> None:
    with pytest.raises(ValueError, match="cookie"):
        DaemonEndpoint("x", "http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="url"):
        DaemonEndpoint("x", "ftp://127.0.0.1:1/", "u", "p")


def test_cookie_file(tmp_path: Path) -> None:
    cookie = tmp_path / ".cookie"
    ep = DaemonEndpoint("c", "http://127.0.0.1:1/", cookie_file=cookie)
    with pytest.raises(RpcConnectionError, match="cookie"):
        ep.credentials()
    cookie.write_text("__cookie__:abc123\n")
    assert ep.credentials() == ("__cookie__", "abc123")
    cookie.write_text("__cookie__:def456")  # a restarted daemon: read again
    assert ep.credentials() == ("__cookie__", "def456")
    assert "abc123" not in repr(ep)


def test_client_validates_endpoints() -> None:
    with pytest.raises(ValueError):
        DaemonClient([], LTC)
    ep = DaemonEndpoint("same", "http://127.0.0.1:1/", "u", "p")
    with pytest.raises(ValueError, match="unique"):
        DaemonClient([ep, ep], LTC)


async def test_unreachable_endpoint_is_marked_down() -> None:
    ep = DaemonEndpoint("dead", f"http://127.0.0.1:{free_port()}/", "u", "p", timeout=2)
    async with DaemonClient([ep], LTC, retries=1, backoff_base=0.01) as client:
        with pytest.raises(DaemonUnavailableError) as info:
            await client.getblockcount()
        assert "dead" in str(info.value)
        assert isinstance(info.value.errors["dead"], RpcConnectionError)
        state = client.state("dead")
        assert not state.up and state.failures == 2 and state.last_error


async def _serve(handler: object) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, int(server.sockets[0].getsockname()[1])


async def test_http_401_is_auth_error_naming_endpoint() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"jsonrpc\"\r\n"
                     b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await _serve(handler)
    async with server:
        ep = DaemonEndpoint("primary-ltc", f"http://127.0.0.1:{port}/", "u", "s3cr3t-pw")
        async with DaemonClient([ep], LTC) as client:
            with pytest.raises(RpcAuthError, match="primary-ltc") as info:
                await client.getblockcount()
            assert info.value.status == 401
            assert "s3cr3t" not in str(info.value)


async def test_event_loop_keeps_running_during_a_slow_call() -> None:
    """A daemon that accepts and never answers: the loop keeps ticking, the call times out cleanly."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away
        writer.close()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    server, port = await _serve(silent)
    async with server:
        ep = DaemonEndpoint("slow", f"http://127.0.0.1:{port}/", "u", "p", timeout=1.0)
        async with DaemonClient([ep], LTC, retries=0) as client:
            tick_task = asyncio.create_task(ticker())
            start = time.monotonic()
            with pytest.raises(DaemonUnavailableError) as info:
                await client.getblockcount()
            elapsed = time.monotonic() - start
            tick_task.cancel()
        assert only_timeouts(info.value)
        assert 0.9 <= elapsed < 3
        assert ticks >= 10, f"event loop was blocked: only {ticks} ticks in {elapsed:.1f}s"


async def test_cancelling_a_call_aborts_the_http_request() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns at EOF: the client shut the socket
        closed.set()
        writer.close()

    server, port = await _serve(silent)
    async with server:
        ep = DaemonEndpoint("slow", f"http://127.0.0.1:{port}/", "u", "p", timeout=60)
        async with DaemonClient([ep], LTC, retries=0) as client:
            task = asyncio.create_task(client.call("waitfornewblock"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(closed.wait(), 2)
            assert client.state("slow").up  # a cancelled call says nothing about the daemon


# --- the orjson path of FAST_METHODS (getblocktemplate & co.) ----------------------------------------------
class _Daemon:
    """A one-answer-per-connection HTTP JSON-RPC daemon: ``answer(request) -> (status, content type, body)``."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[tuple[bytes, dict[str, Any]]] = []  # (header block, JSON body)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        request = orjson.loads(await reader.readexactly(length))
        self.requests.append((head, request))
        status, content_type, body = self.answer(request)
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()


def _ok(result: bytes) -> Any:
    return lambda request: ("200 OK", "application/json",
                            b'{"result":' + result + b',"error":null,"id":' + orjson.dumps(request["id"]) + b"}")


async def _client_for(daemon: _Daemon) -> tuple[asyncio.Server, DaemonClient]:
    server, port = await _serve(daemon)
    ep = DaemonEndpoint("node", f"http://127.0.0.1:{port}/", "user", "pw:@/")
    return server, DaemonClient([ep], get_coin("bitcoin", "regtest"), retries=0)


async def test_getblocktemplate_goes_the_fast_way_with_the_same_request() -> None:
    template = {"version": 536870912, "coinbasevalue": 5_000_000_000, "transactions": [{"fee": 1234}],
                "bits": "207fffff", "previousblockhash": "00" * 32}
    daemon = _Daemon(_ok(orjson.dumps(template)))
    server, client = await _client_for(daemon)
    async with server, client:
        assert await client.getblocktemplate() == template
        assert await client.getblocktemplate() == template
    (head, first), (_, second) = daemon.requests
    assert first["method"] == "getblocktemplate" and first["version"] == "1.1"
    assert first["params"] == [{"rules": ["segwit"]}]
    assert second["id"] != first["id"]
    assert b"Authorization: Basic " + base64.b64encode(b"user:pw:@/") in head
    assert b"Content-type: application/json" in head


def test_fast_methods_are_the_ones_without_amounts() -> None:
    assert "getblocktemplate" in FAST_METHODS and "submitblock" in FAST_METHODS
    assert not FAST_METHODS & {"getwalletinfo", "listtransactions", "sendmany", "getbalance", "gettransaction"}


async def test_other_methods_keep_decimal_amounts() -> None:
    daemon = _Daemon(_ok(b'{"balance":0.5,"txcount":3}'))
    server, client = await _client_for(daemon)
    async with server, client:
        info = await client.call("getwalletinfo")
    assert info == {"balance": Decimal("0.5"), "txcount": 3} and isinstance(info["balance"], Decimal)


async def test_fast_path_numbers() -> None:
    answers = iter([b'{"coinbasevalue":18446744073709551615,"fee":-9223372036854775808}', b'{"x":1e400}'])
    server, client = await _client_for(_Daemon(lambda request: _ok(next(answers))(request)))
    async with server, client:
        # integers exact to 64 bits
        assert await client.getblocktemplate() == {"coinbasevalue": 2**64 - 1, "fee": -(2**63)}
        # what orjson refuses and json takes is parsed as python-bitcoinrpc would
        assert await client.getblocktemplate() == {"x": Decimal("1e400")}


async def test_fast_path_rpc_error_is_an_rpc_error() -> None:
    def answer(request: dict[str, Any]) -> tuple[str, str, bytes]:
        return ("500 Internal Server Error", "application/json", orjson.dumps(
            {"result": None, "error": {"code": -8, "message": "Block height out of range"}, "id": request["id"]}))

    server, client = await _client_for(_Daemon(answer))
    async with server, client:
        with pytest.raises(RpcError) as info:
            await client.getblockhash(10**6)
    assert info.value.code == -8 and info.value.endpoint == "node" and "out of range" in info.value.message


@pytest.mark.parametrize(("status", "content_type", "body", "error", "text"), [
    ("401 Unauthorized", "text/html", b"", RpcAuthError, "wrong RPC credentials"),
    ("403 Forbidden", "text/html", b"", RpcAuthError, "forbidden"),
    ("500 Internal Server Error", "text/html", b"oops", RpcConnectionError, "HTTP 500 without a JSON body"),
    ("200 OK", "application/json", b"{not json", RpcConnectionError, "'node' unreachable"),
])
async def test_fast_path_failures_map_like_python_bitcoinrpc(status: str, content_type: str, body: bytes,
                                                             error: type[Exception], text: str) -> None:
    server, client = await _client_for(_Daemon(lambda request: (status, content_type, body)))
    async with server, client:
        endpoint = client.endpoints[0]
        with pytest.raises(error, match=text):
            await client.call_endpoint(endpoint, "getblocktemplate", {})
        # the same answer to a method python-bitcoinrpc parses gives the same kind of error
        with pytest.raises(error):
            await client.call_endpoint(endpoint, "getnetworkinfo")


@pytest.mark.parametrize(("body", "text"), [
    (b"[1, 2]", "not an object"),
    (b'{"error":null,"id":1}', "missing JSON-RPC result"),  # python-bitcoinrpc lets a KeyError out here
])
async def test_fast_path_answer_without_a_result(body: bytes, text: str) -> None:
    server, client = await _client_for(_Daemon(lambda request: ("200 OK", "application/json", body)))
    async with server, client:
        with pytest.raises(RpcConnectionError, match=text):
            await client.call_endpoint(client.endpoints[0], "getblocktemplate", {})


async def test_big_template_is_parsed_without_collection_and_leaves_the_collector_on() -> None:
    big = orjson.dumps({"transactions": [{"data": "00" * 500, "txid": f"{i:064x}"} for i in range(1000)]})
    assert len(big) > COLLECT_YOUNG_ABOVE_BYTES
    server, client = await _client_for(_Daemon(_ok(big)))
    assert gc.isenabled()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        async with server, client:
            assert len((await client.getblocktemplate())["transactions"]) == 1000
    finally:
        gc.callbacks.remove(count)
    assert gc.isenabled() and not gcpause.paused()
    assert collections.count(0) >= 1  # the young generation, right after parsing
