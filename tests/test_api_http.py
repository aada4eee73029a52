"""The API's HTTP/1.1 server (``api/http.py``) on the wire: raw bytes in, the exact answers out.

Each test serves a small ``Application`` on 127.0.0.1 and talks to it through a plain socket, so what the server
accepts and refuses is what a client's bytes make it do (the API's own tests read it through aiohttp's client).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_pool.api.http import (
    MAX_HEAD,
    Application,
    HTTPError,
    HTTPServer,
    Request,
    Response,
    http_date,
    parse_head,
)

Answer = tuple[int, dict[str, str], bytes]


def make_app(static: Path | None = None, seen: list[Request] | None = None) -> Application:
    async def hello(request: Request) -> Response:
        if seen is not None:
            seen.append(request)
        return Response(json.dumps({"path": request.path, "query": request.query}).encode(),
                        content_type="application/json")

    async def item(request: Request) -> Response:
        return Response(request.match_info["name"].encode())

    async def boom(request: Request) -> Response:
        raise RuntimeError("a handler's bug")

    app = Application()
    app.add_get("/hello", hello)
    app.add_get("/items/{name}", item)
    app.add_get("/items/{name}/more", hello)
    app.add_get("/boom", boom)
    if static is not None:
        app.add_static("/static/", static)
    return app


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HTTPServer]:
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("let x = 1;\n")
    (static / "page.html").write_text("<p>hi</p>")
    (tmp_path / "secret.txt").write_text("not for clients")
    srv = HTTPServer(make_app(static), head_timeout=1.0, idle_timeout=3.0)
    await srv.start("127.0.0.1", 0)
    try:
        yield srv
    finally:
        await srv.close()


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> Answer:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))[:-4].decode("latin-1").split("\r\n")
    version, status, _ = head[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, line
        headers[name.lower()] = value
    length = int(headers["content-length"])
    body = b"" if head_only else await asyncio.wait_for(reader.readexactly(length), 5)
    return int(status), headers, body


async def exchange(server: HTTPServer, data: bytes, answers: int = 1, head_only: bool = False,
                   wait: float = 0.8) -> tuple[list[Answer], bool]:
    """Send ``data``; read ``answers`` answers; then whether the server closed the connection within ``wait``
    seconds (the fixture's idle timeout is longer: 3 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        out = [await read_answer(reader, head_only) for _ in range(answers)]
        if wait <= 0:
            return out, False
        try:
            closed = await asyncio.wait_for(reader.read(1), wait) == b""
        except TimeoutError:
            closed = False
        return out, closed
    finally:
        writer.close()


def get(path: str, *headers: str, version: str = "1.1", method: str = "GET") -> bytes:
    return (f"{method} {path} HTTP/{version}\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers)
            + "\r\n").encode()


async def test_a_get_is_answered_with_length_date_and_type(server: HTTPServer) -> None:
    [(status, headers, body)], _ = await exchange(server, get("/hello?a=1&b=%20x&a=2&c"))
    assert status == 200
    assert json.loads(body) == {"path": "/hello", "query": {"a": "1", "b": " x", "c": ""}}
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert headers["date"].endswith(" GMT") and len(headers["date"]) == 29


async def test_http11_keeps_the_connection_and_answers_pipelined_requests_in_order(server: HTTPServer) -> None:
    answers, closed = await exchange(server, get("/items/a") + get("/items/b") + get("/items/c"), answers=3)
    assert [body for _, _, body in answers] == [b"a", b"b", b"c"]
    assert all("connection" not in h for _, h, _ in answers)
    assert not closed
    _, closed = await exchange(server, get("/items/a"), wait=10)
    assert closed  # after idle_timeout (3 s) with no next request


async def test_connection_close_and_http10(server: HTTPServer) -> None:
    [(_, headers, _)], closed = await exchange(server, get("/hello", "Connection: close"))
    assert headers["connection"] == "close" and closed
    [(_, headers, _)], closed = await exchange(server, get("/hello", version="1.0"))
    assert headers["connection"] == "close" and closed
    answers, _ = await exchange(server, get("/hello", "Connection: keep-alive", version="1.0") * 2, answers=2)
    assert [h["connection"] for _, h, _ in answers] == ["keep-alive", "keep-alive"]


async def test_head_has_the_get_headers_and_no_body(server: HTTPServer) -> None:
    [(_, get_headers, body)], _ = await exchange(server, get("/static/app.js"))
    answers, _ = await exchange(server, get("/static/app.js", method="HEAD") + get("/items/z"), answers=2,
                                head_only=True)
    (status, headers, _), (next_status, next_headers, _) = answers
    assert status == 200 and headers["content-length"] == get_headers["content-length"] == str(len(body))
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    # had the HEAD answer carried a body, the next answer's head would not be where it is
    assert (next_status, next_headers["content-length"]) == (200, "1")


async def test_routes_decode_the_path_once(server: HTTPServer) -> None:
    [(status, _, body)], _ = await exchange(server, get("/items/caf%C3%A9%2541"))
    assert (status, body.decode()) == (200, "café%41")
    [(status, _, _)], _ = await exchange(server, get("/items/a%2Fb"))  # one segment's name may not hold a slash
    assert status == 404
    [(status, _, _)], _ = await exchange(server, get("/items/a/more"))
    assert status == 200


async def test_unknown_paths_methods_and_a_handlers_error(server: HTTPServer) -> None:
    [(status, _, _)], _ = await exchange(server, get("/nothing"))
    assert status == 404
    [(status, headers, _)], closed = await exchange(server, get("/hello", method="DELETE"))
    assert (status, headers["allow"], closed) == (405, "GET, HEAD", False)
    [(status, _, body)], _ = await exchange(server, get("/boom"))
    assert (status, body) == (500, b"internal error")  # and nothing of the exception


@pytest.mark.parametrize("path", ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt",
                                  "/static/%2E%2E%2Fsecret.txt", "/static/..%5csecret.txt", "/static/.",
                                  "/static/", "/static/app.js%00.txt", "/static//etc/passwd",
                                  "/static/%2fetc%2fpasswd", "/static/nothing.js"])
