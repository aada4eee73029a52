"""The Stratum V2 Noise NX handshake and encrypted transport: the project's initiator against its responder,
one handshake re-derived step by step from the spec, tampering, sizes and bounds, and the framing under any
split of the byte stream."""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_pool.protocol.v2.frame import HEADER_SIZE, MAX_PAYLOAD, encode_frame, encode_header
from stratum_pool.protocol.v2.keys import (
    Certificate,
    KeyPair,
    ServerKeys,
    ellswift_ecdh,
    new_secret,
    xonly_public_key,
)
from stratum_pool.protocol.v2.noise import (
    DEFAULT_RESPONDER_MAX_PAYLOAD,
    ENCRYPTED_HEADER_SIZE,
    MAX_CIPHERTEXT_CHUNK,
    MAX_PLAINTEXT_CHUNK,
    RESPONDER_MESSAGE_SIZE,
    CipherState,
    NoiseError,
    NoiseInitiator,
    NoiseResponder,
    ciphertext_length,
)

NOW = 1_800_000_000
BIG = 4 * MAX_CIPHERTEXT_CHUNK  # a max_payload that lets multi-chunk frames through


@pytest.fixture(scope="module")
def keys() -> ServerKeys:
    return ServerKeys(new_secret(), NOW)


def connect(keys: ServerKeys, max_payload: int = BIG, now: int = NOW) -> tuple[NoiseInitiator, NoiseResponder]:
    initiator = NoiseInitiator(keys.authority_xonly, now=now, max_payload=max_payload)
    responder = NoiseResponder(keys.static, keys.certificate(now), max_payload=max_payload)
    assert responder.receive(initiator.data_to_send()) == []
    assert initiator.receive(responder.data_to_send()) == []
    assert initiator.handshake_complete and responder.handshake_complete
    return initiator, responder


def spec_pt_len_to_ct_len(pt_len: int) -> int:
    """The spec's pt_len_to_ct_len (04-Protocol-Security.md, 4.6), as written there."""
    max_ct_len, mac_len = 65535, 16
    max_pt_len = max_ct_len - mac_len
    remainder = pt_len % max_pt_len
    if remainder > 0:
        remainder += mac_len
    return pt_len // max_pt_len * max_ct_len + remainder


# ----------------------------------------------------------------------------------------------- handshake


def test_a_whole_handshake(keys: ServerKeys) -> None:
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    assert not initiator.handshake_complete and not responder.handshake_complete
    first = initiator.data_to_send()
    assert len(first) == 64 and initiator.data_to_send() == b""
    assert responder.receive(first) == []
    second = responder.data_to_send()
    assert len(second) == RESPONDER_MESSAGE_SIZE == 234  # 64 + (64 + 16) + (74 + 16): not the prose's 170
    assert responder.data_to_send() == b""
    assert initiator.receive(second) == []
    assert initiator.server_static_xonly == keys.static_xonly
    assert initiator.certificate == keys.certificate(NOW)
    # and the two ends talk
    assert responder.receive(initiator.send(encode_frame(0, 0x00, b"hello"))) == [encode_frame(0, 0x00, b"hello")]
    assert initiator.receive(responder.send(encode_frame(0, 0x01, b"there"))) == [encode_frame(0, 0x01, b"there")]


def test_the_handshake_bytes_may_arrive_one_at_a_time(keys: ServerKeys) -> None:
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    for byte in initiator.data_to_send():
        assert responder.receive(bytes([byte])) == []
    reply = responder.data_to_send()
    frame = encode_frame(0x8000, 0x1B, b"\x01\x00\x00\x00" + b"x" * 40)
    # the responder's first frame may follow its handshake message in the same read
    stream = reply + responder.send(frame)
    got: list[bytes] = []
    for byte in stream:
        got += initiator.receive(bytes([byte]))
    assert got == [frame]


