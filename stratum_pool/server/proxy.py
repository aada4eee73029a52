"""The PROXY protocol (HAProxy's; v1 text and v2 binary), sans-IO: the client's address a load balancer or
TLS terminator in front of the pool hands over at the start of each connection.

Only a listener configured for it reads the header (anyone could send one: trusting it elsewhere would let a
client pick the address that limits and bans see); there a connection without a valid header is closed.
Imports nothing from the package.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the spec's own bound)
# v2 carries TLVs after the addresses (ALPN, authority, TLS details); more than this is no proxy of ours
V2_MAX = 16 + 4096


class ProxyError(ValueError):
    """Not a valid PROXY header; the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int  # bytes of the stream the header took
    # the client's address and port; None for a LOCAL (v2) or UNKNOWN (v1) connection: the proxy's own
    # (health checks), which keeps the socket's address
    source: str | None = None
    port: int = 0


def starts_like_header(data: bytes) -> bool:
    """Whether ``data`` (a connection's first bytes) begins like a PROXY header of either version."""
    return data.startswith(V1_PREFIX) or data.startswith(V2_SIGNATURE)


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None when more bytes are needed. Raises :class:`ProxyError`."""
    if not data:
        return None
    if data[:1] == b"P":
        return _v1(data)
    if data[:1] == b"\r":
        return _v2(data)
    raise ProxyError("no PROXY protocol header")


def _v1(data: bytes) -> ProxyHeader | None:
    if not V1_PREFIX.startswith(data[:6]):
        raise ProxyError("no PROXY protocol header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyError(f"PROXY v1 line longer than {V1_MAX} bytes")
        return None
    try:
        fields = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 line is not ASCII") from None
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyHeader(end + 2)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyError("PROXY v1 line must be PROXY TCP4|TCP6 SRC DST SPORT DPORT")
    version = 4 if fields[1] == "TCP4" else 6
    source = _address(fields[2], version)
    _address(fields[3], version)
    ports = [_port(p) for p in fields[4:6]]
    return ProxyHeader(end + 2, source, ports[0])


def _address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyError(f"PROXY v1 address {text[:45]!r} is not an IPv{version} address") from None
    if address.version != version:
        raise ProxyError(f"PROXY v1 address {text[:45]!r} is not an IPv{version} address")
    return str(address)


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise ProxyError(f"PROXY v1 port {text[:8]!r} is not 0..65535")
    return int(text)


def _v2(data: bytes) -> ProxyHeader | None:
    n = min(len(data), 12)
    if data[:n] != V2_SIGNATURE[:n]:
        raise ProxyError("no PROXY protocol header")
    if len(data) < 16:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2:
        raise ProxyError(f"PROXY v2 version {version}; only 2 exists")
    size = int.from_bytes(data[14:16], "big")
    if 16 + size > V2_MAX:
        raise ProxyError(f"PROXY v2 header of {16 + size} bytes; at most {V2_MAX}")
    if len(data) < 16 + size:
        return None
    if command == 0:  # LOCAL: the proxy speaking for itself
        return ProxyHeader(16 + size)
    if command != 1:
        raise ProxyError(f"PROXY v2 command {command}; 0 (LOCAL) or 1 (PROXY)")
    family, body = data[13], data[16:16 + size]
    if family == 0x11:  # TCP over IPv4
        if size < 12:
            raise ProxyError("PROXY v2 IPv4 addresses cut short")
        return ProxyHeader(16 + size, str(ipaddress.IPv4Address(body[:4])), int.from_bytes(body[8:10], "big"))
    if family == 0x21:  # TCP over IPv6
        if size < 36:
            raise ProxyError("PROXY v2 IPv6 addresses cut short")
        return ProxyHeader(16 + size, _v6(body[:16]), int.from_bytes(body[32:34], "big"))
    if family >> 4 == 0:  # AF_UNSPEC: keep the socket's address (the spec's rule)
        return ProxyHeader(16 + size)
    raise ProxyError(f"PROXY v2 family/protocol {family:#04x}; TCP over IPv4 or IPv6 expected")


def _v6(raw: bytes) -> str:
    address = ipaddress.IPv6Address(raw)
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else str(address)  # one spelling per client for limits and bans
