"""The running pool's admin socket (``[pool] admin_socket``): a unix stream socket that takes one JSON line per
request and answers one JSON line, for ``stratum-pool bans lift``.

Local only, guarded by the file's permissions (0660: the pool's user and group). Requests:
``{"command": "bans.lift", "ip": "203.0.113.7"}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.
The pool (one process) or the supervisor (``workers = N``) decides what a command does (``handlers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import structlog

log = structlog.get_logger("stratum_pool.server.admin")

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]
MAX_REQUEST_BYTES = 4096
SOCKET_MODE = 0o660


def normalize_ip(text: str) -> str:
    """The IP as the stratum server keys bans (the peer address string); ValueError names a bad one."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


class AdminServer:
    def __init__(self, path: str | Path, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._remove_stale()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, SOCKET_MODE)
        log.info("admin_socket_listening", path=str(self.path))

    def _remove_stale(self) -> None:
        """A socket file left by a pool that died: removed; one a live pool answers on: refuse to start."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"admin_socket {self.path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink(missing_ok=True)
                return
        raise OSError(f"admin_socket {self.path}: another pool is listening on it")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            answer = self.answer(line[:MAX_REQUEST_BYTES])
            writer.write(orjson.dumps(answer) + b"\n")
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = orjson.loads(line)
        except orjson.JSONDecodeError:
            return {"ok": False, "error": "not a JSON line"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": "want {\"command\": ...}"}
        handler = self.handlers.get(request["command"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {request['command']!r}; known: {sorted(self.handlers)}"}
        try:
            result = handler(request)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        log.info("admin_command", command=request["command"], result=result)
        return {"ok": True, **result}

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)


def request(path: str | Path, message: Mapping[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a running pool's admin socket; its answer. OSError when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(orjson.dumps(message) + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = orjson.loads(data) if data else {"ok": False, "error": "the pool closed the connection"}
    return answer if isinstance(answer, dict) else {"ok": False, "error": "unreadable answer"}