def test_the_handshake_re_derived_from_the_spec_gives_the_same_bytes(keys: ServerKeys) -> None:
    """Section 4.5 step by step, with the RFC 5869 HKDF of `cryptography`, against the responder's output."""
    e_init, e_resp = KeyPair.generate(), KeyPair.generate()
    cert = keys.certificate(NOW)
    responder = NoiseResponder(keys.static, cert, ephemeral=e_resp)
    responder.receive(e_init.ellswift)
    message = responder.data_to_send()

    def sha256(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def hkdf(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
        out = HKDF(algorithm=hashes.SHA256(), length=64, salt=ck, info=b"").derive(ikm)
        return out[:32], out[32:]

    def nonce(n: int) -> bytes:
        return b"\x00" * 4 + n.to_bytes(8, "little")

    ck = sha256(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256")
    h = sha256(ck)
    h = sha256(h + e_init.ellswift)  # MixHash(e.public_key)
    h = sha256(h + b"")  # EncryptAndHash(empty) with no key
    h = sha256(h + e_resp.ellswift)
    ck, k = hkdf(ck, ellswift_ecdh(e_resp.secret, e_resp.ellswift, e_init.ellswift, initiator=False))  # ee
    static_ct = ChaCha20Poly1305(k).encrypt(nonce(0), keys.static.ellswift, h)
    h = sha256(h + static_ct)
    ck, k = hkdf(ck, ellswift_ecdh(keys.static.secret, keys.static.ellswift, e_init.ellswift, initiator=False))
    cert_ct = ChaCha20Poly1305(k).encrypt(nonce(0), cert.encode(), h)
    assert message == e_resp.ellswift + static_ct + cert_ct
    # Split: c1 carries initiator -> responder, c2 the other way; each frame's header and payload use one
    # nonce each, counting from 0
    k1, k2 = hkdf(ck, b"")
    frame = encode_frame(0, 0x1B, b"share")
    wire = responder.send(frame)
    assert ChaCha20Poly1305(k2).decrypt(nonce(0), wire[:22], b"") == frame[:6]
    assert ChaCha20Poly1305(k2).decrypt(nonce(1), wire[22:], b"") == b"share"
    upstream = ChaCha20Poly1305(k1).encrypt(nonce(0), frame[:6], b"") + ChaCha20Poly1305(k1).encrypt(
        nonce(1), b"share", b"")
    assert responder.receive(upstream) == [frame]


def test_a_wrong_authority_key_is_refused_by_the_initiator(keys: ServerKeys) -> None:
    initiator = NoiseInitiator(xonly_public_key(new_secret()), now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    responder.receive(initiator.data_to_send())
    with pytest.raises(NoiseError, match="not signed by the configured authority key"):
        initiator.receive(responder.data_to_send())
    assert not initiator.handshake_complete
    with pytest.raises(NoiseError):  # the connection stays dead
        initiator.receive(b"")


def test_a_certificate_by_another_authority_is_refused(keys: ServerKeys) -> None:
    """A man in the middle with his own authority: the right static key, a certificate the pool never signed."""
    forged = Certificate.sign(new_secret(), keys.static_xonly, NOW - 10, NOW + 3600)
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder(keys.static, forged)
    responder.receive(initiator.data_to_send())
    with pytest.raises(NoiseError, match="not signed"):
        initiator.receive(responder.data_to_send())


def test_an_expired_certificate_is_refused_when_the_initiator_knows_the_time() -> None:
    authority = new_secret()
    keys = ServerKeys(authority, NOW)
    old = Certificate.sign(authority, keys.static_xonly, NOW - 7200, NOW - 3600)
    for now, refused in ((NOW, True), (None, False)):
        initiator = NoiseInitiator(keys.authority_xonly, now=now)
        responder = NoiseResponder(keys.static, old)
        responder.receive(initiator.data_to_send())
        if refused:
            with pytest.raises(NoiseError, match="valid"):
                initiator.receive(responder.data_to_send())
        else:  # like the firmware, which checks the signature and not the dates
            initiator.receive(responder.data_to_send())
            assert initiator.handshake_complete


def test_without_an_authority_key_any_server_is_accepted(keys: ServerKeys) -> None:
    initiator = NoiseInitiator(None)
    responder = NoiseResponder(KeyPair.generate(), Certificate(0, 0, 0, b"\x00" * 64))
    responder.receive(initiator.data_to_send())
    initiator.receive(responder.data_to_send())
    assert initiator.handshake_complete


@pytest.mark.parametrize("offset", [0, 31, 63, 64, 100, 143, 144, 200, 233])
def test_a_tampered_byte_in_the_responders_message_is_refused(keys: ServerKeys, offset: int) -> None:
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    responder.receive(initiator.data_to_send())
    message = bytearray(responder.data_to_send())
    message[offset] ^= 0x01
    with pytest.raises(NoiseError):
        initiator.receive(bytes(message))


def test_a_tampered_initiator_key_breaks_the_handshake(keys: ServerKeys) -> None:
    """The responder cannot tell (any 64 bytes are a key), but the two sides derive different keys."""
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    first = bytearray(initiator.data_to_send())
    first[5] ^= 0x80
    responder.receive(bytes(first))
    with pytest.raises(NoiseError, match="bad MAC"):
        initiator.receive(responder.data_to_send())


def test_a_handshake_message_of_the_wrong_size_is_refused(keys: ServerKeys) -> None:
    responder = NoiseResponder.for_server(keys, NOW)
    with pytest.raises(NoiseError, match="64 bytes; got 65"):
        responder.receive(b"\x00" * 65)
    responder = NoiseResponder.for_server(keys, NOW)
    responder.receive(b"\x00" * 60)
    with pytest.raises(NoiseError, match="64 bytes; got 70"):
        responder.receive(b"\x00" * 10)
    with pytest.raises(NoiseError):
        responder.send(encode_frame(0, 0, b""))


def test_nothing_is_sent_before_the_handshake(keys: ServerKeys) -> None:
    with pytest.raises(NoiseError, match="not complete"):
        NoiseResponder.for_server(keys, NOW).send(encode_frame(0, 0, b""))
    with pytest.raises(NoiseError, match="not complete"):
        NoiseInitiator(keys.authority_xonly).send(encode_frame(0, 0, b""))


# ----------------------------------------------------------------------------------------------- transport


@pytest.mark.parametrize(
    "length",
    [0, 1, 74, MAX_PLAINTEXT_CHUNK - 1, MAX_PLAINTEXT_CHUNK, MAX_PLAINTEXT_CHUNK + 1, 2 * MAX_PLAINTEXT_CHUNK,
     2 * MAX_PLAINTEXT_CHUNK + 1, 3 * MAX_PLAINTEXT_CHUNK + 12345],
)
def test_frames_both_ways_at_the_chunk_boundaries(keys: ServerKeys, length: int) -> None:
    initiator, responder = connect(keys)
    payload = random.Random(length).randbytes(length)
    frame = encode_frame(0x8000, 0x1B, payload)
    up = initiator.send(frame)
    chunks, rest = divmod(length, 65519)
    assert len(up) == ENCRYPTED_HEADER_SIZE + chunks * 65535 + (rest + 16 if rest else 0)
    assert len(up) == ENCRYPTED_HEADER_SIZE + ciphertext_length(length)
    assert length < 16 or payload[:16] not in up
    assert responder.receive(up) == [frame]
    down = responder.send(frame)
    assert down != up  # the two directions have their own keys
    assert initiator.receive(down) == [frame]


def test_the_ciphertext_length_is_the_specs(keys: ServerKeys) -> None:
    for length in [*range(0, 70), *range(65500, 65540), 131038, 131039, 131040, MAX_PAYLOAD]:
        assert ciphertext_length(length) == spec_pt_len_to_ct_len(length)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255),
                       st.one_of(st.integers(0, 300), st.integers(65500, 140000))), min_size=1, max_size=6),
    st.lists(st.integers(1, 70000), max_size=12),
    st.integers(0, 2**32),
)
def test_any_frames_under_any_split_of_the_stream_come_out_whole_and_in_order(
    keys: ServerKeys, specs: list[tuple[int, int, int]], cuts: list[int], seed: int,
) -> None:
    rnd = random.Random(seed)
    initiator, responder = connect(keys, max_payload=140000)
    frames = [encode_frame(ext, msg, rnd.randbytes(n)) for ext, msg, n in specs]
    for sender, receiver in ((initiator, responder), (responder, initiator)):
        stream = b"".join(sender.send(f) for f in frames)
        got: list[bytes] = []
        pos = 0
        for cut in [*cuts, len(stream)]:
            got += receiver.receive(stream[pos : pos + cut])
            pos += cut
            assert receiver.buffered <= ENCRYPTED_HEADER_SIZE + ciphertext_length(140000)
        got += receiver.receive(stream[pos:])
        assert got == frames
        assert receiver.buffered == 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 3000), st.integers(0, 7), st.data())
