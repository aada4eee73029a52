"""New-block sources without a daemon: blocknotify UDP, ZMQ hashblock (real pyzmq PUB socket), dedup."""

from __future__ import annotations

import asyncio
import socket
import weakref
from typing import Any

import zmq
import zmq.asyncio

from stratum_pool.daemon.notify import (
    BlockNotifyListener,
    LongpollWatcher,
    NewBlockDeduplicator,
    ZmqBlockSubscriber,
    blocknotify_command,
    parse_block_hash,
    send_block_notify,
)
from stratum_pool.devnet.common import free_port

HASH_A = "0f" * 32
HASH_B = "ab" * 32


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []
        self.changed = asyncio.Event()

    async def __call__(self, source: str, blockhash: str | None) -> None:
        self.events.append((source, blockhash))
        self.changed.set()

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.events) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)


def test_parse_block_hash() -> None:
    assert parse_block_hash(HASH_A + "\n") == HASH_A
    assert parse_block_hash(("AB" * 32).encode()) == HASH_B
    assert parse_block_hash("xyz") is None
    assert parse_block_hash(b"\xff" * 64) is None
    assert parse_block_hash("ab" * 31) is None


async def test_blocknotify_listener_receives_send_block_notify() -> None:
    rec = Recorder()
    listener = BlockNotifyListener(rec)
    port = await listener.start_listening()
    try:
        await asyncio.to_thread(send_block_notify, "127.0.0.1", port, HASH_A)
        await asyncio.to_thread(send_block_notify, "127.0.0.1", port, "not-a-hash")
        await rec.wait_for(2)
        assert rec.events == [("blocknotify", HASH_A), ("blocknotify", None)]
    finally:
        await listener.stop()
    assert listener._transport is None


async def test_blocknotify_ignores_foreign_datagrams() -> None:
    rec = Recorder()
    listener = BlockNotifyListener(rec)
    port = await listener.start_listening()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(HASH_B.encode(), ("127.0.0.1", port))  # no tag
        send_block_notify("127.0.0.1", port, HASH_A)
        await rec.wait_for(1)
        await asyncio.sleep(0.1)
        assert rec.events == [("blocknotify", HASH_A)]
    finally:
        await listener.stop()


async def test_blocknotify_command_runs_in_a_shell() -> None:
    """The -blocknotify value works as the daemon runs it: /bin/sh with %s replaced."""
    rec = Recorder()
    listener = BlockNotifyListener(rec)
    port = await listener.start_listening()
    try:
        cmd = blocknotify_command("127.0.0.1", port).replace("%s", HASH_B)
        proc = await asyncio.create_subprocess_shell(cmd, cwd="/")
        assert await proc.wait() == 0
        await rec.wait_for(1)
        assert rec.events == [("blocknotify", HASH_B)]
    finally:
        await listener.stop()


async def test_callback_errors_do_not_stop_the_listener() -> None:
    calls: list[str | None] = []

    async def flaky(source: str, blockhash: str | None) -> None:
        calls.append(blockhash)
        if len(calls) == 1:
            raise RuntimeError("boom")

    listener = BlockNotifyListener(flaky)
    port = await listener.start_listening()
    try:
        send_block_notify("127.0.0.1", port, HASH_A)
        send_block_notify("127.0.0.1", port, HASH_B)
        for _ in range(100):
            if len(calls) == 2:
                break
            await asyncio.sleep(0.02)
        assert calls == [HASH_A, HASH_B]
    finally:
        await listener.stop()


