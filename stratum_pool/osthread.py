"""Names the calling thread for the operating system, so that ``top -H``, ``ps -L`` and /proc show which of the
pool's threads spends what (Python 3.11 leaves every thread but the main one named after the interpreter)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_PR_SET_NAME = 15  # linux/prctl.h
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


def name_this_thread(name: str) -> None:
    """Set the calling thread's OS name (Linux keeps the first 15 bytes; elsewhere nothing happens)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
