"""Keep Python's cyclic garbage collector out of the new-block path.

A full (generation 2) collection walks every live object; in a pool holding 10,000 sessions that takes tens
of milliseconds, and the allocations of a new block (a 3 MB template parsed into thousands of dicts, then a
job and a notify line per session) make one likely to start right then. :func:`gc_paused` turns automatic
collection off for a short synchronous stretch (parsing the template; building the job and writing it to
every miner): the collection the allocations call for runs after the stretch, when the miners have their
work. Never hold it across an ``await`` of unbounded length (an RPC call to a daemon that may hang).

Pauses nest and may overlap between threads (the RPC threads parse, the event loop broadcasts): collection
is back on when the last one ends, and only if it was on when the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (reference counting frees memory as usual)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def paused() -> bool:
    """Whether some :func:`gc_paused` block is running."""
    return _depth > 0


def gc_automatic() -> bool:
    """Whether automatic collection is on, pauses aside (False when the process turned it off itself)."""
    with _lock:
        return _was_enabled if _depth else gc.isenabled()
