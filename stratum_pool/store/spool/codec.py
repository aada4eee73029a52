"""The spool's frame codec: the one place that lays records out in bytes and reads them back.

A segment is frames laid end to end, each::

    u32 length | u32 crc32(body) | body = u64 seq | u8 kind | payload      (little-endian)

The structs for it are :data:`HEAD` (length, crc) and :data:`BODY_HEAD` (seq, kind); the two others are built
from their formats, never spelled again: :data:`FRAME_HEAD` (both: one unpack per frame for the reader) and
the share body's head (:data:`BODY_HEAD`, then :data:`SHARE_FIXED`). With ``<`` there is no padding, so one
pack of a joined format gives the bytes of the two packs laid end to end.

A frame is built in two steps: its body when the record is appended (:func:`encode_body`, or for an accepted
share on the hot path :data:`pack_share_body` followed by its key bytes, see :func:`share_key_bytes`), then
its head, for a whole group commit at once, on the writer thread (:func:`seal`). :func:`frames` finds the
frames of a segment again, CRC-checked; :func:`decode_payload` turns a payload back into its record.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable
from typing import Final

from stratum_pool.store.spool.records import BlockRecord, RejectedRecord, ShareRecord, SpoolRecord

# A frame longer than this is corruption, not a record (a block record is a few hundred bytes).
MAX_FRAME_BODY: Final = 1 << 20

HEAD: Final = struct.Struct("<II")  # body length, crc32(body)
BODY_HEAD: Final = struct.Struct("<QB")  # seq, kind: a body is never shorter
FRAME_HEAD: Final = struct.Struct(HEAD.format + BODY_HEAD.format[1:])

KIND_SHARE: Final = 1
KIND_REJECTED: Final = 2
KIND_BLOCK: Final = 3

# For readers that take share payloads apart themselves (the loader) instead of building ShareRecords: a
# share payload is SHARE_FIXED (time, difficulty, achieved, height, is_block), then from SHARE_KEY_START to
# its end the four string lengths and the strings (coin key, address, worker name, user agent). Equal key
# bytes are equal strings and vice versa; decode_share_key turns them into the strings.
SHARE_FIXED: Final = struct.Struct("<dddq?")
SHARE_KEY_START: Final = SHARE_FIXED.size
_SHARE_LENGTHS: Final = struct.Struct("<IIII")
_REJECTED: Final = struct.Struct("<dqIIII")  # time, count, 4 string lengths
_BLOCK: Final = struct.Struct("<dqqqdd??qIIIIIII")  # see encode_payload

# A share's body up to its key: pack_share_body(seq, KIND_SHARE, time, difficulty, achieved, height, is_block)
# + key is encode_body(seq, ShareRecord(...)), in one C call (the spool's append_share: no Python call per
# share for the codec).
pack_share_body: Final[Callable[..., bytes]] = struct.Struct(BODY_HEAD.format + SHARE_FIXED.format[1:]).pack

# One frame as the reader returns it: (seq, kind, payload start, payload end), offsets into its chunk.
Frame = tuple[int, int, int, int]


# ----- encoding

def _s(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def share_key_bytes(coin_key: str, address: str, worker_name: str, user_agent: str) -> bytes:
    """A share payload's bytes from SHARE_KEY_START on (the string lengths, then the strings): the part of a
    share's frame that stays the same for one worker, which :meth:`ShareSpool.append_share` takes encoded."""
    a, b, c, d = _s(coin_key), _s(address), _s(worker_name), _s(user_agent)
    return b"".join((_SHARE_LENGTHS.pack(len(a), len(b), len(c), len(d)), a, b, c, d))


def encode_payload(record: SpoolRecord) -> tuple[int, bytes]:
    """The kind byte and payload of ``record`` (its seq is not part of the payload)."""
    if isinstance(record, ShareRecord):
        head = SHARE_FIXED.pack(record.time, record.difficulty, record.achieved, record.height, record.is_block)
        return KIND_SHARE, head + share_key_bytes(record.coin_key, record.address, record.worker_name,
                                                  record.user_agent)
    if isinstance(record, RejectedRecord):
        a, b, c, d = _s(record.coin_key), _s(record.address), _s(record.worker_name), _s(record.reason)
        head = _REJECTED.pack(record.time, record.count, len(a), len(b), len(c), len(d))
        return KIND_REJECTED, b"".join((head, a, b, c, d))
    if isinstance(record, BlockRecord):
        strings = [_s(x) for x in (record.coin_key, record.hash_display, record.finder_address,
                                   record.finder_worker, record.scheme, record.submit_result, record.fee_address)]
        head = _BLOCK.pack(record.time, record.height, record.reward, record.share_seq, record.network_difficulty,
                           record.pplns_window_factor, record.accepted, False, record.fee_ppm,
                           *(len(x) for x in strings))
        return KIND_BLOCK, b"".join((head, *strings))
    raise TypeError(f"not a spool record: {type(record).__name__}")