def test_any_flipped_bit_in_the_transport_is_refused(keys: ServerKeys, length: int, bit: int,
                                                     data: st.DataObject) -> None:
    initiator, responder = connect(keys)
    wire = bytearray(initiator.send(encode_frame(0, 0x1B, b"\x07" * length)))
    offset = data.draw(st.integers(0, len(wire) - 1))
    wire[offset] ^= 1 << bit
    # the header has its own MAC, so a flipped length is caught before the responder waits for a payload
    with pytest.raises(NoiseError):
        responder.receive(bytes(wire))


def test_a_replayed_or_reordered_frame_is_refused(keys: ServerKeys) -> None:
    initiator, responder = connect(keys)
    one, two = initiator.send(encode_frame(0, 1, b"one")), initiator.send(encode_frame(0, 2, b"two"))
    with pytest.raises(NoiseError):
        responder.receive(two + one)
    initiator, responder = connect(keys)
    one = initiator.send(encode_frame(0, 1, b"one"))
    assert responder.receive(one) == [encode_frame(0, 1, b"one")]
    with pytest.raises(NoiseError):
        responder.receive(one)


def test_an_oversized_frame_is_refused_at_its_header(keys: ServerKeys) -> None:
    initiator, responder = connect(keys, max_payload=DEFAULT_RESPONDER_MAX_PAYLOAD)
    # the initiator may send it; the responder refuses as soon as the 22 header bytes are in
    wire = initiator.send(encode_frame(0, 0x1B, b"\x00" * (DEFAULT_RESPONDER_MAX_PAYLOAD + 1)))
    with pytest.raises(NoiseError, match="65537 payload bytes; allowed at most 65536"):
        responder.receive(wire[:ENCRYPTED_HEADER_SIZE])
    # at the bound, it passes
    initiator, responder = connect(keys, max_payload=DEFAULT_RESPONDER_MAX_PAYLOAD)
    frame = encode_frame(0, 0x1B, b"\x00" * DEFAULT_RESPONDER_MAX_PAYLOAD)
    assert responder.receive(initiator.send(frame)) == [frame]


