"""The share spool: durable, ordered, exactly-numbered records on local disk."""

from __future__ import annotations

import asyncio
import errno
import math
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.store.spool import (
    KIND_SHARE,
    MAX_FRAME_BODY,
    SHARE_FIXED,
    SHARE_KEY_START,
    BlockRecord,
    RejectedRecord,
    ShareRecord,
    ShareSpool,
    codec,
    decode_payload,
    decode_share_key,
    encode_frame,
    encode_payload,
    share_key_bytes,
)


def zero() -> float:
    return 0.0


def share(i: int = 0, **kw: object) -> ShareRecord:
    fields: dict[str, object] = dict(seq=0, time=1_700_000_000.25 + i, coin_key="bitcoin-regtest",
                                     address="bcrt1qexample", worker_name=f"rig{i % 3}", user_agent="cgminer/4.12",
                                     difficulty=1.5 + i, achieved=3.25 + i, height=100 + i, is_block=False)
    fields.update(kw)
    return ShareRecord(**fields)  # type: ignore[arg-type]


BLOCK = BlockRecord(0, 1_700_000_123.5, "litecoin-regtest", 432, "00ab" * 16, 625_000_000_000,
                    "rltc1qfinder", "rig-é", 41, 0.000244140625, "pplns", True, "", 12_345, "rltc1qfee", 2.5)
REJECTED = RejectedRecord(0, 1_700_000_040.0, "bitcoin-regtest", "bcrt1qx", "", "stale", 17)


texts = st.text(max_size=40)
floats = st.floats(allow_nan=False)


@given(time=floats, coin=texts, address=texts, worker=texts, agent=texts, difficulty=floats, achieved=floats,
       height=st.integers(-2**31, 2**31 - 1), is_block=st.booleans(), seq=st.integers(1, 2**63 - 1))
def test_share_record_round_trips_every_field_exactly(time: float, coin: str, address: str, worker: str, agent: str,
                                                      difficulty: float, achieved: float, height: int,
                                                      is_block: bool, seq: int) -> None:
    record = ShareRecord(seq, time, coin, address, worker, agent, difficulty, achieved, height, is_block)
    kind, payload = encode_payload(record)
    assert decode_payload(seq, kind, memoryview(payload)) == record


@given(reward=st.integers(0, 2**63 - 1), fee_ppm=st.integers(0, 999_999), netdiff=floats, factor=floats,
       accepted=st.booleans(), result=texts, worker=texts)
def test_block_record_round_trips_every_field_exactly(reward: int, fee_ppm: int, netdiff: float, factor: float,
                                                      accepted: bool, result: str, worker: str) -> None:
    record = BlockRecord(7, 1.5, "bitcoin-regtest", 10, "ff" * 32, reward, "addr", worker, 6, netdiff, "prop",
                         accepted, result, fee_ppm, "fee", factor)
    kind, payload = encode_payload(record)
    assert decode_payload(7, kind, memoryview(payload)) == record


def test_infinite_achieved_difficulty_survives() -> None:
    record = share(seq=5, achieved=math.inf)
    kind, payload = encode_payload(record)
    assert decode_payload(5, kind, memoryview(payload)) == record


