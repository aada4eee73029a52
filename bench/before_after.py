"""Two checkouts of the pool under the same benches, in one run, alternating: a change's cost in CPU per share.

    git worktree add /tmp/before <commit>        # the code before the change, built in place:
    (cd /tmp/before && ../path/to/.venv/bin/python setup.py build_ext --inplace -q)
    .venv/bin/python bench/before_after.py --before /tmp/before [--rounds 2] [--dsn postgresql://...]

For each round, each checkout in turn (before, then this one; the order flips every round so neither always
runs on a warmer machine) runs, with this interpreter and its own ``bench/`` scripts and package:

* ``bench_submit.py``: the pool's Python per accepted submit, in process (best of 5 inside);
* ``load.py`` at 20 sessions x 1,000 submits/s, at 200 x 2,000/s, and at 5,000/s over 200 sessions with
  10,000 idle: the server's CPU per submit (all its threads, from /proc), and with ``--dsn`` the same 5,000/s
  with the durable spool and the loader into PostgreSQL.

It prints every figure of every round and, per bench, the median of each side and after/before. Each load run
is bounded by load.py itself (connect timeout, submit seconds) and the whole by ``--timeout`` per step.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent

LOADS: dict[str, list[str]] = {
    "20 x 1,000/s": ["--idle", "0", "--active", "20", "--rate", "1000", "--blocks", "1"],
    "200 x 2,000/s": ["--idle", "0", "--active", "200", "--rate", "2000", "--blocks", "1"],
    "5,000/s, 200 + 10,000 idle": ["--idle", "10000", "--active", "200", "--rate", "5000", "--blocks", "1"],
}


def _json_line(output: str) -> dict[str, object]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no JSON line in the bench's output:\n{output[-2000:]}")


def _run(tree: Path, script: str, args: list[str], timeout: float) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = done.stdout[-2000:] + done.stderr[-2000:]
        raise RuntimeError(f"{tree}/bench/{script} {' '.join(args)} failed:\n{tail}")
    return _json_line(done.stdout)


def measure(tree: Path, dsn: str, only: str, seconds: float, timeout: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    if not only or "bench_submit" in only:
        submit = _run(tree, "bench_submit.py", ["--shares", "20000"], timeout)
        figures["bench_submit: Python per accepted submit (us)"] = float(submit["pool_us_per_submit"])  # type: ignore[arg-type]
    loads = dict(LOADS)
    if dsn:
        loads["5,000/s, 200 + 10,000 idle, --dsn"] = [*LOADS["5,000/s, 200 + 10,000 idle"], "--dsn", dsn]
    for name, args in loads.items():
        if only and only not in name:
            continue
        result = _run(tree, "load.py", [*args, "--seconds", str(seconds)], timeout)
        figures[f"load {name}: server CPU per submit (us)"] = float(result["server_cpu_us_per_submit"])  # type: ignore[arg-type]
        by_thread: dict[str, float] = result["server_cpu_us_per_submit_by_thread"]  # type: ignore[assignment]
        if len(by_thread) > 1:  # the durable path: the event loop apart from the spool writer and the loader
            for thread, value in by_thread.items():
                figures[f"load {name}: {thread} (us)"] = float(value)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, type=Path, help="a built checkout of the code before the change")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dsn", default="", help="also measure the durable path (a scratch database)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="submit phase of each load run (CPU is read in 10 ms ticks: longer is finer)")
    p.add_argument("--only", default="", help="only the benches whose name contains this (e.g. --dsn)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one bench step may take")
    args = p.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": AFTER}
    runs: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for round_ in range(args.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for side in order:
            figures = measure(trees[side], args.dsn, args.only, args.seconds, args.timeout)
            for name, value in figures.items():
                runs[side].setdefault(name, []).append(value)
                print(f"round {round_ + 1} {side:6} {name}: {value}", flush=True)
    summary = {}
    print()
    print(f"{'bench':62} {'before (runs)':24} {'after (runs)':24} after/before")
    for name in runs["after"]:
        before, after = runs["before"].get(name, [math.nan]), runs["after"][name]
        ratio = statistics.median(after) / statistics.median(before)
        summary[name] = {"before": before, "after": after, "ratio_of_medians": round(ratio, 3)}
        print(f"{name:62} {', '.join(map(str, before)):24} {', '.join(map(str, after)):24} {ratio:.3f}")
    print(json.dumps({"bench": "before_after", "before": str(trees["before"]), "figures": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