def encode_body(seq: int, record: SpoolRecord) -> bytes:
    """The body of ``record``'s frame as number ``seq`` (its own ``seq`` field is ignored)."""
    kind, payload = encode_payload(record)
    return BODY_HEAD.pack(seq, kind) + payload


def seal(body: bytes) -> bytes:
    """The frame of ``body``: the body behind its head (length, crc32). The share path inlines these two
    calls (:meth:`ShareSpool.append_share`), the one place besides this that builds a head."""
    return HEAD.pack(len(body), zlib.crc32(body)) + body


def encode_frame(seq: int, record: SpoolRecord) -> bytes:
    """The frame of ``record`` as number ``seq``: the bytes the spool writes for it."""
    return seal(encode_body(seq, record))


# ----- decoding

def _strings(data: bytes | memoryview, offset: int, lengths: tuple[int, ...]) -> list[str]:
    out = []
    for n in lengths:
        out.append(str(data[offset:offset + n], "utf-8", "surrogatepass"))
        offset += n
    return out


def decode_share_key(key: bytes | memoryview, offset: int = 0) -> tuple[str, str, str, str]:
    """(coin key, address, worker name, user agent) of a share payload's bytes from SHARE_KEY_START on (which
    begin at ``key[offset]``)."""
    n1, n2, n3, n4 = _SHARE_LENGTHS.unpack_from(key, offset)
    o1 = offset + _SHARE_LENGTHS.size
    o2 = o1 + n1
    o3 = o2 + n2
    o4 = o3 + n3
    return (str(key[o1:o2], "utf-8", "surrogatepass"), str(key[o2:o3], "utf-8", "surrogatepass"),
            str(key[o3:o4], "utf-8", "surrogatepass"), str(key[o4:o4 + n4], "utf-8", "surrogatepass"))


def decode_payload(seq: int, kind: int, data: bytes | memoryview, start: int = 0) -> SpoolRecord:
    """The record of kind ``kind`` whose payload begins at ``data[start]``."""
    if kind == KIND_SHARE:  # the hot one
        t, diff, ach, height, is_block = SHARE_FIXED.unpack_from(data, start)
        coin_key, address, worker_name, user_agent = decode_share_key(data, start + SHARE_KEY_START)
        return ShareRecord(seq, t, coin_key, address, worker_name, user_agent, diff, ach, height, is_block)
    if kind == KIND_REJECTED:
        t, count, *lengths = _REJECTED.unpack_from(data, start)
        coin_key, address, worker, reason = _strings(data, start + _REJECTED.size, tuple(lengths))
        return RejectedRecord(seq, t, coin_key, address, worker, reason, count)
    if kind == KIND_BLOCK:
        t, height, reward, share_seq, netdiff, factor, accepted, _, fee_ppm, *lengths = _BLOCK.unpack_from(data, start)
        coin_key, hash_display, finder, worker, scheme, result, fee_address = _strings(
            data, start + _BLOCK.size, tuple(lengths))
        return BlockRecord(seq, t, coin_key, height, hash_display, reward, finder, worker, share_seq, netdiff,
                           scheme, accepted, result, fee_ppm, fee_address, factor)
    raise ValueError(f"unknown spool record kind {kind}")


def frames(data: bytes | memoryview, start: int, end: int,
           max_frames: int = 1 << 62) -> tuple[list[Frame], int, str]:
    """Valid frames in ``data[start:end]`` (at most ``max_frames``): (seq, kind, payload_start, payload_end), the
    offset after the last valid one, and why parsing stopped: ``"end"`` (or enough frames), ``"zeros"`` (a head
    of zeros: the unwritten, preallocated rest of a segment), ``"torn"`` (a frame runs past ``end``) or
    ``"corrupt"``. Every frame's CRC is checked (the loop is the reader's hot path)."""
    out: list[Frame] = []
    append = out.append
    unpack = FRAME_HEAD.unpack_from
    crc32 = zlib.crc32
    head = HEAD.size
    whole = FRAME_HEAD.size  # a frame is never shorter: its body holds at least seq and kind
    shortest, longest = BODY_HEAD.size, MAX_FRAME_BODY
    offset = start
    for _ in itertools.repeat(None, max_frames):
        if offset >= end:
            break
        if offset + whole > end:  # the last few bytes: torn or corrupt, decided by the head alone
            if offset + head > end:
                return out, offset, "torn"
            length, crc = HEAD.unpack_from(data, offset)
            if length < shortest or length > longest:
                return out, offset, "zeros" if length == 0 and crc == 0 else "corrupt"
            return out, offset, "torn"
        length, crc, seq, kind = unpack(data, offset)
        if length < shortest or length > longest:
            return out, offset, "zeros" if length == 0 and crc == 0 else "corrupt"
        body_end = offset + head + length
        if body_end > end:
            return out, offset, "torn"
        if crc32(data[offset + head:body_end]) != crc:
            return out, offset, "corrupt"
        append((seq, kind, offset + whole, body_end))
        offset = body_end
    return out, offset, "end"
