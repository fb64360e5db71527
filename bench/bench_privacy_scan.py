"""Benchmark of `citycredit privacy-scan`: a warehouse-like folder of Parquet files shaped like
gold/score_lines (the largest table: ~15 M lines per scheme and month at full scale) plus a Delta
log, scanned for an identity number and a subject key that are not there (the whole of every
file is read). Prints files, bytes, rows, wall time and throughput.

    python -m bench.bench_privacy_scan --rows 10000000 --files 10 --out /tmp/cc-scan-bench
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from citycredit import catalog
from citycredit.identity import make_id_numbers, subject_keys
from citycredit.privacy.scan import needles_for_many, scan_for


def _hex_keys(rng, n: int) -> pa.Array:
    raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    text = np.empty((n, 64), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    offsets = pa.array(np.arange(0, 64 * (n + 1), 64, dtype=np.int32))
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(text.tobytes()))


def _score_lines(rng, n: int, month: str) -> pa.Table:
    points = pa.array(rng.integers(-200, 200, n)).cast(pa.decimal128(28, 8)).cast(catalog.POINTS)
    points = pa.array(rng.integers(-200, 200, n), pa.int64()).cast(catalog.POINTS)
    return pa.table({
        "scheme": pa.array(["haibei"] * n), "score_month": pa.array([month] * n),
        "subject_key": _hex_keys(rng, n), "line_type": pick(["finding", "tier", "rule_cap"]),
        "source_id": pick(["court", "public_security", "volunteer_federation", "blood_center",
                           "provincial_credit"]),
        "record_id": pa.array([f"JJ{i:010d}" for i in rng.integers(0, 10 ** 9, n)]),
        "item_code": pick(["ADMIN_PENALTY", "VOLUNTEER_SERVICE", "PROVINCIAL_CREDIT_SCORE"]),
        "level": pick(["minor", "general", None]), "rule_id": pick(["fine-minor", "volunteer"]),
        "dimension": pick(["law", "public", "award"]), "points": points,
        "status": pick(["counted", "expired", "deduplicated"]),
        "deduplicated_by": pick([None, None, None, "court/JJ0000000001"]),
        "rules_version": pa.array(["2026.1"] * n), "run_id": pa.array(["20261130T000000"] * n)})


def build(out: Path, rows: int, files: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    table = out / "gold" / "score_lines"
    (table / "_delta_log").mkdir(parents=True, exist_ok=True)
    per_file = rows // files
    for i in range(files):
        data = _score_lines(rng, per_file, f"2026-{i % 12 + 1:02d}")
        pq.write_table(data, table / f"part-{i:05d}.parquet")
        add = {"add": {"path": f"part-{i:05d}.parquet", "stats": json.dumps(
            {"numRecords": per_file, "minValues": {"subject_key": "0" * 64},
             "maxValues": {"subject_key": "f" * 64}})}}
        (table / "_delta_log" / f"{i:020d}.json").write_text(json.dumps(add))


def _numbers(n: int) -> list[str]:
    """n valid identity numbers (none of them in the generated files)."""
    rng = np.random.default_rng(1)
    births = np.datetime64("1960-01-01") + rng.integers(0, 15000, n).astype("timedelta64[D]")
    return [str(v) for v in make_id_numbers(np.full(n, 371002), births,
                                            rng.integers(0, 999, n))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cc-scan-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--persons", type=int, default=1,
                        help="persons searched in one pass (identity number + subject key each)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    started = time.perf_counter()
    build(args.out / "warehouse", args.rows, args.files)
    print(f"built {args.rows:,} score_lines rows in {args.files} files "
          f"({time.perf_counter() - started:.1f}s)")
    numbers = _numbers(args.persons)
    needles = needles_for_many(list(zip(numbers, subject_keys(numbers, "bench-key"))))
    result = scan_for(needles, args.out / "warehouse", args.out / "landing", [],
                      workers=args.workers)
    assert result.clean
    print(f"scan for {args.persons} person(s) in one pass: {result.files} files, "
          f"{result.bytes / 1e9:.2f} GB on disk, {args.rows:,} rows, "
          f"{result.seconds:.1f}s → {args.rows / result.seconds / 1e6:.2f} M rows/s, "
          f"{result.bytes / result.seconds / 1e6:.0f} MB/s on disk")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
