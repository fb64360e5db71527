"""Benchmark landing and validation (`ingest.task.land_source`) on one large delivery.

    python -m bench.bench_land --adults 1000000            # population (parquet) + court (csv)
    python -m bench.bench_land --adults 300000 --keep /tmp/cc-land-300k

Generates a city of `--adults` with the synthetic generator restricted to the population source
and one findings source (`--findings-source`, default court: csv), `--months` months, and lands
the last month of each source into an empty warehouse, each in its own process. Prints per
source: rows landed, wall seconds, rows per second and the peak RSS of that process (landing
runs no subprocesses) — and its CPU seconds (user + system), which a busy machine disturbs
less than the wall time. The population delivery holds every person of the city (adults and
minors): the 10× city of issue 15 (22.5 M rows in one delivery) is `--adults 21800000`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _land_one(source: str, month: str) -> None:
    """Child process: land one source's month, print its figures as one JSON line."""
    from citycredit.config import load_settings
    from citycredit.ingest.task import land_source

    started = time.perf_counter()
    landed = land_source(source, month, "bench", load_settings())
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = max(usage.ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"source": source, "rows": landed.get("landed", 0),
                      "accepted": landed.get("accepted", 0),
                      "quarantined": landed.get("quarantined", 0),
                      "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                      "peak_rss_gib": peak_kib / 2 ** 20}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adults", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=2,
                    help="months generated; the last one is landed (default 2)")
    ap.add_argument("--end", default="2026-10")
    ap.add_argument("--findings-source", default="court")
    ap.add_argument("--population-format", choices=["parquet", "csv", "jsonl"],
                    help="write the population in this format instead of its conf's")
    ap.add_argument("--keep", help="folder for landing + warehouse (kept; the city is reused "
                                   "when its landing is there); default: a temporary folder")
    ap.add_argument("--land", nargs=2, metavar=("SOURCE", "MONTH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.land:
        _land_one(*args.land)
        return 0

    from citycredit.config import configured_sources
    from citycredit.synth import generate_city

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cc-land-bench-"))
    landing, warehouse = folder / "landing", folder / "warehouse"
    sources = ["population", args.findings_source]
    try:
        if not (landing / "population" / args.end).is_dir():
            shutil.rmtree(landing, ignore_errors=True)
            conf = configured_sources()
            t0 = time.perf_counter()
            chosen = {s: conf[s] for s in sources}
            if args.population_format:
                chosen["population"] = {**chosen["population"], "format": args.population_format}
            generate_city(landing, args.adults, args.months, args.end, sources=chosen)
            print(f"generated {args.adults:,} adults × {args.months} months in "
                  f"{time.perf_counter() - t0:.1f} s → {landing}")
        shutil.rmtree(warehouse, ignore_errors=True)
        env = {**os.environ, "CITYCREDIT_LANDING": str(landing),
               "CITYCREDIT_WAREHOUSE": str(warehouse), "PYTHONPATH": str(ROOT),
               "GX_ANALYTICS_ENABLED": "false"}
        env.setdefault("CITYCREDIT_SUBJECT_KEY", "bench-subject-key")
        print(f"{'source':<16}{'rows':>12}{'quarantined':>13}{'wall s':>9}{'cpu s':>8}"
              f"{'rows/s':>12}{'peak RSS GiB':>13}")
        total_rows, total_wall, total_cpu, peak = 0, 0.0, 0.0, 0.0
        for source in sources:
            out = subprocess.run([sys.executable, "-m", "bench.bench_land", "--land", source,
                                  args.end], cwd=ROOT, env=env, capture_output=True, text=True)
            if out.returncode:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            total_rows, total_wall = total_rows + r["rows"], total_wall + r["wall"]
            total_cpu += r["cpu"]
            peak = max(peak, r["peak_rss_gib"])
            print(f"{source:<16}{r['rows']:>12,}{r['quarantined']:>13,}{r['wall']:>9.1f}"
                  f"{r['cpu']:>8.1f}{r['rows'] / r['wall']:>12,.0f}{r['peak_rss_gib']:>13.2f}")
        print(f"{'all':<16}{total_rows:>12,}{'':>13}{total_wall:>9.1f}{total_cpu:>8.1f}"
              f"{total_rows / total_wall:>12,.0f}{peak:>13.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
