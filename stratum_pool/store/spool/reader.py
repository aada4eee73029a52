"""The spool's reader: fsynced frames after a given seq, for the loader, with a cursor so that a reader that
caught up resumes where it stopped instead of scanning its segment again."""

from __future__ import annotations

import bisect
from typing import Final

import structlog

from stratum_pool.store.spool import codec
from stratum_pool.store.spool.codec import Frame, decode_payload
from stratum_pool.store.spool.records import SpoolRecord
from stratum_pool.store.spool.segments import Segments

log = structlog.get_logger("stratum_pool.store.spool")

# How much of a segment the reader pulls into memory at a time.
READ_CHUNK: Final = 4 * 1024 * 1024


class SpoolReader:
    """Reads the fsynced part of ``segments``; safe to use from another thread than the writer's (one reader
    at a time: the loader)."""

    def __init__(self, segments: Segments) -> None:
        self._segments = segments
        # resume where the last read stopped: (last seq returned, segment first_seq, offset); None: look it up
        self.cursor: tuple[int, int, int] | None = None

    def read_from(self, after_seq: int, limit: int) -> list[SpoolRecord]:
        """Up to ``limit`` fsynced records with seq > ``after_seq``, in seq order."""
        return [decode_payload(seq, kind, data, start)
                for data, frames in self.read_frames(after_seq, limit) for seq, kind, start, _ in frames]

    def read_frames(self, after_seq: int, limit: int) -> list[tuple[bytes, list[Frame]]]:
        """What :meth:`read_from` returns, undecoded: ``(chunk, frames)`` pairs, each frame
        ``(seq, kind, payload_start, payload_end)`` into its chunk, CRC-checked; up to ``limit`` frames in all,
        in seq order. Decode a payload with :func:`decode_payload` (or, for shares, :data:`SHARE_FIXED` and
        :func:`decode_share_key`)."""
        segments = self._segments.snapshot()
        if not segments or limit <= 0:
            return []
        firsts = [s[0] for s in segments]
        cursor = self.cursor
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
                    data = f.read(min(size - offset, READ_CHUNK))
            except FileNotFoundError:  # trimmed under us: all of it was before a checkpoint
                index, offset = index + 1, 0
                continue
            frames, good, stop = codec.frames(data, 0, len(data), limit - count)
            if frames and min(frames)[0] <= after_seq:  # min: by seq (C speed)
                frames = [f for f in frames if f[0] > after_seq]
            if frames:
                out.append((data, frames))
                count += len(frames)
                last = frames[-1][0]
            offset += good
            if stop == "zeros":  # the unwritten rest of a preallocated segment: nothing more in it
                if index == len(segments) - 1:
                    break
                index, offset = index + 1, 0
                continue
            if stop == "corrupt" or (stop == "torn" and offset + (len(data) - good) >= size):
                # bytes that never became a record: the tail of a write that failed; nothing follows it
                log.error("spool_segment_corrupt", segment=path.name, offset=offset)
                index, offset = index + 1, 0
        if out:
            self.cursor = (last, segments[index][0], offset) if index < len(segments) else None
        return out
