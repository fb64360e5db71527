"""Benchmark the synthetic city generator.

    python bench/bench_generate.py --adults 2250000 --months 36 --out /tmp/cc-city-full

Prints wall time, peak RSS, rows per source, bad rows per reason and total bytes. Without --out
the city goes to a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citycredit.synth import generate_city  # noqa: E402


def _peak_rss_mb() -> float:
    try:
        import psutil
        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", None)   # Windows only
        if peak:
            return peak / 2 ** 20
    except ImportError:  # pragma: no cover
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adults", type=int, default=2_250_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--end", default="2025-12")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bad-share", type=float, default=0.002)
    ap.add_argument("--out", help="landing folder to write (kept); default: a temporary folder")
    ap.add_argument("--json", action="store_true", help="print the full summary as JSON too")
    args = ap.parse_args(argv)

    tmp = None
    if args.out:
        landing = Path(args.out)
    else:
        tmp = tempfile.mkdtemp(prefix="cc-city-")
        landing = Path(tmp)
    try:
        t0 = time.perf_counter()
        summary = generate_city(landing, args.adults, args.months, args.end, seed=args.seed,
                                bad_share=args.bad_share)
        wall = time.perf_counter() - t0
        rss = _peak_rss_mb()
        print(f"landing         {landing}")
        print(f"adults × months {args.adults:,} × {args.months} "
              f"(end {args.end}, seed {args.seed})")
        print(f"persons         {summary['persons']:,}")
        print(f"wall time       {wall:,.1f} s")
        print(f"peak RSS        {rss:,.0f} MiB")
        print(f"total rows      {summary['total_rows']:,}")
        tb = summary["total_bytes"]
        print(f"total bytes     {tb:,} ({tb / 2**30:.2f} GiB)")
        print("rows per source:")
        for sid, n in summary["rows_by_source"].items():
            b = summary["bytes_by_source"][sid]
            print(f"  {sid:22s} {n:>12,} rows {b / 2**20:>10,.1f} MiB")
        print("bad rows per reason:")
        for reason, n in summary["bad_rows"].items():
            print(f"  {reason:22s} {n:>12,}")
        if args.json:
            print(json.dumps(summary, ensure_ascii=False))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
