"""How the pool's process uses glibc's malloc (Linux; elsewhere, and on musl, nothing here does anything).

**One arena.** glibc gives each thread that allocates its own malloc arena, and memory freed in an arena stays
there. A mainnet template is parsed on an RPC thread into ~5 MB of strings, most of them too big for Python's
own allocator: garbage once the work is built, it then stayed resident in that thread's arena, of use to no one
until the next template. With every thread allocating from the main arena (:func:`one_malloc_arena`, as
``MALLOC_ARENA_MAX=1`` does), the event loop reuses it. The threads hardly contend for it: they allocate little
while the event loop runs (most of their work holds the GIL), and small blocks come from glibc's per-thread
caches without the arena's lock. An operator's own ``MALLOC_ARENA_MAX`` is left as it is.

**Freed memory back to the OS once.** :func:`release_free_memory` returns the free pages of every arena
(``malloc_trim``): run once after startup (imports, config, the first template leave megabytes free). Not after
every template: the next template's parse would then fault those pages in again, ~2.5 ms more from the daemon's
answer to the miners' work (measured: docs/performance.md, "Server RSS").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_ARENA_MAX = -8  # malloc.h


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    # musl has no malloc_trim (and no arenas of this kind)
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def one_malloc_arena() -> bool:
    """Make every thread allocate from the main malloc arena (call before starting threads); True when set
    (False: not glibc, or ``MALLOC_ARENA_MAX`` is in the environment, which glibc then applies itself)."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, 1))


def release_free_memory() -> bool:
    """Return the free pages of every malloc arena to the OS; True when some were (False: none, or no glibc)."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))
