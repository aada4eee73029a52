"""Stratum V2 keys: the authority key string, the key file, the curve operations and the certificate."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest
from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_pool.cli import main as cli_main
from stratum_pool.protocol.v2.keys import (
    CERT_LIFETIME_SECONDS,
    CERT_RENEW_MARGIN_SECONDS,
    CERTIFICATE_SIZE,
    Certificate,
    KeyPair,
    ServerKeys,
    SV2KeyError,
    certificate_message,
    create_authority_key_file,
    decode_authority_key,
    ellswift_create,
    ellswift_ecdh,
    ellswift_xonly,
    encode_authority_key,
    load_authority_key_file,
    needs_renewal,
    new_secret,
    renewal_due_at,
    xonly_public_key,
)

# sv2-spec 04-Protocol-Security.md, 4.7.1 "Test vector"
SPEC_RAW_CA_PUBLIC_KEY = bytes([
    118, 99, 112, 0, 151, 156, 28, 17, 175, 12, 48, 11, 205, 140, 127, 228, 134, 16, 252, 233, 185, 193, 30,
    61, 174, 227, 90, 224, 176, 138, 116, 85,
])
SPEC_PREFIXED_BASE58CHECK = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(1, SECP256K1_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))


# ------------------------------------------------------------------------------------------ authority key


def test_the_spec_example_authority_key_is_reproduced() -> None:
    assert encode_authority_key(SPEC_RAW_CA_PUBLIC_KEY) == SPEC_PREFIXED_BASE58CHECK
    assert decode_authority_key(SPEC_PREFIXED_BASE58CHECK) == SPEC_RAW_CA_PUBLIC_KEY


@settings(max_examples=50, deadline=None)
@given(secrets)
def test_authority_keys_round_trip(secret: bytes) -> None:
    xonly = xonly_public_key(secret)
    assert decode_authority_key(encode_authority_key(xonly)) == xonly


@pytest.mark.parametrize(
    "text",
    [
        SPEC_PREFIXED_BASE58CHECK[:-1] + ("i" if SPEC_PREFIXED_BASE58CHECK[-1] != "i" else "j"),  # checksum
        SPEC_PREFIXED_BASE58CHECK.replace("X", "0", 1),  # not a base58 character
        "",
    ],
)
def test_a_damaged_authority_key_is_refused(text: str) -> None:
    with pytest.raises(SV2KeyError, match="authority key"):
        decode_authority_key(text)


def test_an_authority_key_with_another_prefix_or_length_is_refused() -> None:
    from stratum_pool.chain.address import base58check_encode

    for raw in (b"\x02\x00" + SPEC_RAW_CA_PUBLIC_KEY, b"\x01\x00" + SPEC_RAW_CA_PUBLIC_KEY[:31],
                SPEC_RAW_CA_PUBLIC_KEY):
        with pytest.raises(SV2KeyError, match="prefix 0100"):
            decode_authority_key(base58check_encode(raw))


# ------------------------------------------------------------------------------------------- the key file


def test_the_key_file_is_0600_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    secret = create_authority_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_authority_key_file(path) == secret


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    secret = create_authority_key_file(path)
    with pytest.raises(FileExistsError):
        create_authority_key_file(path)
    assert load_authority_key_file(path) == secret


def test_server_keys_from_the_key_file_sign_with_that_authority(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    secret = create_authority_key_file(path)
    keys = ServerKeys.from_file(path, 1_800_000_000)
    assert keys.authority_xonly == xonly_public_key(secret)
    assert keys.authority_key == encode_authority_key(xonly_public_key(secret))
    keys.certificate(1_800_000_000).verify(xonly_public_key(secret), keys.static_xonly, now=1_800_000_000)


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    create_authority_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(SV2KeyError, match=r"mode 0644 .* allowed: 0600"):
        load_authority_key_file(path)


@pytest.mark.parametrize("content", ["not hex\n", "00" * 32 + "\n", "ab" * 31 + "\n", "ff" * 32 + "\n"])
def test_a_key_file_without_a_valid_secret_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "authority.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    with pytest.raises(SV2KeyError, match="authority key file"):
        load_authority_key_file(path)


def test_a_missing_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SV2KeyError, match=r"nothing\.key"):
        load_authority_key_file(tmp_path / "nothing.key")


def test_the_cli_creates_the_key_and_prints_its_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    path = tmp_path / "pool-authority.key"
    assert cli_main(["sv2-keys", "--out", str(path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decode_authority_key(printed) == xonly_public_key(load_authority_key_file(path))
    # a second run refuses to replace the key miners have configured
    assert cli_main(["sv2-keys", "--out", str(path)]) == 2
    assert "never replaced" in capsys.readouterr().err
    assert decode_authority_key(printed) == xonly_public_key(load_authority_key_file(path))


# ------------------------------------------------------------------------------------- curve operations


@settings(max_examples=30, deadline=None)
@given(secrets, st.binary(min_size=32, max_size=32))
def test_an_ellswift_encoding_decodes_to_its_x_only_key(secret: bytes, randomness: bytes) -> None:
    encoding = ellswift_create(secret, randomness)
    assert len(encoding) == 64
    assert ellswift_xonly(encoding) == xonly_public_key(secret) == PublicKeyXOnly.from_secret(secret).format()


def test_fresh_encodings_of_one_key_differ() -> None:
    secret = new_secret()
    a, b = ellswift_create(secret), ellswift_create(secret)
    assert a != b and ellswift_xonly(a) == ellswift_xonly(b)


def _bip324_ecdh(secret: bytes, their_secret: bytes, initiator_ell: bytes, responder_ell: bytes) -> bytes:
    """BIP324's v2_ecdh computed another way: the shared point by plain multiplication, then the tagged hash."""
    shared_x = PublicKey.from_secret(their_secret).multiply(secret).format(compressed=True)[1:]
    tag = hashlib.sha256(b"bip324_ellswift_xonly_ecdh").digest()
    return hashlib.sha256(tag + tag + initiator_ell + responder_ell + shared_x).digest()