async def test_zmq_hashblock_subscriber() -> None:
    port = free_port()
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{port}")
    rec = Recorder()
    sub = ZmqBlockSubscriber(f"tcp://127.0.0.1:{port}", rec)
    sub.start()
    try:
        hash_bytes = bytes.fromhex(HASH_A)  # hashblock carries the display-order bytes
        seq = 0
        # a PUB socket drops messages until the subscription has arrived: publish until one gets through
        for _ in range(100):
            await pub.send_multipart([b"hashblock", hash_bytes, seq.to_bytes(4, "little")])
            seq += 1
            if rec.events:
                break
            await asyncio.sleep(0.05)
        assert rec.events and rec.events[0] == ("zmq", HASH_A)
        await pub.send_multipart([b"hashblock", b"\x00" * 31, b"\x00" * 4])  # malformed: ignored
        await pub.send_multipart([b"hashblock", bytes.fromhex(HASH_B), (seq + 5).to_bytes(4, "little")])
        for _ in range(100):
            if rec.events[-1] == ("zmq", HASH_B):
                break
            await asyncio.sleep(0.02)
        assert rec.events[-1] == ("zmq", HASH_B)
        assert set(rec.events) == {("zmq", HASH_A), ("zmq", HASH_B)}
        assert sub.last_sequence == seq + 5
    finally:
        await sub.stop()
        pub.close()
        ctx.term()


async def test_zmq_subscriber_stops_cleanly_without_publisher() -> None:
    sub = ZmqBlockSubscriber(f"tcp://127.0.0.1:{free_port()}", Recorder())
    task = sub.start()
    await asyncio.sleep(0.1)
    await asyncio.wait_for(sub.stop(), 2)
    assert task.done()


class Answer(dict[str, Any]):
    """A template answer that can be watched for being freed (a plain dict cannot)."""


class HeldLongpoll:
    """A daemon whose long polls answer the given templates, then stay open (as until the next block)."""

    def __init__(self, first: Answer, answers: list[Answer]) -> None:
        self.first, self.answers = first, answers
        self.alive_at_next_poll: list[bool] = []
        self.refs: list[weakref.ref[Answer]] = []

    async def getblocktemplate(self) -> Answer:
        answer, self.first = self.first, Answer()
        self.refs.append(weakref.ref(answer))
        return answer

    async def longpoll_template(self, longpollid: str, timeout: float | None) -> Answer:
        self.alive_at_next_poll.append(any(ref() is not None for ref in self.refs))
        if not self.answers:
            await asyncio.Event().wait()
        answer = self.answers.pop(0)
        self.refs.append(weakref.ref(answer))
        return answer


async def test_longpoll_lets_go_of_each_template_before_polling_again() -> None:
    # a mainnet template is megabytes of parsed JSON; the next poll lasts until the next block
    first = Answer(longpollid="a", previousblockhash=HASH_A)
    daemon = HeldLongpoll(first, [Answer(longpollid="b", previousblockhash=HASH_B)])
    del first
    seen: list[str] = []

    async def on_template(template: dict[str, Any]) -> None:
        seen.append(template["longpollid"])

    rec = Recorder()
    watcher = LongpollWatcher(daemon, rec, on_template)  # type: ignore[arg-type]  # the two calls it makes
    watcher.start()
    await rec.wait_for(1)
    while len(daemon.alive_at_next_poll) < 2:
        await asyncio.sleep(0.01)
    await watcher.stop()
    assert seen == ["b"] and rec.events == [("longpoll", HASH_B)]
    assert daemon.alive_at_next_poll == [False, False]


async def test_deduplicator() -> None:
    rec = Recorder()
    dedup = NewBlockDeduplicator(rec, remember=2)
    await dedup("blocknotify", HASH_A)
    await dedup("poll", HASH_A.upper())
    await dedup("poll", None)
    await dedup("zmq", None)
    await dedup("zmq", HASH_B)
    assert rec.events == [("blocknotify", HASH_A), ("poll", None), ("zmq", None), ("zmq", HASH_B)]
    assert dedup.seen(HASH_A)
    await dedup("poll", "cd" * 32)
    await dedup("poll", "ef" * 32)
    assert not dedup.seen(HASH_A)  # forgotten: only the last two are remembered


def test_send_block_notify_without_listener_does_not_fail() -> None:
    send_block_notify("127.0.0.1", free_port(), HASH_A)


def test_blocknotify_command_is_a_python_one_liner() -> None:
    cmd = blocknotify_command("127.0.0.1", 4321, python="/usr/bin/python3")
    assert cmd.startswith('/usr/bin/python3 -c "') and cmd.endswith('" %s') and "4321" in cmd
    compile(cmd[len('/usr/bin/python3 -c "'):-len('" %s')], "<blocknotify>", "exec")
