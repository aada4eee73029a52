"""The sans-IO cost of one accepted share, Stratum V2 beside V1 in one run: frames through ``Sv2Session`` (an
extended and a standard channel) and lines through V1's ``Session``, the same share core judging both.

    .venv/bin/python bench/bench_sv2_session.py [--shares 10000]

No sockets, no Noise (its cost per frame is the encrypted transport's, measured apart), no pool accounting:
what differs between the protocols is the decode, the dispatch and the encoded answer. Each round opens fresh
sessions (new extranonces, so no share repeats) on one job with a 12-level merkle branch, finds ``--shares``
distinct shares per protocol with the native share check at a tiny fixed difficulty, then times feeding
them; the least mean time per share over 5 rounds is printed in microseconds, with the native check alone
beside it (the hashing every protocol pays).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from stratum_pool import _native  # noqa: E402
from stratum_pool.coins import get_coin  # noqa: E402
from stratum_pool.jobs.job import Job, Template  # noqa: E402
from stratum_pool.protocol.actions import ShareAccepted  # noqa: E402
from stratum_pool.protocol.session import Session, SessionConfig  # noqa: E402
from stratum_pool.protocol.v2 import messages as m  # noqa: E402
from stratum_pool.protocol.v2.session import Sv2Session  # noqa: E402

COIN = get_coin("bitcoin", "regtest")
DIFFICULTY = 1e-9  # about 4 hashes per share
ROUNDS = 5
NOW = 1_700_000_100.0
USER = "bcrt1qbench.rig"
BRANCH = tuple(_native.sha256d(bytes([i])) for i in range(12))


class Work:
    """One job in the share core's book."""

    def __init__(self) -> None:
        template = Template(COIN, 800_000, bytes(range(32)), 0x20000000, 0x207FFFFF, (1 << 256) - 1, 1_700_000_000,
                            1_699_999_000, 312_500_000, (), (), BRANCH, None, None)
        coinb1 = bytes.fromhex("01000000010000000000000000000000000000000000000000000000000000000000ffffffff20")
        coinb2 = bytes.fromhex("ffffffff0100f2052a010000001976a914") + bytes(20) + bytes.fromhex("88ac00000000")
        self.job = Job("00000001", template, coinb1, coinb2, b"".join(BRANCH), True)
        self.book = _native.JobBook()
        self.book.add(self.job)
        self.book.tip = template.prevhash

    def current_job(self, payout_key: str) -> Job:
        return self.job

    def get_job(self, job_id: str) -> Job | None:
        return self.book.get(job_id)

    def is_stale(self, job: Job) -> bool:
        return self.book.is_stale(job)


def config() -> SessionConfig:
    return SessionConfig(COIN, extranonce2_size=4, initial_difficulty=DIFFICULTY, minimum_difficulty=DIFFICULTY,
                         vardiff_enabled=False)


def find(job: Job, extranonce1: bytes, extranonce2: bytes, start: int) -> tuple[int, int]:
    """(nonce, next start) of the first share at DIFFICULTY from ``start``."""
    t = job.template
    target = int(COIN.diff1_target / DIFFICULTY)
    for nonce in itertools.count(start):
        _, pow_hash = _native.check_share(COIN.algorithm_id, job.coinb1, extranonce1, extranonce2, job.coinb2,
                                          job.branch, t.version, t.prevhash, t.curtime, t.nbits, nonce)
        if int.from_bytes(pow_hash, "little") <= target:
            return nonce, nonce + 1
    raise AssertionError("unreachable")


def sv2_round(work: Work, extended: bool, shares: int, en1: bytes) -> tuple[Sv2Session, list[bytes]]:
    session = Sv2Session(config(), work, lambda a: b"", "s1", lambda: en1, lambda _: None, NOW)
    session.feed_frame(m.SetupConnection(0, 2, 2, 0 if extended else 1, "", 0, "", "", "", "").encode(), NOW)
    if extended:
        session.feed_frame(m.OpenExtendedMiningChannel(1, USER, 0.0, (1 << 256) - 1, 4).encode(), NOW)
    else:
        session.feed_frame(m.OpenStandardMiningChannel(1, USER, 0.0, (1 << 256) - 1).encode(), NOW)
    frames = []
    job, start = work.job, 0
    for i in range(shares):
        en2 = i.to_bytes(4, "big") if extended else bytes(4)
        nonce, start = find(job, en1, en2, 0 if extended else start)
        t = job.template
        if extended:
            frames.append(m.SubmitSharesExtended(1, i, 1, nonce, t.curtime, t.version, en2).encode())
        else:
            frames.append(m.SubmitSharesStandard(1, i, 1, nonce, t.curtime, t.version).encode())
    return session, frames


def v1_round(work: Work, shares: int, en1: bytes) -> tuple[Session, list[bytes]]:
    session = Session(config(), work, lambda a: b"", "s1", en1, lambda: NOW)
    session.feed_line(b'{"id":1,"method":"mining.subscribe","params":[]}')
    session.feed_line(b'{"id":2,"method":"mining.authorize","params":["%s","x"]}' % USER.encode())
    t = work.job.template
    lines = []
    for i in range(shares):
        en2 = i.to_bytes(4, "big")
        nonce, _ = find(work.job, en1, en2, 0)
        lines.append(b'{"id":%d,"method":"mining.submit","params":["%s","00000001","%s","%08x","%08x"]}\n'
                     % (i + 3, USER.encode(), en2.hex().encode(), t.curtime, nonce))
    return session, lines


def run(shares: int = 10_000) -> dict[str, float]:
    work = Work()
    best = {"sv2_extended": float("inf"), "sv2_standard": float("inf"), "v1": float("inf"), "native_check": 0.0}
    en1s = (i.to_bytes(4, "big") for i in itertools.count(1))
    for _ in range(ROUNDS):
        for name in ("sv2_extended", "sv2_standard"):
            session, frames = sv2_round(work, name == "sv2_extended", shares, next(en1s))
            feed = session.feed_frame
            started = time.perf_counter()
            out = [feed(frame, NOW) for frame in frames]
            elapsed = time.perf_counter() - started
            assert sum(isinstance(a, ShareAccepted) for actions in out for a in actions) == shares, name
            best[name] = min(best[name], elapsed / shares * 1e6)
        v1, lines = v1_round(work, shares, next(en1s))
        started = time.perf_counter()
        out = [v1.feed_line(line, NOW) for line in lines]
        elapsed = time.perf_counter() - started
        assert sum(isinstance(a, ShareAccepted) for actions in out for a in actions) == shares, "v1"
        best["v1"] = min(best["v1"], elapsed / shares * 1e6)
    t = work.job.template
    started = time.perf_counter()
    for nonce in range(shares):
        _native.check_share(COIN.algorithm_id, work.job.coinb1, b"\x00" * 4, b"\x00" * 4, work.job.coinb2,
                            work.job.branch, t.version, t.prevhash, t.curtime, t.nbits, nonce)
    best["native_check"] = (time.perf_counter() - started) / shares * 1e6
    return {k: round(v, 2) for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", type=int, default=10_000)
    args = parser.parse_args()
    result = run(args.shares)
    print(json.dumps({"microseconds_per_accepted_share": result, "shares": args.shares, "rounds": ROUNDS}))


if __name__ == "__main__":
    main()
