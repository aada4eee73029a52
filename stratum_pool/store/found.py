"""Found blocks without a database: the last ones in memory and in a small local file (JSON lines), kept across
restarts, so a solo pool without PostgreSQL still shows its miners what they found.

A block is rare (and on regtest, where every share is one, the file stays small: it is compacted to the last
``keep`` records once it holds twice that). Each record is appended and fsynced in a thread, off the event loop.
A torn last line (a crash mid-write) is skipped when the file is read back.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("stratum_pool.store.found")

DEFAULT_KEEP = 1000
FILE_NAME = "found-blocks.jsonl"


@dataclass(frozen=True, slots=True)
class FoundRecord:
    coin: str  # coins.Coin.key
    height: int
    hash: str  # display order
    finder: str  # address
    worker: str  # the worker name (after the address's dot)
    reward: int  # base units paid to the finder (solo) or the pool
    scheme: str
    accepted: bool
    reason: str  # the daemon's answer when it refused the block
    found_at: float  # unix time

    @property
    def status(self) -> str:
        # Without a database nothing follows a block's confirmations: taken by the daemon is "pending".
        return "pending" if self.accepted else "rejected"


class FoundBlockLog:
    """The last ``keep`` found blocks of this process, in memory and in ``path``."""

    def __init__(self, path: Path | None, keep: int = DEFAULT_KEEP) -> None:
        """``path`` None: memory only."""
        self.path = path
        self.keep = keep
        self.records: deque[FoundRecord] = deque(maxlen=keep)
        self._lines = 0
        self._lock = threading.Lock()  # one writer at a time (appends run in threads)

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        self._lines = len(lines)
        for line in lines:
            try:
                self.records.append(FoundRecord(**json.loads(line)))
            except (ValueError, TypeError):  # a torn last line, or a line of another version
                log.warning("found_block_line_skipped", path=str(self.path))

    async def add(self, record: FoundRecord) -> None:
        self.records.append(record)
        if self.path is not None:
            try:
                await asyncio.to_thread(self._write, record)
            except OSError as exc:  # kept in memory; the pool mines on
                log.warning("found_block_not_written", path=str(self.path), error=str(exc))

    def _write(self, record: FoundRecord) -> None:
        assert self.path is not None
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._lines >= 2 * self.keep:
                self._compact()
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(record), separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._lines += 1

    def _compact(self) -> None:
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            # the record being added is already in memory: it is appended after the rename
            for r in list(self.records)[:-1]:
                f.write(json.dumps(asdict(r), separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._lines = len(self.records) - 1

    def recent(self, coin: str | None = None, limit: int = DEFAULT_KEEP,
               finder: str | None = None) -> list[FoundRecord]:
        """The newest first."""
        out = []
        for r in reversed(self.records):
            if (coin is None or r.coin == coin) and (finder is None or r.finder == finder):
                out.append(r)
                if len(out) >= limit:
                    break
        return out
