"""Erasure on its own (issue 20 item 2): a month's new opt-outs erased from a loaded warehouse.

    python -m bench.bench_erasure [--warehouse /tmp/citycredit-month-bench] [--persons 6]

Works on the warehouse and landing copy `make bench-month` leaves (its 36-month steady city:
bronze and silver of every month, gold of the last two). Picks `--persons` adults at random
among those with findings (`--seed`), records their opt-outs as landing would (a row each in
bronze/optouts and silver/optouts of the warehouse's last month), then runs the erase step's
own function (`citycredit.privacy.erasure.erase_due`) and prints wall time, peak RSS, the rows
and files it removed, and the seconds per part it reports (landing, each table; parts overlap:
they run side by side). Destructive like the real thing: each run erases other persons for good,
so the figure stays comparable from run to run (same warehouse, new persons).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from pathlib import Path

import pyarrow as pa

from bench.bench_score import measured


def record_optouts(settings, month: str, numbers: list[str]) -> None:
    """Opt-out rows for `numbers` in bronze/optouts and silver/optouts, as landing and silver
    would write them for a delivery of `month`."""
    from citycredit import catalog
    from citycredit.identity import subject_keys
    from citycredit.io import tables

    source = next(s for s, conf in settings.sources.items() if conf["kind"] == "optouts")
    bronze = catalog.bronze(source, "optouts")
    requested = f"{month}-01"
    tables.write_arrow(pa.table({
        "source_id": [source] * len(numbers), "id_number": numbers,
        "requested_on": [requested] * len(numbers), "file": ["bench_erasure.csv"] * len(numbers),
        "line": list(range(2, len(numbers) + 2)), "month": [month] * len(numbers),
        "load_id": ["bench-erasure"] * len(numbers)}).select(bronze.columns),
        bronze.at(settings.warehouse), mode="append")
    tables.write_arrow(pa.table({
        "subject_key": subject_keys(numbers, settings.subject_key),
        "requested_on": pa.array([dt.date.fromisoformat(requested)] * len(numbers)),
        "known_from": [month] * len(numbers)}).cast(catalog.SILVER_OPTOUTS.schema),
        catalog.SILVER_OPTOUTS.at(settings.warehouse), mode="append")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-month-bench"))
    parser.add_argument("--landing", type=Path,
                        help="default: the bench-month's working copy beside the warehouse")
    parser.add_argument("--persons", type=int, default=6)
    parser.add_argument("--seed", type=int, default=None, help="default: the clock")
    args = parser.parse_args(argv)
    warehouse = args.warehouse.resolve()
    landing = (args.landing or warehouse.with_name(warehouse.name + "-landing")).resolve()
    if not (warehouse / "_bulk_history.json").is_file() or not landing.is_dir():
        parser.error(f"{warehouse} is not a loaded bench warehouse (or {landing} is missing): "
                     "run `make bench-month` (or bench.bench_month --steady --history-only)")
    os.environ.update(CITYCREDIT_WAREHOUSE=str(warehouse), CITYCREDIT_LANDING=str(landing))

    from citycredit import catalog
    from citycredit.config import load_settings
    from citycredit.io import tables
    from citycredit.privacy import erasure

    settings = load_settings()
    months = sorted(p.name.split("=", 1)[1]
                    for p in Path(catalog.SILVER_POPULATION.at(warehouse).path).iterdir()
                    if p.name.startswith("snapshot_month="))
    month = months[-1]
    seed = args.seed if args.seed is not None else time.time_ns() % 100_000
    with_findings = catalog.bronze("commitments", "findings").at(warehouse)
    numbers = sorted({n.strip().upper() for n in tables.read_arrow(
        with_findings, columns=["id_number"]).column(0).to_pylist() if n})
    chosen = random.Random(seed).sample(numbers, args.persons)
    record_optouts(settings, month, chosen)

    figures: dict = {}
    with measured("erasure", figures):
        done = erasure.erase_due(settings, month, f"bench-erasure-{seed}")
    print(f"erasure of {len(done.persons)} person(s) (seed {seed}) on {len(months)} months "
          f"({warehouse}): {sum(done.rows.values())} rows from {len(done.rows)} tables, "
          f"{sum(f.rows_removed for f in done.landing)} rows from {len(done.landing)} landing "
          f"files, {done.tables_purged} tables purged")
    print("seconds per part (side by side, so they add up to more than the wall): " + ", ".join(
        f"{part} {seconds:.1f}" for part, seconds in sorted(done.seconds.items(),
                                                            key=lambda kv: -kv[1])
        if seconds >= 0.5))
    print(f"erasure on its own: {figures['erasure']['seconds']:.1f} s, peak RSS "
          f"{figures['erasure']['peak_rss_gib']:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
