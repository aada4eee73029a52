"""One HTTP/1.1 POST to a receiver, over TCP or TLS, on asyncio's streams: the status it answered.

Not aiohttp's client: it cost the pool process ~10 MiB resident (its modules, and two SSL contexts made at
its import) to send a few messages a day. A message is one connection (``Connection: close``): receivers
are rarely written to, and a fresh connection is never a stale one. TLS verifies the receiver's certificate
and name against the system's CAs (the context is made at the first https message, not before). A redirect
is not followed: it is an answer like any other 3xx (the URL to configure is the final one). User and
password in the URL are sent as HTTP Basic authorization.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from urllib.parse import unquote, urlsplit

MAX_ANSWER_HEAD = 16384
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r\n")

_default_context: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """The system's CAs, certificate and host name checked (made once, when first needed)."""
    global _default_context
    if _default_context is None:
        _default_context = ssl.create_default_context()
    return _default_context


class BadAnswer(Exception):
    """The receiver's answer is not an HTTP/1.x status line."""


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bool, bytes]:
    """(host, port, TLS, the request's bytes) of a POST of ``body`` to ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    tls = parts.scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if tls else 80)
    host_field = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_field += f":{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fields = {"Host": host_field, "User-Agent": "stratum-pool", "Content-Length": str(len(body)),
              "Connection": "close"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        fields["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    fields.update(headers)
    for name, value in fields.items():
        if any(c in name + value for c in "\r\n\x00"):
            raise ValueError("a header field holds a line break")
    head = f"POST {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return host, port, tls, head.encode("latin-1") + body


async def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
               ssl_context: ssl.SSLContext | None = None) -> int:
    """POST ``body`` to ``url`` and return the answer's status, all within ``timeout`` seconds. Raises
    ``OSError`` (``ssl.SSLError`` among them), ``TimeoutError``, ``BadAnswer`` or ``ValueError`` (the URL)."""
    host, port, tls, data = request_bytes(url, body, headers)
    context = ssl_context
    if tls and context is None:
        # reading the CA bundle takes tens of milliseconds: off the event loop, which serves the miners
        context = _default_context or await asyncio.to_thread(default_ssl_context)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=context if tls else None,
                                                       server_hostname=host if tls else None)
        try:
            writer.write(data)
            await writer.drain()
            line = await reader.readuntil(b"\r\n")
            match = _STATUS_LINE.fullmatch(line)
            if match is None:
                raise BadAnswer("not an HTTP/1.x status line")
            return int(match.group(1))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise BadAnswer("no status line") from exc
        finally:
            writer.close()
