"""The Stratum V2 Noise handshake and encrypted transport, sans-IO (sv2-spec, 04-Protocol-Security.md).

``Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256``: the initiator (the miner) sends its ephemeral key (64 bytes),
the responder (the pool) answers with its ephemeral key, its static key and its certificate, the last two
encrypted (64 + 80 + 90 = 234 bytes; the spec's prose says 170, every implementation sends 234). Then each
plaintext frame (header + payload, ``frame.py``) travels as the encrypted 6-byte header (22 bytes with its MAC)
followed by the payload in chunks of at most 65519 plaintext bytes, each with its own MAC.

:class:`NoiseResponder` is the pool's side, :class:`NoiseInitiator` the project's own client. Both take bytes
in (``receive``, returning whole plaintext frames as they complete) and give bytes out (``data_to_send`` for
the handshake, ``send`` for a frame); no sockets, no clock (time is passed in). Every failure (a bad MAC, a
handshake message of the wrong size, a certificate the authority did not sign, an oversized frame) raises
:class:`NoiseError`, after which the connection is dead: the adapter closes it. What a connection holds is
bounded by one frame's ciphertext, ``max_payload`` plus its MACs.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from stratum_pool.protocol.v2.frame import HEADER_SIZE, MAX_PAYLOAD
from stratum_pool.protocol.v2.keys import (
    CERTIFICATE_SIZE,
    ELLSWIFT_SIZE,
    Certificate,
    KeyPair,
    ServerKeys,
    SV2KeyError,
    ellswift_ecdh,
    ellswift_xonly,
)

PROTOCOL_NAME: Final = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"
MAC_SIZE: Final = 16
INITIATOR_MESSAGE_SIZE: Final = ELLSWIFT_SIZE  # -> e
# <- e, ee, s, es, SIGNATURE_NOISE_MESSAGE
RESPONDER_MESSAGE_SIZE: Final = ELLSWIFT_SIZE + (ELLSWIFT_SIZE + MAC_SIZE) + (CERTIFICATE_SIZE + MAC_SIZE)
ENCRYPTED_HEADER_SIZE: Final = HEADER_SIZE + MAC_SIZE
MAX_CIPHERTEXT_CHUNK: Final = 65535  # the longest Noise transport message
MAX_PLAINTEXT_CHUNK: Final = MAX_CIPHERTEXT_CHUNK - MAC_SIZE
# A miner's messages are small (SetupConnection is the largest, under 1.3 KiB): the pool refuses a frame
# longer than this from it, so a hostile client cannot make a connection buffer megabytes.
DEFAULT_RESPONDER_MAX_PAYLOAD: Final = 1 << 16
# Noise forbids the nonce 2^64 - 1; a connection that would reach it must be dropped.
_MAX_NONCE: Final = (1 << 64) - 1
_EMPTY: Final = b""
_NONCE: Final = struct.Struct("<IQ")  # 32 zero bits, then the counter as a little-endian u64


class NoiseError(Exception):
    """The handshake or the encrypted transport failed: close the connection."""


def ciphertext_length(payload_length: int) -> int:
    """How many bytes follow the encrypted header for a payload of ``payload_length`` plaintext bytes."""
    full, rest = divmod(payload_length, MAX_PLAINTEXT_CHUNK)
    return full * MAX_CIPHERTEXT_CHUNK + (rest + MAC_SIZE if rest else 0)


def _hmac_hash(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def hkdf2(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """The spec's ``HKDF(ck, ikm)``: RFC 5869 with an empty info, two 32-byte outputs."""
    temp_key = _hmac_hash(chaining_key, input_key_material)
    output1 = _hmac_hash(temp_key, b"\x01")
    return output1, _hmac_hash(temp_key, output1 + b"\x02")


class CipherState:
    """A key and its nonce: ChaCha20-Poly1305 with nonce = 4 zero bytes || 64-bit little-endian counter."""

    __slots__ = ("_aead", "n")

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.n = 0

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes | memoryview) -> bytes:
        n = self.n
        if n >= _MAX_NONCE:
            raise NoiseError("nonce exhausted: the connection must be re-established")
        ciphertext = self._aead.encrypt(_NONCE.pack(0, n), plaintext, ad)
        self.n = n + 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes | memoryview) -> bytes:
        n = self.n
        if n >= _MAX_NONCE:
            raise NoiseError("nonce exhausted: the connection must be re-established")
        try:
            plaintext = self._aead.decrypt(_NONCE.pack(0, n), ciphertext, ad)
        except InvalidTag:
            # n is not incremented (spec 4.4.1), though the connection is dead anyway
            raise NoiseError("message authentication failed (bad MAC)") from None
        self.n = n + 1
        return plaintext


class SymmetricState:
    """The handshake's ``h``, ``ck`` and optional key ``k``, with the spec's operations (4.4.2)."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self) -> None:
        # the protocol name is longer than 32 bytes, so it is hashed (4.5.1)
        self.ck = hashlib.sha256(PROTOCOL_NAME).digest()
        self.h = hashlib.sha256(self.ck).digest()
        self.cipher: CipherState | None = None

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = hkdf2(self.ck, input_key_material)
        self.cipher = CipherState(temp_k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = plaintext if self.cipher is None else self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = ciphertext if self.cipher is None else self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator -> responder, responder -> initiator)."""
        k1, k2 = hkdf2(self.ck, _EMPTY)
        return CipherState(k1), CipherState(k2)


