"""The scoring job's plan, per operator: where the time goes and how many rows each step moves.

    python -m bench.profile_scoring --adults 2250000 --findings 15000000   # full scale
    python -m bench.profile_scoring --adults 100000 --findings 700000 --keep /tmp/cc-prof
    python -m bench.profile_scoring --warehouse /tmp/citycredit-month-bench --month 2026-12

The third form profiles a warehouse a real run left (`make bench-month`'s: 36 months of
population, silver/residence, the month's own deliveries); its gold rows go under run_id
'profile', which publication never promotes.

Synthesises silver as `make bench` does (bench.bench_score.synthesise_silver), runs the real job
(`scoring.job.run_scoring`, every scheme of rules/, gold written) in this process with Spark's
UI on 127.0.0.1 (not browsed: its REST API is read at the end), and prints, from Spark's own
SQL metrics of every query the job ran: per operator kind (Exchange, Sort, Window,
HashAggregate, Scan, write, …) the summed time metrics (seconds), rows out, and spill bytes;
then the ten costliest single operators with their query. Figures are Spark's: a busy machine
inflates the times, not the rows. ISSUE 20 item 3 asks for this table in the note.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "min": 60.0}
_SIZE = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _total(value: str, kind: str) -> float:
    """The total of a metric as the REST API prints it: '123' (sum), or 'total (min, med,
    max)\\n12.3 s (…)' for timings and sizes."""
    text = value.split("\n")[-1] if "\n" in value else value
    first = text.split(" (")[0].strip().replace(",", "")
    if kind == "time":
        match = re.fullmatch(r"([\d.]+)\s*(ms|s|m|min|h)", first)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if kind == "size":
        match = re.fullmatch(r"([\d.]+)\s*(B|KiB|MiB|GiB|TiB)", first)
        return float(match.group(1)) * _SIZE[match.group(2)] if match else 0.0
    try:
        return float(first)
    except ValueError:
        return 0.0


def _kind(metric: str) -> str | None:
    name = metric.lower()
    if "spill" in name:
        return "spill"
    if "time" in name or "duration" in name:
        return "time"
    if name in ("number of output rows", "shuffle records written"):
        return "rows"
    return None


def operator_table(executions: list[dict]) -> tuple[dict, list]:
    """Per operator kind: {'time': s, 'rows': n, 'spill': bytes, 'count': n}; and every single
    operator as (seconds, rows, node name, query description)."""
    per_kind: dict[str, dict] = defaultdict(lambda: {"time": 0.0, "rows": 0.0, "spill": 0.0,
                                                     "count": 0})
    single = []
    seen = set()
    for execution in executions:
        for node in execution.get("nodes", []):
            name = node.get("nodeName", "?")
            # a persisted frame's plan stands in every query that reads it, with the metrics of
            # the one run that computed it: count each such operator once
            fingerprint = (name, tuple((m["name"], m["value"]) for m in node.get("metrics", [])))
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            kind = re.sub(r"\s*\(.*$", "", name)
            seconds = rows = spill = 0.0
            for metric in node.get("metrics", []):
                which = _kind(metric["name"])
                if which == "time":
                    seconds += _total(metric["value"], "time")
                elif which == "rows":
                    rows += _total(metric["value"], "rows")
                elif which == "spill":
                    spill += _total(metric["value"], "size")
            entry = per_kind[kind]
            entry["time"] += seconds
            entry["rows"] += rows
            entry["spill"] += spill
            entry["count"] += 1
            single.append((seconds, rows, name, execution.get("description", "")[:60]))
    return dict(per_kind), sorted(single, reverse=True)


