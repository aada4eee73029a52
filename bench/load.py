"""End-to-end load test: a stand-in daemon, the pool as its own process, and thousands of Stratum sessions.

    .venv/bin/python bench/load.py                      # defaults: ~1-2 minutes on 2 cores
    .venv/bin/python bench/load.py --idle 19000 --rate 20000 --seconds 30 --workers 2

What happens, in order (every step bounded in time; the pool is stopped at the end whatever happens):

1. the stand-in daemon (``bench/standin_daemon.py``: mainnet block 574200 as a template, 3,314 txs) and the
   pool (``python -m stratum_pool.cli serve --config <generated toml>``, or ``python -m
   stratum_pool.serve supervise`` with ``--workers N``) start; solo mode, fixed share difficulty, longpoll off
   (``--longpoll`` turns it on), ``notify_listen`` on so new blocks arrive the way operators signal them
   (``stratum-pool notify`` = :func:`send_block_notify`), polling and timer refreshes far apart;
2. ``--idle`` sessions connect from 127.0.0.2.. (several source addresses, ``--holders`` client
   processes), subscribe and authorize; the server's RSS growth per session is measured;
3. ``--active`` sessions connect in this process;
4. ``--blocks`` times: the daemon moves to a new tip and the new block is signalled (``--signal``), timed
   until the FIRST and the LAST session (idle and active) have received ``clean_jobs`` work:

   * ``udp`` (the default): the bench sends the pool's notify datagram itself (:func:`send_block_notify`,
     what ``stratum-pool notify`` does), t0 taken here;
   * ``zmq``: the stand-in daemon publishes ``hashblock`` on its ZMQ PUB socket (``--zmq-port``, the pool's
     ``zmq_hashblock``), as bitcoind's ``-zmqpubhashblock`` does, t0 taken by the daemon just before the send;
   * ``blocknotify``: the stand-in daemon runs the README's ``-blocknotify`` command
     (:func:`blocknotify_shell_command`, bash writing the datagram) through ``/bin/sh -c``, as bitcoind does,
     t0 taken by the daemon just before the shell starts;

   (t0 is ``time.monotonic()``, one clock for every process of this machine); the pool's template fetch
   (``getblocktemplate`` round trip and JSON parse, from its own ``stratum_pool_rpc_seconds``) and its own
   new block -> broadcast done (``stratum_pool_new_block_to_notify_seconds``) are read from its /metrics;
5. the active sessions submit ``--rate`` shares per second for ``--seconds``: real shares found by hashing
   (native ``check_share``) at the pool's low fixed difficulty, mixed with stale (job of the previous
   block), duplicate and low-difficulty ones; the server's CPU (``/proc/<pid>/stat`` utime+stime of the
   pool's processes) per 1,000 submits and the submit round trip are measured.

Prints a table and one JSON line. Rows per second into PostgreSQL: only with ``--dsn`` (see
:func:`share_rows_per_second`); otherwise ``n/a (no database configured)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stratum_pool import _native  # noqa: E402
from stratum_pool.coins import ALGO_SHA256D, COINS  # noqa: E402
from stratum_pool.daemon.blocknotify import blocknotify_shell_command, send_block_notify  # noqa: E402
from stratum_pool.devnet.common import free_port_below_ephemeral as free_port  # noqa: E402

PYTHON = sys.executable
COIN = COINS["bitcoin-mainnet"]
# Solo-mode payout addresses (valid mainnet addresses; each gets its own coinbase and job).
ADDRESSES = (
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
)
# A fixed share difficulty low enough that one hash in ~4 meets it: shares are cheap to find.
SHARE_DIFFICULTY = 2.0**-30
CONNECT_BATCH = 256
FAILURE_REASONS: Counter[str] = Counter()


# ----- processes and /proc




def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (an unprivileged process may)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (workers of a multi-process pool)."""
    found = [pid]
    i = 0
    while i < len(found):
        p = found[i]
        i += 1
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    found += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (their own, not their reaped children's), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


THREAD_NAMES = {"sp-spool": "spool writer", "sp-loader": "loader", "sp-rpc": "RPC", "sp-rpc-longpoll": "RPC"}


def thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds of ``pids``: the event loops (the processes' main threads) apart from every other thread."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
                with open(f"/proc/{pid}/task/{task}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            # the pool names its threads for the OS (stratum_pool.osthread); unnamed ones read "python"
            name = "event loop (main thread)" if task == str(pid) else THREAD_NAMES.get(name, "other threads")
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def status_sum(paths: list[str], key: str) -> int:
    """The sum of the first number after ``key`` in each /proc status file (missing files count 0)."""
    total = 0
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def wakeups(pids: list[int]) -> int:
    """Voluntary context switches of the processes' main threads: how often each event loop went to sleep
    and was woken (a loop that wakes for fewer events pays its per-wake-up cost over fewer submits)."""
    return status_sum([f"/proc/{pid}/task/{pid}/status" for pid in pids], "voluntary_ctxt_switches:")


def socket_count(pid: int) -> int:
    """Open sockets of one process (its sessions, plus a few of its own)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    except OSError:
        pass
    return count


def metric_sums(api_port: int, names: tuple[str, ...], label: str = "") -> list[float] | None:
    """The sum of each of ``names``' samples (only those whose line holds ``label``, e.g.
    ``method="getblocktemplate"``) in the pool's /metrics (worker 0 with several workers); a name with no
    sample sums to nan. None: no /metrics answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    sums = [math.nan] * len(names)
    for line in text.splitlines():
        if line.startswith("#") or label not in line:
            continue
        sample = line.partition("{")[0].partition(" ")[0]
        if sample in names:
            i = names.index(sample)
            sums[i] = (0.0 if math.isnan(sums[i]) else sums[i]) + float(line.split()[-1])
    return sums


def pool_side_notify_ms(api_port: int) -> tuple[int, float] | None:
    """How many new blocks the pool timed and the mean time from learning of one to the end of its broadcast
    (bookkeeping after the writes included), in ms, from its own histogram. Separates the pool's time from
    the clients' (which share this machine's cores)."""
    sums = metric_sums(api_port, ("stratum_pool_new_block_to_notify_seconds_sum",
                                  "stratum_pool_new_block_to_notify_seconds_count"))
    if sums is None or math.isnan(sums[1]) or not sums[1]:
        return None
    return int(sums[1]), sums[0] / sums[1] * 1000


def template_fetch_totals(api_port: int) -> tuple[float, float] | None:
    """The pool's ``getblocktemplate`` calls so far: (seconds, calls), each call timed from the request to the
    parsed answer (HTTP round trip and JSON parse, on the RPC thread); None: no /metrics."""
    sums = metric_sums(api_port, ("stratum_pool_rpc_seconds_sum", "stratum_pool_rpc_seconds_count"),
                       'method="getblocktemplate"')
    return None if sums is None else (0.0 if math.isnan(sums[0]) else sums[0], 0.0 if math.isnan(sums[1]) else sums[1])


SIGNALS = {"udp": "the bench's notify datagram", "zmq": "the daemon's ZMQ hashblock",
           "blocknotify": "the daemon's -blocknotify (bash /dev/udp)"}


def spool_counts(api_port: int) -> tuple[float, float] | None:
    """The pool's spool group commits and records made durable so far (None: no spool)."""
    sums = metric_sums(api_port, ("stratum_pool_spool_group_commits_total", "stratum_pool_spool_records_total"))
    if sums is None or math.isnan(sums[0]) or math.isnan(sums[1]):
        return None
    return sums[0], sums[1]


def postgres_cpu_seconds() -> float:
    """CPU seconds of every postgres process of this machine (the server, its backends, its writers), with the
    backends that have exited since it started (their time is in the postmaster's reaped children's)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            with open(f"/proc/{fields[1]}/comm") as f:
                parent_is_postgres = f.read().strip() == "postgres"
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if not parent_is_postgres:  # the postmaster: cutime, cstime hold its exited backends
            total += int(fields[13]) + int(fields[14])
    return total / tick


def rss_bytes(pids: list[int], field: str = "VmRSS:") -> int:
    """The processes' resident memory (``VmHWM:``: each one's peak since it started), summed."""
    return status_sum([f"/proc/{pid}/status" for pid in pids], field) * 1024


def rpc(port: int, method: str, *params: Any) -> Any:
    body = orjson.dumps({"id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return orjson.loads(resp.read())["result"]


def wait_port(port: int, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def write_config(path: Path, *, stratum_port: int, daemon_port: int, notify_port: int, workers: int,
                 longpoll: bool, dsn: str, log_level: str, api_port: int, group_commit_ms: float = 2.0,
                 load_interval: float = 1.0, zmq_hashblock: str = "") -> None:
    database = (f'[database]\ndsn = "{dsn}"\nspool_dir = "{path.parent / "spool"}"\n'
                f"group_commit_ms = {group_commit_ms}\nload_interval_seconds = {load_interval}\n\n") if dsn else ""
    path.write_text(f"""{database}[api]
enabled = true
host = "127.0.0.1"
port = {api_port}
requests_per_second = 1000
burst = 1000

[pool]
node_id = 1
workers = {workers}
log_level = "{log_level}"
log_format = "json"

# The load generator is one "abuser" on a few loopback addresses: lift the per-IP guards it would trip.
[limits]
max_connections_per_ip = 100000
authorize_timeout_seconds = 3600
idle_timeout_seconds = 3600
submits_per_second = 0
max_workers_per_account = 0

[bans]
enabled = false

[[coins]]
coin = "bitcoin"
network = "mainnet"
mode = "solo"
stratum_host = "127.0.0.1"
stratum_port = {stratum_port}
longpoll = {str(longpoll).lower()}
notify_listen = "127.0.0.1:{notify_port}"
zmq_hashblock = "{zmq_hashblock}"
poll_interval_seconds = 3600
template_refresh_seconds = 3600

[coins.vardiff]
initial = {SHARE_DIFFICULTY!r}
minimum = {SHARE_DIFFICULTY!r}
suggestion_policy = "fixed"

[[coins.daemons]]
name = "standin"
url = "http://127.0.0.1:{daemon_port}"
user = "bench"
password = "bench"
timeout_seconds = 60
""")


# ----- client side: idle sessions


def _lines(user: str) -> bytes:
    return (orjson.dumps({"id": 1, "method": "mining.subscribe", "params": ["bench/1.0"]}) + b"\n"
            + orjson.dumps({"id": 2, "method": "mining.authorize", "params": [user, "x"]}) + b"\n")


class IdleClient(asyncio.Protocol):
    """Subscribes, authorizes, then only notes when clean_jobs work arrives."""

    __slots__ = ("clean_at", "closed", "failed", "ready", "tail", "transport", "user", "waiter")

    def __init__(self, user: str, waiter: asyncio.Future[bool]) -> None:
        self.user = user
        self.waiter = waiter
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.failed = False
        self.closed = False
        self.clean_at = 0.0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        transport.write(_lines(self.user))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        chunk = self.tail + data
        if b"true]}" in chunk:  # a mining.notify with clean_jobs (the last param is true)
            self.clean_at = time.monotonic()
            if not self.ready:
                self.ready = True
                if not self.waiter.done():
                    self.waiter.set_result(True)
        elif not self.ready and b'"error":[' in chunk:
            self.failed = True
            if not self.waiter.done():
                self.waiter.set_result(False)
        self.tail = chunk[-8:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.waiter.done():
            self.waiter.set_result(False)


async def connect_many(loop: asyncio.AbstractEventLoop, port: int, count: int, first_source: int,
                       sources: int, factory: Any, timeout: float) -> tuple[list[Any], int]:
    """Open ``count`` connections from 127.0.0.<first_source..+sources>; (protocols ready, failures)."""
    clients: list[Any] = []
    failures = 0
    deadline = time.monotonic() + timeout
    for start in range(0, count, CONNECT_BATCH):
        batch = []
        for i in range(start, min(count, start + CONNECT_BATCH)):
            source = f"127.0.0.{first_source + i % sources}"
            waiter: asyncio.Future[bool] = loop.create_future()
            proto = factory(i, waiter)
            batch.append((proto, waiter, loop.create_connection(lambda p=proto: p, "127.0.0.1", port,
                                                                local_addr=(source, 0))))
        results = await asyncio.gather(*(c for _, _, c in batch), return_exceptions=True)
        waiters = [w for (_, w, _), r in zip(batch, results, strict=True) if not isinstance(r, BaseException)]
        failures += sum(1 for r in results if isinstance(r, BaseException))
        for r in results:
            if isinstance(r, BaseException):
                FAILURE_REASONS[f"{type(r).__name__}: {r}"[:80]] += 1
        if waiters:
            await asyncio.wait(waiters, timeout=max(0.1, deadline - time.monotonic()))
        for (proto, waiter, _), outcome in zip(batch, results, strict=True):
            if waiter.done() and not waiter.cancelled() and waiter.result():
                clients.append(proto)
            elif not isinstance(outcome, BaseException):
                failures += 1
        if time.monotonic() > deadline:
            failures += count - start - len(batch)
            break
    return clients, failures


def _holder_main(conn: Connection, port: int, count: int, first_source: int, sources: int, timeout: float) -> None:
    """An idle-session process: connects ``count`` sessions, then answers the bench's commands."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_holder(conn, port, count, first_source, sources, timeout))


async def _holder(conn: Connection, port: int, count: int, first_source: int, sources: int,
                  timeout: float) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))

    def factory(i: int, waiter: asyncio.Future[bool]) -> IdleClient:
        return IdleClient(f"{ADDRESSES[i % len(ADDRESSES)]}.idle{first_source}x{i}", waiter)

    clients, failures = await connect_many(loop, port, count, first_source, sources, factory, timeout)
    conn.send(("ready", len(clients), failures))
    if FAILURE_REASONS:
        print(f"idle connect failures: {dict(FAILURE_REASONS.most_common(3))}", file=sys.stderr, flush=True)
    while True:
        cmd = await commands.get()
        if cmd[0] == "arm":
            for c in clients:
                c.clean_at = 0.0
            conn.send(("armed",))
        elif cmd[0] == "collect":
            deadline = time.monotonic() + cmd[1]
            while time.monotonic() < deadline and any(c.clean_at == 0.0 and not c.closed for c in clients):
                await asyncio.sleep(0.005)
            times = [c.clean_at for c in clients if c.clean_at]
            conn.send(("collected", times, sum(1 for c in clients if c.closed)))
        elif cmd[0] == "stop":
            for c in clients:
                if c.transport is not None:
                    c.transport.abort()
            conn.send(("stopped",))
            return


