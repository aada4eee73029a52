"""The PROXY protocol: the parser on hand-made headers, then real HAProxy (Debian's package, started here on
loopback) in front of a real server, sending v1 (send-proxy) and v2 (send-proxy-v2). Clients connect to
HAProxy from several 127.0.0.x addresses; HAProxy connects to the pool from 127.0.0.1: connection limits and
bans must see the clients' addresses, not the proxy's.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from miner import Miner
from test_abuse import ADDRESS, COIN, LIMITS, POLICY, AbusePool, Client, error_code

from stratum_pool.devnet.common import free_port
from stratum_pool.protocol.session import SessionConfig
from stratum_pool.server.proxy import V2_SIGNATURE, ProxyError, ProxyHeader, parse

# ----- the parser


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + len(body).to_bytes(2, "big") + body


def test_v1_headers() -> None:
    line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 3333\r\n"
    assert parse(line + b'{"id":1}\n') == ProxyHeader(len(line), "203.0.113.7", 51234)
    line6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 3333\r\n"
    assert parse(line6) == ProxyHeader(len(line6), "2001:db8::7", 51234)
    assert parse(b"PROXY UNKNOWN\r\n") == ProxyHeader(15)  # the proxy's own: keeps the socket's address
    for part in (b"", b"P", b"PROXY TCP4 203.0.113.7 192.0", line[:-1]):
        assert parse(part) is None  # more bytes needed
    bad = [
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n", "must be PROXY TCP4|TCP6"),
        (b"PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n", "not an IPv4 address"),
        (b"PROXY TCP4 203.0.113.999 192.0.2.1 1 2\r\n", "not an IPv4 address"),
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n", "not 0..65535"),
        (b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n", "must be PROXY TCP4|TCP6"),
        (b"PROXY TCP4 " + b"1" * 200, "longer than 107 bytes"),
        (b'{"id": 1, "method": "mining.subscribe"}\n', "no PROXY protocol header"),
        (b"PRONTO", "no PROXY protocol header"),
    ]
    for data, words in bad:
        with pytest.raises(ProxyError, match=words.replace("|", r"\|")):
            parse(data)


def test_v2_headers() -> None:
    ipv4 = bytes([203, 0, 113, 7, 192, 0, 2, 1]) + (51234).to_bytes(2, "big") + (3333).to_bytes(2, "big")
    header = v2(1, 0x11, ipv4)
    assert parse(header + b'{"id":1}\n') == ProxyHeader(28, "203.0.113.7", 51234)
    tlv = bytes([0x01, 0x00, 0x02]) + b"h2"  # an ALPN TLV after the addresses is skipped
    assert parse(v2(1, 0x11, ipv4 + tlv)) == ProxyHeader(28 + len(tlv), "203.0.113.7", 51234)
    ipv6 = bytes.fromhex("20010db8" + "0" * 23 + "7") + bytes(16) + bytes(4)
    assert parse(v2(1, 0x21, ipv6)) == ProxyHeader(52, "2001:db8::7", 0)
    mapped = bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 9]) + bytes(16) + bytes(4)
    assert parse(v2(1, 0x21, mapped)).source == "198.51.100.9"  # type: ignore[union-attr]  # one spelling
    assert parse(v2(0, 0x00, b"")) == ProxyHeader(16)  # LOCAL: a health check
    for cut in (1, 12, 15, 27):
        assert parse(header[:cut]) is None
    bad = [
        (bytes([*V2_SIGNATURE[:11], 0]) + bytes(8), "no PROXY protocol header"),
        (V2_SIGNATURE + bytes([0x31, 0x11, 0, 12]) + ipv4, "version 3"),
        (v2(2, 0x11, ipv4), "command 2"),
        (v2(1, 0x11, ipv4[:8]), "IPv4 addresses cut short"),
        (v2(1, 0x12, ipv4), "TCP over IPv4 or IPv6"),  # UDP
        (V2_SIGNATURE + bytes([0x21, 0x11, 0xFF, 0xFF]), "at most"),
    ]
    for data, words in bad:
        with pytest.raises(ProxyError, match=words):
            parse(data)


# ----- HAProxy in front of the pool


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    assert found, "haproxy is missing: `make test` installs it (apt-get install haproxy)"
    return found


@dataclass
class HAProxy:
    v1_port: int
    v2_port: int
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def haproxy(pool_port: int, directory: Path) -> Iterator[HAProxy]:
    v1_port, v2_port = free_port(), free_port()
    config = directory / "haproxy.cfg"
    config.write_text(f"""
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend v1
    bind 127.0.0.1:{v1_port}
    default_backend pool_v1
