"""The spool's appending side: sequence numbers, group commit, and the writer thread that writes and fsyncs.

Appends made within ``group_commit_seconds`` of a batch's first record (a batch that opens while another is
being written waits its own window) are written and made durable together, in one ``fdatasync``, on a
dedicated thread; the event loop never blocks on the disk. The event loop builds each record's frame
(:mod:`~stratum_pool.store.spool.codec`: a body behind its head, the length and crc32) and copies it into the
native group commit (``stratum_pool._native.GroupCommit``, native/groupcommit.c), whose writer thread waits
out the window, writes, syncs and rings an eventfd the event loop reads, all without the GIL: the thread
never waits for the interpreter, and the event loop never hands it the GIL in the middle of a share. It
comes back to Python only to start a new segment or to report a failure. A write that fails (``ENOSPC``,
``EIO``) fails the future of its records, is cut off the file, and the spool carries on in a fresh segment,
so it recovers by itself once space is back.
"""

from __future__ import annotations

import asyncio
import collections
import errno as errno_codes
import os
import threading
import zlib
from collections.abc import Callable
from typing import Final

import structlog

from stratum_pool._native import GC_ROTATE, GC_STOPPED, GroupCommit
from stratum_pool.osthread import name_this_thread
from stratum_pool.store.spool.codec import HEAD, KIND_SHARE, encode_frame, pack_share_body
from stratum_pool.store.spool.records import SpoolRecord
from stratum_pool.store.spool.segments import Segments

log = structlog.get_logger("stratum_pool.store.spool")
# codec.seal's two calls, bound once for the share path (append_share builds a frame without a Python call)
_pack_head, _crc32 = HEAD.pack, zlib.crc32

DEFAULT_GROUP_COMMIT_SECONDS: Final = 0.002

# GroupCommit.state() fields
_SEG_BYTES, _PENDING, _INFLIGHT, _BATCH_FIRST, _BATCH_LAST, _BATCH_GEN, _BATCH_COUNT, _BATCH_ERRNO = range(4, 12)


