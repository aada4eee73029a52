"""The share spool: a write-ahead log on local disk between the stratum loop and PostgreSQL.

Every record (an accepted share, a per-minute count of rejected shares, a found block) gets a sequence
number ``seq`` the moment it is appended, and is durable once the future :meth:`ShareSpool.append`
returned resolves. The pool acknowledges an accepted share to the miner only after that, so an
acknowledged share survives a database outage and ``kill -9`` alike. The loader
(:mod:`stratum_pool.store.loader`) copies records to PostgreSQL, checkpoints the last ``seq`` loaded in the
same transaction, and then calls :meth:`ShareSpool.truncate_through`.

Sequence numbers continue across restarts (the last segment is scanned on open; a torn or corrupt tail,
from a crash during a write, is truncated). A brand-new spool starts at ``clock()`` in microseconds, so
that a spool directory lost with its machine never reuses numbers the database checkpoint has passed.

The modules:

- :mod:`.records`: the record types.
- :mod:`.codec`: the frame layout, the one place records become bytes and bytes records again.
- :mod:`.segments`: the segment files: naming, opening and recovery, rotation, appending, deleting.
- :mod:`.writer`: seq numbers and group commit, and the writer thread that writes and fsyncs.
- :mod:`.reader`: what the loader reads, with its cursor.
- :mod:`.share_spool`: :class:`ShareSpool`, which puts them together, and its :class:`SpoolStats`.
"""

from stratum_pool.store.spool.codec import (
    KIND_BLOCK,
    KIND_REJECTED,
    KIND_SHARE,
    MAX_FRAME_BODY,
    SHARE_FIXED,
    SHARE_KEY_START,
    Frame,
    decode_payload,
    decode_share_key,
    encode_frame,
    encode_payload,
    share_key_bytes,
)
from stratum_pool.store.spool.records import BlockRecord, RejectedRecord, ShareRecord, SpoolRecord
from stratum_pool.store.spool.segments import DEFAULT_SEGMENT_BYTES
from stratum_pool.store.spool.share_spool import ShareSpool, SpoolStats
from stratum_pool.store.spool.writer import DEFAULT_GROUP_COMMIT_SECONDS

__all__ = [
    "DEFAULT_GROUP_COMMIT_SECONDS",
    "DEFAULT_SEGMENT_BYTES",
    "KIND_BLOCK",
    "KIND_REJECTED",
    "KIND_SHARE",
    "MAX_FRAME_BODY",
    "SHARE_FIXED",
    "SHARE_KEY_START",
    "BlockRecord",
    "Frame",
    "RejectedRecord",
    "ShareRecord",
    "ShareSpool",
    "SpoolRecord",
    "SpoolStats",
    "decode_payload",
    "decode_share_key",
    "encode_frame",
    "encode_payload",
    "share_key_bytes",
]
