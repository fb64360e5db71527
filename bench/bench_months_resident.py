"""What months_resident costs the scoring job: the scored subjects of one month with and
without it, over a population history of --months monthly snapshots (issue 20: not seen by
bench.profile_scoring, whose warehouse has one snapshot).

    python -m bench.bench_months_resident [--adults 450000] [--months 36]

Writes --months snapshots of the same --adults persons (random 64-hex subject keys, adults,
active) to silver/population of a temporary warehouse with delta-rs, then times on the embedded
Spark session `silver.adults.scored_subjects` for the last month, counted and summed: first
with the month's snapshot only (once to warm the session up, once timed), then twice with
months_resident (every snapshot up to the month). Prints seconds for each and the difference.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adults", type=int, default=450_000)
    parser.add_argument("--months", type=int, default=36)
    args = parser.parse_args()

    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake
    from pyspark.sql import functions as F

    from citycredit.config import load_settings
    from citycredit.io import tables
    from citycredit.io.spark import get_spark
    from citycredit.months import shift_month
    from citycredit.silver.adults import scored_subjects

    last = "2026-10"
    months = [shift_month(last, -k) for k in reversed(range(args.months))]
    root = Path(tempfile.mkdtemp(prefix="cc-resid-"))
    try:
        rng = np.random.default_rng(7)
        keys = pa.array([rng.bytes(32).hex() for _ in range(args.adults)])
        births = pa.array(dt.date(1960, 1, 1) + dt.timedelta(days=int(d))
                          for d in rng.integers(0, 365 * 40, args.adults))
        n = args.adults
        started = time.perf_counter()
        for month in months:
            write_deltalake(str(root / "silver" / "population"), pa.table({
                "subject_key": keys, "birth_date": births, "sex": pa.array(["F"] * n),
                "district": pa.array(["371002"] * n), "residency": pa.array(["hukou"] * n),
                "status": pa.array(["active"] * n), "snapshot_month": pa.array([month] * n)}),
                partition_by=["snapshot_month"], mode="append")
        print(f"population: {args.months} snapshots of {n:,} persons "
              f"({args.months * n / 1e6:.1f} M rows) written in {time.perf_counter() - started:.1f} s")
        settings = load_settings(ROOT / "conf", env="local", environ={
            "CITYCREDIT_WAREHOUSE": str(root), "CITYCREDIT_LANDING": str(root)})
        spark = get_spark(settings, "bench-months-resident")
        population = str(root / "silver" / "population")
        optouts = spark.createDataFrame([], "subject_key string, requested_on date")
        timed = {}
        for label, whole in (("warm-up", False), ("month's snapshot only", False),
                             ("with months_resident", True), ("with months_resident, again", True)):
            frame = (tables.read(spark, population) if whole
                     else tables.read(spark, population, where={"snapshot_month": last}))
            began = time.perf_counter()
            row = scored_subjects(frame, optouts, last, whole).agg(
                F.count(F.lit(1)).alias("n"),
                F.sum("months_resident" if whole else F.lit(0)).alias("months")).first()
            timed[label] = time.perf_counter() - began
            print(f"{label}: {timed[label]:.1f} s ({row.n:,} subjects, Σ months_resident "
                  f"{row.months:,})", flush=True)
        extra = min(timed["with months_resident"], timed["with months_resident, again"]) \
            - timed["month's snapshot only"]
        print(f"months_resident costs {extra:.1f} s at {n:,} adults and {args.months} snapshots")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