class NoiseConnection:
    """One end of a Noise connection: the handshake, then plaintext frames in and out."""

    def __init__(self, max_payload: int) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload {max_payload}: allowed 0..{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self._encryptor: CipherState | None = None
        self._decryptor: CipherState | None = None
        self._pending_header: bytes | None = None  # a decrypted header whose payload has not all arrived
        self._pending_length = 0  # that payload's ciphertext length
        self._need = ENCRYPTED_HEADER_SIZE  # the held bytes needed before decrypting anything more
        self._failed = False

    @property
    def handshake_complete(self) -> bool:
        return self._encryptor is not None

    @property
    def buffered(self) -> int:
        """Bytes received and held, not yet part of a whole frame."""
        return len(self._buffer)

    def data_to_send(self) -> bytes:
        """The handshake bytes to write to the peer (empty when there are none); taken once."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def receive(self, data: bytes) -> list[bytes]:
        """Feed bytes from the peer; return the whole plaintext frames (header + payload) they complete."""
        if self._failed:
            raise NoiseError("the connection has already failed")
        try:
            if self._encryptor is None:
                data = self._handshake_receive(data)
                if self._encryptor is None:
                    return []
            return self._read_frames(data)
        except NoiseError:
            self._fail()
            raise

    def send(self, frame: bytes) -> bytes:
        """The ciphertext of one plaintext frame (header + payload), to write to the peer."""
        if self._failed:
            raise NoiseError("the connection has already failed")
        if self._encryptor is None:
            raise NoiseError("the handshake is not complete")
        size = len(frame)
        length = int.from_bytes(frame[3:HEADER_SIZE], "little")  # the header's U24 payload length
        if size < HEADER_SIZE or length != size - HEADER_SIZE:
            raise NoiseError(f"the frame header says {length} payload bytes, the frame has {size - HEADER_SIZE}")
        encrypt = self._encryptor.encrypt_with_ad
        if size <= HEADER_SIZE + MAX_PLAINTEXT_CHUNK:  # one chunk or none: nearly every message
            head = encrypt(_EMPTY, frame[:HEADER_SIZE])
            return head + encrypt(_EMPTY, frame[HEADER_SIZE:]) if length else head
        view = memoryview(frame)
        parts = [encrypt(_EMPTY, view[:HEADER_SIZE])]
        for start in range(HEADER_SIZE, size, MAX_PLAINTEXT_CHUNK):
            parts.append(encrypt(_EMPTY, view[start : start + MAX_PLAINTEXT_CHUNK]))
        return b"".join(parts)

    # -------------------------------------------------------------------------------------- internals

    def _handshake_receive(self, data: bytes) -> bytes:
        """Consume handshake bytes; return what is left for the transport once the handshake completes."""
        raise NotImplementedError

    def _start_transport(self, encryptor: CipherState, decryptor: CipherState) -> None:
        self._encryptor, self._decryptor = encryptor, decryptor
        self._buffer.clear()

    def _read_frames(self, data: bytes) -> list[bytes]:
        held = self._buffer
        if held:
            held += data
            if len(held) < self._need:
                return []
            buf = bytes(held)  # one copy per completed step, not per read
            held.clear()
        elif len(data) < self._need:
            held += data
            return []
        else:
            buf = data  # the common case: whole frames in one read, decrypted straight from it
        decrypt = self._decryptor.decrypt_with_ad  # type: ignore[union-attr]
        size = len(buf)
        pos = 0
        frames: list[bytes] = []
        while True:
            head = self._pending_header
            if head is None:
                if size - pos < ENCRYPTED_HEADER_SIZE:
                    break
                head = decrypt(_EMPTY, buf[pos : pos + ENCRYPTED_HEADER_SIZE])
                pos += ENCRYPTED_HEADER_SIZE
                length = int.from_bytes(head[3:HEADER_SIZE], "little")  # the header's U24 payload length
                if length > self.max_payload:
                    raise NoiseError(f"frame of {length} payload bytes; allowed at most {self.max_payload}")
                self._pending_header, self._pending_length = head, ciphertext_length(length)
            end = pos + self._pending_length
            if size < end:
                break
            if end - pos <= MAX_CIPHERTEXT_CHUNK:
                frames.append(head + decrypt(_EMPTY, buf[pos:end]) if end > pos else head)
            else:
                parts = [head]
                for start in range(pos, end, MAX_CIPHERTEXT_CHUNK):
                    parts.append(decrypt(_EMPTY, buf[start : min(start + MAX_CIPHERTEXT_CHUNK, end)]))
                frames.append(b"".join(parts))
            pos = end
            self._pending_header = None
        held += buf[pos:]
        # what the next step needs in all: a header, or the payload of the header already read
        self._need = ENCRYPTED_HEADER_SIZE if self._pending_header is None else self._pending_length
        return frames

    def _fail(self) -> None:
        self._failed = True
        self._buffer = bytearray()
        self._outgoing.clear()
        self._encryptor = self._decryptor = None
        self._pending_header = None


class NoiseResponder(NoiseConnection):
    """The pool's side: waits for the miner's 64-byte ephemeral key, answers with 234 bytes."""

    def __init__(
        self, static: KeyPair, certificate: Certificate, *,
        max_payload: int = DEFAULT_RESPONDER_MAX_PAYLOAD, ephemeral: KeyPair | None = None,
    ) -> None:
        super().__init__(max_payload)
        self._static: KeyPair | None = static
        self._certificate = certificate.encode()
        self._ephemeral = ephemeral

    @classmethod
    def for_server(cls, keys: ServerKeys, now: int, *, max_payload: int = DEFAULT_RESPONDER_MAX_PAYLOAD
                   ) -> NoiseResponder:
        """A responder with the pool's static key and the certificate current at ``now``."""
        return cls(keys.static, keys.certificate(now), max_payload=max_payload)

    def _handshake_receive(self, data: bytes) -> bytes:
        self._buffer += data
        if len(self._buffer) > INITIATOR_MESSAGE_SIZE:
            # the initiator can send nothing else before it has our answer
            raise NoiseError(f"the handshake message is {INITIATOR_MESSAGE_SIZE} bytes; got {len(self._buffer)}")
        if len(self._buffer) < INITIATOR_MESSAGE_SIZE:
            return _EMPTY
        re = bytes(self._buffer)
        static = self._static
        assert static is not None
        e = self._ephemeral or KeyPair.generate()
        hs = SymmetricState()
        # -> e
        hs.mix_hash(re)
        hs.decrypt_and_hash(_EMPTY)
        # <- e, ee, s, es, SIGNATURE_NOISE_MESSAGE
        hs.mix_hash(e.ellswift)
        hs.mix_key(ellswift_ecdh(e.secret, e.ellswift, re, initiator=False))
        encrypted_static = hs.encrypt_and_hash(static.ellswift)
        hs.mix_key(ellswift_ecdh(static.secret, static.ellswift, re, initiator=False))
        encrypted_cert = hs.encrypt_and_hash(self._certificate)
        self._outgoing += e.ellswift + encrypted_static + encrypted_cert
        to_responder, to_initiator = hs.split()
        self._static = self._ephemeral = None  # nothing secret outlives the handshake
        self._start_transport(encryptor=to_initiator, decryptor=to_responder)
        return _EMPTY


class NoiseInitiator(NoiseConnection):
    """The miner's side (the project's own client): sends its ephemeral key, checks the pool's certificate.

    ``authority_xonly`` is the pool's authority key (``keys.decode_authority_key``); None accepts any server,
    as a firmware with no key entered does. ``now`` (unix seconds), when given, also checks the certificate's
    dates.
    """

    def __init__(
        self, authority_xonly: bytes | None, *, now: int | None = None, max_payload: int = MAX_PAYLOAD,
        ephemeral: KeyPair | None = None,
    ) -> None:
        super().__init__(max_payload)
        self.authority_xonly = authority_xonly
        self.now = now
        self._e: KeyPair | None = ephemeral or KeyPair.generate()
        self._hs: SymmetricState | None = SymmetricState()
        self.server_static_xonly: bytes | None = None
        self.certificate: Certificate | None = None
        # -> e
        self._hs.mix_hash(self._e.ellswift)
        self._hs.encrypt_and_hash(_EMPTY)
        self._outgoing += self._e.ellswift

    def _handshake_receive(self, data: bytes) -> bytes:
        need = RESPONDER_MESSAGE_SIZE - len(self._buffer)
        self._buffer += data[:need]
        rest = data[need:]
        if len(self._buffer) < RESPONDER_MESSAGE_SIZE:
            return _EMPTY
        msg = bytes(self._buffer)
        e, hs = self._e, self._hs
        assert e is not None and hs is not None
        # <- e, ee, s, es, SIGNATURE_NOISE_MESSAGE
        re = msg[:ELLSWIFT_SIZE]
        hs.mix_hash(re)
        hs.mix_key(ellswift_ecdh(e.secret, e.ellswift, re, initiator=True))
        rs = hs.decrypt_and_hash(msg[ELLSWIFT_SIZE : 2 * ELLSWIFT_SIZE + MAC_SIZE])
        hs.mix_key(ellswift_ecdh(e.secret, e.ellswift, rs, initiator=True))
        cert = Certificate.decode(hs.decrypt_and_hash(msg[2 * ELLSWIFT_SIZE + MAC_SIZE :]))
        server_xonly = ellswift_xonly(rs)
        if self.authority_xonly is not None:
            try:
                cert.verify(self.authority_xonly, server_xonly, self.now)
            except SV2KeyError as exc:
                raise NoiseError(str(exc)) from None
        self.server_static_xonly, self.certificate = server_xonly, cert
        to_responder, to_initiator = hs.split()
        self._e = self._hs = None
        self._start_transport(encryptor=to_responder, decryptor=to_initiator)
        return rest
