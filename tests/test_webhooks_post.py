"""The webhooks' POST (``webhooks/post.py``) on the wire: the exact request bytes, TLS with the certificate and
name checked, and what a receiver that answers badly, late or not at all makes of a message."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stratum_pool.webhooks import Notifier, NotifySettings
from stratum_pool.webhooks.events import payout_sent
from stratum_pool.webhooks.post import BadAnswer, post, request_bytes


class RawReceiver:
    """A TCP (or TLS) server that records the bytes of each request and answers ``answer`` (None: never)."""

    def __init__(self, answer: bytes | None = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        self.got: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _take(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            self.got.append(head + await reader.readexactly(length))
            if self.answer is None:
                await asyncio.sleep(30)
            writer.write(self.answer or b"")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawReceiver:
        self.server = await asyncio.start_server(self._take, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (the server's context, a client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


def test_the_request_bytes() -> None:
    host, port, tls, data = request_bytes("https://bot%3A:p%40ss@example.org:8443/hook/x?token=a%20b", b'{"a":1}',
                                          {"Content-Type": "application/json"})
    assert (host, port, tls) == ("example.org", 8443, True)
    auth = base64.b64encode(b"bot::p@ss").decode()
    assert data == (b"POST /hook/x?token=a%20b HTTP/1.1\r\nHost: example.org:8443\r\nUser-Agent: stratum-pool\r\n"
                    b"Content-Length: 7\r\nConnection: close\r\nAuthorization: Basic " + auth.encode()
                    + b"\r\nContent-Type: application/json\r\n\r\n{\"a\":1}")
    assert request_bytes("http://[::1]/", b"", {})[:3] == ("::1", 80, False)
    assert b"Host: [::1]\r\n" in request_bytes("http://[::1]/", b"", {})[3]
    with pytest.raises(ValueError):
        request_bytes("http://example.org/", b"", {"X-Title": "a\r\nInjected: yes"})
    with pytest.raises(ValueError):
        request_bytes("ftp://example.org/", b"", {})


async def test_a_post_over_tcp_is_sent_whole_and_its_status_read() -> None:
    async with RawReceiver(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\r\n") as r:
        assert await post(f"http://127.0.0.1:{r.port}/in", b"hello", {"Content-Type": "text/plain"}, 5) == 429
        # an http:// URL is plain TCP whatever TLS context the notifier holds for its https receivers
        assert await post(f"http://127.0.0.1:{r.port}/in", b"hello", {"Content-Type": "text/plain"}, 5,
                          ssl.create_default_context()) == 429
    assert r.got == [f"POST /in HTTP/1.1\r\nHost: 127.0.0.1:{r.port}\r\nUser-Agent: stratum-pool\r\n"
                     "Content-Length: 5\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nhello".encode()] * 2


async def test_tls_checks_the_receivers_certificate(tmp_path: Path) -> None:
    server_context, trusting = certificate(tmp_path)
    async with RawReceiver(ssl_context=server_context) as r:
        url = f"https://127.0.0.1:{r.port}/hook"
        assert await post(url, b"{}", {}, 5, trusting) == 204
        with pytest.raises(ssl.SSLCertVerificationError):
            await post(url, b"{}", {}, 5)  # the system's CAs do not know this certificate
    assert len(r.got) == 1


@pytest.mark.parametrize("answer", [b"garbage\r\n", b"HTTP/2 200\r\n\r\n", b"", b"HTTP/1.1 2000 OK\r\n"])
async def test_a_bad_answer_is_refused(answer: bytes) -> None:
    async with RawReceiver(answer) as r:
        with pytest.raises(BadAnswer):
            await post(f"http://127.0.0.1:{r.port}/", b"x", {}, 5)


async def test_no_answer_times_out() -> None:
    async with RawReceiver(None) as r:
        with pytest.raises(TimeoutError):
            await post(f"http://127.0.0.1:{r.port}/", b"x", {}, 0.5)


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[tuple[RawReceiver, ssl.SSLContext]]:
    server_context, trusting = certificate(tmp_path)
    async with RawReceiver(ssl_context=server_context) as r:
        yield r, trusting


async def test_the_notifier_delivers_over_tls_only_to_a_trusted_receiver(
        tls_receiver: tuple[RawReceiver, ssl.SSLContext]) -> None:
    r, trusting = tls_receiver
    target = NotifySettings(url=f"https://127.0.0.1:{r.port}/hook", max_attempts=1)
    event = payout_sent("bitcoin-regtest", "rBTC", "bcrt1qalice", 1000, "ab" * 32, 7, 1_700_000_000.0)
    for context, delivered in ((trusting, 1), (None, 0)):
        notifier = Notifier([target], ssl_context=context)
        notifier.start()
        notifier.emit(event)
        await notifier.stop(drain_seconds=5)
        assert (notifier.receivers[0].delivered, notifier.receivers[0].failed) == (delivered, 1 - delivered)
    assert len(r.got) == 1 and b'"payout_sent"' in r.got[0]