# ----- client side: submitting sessions


@dataclass(slots=True)
class ClientJob:
    job_id: str
    prevhash: bytes
    coinb1: bytes
    coinb2: bytes
    branch: bytes
    version: int
    nbits: int
    ntime: int


def print_result(rows: list[tuple[str, str]], result: dict[str, Any]) -> None:
    """A bench's table (label, figure) and then its one JSON line."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(json.dumps(result), flush=True)


def job_from_notify(params: list[Any]) -> ClientJob:
    raw = bytes.fromhex(params[1])
    prevhash = b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))
    return ClientJob(params[0], prevhash, bytes.fromhex(params[2]), bytes.fromhex(params[3]),
                     b"".join(bytes.fromhex(h) for h in params[4]), int(params[5], 16), int(params[6], 16),
                     int(params[7], 16))


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # "valid:accepted", "stale:21", ...
    rtts: list[float] = field(default_factory=list)
    hashes: int = 0


EXPECTED = {"valid": "accepted", "stale": "21", "duplicate": "22", "low": "23"}


class Submitter(asyncio.Protocol):
    def __init__(self, user: str, waiter: asyncio.Future[bool], tally: Tally) -> None:
        self.user = user
        self.waiter = waiter
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.extranonce1 = b""
        self.en2_size = 4
        self.target = 0
        self.job: ClientJob | None = None
        self.old_job_ids: list[str] = []
        self.clean_at = 0.0
        self.closed = False
        self.buffer = b""
        self.pending: deque[tuple[float, str]] = deque()
        self.counter = random.getrandbits(20) << 8
        self.last_valid: bytes = b""
        self.next_id = 10

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        transport.write(_lines(self.user))  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.waiter.done():
            self.waiter.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buffer + data
        lines = buf.split(b"\n")
        self.buffer = lines.pop()
        for line in lines:
            if line.startswith(b'{"id":null'):
                self._notification(line, now)
            elif line.startswith(b'{"id":1,') or line.startswith(b'{"id":2,'):
                msg = orjson.loads(line)
                if msg["id"] == 1 and msg.get("result"):
                    self.extranonce1 = bytes.fromhex(msg["result"][1])
                    self.en2_size = int(msg["result"][2])
                elif msg.get("error") and not self.waiter.done():
                    self.waiter.set_result(False)
            elif self.pending:
                sent_at, kind = self.pending.popleft()
                self.tally.rtts.append(now - sent_at)
                if b'"result":true' in line:
                    verdict = "accepted"
                else:
                    err = orjson.loads(line).get("error") or [0]
                    verdict = str(err[0])
                self.tally.answered[f"{kind}:{verdict}"] += 1

    def _notification(self, line: bytes, now: float) -> None:
        msg = orjson.loads(line)
        method, params = msg.get("method"), msg.get("params") or []
        if method == "mining.set_difficulty":
            self.target = int(COIN.diff1_target / float(params[0]))
        elif method == "mining.notify":
            job = job_from_notify(params)
            if params[8]:
                self.clean_at = now
                if self.job is not None and self.job.prevhash != job.prevhash:
                    self.old_job_ids.append(self.job.job_id)
            self.job = job
            if not self.waiter.done():
                self.waiter.set_result(True)

    def _share(self, want_valid: bool) -> bytes:
        job = self.job
        assert job is not None
        self.counter += 1
        en2 = (self.counter & ((1 << (8 * self.en2_size)) - 1)).to_bytes(self.en2_size, "big")
        nonce = random.getrandbits(32)
        check = _native.check_share
        while True:
            _, pow_hash = check(ALGO_SHA256D, job.coinb1, self.extranonce1, en2, job.coinb2, job.branch,
                                job.version, job.prevhash, job.ntime, job.nbits, nonce)
            self.tally.hashes += 1
            if (int.from_bytes(pow_hash, "little") <= self.target) == want_valid:
                break
            nonce = (nonce + 1) & 0xFFFFFFFF
        return orjson.dumps([self.user, job.job_id, en2.hex(), f"{job.ntime:08x}", f"{nonce:08x}"])

    def submit(self, kinds: list[str], now: float) -> None:
        if self.transport is None or self.closed or self.job is None:
            return
        out = []
        for kind in kinds:
            if kind == "duplicate" and self.last_valid:
                params = self.last_valid
            elif kind == "stale" and self.old_job_ids:
                fresh = orjson.loads(self._share(True))
                fresh[1] = self.old_job_ids[-1]
                params = orjson.dumps(fresh)
            elif kind == "low":
                params = self._share(False)
            else:
                kind = "valid"
                params = self._share(True)
                self.last_valid = params
            self.next_id += 1
            out.append(b'{"id":%d,"method":"mining.submit","params":%s}\n' % (self.next_id, params))
            self.pending.append((now, kind))
            self.tally.sent[kind] += 1
        self.transport.write(b"".join(out))


def pick_kind(r: float, mix: dict[str, float]) -> str:
    acc = 0.0
    for kind, share in mix.items():
        acc += share
        if r < acc:
            return kind
    return "valid"


async def submit_load(clients: list[Submitter], rate: float, seconds: float, mix: dict[str, float],
                      tally: Tally) -> float:
    """Submit ``rate`` shares/s for ``seconds``; returns when every answer is in (or 30 s later)."""
    start = time.monotonic()
    sent = 0
    i = 0
    rnd = random.random
    live = [c for c in clients if not c.closed]
    while (now := time.monotonic()) < start + seconds and live:
        due = int(rate * (now - start)) - sent
        if due > 0:
            batches: dict[int, list[str]] = {}
            for _ in range(due):
                batches.setdefault(i % len(live), []).append(pick_kind(rnd(), mix))
                i += 1
            for index, kinds in batches.items():
                live[index].submit(kinds, now)
            sent += due
        await asyncio.sleep(0.002)
    deadline = time.monotonic() + 30
    while any(c.pending for c in live if not c.closed) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return time.monotonic() - start


# ----- database hook


def share_rows(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM shares").fetchone()
        return int(row[0]) if row else 0


def share_rows_per_second(dsn: str, before: int, started: float, settle_seconds: float = 30.0) -> tuple[int, float]:
    """Rows that reached PostgreSQL since ``before``, waiting until the count stops growing; (rows, rows/s
    from ``started`` to when the last row arrived)."""
    last, last_change = before, time.monotonic()
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline:
        count = share_rows(dsn)
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 2.0:
            break
        time.sleep(0.25)
    rows = last - before
    return rows, rows / max(1e-9, last_change - started)


# ----- the run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_bench(args: argparse.Namespace, pool_pids: list[int], ports: dict[str, int],
                    holders: list[tuple[multiprocessing.process.BaseProcess, Connection]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = {"bench": "load", "server": ("durable floor" if args.floor_spool else "floor")
                              if args.baseline else "pool",
                              "signal": args.signal, "workers": args.workers,
                              "multiproc": args.workers > 1 or args.multiproc,
                              "client_uvloop": _uses_uvloop(), "pinned": bool(args.pin)}
    stratum = ports["stratum"]

    # 2. idle sessions
    rss0 = rss_bytes(process_tree(pool_pids[0]))
    cpu0 = cpu_seconds(process_tree(pool_pids[0]))
    t = time.monotonic()
    for _, conn in holders:
        conn.send(("go",))
    idle = idle_failures = 0
    for _, conn in holders:
        if not conn.poll(args.connect_timeout + 30):
            raise TimeoutError("an idle-session process did not report")
        _, ok, failed = conn.recv()
        idle += ok
        idle_failures += failed
    connect_seconds = time.monotonic() - t
    await asyncio.sleep(1.0)  # let the allocator settle before reading RSS
    pids = process_tree(pool_pids[0])
    rss1 = rss_bytes(pids)
    result.update(idle_sessions=idle, idle_failures=idle_failures, connect_seconds=round(connect_seconds, 2),
                  connect_cpu_us_per_session=round((cpu_seconds(pids) - cpu0) / max(1, idle) * 1e6, 1),
                  server_rss_mb=round(rss1 / 2**20, 1),
                  rss_bytes_per_session=round((rss1 - rss0) / idle) if idle else None)

    # 3. active sessions
    tally = Tally()

    def factory(i: int, waiter: asyncio.Future[bool]) -> Submitter:
        return Submitter(f"{ADDRESSES[i % len(ADDRESSES)]}.active{i}", waiter, tally)

    active, active_failures = await connect_many(loop, stratum, args.active, 200, 4, factory, args.connect_timeout)
    result.update(active_sessions=len(active), active_failures=active_failures)

    # 4. new blocks
    latencies: list[float] = []
    firsts: list[float] = []
    medians: list[float] = []
    reached: list[int] = []
    fetch_before = template_fetch_totals(ports["api"])
    for _ in range(args.blocks):
        for _, conn in holders:
            conn.send(("arm",))
            conn.recv()
        for c in active:
            c.clean_at = 0.0
        if args.signal == "udp":
            # the floor has no daemon then: any notification is a new block to it
            new_tip = "00" * 32 if args.baseline else await asyncio.to_thread(rpc, ports["daemon"], "bench_newblock")
            t0 = time.monotonic()
            send_block_notify("127.0.0.1", ports["notify"], new_tip)
        else:  # the daemon signals the block itself and says when it did
            _, t0 = await asyncio.to_thread(rpc, ports["daemon"], "bench_newblock_signal", args.signal)
        for _, conn in holders:
            conn.send(("collect", 30.0))
        deadline = time.monotonic() + 30
        while any(c.clean_at == 0.0 and not c.closed for c in active) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        times = [c.clean_at for c in active if c.clean_at]
        for _, conn in holders:
            while not conn.poll(0):
                await asyncio.sleep(0.005)
            times += conn.recv()[1]
        if times:
            latencies.append(max(times) - t0)
            firsts.append(min(times) - t0)
            medians.append(statistics.median(times) - t0)
        reached.append(len(times))
        await asyncio.sleep(0.5)
    pool_side = pool_side_notify_ms(ports["api"])
    fetch_after = template_fetch_totals(ports["api"])
    if fetch_before is not None and fetch_after is not None and fetch_after[1] > fetch_before[1]:
        fetch_ms = (fetch_after[0] - fetch_before[0]) / (fetch_after[1] - fetch_before[1]) * 1000
        result.update(pool_template_fetch_ms=round(fetch_ms, 2),
                      pool_template_fetches=int(fetch_after[1] - fetch_before[1]))
    else:
        result.update(pool_template_fetch_ms=None, pool_template_fetches=0)
    result.update(pool_new_block_to_broadcast_done_ms=round(pool_side[1], 1) if pool_side else None,
                  pool_new_blocks_timed=pool_side[0] if pool_side else 0)
    result.update(new_block_sessions=reached,
                  new_block_to_last_ms=[round(x * 1000, 1) for x in latencies],
                  new_block_to_first_ms=[round(x * 1000, 2) for x in firsts],
                  new_block_to_median_ms=[round(x * 1000, 1) for x in medians])

    # 5. submits
    mix = {"stale": args.stale, "duplicate": args.duplicate, "low": args.low}
    mix["valid"] = 1.0 - sum(mix.values())
    pids = process_tree(pool_pids[0])
    # the pool's supervisor serves no sessions; the floor's first process is one of its workers
    workers = pids[1:] if len(pids) > 1 and (args.workers > 1 or args.multiproc) and not args.baseline else pids
    result.update(sockets_per_worker=[socket_count(p) for p in workers])
    cpu_before = cpu_seconds(pids)
    threads_before = thread_cpu(pids)
    wakeups_before = wakeups(workers)
    rows_before = share_rows(args.dsn) if args.dsn else 0
    measure_spool = bool(args.dsn) and not args.baseline
    spool_before = spool_counts(ports["api"]) if measure_spool else None
    postgres_before = postgres_cpu_seconds() if args.dsn else 0.0
    started = time.monotonic()
    elapsed = await submit_load(active, args.rate, args.seconds, mix, tally)
    cpu = cpu_seconds(pids) - cpu_before
    result.update(server_rss_active_mb=round(rss_bytes(pids) / 2**20, 1),  # every session held, the load served
                  server_rss_peak_mb=round(rss_bytes(pids, "VmHWM:") / 2**20, 1))
    postgres_cpu = postgres_cpu_seconds() - postgres_before if args.dsn else 0.0
    spool_after = spool_counts(ports["api"]) if measure_spool else None
    threads_after = thread_cpu(pids)
    woken = wakeups(workers) - wakeups_before
    submits = sum(tally.answered.values())
    result.update(
        server_cpu_us_per_submit_by_thread={
            name: round((seconds - threads_before.get(name, 0.0)) / max(1, submits) * 1e6, 2)
            for name, seconds in sorted(threads_after.items())
            if seconds - threads_before.get(name, 0.0) > 0},
        loop_wakeups_per_1000_submits=round(woken / max(1, submits) * 1000, 1))
    if spool_before is not None and spool_after is not None:
        commits, records = spool_after[0] - spool_before[0], spool_after[1] - spool_before[1]
        result.update(spool_group_commits_per_second=round(commits / elapsed, 1),
                      spool_records_per_group_commit=round(records / max(1.0, commits), 2))
    if args.dsn:  # not the pool's: every postgres process of this machine, for scale
        result.update(postgres_cpu_us_per_submit=round(postgres_cpu / max(1, submits) * 1e6, 2))
    accepted = tally.answered["valid:accepted"]
    wrong = {k: v for k, v in tally.answered.items() if k.split(":")[1] != EXPECTED[k.split(":")[0]]}
    result.update(
        submits_sent=sum(tally.sent.values()), submits_answered=submits, accepted=accepted,
        answers=dict(tally.answered), unexpected_answers=wrong,
        submit_seconds=round(elapsed, 2), submits_per_second=round(submits / elapsed, 1),
        server_cpu_seconds=round(cpu, 2),
        server_cpu_ms_per_1000_submits=round(cpu / max(1, submits) * 1e6, 1),
        server_cpu_us_per_submit=round(cpu / max(1, submits) * 1e6, 2),
        rtt_p50_ms=round(percentile(tally.rtts, 0.5) * 1000, 3),
        rtt_p99_ms=round(percentile(tally.rtts, 0.99) * 1000, 3),
        client_hashes=tally.hashes,
    )
    if args.dsn:
        # TODO(lead): relies on the share writer filling the ``shares`` table from accepted shares.
        rows, per_second = share_rows_per_second(args.dsn, rows_before, started)
        result.update(db_share_rows=rows, db_share_rows_per_second=round(per_second, 1))
    else:
        result.update(db_share_rows_per_second="n/a (no database configured)")

    for c in active:
        if c.transport is not None:
            c.transport.abort()
    return result


def _uses_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def print_table(r: dict[str, Any]) -> None:
    last = r.get("new_block_to_last_ms") or []
    first = r.get("new_block_to_first_ms") or []
    signal = r.get("signal", "udp")
    rows = [
        ("server processes (workers)", f"{r['workers']} ("
         + (f"bench/floor_server.py: the {r['server']}" if r["server"].endswith("floor")
            else "stratum_pool.serve supervise" if r["multiproc"] else "cli serve") + ")"),
        ("idle sessions held", f"{r['idle_sessions']} (failed {r['idle_failures']}) in {r['connect_seconds']} s, "
                               f"{r['connect_cpu_us_per_session']} us server CPU each"),
        ("active (submitting) sessions", f"{r['active_sessions']} (failed {r['active_failures']})"),
        ("server RSS", f"{r['server_rss_mb']} MiB with the idle sessions ({r['rss_bytes_per_session']} B each); "
                       f"{r['server_rss_active_mb']} MiB after the submit phase, the active ones too; "
                       f"peak {r['server_rss_peak_mb']} MiB (VmHWM: since the server started)"),
        (f"new block ({signal}) -> last session clean_jobs",
         f"{', '.join(f'{x} ms' for x in last)} from {SIGNALS[signal]} (sessions {r['new_block_sessions']}; "
         f"median session {r['new_block_to_median_ms']} ms)"),
        (f"new block ({signal}) -> first session clean_jobs", f"{', '.join(f'{x} ms' for x in first)} "
                                                              "(the signal, the server's own part, one loopback read)"),
        ("  pool side: new block -> broadcast done", f"{r['pool_new_block_to_broadcast_done_ms']} ms mean over "
                                                 f"{r['pool_new_blocks_timed']} (its own histogram, worker 0)"),
        ("  pool side: template fetch + parse", "n/a (the floor fetches none)" if r["server"].endswith("floor")
         else f"{r['pool_template_fetch_ms']} ms mean over {r['pool_template_fetches']} "
              "(its getblocktemplate RPC histogram, worker 0)"),
        ("submits answered", f"{r['submits_answered']} of {r['submits_sent']} in {r['submit_seconds']} s "
                             f"({r['submits_per_second']}/s), accepted {r['accepted']}"),
        ("answers", ", ".join(f"{k}={v}" for k, v in sorted(r["answers"].items()))),
        ("unexpected answers", str(r["unexpected_answers"] or "none")),
        ("server CPU per 1,000 submits", f"{r['server_cpu_ms_per_1000_submits']} ms "
                                         f"({r['server_cpu_us_per_submit']} us per submit)"),
        ("  of which, by thread", ", ".join(f"{k} {v} us" for k, v in r["server_cpu_us_per_submit_by_thread"].items())),
        ("event-loop wake-ups per 1,000 submits", str(r["loop_wakeups_per_1000_submits"])),
        ("sockets per pool process", str(r["sockets_per_worker"])),
        ("submit round trip", f"p50 {r['rtt_p50_ms']} ms, p99 {r['rtt_p99_ms']} ms"),
        ("share rows/s into PostgreSQL", str(r["db_share_rows_per_second"])),
    ]
    if "spool_group_commits_per_second" in r:
        rows.append(("spool group commits (fsyncs)", f"{r['spool_group_commits_per_second']}/s, "
                                                     f"{r['spool_records_per_group_commit']} records each"))
    if "postgres_cpu_us_per_submit" in r:
        rows.append(("PostgreSQL's CPU per submit (not the pool's)", f"{r['postgres_cpu_us_per_submit']} us"))
    print_result(rows, r)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="stratum-pool end-to-end load test")
    p.add_argument("--idle", type=int, default=10_000, help="idle sessions (default 10,000)")
    p.add_argument("--holders", type=int, default=0,
                   help="client processes holding the idle sessions (default: one per 15,000)")
    p.add_argument("--sources", type=int, default=8, help="loopback source addresses 127.0.0.2.. (default 8)")
    p.add_argument("--active", type=int, default=200, help="submitting sessions (default 200)")
    p.add_argument("--rate", type=float, default=5000, help="submits per second (default 5,000)")
    p.add_argument("--seconds", type=float, default=20, help="submit phase length (default 20)")
    p.add_argument("--blocks", type=int, default=3, help="new blocks to time (default 3)")
    p.add_argument("--stale", type=float, default=0.02)
    p.add_argument("--duplicate", type=float, default=0.02)
    p.add_argument("--low", type=float, default=0.02)
    p.add_argument("--workers", type=int, default=1, help="pool processes on the port (stratum_pool.serve supervise)")
    p.add_argument("--multiproc", action="store_true",
                   help="run the pool through its supervisor (stratum_pool.serve supervise) even with one worker")
    p.add_argument("--longpoll", action="store_true", help="turn the pool's longpoll on")
    p.add_argument("--signal", choices=tuple(SIGNALS), default="udp",
                   help="how a new block is signalled: udp = the bench sends the notify datagram (default); "
                        "zmq = the stand-in daemon publishes hashblock (the pool's zmq_hashblock); blocknotify = "
                        "the stand-in daemon runs the README's -blocknotify command. The floor takes the same "
                        "signal (a ZMQ SUB of its own, or the same datagram)")
    p.add_argument("--dsn", default="", help="database.dsn: measure share rows/s reaching PostgreSQL")
    p.add_argument("--group-commit-ms", type=float, default=2.0,
                   help="database.group_commit_ms (with --dsn), or the durable floor's (--floor-spool)")
    p.add_argument("--load-interval", type=float, default=1.0, help="database.load_interval_seconds (with --dsn)")
    p.add_argument("--floor-spool", action="store_true",
                   help="with --baseline: the durable floor (each answer waits for the spool's group commit)")
    p.add_argument("--connect-timeout", type=float, default=120)
    p.add_argument("--log-level", default="warning")
    p.add_argument("--profile", default="",
                   help="py-spy record the (first) pool process into this SVG (a .txt name: collapsed stacks)")
    p.add_argument("--profile-native", action="store_true", help="with --profile: C frames too (py-spy --native)")
    p.add_argument("--pin", action="store_true",
                   help="one core for the pool (the last), the others for the load generator and the stand-in "
                        "daemon: keeps the clients off the pool's core (with one worker)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (config, logs)")
    p.add_argument("--baseline", action="store_true",
                   help="serve the clients with bench/floor_server.py (answers every submit true, unread) "
                        "instead of the pool: what the event loop and the kernel cost on their own")
    p.add_argument("--compare", action="store_true",
                   help="the floor, then the pool, with the same clients and load; prints the pool's figures "
                        "against the floor's")
    args = p.parse_args(argv)
    if args.compare:
        return compare(argv or sys.argv[1:])
    if args.baseline:  # the floor answers every submit true: send only valid ones
        args.stale = args.duplicate = args.low = 0.0

    raise_nofile()
    pool_cpus: set[int] | None = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or args.workers > 1:
            p.error("--pin needs at least 2 cores and one worker")
        pool_cpus = {cpus[-1]}
        os.sched_setaffinity(0, set(cpus[:-1]))  # this process and everything it starts, but the pool

    def pool_preexec() -> None:
        raise_nofile()
        if pool_cpus is not None:
            os.sched_setaffinity(0, pool_cpus)

    tmp = Path(tempfile.mkdtemp(prefix="stratum-bench-"))
    ports = {"stratum": free_port(), "daemon": free_port(), "notify": free_port(socket.SOCK_DGRAM),
             "api": free_port(), "zmq": free_port()}
    procs: list[subprocess.Popen[bytes]] = []
    holders: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        # idle-session processes first (forked before any event loop or thread exists here)
        n_holders = args.holders or max(1, -(-args.idle // 15_000))
        ctx = multiprocessing.get_context("fork")
        per = -(-args.idle // n_holders) if args.idle else 0
        for h in range(n_holders):
            count = min(per, args.idle - h * per)
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_holder_gate,
                               args=(child, ports["stratum"], max(0, count), 2 + h * args.sources, args.sources,
                                     args.connect_timeout), daemon=True)
            proc.start()
            holders.append((proc, parent))

        zmq_endpoint = f"tcp://127.0.0.1:{ports['zmq']}" if args.signal == "zmq" else ""
        if not args.baseline or args.signal != "udp":  # the floor needs the daemon only for its signals
            signal_args = (["--zmq-port", str(ports["zmq"])] if args.signal == "zmq"
                           else ["--blocknotify", blocknotify_shell_command("127.0.0.1", ports["notify"])]
                           if args.signal == "blocknotify" else [])
            daemon_log = open(tmp / "standin.log", "wb")
            procs.append(subprocess.Popen([PYTHON, str(ROOT / "bench" / "standin_daemon.py"), "--port",
                                           str(ports["daemon"]), *signal_args],
                                          stdout=daemon_log, stderr=subprocess.STDOUT))
            wait_port(ports["daemon"], time.monotonic() + 60, procs[-1])
        if args.baseline:
            floor_log = open(tmp / "floor.log", "wb")
            procs.append(subprocess.Popen([PYTHON, str(ROOT / "bench" / "floor_server.py"), "--port",
                                           str(ports["stratum"]), "--notify-port", str(ports["notify"]),
                                           *(["--zmq", zmq_endpoint] if zmq_endpoint else []),
                                           *(["--spool", str(tmp / "floor-spool"), "--group-commit-ms",
                                              str(args.group_commit_ms)] if args.floor_spool else []),
                                           "--workers", str(args.workers), "--difficulty", repr(SHARE_DIFFICULTY)],
                                          stdout=floor_log, stderr=subprocess.STDOUT, preexec_fn=pool_preexec))
            wait_port(ports["stratum"], time.monotonic() + 60, procs[-1])
            return _measure(args, procs, ports, holders, tmp)
        config = tmp / "pool.toml"
        write_config(config, stratum_port=ports["stratum"], daemon_port=ports["daemon"], notify_port=ports["notify"],
                     workers=args.workers, longpoll=args.longpoll, dsn=args.dsn, log_level=args.log_level,
                     api_port=ports["api"], group_commit_ms=args.group_commit_ms, zmq_hashblock=zmq_endpoint,
                     load_interval=args.load_interval)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if args.dsn:  # the schema first (safe to run twice), as an operator's ExecStartPre does
            subprocess.run([PYTHON, "-m", "stratum_pool.cli", "migrate", "--config", str(config)], env=env,
                           check=True, timeout=120, stdout=subprocess.DEVNULL)
        if args.workers > 1 or args.multiproc:
            cmd = [PYTHON, "-m", "stratum_pool.serve", "supervise", "--config", str(config)]
        else:
            cmd = [PYTHON, "-m", "stratum_pool.cli", "serve", "--config", str(config)]
        pool_log = open(tmp / "pool.log", "wb")
        procs.append(subprocess.Popen(cmd, stdout=pool_log, stderr=subprocess.STDOUT, env=env,
                                      preexec_fn=pool_preexec))
        wait_port(ports["stratum"], time.monotonic() + 120, procs[-1])
        if args.workers > 1 or args.multiproc:
            deadline = time.monotonic() + 60
            while len(process_tree(procs[-1].pid)) < args.workers + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        return _measure(args, procs, ports, holders, tmp)
    finally:
        _stop(args, procs, holders, tmp)


def _measure(args: argparse.Namespace, procs: list[subprocess.Popen[bytes]], ports: dict[str, int],
             holders: list[tuple[multiprocessing.process.BaseProcess, Connection]], tmp: Path) -> dict[str, Any]:
    """The bench proper, once the server (pool or floor) listens: the last of ``procs``."""
    profiler: subprocess.Popen[bytes] | None = None
    try:
        if args.profile:
            target = process_tree(procs[-1].pid)[-1]
            fmt = ["--format", "raw"] if args.profile.endswith(".txt") else []  # collapsed stacks, for reading
            profiler = subprocess.Popen([str(Path(PYTHON).parent / "py-spy"), "record", "-o", args.profile,
                                         "-p", str(target), "-r", "200", "--nonblocking", "--threads", *fmt,
                                         *(["--native"] if args.profile_native else [])],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        result = asyncio.run(run_bench(args, [procs[-1].pid], ports, holders))
        if not args.baseline or args.signal != "udp":
            result["daemon_stats"] = rpc(ports["daemon"], "bench_stats")["calls"]
        print_table(result)
        return result
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(30)


def _stop(args: argparse.Namespace, procs: list[subprocess.Popen[bytes]],
          holders: list[tuple[multiprocessing.process.BaseProcess, Connection]], tmp: Path) -> None:
    for _, conn in holders:
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            conn.send(("stop",))
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for h, _ in holders:
        h.join(5)
        if h.is_alive():
            h.kill()
    if args.keep:
        print(f"kept {tmp}", file=sys.stderr)
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _holder_gate(conn: Connection, port: int, count: int, first_source: int, sources: int, timeout: float) -> None:
    """Wait for the bench's go (the pool is up), then hold sessions."""
    msg = conn.recv()
    if msg[0] != "go":
        return
    _holder_main(conn, port, count, first_source, sources, timeout)


