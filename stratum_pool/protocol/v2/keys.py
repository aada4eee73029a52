"""Stratum V2 keys and certificates (sv2-spec, 04-Protocol-Security.md, 4.3.1, 4.5.3 and 4.7).

- the curve operations the Noise handshake needs: secp256k1 keys as 64-byte ElligatorSwift encodings
  (BIP324), their x-only form (BIP340), and the ellswift x-only ECDH with BIP324's hash (libsecp256k1
  through coincurve's cffi bindings);
- the pool's **authority key**: a secret in a file only its owner may read (0600); its x-only public key is
  what miners configure, shown as base58check(``01 00`` || x-only key);
- the **certificate** the pool sends in the handshake, ``version u16 | valid_from u32 | not_valid_after u32 |
  signature 64``: a BIP340 signature by the authority key over ``SHA256(version || valid_from ||
  not_valid_after || server static x-only key)``, re-signed before it expires (:class:`ServerKeys`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coincurve import GLOBAL_CONTEXT, PrivateKey, PublicKeyXOnly
from coincurve._libsecp256k1 import ffi, lib

from stratum_pool.chain.address import AddressError, base58check_decode, base58check_encode

ELLSWIFT_SIZE: Final = 64
XONLY_SIZE: Final = 32
SECRET_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
CERTIFICATE_SIZE: Final = 74  # the SIGNATURE_NOISE_MESSAGE: 2 + 4 + 4 + 64
# The certificate format the reference implementation (stratum-mining/stratum, noise_sv2) sends.
CERTIFICATE_VERSION: Final = 0
# The u16 little-endian version prefixed to the authority key in its base58check form (spec 4.7).
AUTHORITY_KEY_PREFIX: Final = b"\x01\x00"

# A certificate lives a day and is re-signed an hour before it ends, so a handshake never carries one that is
# about to expire. valid_from is set an hour in the past: a miner whose clock is behind the pool's must not
# see a certificate from its future (the reference client allows only 10 s of difference).
CERT_LIFETIME_SECONDS: Final = 24 * 3600
CERT_RENEW_MARGIN_SECONDS: Final = 3600
CERT_BACKDATE_SECONDS: Final = 3600
# The difference between the two clocks a verifier forgives at either end of the validity window.
CERT_TIME_LEEWAY_SECONDS: Final = 10

_CERT_HEAD = struct.Struct("<HII")
_CTX = GLOBAL_CONTEXT.ctx


class SV2KeyError(ValueError):
    """A key, an authority key string, a key file or a certificate that is not valid."""


# --------------------------------------------------------------------------------------- curve operations


def new_secret() -> bytes:
    """A fresh, valid secp256k1 secret key (32 bytes, from the OS's CSPRNG)."""
    return PrivateKey().secret


def check_secret(secret: bytes) -> bytes:
    if len(secret) != SECRET_SIZE:
        raise SV2KeyError(f"a secret key is {SECRET_SIZE} bytes, got {len(secret)}")
    try:
        PrivateKey(secret)
    except ValueError as exc:
        raise SV2KeyError("the secret key is not in 1..n-1 of secp256k1") from exc
    return secret


def xonly_public_key(secret: bytes) -> bytes:
    """The BIP340 x-only public key (32 bytes) of ``secret``."""
    return PublicKeyXOnly.from_secret(check_secret(secret)).format()


def ellswift_create(secret: bytes, randomness: bytes | None = None) -> bytes:
    """The 64-byte ElligatorSwift encoding of ``secret``'s public key.

    ``randomness`` (32 bytes) picks one of the many encodings; by default fresh OS randomness, so that an
    encoding on the wire looks like random bytes and the same key is not recognisable twice.
    """
    out = ffi.new("unsigned char[64]")
    aux = os.urandom(32) if randomness is None else randomness
    if len(aux) != 32:
        raise SV2KeyError(f"ellswift randomness is 32 bytes, got {len(aux)}")
    if not lib.secp256k1_ellswift_create(_CTX, out, check_secret(secret), aux):
        raise SV2KeyError("the secret key is not in 1..n-1 of secp256k1")
    return bytes(ffi.buffer(out, ELLSWIFT_SIZE))


def ellswift_xonly(encoding: bytes) -> bytes:
    """The x-only public key (32 bytes) of a 64-byte ElligatorSwift encoding (every 64 bytes decode to one)."""
    if len(encoding) != ELLSWIFT_SIZE:
        raise SV2KeyError(f"an ElligatorSwift encoding is {ELLSWIFT_SIZE} bytes, got {len(encoding)}")
    pubkey = ffi.new("secp256k1_pubkey *")
    xonly = ffi.new("secp256k1_xonly_pubkey *")
    out = ffi.new("unsigned char[32]")
    if not (
        lib.secp256k1_ellswift_decode(_CTX, pubkey, encoding)
        and lib.secp256k1_xonly_pubkey_from_pubkey(_CTX, xonly, ffi.NULL, pubkey)
        and lib.secp256k1_xonly_pubkey_serialize(_CTX, out, xonly)
    ):
        raise SV2KeyError("the ElligatorSwift encoding does not decode")  # libsecp256k1 says it always does
    return bytes(ffi.buffer(out, XONLY_SIZE))


def ellswift_ecdh(secret: bytes, ours: bytes, theirs: bytes, initiator: bool) -> bytes:
    """The spec's ``ECDH(k, rk)``: BIP324's ``v2_ecdh``, 32 bytes.

    ``tagged_hash("bip324_ellswift_xonly_ecdh", initiator's encoding || responder's encoding || x)``: the
    order of the two encodings is the roles', not ours/theirs, so both sides reach the same secret.
    """
    if len(ours) != ELLSWIFT_SIZE or len(theirs) != ELLSWIFT_SIZE:
        raise SV2KeyError(f"an ElligatorSwift encoding is {ELLSWIFT_SIZE} bytes")
    ell_a, ell_b, party = (ours, theirs, 0) if initiator else (theirs, ours, 1)
    out = ffi.new("unsigned char[32]")
    if not lib.secp256k1_ellswift_xdh(
        _CTX, out, ell_a, ell_b, check_secret(secret), party, lib.secp256k1_ellswift_xdh_hash_function_bip324,
        ffi.NULL,
    ):
        raise SV2KeyError("ellswift ECDH failed")
    return bytes(ffi.buffer(out, 32))


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A secret key and the ElligatorSwift encoding of its public key, as the handshake sends it."""

    secret: bytes
    ellswift: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        secret = new_secret()
        return cls(secret, ellswift_create(secret))

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        return cls(check_secret(secret), ellswift_create(secret))

    @property
    def xonly(self) -> bytes:
        return xonly_public_key(self.secret)

    def __repr__(self) -> str:  # never print a secret into a log
        return f"KeyPair(ellswift={self.ellswift.hex()[:16]}...)"


# --------------------------------------------------------------------------------------- authority key


def encode_authority_key(xonly: bytes) -> str:
    """The form miners configure: base58check(``01 00`` || x-only key)."""
    if len(xonly) != XONLY_SIZE:
        raise SV2KeyError(f"an authority public key is {XONLY_SIZE} bytes, got {len(xonly)}")
    return base58check_encode(AUTHORITY_KEY_PREFIX + xonly)


def decode_authority_key(text: str) -> bytes:
    """The x-only key (32 bytes) of an authority key string; :class:`SV2KeyError` naming what is wrong."""
    try:
        raw = base58check_decode(text.strip())
    except AddressError as exc:
        raise SV2KeyError(f"authority key {text!r}: {exc}") from exc
    if len(raw) != 2 + XONLY_SIZE or raw[:2] != AUTHORITY_KEY_PREFIX:
        raise SV2KeyError(
            f"authority key {text!r}: {len(raw)} bytes with prefix {raw[:2].hex()}; "
            f"allowed: {2 + XONLY_SIZE} bytes with prefix {AUTHORITY_KEY_PREFIX.hex()}"
        )
    try:
        PublicKeyXOnly(raw[2:])
    except ValueError as exc:
        raise SV2KeyError(f"authority key {text!r}: not a point of secp256k1") from exc
    return raw[2:]


def create_authority_key_file(path: str | Path) -> bytes:
    """Create ``path`` (mode 0600, never over an existing file) with a new authority secret; return the secret.

    The file holds the secret as one line of hex.
    """
    secret = new_secret()
    # O_EXCL: an existing key is the pool's identity that miners have configured; never replace it silently.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # the umask may have narrowed it; make it exactly 0600
        fh.write(secret.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return secret


def load_authority_key_file(path: str | Path) -> bytes:
    """The authority secret in ``path``; refused when group or others may read or write the file."""
    p = Path(path)
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
        text = p.read_text()
    except OSError as exc:
        raise SV2KeyError(f"authority key file {str(p)!r}: {exc.strerror}") from exc
    if mode & 0o077:
        raise SV2KeyError(
            f"authority key file {str(p)!r}: mode {mode:04o} lets others read it; allowed: 0600 or 0400 "
            f"(chmod 600 {p})"
        )
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise SV2KeyError(f"authority key file {str(p)!r}: not one line of hex") from exc
    try:
        return check_secret(secret)
    except SV2KeyError as exc:
        raise SV2KeyError(f"authority key file {str(p)!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------ certificate


@dataclass(frozen=True, slots=True)
class Certificate:
    """The SIGNATURE_NOISE_MESSAGE: what the responder sends, encrypted, after its static key."""

    version: int
    valid_from: int
    not_valid_after: int
    signature: bytes

    def encode(self) -> bytes:
        return _CERT_HEAD.pack(self.version, self.valid_from, self.not_valid_after) + self.signature

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        if len(data) != CERTIFICATE_SIZE:
            raise SV2KeyError(f"a certificate is {CERTIFICATE_SIZE} bytes, got {len(data)}")
        version, valid_from, not_valid_after = _CERT_HEAD.unpack_from(data, 0)
        return cls(version, valid_from, not_valid_after, bytes(data[_CERT_HEAD.size :]))

    @classmethod
    def sign(
        cls, authority_secret: bytes, server_xonly: bytes, valid_from: int, not_valid_after: int,
        version: int = CERTIFICATE_VERSION,
    ) -> Certificate:
        message = certificate_message(version, valid_from, not_valid_after, server_xonly)
        signature = PrivateKey(check_secret(authority_secret)).sign_schnorr(message)
        return cls(version, valid_from, not_valid_after, signature)

    def signature_valid(self, authority_xonly: bytes, server_xonly: bytes) -> bool:
        """Whether the signature is the authority's over this certificate for ``server_xonly`` (dates aside)."""
        message = certificate_message(self.version, self.valid_from, self.not_valid_after, server_xonly)
        try:
            return bool(PublicKeyXOnly(authority_xonly).verify(self.signature, message))
        except ValueError:  # not a point, or a malformed signature
            return False

    def in_date(self, now: int, leeway: int = CERT_TIME_LEEWAY_SECONDS) -> bool:
        return self.valid_from - leeway <= now <= self.not_valid_after + leeway

    def verify(self, authority_xonly: bytes, server_xonly: bytes, now: int | None) -> None:
        """Raise :class:`SV2KeyError` unless the authority signed it and (when ``now`` is given) it is in date."""
        if not self.signature_valid(authority_xonly, server_xonly):
            raise SV2KeyError("the certificate is not signed by the configured authority key")
        if now is not None and not self.in_date(now):
            raise SV2KeyError(
                f"the certificate is valid {self.valid_from}..{self.not_valid_after}, not at {now}"
            )


def certificate_message(version: int, valid_from: int, not_valid_after: int, server_xonly: bytes) -> bytes:
    """The 32 bytes the authority signs: SHA256(version || valid_from || not_valid_after || server x-only key)."""
    if len(server_xonly) != XONLY_SIZE:
        raise SV2KeyError(f"a server x-only key is {XONLY_SIZE} bytes, got {len(server_xonly)}")
    return hashlib.sha256(_CERT_HEAD.pack(version, valid_from, not_valid_after) + server_xonly).digest()


def renewal_due_at(cert: Certificate, margin: int = CERT_RENEW_MARGIN_SECONDS) -> int:
    """The time from which ``cert`` must be replaced: ``margin`` seconds before it expires."""
    return cert.not_valid_after - margin


def needs_renewal(cert: Certificate, now: int, margin: int = CERT_RENEW_MARGIN_SECONDS) -> bool:
    """Whether ``cert`` must be re-signed at ``now``: near its end, or not yet valid (the clock went back)."""
    return now >= renewal_due_at(cert, margin) or now < cert.valid_from


class ServerKeys:
    """The pool's side of the handshake: the authority secret, a static key and its current certificate.

    The static key lives as long as the process (the miner pins the authority, not the static key); the
    certificate is re-signed by :meth:`certificate` when :func:`needs_renewal` says so.
    """

    def __init__(
        self, authority_secret: bytes, now: int, *, static: KeyPair | None = None,
        lifetime: int = CERT_LIFETIME_SECONDS, margin: int = CERT_RENEW_MARGIN_SECONDS,
        backdate: int = CERT_BACKDATE_SECONDS,
    ) -> None:
        if not 0 < margin < lifetime:
            raise SV2KeyError(f"certificate renewal margin {margin} s: allowed 1..{lifetime - 1} (below the lifetime)")
        self._authority_secret = check_secret(authority_secret)
        self.authority_xonly = xonly_public_key(authority_secret)
        self.static = static if static is not None else KeyPair.generate()
        self.static_xonly = self.static.xonly
        self.lifetime = lifetime
        self.margin = margin
        self.backdate = backdate
        self._cert = self._sign(now)

    @classmethod
    def from_file(cls, authority_key_file: str | Path, now: int) -> ServerKeys:
        """The pool's keys with the authority secret of ``authority_key_file`` and a new static key."""
        return cls(load_authority_key_file(authority_key_file), now)

    @property
    def authority_key(self) -> str:
        """The authority public key as miners configure it."""
        return encode_authority_key(self.authority_xonly)

    def _sign(self, now: int) -> Certificate:
        valid_from = max(0, now - self.backdate)
        not_valid_after = min(0xFFFFFFFF, now + self.lifetime)
        return Certificate.sign(self._authority_secret, self.static_xonly, valid_from, not_valid_after)

    def certificate(self, now: int) -> Certificate:
        """The certificate to send at ``now``, re-signed first when it is due."""
        if needs_renewal(self._cert, now, self.margin):
            self._cert = self._sign(now)
        return self._cert

    def __repr__(self) -> str:
        return f"ServerKeys(authority={self.authority_key})"
