"""The API's read pool (psycopg_pool underneath) through a database outage: PostgreSQL is reached through a
TCP relay on 127.0.0.1 that the test cuts and restores. Down: queries fail with DatabaseUnavailable (the API's
503); back: they answer again, without restarting anything. Connections are read-only."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from stratum_pool.store import queries
from stratum_pool.store.queries import DatabaseUnavailable, ReadPool


class Relay:
    """127.0.0.1:port -> PostgreSQL, with every connection cut on stop()."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()


async def test_outage_and_recovery(pg_dsn: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    relay = Relay(str(info.get("host", "127.0.0.1")), int(info.get("port", 5432)))
    await relay.start()
    dsn = psycopg.conninfo.make_conninfo(pg_dsn, host="127.0.0.1", port=relay.port)
    pool = ReadPool(dsn, size=2, connect_timeout=2)
    try:
        await pool.ping()
        assert await pool.run(queries.find_accounts, "nobody") == []
        # read-only: a write is refused by the server
        async def write(conn: queries.Conn) -> None:
            await conn.execute("CREATE TABLE nope (x int)")

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await pool.run(write)

        await relay.stop()
        with pytest.raises(DatabaseUnavailable):
            await pool.ping()
        with pytest.raises(DatabaseUnavailable):  # failing fast now, while it is down
            await pool.ping()

        await relay.start()  # the same port again: the database is back
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            try:
                await pool.ping()
                break
            except DatabaseUnavailable:
                assert asyncio.get_running_loop().time() < deadline, "the pool never reconnected"
                await asyncio.sleep(0.5)
        assert await pool.run(queries.find_accounts, "nobody") == []
    finally:
        await pool.close()
        with contextlib.suppress(AssertionError):
            await relay.stop()
