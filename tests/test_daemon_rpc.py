"""Daemon RPC client without a daemon: result normalization, amounts, endpoints, errors, never blocking."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from stratum_pool.coins import get_coin
from stratum_pool.daemon.rpc import (
    ACCEPTED,
    DaemonClient,
    DaemonEndpoint,
    DaemonUnavailableError,
    EndpointSubmit,
    RpcAuthError,
    RpcConnectionError,
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
