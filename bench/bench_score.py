"""Scoring benchmark: the Spark job vs the independent DuckDB reference on the same silver tables.

    python -m bench.bench_score --adults 2250000 --findings 15000000 [--warehouse DIR] [--scheme haibei]

Silver is synthesised directly as Delta tables (population snapshots, finding versions with
corrections, appeals, opt-outs) with DuckDB, at the size of ARCHITECTURE's reference figures
(2.25 M adults, 15 M finding versions). Then, in the same run: the real scoring job
(`run_scoring`: silver read through the table seam, gold/scores and gold/score_lines written),
and `reference.duckdb_scorer.score_reference` on the same files. Prints wall time, peak memory of
the process tree (Python + the Spark JVM) during each, rows, the ratio, and whether they agree.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psutil
from deltalake import DeltaTable, write_deltalake

MONTH = "2026-10"
ITEMS = [("COURT_DISHONEST_DEBTOR", None, "court"), ("ADMIN_PENALTY", "general", "traffic_police"),
         ("ADMIN_PENALTY", "minor", "public_security"), ("ADMIN_PENALTY", "serious", "market_regulation"),
         ("COMMENDATION", "provincial", "civilization_office"),
         ("COMMENDATION", "municipal", "volunteer_federation"),
         ("VOLUNTEER_SERVICE", None, "volunteer_federation"),
         ("VOLUNTEER_SERVICE", None, "volunteer_federation"), ("BLOOD_DONATION", None, "blood_center"),
         ("CHARITY_DONATION", None, "charity_federation"), ("LOAN_ARREARS", None, "provincial_credit"),
         ("UNCIVIL_CONDUCT", None, "urban_management"), ("COMMITMENT_SIGNED", None, "commitments"),
         ("PROVINCIAL_CREDIT_SCORE", None, "provincial_credit"), ("BRAVERY", None, "civilization_office"),
         ("DEBT_PERFORMED", None, "court")]


def synthesise_silver(warehouse: Path, adults: int, findings: int) -> dict:
    """Silver-shaped Delta tables (docs/contracts.md) of the given size."""
    silver = warehouse / "silver"
    con = duckdb.connect()
    values = ",".join(f"({k}, '{i}', {'NULL' if l is None else repr(l)}, '{s}')"
                      for k, (i, l, s) in enumerate(ITEMS))
    con.execute(f"CREATE TABLE items AS SELECT * FROM (VALUES {values}) t(k, item_code, level, source_id)")
    population = con.execute(f"""
        SELECT sha256('subj' || i::VARCHAR) AS subject_key,
               DATE '1940-01-01' + CAST(hash(i) % 25000 AS INTEGER) AS birth_date,
               CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END AS sex, '371002' AS district,
               'hukou' AS residency,
               CASE WHEN hash(i * 7) % 100 < 2 THEN 'deceased' ELSE 'active' END AS status,
               '{MONTH}' AS snapshot_month
        FROM range({adults}) t(i)""").fetch_arrow_table()
    write_deltalake(str(silver / "population"), population, partition_by=["snapshot_month"],
                    mode="overwrite")
    con.execute(f"""
        CREATE TABLE f AS
        SELECT it.source_id, 'r' || i::VARCHAR AS record_id,
               sha256('subj' || (hash(i) % {adults})::VARCHAR) AS subject_key,
               it.item_code, it.level,
               CASE WHEN it.item_code IN ('VOLUNTEER_SERVICE', 'CHARITY_DONATION', 'LOAN_ARREARS',
                                          'BLOOD_DONATION', 'PROVINCIAL_CREDIT_SCORE')
                    THEN CAST((hash(i * 3) % 20000) / 100 AS DECIMAL(18, 4)) END AS quantity,
               DATE '{MONTH}-31' - CAST(hash(i * 5) % 1500 AS INTEGER) AS occurred_on,
               CASE WHEN hash(i * 11) % 10 = 0
                    THEN DATE '{MONTH}-31' - CAST(hash(i * 13) % 600 AS INTEGER) - 300 END AS valid_until,
               CASE WHEN hash(i * 17) % 50 = 0 THEN 'revoked' ELSE 'active' END AS status,
               CASE WHEN hash(i * 19) % 3 = 0 THEN 'case' || (hash(i * 23) % 1000000)::VARCHAR END AS case_ref,
               '2026-0' || (1 + hash(i * 29) % 9)::VARCHAR AS known_from
        FROM range({findings}) t(i) JOIN items it ON it.k = hash(i * 31) % {len(ITEMS)}""")
    versions = con.execute(f"""
        SELECT * EXCLUDE (known_from), known_from, '{MONTH}' AS known_until, 'bench' AS load_id
        FROM f WHERE hash(record_id) % 33 = 0
        UNION ALL
        SELECT source_id, record_id, subject_key, item_code,
               CASE WHEN level = 'general' THEN 'serious' ELSE level END, quantity, occurred_on,
               valid_until, status, case_ref, '{MONTH}', NULL, 'bench'
        FROM f WHERE hash(record_id) % 33 = 0
        UNION ALL
        SELECT *, NULL, 'bench' FROM f WHERE hash(record_id) % 33 <> 0""").fetch_arrow_table()
    columns = ["source_id", "record_id", "subject_key", "item_code", "level", "quantity",
               "occurred_on", "valid_until", "status", "case_ref", "known_from", "known_until",
               "load_id"]
    versions = versions.rename_columns(columns)
    write_deltalake(str(silver / "findings"), versions, partition_by=["source_id"], mode="overwrite")
    appeals = con.execute(f"""
        SELECT 'ap' || record_id AS appeal_id, source_id, record_id,
               DATE '2026-09-01' + CAST(hash(record_id) % 60 AS INTEGER) AS filed_on,
               CASE WHEN hash(record_id) % 2 = 0 THEN DATE '2026-10-20' END AS resolved_on,
               CASE WHEN hash(record_id) % 2 = 0 THEN 'upheld' END AS outcome,
               '2026-09' AS known_from, NULL::VARCHAR AS known_until, 'bench' AS load_id
        FROM f WHERE hash(record_id || 'a') % 200 = 0""").fetch_arrow_table()
    write_deltalake(str(silver / "appeals"), appeals, mode="overwrite")
    optouts = con.execute(f"""
        SELECT sha256('subj' || i::VARCHAR) AS subject_key, DATE '2026-05-01' AS requested_on,
               '2026-05' AS known_from FROM range(0, {adults}, 997) t(i)""").fetch_arrow_table()
    write_deltalake(str(silver / "optouts"), optouts, partition_by=["known_from"], mode="overwrite")
    return {"population": population.num_rows, "finding_versions": versions.num_rows,
            "appeals": appeals.num_rows, "optouts": optouts.num_rows}


@contextmanager
def measured(label: str, figures: dict):
    """Wall time and peak RSS of this process and its children (the Spark JVM), sampled."""
    me = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            done.wait(0.25)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        figures[label] = {"seconds": round(time.perf_counter() - started, 1),
                          "peak_rss_gb": round(peak[0] / 2**30, 2)}
        done.set()
        thread.join()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adults", type=int, default=2_250_000)
    parser.add_argument("--findings", type=int, default=15_000_000)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-bench"))
    parser.add_argument("--scheme", default="haibei")
    parser.add_argument("--reuse", action="store_true", help="keep an existing synthesised silver")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", default="16")
    args = parser.parse_args(argv)

    os.environ["CITYCREDIT_WAREHOUSE"] = str(args.warehouse)
    os.environ["CITYCREDIT_SPARK_DRIVER_MEMORY"] = args.driver_memory
    os.environ["CITYCREDIT_SPARK_SHUFFLE_PARTITIONS"] = args.shuffle_partitions
    from reference.duckdb_scorer import score_reference
    from citycredit.config import load_settings
    from citycredit.rules import load_schemes
    from citycredit import catalog
    from citycredit.io.spark import get_spark
    from citycredit.scoring.job import run_scoring

    figures: dict = {}
    if not (args.reuse and DeltaTable.is_deltatable(str(args.warehouse / "silver" / "findings"))):
        with measured("synthesise silver", figures):
            sizes = synthesise_silver(args.warehouse, args.adults, args.findings)
        print(f"silver: {sizes}")
    settings = load_settings()
    scheme = load_schemes(settings.rules, [args.scheme])[args.scheme]
    with measured("spark session start", figures):
        spark = get_spark(settings, "citycredit-bench")
    with measured(f"spark scoring ({args.scheme})", figures):
        result = run_scoring(spark, settings, scheme, MONTH, "bench")
    silver = args.warehouse / "silver"
    files = {n: [u.removeprefix("file://") for u in DeltaTable(str(silver / n)).file_uris()]
             for n in ("findings", "population", "appeals", "optouts")}
    with measured("duckdb reference", figures):
        reference = score_reference(files, settings.rules / f"{args.scheme}.yaml", MONTH)
    gold = DeltaTable(catalog.SCORES.at(settings).path).to_pyarrow_table(
        filters=[("scheme", "=", args.scheme), ("score_month", "=", MONTH)],
        columns=["subject_key", "score", "grade"])
    con = duckdb.connect()
    con.register("gold", gold)
    con.register("ref", reference)
    differ = con.execute("""SELECT count(*) FROM gold FULL JOIN ref USING (subject_key)
                            WHERE gold.score IS DISTINCT FROM ref.score
                               OR gold.grade IS DISTINCT FROM ref.grade""").fetchone()[0]
    print(f"\nscheme {args.scheme}, month {MONTH}: {result.subjects:,} subjects scored, "
          f"{result.lines:,} explanation lines; reference {reference.num_rows:,} subjects; "
          f"subjects that differ: {differ}")
    for label, f in figures.items():
        print(f"  {label:28} {f['seconds']:>8.1f} s   peak RSS {f['peak_rss_gb']:.2f} GB")
    spark_s = figures[f"spark scoring ({args.scheme})"]["seconds"]
    ref_s = figures["duckdb reference"]["seconds"]
    print(f"  Spark / reference wall-time ratio: {spark_s / ref_s:.1f}×")
    spark.stop()
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
