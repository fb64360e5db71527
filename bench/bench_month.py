"""A month end to end at full scale: `citycredit run` on a generated city, timed and measured.

    python -m bench.bench_generate --adults 2250000 --months 36 --out /tmp/cc-city-full
    python -m bench.bench_month --landing /tmp/cc-city-full --months 2023-01,2023-02

Each month runs as its own `citycredit run` process (as an operator would run it); prints its wall
time, the peak memory of the process tree (Python + the Spark JVM), and the run's own summary with
its stage timings. The warehouse is kept, so later months can be added with --months.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_score import measured


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-month-bench"))
    parser.add_argument("--months", required=True, help="comma-separated YYYY-MM, in order")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", default="16")
    args = parser.parse_args(argv)

    env = {**os.environ, "CITYCREDIT_LANDING": str(args.landing.resolve()),
           "CITYCREDIT_WAREHOUSE": str(args.warehouse.resolve()),
           "CITYCREDIT_SPARK_DRIVER_MEMORY": args.driver_memory,
           "CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": args.shuffle_partitions}
    figures: dict = {}
    failed = 0
    for month in [m.strip() for m in args.months.split(",") if m.strip()]:
        started = time.strftime("%H:%M:%S")
        with measured(month, figures):
            done = subprocess.run([sys.executable, "-m", "citycredit.cli", "run", "--month", month],
                                  env=env, capture_output=True, text=True)
        print(f"\n=== {month} (started {started}): exit {done.returncode}, "
              f"{figures[month]['seconds']} s, peak RSS {figures[month]['peak_rss_gb']} GB")
        print(done.stdout)
        if done.returncode:
            print(done.stderr[-4000:])
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
