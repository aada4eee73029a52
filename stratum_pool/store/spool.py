"""The share spool: a write-ahead log on local disk between the stratum loop and PostgreSQL.

Every record (an accepted share, a per-minute count of rejected shares, a found block) gets a sequence
number ``seq`` the moment it is appended, and is durable once the future :meth:`ShareSpool.append`
returned resolves. The pool acknowledges an accepted share to the miner only after that, so an
acknowledged share survives a database outage and ``kill -9`` alike. The loader
(:mod:`stratum_pool.store.loader`) copies records to PostgreSQL, checkpoints the last ``seq`` loaded in the
same transaction, and then calls :meth:`ShareSpool.truncate_through`.

On disk: a directory of segment files named by the ``seq`` of their first record (``%020d.seg``). Each
record is one frame::

    u32 length | u32 crc32(body) | body = u64 seq | u8 kind | payload      (little-endian)

Group commit: appends made within ``group_commit_seconds`` (and while a write is in flight) are written
and fsynced together, in one ``fsync``, on a dedicated worker thread; the event loop never blocks on the
disk. A write that fails (``ENOSPC``, ``EIO``) fails the futures of its records, is cut off the file,
and the spool carries on in a fresh segment, so it recovers by itself once space is back.

Sequence numbers continue across restarts (the last segment is scanned on open; a torn or corrupt tail,
from a crash during a write, is truncated). A brand-new spool starts at ``clock()`` in microseconds, so
that a spool directory lost with its machine never reuses numbers the database checkpoint has passed.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import itertools
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger("stratum_pool.store.spool")

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
DEFAULT_GROUP_COMMIT_SECONDS: Final = 0.002
# A frame longer than this is corruption, not a record (a block record is a few hundred bytes).
MAX_FRAME_BODY: Final = 1 << 20
# How much of a segment the reader pulls into memory at a time.
_READ_CHUNK: Final = 4 * 1024 * 1024

_HEAD = struct.Struct("<II")  # body length, crc32(body)
_SEQ_KIND = struct.Struct("<QB")
_FRAME = struct.Struct("<IIQB")  # _HEAD, then the body's _SEQ_KIND: one unpack per frame for the reader
_REJECTED = struct.Struct("<dqIIII")  # time, count, 4 string lengths
_BLOCK = struct.Struct("<dqqqdd??qIIIIIII")  # see _encode_block

KIND_SHARE: Final = 1
KIND_REJECTED: Final = 2
KIND_BLOCK: Final = 3

# For readers that take share payloads apart themselves (the loader) instead of building ShareRecords: a
# share payload is SHARE_FIXED (time, difficulty, achieved, height, is_block), then from SHARE_KEY_START to
# its end the four string lengths and the strings (coin key, address, worker name, user agent). Equal key
# bytes are equal strings and vice versa; decode_share_key turns them into the strings.
SHARE_FIXED: Final = struct.Struct("<dddq?")
SHARE_KEY_START: Final = SHARE_FIXED.size
_SHARE_LENGTHS = struct.Struct("<IIII")
_SHARE_BODY = struct.Struct("<QB" + SHARE_FIXED.format[1:])  # a share frame's body up to its key: seq, kind, fixed

# One frame as the reader returns it: (seq, kind, payload start, payload end), offsets into its chunk.
Frame = tuple[int, int, int, int]


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class ShareRecord:
    """An accepted share. ``difficulty`` is its weight (what it was judged by); ``worker_name`` is the part
    of the user name after the first dot ('' for none)."""

    seq: int
    time: float
    coin_key: str
    address: str
    worker_name: str
    user_agent: str
    difficulty: float
    achieved: float
    height: int
    is_block: bool


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class RejectedRecord:
    """``count`` shares of one worker rejected for ``reason`` in the minute starting at ``time``."""

    seq: int
    time: float
    coin_key: str
    address: str
    worker_name: str
    reason: str
    count: int


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 6x, and one is built per share twice
class BlockRecord:
    """A block the pool found and submitted. ``reward`` is the coinbase value in base units; ``share_seq``
    is the seq of the block's own share (the end of its reward window); ``network_difficulty`` is in the
    same units as share difficulty."""

    seq: int
    time: float
    coin_key: str
    height: int
    hash_display: str
    reward: int
    finder_address: str
    finder_worker: str
    share_seq: int
    network_difficulty: float
    scheme: str  # solo | pplns | prop
    accepted: bool  # did the daemons take it at submission
    submit_result: str
    fee_ppm: int
    fee_address: str
    pplns_window_factor: float = 2.0


SpoolRecord = ShareRecord | RejectedRecord | BlockRecord


@dataclass(frozen=True, slots=True)
class SpoolStats:
    first_seq: int  # the first seq the spool still holds (or will hand out next)
    last_seq: int  # the last seq handed out (0 before the first record of a fresh spool)
    fsynced_seq: int  # every record up to here that did not fail is on disk
    pending_records: int  # appended, not yet fsynced (the group-commit queue)
    bytes: int  # spool size on disk
    segments: int
    fsyncs: int
    write_errors: int
    records_failed: int = 0  # records whose write failed: their futures carried the error


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


def _strings(data: bytes | memoryview, offset: int, lengths: tuple[int, ...]) -> list[str]:
    out = []
    for n in lengths:
        out.append(str(data[offset:offset + n], "utf-8", "surrogatepass"))
        offset += n
    return out


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


class _WriterThread:
    """The spool's writer: one thread that runs the batches handed to it, in order, and settles each batch's
    future on its event loop. What ``run_in_executor`` on a one-thread executor did, for about a third of the
    event loop's CPU per batch (measured: 10 µs against 34 to hand a batch over; no work item, no
    concurrent future chained to an asyncio one)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._jobs: collections.deque[tuple[Callable[..., None], tuple[object, ...], asyncio.AbstractEventLoop,
                                            asyncio.Future[None]]] = collections.deque()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: object) -> asyncio.Future[None]:
        """Run ``fn(*args)`` on the writer thread; the future resolves (or fails with its exception) on
        ``loop`` once it returns."""
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._stopping:
                raise RuntimeError("spool writer is stopped")
            if self._thread is None:
                # a daemon: a process that exits without close() must not hang on it; a batch cut short is
                # a torn tail, which the next open trims (its records were never acknowledged)
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._jobs.append((fn, args, loop, future))
            self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                fn, args, loop, future = self._jobs.popleft()
            error: BaseException | None = None
            try:
                fn(*args)
            except BaseException as exc:  # handed to the future's holder, like an executor would
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, error)

    def shutdown(self) -> None:
        """Run what was handed over, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def encode_frame(seq: int, record: SpoolRecord) -> bytes:
    kind, payload = encode_payload(record)
    body = _SEQ_KIND.pack(seq, kind) + payload
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


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


def _frames(data: bytes | memoryview, start: int, end: int,
            max_frames: int = 1 << 62) -> tuple[list[Frame], int, str]:
    """Valid frames in ``data[start:end]`` (at most ``max_frames``): (seq, kind, payload_start, payload_end), the
    offset after the last valid one, and why parsing stopped: ``"end"`` (or enough frames), ``"torn"`` (a frame
    runs past ``end``) or ``"corrupt"``. Every frame's CRC is checked (the loop is the reader's hot path)."""
    out: list[Frame] = []
    append = out.append
    unpack = _FRAME.unpack_from
    crc32 = zlib.crc32
    head = _HEAD.size
    whole = _FRAME.size  # a frame is never shorter: its body holds at least seq and kind
    offset = start
    for _ in itertools.repeat(None, max_frames):
        if offset >= end:
            break
        if offset + whole > end:  # the last few bytes: torn or corrupt, decided by the head alone
            if offset + head > end:
                return out, offset, "torn"
            length = _HEAD.unpack_from(data, offset)[0]
            if length < _SEQ_KIND.size or length > MAX_FRAME_BODY:
                return out, offset, "corrupt"
            return out, offset, "torn"
        length, crc, seq, kind = unpack(data, offset)
        if length < _SEQ_KIND.size or length > MAX_FRAME_BODY:
            return out, offset, "corrupt"
        body_end = offset + head + length
        if body_end > end:
            return out, offset, "torn"
        if crc32(data[offset + head:body_end]) != crc:
            return out, offset, "corrupt"
        append((seq, kind, offset + whole, body_end))
        offset = body_end
    return out, offset, "end"


@dataclass(slots=True)
class _Segment:
    first_seq: int
    path: Path
    size: int  # bytes known good and fsynced: the reader never reads beyond it


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.seg"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_write(fd: int, data: bytes) -> int:
    return os.write(fd, data)


class ShareSpool:
    """A durable, ordered, append-only log of spool records. Use from one event loop; :meth:`read_from`,
    :meth:`read_frames`, :meth:`truncate_through` and :meth:`stats` may also be called from another thread (the
    loader's)."""

    def __init__(self, directory: Path | str, node_id: int = 0, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 group_commit_seconds: float = DEFAULT_GROUP_COMMIT_SECONDS,
                 clock: Callable[[], float] | None = None,
                 fsync: Callable[[int], None] = os.fsync,
                 write: Callable[[int, bytes], int] = _default_write,
                 on_failure: Callable[[int, BaseException], None] | None = None) -> None:
        self.directory = Path(directory)
        self.on_failure = on_failure  # (records lost, error), on the event loop, once per failed write
        self.node_id = node_id
        self.segment_bytes = segment_bytes
        self.group_commit_seconds = group_commit_seconds
        self._clock = clock if clock is not None else time.time
        self._fsync = fsync
        self._write = write
        self._lock = threading.Lock()  # guards _segments, _fsynced_seq and the counters
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # open for append: the last segment, owned by the writer thread
        self._rotate = False  # start a new segment at the next write (after a failed one)
        self._fsyncs = 0
        self._write_errors = 0
        # event-loop side
        self._pending: list[bytes] = []
        self._pending_future: asyncio.Future[None] | None = None  # shared by the records of the window
        self._pending_first_seq = 0
        self._records_failed = 0  # records whose write failed (their futures carry the error)
        self._flush_handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._inflight = 0
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._writer = _WriterThread("spool-writer")
        # reader cursor: resume where the last read stopped
        self._cursor: tuple[int, int, int] | None = None  # (last seq returned, segment first_seq, offset)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._next_seq = self._recover()
        self._fsynced_seq = self._next_seq - 1

    # ----- opening

    def _recover(self) -> int:
        paths = sorted(p for p in self.directory.glob("*.seg") if p.stem.isdigit())
        for p in paths:
            self._segments.append(_Segment(int(p.stem), p, p.stat().st_size))
        if not self._segments:
            first = max(1, int(self._clock() * 1_000_000))
            self._new_segment(first)
            return first
        last = self._segments[-1]
        data = last.path.read_bytes()
        frames, good, stop = _frames(memoryview(data), 0, len(data))
        if stop != "end":
            log.warning("spool_tail_truncated", segment=last.path.name, kept_bytes=good, dropped_bytes=len(data) - good)
            with open(last.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                self._fsync(f.fileno())
            last.size = good
        next_seq = frames[-1][0] + 1 if frames else last.first_seq
        # never hand out a number at or below one an earlier segment already used
        next_seq = max(next_seq, last.first_seq)
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)
        return next_seq

    def _new_segment(self, first_seq: int) -> None:
        """Open a fresh segment for appending (writer thread, or the constructor)."""
        path = self.directory / _segment_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)  # a leftover of a failed write with that name is not ours
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        with self._lock:
            if self._segments and self._segments[-1].first_seq == first_seq:
                self._segments[-1].size = 0
            else:
                self._segments.append(_Segment(first_seq, path, 0))

    # ----- appending

    def append(self, record: SpoolRecord) -> tuple[int, asyncio.Future[None]]:
        """Assign the next seq to ``record`` (its own ``seq`` field is ignored) and queue it.

        Returns the seq and a future that resolves when the record is fsynced, or fails with the
        ``OSError`` that kept it off the disk. Call from the event loop; never blocks.

        The future is the group commit's: every record appended in the same window gets the same one (one
        future and one wake-up per fsync, not per share). Never cancel it; wrap it in
        :func:`asyncio.shield` to wait with a timeout.
        """
        if self._closed:
            raise RuntimeError("spool is closed")
        seq = self._next_seq
        frame = encode_frame(seq, record)
        self._next_seq = seq + 1
        future = self._pending_future
        if future is None:
            future = self._open_window(seq)
        self._pending.append(frame)
        return seq, future

    def append_share(self, time: float, difficulty: float, achieved: float, height: int, is_block: bool,
                     key: bytes) -> tuple[int, asyncio.Future[None]]:
        """:meth:`append` of ``ShareRecord(seq, time, ...)`` whose strings ``key`` holds encoded
        (:func:`share_key_bytes`): the same frame, without building the record or encoding its strings."""
        if self._closed:
            raise RuntimeError("spool is closed")
        seq = self._next_seq
        body = b"".join((_SHARE_BODY.pack(seq, KIND_SHARE, time, difficulty, achieved, height, is_block), key))
        frame = _HEAD.pack(len(body), zlib.crc32(body)) + body
        self._next_seq = seq + 1
        future = self._pending_future
        if future is None:
            future = self._open_window(seq)
        self._pending.append(frame)
        return seq, future

    def _open_window(self, seq: int) -> asyncio.Future[None]:
        # the first record of a group commit: its future, and the flush after the window
        loop = asyncio.get_running_loop()
        self._pending_first_seq = seq
        future = self._pending_future = loop.create_future()
        if self._flush_handle is None and self._flushing is None:
            if self.group_commit_seconds > 0:
                self._flush_handle = loop.call_later(self.group_commit_seconds, self._start_flush)
            else:
                self._flush_handle = loop.call_soon(self._start_flush)
        return future

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is not None or not self._pending:
            return
        data = b"".join(self._pending)
        future = self._pending_future
        assert future is not None
        first, last = self._pending_first_seq, self._next_seq - 1
        count = len(self._pending)
        self._pending, self._pending_future = [], None
        loop = asyncio.get_running_loop()
        flushing = self._writer.submit(loop, self._write_batch, data, first, last)
        self._flushing = flushing
        self._inflight = count
        flushing.add_done_callback(lambda f: self._flush_done(f, future, count))

    def _flush_done(self, done: asyncio.Future[None], future: asyncio.Future[None], count: int) -> None:
        self._flushing = None
        self._inflight = 0
        error = done.exception()
        if error is not None:
            with self._lock:
                self._records_failed += count
            if self.on_failure is not None:
                try:
                    self.on_failure(count, error)
                except Exception:  # counting must not stop the spool
                    log.exception("spool_on_failure_failed")
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
                future.exception()  # retrieved: every holder of it reports the error itself
        waiters, self._sync_waiters = self._sync_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._pending and self._flush_handle is None:
            # these waited for the write in flight: that was their window
            self._flush_handle = asyncio.get_running_loop().call_soon(self._start_flush)

    def _write_batch(self, data: bytes, first_seq: int, last_seq: int) -> None:
        """Writer thread: append ``data`` (frames first_seq..last_seq) and fsync, or undo and raise."""
        fd: int | None = None
        start = 0
        try:
            if self._rotate or self._fd is None:
                self._new_segment(first_seq)
                self._rotate = False
            else:
                with self._lock:
                    full = self._segments[-1].size > 0 and \
                        self._segments[-1].size + len(data) > self.segment_bytes
                if full:
                    self._new_segment(first_seq)  # the old one was fsynced with its last batch
            fd = self._fd
            assert fd is not None
            with self._lock:
                segment = self._segments[-1]
                start = segment.size
            written = 0
            while written < len(data):
                written += self._write(fd, data[written:] if written else data)
            self._fsync(fd)
        except OSError as exc:
            with self._lock:
                self._write_errors += 1
            log.error("spool_write_failed", error=str(exc), first_seq=first_seq, last_seq=last_seq)
            # cut the partial write off and carry on in a new segment; if the cut fails too, the garbage stays
            # at the end of a segment nothing is appended to any more, where readers stop
            if fd is not None:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
            self._rotate = True
            raise
        with self._lock:
            segment.size = start + len(data)
            self._fsynced_seq = last_seq
            self._fsyncs += 1

    async def flush(self) -> None:
        """Write and fsync everything appended so far (errors stay with the records' futures)."""
        while self._pending or self._flushing is not None:
            if self._flushing is None:
                if self._flush_handle is not None:
                    self._flush_handle.cancel()
                self._start_flush()
            flushing = self._flushing
            if flushing is not None:
                await asyncio.wait([flushing])

    async def wait_fsynced(self, timeout: float) -> None:
        """Return after the next group commit completes, or after ``timeout`` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass

    async def close(self) -> None:
        """Flush, then release the file and the writer thread."""
        await self.flush()
        self._closed = True
        self._writer.shutdown()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ----- reading and trimming (any thread)

    def read_from(self, after_seq: int, limit: int) -> list[SpoolRecord]:
        """Up to ``limit`` fsynced records with seq > ``after_seq``, in seq order."""
        return [decode_payload(seq, kind, data, start)
                for data, frames in self.read_frames(after_seq, limit) for seq, kind, start, _ in frames]

    def read_frames(self, after_seq: int, limit: int) -> list[tuple[bytes, list[Frame]]]:
        """What :meth:`read_from` returns, undecoded: ``(chunk, frames)`` pairs, each frame
        ``(seq, kind, payload_start, payload_end)`` into its chunk, CRC-checked; up to ``limit`` frames in all,
        in seq order. Decode a payload with :func:`decode_payload` (or, for shares, :data:`SHARE_FIXED` and
        :func:`decode_share_key`)."""
        with self._lock:
            segments = [(s.first_seq, s.path, s.size) for s in self._segments]
        if not segments or limit <= 0:
            return []
        firsts = [s[0] for s in segments]
        cursor = self._cursor
        if cursor is not None and cursor[0] == after_seq and cursor[1] in firsts:
            index, offset = firsts.index(cursor[1]), cursor[2]
        else:
            index, offset = max(0, bisect.bisect_right(firsts, after_seq + 1) - 1), 0
        out: list[tuple[bytes, list[Frame]]] = []
        count = 0
        last = after_seq
        while index < len(segments) and count < limit:
            _, path, size = segments[index]
            if offset >= size:
                if index == len(segments) - 1:
                    break  # caught up with the writer: the cursor stays here, where the next read begins
                index, offset = index + 1, 0
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(min(size - offset, _READ_CHUNK))
            except FileNotFoundError:  # trimmed under us: all of it was before a checkpoint
                index, offset = index + 1, 0
                continue
            frames, good, stop = _frames(data, 0, len(data), limit - count)
            if frames and min(frames)[0] <= after_seq:  # min: by seq (C speed)
                frames = [f for f in frames if f[0] > after_seq]
            if frames:
                out.append((data, frames))
                count += len(frames)
                last = frames[-1][0]
            offset += good
            if stop == "corrupt" or (stop == "torn" and offset + (len(data) - good) >= size):
                # bytes that never became a record: the tail of a write that failed; nothing follows it
                log.error("spool_segment_corrupt", segment=path.name, offset=offset)
                index, offset = index + 1, 0
        if out:
            self._cursor = (last, segments[index][0], offset) if index < len(segments) else None
        return out

    def truncate_through(self, seq: int) -> int:
        """Delete every segment whose records all have seq <= ``seq`` (never the one being appended to).
        Returns how many were deleted."""
        doomed: list[_Segment] = []
        with self._lock:
            while len(self._segments) > 1 and self._segments[1].first_seq - 1 <= seq:
                doomed.append(self._segments.pop(0))
        for segment in doomed:
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass
        return len(doomed)

    def stats(self) -> SpoolStats:
        with self._lock:
            return SpoolStats(
                first_seq=self._segments[0].first_seq if self._segments else self._next_seq,
                last_seq=self._next_seq - 1, fsynced_seq=self._fsynced_seq,
                pending_records=len(self._pending) + self._inflight,
                bytes=sum(s.size for s in self._segments), segments=len(self._segments),
                fsyncs=self._fsyncs, write_errors=self._write_errors, records_failed=self._records_failed,
            )