frontend v2
    bind 127.0.0.1:{v2_port}
    default_backend pool_v2
backend pool_v1
    server pool 127.0.0.1:{pool_port} send-proxy
backend pool_v2
    server pool 127.0.0.1:{pool_port} send-proxy-v2
""")
    log = (directory / "haproxy.log").open("wb")
    proc = subprocess.Popen([haproxy_binary(), "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        for port in (v1_port, v2_port):
            while True:
                assert proc.poll() is None, (directory / "haproxy.log").read_text()
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.05)
        yield HAProxy(v1_port, v2_port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[AbusePool, HAProxy]]:
    limits = replace(LIMITS, max_connections_per_ip=3, proxy_header_timeout_seconds=0.5)
    pool = AbusePool(limits, POLICY, SessionConfig(COIN, initial_difficulty=2e-7))
    pool.server.proxy_protocol = True
    await pool.server.start()
    try:
        with haproxy(pool.server.port, tmp_path) as proxy:
            yield pool, proxy
    finally:
        await pool.server.close()


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_limits_and_bans_see_the_clients_behind_haproxy(proxied: tuple[AbusePool, HAProxy]) -> None:
    p, proxy = proxied
    # a miner through each version, each from its own address: both mine, counted under their addresses
    a = await Miner("127.0.0.1", proxy.v1_port, COIN, ADDRESS, "a", source="127.0.0.2").start()
    b = await Miner("127.0.0.1", proxy.v2_port, COIN, ADDRESS, "b", source="127.0.0.3").start()
    try:
        for m in (a, b):
            assert (await m.mine_share())["result"] is True
        assert p.guard.per_ip == {"127.0.0.2": 1, "127.0.0.3": 1}  # not HAProxy's 127.0.0.1

        # the per-address cap (3) applies per client: a fourth from 127.0.0.4 is closed, 127.0.0.5 is not
        clients = [await Client.open(port, "127.0.0.4") for port in (proxy.v1_port, proxy.v2_port, proxy.v1_port)]
        for c in clients:
            assert (await c.call("mining.ping", []))["result"] == "pong"
        fourth = await Client.open(proxy.v2_port, "127.0.0.4")
        assert await fourth.closed()
        await fourth.close()
        other = await Client.open(proxy.v2_port, "127.0.0.5")
        assert (await other.call("mining.ping", []))["result"] == "pong"
        assert p.guard.refused == 1 and p.guard.per_ip["127.0.0.4"] == 3

        # a malformed flood from 127.0.0.6 bans 127.0.0.6 only: its connections dropped, the rest mine on
        bad = await Client.open(proxy.v1_port, "127.0.0.6")
        await bad.handshake()
        with contextlib.suppress(ConnectionError, AssertionError):
            for _ in range(POLICY.max_malformed + 1):
                assert error_code(await bad.call("mining.submit", [1, 2, 3, 4, 5])) == 20
        assert await bad.closed()
        await bad.close()
        assert [(x.ip, x.reason) for x in p.banned] == [("127.0.0.6", "malformed")]
        again = await Client.open(proxy.v2_port, "127.0.0.6")  # refused through either version
        assert await again.closed()
        await again.close()
        for m in (a, b):
            assert (await m.mine_share())["result"] is True
        for c in [*clients, other]:
            assert (await c.call("mining.ping", []))["result"] == "pong"
            await c.close()
    finally:
        await a.close()
        await b.close()


async def test_without_a_valid_header_a_connection_is_closed(proxied: tuple[AbusePool, HAProxy]) -> None:
    p, _ = proxied
    # straight to the pool's port, bypassing HAProxy: stratum without a header, a forged garbage header,
    # and nothing at all (closed after proxy_header_timeout_seconds)
    for data in (b'{"id": 1, "method": "mining.subscribe", "params": []}\n', b"PROXY TCP4 1.2.3.4\r\n", b""):
        c = await Client.open(p.server.port, "127.0.0.7")
        if data:
            await c.send(data)
        assert await c.closed()
        await c.close()
    assert len(p.allocator) == 0 and p.guard.per_ip == {}  # no session, nothing counted


async def test_a_header_on_a_port_not_configured_for_it_is_refused() -> None:
    pool = AbusePool(LIMITS, POLICY, SessionConfig(COIN, initial_difficulty=2e-7))
    await pool.server.start()
    try:
        for header in (b"PROXY TCP4 203.0.113.7 127.0.0.1 5000 3333\r\n",
                       v2(1, 0x11, bytes([203, 0, 113, 7, 127, 0, 0, 1]) + bytes(4))):
            c = await Client.open(pool.server.port, "127.0.0.8")
            await c.send(header + b'{"id": 1, "method": "mining.subscribe", "params": []}\n')
            reply = await c.line()  # error 20 naming the header, then the close; the address is not believed
            assert error_code(reply) == 20 and "PROXY protocol header" in reply["error"][1]
            assert await c.closed()
            await c.close()
        await wait_until(lambda: pool.guard.per_ip == {})
        assert "203.0.113.7" not in pool.guard._windows and "127.0.0.8" in pool.guard._windows
    finally:
        await pool.server.close()


async def test_tls_passed_through_haproxy_with_proxy_headers(tmp_path: Path) -> None:
    """HAProxy passing TLS through (mode tcp) to the TLS port with send-proxy / send-proxy-v2: the header comes
    in the clear before the handshake; the miners verify the pool's certificate through the proxy and are
    counted under their own addresses."""
    from test_tls import client_context, make_cert

    from stratum_pool.server.tls import server_context

    cert, key = make_cert(tmp_path)
    pool = AbusePool(LIMITS, POLICY, SessionConfig(COIN, initial_difficulty=2e-7))
    pool.server.tls_context = server_context(str(cert), str(key))
    pool.server.tls_proxy_protocol = True
    results: list[str] = []
    pool.server.on_tls = results.append
    await pool.server.start()
    try:
        with haproxy(pool.server.tls_port, tmp_path) as proxy:
            miners = [Miner("127.0.0.1", port, COIN, ADDRESS, f"tls{i}", source=f"127.0.0.{10 + i}",
                            tls=client_context(cert), server_hostname="localhost")
                      for i, port in enumerate((proxy.v1_port, proxy.v2_port))]
            try:
                for m in miners:
                    await m.start()
                    assert (await m.mine_share())["result"] is True
                assert pool.guard.per_ip == {"127.0.0.10": 1, "127.0.0.11": 1}
                # (haproxy() probing the frontends made HAProxy open and drop connections: "closed")
                assert results.count("ok") == 2 and set(results) <= {"ok", "closed"}
            finally:
                for m in miners:
                    await m.close()
        # straight to the TLS port without a header: closed before any handshake or count
        c = await Client.open(pool.server.tls_port, "127.0.0.12")
        await c.send(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello, not a PROXY header
        assert await c.closed()
        await c.close()
        assert results.count("ok") == 2 and "127.0.0.12" not in pool.guard.per_ip
        assert "failed" not in results and "timeout" not in results  # no handshake was even tried
    finally:
        await pool.server.close()
