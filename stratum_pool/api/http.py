"""The HTTP/1.1 server of the API and the dashboard: GET and HEAD on a few routes, no request bodies.

Not a framework's: aiohttp's server cost the pool process 11 MiB resident (its hundred modules, and the two
SSL contexts its client makes at import, one of them reading the system's CA bundle) to serve a dozen GET
routes; this one is a few hundred lines on asyncio's streams.

What it accepts, strictly (anything else is answered 400, 431 or 505 and the connection closed):
- a request line ``METHOD SP /origin-form SP HTTP/1.0|1.1``, CRLF line ends, a head of at most
  ``MAX_HEAD`` bytes and ``MAX_HEADERS`` fields, no whitespace before a field's colon, no folded lines,
  at most one Content-Length;
- a request with a body (a Content-Length above 0, or any Transfer-Encoding) is answered and the
  connection closed, its body unread: no route takes one.
The path is percent-decoded once before routing; a route's ``{name}`` matches one segment. A static file is
served only from inside its directory: a path with a ``..`` or ``.`` segment, a backslash or a NUL is not
found. At most ``max_connections`` are open at once (a new one past it is closed unanswered). Connections are
kept alive (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only when asked); a connection's first request
head must arrive whole within ``head_timeout``, each next one within ``idle_timeout`` of the last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import structlog

log = structlog.get_logger("stratum_pool.api")

MAX_HEAD = 8192
MAX_HEADERS = 100
# Open connections at once; past it a new one is closed unanswered (and ``on_refused`` called): the API
# shares the process's file descriptors with the miners' connections.
MAX_CONNECTIONS = 256
HEAD_TIMEOUT = 10.0
IDLE_TIMEOUT = 15.0
WRITE_TIMEOUT = 30.0

# RFC 9110's token: a method's and a field name's characters
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[^ \x00-\x1f\x7f]*) HTTP/(\d)\.(\d)")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_SEGMENT = re.compile(r"\{([a-z_]+)\}")

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
                 ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(epoch: float) -> str:
    """RFC 9110's IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), whatever the locale."""
    t = time.gmtime(epoch)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


