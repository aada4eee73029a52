"""New-block detection. Every source calls one async callback::

    async def on_new_block(source: str, blockhash_display: str | None) -> None

``source`` is ``"blocknotify"``, ``"zmq"``, ``"longpoll"`` or ``"poll"``; the hash is in display order (as RPC
prints it) or None when the source does not know it. Several sources may report the same block: wrap the
callback in :class:`NewBlockDeduplicator` to get each hash once.

Sources (each with ``start()`` -> task, ``await stop()``, or ``await run()`` to run in your own task):

* :class:`BlockNotifyListener` - UDP on loopback, fed by the daemon's ``-blocknotify`` running
  ``stratum-pool notify --to 127.0.0.1:PORT %s`` (which calls :func:`send_block_notify`).
* :class:`ZmqBlockSubscriber` - a ZMQ SUB socket on the daemon's ``-zmqpubhashblock`` endpoint.
* :class:`LongpollWatcher` - ``getblocktemplate`` long polling. The template the daemon returns is handed to
  the optional ``on_template`` callback (called before ``on_new_block``), so the job manager need not fetch
  it again; without ``on_template`` the caller refetches.
* :class:`BestBlockPoller` - ``getbestblockhash`` every ``interval`` seconds, the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from stratum_pool.daemon.blocknotify import NOTIFY_TAG, blocknotify_command, send_block_notify
from stratum_pool.daemon.rpc import DaemonClient, DaemonError, only_timeouts

__all__ = [
    "NOTIFY_TAG", "BestBlockPoller", "BlockNotifyListener", "LongpollWatcher", "NewBlockCallback",
    "NewBlockDeduplicator", "TemplateCallback", "ZmqBlockSubscriber", "blocknotify_command",
    "parse_block_hash", "send_block_notify",
]

log = logging.getLogger(__name__)

NewBlockCallback = Callable[[str, str | None], Awaitable[None]]
TemplateCallback = Callable[[dict[str, Any]], Awaitable[None]]

_HASH_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_block_hash(text: str | bytes) -> str | None:
    """A 64-hex-digit block hash, lower-cased, or None."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = text.strip()
    return text.lower() if _HASH_RE.match(text) else None


async def _safe_call(callback: NewBlockCallback, source: str, blockhash: str | None) -> None:
    try:
        await callback(source, blockhash)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("new-block callback failed (source %s, block %s)", source, blockhash)


class NewBlockDeduplicator:
    """Wraps a callback so each block hash reaches it once, whichever source saw it first.

    Calls without a hash (None) always pass through.
    """

    def __init__(self, callback: NewBlockCallback, remember: int = 64) -> None:
        self.callback = callback
        self.remember = remember
        self._seen: OrderedDict[str, str] = OrderedDict()

    def seen(self, blockhash: str) -> bool:
        return blockhash.lower() in self._seen

    async def __call__(self, source: str, blockhash: str | None) -> None:
        if blockhash is not None:
            key = blockhash.lower()
            if key in self._seen:
                log.debug("block %s from %s already reported by %s", key, source, self._seen[key])
                return
            self._seen[key] = source
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)
        await self.callback(source, blockhash)


class _Source:
    """start()/stop() around an async run() loop."""

    name = "source"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"new-block-{self.name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- (a) -blocknotify over loopback UDP ----------------------------------------------------------------
class _NotifyProtocol(asyncio.DatagramProtocol):
    def __init__(self, listener: BlockNotifyListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.listener._received(data, addr)


class BlockNotifyListener(_Source):
    """Listens on UDP ``host:port`` (port 0: any free one, see :attr:`port` after :meth:`open`) for
    datagrams from :func:`send_block_notify`. Loopback only by default; datagrams without the tag are
    ignored."""

    name = "blocknotify"

    def __init__(self, on_new_block: NewBlockCallback, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.on_new_block = on_new_block
        self.host = host
        self._port = port
        self._transport: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)

    @property
    def port(self) -> int:
        if self._transport is not None:
            return int(self._transport.get_extra_info("sockname")[1])
        return self._port

    async def open(self) -> int:
        """Bind the socket (done by run()/start() too); returns the port."""
        if self._transport is None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _NotifyProtocol(self), local_addr=(self.host, self._port))
            self._transport = transport
        return self.port

    def _received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data.startswith(NOTIFY_TAG):
            log.warning("ignored a datagram from %s that is not a block notification", addr)
            return
        blockhash = parse_block_hash(data[len(NOTIFY_TAG):])
        try:
            self._queue.put_nowait(blockhash)
        except asyncio.QueueFull:
            log.warning("block notifications are piling up; dropped one")

    async def run(self) -> None:
        await self.open()
        try:
            while True:
                blockhash = await self._queue.get()
                await _safe_call(self.on_new_block, self.name, blockhash)
        finally:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def start_listening(self) -> int:
        """Bind, start the loop task; returns the port (handy for building the -blocknotify command)."""
        port = await self.open()
        self.start()
        return port