async def test_records_read_back_in_order_with_their_seqs(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    appended = [spool.append(r) for r in (share(0), REJECTED, BLOCK, share(1))]
    await asyncio.gather(*(f for _, f in appended))
    assert [s for s, _ in appended] == [1, 2, 3, 4]
    got = spool.read_from(0, 100)
    assert [r.seq for r in got] == [1, 2, 3, 4]
    assert got[0] == share(0, seq=1)
    assert got[1] == RejectedRecord(2, *[getattr(REJECTED, f) for f in REJECTED.__slots__[1:]])
    assert isinstance(got[2], BlockRecord) and got[2].reward == BLOCK.reward and got[2].finder_worker == "rig-é"
    assert [r.seq for r in spool.read_from(2, 100)] == [3, 4]
    assert [r.seq for r in spool.read_from(0, 2)] == [1, 2]
    assert [r.seq for r in spool.read_from(2, 1)] == [3]
    await spool.close()


async def test_append_share_writes_the_frame_append_writes(tmp_path: Path) -> None:
    """The recorder's path (the worker's strings encoded once) gives byte for byte the frame of a ShareRecord."""
    spool = ShareSpool(tmp_path, clock=zero, group_commit_seconds=10.0)
    records = [share(0), share(1, worker_name="rig-é", is_block=True, achieved=math.inf), share(2, user_agent="")]
    for r in records:
        key = share_key_bytes(r.coin_key, r.address, r.worker_name, r.user_agent)
        spool.append_share(r.time, r.difficulty, r.achieved, r.height, r.is_block, key)
    spool.append(share(3))
    await spool.flush()
    expected = b"".join(encode_frame(i + 1, replace(r, seq=i + 1)) for i, r in enumerate([*records, share(3)]))
    data = next(tmp_path.glob("*.seg")).read_bytes()
    assert data[:len(expected)] == expected
    assert not any(data[len(expected):])  # then the preallocated rest: zeros
    assert spool.read_from(0, 10) == [replace(r, seq=i + 1) for i, r in enumerate([*records, share(3)])]
    await spool.close()


async def test_a_closed_spool_refuses_appends_and_hands_out_no_seq(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    await spool.append(share(0))[1]
    spool.append(share(1))  # pending at close: flushed by it
    await spool.close()
    key = share_key_bytes("c", "a", "w", "")
    with pytest.raises(RuntimeError, match="closed"):
        spool.append(share(2))
    with pytest.raises(RuntimeError, match="closed"):
        spool.append_share(1.0, 1.0, 1.0, 1, False, key)
    assert spool.stats().last_seq == 2
    again = ShareSpool(tmp_path, clock=zero)
    assert [r.seq for r in again.read_from(0, 10)] == [1, 2]
    await again.close()


async def test_unsynced_records_are_not_read(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, group_commit_seconds=10.0)
    _, future = spool.append(share())
    assert spool.read_from(0, 10) == []
    assert spool.stats().pending_records == 1
    await spool.flush()
    assert future.done() and future.exception() is None
    assert len(spool.read_from(0, 10)) == 1
    assert spool.stats().pending_records == 0
    await spool.close()


async def test_fresh_spool_numbers_from_the_clock_in_microseconds(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=lambda: 1_700_000_000.5)
    seq, future = spool.append(share())
    await future
    assert seq == 1_700_000_000_500_000
    await spool.close()


async def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    await asyncio.gather(*(spool.append(share(i))[1] for i in range(10)))
    await spool.close()
    again = ShareSpool(tmp_path, clock=lambda: 5e9)  # the clock only numbers a fresh spool
    seq, future = again.append(share(10))
    await future
    assert seq == 11
    assert [r.seq for r in again.read_from(0, 100)] == list(range(1, 12))
    await again.close()


def data_end(segment: Path) -> int:
    """Where a segment's records end (a preallocated segment is zeros after them)."""
    data = segment.read_bytes()
    _, good, stop = codec.frames(data, 0, len(data))
    assert stop in ("end", "zeros")
    return good


async def test_torn_tail_is_truncated_on_open(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    await asyncio.gather(*(spool.append(share(i))[1] for i in range(3)))
    await spool.close()
    segment = next(tmp_path.glob("*.seg"))
    good_size = data_end(segment)
    frame = encode_frame(4, share(3))
    with open(segment, "r+b") as f:
        f.seek(good_size)
        f.write(frame[: len(frame) // 2])  # the crash came in the middle of a write
    again = ShareSpool(tmp_path, clock=zero)
    assert data_end(segment) == good_size
    assert not any(segment.read_bytes()[good_size:])  # the torn bytes are gone, the rest is zeros again
    assert [r.seq for r in again.read_from(0, 10)] == [1, 2, 3]
    seq, future = again.append(share(3))
    await future
    assert seq == 4
    assert [r.seq for r in again.read_from(0, 10)] == [1, 2, 3, 4]
    await again.close()


async def test_corrupt_tail_is_truncated_on_open(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    await asyncio.gather(*(spool.append(share(i))[1] for i in range(3)))
    await spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[data_end(segment) - 3] ^= 0xFF  # the last record's bytes are not what was written
    segment.write_bytes(bytes(data))
    again = ShareSpool(tmp_path, clock=zero)
    assert [r.seq for r in again.read_from(0, 10)] == [1, 2]
    seq, future = again.append(share(9))
    await future
    assert seq == 3  # the lost record was never acknowledged: its number is free again
    await again.close()


async def test_group_commit_fsyncs_many_appends_together(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, group_commit_seconds=0.005)
    futures = [spool.append(share(i))[1] for i in range(2000)]
    await asyncio.gather(*futures)
    stats = spool.stats()
    print(f"2000 appends, {stats.fsyncs} fsyncs")
    assert 1 <= stats.fsyncs <= 3
    assert stats.records_written == 2000
    assert stats.fsynced_seq == 2000
    assert stats.pending_records == 0
    await spool.close()


async def test_appends_while_a_write_is_in_flight_join_the_next_fsync(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, group_commit_seconds=0.0)
    spool.inject_fault(0, delay=0.05)  # the first batch's disk is slow
    first = spool.append(share(0))[1]
    await asyncio.sleep(0.01)  # the first write is in flight now
    assert spool.stats().pending_records == 1  # in flight, not yet durable
    later = [spool.append(share(i))[1] for i in range(1, 500)]
    assert not first.done()
    await asyncio.gather(first, *later)
    assert spool.stats().fsyncs == 2
    await spool.close()


async def test_the_window_holds_a_batch_and_flush_cuts_it_short(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, group_commit_seconds=30.0)
    futures = [spool.append(share(i))[1] for i in range(3)]
    await asyncio.sleep(0.05)
    assert not futures[0].done() and spool.stats().fsyncs == 0  # waiting out its window
    await spool.flush()
    assert all(f.done() for f in futures) and spool.stats().fsyncs == 1
    await spool.close()


async def test_disk_full_fails_the_futures_and_the_spool_recovers(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    await spool.append(share(0))[1]
    spool.inject_fault(errno.ENOSPC, partial=10)  # a partial write, then the disk is full
    failed = [spool.append(share(i))[1] for i in range(1, 4)]
    results = await asyncio.gather(*failed, return_exceptions=True)
    assert all(isinstance(r, OSError) and r.errno == errno.ENOSPC for r in results)
    assert spool.stats().write_errors == 1
    seq, future = spool.append(share(4))
    await future
    assert seq == 5
    assert [r.seq for r in spool.read_from(0, 10)] == [1, 5]
    await spool.close()
    again = ShareSpool(tmp_path, clock=zero)
    assert [r.seq for r in again.read_from(0, 10)] == [1, 5]
    assert again.append(share(5))[0] == 6
    await again.close()


@pytest.mark.parametrize("on_fsync", [False, True], ids=["write", "fdatasync"])
async def test_one_window_shares_one_future_and_a_failed_write_is_reported_once(tmp_path: Path,
                                                                                 on_fsync: bool) -> None:
    reports: list[tuple[int, BaseException]] = []
    spool = ShareSpool(tmp_path, clock=zero, on_failure=lambda n, e: reports.append((n, e)))
    first = [spool.append(share(i)) for i in range(5)]
    assert [seq for seq, _ in first] == [1, 2, 3, 4, 5]
    assert len({id(f) for _, f in first}) == 1  # one group commit: one future, one wake-up
    await first[0][1]
    second = spool.append(share(5))[1]
    assert second is not first[0][1]  # the next window has its own
    await second
    spool.inject_fault(errno.EIO, on_fsync=on_fsync)
    doomed = [spool.append(share(i))[1] for i in range(6, 9)]
    with pytest.raises(OSError) as raised:
        await doomed[0]
    assert raised.value.errno == errno.EIO
    assert all(f is doomed[0] for f in doomed)
    assert [(n, type(e)) for n, e in reports] == [(3, OSError)]
    assert spool.stats().records_failed == 3
    await spool.append(share(9))[1]
    assert [r.seq for r in spool.read_from(0, 20)] == [1, 2, 3, 4, 5, 6, 10]
    await spool.close()
    again = ShareSpool(tmp_path, clock=zero)  # the failed batch left nothing a reader or a restart would see
    assert [r.seq for r in again.read_from(0, 20)] == [1, 2, 3, 4, 5, 6, 10]
    await again.close()


async def spool_of_segments(tmp_path: Path, segment_bytes: int, count: int) -> ShareSpool:
    """A spool of ``count`` shares written one per group commit into segments of ``segment_bytes`` (so they
    rotate at record granularity)."""
    spool = ShareSpool(tmp_path, clock=zero, segment_bytes=segment_bytes, group_commit_seconds=0.0)
    for i in range(count):
        await spool.append(share(i))[1]
    return spool


async def test_segments_rotate_and_truncate_keeps_unloaded_and_current(tmp_path: Path) -> None:
    spool = await spool_of_segments(tmp_path, 2000, 60)
    stats = spool.stats()
    assert stats.segments > 3
    assert [r.seq for r in spool.read_from(0, 1000)] == list(range(1, 61))
    assert [r.seq for r in spool.read_from(25, 5)] == [26, 27, 28, 29, 30]
    firsts = sorted(int(p.stem) for p in tmp_path.glob("*.seg"))
    deleted = spool.truncate_through(30)
    left = sorted(int(p.stem) for p in tmp_path.glob("*.seg"))
    assert deleted == len(firsts) - len(left) > 0
    assert left[0] <= 31  # the segment holding 31 stays
    assert [r.seq for r in spool.read_from(30, 1000)] == list(range(31, 61))
    spool.truncate_through(10_000)
    assert len(list(tmp_path.glob("*.seg"))) == 1  # never the one being appended to
    assert spool.append(share(61))[0] == 61
    await spool.close()
    reopened = ShareSpool(tmp_path, clock=zero)
    kept = [r.seq for r in reopened.read_from(0, 100)]
    assert kept[-1] == 61 and kept == list(range(kept[0], 62))
    await reopened.close()


async def test_reading_follows_the_writer_incrementally(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, segment_bytes=4096)
    seen: list[int] = []
    last = 0
    for round_ in range(20):
        await asyncio.gather(*(spool.append(share(round_ * 10 + i))[1] for i in range(10)))
        got = spool.read_from(last, 7)
        while got:
            seen.extend(r.seq for r in got)
            last = got[-1].seq
            got = spool.read_from(last, 7)
    assert seen == list(range(1, 201))
    await spool.close()


def test_stats_report_size_and_segments(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero)
    stats = spool.stats()
    assert (stats.first_seq, stats.last_seq, stats.segments, stats.bytes) == (1, 0, 1, 0)


@pytest.mark.parametrize("garbage", [b"\x00" * 7, b"\xff" * 64])
async def test_garbage_only_segment_opens_empty(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / f"{42:020d}.seg").write_bytes(garbage)
    spool = ShareSpool(tmp_path, clock=zero)
    assert spool.append(share())[0] == 42
    await spool.close()


# ----- the reader's fast path


@given(time=floats, coin=texts, address=texts, worker=texts, agent=texts, difficulty=floats, achieved=floats,
       height=st.integers(-2**31, 2**31 - 1), is_block=st.booleans())
def test_share_fixed_fields_and_key_decode_to_the_record(time: float, coin: str, address: str, worker: str, agent: str,
                                                         difficulty: float, achieved: float, height: int,
                                                         is_block: bool) -> None:
    record = ShareRecord(9, time, coin, address, worker, agent, difficulty, achieved, height, is_block)
    kind, payload = encode_payload(record)
    assert kind == KIND_SHARE
    t, d, a, h, b = SHARE_FIXED.unpack_from(payload)
    key = payload[SHARE_KEY_START:]
    assert ShareRecord(9, t, *decode_share_key(key), d, a, h, b) == record
    # equal key bytes are equal strings, and the other way round
    other = ShareRecord(9, 0.0, coin, address, worker + "x", agent, 1.0, 1.0, 0, False)
    assert encode_payload(other)[1][SHARE_KEY_START:] != key


async def test_read_frames_is_read_from_undecoded(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=zero, segment_bytes=3000, group_commit_seconds=0.0)
    for i in range(40):
        await spool.append((share(i), REJECTED, BLOCK)[i % 3])[1]
    expected = spool.read_from(0, 1000)
    spool._reader.cursor = None
    chunks = spool.read_frames(0, 1000)
    assert len(chunks) > 1  # one per segment at least
    got = [decode_payload(seq, kind, data, start) for data, frames in chunks for seq, kind, start, _ in frames]
    assert got == expected and [r.seq for r in got] == list(range(1, 41))
    for data, frames in chunks:
        for seq, kind, start, end in frames:
            assert encode_frame(seq, decode_payload(seq, kind, data, start))[17:] == data[start:end]
    assert [f[0] for _, fr in spool.read_frames(35, 3) for f in fr] == [36, 37, 38]
    await spool.close()


Frames = list[tuple[int, int, int, int]]


def _plain_frames(data: bytes, start: int, end: int, max_frames: int = 1 << 62) -> tuple[Frames, int, str]:
    """The frame parser as first written, one step at a time: the reference for the fast one."""
    out: Frames = []
    offset = start
    while offset < end and len(out) < max_frames:
        if offset + 8 > end:
            return out, offset, "torn"
        length, crc = struct.unpack_from("<II", data, offset)
        if length == 0 and crc == 0:
            return out, offset, "zeros"
        if length < 9 or length > MAX_FRAME_BODY:
            return out, offset, "corrupt"
        body_end = offset + 8 + length
        if body_end > end:
            return out, offset, "torn"
        body = data[offset + 8:body_end]
        if zlib.crc32(body) != crc:
            return out, offset, "corrupt"
        seq, kind = struct.unpack_from("<QB", body)
        out.append((seq, kind, offset + 17, body_end))
        offset = body_end
    return out, offset, "end"


@given(count=st.integers(0, 12), damage=st.sampled_from(["none", "flip", "cut", "garbage", "length", "zeros"]),
       where=st.floats(0.0, 1.0), value=st.integers(0, 255), max_frames=st.integers(0, 20))
def test_frames_agree_with_the_plain_parser_on_damaged_data(count: int, damage: str, where: float, value: int,
                                                           max_frames: int) -> None:
    records = [(share(i), REJECTED, BLOCK)[i % 3] for i in range(count)]
    data = bytearray(b"".join(encode_frame(i + 1, r) for i, r in enumerate(records)))
    at = int(where * max(0, len(data) - 1))
    if damage == "flip" and data:
        data[at] ^= value or 1
    elif damage == "cut":
        del data[at:]
    elif damage == "garbage":
        data[at:at] = bytes([value]) * (1 + value % 23)
    elif damage == "zeros":  # a preallocated segment: the records, then zeros (cut anywhere)
        data[at:] = bytes(value + 1)
    elif damage == "length" and len(data) >= 4:
        data[at - at % 4:at - at % 4 + 4] = struct.pack("<I", value * 1_000_003)
    raw = bytes(data)
    for limit in (1 << 62, max_frames):
        expected = _plain_frames(raw, 0, len(raw), limit)
        assert codec.frames(raw, 0, len(raw), limit) == expected
        assert codec.frames(memoryview(raw), 0, len(raw), limit) == expected
    if damage == "none":
        assert codec.frames(raw, 0, len(raw)) == (
            [(i + 1, r, o, e) for i, (r, o, e) in enumerate(_spans(records))], len(raw), "end")
    elif damage == "flip" and raw:
        assert len(codec.frames(raw, 0, len(raw))[0]) < count  # one bit wrong anywhere: that frame is not returned


def _spans(records: list[ShareRecord | RejectedRecord | BlockRecord]) -> list[tuple[int, int, int]]:
    """(kind, payload start, payload end) of the frames of ``records`` laid end to end."""
    out, offset = [], 0
    for i, r in enumerate(records):
        size = len(encode_frame(i + 1, r))
        out.append((encode_payload(r)[0], offset + 17, offset + size))
        offset += size
    return out


async def test_a_corrupt_frame_mid_segment_ends_that_segment_only(tmp_path: Path) -> None:
    await (await spool_of_segments(tmp_path, 1500, 30)).close()
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) >= 3
    first = bytearray(segments[0].read_bytes()[:data_end(segments[0])])
    per_segment = len(first) // len(encode_frame(1, share(0)))
    frame = len(first) // per_segment
    first[frame + 30] ^= 0x01  # the second record's body: its CRC no longer matches
    segments[0].write_bytes(bytes(first))
    again = ShareSpool(tmp_path, clock=zero)  # only the last segment is checked on open
    seqs = [r.seq for r in again.read_from(0, 100)]
    assert seqs[0] == 1 and 2 not in seqs  # the damaged record and the rest of its segment are skipped
    assert seqs[1] == int(segments[1].stem) and seqs[-1] == 30
    again._reader.cursor = None
    assert [f[0] for _, fr in again.read_frames(0, 100) for f in fr] == seqs
    await again.close()


async def test_a_reader_that_caught_up_resumes_where_it_stopped(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []
    real = codec.frames

    def counting(data: bytes, start: int, end: int, max_frames: int = 1 << 62) -> object:
        scanned.append(end - start)
        return real(data, start, end, max_frames)

    monkeypatch.setattr(codec, "frames", counting)
    spool = ShareSpool(tmp_path, clock=zero)
    await asyncio.gather(*(spool.append(share(i))[1] for i in range(500)))
    assert len(spool.read_from(0, 10_000)) == 500
    assert spool.read_from(500, 10_000) == []  # nothing new: nothing scanned again
    scanned.clear()
    await asyncio.gather(*(spool.append(share(i))[1] for i in range(500, 505)))
    assert [r.seq for r in spool.read_from(500, 10_000)] == [501, 502, 503, 504, 505]
    assert sum(scanned) == sum(len(encode_frame(1, share(i))) for i in range(500, 505))  # not the segment again
    await spool.close()


async def test_preallocated_segments_read_back_across_a_restart(tmp_path: Path) -> None:
    await (await spool_of_segments(tmp_path, 2000, 60)).close()
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) > 3
    assert all(p.stat().st_size >= 2000 for p in segments)  # each its full size, zeros after its records
    again = ShareSpool(tmp_path, clock=zero, segment_bytes=2000, group_commit_seconds=0.0)
    assert [r.seq for r in again.read_from(0, 1000)] == list(range(1, 61))  # past every segment's zeros
    assert [r.seq for r in again.read_from(58, 10)] == [59, 60]
    assert again.append(share(60))[0] == 61
    await again.flush()
    assert [r.seq for r in again.read_from(59, 10)] == [60, 61]
    await again.close()


async def test_a_segment_written_without_preallocation_is_appended_to(tmp_path: Path) -> None:
    """Segments as earlier versions left them (exactly their records' size) open and carry on."""
    data = b"".join(encode_frame(i + 1, share(i)) for i in range(5))
    (tmp_path / f"{1:020d}.seg").write_bytes(data)
    spool = ShareSpool(tmp_path, clock=zero)
    seq, future = spool.append(share(5))
    await future
    assert seq == 6
    assert [r.seq for r in spool.read_from(0, 10)] == [1, 2, 3, 4, 5, 6]
    assert spool.stats().fsynced_seq == 6
    await spool.close()
    assert [r.seq for r in ShareSpool(tmp_path, clock=zero).read_from(0, 10)] == [1, 2, 3, 4, 5, 6]