def test_the_responder_bounds_what_it_holds_by_default(keys: ServerKeys) -> None:
    initiator, responder = connect(keys, max_payload=DEFAULT_RESPONDER_MAX_PAYLOAD)
    wire = initiator.send(encode_frame(0, 0x1B, b"\x00" * DEFAULT_RESPONDER_MAX_PAYLOAD))
    assert responder.receive(wire[:-1]) == []
    assert responder.buffered == len(wire) - 1 - ENCRYPTED_HEADER_SIZE
    assert responder.buffered <= ciphertext_length(DEFAULT_RESPONDER_MAX_PAYLOAD)
    assert len(responder.receive(wire[-1:])) == 1 and responder.buffered == 0


def test_a_frame_whose_header_lies_about_its_length_is_not_sent(keys: ServerKeys) -> None:
    initiator, _ = connect(keys)
    with pytest.raises(NoiseError, match="says 5 payload bytes"):
        initiator.send(encode_header(0, 0x1B, 5) + b"abc")
    with pytest.raises(NoiseError):
        initiator.send(b"\x00\x00")
    assert HEADER_SIZE == 6


def test_the_nonce_counts_and_is_never_reused() -> None:
    a, b = CipherState(b"\x01" * 32), CipherState(b"\x01" * 32)
    first, second = a.encrypt_with_ad(b"", b"x"), a.encrypt_with_ad(b"", b"x")
    assert first != second and a.n == 2
    with pytest.raises(NoiseError):
        b.decrypt_with_ad(b"", second)
    assert b.n == 0  # a failed decryption does not advance the nonce (spec 4.4.1)
    assert b.decrypt_with_ad(b"", first) == b"x" and b.decrypt_with_ad(b"", second) == b"x"
    a.n = (1 << 64) - 1
    with pytest.raises(NoiseError, match="nonce exhausted"):
        a.encrypt_with_ad(b"", b"x")


async def test_the_two_ends_over_a_real_loopback_socket(keys: ServerKeys) -> None:
    """The sans-IO objects behind asyncio streams on 127.0.0.1: TCP splits the bytes as it likes."""
    import asyncio

    big = encode_frame(0, 0x1B, random.Random(7).randbytes(3 * MAX_PLAINTEXT_CHUNK + 99))
    small = [encode_frame(0x8000, 0x1B, bytes([i]) * (24 + i)) for i in range(50)]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        responder = NoiseResponder.for_server(keys, NOW, max_payload=BIG)
        while not responder.handshake_complete:
            data = await reader.read(7)  # small reads: the handshake arrives in pieces
            assert data, "the client closed early"
            responder.receive(data)
        writer.write(responder.data_to_send())
        echoed = 0
        while echoed < len(small) + 1:
            data = await reader.read(1000)
            assert data, "the client closed early"
            for frame in responder.receive(data):
                writer.write(responder.send(frame))  # echo each frame back
                echoed += 1
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
        writer.write(initiator.data_to_send())
        while not initiator.handshake_complete:
            data = await asyncio.wait_for(reader.read(100), 10)
            assert data
            assert initiator.receive(data) == []
        writer.write(b"".join(initiator.send(f) for f in [*small[:25], big, *small[25:]]))
        got: list[bytes] = []
        while len(got) < len(small) + 1:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, "the server closed early"
            got += initiator.receive(data)
        assert got == [*small[:25], big, *small[25:]]
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
