"""Sends events to the ``[[notify]]`` receivers: one queue and one sending task per receiver, so a dead or slow
receiver delays only its own messages and never the stratum loop (``emit`` only queues).

Each event is delivered at most once per receiver: its key is remembered when queued and when delivered, so
the same happening emitted again (a block seen twice, a check that runs again) is not sent again. A failed
send (no connection, a timeout, 429 or 5xx) is retried with doubling waits; other 4xx answers are not (the
receiver refused the message: sending it again would not help).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import structlog

from stratum_pool.webhooks import events as ev
from stratum_pool.webhooks.events import Event
from stratum_pool.webhooks.formats import build
from stratum_pool.webhooks.post import BadAnswer, post
from stratum_pool.webhooks.settings import NotifySettings

if TYPE_CHECKING:
    import ssl

log = structlog.get_logger("stratum_pool.webhooks")

QUEUE_SIZE = 1000  # per receiver; past it new events are dropped (and logged), never the pool slowed
REMEMBER = 10_000  # event keys remembered per receiver
FIRST_BACKOFF_SECONDS = 1.0


class _Receiver:
    def __init__(self, index: int, settings: NotifySettings) -> None:
        self.index = index
        self.settings = settings
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.seen: OrderedDict[str, None] = OrderedDict()  # keys queued or delivered
        self.offline: dict[str, float] = {}  # worker -> its last share when it was declared offline
        self.delivered = 0
        self.failed = 0

    def wants(self, event: Event) -> bool:
        s = self.settings
        return event.kind in s.events and (not s.addresses or event.address in s.addresses)

    def remember(self, key: str) -> bool:
        """False when ``key`` was already queued or delivered."""
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > REMEMBER:
            self.seen.popitem(last=False)
        return True


class Notifier:
    """The receivers of one process. ``start`` in the running loop; ``emit`` from anywhere on it."""

    def __init__(self, targets: Sequence[NotifySettings], *, clock: Callable[[], float] = time.time,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.clock = clock
        self.receivers = [_Receiver(i, t) for i, t in enumerate(targets)]
        self._tasks: list[asyncio.Task[None]] = []
        self.ssl_context = ssl_context  # None: the system's CAs (webhooks.post)

    def __bool__(self) -> bool:
        return bool(self.receivers)

    def start(self) -> None:
        if not self.receivers or self._tasks:
            return
        self._tasks = [asyncio.create_task(self._run(r), name=f"notify-{r.index}") for r in self.receivers]

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Give queued messages ``drain_seconds`` to go out, then stop."""
        if self._tasks and drain_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(r.queue.join() for r in self.receivers)), drain_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # ----- events in

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every receiver that wants it and has not had it."""
        for r in self.receivers:
            if r.wants(event):
                self._queue(r, event)

    def _queue(self, r: _Receiver, event: Event) -> None:
        if not r.remember(event.key):
            return
        try:
            r.queue.put_nowait(event)
        except asyncio.QueueFull:
            r.seen.pop(event.key, None)
            log.warning("notify_dropped", receiver=r.index, kind=event.kind, reason="queue full")

    def check_workers(self, coin: str, workers: Iterable[tuple[str, str, float | None]]) -> None:
        """Worker offline and back: ``workers`` are (address, worker name, last share time or None) of one
        coin; each receiver judges them by its own ``offline_minutes``."""
        now = self.clock()
        watching = [r for r in self.receivers
                    if {"worker_offline", "worker_online"} & set(r.settings.events)]
        if not watching:
            return
        for address, name, last_share in workers:
            if last_share is None:
                continue
            key = f"{coin}:{address}.{name}"
            for r in watching:
                if r.settings.addresses and address not in r.settings.addresses:
                    continue
                minutes = r.settings.offline_minutes
                since = r.offline.get(key)
                if since is None and now - last_share >= minutes * 60:
                    r.offline[key] = last_share
                    if "worker_offline" in r.settings.events:
                        self._queue(r, ev.worker_offline(coin, address, name, last_share, minutes, now))
                elif since is not None and last_share > since:
                    del r.offline[key]
                    if "worker_online" in r.settings.events:
                        self._queue(r, ev.worker_online(coin, address, name, since, now))

    # ----- messages out

    async def _run(self, r: _Receiver) -> None:
        while True:
            event = await r.queue.get()
            try:
                await self._deliver(r, event)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one message stop the receiver's queue
                log.exception("notify_error", receiver=r.index, kind=event.kind)
            finally:
                r.queue.task_done()

    async def _deliver(self, r: _Receiver, event: Event) -> None:
        s = r.settings
        content_type, body, headers = build(s, event)
        backoff = FIRST_BACKOFF_SECONDS
        for attempt in range(1, s.max_attempts + 1):
            status, error = await self._post(s, content_type, body, headers)
            if status is not None and 200 <= status < 300:
                r.delivered += 1
                log.info("notify_sent", receiver=r.index, format=s.format, kind=event.kind, attempt=attempt)
                return
            retry = status is None or status == 429 or status >= 500
            # the URL may hold a token: the receiver's index and format name it in logs
            log.warning("notify_failed", receiver=r.index, format=s.format, kind=event.kind, attempt=attempt,
                        status=status, error=error, retry=retry and attempt < s.max_attempts)
            if not retry:
                break
            if attempt < s.max_attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, s.max_backoff_seconds)
        r.failed += 1
        r.seen.pop(event.key, None)  # not delivered: the same happening may be sent again later

    async def _post(self, s: NotifySettings, content_type: str, body: bytes,
                    headers: dict[str, str]) -> tuple[int | None, str]:
        try:
            return await post(s.url, body, {"Content-Type": content_type, **headers}, s.timeout_seconds,
                              self.ssl_context), ""
        except (BadAnswer, TimeoutError, OSError, ValueError) as exc:
            return None, type(exc).__name__