def compare(argv: list[str]) -> dict[str, Any]:
    """``--compare``: the same load against the floor, then the pool; the pool's figures as ratios to the
    floor's, printed as a table and one JSON line."""
    rest = [a for a in argv if a not in ("--compare", "--baseline")]
    print("== the floor (bench/floor_server.py)", flush=True)
    floor = main([*rest, "--baseline"])
    print("== the pool", flush=True)
    pool = main(rest)

    def best(r: dict[str, Any]) -> float:  # the fan-out's best of the timed blocks: the least noise
        return min(r["new_block_to_last_ms"]) if r["new_block_to_last_ms"] else float("nan")

    rows = {
        "server_cpu_us_per_submit": (floor["server_cpu_us_per_submit"], pool["server_cpu_us_per_submit"]),
        "new_block_to_last_ms_best": (best(floor), best(pool)),
        "new_block_to_first_ms_best": (min(floor["new_block_to_first_ms"] or [float("nan")]),
                                       min(pool["new_block_to_first_ms"] or [float("nan")])),
        "rtt_p50_ms": (floor["rtt_p50_ms"], pool["rtt_p50_ms"]),
        "rss_bytes_per_session": (floor["rss_bytes_per_session"] or 0, pool["rss_bytes_per_session"] or 0),
        "loop_wakeups_per_1000_submits": (floor["loop_wakeups_per_1000_submits"],
                                          pool["loop_wakeups_per_1000_submits"]),
    }
    print(f"== pool against the floor ({pool['workers']} worker(s), {pool['idle_sessions']} idle sessions, "
          f"{pool['submits_per_second']}/s; new blocks from {SIGNALS[pool['signal']]})")
    print(f"{'':34}{'floor':>12}{'pool':>12}{'pool - floor':>14}{'pool / floor':>14}")
    summary: dict[str, Any] = {"bench": "load-compare", "signal": pool["signal"], "workers": pool["workers"],
                               "pool_template_fetch_ms": pool["pool_template_fetch_ms"],
                               "pool_new_block_to_broadcast_done_ms": pool["pool_new_block_to_broadcast_done_ms"]}
    for name, (f, q) in rows.items():
        ratio = q / f if f else float("nan")
        print(f"{name:34}{f:12.2f}{q:12.2f}{q - f:14.2f}{ratio:14.2f}")
        summary[name] = {"floor": f, "pool": q, "ratio": round(ratio, 3)}
    print(json.dumps(summary), flush=True)
    return summary


def run() -> dict[str, Any]:
    """For bench/run.py: a short run, the pool against the floor."""
    return main(["--idle", "5000", "--seconds", "10", "--rate", "3000", "--blocks", "2", "--compare"])


if __name__ == "__main__":
    main()