class SpoolWriter:
    """Appends records to ``segments``, numbering them from ``next_seq``, with group commit. Use from one
    event loop."""

    def __init__(self, segments: Segments, next_seq: int, *,
                 group_commit_seconds: float = DEFAULT_GROUP_COMMIT_SECONDS,
                 on_failure: Callable[[int, BaseException], None] | None = None) -> None:
        self.on_failure = on_failure  # (records lost, error), on the event loop, once per failed write
        self._segments = segments
        self._next_seq = next_seq
        self._opened_fsynced = next_seq - 1  # on disk before this writer: fsynced_seq until its first batch
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._gc = GroupCommit(group_commit_seconds, segments.segment_bytes, self._efd)
        assert segments.fd is not None
        with segments.lock:
            self._gc.set_segment(segments.fd, segments.segments[-1].size)
            segments.live_size = self._live_size
        # batch generation -> its future, oldest first; the newest is the one appends join
        self._futures: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        # the newest batch's generation and future (batches count from 1: the first append makes one)
        self._gen = 0
        self._future: asyncio.Future[None] = None  # type: ignore[assignment]
        # failed batches, from the writer thread: (generation, records, error); then by generation, on the loop
        self._failures: collections.deque[tuple[int, int, OSError]] = collections.deque()
        self._failed: dict[int, tuple[int, OSError]] = {}
        self._records_failed = 0  # records whose write failed (their futures carry the error)
        self.write_errors = 0
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _live_size(self) -> int:
        return int(self._gc.state()[_SEG_BYTES])

    def append(self, record: SpoolRecord) -> tuple[int, asyncio.Future[None]]:
        """Assign the next seq to ``record`` (its own ``seq`` field is ignored) and queue it.

        Returns the seq and a future that resolves when the record is fsynced, or fails with the
        ``OSError`` that kept it off the disk. Call from the event loop; never blocks.

        The future is the group commit's: every record appended in the same window gets the same one (one
        future and one wake-up per fsync, not per share). Never cancel it; wrap it in
        :func:`asyncio.shield` to wait with a timeout.
        """
        if self._loop is None:
            self._attach()  # nothing has changed if it raises
        seq = self._next_seq
        gen = self._gc.append(encode_frame(seq, record), seq)
        future = self._future if gen == self._gen else self._new_batch(gen)
        self._next_seq = seq + 1
        return seq, future

    def append_share(self, time: float, difficulty: float, achieved: float, height: int, is_block: bool,
                     key: bytes) -> tuple[int, asyncio.Future[None]]:
        """:meth:`append` of ``ShareRecord(seq, time, ...)`` whose strings ``key`` holds encoded
        (:func:`~stratum_pool.store.spool.codec.share_key_bytes`): the same frame, without building the record
        or encoding its strings."""
        if self._loop is None:
            self._attach()
        seq = self._next_seq  # append's steps, inline: no Python call per share but this one
        body = pack_share_body(seq, KIND_SHARE, time, difficulty, achieved, height, is_block) + key
        gen = self._gc.append(_pack_head(len(body), _crc32(body)) + body, seq)  # codec.seal, inline
        future = self._future if gen == self._gen else self._new_batch(gen)
        self._next_seq = seq + 1
        return seq, future

    def _attach(self) -> None:
        """The first append: listen for finished batches on this loop and start the writer thread."""
        if self._closed:
            raise RuntimeError("spool is closed")
        loop = asyncio.get_running_loop()
        loop.add_reader(self._efd, self._on_durable)
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        # a daemon: a process that exits without close() must not hang on it; a batch cut short is a torn
        # tail, which the next open trims (its records were never acknowledged)
        self._thread.start()
        self._loop = loop

    def _new_batch(self, gen: int) -> asyncio.Future[None]:
        assert self._loop is not None
        future = self._loop.create_future()
        self._futures.append((gen, future))
        self._gen, self._future = gen, future
        return future

    # ----- the writer thread

    def _run(self) -> None:
        name_this_thread("sp-spool")
        gc = self._gc
        while True:
            code = gc.run()  # writes batches without the GIL until it needs this thread's Python
            if code == GC_STOPPED:
                return
            error: OSError
            if code == GC_ROTATE:
                state = gc.state()
                try:
                    self._segments.rotate(state[_BATCH_FIRST], state[_SEG_BYTES], lambda fd: gc.set_segment(fd, 0))
                    continue
                except OSError as exc:
                    error = exc
                    gc.fail_pending(exc.errno or errno_codes.EIO)
            state = gc.state()
            if code != GC_ROTATE:
                code_errno = state[_BATCH_ERRNO]
                error = OSError(code_errno, os.strerror(code_errno))
            with self._segments.lock:
                self.write_errors += 1
            log.error("spool_write_failed", error=str(error), first_seq=state[_BATCH_FIRST],
                      last_seq=state[_BATCH_LAST])
            self._failures.append((state[_BATCH_GEN], state[_BATCH_COUNT], error))
            gc.finish_failed()

    # ----- the event loop

    def _on_durable(self) -> None:
        """The eventfd rang: settle every batch that finished, in order."""
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass
        done = self._gc.done_gen()
        while self._failures:
            gen, count, error = self._failures.popleft()
            self._failed[gen] = (count, error)
        futures = self._futures
        while futures and futures[0][0] <= done:
            gen, future = futures.popleft()
            failed = self._failed.pop(gen, None) if self._failed else None
            if failed is None:
                if not future.done():
                    future.set_result(None)
                continue
            count, error = failed
            self._records_failed += count
            if self.on_failure is not None:
                try:
                    self.on_failure(count, error)
                except Exception:  # counting must not stop the spool
                    log.exception("spool_on_failure_failed")
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: every holder of it reports the error itself
        if self._sync_waiters:
            waiters, self._sync_waiters = self._sync_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def flush(self) -> None:
        """Write and fsync everything appended so far (errors stay with the records' futures)."""
        while self._futures:
            self._gc.flush()  # no need to wait out the window
            await asyncio.wait([self._futures[-1][1]])

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
        self._gc.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._loop is not None:
            self._loop.remove_reader(self._efd)
            self._loop = None
        if self._efd >= 0:
            os.close(self._efd)
            self._efd = -1
        self._segments.close()

    def _counts(self) -> tuple[int, int, int, int, int]:
        """(fsynced_seq, pending records, commits, records written, durable bytes of the last segment)."""
        state = self._gc.state()
        return (max(self._opened_fsynced, state[1]), state[_PENDING] + state[_INFLIGHT], state[2], state[3],
                state[_SEG_BYTES])
