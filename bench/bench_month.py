"""A month end to end: `citycredit run` on a generated city, timed per stage, peak memory.

    python -m bench.bench_generate --adults 2250000 --months 36 --out /tmp/cc-city-full
    python -m bench.bench_month --landing /tmp/cc-city-full --steady
    python -m bench.bench_month --landing /tmp/cc-city-full --months 2023-01,2023-02

--steady (what `make bench-month` runs) measures the month that matters: the city's last month
(the 36th of a 36-month city) with every month before it already in bronze and silver and the
previous month published — loaded by the bulk fast path (bench/history.py) rather than replayed
run by run (a full-scale month took 5-10 minutes; 35 of them would take hours). --months instead
runs the listed months in order, each as its own process, on whatever the warehouse holds.

A measured month runs as its own `citycredit run` process (as an operator runs it). Printed: wall
time and peak memory of the process tree (Python + the Spark JVM), the wall time of each stage
(from the run's own report), and the run's summary; then the month's three figures of issue 20:
the critical path (from the start of `citycredit run` to the end of publication: the moment the
first step after `publish` starts — erasure, since it runs after publication), the whole run
(incl. erasure and report) and erasure on its own (its stage time). Spark is sized from the
machine unless --driver-memory / --shuffle-partitions say otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.bench_score import measured


#: the run's progress words (`citycredit run` logs one on stderr as each step starts) → stage
STAGE_OF = {"check": "check", "land": "land+validate", "silver": "silver", "erase": "erase",
            "scan": "score", "score": "score", "publish": "publish", "report": "report"}


def run_month(month: str, env: dict, figures: dict) -> int:
    """`citycredit run --month` as its own process; the peak RSS is also kept per stage (the
    stage named by the latest progress line on its stderr), split into Python and the JVM, and
    figures[month]["published_after"] is the critical path: seconds from the start of the
    process to the first progress line of a stage after `publish` (None: publish never ran)."""
    started = time.strftime("%H:%M:%S")
    current = ["start"]
    err: list[str] = []
    launched = time.perf_counter()
    published_after: list[float] = []

    def follow(stream):
        for line in stream:
            err.append(line)
            words = line.split()
            # rich's log line: "[HH:MM:SS] <stage> <detail>   file.py:NN"
            for word in words[1:2] if words and words[0].startswith("[") else words[:1]:
                stage = STAGE_OF.get(word, current[0])
                if current[0] == "publish" and stage != "publish" and not published_after:
                    published_after.append(round(time.perf_counter() - launched, 1))
                current[0] = stage
    # the bench process itself is left out: it may hold the bulk-loaded history's memory
    with measured(month, figures, include_self=False, stage=lambda: current[0]):
        process = subprocess.Popen([sys.executable, "-m", "citycredit.cli", "run", "--month", month],
                                   env={**env, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=follow, args=(process.stderr,), daemon=True)
        reader.start()
        out = process.stdout.read()
        returncode = process.wait()
        reader.join()
    if current[0] == "publish" and not published_after:    # publish was the run's last step
        published_after.append(figures.get(month, {}).get("seconds"))
    figures[month]["published_after"] = published_after[0] if published_after else None
    print(f"\n=== {month} (started {started}): exit {returncode}, "
          f"{figures[month]['seconds']} s, peak RSS {figures[month]['peak_rss_gib']} GiB")
    print(out)
    if returncode:
        print("".join(err)[-4000:])
    return returncode


def stage_times(warehouse: Path, month: str) -> dict[str, float]:
    """The stage times the latest run of `month` recorded in run_report."""
    from citycredit import catalog
    from citycredit.io import tables

    location = catalog.RUN_REPORT.at(warehouse)
    if not tables.exists(location):
        return {}
    rows = [r for r in tables.read_arrow(location).to_pylist()
            if r["score_month"] == month and r["section"] == "stage"]
    if not rows:
        return {}
    latest = max(rows, key=lambda r: r["created_at"])["run_id"]
    return {r["name"]: json.loads(r["metrics"])["seconds"] for r in rows if r["run_id"] == latest}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-month-bench"))
    parser.add_argument("--months", help="comma-separated YYYY-MM, in order (replay mode)")
    parser.add_argument("--steady", action="store_true",
                        help="the city's last month, the months before it bulk-loaded")
    parser.add_argument("--reuse", action="store_true",
                        help="--steady: keep a warehouse this bench loaded before")
    parser.add_argument("--history-only", action="store_true",
                        help="with --steady: load the history (not measured) and stop; then run "
                             "with --reuse on a quiet box to measure the month alone")
    parser.add_argument("--spark-delta", choices=("auto", "on", "off"),
                        help="the engine Spark writes Delta with (spark.delta): 'off' measures the "
                             "Parquet + delta-rs bridge against delta-spark on the same city")
    parser.add_argument("--driver-memory", help="default: sized from the machine")
    parser.add_argument("--shuffle-partitions", help="default: sized from the machine")
    args = parser.parse_args(argv)
    if bool(args.months) == args.steady:
        parser.error("give either --steady or --months")

    landing = args.landing.resolve()
    if args.steady:
        # The run and the history's erasure rewrite the landing zone without erased persons, as
        # real runs do; on the generated city itself that would break the generator's ground
        # truth (rows by line) for the next bench. So they work on a copy.
        landing = args.warehouse.resolve().with_name(args.warehouse.name + "-landing")
        given = args.landing.resolve()
        if landing == given or landing in given.parents or given in landing.parents:
            parser.error(f"--landing {args.landing} is (or holds) the working copy {landing} "
                         "this bench replaces: give the generated city's own folder")
        if not (args.reuse and (args.warehouse / "_bulk_history.json").is_file()
                and landing.is_dir()):
            shutil.rmtree(landing, ignore_errors=True)
            shutil.copytree(args.landing, landing)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_SPARK_")}
    env.update(CITYCREDIT_LANDING=str(landing),
               CITYCREDIT_WAREHOUSE=str(args.warehouse.resolve()))
    if args.spark_delta:
        env["CITYCREDIT_SPARK_DELTA"] = args.spark_delta
    if args.driver_memory:
        env["CITYCREDIT_SPARK_DRIVER_MEMORY"] = args.driver_memory
    if args.shuffle_partitions:
        env["CITYCREDIT_SPARK_SHUFFLE_PARTITIONS"] = args.shuffle_partitions
    figures: dict = {}
    if args.months:
        months = [m.strip() for m in args.months.split(",") if m.strip()]
    else:
        city = sorted(p.name for p in (args.landing / "population").iterdir() if p.is_dir())
        months = city[-1:]
        marker = args.warehouse / "_bulk_history.json"
        if not (args.reuse and marker.is_file()):
            shutil.rmtree(args.warehouse, ignore_errors=True)
            os.environ.update(CITYCREDIT_LANDING=env["CITYCREDIT_LANDING"],
                              CITYCREDIT_WAREHOUSE=env["CITYCREDIT_WAREHOUSE"])
            from citycredit.config import load_settings
            from bench.history import load_history

            print(f"bulk-loading {len(city) - 1} months of history ({city[0]} … {city[-2]}) "
                  f"into {args.warehouse}")
            with measured("history", figures):
                loaded = load_history(load_settings(), city[:-1])
            marker.write_text(json.dumps({"months": city[:-1], **loaded}))
            print(f"history loaded: {loaded} ({figures['history']['seconds']} s, peak RSS "
                  f"{figures['history']['peak_rss_gib']} GiB)")
        if args.history_only:
            return 0
        print(f"steady state: month {months[0]}, the {len(city)}th of the city, "
              f"{len(city) - 1} months before it in bronze and silver")
    failed = 0
    for month in months:
        failed += run_month(month, env, figures) != 0
        stages = stage_times(args.warehouse, month)
        if stages:
            print(f"{month} stages (wall, s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
        peaks = figures[month].get("stages", {})
        if peaks:
            print(f"{month} peak RSS per stage (GiB, Python + JVM): " + ", ".join(
                f"{k} {p['peak_rss_gib']:.2f} ({p['python_gib']:.2f} + {p['jvm_gib']:.2f})"
                for k, p in peaks.items()))
        print(f"{month}: wall {figures[month]['seconds']:.1f} s, peak RSS of the run "
              f"{figures[month]['peak_rss_gib']:.2f} GiB")
        critical = figures[month].get("published_after")
        print(f"{month}: critical path (run start → published) "
              + (f"{critical:.1f} s" if critical is not None else "- (not published)")
              + f"; whole run incl. erasure and report {figures[month]['seconds']:.1f} s"
              + (f"; erasure on its own {stages['erase']:.1f} s" if "erase" in stages else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
