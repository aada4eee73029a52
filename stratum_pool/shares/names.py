"""What a miner's names may be: the user name ``ADDRESS[.WORKER]``, the worker part, and cleaning the rest.

Named once here for the session (authorize), the share core (records of names never authorized) and the
store (splitting a user name into its account and worker rows).
"""

from __future__ import annotations

import re
from typing import Final

# A user name (ADDRESS[.WORKER]) longer than this is not a miner's.
MAX_USER_LENGTH: Final = 256
# The WORKER part: at most this many of NAME_CHARACTERS (anything else is refused at authorize, so no other
# character reaches logs, metrics or SQL).
MAX_WORKER_LENGTH: Final = 64
NAME_CHARACTERS: Final = "A-Za-z0-9._-"
WORKER_RE: Final = re.compile(rf"[{NAME_CHARACTERS}]{{0,{MAX_WORKER_LENGTH}}}")
_UNSAFE = re.compile(rf"[^{NAME_CHARACTERS}]")


def split_user(user: str) -> tuple[str, str]:
    """``"ADDRESS.WORKER"`` -> ``("ADDRESS", "WORKER")``; the worker name is everything after the first dot."""
    address, _, worker = user.partition(".")
    return address, worker


def clean_name(text: str, limit: int = MAX_USER_LENGTH) -> str:
    """``text`` made safe for logs, metrics and SQL: truncated, characters outside NAME_CHARACTERS -> "_"."""
    return _UNSAFE.sub("_", text[:limit])