async def test_static_files_only_from_inside_their_directory(server: HTTPServer, path: str) -> None:
    [(status, _, body)], _ = await exchange(server, get(path))
    assert status == 404 and b"not for clients" not in body


async def test_static_file_types(server: HTTPServer) -> None:
    [(status, headers, body)], _ = await exchange(server, get("/static/page.html"))
    assert (status, headers["content-type"], body) == (200, "text/html; charset=utf-8", b"<p>hi</p>")


async def test_a_request_with_a_body_is_answered_then_closed(server: HTTPServer) -> None:
    for extra in ("Content-Length: 5", "Transfer-Encoding: chunked"):
        # the body's bytes are never read as a next request
        [(status, headers, _)], closed = await exchange(server, get("/hello", extra) + b"GET /items/x HTTP/1.1\r\n\r\n")
        assert (status, headers["connection"], closed) == (200, "close", True), extra
    answers, closed = await exchange(server, get("/hello", "Content-Length: 0") + get("/items/y"), answers=2)
    assert [s for s, _, _ in answers] == [200, 200] and not closed


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /hello\r\n\r\n", 400),  # HTTP/0.9
    (b"GET  /hello HTTP/1.1\r\n\r\n", 400),
    (b"GET http://x/hello HTTP/1.1\r\n\r\n", 400),  # absolute form: not a proxy
    (b"GET * HTTP/1.1\r\n\r\n", 400),
    (b"G(T /hello HTTP/1.1\r\n\r\n", 400),
    (b"GET /hel lo HTTP/1.1\r\n\r\n", 400),
    (b"GET /hello HTTP/2.0\r\n\r\n", 505),
    (b"GET /hello HTTP/1.2\r\n\r\n", 505),
    (b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # whitespace before the colon (smuggling)
    (b"GET /hello HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nNoColon\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400),
    (b"GET /%ff HTTP/1.1\r\n\r\n", 400),  # not UTF-8 once decoded
    (b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400),  # raw non-ASCII in the target
    (b"GET /hello HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"GET /hello HTTP/1.1\r\nX: " + b"y" * MAX_HEAD + b"\r\n\r\n", 431),
])
async def test_malformed_requests_are_refused_and_closed(server: HTTPServer, data: bytes, status: int) -> None:
    [(got, headers, _)], closed = await exchange(server, data)
    assert (got, headers["connection"], closed) == (status, "close", True)


async def test_a_slow_head_or_an_idle_connection_is_closed(server: HTTPServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after head_timeout (1 s), unanswered
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # and never a byte
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_close_ends_open_connections_and_runs_cleanup(tmp_path: Path) -> None:
    cleaned: list[bool] = []

    async def cleanup() -> None:
        cleaned.append(True)

    app = make_app()
    app.on_cleanup.append(cleanup)
    srv = HTTPServer(app)  # the default timeouts: the connection would stay open 15 s
    await srv.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(get("/hello"))
    await read_answer(reader)
    await asyncio.wait_for(srv.close(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert cleaned == [True]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", srv.port)
    writer.close()


async def test_the_middleware_sees_the_routers_errors() -> None:
    async def middleware(request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            return await handler(request)
        except HTTPError as exc:
            return Response(f"{exc.status} {exc.reason} {exc.headers.get('Allow')}".encode(), exc.status)

    app = make_app()
    app.middleware = middleware
    srv = HTTPServer(app)
    await srv.start("127.0.0.1", 0)
    try:
        answers, _ = await exchange(srv, get("/nope") + get("/hello", method="POST"), answers=2)
        assert [(s, b) for s, _, b in answers] == [(404, b"404 Not Found None"),
                                                   (405, b"405 Method Not Allowed GET, HEAD")]
    finally:
        await srv.close()


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"  # RFC 9110's example
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_parse_head_fields() -> None:
    request, keep_alive, has_body = parse_head(
        b"GET /a%20b?x=1+2 HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for:  5.6.7.8 \r\n"
        b"Connection: Keep-Alive, Close", "9.9.9.9")
    assert (request.method, request.path, request.query, request.path_qs) == ("GET", "/a b", {"x": "1 2"},
                                                                              "/a b?x=1+2")
    assert request.headers["x-forwarded-for"] == "1.2.3.4, 5.6.7.8"
    assert (request.remote, keep_alive, has_body) == ("9.9.9.9", False, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.builds(lambda a, b: a + b"\r\n\r\n" + b,
                                           st.sampled_from([get("/hello")[:-4], b"GET /items/x HTTP/1.1"]),
                                           st.binary(max_size=60)))
def test_any_bytes_are_answered_or_refused_and_the_server_goes_on(data: bytes) -> None:
    async def run() -> None:
        srv = HTTPServer(make_app(), head_timeout=0.3, idle_timeout=0.3)
        await srv.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(data)
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            # whatever came back is whole answers, each a status line first
            assert got == b"" or got.startswith(b"HTTP/1.1 ")
            [(status, _, body)], _ = await exchange(srv, get("/items/ok"), wait=0)
            assert (status, body) == (200, b"ok")
        finally:
            await srv.close()

    asyncio.run(run())


async def test_past_max_connections_new_ones_are_closed_unanswered_and_counted() -> None:
    refused: list[int] = []
    srv = HTTPServer(make_app(), max_connections=2, on_refused=lambda: refused.append(1))
    await srv.start("127.0.0.1", 0)
    try:
        held = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(2)]
        for reader, writer in held:  # both served, and kept open
            writer.write(get("/items/h"))
            assert (await read_answer(reader))[2] == b"h"
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(get("/items/x"))
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await read_answer(reader)
        writer.close()
        assert (srv.refused, refused) == (1, [1])
        held[0][1].close()  # one closes: a new one is served again
        await asyncio.sleep(0.2)
        [(status, _, _)], _ = await exchange(srv, get("/items/y"), wait=0)
        assert status == 200
        held[1][1].close()
    finally:
        await srv.close()
