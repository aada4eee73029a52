"""The SV2 common and mining messages: type numbers from the spec's table, byte layouts computed by hand,
round trips of every message, and frames refused."""

from __future__ import annotations

import struct

import pytest

from stratum_pool.protocol.v2 import messages as m
from stratum_pool.protocol.v2.codec import CodecError

# sv2-spec 08-Message-Types.md: (type, channel_msg bit)
SPEC_TYPES = {
    m.SetupConnection: (0x00, False), m.SetupConnectionSuccess: (0x01, False), m.SetupConnectionError: (0x02, False),
    m.Reconnect: (0x04, False), m.OpenStandardMiningChannel: (0x10, False),
    m.OpenStandardMiningChannelSuccess: (0x11, False), m.OpenMiningChannelError: (0x12, False),
    m.OpenExtendedMiningChannel: (0x13, False), m.OpenExtendedMiningChannelSuccess: (0x14, False),
    m.NewMiningJob: (0x15, True), m.UpdateChannel: (0x16, True), m.UpdateChannelError: (0x17, True),
    m.CloseChannel: (0x18, True), m.SetExtranoncePrefix: (0x19, True), m.SubmitSharesStandard: (0x1A, True),
    m.SubmitSharesExtended: (0x1B, True), m.SubmitSharesSuccess: (0x1C, True), m.SubmitSharesError: (0x1D, True),
    m.NewExtendedMiningJob: (0x1F, True), m.SetNewPrevHash: (0x20, True), m.SetTarget: (0x21, True),
}

H1, H2, H3 = bytes(range(32)), bytes(range(32, 64)), b"\xab" * 32
EXAMPLES: list[m.Message] = [
    m.SetupConnection(0, 2, 2, 1, "pool.example", 3336, "bitaxe", "BM1370", "v2.9.0", "serial-1"),
    m.SetupConnectionSuccess(2, 0),
    m.SetupConnectionError(4, "unsupported-feature-flags"),
    m.Reconnect("", 0),
    m.OpenStandardMiningChannel(1, "bcrt1qabc.worker", 2.0**40, 2**256 - 1),
    m.OpenStandardMiningChannelSuccess(1, 7, 2**200, b"\x00\x00\x00\x2a" + bytes(4), 0),
    m.OpenMiningChannelError(1, "unknown-user"),
    m.OpenExtendedMiningChannel(9, "addr", 0.0, 5, 2),
    m.OpenExtendedMiningChannelSuccess(9, 3, 2**255, 4, b"\x01\x02\x03\x04", 0),
    m.NewMiningJob(3, 0x03000001, None, 0x20000000, H1),
    m.NewMiningJob(3, 0x03000002, 1_700_000_000, 0x20000000, H2),
    m.UpdateChannel(3, 2.0**39, 2**240),
    m.UpdateChannelError(3, "invalid-channel-id"),
    m.CloseChannel(3, "bye"),
    m.SetExtranoncePrefix(3, b"\x09" * 8),
    m.SubmitSharesStandard(3, 1, 0x03000001, 0xDEADBEEF, 1_700_000_001, 0x20002000),
    m.SubmitSharesExtended(3, 2, 0x03000001, 1, 2, 0x20002000, b"\x00\x01\x02\x03"),
    m.SubmitSharesSuccess(3, 2, 2, 2048),
    m.SubmitSharesError(3, 1, "stale-share"),
    m.NewExtendedMiningJob(3, 5, None, 0x20000000, True, (H1, H2, H3), b"prefix", b"suffix"),
    m.NewExtendedMiningJob(3, 6, 1_700_000_000, 0x20000000, False, (), b"", b""),
    m.SetNewPrevHash(3, 5, H3, 1_700_000_000, 0x207FFFFF),
    m.SetTarget(3, 2**224 - 1),
]


def test_every_message_has_the_spec_s_type_number_and_channel_bit() -> None:
    assert {cls: (cls.MSG_TYPE, cls.CHANNEL_MSG) for cls in m.MESSAGES.values()} == SPEC_TYPES
    assert {type(e) for e in EXAMPLES} == set(SPEC_TYPES)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_message_round_trips_through_a_whole_frame(message: m.Message) -> None:
    frame = message.encode()
    assert frame[2] == message.MSG_TYPE
    assert int.from_bytes(frame[0:2], "little") == (0x8000 if message.CHANNEL_MSG else 0)
    assert int.from_bytes(frame[3:6], "little") == len(frame) - 6
    assert m.decode_frame(frame) == message


