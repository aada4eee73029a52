"""bench/bench_sv2_session.py runs: every share it feeds is accepted on both channel types and on V1 (the bench
asserts it), and it prints one figure per protocol."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

import bench_sv2_session  # noqa: E402


def test_the_sv2_session_bench_runs_and_every_share_is_accepted() -> None:
    result = bench_sv2_session.run(shares=40)
    assert set(result) == {"sv2_extended", "sv2_standard", "v1", "native_check"}
    assert all(value > 0 for value in result.values())