def _at(text: str) -> float:
    """A REST API time ('2026-12-06T09:12:01.123GMT') as a Unix time."""
    import datetime as dt
    return dt.datetime.strptime(text.replace("GMT", "+0000"),
                                "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _span(stage: dict) -> float:
    """A stage's wall time in seconds (first task submitted to completion)."""
    try:
        return _at(stage["completionTime"]) - _at(stage["submissionTime"])
    except (KeyError, ValueError):
        return 0.0


def _idle_gaps(stages: list[dict], start: float, end: float) -> list[tuple[float, str, str]]:
    """The stretches of [start, end] (Unix times) with no stage running: (seconds, the stage
    that ended before, the stage that began after)."""
    spans = sorted((_at(s["submissionTime"]), _at(s["completionTime"]), s.get("name", "?"))
                   for s in stages if "submissionTime" in s and "completionTime" in s)
    gaps, cursor, last = [], start, "(job start)"
    for begin, finish, name in spans:
        if begin > cursor:
            gaps.append((begin - cursor, last, name))
        if finish > cursor:
            cursor, last = finish, name
    if end > cursor:
        gaps.append((end - cursor, last, "(job end)"))
    return gaps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adults", type=int, default=100_000)
    parser.add_argument("--findings", type=int, default=700_000)
    parser.add_argument("--keep", type=Path, help="warehouse folder to keep (default: temporary)")
    parser.add_argument("--warehouse", type=Path,
                        help="an existing warehouse to profile (with --month) instead of silver "
                             "synthesised here")
    parser.add_argument("--month", help="with --warehouse: the month to score (YYYY-MM)")
    parser.add_argument("--port", type=int, default=4077)
    parser.add_argument("--dump", type=Path, help="write Spark's stages and SQL executions "
                        "(its REST API's JSON) to this file")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a spark.* setting for this run (to measure one against the default)")
    args = parser.parse_args(argv)
    if bool(args.warehouse) != bool(args.month):
        parser.error("--warehouse and --month go together")
    if any("=" not in kv or not kv.startswith("spark.") for kv in args.conf):
        parser.error("--conf takes spark.KEY=VALUE")
    if args.warehouse:
        # checked before Spark starts: a typo costs a line, not a minute and a traceback
        from citycredit import catalog
        from citycredit.months import is_month
        from citycredit.policy.job import population_months

        if args.keep or any(getattr(args, option) != parser.get_default(option)
                            for option in ("adults", "findings")):
            parser.error("--keep, --adults and --findings synthesise silver: not with --warehouse")
        if not is_month(args.month):
            parser.error(f"--month {args.month!r} is not a month (YYYY-MM)")
        if not catalog.holds_warehouse(args.warehouse):
            parser.error(f"no warehouse at {args.warehouse} (no bronze, silver or gold folder)")
        if args.month not in population_months(args.warehouse):
            parser.error(f"{args.warehouse} holds no population snapshot of {args.month}: "
                         "nobody would be scored (land and run the month first)")

    from bench.bench_score import MONTH, synthesise_silver

    warehouse = args.warehouse or args.keep or Path(tempfile.mkdtemp(prefix="cc-profile-"))
    month = args.month or MONTH
    if args.warehouse is None and not (warehouse / "silver" / "findings").exists():
        began = time.perf_counter()
        sizes = synthesise_silver(warehouse, args.adults, args.findings)
        print(f"silver: {sizes} in {time.perf_counter() - began:.1f} s", flush=True)
    os.environ["CITYCREDIT_WAREHOUSE"] = str(warehouse)

    from citycredit.config import load_settings
    from citycredit.io.lock import warehouse_lock
    from citycredit.io.spark import get_spark
    from citycredit.rules import load_schemes
    from citycredit.scoring.job import run_scoring

    settings = load_settings()
    settings.spark_conf.update(dict(kv.split("=", 1) for kv in args.conf))
    settings.spark_conf.update({"spark.ui.enabled": "true", "spark.ui.port": str(args.port),
                                "spark.ui.retainedExecutions": "1000",
                                "spark.sql.ui.retainedExecutions": "1000"})
    spark = get_spark(settings, "citycredit-profile")
    schemes = list(load_schemes(settings.rules).values())
    began, began_at = time.perf_counter(), time.time()
    # on a real warehouse it writes gold like a run (run_id 'profile'): no run, erasure or
    # cleanup meanwhile; a synthesised one is this process's own
    with (warehouse_lock(warehouse, f"bench.profile_scoring {month}") if args.warehouse
          else contextlib.nullcontext()):
        results = run_scoring(spark, settings, schemes, month, run_id="profile")
    if args.warehouse:
        print(f"gold/scores and gold/score_lines of {month} in {warehouse} now hold rows of run_id "
              "'profile': never published, no reader sees them; the month's next publication "
              "drops them", flush=True)
    wall = time.perf_counter() - began
    app = spark.sparkContext.applicationId
    url = (f"http://127.0.0.1:{args.port}/api/v1/applications/{app}/sql"
           f"?details=true&planDescription=false&length=1000")
    with urllib.request.urlopen(url, timeout=60) as response:
        executions = json.load(response)
    per_kind, single = operator_table(executions)
    with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/v1/applications/{app}"
                                f"/allexecutors", timeout=60) as response:
        executors = json.load(response)
    with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/v1/applications/{app}"
                                f"/stages?status=complete", timeout=60) as response:
        stages = json.load(response)
    if args.dump:
        args.dump.write_text(json.dumps({"stages": stages, "executions": executions}))
    task_seconds = sum(e.get("totalDuration", 0) for e in executors) / 1000
    gc_seconds = sum(e.get("totalGCTime", 0) for e in executors) / 1000
    print(f"\njob: {len(schemes)} schemes, {wall:.1f} s wall; "
          + ", ".join(f"{r.scheme} {r.subjects:,} scores / {r.lines:,} lines" for r in results))
    print(f"tasks: {task_seconds:.1f} s of task time, of which {gc_seconds:.1f} s in the JVM's "
          f"garbage collection ({100 * gc_seconds / max(task_seconds, 1e-9):.0f} %)")
    stage_rows = [(_span(st), st.get("executorRunTime", 0) / 1000, st.get("numTasks", 0),
                   st.get("description") or st.get("name", "?")) for st in stages]
    per_step: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for wall_s, task_s, _, name in stage_rows:
        per_step[name][0] += wall_s
        per_step[name][1] += task_s
    stage_wall = sum(r[0] for r in stage_rows)
    print(f"stages: {len(stage_rows)}, {stage_wall:.1f} s of stage wall time (stages one after "
          f"another: the rest of the job's wall is the driver's); a stage of 1 task uses 1 core")
    print(f"{'wall s':>8} {'task s':>8} {'tasks':>6}  stage")
    for wall_s, task_s, n, name in sorted(stage_rows, reverse=True)[:12]:
        print(f"{wall_s:8.1f} {task_s:8.1f} {n:>6}  {name[:70]}")
    print(f"\nper step (the job descriptions scoring.job sets): stage wall s, task s")
    for name, (wall_s, task_s) in sorted(per_step.items(), key=lambda kv: -kv[1][1])[:16]:
        print(f"{wall_s:8.1f} {task_s:8.1f}  {name[:90]}")
    gaps = _idle_gaps(stages, began_at, began_at + wall)
    print(f"no stage running for {sum(g for g, _, _ in gaps):.1f} s of the job's {wall:.1f} s "
          f"(the driver: planning, Delta logs and commits, Python); longest gaps:")
    for gap, before, after in sorted(gaps, reverse=True)[:8]:
        print(f"  {gap:6.1f} s  after {before[:45]!r} before {after[:45]!r}")
    print("\n(time: Spark's task-time metrics summed over tasks; a WholeStageCodegen stage's "
          "duration includes the operators fused into it)")
    print(f"\n{'operator':36} {'n':>4} {'time s':>9} {'rows out':>14} {'spill MiB':>10}")
    for kind, entry in sorted(per_kind.items(), key=lambda kv: -kv[1]["time"]):
        if entry["time"] or entry["rows"]:
            print(f"{kind[:36]:36} {entry['count']:>4} {entry['time']:>9.1f} "
                  f"{entry['rows']:>14,.0f} {entry['spill'] / 2**20:>10.1f}")
    print("\ncostliest operators (summed task time, rows out, query):")
    for seconds, rows, name, description in single[:10]:
        print(f"  {seconds:8.1f} s {rows:>14,.0f}  {name[:50]:50} {description}")
    spark.stop()
    if not (args.keep or args.warehouse):      # only the temporary one this run synthesised
        shutil.rmtree(warehouse, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
