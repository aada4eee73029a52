"""The spool's files: a directory of segments, each named by the seq of its first record (``%020d.seg``).

Records are appended to the last segment only, by the writer thread; a new one starts when the last would grow
past ``segment_bytes`` or a write to it failed. A segment is preallocated to ``segment_bytes`` (zeros), and
its records end where a head of zeros begins. On open the last segment is scanned: a torn or corrupt tail
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


class Segments:
    """The segment files of one spool directory. The writer thread (:mod:`.writer`) appends to the last one
    through its file descriptor (:attr:`fd`) and starts new ones (:meth:`rotate`); any thread may
    :meth:`snapshot` and :meth:`truncate_through`. ``lock`` guards the list and the sizes; the last
    segment's size is the writer's (``live_size``: what it has made durable)."""

    def __init__(self, directory: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.lock = threading.Lock()
        self.segments: list[Segment] = []
        self.fd: int | None = None  # open for append: the last segment, written by the writer thread
        self.live_size: Callable[[], int] | None = None  # the last segment's durable size, once a writer owns it

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
            return self._recover_tail(self.segments[-1])
        next_seq = max(1, int(clock() * 1_000_000))
        self.fd = self._create(next_seq)
        self.segments.append(Segment(next_seq, self.directory / segment_name(next_seq), 0))
        return next_seq

    def _recover_tail(self, last: Segment) -> int:
        """Cut a torn or corrupt tail off ``last`` and open it for appending; returns the next seq."""
        data = last.path.read_bytes()
        found, good, stop = frames(memoryview(data), 0, len(data))
        del data
        fd = os.open(last.path, os.O_WRONLY)
        try:
            if stop not in ("end", "zeros"):
                log.warning("spool_tail_truncated", segment=last.path.name, kept_bytes=good,
                            dropped_bytes=last.size - good)
                os.ftruncate(fd, good)  # and the space after it preallocated again, as zeros
            self._preallocate(fd)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        last.size = good
        next_seq = found[-1][0] + 1 if found else last.first_seq
        self.fd = fd
        # never hand out a number at or below one an earlier segment already used
        return max(next_seq, last.first_seq)

    def _create(self, first_seq: int) -> int:
        """A fresh, empty segment file for ``first_seq``, its name durable in the directory; its descriptor."""
        fd = os.open(self.directory / segment_name(first_seq), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)  # a leftover of a failed write with that name is not ours
            self._preallocate(fd)
            os.fsync(fd)
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _preallocate(self, fd: int) -> None:
        """Give the segment its full size up front, as zeros the records overwrite: then an fdatasync has only
        the data to write, not the inode's new size (on this project's ext4 disk: one I/O round trip fewer
        per group commit, about a third of the writer's CPU; docs/performance.md). Best effort: a file
        system that cannot is appended to as it grows."""
        try:
            if os.fstat(fd).st_size < self.segment_bytes:
                os.posix_fallocate(fd, 0, self.segment_bytes)
        except OSError as exc:
            log.warning("spool_preallocate_failed", error=str(exc))

    def rotate(self, first_seq: int, old_size: int, adopt: Callable[[int], None]) -> None:
        """Writer thread: start a new segment for the records from ``first_seq`` on; the last one keeps
        ``old_size`` bytes (its durable size). ``adopt(fd)`` hands the new descriptor to the writer, under the
        lock, so that no snapshot sees the new segment with the old one's size. Raises ``OSError`` (nothing
        changed) if the file cannot be made."""
        fd = self._create(first_seq)
        with self.lock:
            if self.segments and self.segments[-1].first_seq == first_seq:  # its first write failed: the same name
                self.segments[-1].size = 0
            else:
                if self.segments:
                    self.segments[-1].size = old_size
                self.segments.append(Segment(first_seq, self.directory / segment_name(first_seq), 0))
            adopt(fd)
        if self.fd is not None:
            os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        """Close the segment open for appending (after the writer thread stopped)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def snapshot(self) -> list[tuple[int, Path, int]]:
        """(first seq, path, fsynced size) of every segment, in seq order."""
        with self.lock:
            out = [(s.first_seq, s.path, s.size) for s in self.segments]
            if out and self.live_size is not None:
                out[-1] = (out[-1][0], out[-1][1], self.live_size())
            return out

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
