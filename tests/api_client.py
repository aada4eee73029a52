"""The API served by its own HTTP server on 127.0.0.1 (a free port) and read with aiohttp's client: another
HTTP implementation than the server's, as a browser or a scraper would be."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from stratum_pool.api import start_api_server
from stratum_pool.api.http import Application, HTTPServer


class ApiClient:
    """``async with ApiClient(app) as client``: ``await client.get("/api/pool")`` is aiohttp's response."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.server: HTTPServer | None = None
        self.session: aiohttp.ClientSession | None = None
        self.port = 0

    async def __aenter__(self) -> ApiClient:
        self.server, self.port = await start_api_server(self.app, "127.0.0.1", 0)
        self.session = aiohttp.ClientSession(f"http://127.0.0.1:{self.port}")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.session is not None:
            await self.session.close()
        if self.server is not None:
            await self.server.close()

    def get(self, path: str, **kwargs: Any) -> Any:
        assert self.session is not None
        return self.session.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        assert self.session is not None
        return self.session.post(path, **kwargs)
