"""One worker of a multi-process pool, as the supervisor and the worker itself see it: its extranonce1 slice,
its share-spool identity, its settings and the status line it reports once it serves.

The process that runs a worker is ``python -m stratum_pool.serve worker`` (``serve.serve`` with a
:class:`Worker`); this module holds what that and the supervisor (``cluster.supervisor``) share.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stratum_pool.config import Settings

# A worker prints this, then one JSON object, on its stdout once it serves (read by the supervisor).
STATUS_TAG = "STRATUM-POOL-WORKER "
MAX_WORKERS = 255
# config.py allows at most 64 workers; with 256 node ids that keeps spool identities within smallint
SPOOL_SLOTS_PER_NODE = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Worker:
    """Worker ``index`` of a supervisor: ``fds[i]`` is coin i's inherited listening socket (none: bind the
    configured ports with SO_REUSEPORT), ``workers_dir`` the supervisor's directory for what the workers
    share (metrics, bans)."""

    index: int
    fds: Sequence[int] = ()
    workers_dir: Path | None = None


def worker_prefix(node_id: int, index: int) -> bytes:
    """The extranonce1 prefix of worker ``index`` on node ``node_id``: two bytes, node then worker."""
    if not 0 <= node_id <= 255 or not 0 <= index < MAX_WORKERS:
        raise ValueError(f"node_id must be 0..255 and the worker index 0..{MAX_WORKERS - 1}")
    return bytes([node_id, index])


def spool_node_id(node_id: int, index: int) -> int:
    """The share-spool identity of worker ``index`` of node ``node_id``: shares are ordered and
    checkpointed per spool, so two workers never share one. Fits the smallint columns (<= 16383)."""
    return node_id * SPOOL_SLOTS_PER_NODE + index


def worker_settings(settings: Settings, index: int = 0) -> Settings:
    """A worker's settings: every coin's ``notify_listen`` moved to an ephemeral loopback port (the
    supervisor listens on the configured one and relays), the HTTP API on worker 0 only (one port), and a
    spool directory of its own."""
    coins = tuple(
        dataclasses.replace(cs, notify_listen="127.0.0.1:0") if cs.notify_listen else cs for cs in settings.coins
    )
    changes: dict[str, Any] = {"coins": coins}
    api = getattr(settings, "api", None)
    if api is not None and index != 0 and getattr(api, "enabled", False):
        changes["api"] = dataclasses.replace(api, enabled=False)
    database = settings.database
    if database.dsn:
        # each worker has its own spool, loaded under its own identity (spool_node_id)
        changes["database"] = dataclasses.replace(database, spool_dir=str(Path(database.spool_dir) / f"worker-{index}"))
    return dataclasses.replace(settings, **changes)


def status_line(index: int, pid: int, coins: Sequence[tuple[str, int, int | None]]) -> str:
    """What a worker prints once it serves: its index, pid and each coin's ``(key, port, notify_port)``."""
    status = {"index": index, "pid": pid,
              "coins": [{"coin": key, "port": port, "notify_port": notify_port} for key, port, notify_port in coins]}
    return STATUS_TAG + json.dumps(status)