@settings(max_examples=30, deadline=None)
@given(secrets, secrets)
def test_ellswift_ecdh_is_bip324s_v2_ecdh_and_both_roles_agree(a_secret: bytes, b_secret: bytes) -> None:
    a, b = KeyPair.from_secret(a_secret), KeyPair.from_secret(b_secret)
    initiator_side = ellswift_ecdh(a.secret, a.ellswift, b.ellswift, initiator=True)
    responder_side = ellswift_ecdh(b.secret, b.ellswift, a.ellswift, initiator=False)
    assert initiator_side == responder_side == _bip324_ecdh(a_secret, b_secret, a.ellswift, b.ellswift)
    # the roles are part of the hash: the same keys with the roles swapped give another secret
    assert ellswift_ecdh(a.secret, a.ellswift, b.ellswift, initiator=False) != initiator_side


def test_a_key_pair_never_shows_its_secret() -> None:
    pair = KeyPair.generate()
    assert pair.secret.hex() not in repr(pair)


# ------------------------------------------------------------------------------------------ certificate


def test_the_certificate_layout_and_its_signature() -> None:
    authority, server = new_secret(), KeyPair.generate()
    cert = Certificate.sign(authority, server.xonly, 1_700_000_000, 1_700_086_400)
    raw = cert.encode()
    assert len(raw) == CERTIFICATE_SIZE == 74
    assert raw[:10] == struct.pack("<HII", 0, 1_700_000_000, 1_700_086_400)
    assert Certificate.decode(raw) == cert
    # the signature is BIP340 by the authority over SHA256(version || valid_from || not_valid_after || x-only),
    # checked here with libsecp256k1 directly on a message built by hand
    message = hashlib.sha256(raw[:10] + server.xonly).digest()
    assert message == certificate_message(0, 1_700_000_000, 1_700_086_400, server.xonly)
    assert PublicKeyXOnly(xonly_public_key(authority)).verify(raw[10:], message)
    cert.verify(xonly_public_key(authority), server.xonly, now=1_700_000_000)


