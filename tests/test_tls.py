"""stratum+tls against a real server on 127.0.0.1 (in-memory work, as in test_abuse.py): Python ``ssl``
clients verify the pool's certificate by name as ESP-Miner does, mine through it, and the bad handshakes
(stalled, garbage, a too old TLS version) cost a bounded time and are counted.

The same sessions as on the plain port: a miner over TLS gets its shares judged by the same core.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from miner import Miner
from test_abuse import ADDRESS, COIN, LIMITS, POLICY, AbusePool

from stratum_pool.config import ConfigError, parse_settings
from stratum_pool.devnet.certs import make_self_signed
from stratum_pool.protocol.session import SessionConfig
from stratum_pool.server.tls import TlsError, server_context


def make_cert(directory: Path, name: str = "pool") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    make_self_signed(cert, key, ["localhost", "pool.example"], ["127.0.0.1"])
    return cert, key


def client_context(cafile: Path, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """What ESP-Miner does: verify the chain against the pasted PEM and the name as configured."""
    context = ssl.create_default_context(cafile=str(cafile))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    if maximum is not None:
        context.maximum_version = maximum
    return context


class TlsPool(AbusePool):
    def __init__(self, cert: Path, key: str | Path, handshake_timeout: float = 10.0) -> None:
        limits = replace(LIMITS, tls_handshake_timeout_seconds=handshake_timeout)
        super().__init__(limits, POLICY, SessionConfig(COIN, initial_difficulty=2e-7))
        self.results: list[str] = []
        self.server.tls_context = server_context(str(cert), str(key))
        self.server.on_tls = self.results.append

    def tls_miner(self, cafile: Path, worker: str, host: str = "localhost", **kwargs: object) -> Miner:
        return Miner("127.0.0.1", self.server.tls_port, COIN, ADDRESS, worker,
                     tls=client_context(cafile, **kwargs), server_hostname=host)  # type: ignore[arg-type]


@pytest.fixture
async def tls_pool(tmp_path: Path) -> AsyncIterator[tuple[TlsPool, Path]]:
    cert, key = make_cert(tmp_path)
    pool = TlsPool(cert, key, handshake_timeout=0.5)
    await pool.server.start()
    yield pool, cert
    await pool.server.close()


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def closed_by_server(loop: asyncio.AbstractEventLoop, s: socket.socket) -> bool:
    """Read until EOF or reset (a TLS alert may come first); False if the server kept it open 5 s."""
    try:
        while await asyncio.wait_for(loop.sock_recv(s, 4096), 5):
            pass
    except (ConnectionError, OSError):
        pass
    except TimeoutError:
        return False
    return True


def negotiated(miner: Miner) -> tuple[str | None, bytes | None]:
    assert miner._writer is not None
    tls = miner._writer.get_extra_info("ssl_object")
    assert isinstance(tls, ssl.SSLObject)
    return tls.version(), tls.getpeercert(binary_form=True)


async def test_miners_verify_the_certificate_by_name_and_mine(tls_pool: tuple[TlsPool, Path]) -> None:
    p, cert = tls_pool
    # by DNS name, by IP address (an IP SAN; the same IP is also a DNS SAN for mbedTLS 2.x), and over
    # TLS 1.2 as well as 1.3
    for worker, host, maximum in (("dns", "localhost", None), ("ip", "127.0.0.1", None),
                                  ("other", "pool.example", None), ("tls12", "localhost", ssl.TLSVersion.TLSv1_2)):
        async with p.tls_miner(cert, worker, host, maximum=maximum) as miner:
            version, _ = negotiated(miner)
            assert version == ("TLSv1.2" if maximum else "TLSv1.3")
            for _ in range(3):
                reply = await miner.mine_share()
                assert reply["result"] is True, reply
    assert p.results == ["ok"] * 4
    # the plain port serves the same pool alongside
    plain = await p.miner("plain").start()
    assert (await plain.mine_share())["result"] is True
    await plain.close()


async def test_a_wrong_name_or_an_unknown_certificate_is_refused_by_the_client(
        tls_pool: tuple[TlsPool, Path], tmp_path: Path) -> None:
    p, cert = tls_pool
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await p.tls_miner(cert, "w", host="pool.other").connect()
    other_cert, _ = make_cert(tmp_path, "other")  # the pasted PEM is not the pool's
    with pytest.raises(ssl.SSLCertVerificationError):
        await p.tls_miner(other_cert, "w").connect()
    await wait_until(lambda: len(p.results) == 2)
    assert "ok" not in p.results  # the server saw the client give up
    await wait_until(lambda: p.sessions_from("127.0.0.1") == 0)  # nothing left open


async def test_old_versions_stalls_and_garbage_cost_bounded_time_and_are_counted(
        tls_pool: tuple[TlsPool, Path]) -> None:
    p, cert = tls_pool
    loop = asyncio.get_running_loop()
    # a TLS 1.1 client: refused (whatever the client's own library still allows)
    old = client_context(cert)
    with warnings.catch_warnings():  # deprecated on purpose: this is the client the pool must refuse
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("ALL:@SECLEVEL=0")  # so that this client really offers TLS 1.1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", p.server.tls_port, ssl=old, server_hostname="localhost")
    # the server refused that hello ("failed"), not the client giving up before sending it ("closed")
    await wait_until(lambda: p.results == ["failed"])
    # a client that connects and says nothing: closed after the 0.5 s handshake timeout
    stalled = socket.socket()
    stalled.setblocking(False)
    await loop.sock_connect(stalled, ("127.0.0.1", p.server.tls_port))
    # plain stratum on the TLS port: not a ClientHello, closed at once
    garbage = socket.socket()
    garbage.setblocking(False)
    await loop.sock_connect(garbage, ("127.0.0.1", p.server.tls_port))
    await loop.sock_sendall(garbage, b'{"id": 1, "method": "mining.subscribe", "params": []}\n')
    try:
        await wait_until(lambda: sorted(p.results) == ["failed", "failed", "timeout"], timeout=10)
        for s in (stalled, garbage):  # the server closed both
            assert await closed_by_server(loop, s)
        await wait_until(lambda: p.sessions_from("127.0.0.1") == 0)  # nothing left open
        assert len(p.allocator) == 0  # no session was ever made for them
    finally:
        stalled.close()
        garbage.close()


async def test_a_renewed_certificate_reaches_new_connections_while_old_ones_mine_on(
        tls_pool: tuple[TlsPool, Path], tmp_path: Path) -> None:
    p, cert = tls_pool
    old = await p.tls_miner(cert, "old").start()
    try:
        _, before = negotiated(old)
        renewed, renewed_key = make_cert(tmp_path, "renewed")
        p.server.tls_context = server_context(str(renewed), str(renewed_key))  # what a SIGHUP does
        async with p.tls_miner(renewed, "new") as new:
            _, after = negotiated(new)
            assert after != before
            assert (await new.mine_share())["result"] is True
        assert (await old.mine_share())["result"] is True  # the old connection kept its session
    finally:
        await old.close()


def test_bad_files_are_named(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    _, other_key = make_cert(tmp_path, "other")
    with pytest.raises(TlsError, match="no such file"):
        server_context(str(tmp_path / "missing.pem"), str(key))
    with pytest.raises(TlsError, match="cannot be loaded"):
        server_context(str(cert), str(other_key))  # a key that is not the certificate's
    assert len(cert.read_text()) < 3000  # fits AxeOS's certificate field


def coin_doc(**keys: object) -> dict[str, object]:
    return {"coins": [{"coin": "bitcoin", "network": "regtest", "stratum_port": 3333,
                       "daemons": [{"url": "http://127.0.0.1:1", "user": "u", "password": "p"}], **keys}]}


def test_tls_settings(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    cs = parse_settings(coin_doc(tls_cert_file=str(cert), tls_key_file=str(key), tls_port=3443)).coins[0]
    assert (cs.tls_port, cs.tls_cert_file, cs.tls_key_file) == (3443, str(cert), str(key))
    assert parse_settings(coin_doc()).coins[0].tls_cert_file == ""  # no TLS port unless asked for
    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"tls_cert_file": str(cert)}, ["coins[0].tls_key_file", "required with tls_cert_file", str(cert)]),
        ({"tls_cert_file": str(key), "tls_key_file": str(key)}, ["coins[0].tls_cert_file", str(key),
                                                                  "cannot be loaded"]),
        ({"tls_cert_file": str(cert), "tls_key_file": str(key), "tls_port": 3333},
         ["coins[0].tls_port", "3333", "stratum_port"]),
        ({"tls_cert_file": str(cert), "tls_key_file": str(key), "tls_port": 70000},
         ["coins[0].tls_port", "70000", "0..65535"]),
    ]
    for keys, words in cases:
        with pytest.raises(ConfigError) as info:
            parse_settings(coin_doc(**keys))
        for word in words:
            assert word in str(info.value), (keys, str(info.value))


async def test_coin_pool_reload_swaps_the_certificate(tmp_path: Path) -> None:
    """CoinPool.reload (what SIGHUP runs): a renewed pair replaces the context; a broken one keeps the old;
    switching TLS or the PROXY protocol on or off waits for a restart."""
    from stratum_pool.pool import CoinPool

    cert, key = make_cert(tmp_path)
    settings = parse_settings(coin_doc(tls_cert_file=str(cert), tls_key_file=str(key), tls_port=0)).coins[0]
    coin = CoinPool(settings)
    try:
        first = coin.server.tls_context
        assert first is not None and coin.tls_port == 0
        renewed, renewed_key = make_cert(tmp_path, "renewed")
        fresh = parse_settings(coin_doc(tls_cert_file=str(renewed), tls_key_file=str(renewed_key), tls_port=0))
        assert coin.reload(fresh.coins[0]) == ["tls"]
        second = coin.server.tls_context
        assert second is not None and second is not first and coin.settings.tls_cert_file == str(renewed)
        renewed_key.write_text("not a key")  # a renewal half written: the pool keeps serving the last good pair
        assert coin.reload(fresh.coins[0]) == [] and coin.server.tls_context is second
        plain = parse_settings(coin_doc(proxy_protocol=True)).coins[0]
        assert coin.reload(plain) == [] and coin.server.proxy_protocol is False
        assert coin.server.tls_context is second and coin.settings.tls_cert_file == str(renewed)
    finally:
        await coin.daemon.close()
