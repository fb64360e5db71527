"""One small month end to end on each Delta engine of Spark: delta-spark (spark.delta: on) and the
old Parquet + delta-rs bridge (spark.delta: off), each `citycredit run` its own process, the two
interleaved (bridge, delta-spark, bridge, …) so that a busy machine slows both alike. Prints wall
time and peak RSS (Python + JVM) per run and the median ratio delta-spark / bridge
(docs/cluster.md). Small data only: a generated city of --adults adults.

    python -m bench.bench_engines --adults 3000 --rounds 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_score import measured
from citycredit.synth import generate_city


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adults", type=int, default=3000)
    ap.add_argument("--month", default="2026-03")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--driver-memory", default="2g")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cc-engines-"))
    try:
        landing = work / "landing"
        generate_city(landing, adults=args.adults, months=1, end=args.month, seed=5, bad_share=0.0)
        figures: dict = {}
        for round_ in range(args.rounds):
            for mode in ("off", "on"):
                warehouse = work / f"warehouse-{mode}-{round_}"
                env = {**os.environ, "CITYCREDIT_LANDING": str(landing),
                       "CITYCREDIT_WAREHOUSE": str(warehouse), "CITYCREDIT_SPARK_DELTA": mode,
                       "CITYCREDIT_SPARK_DRIVER_MEMORY": args.driver_memory}
                label = f"{mode}-{round_}"
                with measured(label, figures, include_self=False):
                    done = subprocess.run([sys.executable, "-m", "citycredit.cli", "run",
                                           "--month", args.month], env=env,
                                          capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return done.returncode
                engine = "delta-spark" if mode == "on" else "bridge"
                print(f"{engine:12s} round {round_}: wall {figures[label]['seconds']:.1f} s, "
                      f"peak RSS {figures[label]['peak_rss_gib']:.2f} GiB", flush=True)
        walls = {m: statistics.median(figures[f"{m}-{r}"]["seconds"] for r in range(args.rounds))
                 for m in ("off", "on")}
        print(f"median wall: bridge {walls['off']:.1f} s, delta-spark {walls['on']:.1f} s, "
              f"delta-spark / bridge = {walls['on'] / walls['off']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
