"""The sending side of ``-blocknotify``: kept free of heavy imports because the daemon starts a new process
for every block (``stratum-pool notify --to 127.0.0.1:PORT %s`` calls :func:`send_block_notify`)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

#: The datagram :func:`send_block_notify` sends starts with this tag, then the hash.
NOTIFY_TAG = b"stratum-pool-blocknotify "


def send_block_notify(host: str, port: int, blockhash: str) -> None:
    """Send one block hash to a ``BlockNotifyListener`` (one UDP datagram; never blocks on the pool)."""
    payload = NOTIFY_TAG + blockhash.strip().encode("ascii", "replace")[:128]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.sendto(payload, (host, port))


def blocknotify_command(host: str, port: int, python: str | None = None) -> str:
    """A ``-blocknotify`` value that works without the ``stratum-pool`` CLI installed (a python one-liner;
    the daemon runs it with ``/bin/sh`` and replaces ``%s`` with the block hash)."""
    root = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            f"from stratum_pool.daemon.blocknotify import send_block_notify; "
            f"send_block_notify({host!r}, {port}, sys.argv[1])")
    return f"{python or sys.executable} -c \"{code}\" %s"


def blocknotify_shell_command(host: str, port: int) -> str:
    """The recommended ``-blocknotify`` value: bash writes the datagram itself (``/dev/udp``), no Python start.

    bitcoind and litecoind run the value through ``/bin/sh -c`` after replacing every ``%s`` with the block
    hash (hex digits only, so it is safe inside the quotes); Debian's ``/bin/sh`` (dash) has no ``/dev/udp``,
    hence bash. ``echo -n`` writes the tag and the hash in one ``write``: one datagram, as the listener wants.
    """
    if not host or any(c not in "0123456789abcdefABCDEF.:" for c in host):
        raise ValueError(f"host: {host!r} is not an IP address (bash's /dev/udp needs one, e.g. 127.0.0.1)")
    if not 0 < port < 65536:
        raise ValueError(f"port: {port!r} is not a port number (1-65535)")
    tag = NOTIFY_TAG.decode("ascii").strip()
    return f"bash -c 'echo -n {tag} %s >/dev/udp/{host}/{port}'"
