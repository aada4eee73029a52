"""A self-signed certificate for the regtest stack's stratum+tls port (``make run``, the TLS tests).

ESP-Miner checks the pool's certificate against a PEM its owner pastes into AxeOS (at most 3,000 characters)
and checks that the certificate names the host exactly as configured. So the certificate names every way a
miner may address the pool, each IP address both as an IP and as a DNS subject alternative name (mbedTLS 2.x
clients compare only DNS names), and uses an EC P-256 key: the PEM stays well under 1,000 characters.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

# Long enough for any playground; a renewal is a new file and a SIGHUP.
VALID_DAYS = 365


def make_self_signed(cert_file: Path, key_file: Path, dns_names: list[str], ip_addresses: list[str],
                     days: int = VALID_DAYS, common_name: str = "stratum-pool regtest") -> None:
    """Write a self-signed certificate (PEM) and its key (PEM, mode 600) naming ``dns_names`` and
    ``ip_addresses`` (the latter also as DNS names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    dns = list(dict.fromkeys([*dns_names, *ip_addresses]))  # each IP as a DNS name too, for mbedTLS 2.x
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a miner's clock a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        # its own CA: the PEM pasted into a miner is the trust anchor and the server certificate at once
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _replace(key_file, key_pem, 0o600)
    _replace(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a PEM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def covers(cert_file: Path, dns_names: list[str], ip_addresses: list[str], days_left: int = 0) -> bool:
    """Whether the certificate in ``cert_file`` names all of ``dns_names`` and ``ip_addresses`` (as IP and as
    DNS names) and is valid for at least ``days_left`` more days."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    dns = set(sans.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return (set(dns_names) | set(ip_addresses) <= dns and set(ip_addresses) <= ips
            and left >= datetime.timedelta(days=days_left))