def test_a_certificate_signed_with_coincurves_own_signer_verifies() -> None:
    authority, server = new_secret(), KeyPair.generate()
    message = certificate_message(0, 10, 20, server.xonly)
    cert = Certificate(0, 10, 20, PrivateKey(authority).sign_schnorr(message))
    cert.verify(xonly_public_key(authority), server.xonly, now=15)


@pytest.mark.parametrize("field", ["version", "valid_from", "not_valid_after", "signature"])
def test_a_changed_certificate_field_fails_the_signature(field: str) -> None:
    authority, server = new_secret(), KeyPair.generate()
    cert = Certificate.sign(authority, server.xonly, 100, 200)
    changed = {
        "version": Certificate(1, 100, 200, cert.signature),
        "valid_from": Certificate(0, 99, 200, cert.signature),
        "not_valid_after": Certificate(0, 100, 201, cert.signature),
        "signature": Certificate(0, 100, 200, cert.signature[:-1] + bytes([cert.signature[-1] ^ 1])),
    }[field]
    assert not changed.signature_valid(xonly_public_key(authority), server.xonly)
    with pytest.raises(SV2KeyError, match="not signed by the configured authority"):
        changed.verify(xonly_public_key(authority), server.xonly, now=None)


def test_another_authority_or_another_server_key_fails_the_signature() -> None:
    authority, server = new_secret(), KeyPair.generate()
    cert = Certificate.sign(authority, server.xonly, 100, 200)
    assert cert.signature_valid(xonly_public_key(authority), server.xonly)
    assert not cert.signature_valid(xonly_public_key(new_secret()), server.xonly)
    assert not cert.signature_valid(xonly_public_key(authority), KeyPair.generate().xonly)


def test_the_validity_window_allows_ten_seconds_of_clock_difference() -> None:
    authority, server = new_secret(), KeyPair.generate()
    cert = Certificate.sign(authority, server.xonly, 1000, 2000)
    for now in (990, 1000, 2000, 2010):
        cert.verify(xonly_public_key(authority), server.xonly, now=now)
    for now in (989, 2011):
        with pytest.raises(SV2KeyError, match=r"valid 1000\.\.2000"):
            cert.verify(xonly_public_key(authority), server.xonly, now=now)


def test_renewal_is_due_a_margin_before_expiry_or_when_the_clock_went_back() -> None:
    cert = Certificate(0, 1000, 5000, b"\x00" * 64)
    assert renewal_due_at(cert, margin=600) == 4400
    assert not needs_renewal(cert, 4399, margin=600)
    assert needs_renewal(cert, 4400, margin=600)
    assert needs_renewal(cert, 999, margin=600)


def test_server_keys_re_sign_the_certificate_before_it_expires() -> None:
    now = 1_800_000_000
    keys = ServerKeys(new_secret(), now)
    first = keys.certificate(now)
    first.verify(keys.authority_xonly, keys.static_xonly, now=now)
    assert first.not_valid_after == now + CERT_LIFETIME_SECONDS
    assert first.valid_from < now  # backdated for miners whose clock is behind
    due = renewal_due_at(first, CERT_RENEW_MARGIN_SECONDS)
    assert keys.certificate(due - 1) is first
    second = keys.certificate(due)
    assert second is not first
    second.verify(keys.authority_xonly, keys.static_xonly, now=due)
    assert second.not_valid_after == due + CERT_LIFETIME_SECONDS
    # the static key stays; only the certificate changes
    assert keys.static_xonly == ellswift_xonly(keys.static.ellswift)
    # at every moment the certificate handed out is valid for at least the margin
    for t in range(now, now + 3 * CERT_LIFETIME_SECONDS, 1234):
        cert = keys.certificate(t)
        assert cert.in_date(t, leeway=0) and cert.not_valid_after - t > CERT_RENEW_MARGIN_SECONDS - 1


def test_server_keys_refuse_a_margin_not_below_the_lifetime() -> None:
    with pytest.raises(SV2KeyError, match="renewal margin 100 s"):
        ServerKeys(new_secret(), 0, lifetime=100, margin=100)
    assert "secret" not in repr(ServerKeys(new_secret(), 0))