class HTTPError(Exception):
    """An answer with an error status (404, 405...), raised where it is found; ``reason`` is shown."""

    def __init__(self, status: int, reason: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.reason = reason if reason is not None else HTTPStatus(status).phrase
        self.headers = headers or {}
        super().__init__(f"{status} {self.reason}")


class Request:
    """One request's head. ``headers`` has lower-case names (a repeated field's values joined by ", ");
    ``query`` the first value of each parameter."""

    __slots__ = ("headers", "match_info", "method", "path", "query", "query_string", "remote", "version")

    def __init__(self, method: str, path: str, query_string: str, headers: dict[str, str], remote: str,
                 version: tuple[int, int] = (1, 1)) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        query: dict[str, str] = {}
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            query.setdefault(name, value)
        self.query = query
        self.headers = headers
        self.remote = remote
        self.match_info: dict[str, str] = {}
        self.version = version

    @property
    def path_qs(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path


class Response:
    """An answer: status, body and headers (Content-Length and Date are the server's)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes = b"", status: int = 200, content_type: str = "text/plain; charset=utf-8",
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = {"Content-Type": content_type}
        if headers:
            self.headers.update(headers)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0]


Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, Handler], Awaitable[Response]]


def file_response(path: Path) -> Response:
    """A small file's bytes, its type from its suffix (read whole: the dashboard's files are kilobytes)."""
    return Response(path.read_bytes(), content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))


class Application:
    """Routes (GET, which answers HEAD too), static directories, one middleware around every handler (the
    router's 404 and 405 included), hooks on each answer and at cleanup."""

    def __init__(self, middleware: Middleware | None = None) -> None:
        self.middleware = middleware
        self._exact: dict[str, Handler] = {}
        self._patterns: list[tuple[re.Pattern[str], Handler]] = []
        self._static: list[tuple[str, Path]] = []
        self.on_response: list[Callable[[Request, Response], None]] = []
        self.on_cleanup: list[Callable[[], Awaitable[None]]] = []

    def add_get(self, path: str, handler: Handler) -> None:
        if "{" not in path:
            self._exact[path] = handler
            return
        parts = _SEGMENT.split(path)  # literal, name, literal, name, ...
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        self._patterns.append((re.compile(regex), handler))

    def add_static(self, prefix: str, directory: Path) -> None:
        """Files of ``directory`` (not its subdirectories' files) under ``prefix`` (ending in "/")."""
        self._static.append((prefix, directory.resolve()))

    def _resolve(self, request: Request) -> Handler:
        path = request.path
        handler = self._exact.get(path)
        if handler is None:
            for regex, candidate in self._patterns:
                match = regex.fullmatch(path)
                if match is not None:
                    request.match_info = match.groupdict()
                    handler = candidate
                    break
        if handler is None:
            for prefix, directory in self._static:
                if path.startswith(prefix):
                    handler = self._static_handler(directory, path[len(prefix):])
                    break
        if handler is None:
            raise HTTPError(404)
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, headers={"Allow": "GET, HEAD"})
        return handler

    @staticmethod
    def _static_handler(directory: Path, name: str) -> Handler:
        async def serve(request: Request) -> Response:
            if (not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..")):
                raise HTTPError(404)
            path = directory / name
            if path.parent != directory or not path.is_file():
                raise HTTPError(404)
            return file_response(path)
        return serve

    async def handle(self, request: Request) -> Response:
        async def routed(request: Request) -> Response:
            return await self._resolve(request)(request)

        response = await (self.middleware(request, routed) if self.middleware is not None else routed(request))
        for hook in self.on_response:
            hook(request, response)
        return response

    async def cleanup(self) -> None:
        for hook in self.on_cleanup:
            await hook()


def parse_head(head: bytes, remote: str) -> tuple[Request, bool, bool]:
    """A request from its head (CRLF CRLF excluded): (request, keep alive, has a body). Raises ``HTTPError``
    (400, 431, 505), or ``ValueError`` for a target that is not ASCII or not UTF-8 once decoded."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HTTPError(400, "malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1" or minor not in (b"0", b"1"):
        raise HTTPError(505, "HTTP version not supported")
    if len(lines) - 1 > MAX_HEADERS:
        raise HTTPError(431, "too many header fields")
    headers: dict[str, str] = {}
    lengths = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise HTTPError(400, "malformed header field")
        value = value.strip(b" \t")
        if _FIELD_VALUE.fullmatch(value) is None:
            raise HTTPError(400, "malformed header field")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key == "content-length":
            lengths += 1
            if lengths > 1 or not value.isdigit():
                raise HTTPError(400, "bad Content-Length")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    version = (1, int(minor))
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = ("keep-alive" in connection) if version == (1, 0) else ("close" not in connection)
    has_body = "transfer-encoding" in headers or int(headers.get("content-length", "0")) > 0
    raw_path, _, query_string = target.decode("ascii").partition("?")
    return (Request(method.decode("ascii"), unquote(raw_path, errors="strict"), query_string, headers, remote,
                    version), keep_alive, has_body)


class HTTPServer:
    """Serves an ``Application`` on a TCP port until ``close``."""

    def __init__(self, app: Application, *, head_timeout: float = HEAD_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT, write_timeout: float = WRITE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, on_refused: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.max_connections = max_connections
        self.on_refused = on_refused
        self.refused = 0
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._date = (0, "")
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the bound port."""
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD + 4)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        """Stop listening, close every open connection, then run the application's cleanup."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        await self.app.cleanup()

    def _now(self) -> str:
        second = int(self.clock())
        if self._date[0] != second:
            self._date = (second, http_date(second))
        return self._date[1]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            self.refused += 1
            if self.on_refused is not None:
                self.on_refused()
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("api_connection_refused", open=len(self._connections), refused=self.refused,
                            max_connections=self.max_connections)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        try:
            await self._serve(reader, writer, remote)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("api_connection_error")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: str) -> None:
        timeout = self.head_timeout  # the first request's head; then the time to the next one's end
        while True:
            try:
                async with asyncio.timeout(timeout):
                    head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
            except asyncio.LimitOverrunError:
                await self._send(writer, Response(b"request head too large", 431), "close")
                return
            except asyncio.IncompleteReadError:
                return
            timeout = self.idle_timeout
            try:
                request, keep_alive, has_body = parse_head(head, remote)
            except (HTTPError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                error = exc if isinstance(exc, HTTPError) else HTTPError(400, "bad request")
                await self._send(writer, Response(error.reason.encode(), error.status), "close")
                return
            response = await self._answer(request)
            keep_alive = keep_alive and not has_body
            connection = ("keep-alive" if request.version == (1, 0) else None) if keep_alive else "close"
            await self._send(writer, response, connection, head_only=request.method == "HEAD")
            if not keep_alive:
                return

    async def _answer(self, request: Request) -> Response:
        try:
            return await self.app.handle(request)
        except HTTPError as exc:
            return Response(exc.reason.encode(), exc.status, headers=exc.headers)
        except Exception:
            log.exception("api_error", path=request.path)
            return Response(b"internal error", 500)

    async def _send(self, writer: asyncio.StreamWriter, response: Response, connection: str | None,
                    head_only: bool = False) -> None:
        """``response`` with its length and the date (and a Connection field unless None); no body for HEAD."""
        body = response.body
        lines = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
                 f"Date: {self._now()}", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if connection is not None:
            lines.append(f"Connection: {connection}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head if head_only else head + body)
        if writer.transport.get_write_buffer_size():  # not all of it went out at once
            async with asyncio.timeout(self.write_timeout):
                await writer.drain()
