"""What months_resident costs the month: counted by the scoring job from every population
snapshot, against kept by the silver step in silver/residence (issue 20: not seen by
bench.profile_scoring, whose warehouse has one snapshot).

    python -m bench.bench_months_resident [--adults 450000] [--months 36]

Writes --months snapshots of the same --adults persons (random 64-hex subject keys, adults,
active) to silver/population of a temporary warehouse with delta-rs, then prints:
- the silver step's side: silver/residence counted once from every snapshot (a warehouse kept
  before it; `silver.residence.recount_residence`), then one more month's snapshot and the state
  advanced by it (`keep_residence`, what every month's silver step does);
- the scoring job's side, on the embedded Spark session (the month's scored subjects counted and
  summed): the month's snapshot only (once to warm the session up, once timed), months_resident
  counted from every snapshot (twice), and months_resident from silver/residence
  (`scoring.job.load_inputs`, twice);
- peak RSS of this process (Python and Arrow; the JVM apart).
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
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

    from citycredit import catalog
    from citycredit.config import load_settings
    from citycredit.io import tables
    from citycredit.io.spark import get_spark
    from citycredit.months import shift_month
    from citycredit.scoring.job import load_inputs
    from citycredit.silver.adults import scored_subjects
    from citycredit.silver.residence import keep_residence, recount_residence

    last = "2026-10"
    months = [shift_month(last, -k) for k in reversed(range(args.months))]
    root = Path(tempfile.mkdtemp(prefix="cc-resid-"))
    try:
        rng = np.random.default_rng(7)
        keys = pa.array([rng.bytes(32).hex() for _ in range(args.adults)])
        births = pa.array(dt.date(1960, 1, 1) + dt.timedelta(days=int(d))
                          for d in rng.integers(0, 365 * 40, args.adults))
        n = args.adults
        settings = load_settings(ROOT / "conf", env="local", environ={
            "CITYCREDIT_WAREHOUSE": str(root), "CITYCREDIT_LANDING": str(root)})
        population = catalog.SILVER_POPULATION.at(settings)

        def write_snapshot(month):
            write_deltalake(population.path, pa.table({
                "subject_key": keys, "birth_date": births, "sex": pa.array(["F"] * n),
                "district": pa.array(["371002"] * n), "residency": pa.array(["hukou"] * n),
                "status": pa.array(["active"] * n), "snapshot_month": pa.array([month] * n)}),
                partition_by=["snapshot_month"], mode="append")

        started = time.perf_counter()
        for month in months:
            write_snapshot(month)
        print(f"population: {args.months} snapshots of {n:,} persons "
              f"({args.months * n / 1e6:.1f} M rows) written in {time.perf_counter() - started:.1f} s")
        for table in (catalog.SILVER_FINDINGS, catalog.SILVER_APPEALS, catalog.SILVER_OPTOUTS):
            tables.write_arrow(table.schema.empty_table(), table.at(settings))

        # the silver step's side
        began = time.perf_counter()
        persons = recount_residence(settings)
        print(f"silver: silver/residence counted from {args.months} snapshots in "
              f"{time.perf_counter() - began:.1f} s ({persons:,} persons; once, for a warehouse "
              "kept before it)", flush=True)
        following = shift_month(last, 1)
        write_snapshot(following)
        began = time.perf_counter()
        done = keep_residence(settings, following, None)
        print(f"silver: the state {done} by {following}'s snapshot in "
              f"{time.perf_counter() - began:.1f} s (every month's silver step)", flush=True)

        # the scoring job's side, for the month the state is as of
        spark = get_spark(settings, "bench-months-resident")
        timed = {}
        for label, whole in (("warm-up", None), ("month's snapshot only", None),
                             ("counted from every snapshot", "count"),
                             ("counted from every snapshot, again", "count"),
                             ("from silver/residence", "kept"),
                             ("from silver/residence, again", "kept")):
            began = time.perf_counter()
            if whole == "kept":
                subjects = load_inputs(spark, settings, following, True).subjects
            else:
                frame = (tables.read(spark, population.path) if whole
                         else tables.read(spark, population.path,
                                          where={"snapshot_month": following}))
                optouts = tables.read(spark, catalog.SILVER_OPTOUTS.at(settings))
                subjects = scored_subjects(frame, optouts, following, whole == "count")
            row = subjects.agg(F.count(F.lit(1)).alias("n"), F.sum(
                "months_resident" if whole else F.lit(0)).alias("months")).first()
            timed[label] = time.perf_counter() - began
            print(f"scoring: {label}: {timed[label]:.1f} s ({row.n:,} subjects, "
                  f"Σ months_resident {row.months:,})", flush=True)
        alone = timed["month's snapshot only"]
        counted = min(timed["counted from every snapshot"],
                      timed["counted from every snapshot, again"]) - alone
        kept = min(timed["from silver/residence"], timed["from silver/residence, again"]) - alone
        print(f"months_resident costs the scoring job {counted:.1f} s counted, {kept:.1f} s from "
              f"silver/residence, at {n:,} adults and {args.months + 1} snapshots")
        print(f"peak RSS (this process): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
