"""TLS for stratum+tls ports: the server context (TLS 1.2 and 1.3 only) from a certificate and key file.

A context is built whole and swapped in by the server (``StratumServer.tls_context``): a SIGHUP after a
renewal gives new connections the new certificate, while those already open keep theirs. A file that cannot
be loaded leaves the old context in place. Imports nothing from the package.
"""

from __future__ import annotations

import ssl


class TlsError(ValueError):
    """The certificate or key cannot be used; the text says which file and why."""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context serving ``cert_file`` (PEM, the chain after the leaf) with ``key_file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ESP-Miner (mbedTLS) speaks 1.2 and 1.3; older versions have known weaknesses and no miner needs them
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION  # CRIME; nothing of value is lost on short JSON lines
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise TlsError(f"{exc.filename or cert_file}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"{cert_file} with {key_file}: cannot be loaded ({exc})") from None
    return context
