"""The spool as the pool and the loader use it: :class:`ShareSpool`, the writer, the reader and the segments
of one directory together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stratum_pool.store.spool.codec import Frame
from stratum_pool.store.spool.reader import SpoolReader
from stratum_pool.store.spool.records import SpoolRecord
from stratum_pool.store.spool.segments import DEFAULT_SEGMENT_BYTES, Segments
from stratum_pool.store.spool.writer import DEFAULT_GROUP_COMMIT_SECONDS, SpoolWriter


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
    records_written: int = 0  # records made durable since the spool was opened (in ``fsyncs`` group commits)


class ShareSpool(SpoolWriter):
    """A durable, ordered, append-only log of spool records. Use from one event loop; :meth:`read_from`,
    :meth:`read_frames`, :meth:`truncate_through` and :meth:`stats` may also be called from another thread (the
    loader's)."""

    def __init__(self, directory: Path | str, node_id: int = 0, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 group_commit_seconds: float = DEFAULT_GROUP_COMMIT_SECONDS,
                 clock: Callable[[], float] | None = None,
                 on_failure: Callable[[int, BaseException], None] | None = None) -> None:
        self.directory = Path(directory)
        self.node_id = node_id
        self.segment_bytes = segment_bytes
        segments = Segments(self.directory, segment_bytes=segment_bytes)
        next_seq = segments.open(clock if clock is not None else time.time)
        super().__init__(segments, next_seq, group_commit_seconds=group_commit_seconds, on_failure=on_failure)
        self._reader = SpoolReader(segments)

    def read_from(self, after_seq: int, limit: int) -> list[SpoolRecord]:
        """Up to ``limit`` fsynced records with seq > ``after_seq``, in seq order."""
        return self._reader.read_from(after_seq, limit)

    def read_frames(self, after_seq: int, limit: int) -> list[tuple[bytes, list[Frame]]]:
        """:meth:`read_from` undecoded (see :meth:`SpoolReader.read_frames`)."""
        return self._reader.read_frames(after_seq, limit)

    def truncate_through(self, seq: int) -> int:
        """Delete every segment whose records all have seq <= ``seq`` (never the one being appended to).
        Returns how many were deleted."""
        return self._segments.truncate_through(seq)

    def stats(self) -> SpoolStats:
        fsynced_seq, pending, commits, written, _ = self._counts()
        snapshot = self._segments.snapshot()
        return SpoolStats(
            first_seq=snapshot[0][0] if snapshot else self._next_seq,
            last_seq=self._next_seq - 1, fsynced_seq=fsynced_seq, pending_records=pending,
            bytes=sum(size for _, _, size in snapshot), segments=len(snapshot),
            fsyncs=commits, write_errors=self.write_errors, records_failed=self._records_failed,
            records_written=written,
        )

    def inject_fault(self, err: int, *, partial: int = 0, on_fsync: bool = False, times: int = 1,
                     delay: float = 0.0) -> None:
        """Tests: the next ``times`` batches fail with ``errno`` ``err`` in the writer's own write (after
        ``partial`` bytes reached the file) or fdatasync (``on_fsync``); with ``err`` 0, each sleeps ``delay``
        seconds after its fdatasync (a slow disk)."""
        self._gc.fault(err, partial, on_fsync, times, delay)
