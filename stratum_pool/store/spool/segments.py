"""The spool's files: a directory of segments, each named by the seq of its first record (``%020d.seg``).

Records are appended to the last segment only, by the writer thread; a new one starts when the last would grow
past ``segment_bytes`` or a write to it failed. On open the last segment is scanned: a torn or corrupt tail
(a crash during a write) is cut off. Segments the loader has checkpointed are deleted whole.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from stratum_pool.store.spool.codec import frames

log = structlog.get_logger("stratum_pool.store.spool")

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024


@dataclass(slots=True)
class Segment:
    first_seq: int
    path: Path
    size: int  # bytes known good and fsynced: the reader never reads beyond it


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.seg"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_write(fd: int, data: bytes) -> int:
    return os.write(fd, data)


class Segments:
    """The segment files of one spool directory. The writer thread appends (:meth:`append`); any thread may
    list them (:meth:`snapshot`), delete loaded ones (:meth:`truncate_through`) or read the counters under
    ``lock``, which guards the list, the sizes, ``fsynced_seq`` and the counters."""

    def __init__(self, directory: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 fsync: Callable[[int], None] = os.fsync,
                 write: Callable[[int, bytes], int] = default_write) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._fsync = fsync
        self._write = write
        self.lock = threading.Lock()
        self.segments: list[Segment] = []
        self._fd: int | None = None  # open for append: the last segment, owned by the writer thread
        self._rotate = False  # start a new segment at the next write (after a failed one)
        self.fsynced_seq = 0  # every record up to here that did not fail is on disk
        self.fsyncs = 0
        self.write_errors = 0

    def open(self, clock: Callable[[], float]) -> int:
        """Take over the directory's segments (creating it and a first segment if need be); returns the next
        seq to hand out: after the last record on disk, or for a brand-new spool ``clock()`` in microseconds,
        so that a spool directory lost with its machine never reuses numbers the database checkpoint has
        passed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(p for p in self.directory.glob("*.seg") if p.stem.isdigit())
        for p in paths:
            self.segments.append(Segment(int(p.stem), p, p.stat().st_size))
        if self.segments:
            next_seq = self._recover_tail(self.segments[-1])
        else:
            next_seq = max(1, int(clock() * 1_000_000))
            self.new_segment(next_seq)
        self.fsynced_seq = next_seq - 1
        return next_seq

    def _recover_tail(self, last: Segment) -> int:
        """Cut a torn or corrupt tail off ``last`` and open it for appending; returns the next seq."""
        data = last.path.read_bytes()
        found, good, stop = frames(memoryview(data), 0, len(data))
        if stop != "end":
            log.warning("spool_tail_truncated", segment=last.path.name, kept_bytes=good, dropped_bytes=len(data) - good)
            with open(last.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                self._fsync(f.fileno())
            last.size = good
        next_seq = found[-1][0] + 1 if found else last.first_seq
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)
        # never hand out a number at or below one an earlier segment already used
        return max(next_seq, last.first_seq)

    def new_segment(self, first_seq: int) -> None:
        """Open a fresh segment for appending (writer thread, or :meth:`open`)."""
        path = self.directory / segment_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)  # a leftover of a failed write with that name is not ours
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        with self.lock:
            if self.segments and self.segments[-1].first_seq == first_seq:
                self.segments[-1].size = 0
            else:
                self.segments.append(Segment(first_seq, path, 0))

    def append(self, data: bytes, first_seq: int, last_seq: int) -> None:
        """Writer thread: append ``data`` (the frames of first_seq..last_seq) and fsync, or undo and raise."""
        fd: int | None = None
        start = 0
        try:
            if self._rotate or self._fd is None:
                self.new_segment(first_seq)
                self._rotate = False
            else:
                with self.lock:
                    full = self.segments[-1].size > 0 and \
                        self.segments[-1].size + len(data) > self.segment_bytes
                if full:
                    self.new_segment(first_seq)  # the old one was fsynced with its last batch
            fd = self._fd
            assert fd is not None
            with self.lock:
                segment = self.segments[-1]
                start = segment.size
            written = 0
            while written < len(data):
                written += self._write(fd, data[written:] if written else data)
            self._fsync(fd)
        except OSError as exc:
            with self.lock:
                self.write_errors += 1
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
        with self.lock:
            segment.size = start + len(data)
            self.fsynced_seq = last_seq
            self.fsyncs += 1

    def close(self) -> None:
        """Close the segment open for appending (after the writer thread stopped)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def snapshot(self) -> list[tuple[int, Path, int]]:
        """(first seq, path, fsynced size) of every segment, in seq order."""
        with self.lock:
            return [(s.first_seq, s.path, s.size) for s in self.segments]

    def truncate_through(self, seq: int) -> int:
        """Delete every segment whose records all have seq <= ``seq`` (never the one being appended to).
        Returns how many were deleted."""
        doomed: list[Segment] = []
        with self.lock:
            while len(self.segments) > 1 and self.segments[1].first_seq - 1 <= seq:
                doomed.append(self.segments.pop(0))
        for segment in doomed:
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass
        return len(doomed)