def test_setup_connection_layout() -> None:
    frame = m.SetupConnection(0, 2, 2, 1, "h", 3333, "v", "", "f", "").encode()
    payload = bytes.fromhex("00" "0200" "0200" "01000000" "0168" "050d" "0176" "00" "0166" "00")
    assert frame == bytes.fromhex("000000") + len(payload).to_bytes(3, "little") + payload


def test_submit_shares_extended_layout() -> None:
    frame = m.SubmitSharesExtended(1, 2, 3, 4, 5, 0x20000000, b"\xaa\xbb").encode()
    payload = bytes.fromhex("01000000" "02000000" "03000000" "04000000" "05000000" "00000020" "02aabb")
    assert frame == bytes.fromhex("00801b") + len(payload).to_bytes(3, "little") + payload


def test_submit_shares_success_is_20_bytes_of_payload_as_esp_miner_reads_it() -> None:
    frame = m.SubmitSharesSuccess(7, 9, 3, 3000).encode()
    assert frame[6:] == struct.pack("<IIIQ", 7, 9, 3, 3000)
    assert len(frame) == 6 + 20


def test_new_mining_job_layout_future_and_not() -> None:
    future = m.NewMiningJob(1, 2, None, 0x20000000, H1).encode()
    assert future[6:] == bytes.fromhex("01000000" "02000000" "00" "00000020") + H1
    active = m.NewMiningJob(1, 2, 0x01020304, 0x20000000, H1).encode()
    assert active[6:] == bytes.fromhex("01000000" "02000000" "01" "04030201" "00000020") + H1


def test_new_extended_mining_job_layout() -> None:
    frame = m.NewExtendedMiningJob(1, 2, None, 0x20000000, True, (H1,), b"\x01\x02", b"\x03").encode()
    expected = (bytes.fromhex("01000000" "02000000" "00" "00000020" "01" "01") + H1
                + bytes.fromhex("0200" "0102" "0100" "03"))
    assert frame[6:] == expected


def test_open_extended_channel_success_and_targets_are_little_endian() -> None:
    frame = m.OpenExtendedMiningChannelSuccess(1, 2, 0xFF << 240, 4, b"\x0a\x0b", 0).encode()
    expected = (bytes.fromhex("01000000" "02000000") + bytes(30) + b"\xff\x00"
                + bytes.fromhex("0400" "020a0b" "00000000"))
    assert frame[6:] == expected
    assert m.SetTarget(1, 1).encode()[6:] == b"\x01\x00\x00\x00\x01" + bytes(31)


def test_set_new_prev_hash_layout() -> None:
    frame = m.SetNewPrevHash(1, 2, H2, 3, 0x207FFFFF).encode()
    assert frame[6:] == bytes.fromhex("01000000" "02000000") + H2 + bytes.fromhex("03000000" "ffff7f20")


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_truncation_and_every_extra_byte_is_refused(message: m.Message) -> None:
    frame = message.encode()
    payload = frame[6:]
    for cut in range(len(payload)):
        short = frame[:3] + cut.to_bytes(3, "little") + payload[:cut]
        with pytest.raises(CodecError):
            m.decode_frame(short)
    long = frame[:3] + (len(payload) + 1).to_bytes(3, "little") + payload + b"\x00"
    with pytest.raises(CodecError, match="trailing"):
        m.decode_frame(long)


def test_frames_whose_length_disagrees_with_the_header_are_refused() -> None:
    frame = m.SetTarget(1, 1).encode()
    with pytest.raises(CodecError):
        m.decode_frame(frame[:-1])
    with pytest.raises(CodecError):
        m.decode_frame(frame + b"\x00")
    with pytest.raises(CodecError):
        m.decode_frame(frame[:5])


def test_unknown_types_and_extensions_are_told_apart() -> None:
    with pytest.raises(m.UnknownMessage) as unknown:
        m.decode_frame(bytes.fromhex("00801e000000"))
    assert (unknown.value.extension, unknown.value.msg_type, unknown.value.channel_msg) == (0, 0x1E, True)
    with pytest.raises(m.UnknownMessage) as extension:
        m.decode_frame(bytes.fromhex("010010000000"))  # extension 1's message 0x10, not OpenStandardMiningChannel
    assert extension.value.extension == 1


def test_a_bad_string_or_oversized_prefix_inside_a_message_is_refused() -> None:
    good = m.OpenMiningChannelError(1, "ab").encode()
    with pytest.raises(CodecError):
        m.decode_frame(good[:-2] + b"\xff\xfe")  # not UTF-8
    prefix = m.SetExtranoncePrefix(1, b"").encode()
    bad = prefix[:3] + (5 + 33).to_bytes(3, "little") + prefix[6:10] + b"\x21" + bytes(33)
    with pytest.raises(CodecError, match="over its maximum"):
        m.decode_frame(bad)
