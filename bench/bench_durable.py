"""The durable path against the in-memory one, in one run: server CPU per accepted submit and the submit round
trip, with and without PostgreSQL (the spool's group commit, the durable acknowledgement and the loader), at
the loads of issue 19's first target.

    .venv/bin/python bench/bench_durable.py [--rounds 2] [--seconds 15] [--group-commit-ms 2 [4 ...]]
        [--dsn postgresql://postgres@127.0.0.1/sp_bench] [--only "200 x"]

Each round runs every load in memory and durably (once per group-commit window given), alternating which
goes first, with ``bench/load.py`` (the same clients, stand-in daemon and share mix), and the floor beside the
pool: ``bench/floor_server.py``, and the durable floor (``--floor-spool``: each ``true`` waits for the same
spool's group commit, nothing parsed, nothing loaded), so that what durability itself costs on this machine
reads apart from what the pool adds to it. "x memory" is the pool against the pool in memory, and the floor
against the floor. The pool's CPU is all
its threads, from /proc (the durable figure includes the spool writer and the loader threads); PostgreSQL's
own CPU is printed beside it, not in it; so is the server's peak resident memory (VmHWM: at 200 x 2,000/s
durable, issue 19's fifth target). Prints a table of medians (every run's figure in the JSON line).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

LOADS: dict[str, list[str]] = {
    "20 x 1,000/s": ["--idle", "0", "--active", "20", "--rate", "1000", "--blocks", "1"],
    "200 x 2,000/s": ["--idle", "0", "--active", "200", "--rate", "2000", "--blocks", "1"],
    "20 x 5,000/s": ["--idle", "0", "--active", "20", "--rate", "5000", "--blocks", "1"],
}


def run_load(args: list[str], timeout: float) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(HERE / "load.py"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no JSON line from load.py:\n{done.stdout[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", default="postgresql://postgres@127.0.0.1/sp_bench", help="a scratch database")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--group-commit-ms", type=float, nargs="+", default=[2.0])
    p.add_argument("--only", default="", help="only the loads whose name contains this")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    variants = ["floor", *(f"floor durable {ms:g} ms" for ms in args.group_commit_ms),
                "memory", *(f"durable {ms:g} ms" for ms in args.group_commit_ms)]
    runs: dict[str, dict[str, list[dict[str, object]]]] = {}
    for rnd in range(args.rounds):
        for name, load in LOADS.items():
            if args.only and args.only not in name:
                continue
            order = variants if rnd % 2 == 0 else variants[::-1]
            for variant in order:
                extra = ["--baseline"] if variant.startswith("floor") else []
                if "durable" in variant:
                    ms = variant.split()[-2]
                    extra += (["--floor-spool"] if variant.startswith("floor") else ["--dsn", args.dsn])
                    extra += ["--group-commit-ms", ms]
                result = run_load([*load, "--seconds", str(args.seconds), *extra], args.timeout)
                runs.setdefault(name, {}).setdefault(variant, []).append(result)
                print(f"round {rnd + 1} {name} {variant}: {result['server_cpu_us_per_submit']} us per submit, "
                      f"p99 {result['rtt_p99_ms']} ms", file=sys.stderr, flush=True)

    def med(results: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(r[key]) for r in results)  # type: ignore[arg-type]

    print(f"{'load':14} {'variant':20} {'CPU us/submit':>14} {'x memory':>9} {'+ us':>6} {'event loop':>11} "
          f"{'writer':>7} {'loader':>7} {'p50 ms':>7} {'p99 ms':>7} {'recs/commit':>11} {'postgres us':>11} "
          f"{'peak RSS MiB':>12}")
    summary: dict[str, object] = {}
    for name, by_variant in runs.items():
        for variant in variants:
            results = by_variant[variant]
            # the pool against its in-memory self; the floor against the in-memory floor
            memory = med(by_variant["floor" if variant.startswith("floor") else "memory"], "server_cpu_us_per_submit")
            cpu = med(results, "server_cpu_us_per_submit")

            def thread(label: str, results: list[dict[str, object]] = results) -> str:
                values = [float(r["server_cpu_us_per_submit_by_thread"].get(label, 0.0))  # type: ignore[attr-defined]
                          for r in results]
                return f"{statistics.median(values):.1f}"

            durable = "durable" in variant
            spool_figures = durable and not variant.startswith("floor")
            print(f"{name:14} {variant:20} {cpu:14.1f} {cpu / memory:9.2f} {cpu - memory:6.1f} "
                  f"{thread('event loop (main thread)'):>11} "
                  f"{thread('spool writer') if durable else '':>7} {thread('loader') if spool_figures else '':>7} "
                  f"{med(results, 'rtt_p50_ms'):7.2f} {med(results, 'rtt_p99_ms'):7.2f} "
                  f"{med(results, 'spool_records_per_group_commit') if spool_figures else 0:11.2f} "
                  f"{med(results, 'postgres_cpu_us_per_submit') if spool_figures else 0:11.1f} "
                  f"{med(results, 'server_rss_peak_mb'):12.1f}")
            summary[f"{name} {variant}"] = {
                "cpu_us_per_submit": [r["server_cpu_us_per_submit"] for r in results],
                "x_memory_median": round(cpu / memory, 3),
                "by_thread": [r["server_cpu_us_per_submit_by_thread"] for r in results],
                "rtt_p50_ms": [r["rtt_p50_ms"] for r in results], "rtt_p99_ms": [r["rtt_p99_ms"] for r in results],
                "records_per_commit": [r.get("spool_records_per_group_commit") for r in results],
                "postgres_cpu_us_per_submit": [r.get("postgres_cpu_us_per_submit") for r in results],
                "peak_rss_mb": [r.get("server_rss_peak_mb") for r in results],
            }
    print(json.dumps({"bench": "durable", "rounds": args.rounds, "seconds": args.seconds, "runs": summary}))
    return 0


def run() -> int:
    """For bench/run.py: one round, shorter loads."""
    return main(["--rounds", "1", "--seconds", "10"])


if __name__ == "__main__":
    sys.exit(main())