# --- (b) ZMQ hashblock ---------------------------------------------------------------------------------
class ZmqBlockSubscriber(_Source):
    """Subscribes to ``hashblock`` on a ZMQ endpoint (``tcp://127.0.0.1:28332``).

    Messages are ``[b"hashblock", 32-byte hash (display order), 4-byte LE sequence]``; a gap in the
    sequence is logged (messages were lost; the callback still fires for the newest block).
    """

    name = "zmq"

    def __init__(self, endpoint: str, on_new_block: NewBlockCallback, topic: bytes = b"hashblock") -> None:
        super().__init__()
        self.endpoint = endpoint
        self.on_new_block = on_new_block
        self.topic = topic
        self.last_sequence: int | None = None

    async def run(self) -> None:
        # imported here: pyzmq costs ~2.5 MiB of memory a pool without a ZMQ endpoint does not need
        import zmq
        import zmq.asyncio

        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
            sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 60)
            sock.setsockopt(zmq.SUBSCRIBE, self.topic)
            sock.connect(self.endpoint)
            while True:
                frames = await sock.recv_multipart()
                blockhash = self._parse(frames)
                if blockhash is not None:
                    await _safe_call(self.on_new_block, self.name, blockhash)
        finally:
            sock.close(linger=0)
            ctx.term()

    def _parse(self, frames: list[bytes]) -> str | None:
        if len(frames) != 3 or frames[0] != self.topic or len(frames[1]) != 32 or len(frames[2]) != 4:
            log.warning("ignored a malformed ZMQ message on %s (%d frames)", self.endpoint, len(frames))
            return None
        seq = int.from_bytes(frames[2], "little")
        if self.last_sequence is not None and seq != (self.last_sequence + 1) & 0xFFFFFFFF:
            log.warning("ZMQ %s: sequence jumped from %d to %d (missed messages)",
                        self.endpoint, self.last_sequence, seq)
        self.last_sequence = seq
        return frames[1].hex()


# --- (c) longpoll --------------------------------------------------------------------------------------
class LongpollWatcher(_Source):
    """Keeps one ``getblocktemplate`` long poll open (on the client's long-call threads, ``timeout`` seconds
    per poll; a poll that times out is simply re-issued).

    Fires ``on_new_block("longpoll", previousblockhash)`` when a returned template builds on a new block;
    before that, ``on_template(template)`` (if given) receives every template the long poll returns (also the
    ones Core returns after a minute for new mempool transactions). Errors back off ``retry_delay`` seconds.
    """

    name = "longpoll"

    def __init__(self, client: DaemonClient, on_new_block: NewBlockCallback,
                 on_template: TemplateCallback | None = None, *, timeout: float | None = None,
                 retry_delay: float = 1.0) -> None:
        super().__init__()
        self.client = client
        self.on_new_block = on_new_block
        self.on_template = on_template
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.previousblockhash: str | None = None
        self.longpollid: str | None = None

    async def run(self) -> None:
        while True:
            try:
                if self.longpollid is None:
                    first = await self.client.getblocktemplate()
                    self.longpollid = first.get("longpollid")
                    self.previousblockhash = first.get("previousblockhash")
                    del first  # not kept through the poll (below)
                    if self.longpollid is None:
                        log.warning("the daemon's templates have no longpollid; long polling is off")
                        return
                    continue
                template = await self.client.longpoll_template(self.longpollid, self.timeout)
            except DaemonError as exc:
                if only_timeouts(exc):
                    continue  # nothing happened during the poll: poll again
                log.warning("long poll failed: %s", exc)
                await asyncio.sleep(self.retry_delay)
                continue
            self.longpollid = template.get("longpollid", self.longpollid)
            prev = template.get("previousblockhash")
            if self.on_template is not None:
                try:
                    await self.on_template(template)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("on_template callback failed")
            if prev != self.previousblockhash:
                self.previousblockhash = prev
                await _safe_call(self.on_new_block, self.name, prev)
            # not kept through the next poll, which lasts until the next block: a mainnet template is megabytes
            del template


# --- (d) polling ---------------------------------------------------------------------------------------
class BestBlockPoller(_Source):
    """Calls ``getbestblockhash`` every ``interval`` seconds and fires when it changes (the first answer
    only records the tip unless ``fire_initial``)."""

    name = "poll"

    def __init__(self, client: DaemonClient, on_new_block: NewBlockCallback, interval: float = 1.0,
                 fire_initial: bool = False) -> None:
        super().__init__()
        self.client = client
        self.on_new_block = on_new_block
        self.interval = interval
        self.fire_initial = fire_initial
        self.best: str | None = None

    async def run(self) -> None:
        first = True
        while True:
            try:
                best = await self.client.getbestblockhash()
            except DaemonError as exc:
                log.warning("polling getbestblockhash failed: %s", exc)
            else:
                if best != self.best:
                    self.best = best
                    if not first or self.fire_initial:
                        await _safe_call(self.on_new_block, self.name, best)
                first = False
            await asyncio.sleep(self.interval)
