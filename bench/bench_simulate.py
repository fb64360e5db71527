"""`citycredit simulate` against scoring one scheme, on the same warehouse and month.

    make bench-month                                  # a full-scale warehouse (2.25 M adults)
    python -m bench.bench_simulate --warehouse /tmp/citycredit-month-bench --month 2023-02

Runs, each in its own process (JVM start included in both): jobs/score.py for the scheme (gold
scores and explanation lines, as the monthly run does), then jobs/simulate.py with the draft
(the adopted scheme and the draft from one scan, sandbox rows, report). Prints wall time and the
peak memory of each process tree, and the ratio; the issue's bound is 2×.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.bench_score import measured

PROJECT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-month-bench"))
    parser.add_argument("--month", required=True)
    parser.add_argument("--scheme", default="haibei")
    parser.add_argument("--draft", type=Path, default=PROJECT / "rules" / "drafts" /
                        "haibei-blood-15.yaml")
    parser.add_argument("--driver-memory", help="default: sized from the machine")
    parser.add_argument("--shuffle-partitions", help="default: sized from the machine")
    parser.add_argument("--reports", type=Path, default=Path("/tmp/citycredit-bench-reports"))
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_SPARK_")}
    env["CITYCREDIT_WAREHOUSE"] = str(args.warehouse.resolve())
    if args.driver_memory:
        env["CITYCREDIT_SPARK_DRIVER_MEMORY"] = args.driver_memory
    if args.shuffle_partitions:
        env["CITYCREDIT_SPARK_SHUFFLE_PARTITIONS"] = args.shuffle_partitions
    runs = {
        "score one scheme": [sys.executable, str(PROJECT / "jobs" / "score.py"),
                             "--month", args.month, "--scheme", args.scheme],
        "simulate adopted + draft": [
            sys.executable, str(PROJECT / "jobs" / "simulate.py"), "--scheme", args.scheme,
            "--draft", str(args.draft), "--month", args.month,
            "--report", str(args.reports / f"simulate-{args.month}.html"),
            "--json", str(args.reports / f"simulate-{args.month}.json")],
    }
    figures: dict = {}
    for label, command in runs.items():
        with measured(label, figures):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
        print(f"{label}: exit {done.returncode}, {figures[label]['seconds']} s, "
              f"peak RSS {figures[label]['peak_rss_gib']} GiB")
        print(done.stdout[-2000:])
        if done.returncode:
            print(done.stderr[-4000:])
            return 1
    ratio = figures["simulate adopted + draft"]["seconds"] / figures["score one scheme"]["seconds"]
    print(f"simulate / score one scheme = {ratio:.2f}× (bound 2×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
