"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), written out here: one datagram per message
to the unix socket named by ``$NOTIFY_SOCKET`` (``@`` at the start: the abstract namespace).

* ``READY=1`` once every stratum port listens (``serve``: after ``Pool.start``; the supervisor: once every
  worker reported that it serves), so ``systemctl start`` returns when miners can connect;
* ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` from the event loop itself: a loop that hangs stops the pings
  and systemd restarts the pool;
* ``STOPPING=1`` when SIGTERM begins the drain.

Without ``$NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("stratum_pool.sdnotify")


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + address[1:] if address.startswith("@") else address) or None
        self.watchdog_seconds: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for: a child that inherited it must not ping
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; False when not under systemd or
        the socket refused it (never raises: the pool serves whether systemd hears or not)."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc), message=fields[0] if fields else "")
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=draining")

    async def watchdog(self) -> None:
        """Ping at half the watchdog interval until cancelled (returns at once without a watchdog)."""
        if self.watchdog_seconds is None or self.address is None:
            return
        interval = self.watchdog_seconds / 2
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
