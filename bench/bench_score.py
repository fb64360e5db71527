"""Scoring benchmark: the Spark job scoring every scheme vs the independent DuckDB reference
scoring every scheme, on the same silver tables, in one run.

    python -m bench.bench_score --adults 2250000 --findings 15000000 [--scaling 0.5,2]

Silver is synthesised directly as Delta tables (population snapshot, finding versions with
corrections, appeals, opt-outs) with DuckDB, at the size of ARCHITECTURE's reference figures
(2.25 M adults, 15 M finding versions). Then each side runs as its own process, measured on its
own (wall time, peak RSS of its process tree): the real scoring job, `jobs/score.py --month M`
(every scheme; silver read through the table seam, gold/scores and gold/score_lines written; the
wall includes the JVM's start), and `reference.duckdb_scorer.score_reference` for every scheme
(scores in memory, the same explanation lines as gold/score_lines written to parquet). Their
scores are compared subject by subject, their line counts per scheme. With --scaling the Spark
side also runs on silver of those multiples: seconds per million finding versions at each size.
By default (`--scale city`) a multiple scales the city — adults and findings together, the same
findings per adult, as a city half or twice Weihai's size; `--scale findings` keeps the adults
and multiplies only the findings (a longer history), where each adult's scores (2.25 M per
scheme) are a cost that does not shrink with the findings. The last line printed is the
Spark / reference wall-time ratio.
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
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psutil
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from citycredit.catalog import SILVER_APPEALS, SILVER_FINDINGS

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
    write_deltalake(str(silver / "findings"), versions,
                    partition_by=list(SILVER_FINDINGS.partitions), mode="overwrite")
    appeals = con.execute(f"""
        SELECT 'ap' || record_id AS appeal_id, source_id, record_id,
               DATE '2026-09-01' + CAST(hash(record_id) % 60 AS INTEGER) AS filed_on,
               CASE WHEN hash(record_id) % 2 = 0 THEN DATE '2026-10-20' END AS resolved_on,
               CASE WHEN hash(record_id) % 2 = 0 THEN 'upheld' END AS outcome,
               '2026-09' AS known_from, NULL::VARCHAR AS known_until, 'bench' AS load_id
        FROM f WHERE hash(record_id || 'a') % 200 = 0""").fetch_arrow_table()
    write_deltalake(str(silver / "appeals"), appeals,
                    partition_by=list(SILVER_APPEALS.partitions), mode="overwrite")
    optouts = con.execute(f"""
        SELECT sha256('subj' || i::VARCHAR) AS subject_key, DATE '2026-05-01' AS requested_on,
               '2026-05' AS known_from FROM range(0, {adults}, 997) t(i)""").fetch_arrow_table()
    write_deltalake(str(silver / "optouts"), optouts, partition_by=["known_from"], mode="overwrite")
    return {"population": population.num_rows, "finding_versions": versions.num_rows,
            "appeals": appeals.num_rows, "optouts": optouts.num_rows}


def _below(pid: int, ancestors: set[int], parent: dict[int, int]) -> bool:
    """Is `pid` a descendant of one of `ancestors` (`parent`: pid → parent pid)?"""
    seen = set()
    while pid in parent and pid not in seen:
        seen.add(pid)
        pid = parent[pid]
        if pid in ancestors:
            return True
    return False


@contextmanager
def measured(label: str, figures: dict, include_self: bool = True, stage=None):
    """Wall time and peak RSS of this process (unless include_self=False) and its children
    (a Spark JVM, a subprocess and everything it started), sampled every 0.25 s.

    A JVM's own children are left out: a fork (Hadoop runs chmod for files it writes) shows the
    whole JVM's resident pages as its RSS until it execs, which read as a second JVM.

    With `stage` (a callable naming what runs now) the peaks are also kept per stage, split
    into the Python process (the child that is not a JVM) and the JVM: figures[label]["stages"]
    = {stage: {"python_gib", "jvm_gib", "peak_rss_gib"}} (the peak of their sum; each part at it)."""
    me = psutil.Process()
    peak = [0]
    stages: dict[str, dict] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                python = me.memory_info().rss if include_self else 0
                jvm = 0
                children = me.children(recursive=True)
                parent = {child.pid: child.ppid() for child in children}
                javas = {child.pid for child in children if child.name() == "java"}
                for child in children:
                    if _below(child.pid, javas, parent):
                        # a JVM's fork (Hadoop's chmod, jspawnhelper) reports the JVM's pages
                        # as its own RSS until it execs: counted once, in the JVM (2026-12-06)
                        continue
                    rss = child.memory_info().rss
                    if child.pid in javas:
                        jvm += rss
                    else:
                        python += rss
                peak[0] = max(peak[0], python + jvm)
                if stage is not None:
                    name = stage()
                    if python + jvm > stages.get(name, {}).get("total", -1):
                        stages[name] = {"total": python + jvm, "python": python, "jvm": jvm}
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
                          "peak_rss_gib": round(peak[0] / 2**30, 2)}
        done.set()
        thread.join()
        if stage is not None:
            figures[label]["stages"] = {
                name: {"peak_rss_gib": round(p["total"] / 2**30, 2),
                       "python_gib": round(p["python"] / 2**30, 2),
                       "jvm_gib": round(p["jvm"] / 2**30, 2)} for name, p in stages.items()}


def run_side(label: str, command: list[str], warehouse: Path, figures: dict) -> str:
    """One side as its own process (its own Spark JVM or DuckDB), measured on its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    env["CITYCREDIT_WAREHOUSE"] = str(warehouse)
    with measured(label, figures, include_self=False):
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        raise SystemExit(f"{label} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def reference_side(warehouse: Path, out: Path) -> None:
    """Every scheme by the reference, each result to out/<scheme>.parquet and its explanation
    lines (the same lines as gold/score_lines, SPEC §5) to out/score_lines/<scheme>.parquet, so
    its wall includes writing them as the Spark side's does (a subprocess)."""
    from reference.duckdb_scorer import score_reference
    from citycredit.config import load_settings
    from citycredit.rules import available_schemes

    settings = load_settings()
    silver = warehouse / "silver"
    files = {n: [u.removeprefix("file://") for u in DeltaTable(str(silver / n)).file_uris()]
             for n in ("findings", "population", "appeals", "optouts")}
    (out / "score_lines").mkdir(parents=True, exist_ok=True)
    for scheme in available_schemes(settings.rules):
        scored = score_reference(files, settings.rules / f"{scheme}.yaml", MONTH,
                                 mask_working_days=settings.scoring["appeal_mask_working_days"],
                                 lines_to=out / "score_lines" / f"{scheme}.parquet")
        pq.write_table(scored.select(["subject_key", "score", "grade"]), out / f"{scheme}.parquet")


def disagreements(warehouse: Path, reference: Path) -> dict[str, int]:
    """Per scheme: subjects whose score or grade differ between gold and the reference."""
    con = duckdb.connect()
    gold = DeltaTable(str(warehouse / "gold" / "scores")).to_pyarrow_table(
        filters=[("score_month", "=", MONTH)], columns=["scheme", "subject_key", "score", "grade"])
    con.register("gold", gold)
    out = {}
    for path in sorted(reference.glob("*.parquet")):
        con.register("ref", pq.read_table(path))
        out[path.stem] = con.execute(f"""
            SELECT count(*) FROM (SELECT * FROM gold WHERE scheme = '{path.stem}') g
            FULL JOIN ref USING (subject_key)
            WHERE g.score IS DISTINCT FROM ref.score OR g.grade IS DISTINCT FROM ref.grade
            """).fetchone()[0]
    return out


def line_counts(warehouse: Path, reference: Path) -> dict[str, tuple[int, int]]:
    """Per scheme: (gold/score_lines rows of the month, the reference's lines) — the same
    contract (SPEC §5), so the same count; the differential test compares them line by line."""
    gold = DeltaTable(str(warehouse / "gold" / "score_lines")).to_pyarrow_dataset()
    out = {}
    for path in sorted((reference / "score_lines").glob("*.parquet")):
        spark_n = gold.count_rows(filter=(ds.field("scheme") == path.stem)
                                  & (ds.field("score_month") == MONTH))
        out[path.stem] = (spark_n, pq.ParquetFile(path).metadata.num_rows)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adults", type=int, default=2_250_000)
    parser.add_argument("--findings", type=int, default=15_000_000)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/citycredit-bench"))
    parser.add_argument("--scaling", default="0.5,2",
                        help="further multiples (of the city, or of the findings: --scale) the Spark side runs on ('' = none)")
    parser.add_argument("--scale", choices=("city", "findings"), default="city",
                        help="what a multiple scales: the city (adults and findings, the default) "
                             "or the findings alone (same adults)")
    parser.add_argument("--reuse", action="store_true", help="keep synthesised silver")
    parser.add_argument("--reference-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_side:
        reference_side(args.warehouse, args.reference_side)
        return 0

    score = [sys.executable, str(Path(__file__).resolve().parents[1] / "jobs" / "score.py"),
             "--month", MONTH, "--run-id", "bench"]
    multiples = [1.0] + [float(m) for m in args.scaling.split(",") if m.strip()]
    figures: dict = {}
    spark: dict[float, tuple[float, int, int]] = {}  # multiple → (seconds, versions, adults)
    for multiple in multiples:
        adults = int(args.adults * multiple) if args.scale == "city" else args.adults
        findings = int(args.findings * multiple)
        # ×1 is the same silver either way; other multiples get a folder per kind of scaling
        kind = "findings" if multiple == 1.0 or args.scale == "findings" else "city"
        warehouse = args.warehouse / f"{kind}-x{multiple:g}"
        marker = warehouse / "_silver.json"
        if not (args.reuse and marker.is_file()):
            shutil.rmtree(warehouse, ignore_errors=True)
            with measured(f"synthesise silver ×{multiple:g}", figures):
                sizes = synthesise_silver(warehouse, adults, findings)
            marker.write_text(json.dumps(sizes))
        sizes = json.loads(marker.read_text())
        print(f"silver ×{multiple:g}: {sizes}", flush=True)
        label = f"spark, all schemes ×{multiple:g}"
        try:
            printed = run_side(label, score, warehouse, figures)
        except SystemExit as failed:
            if multiple == 1.0:
                raise
            print(f"{failed}\n(the scaling run ×{multiple:g} failed; the figures above stand)",
                  flush=True)
            continue
        print(printed, end="", flush=True)
        print(f"  {label}: {figures[label]['seconds']:.1f} s, peak RSS "
              f"{figures[label]['peak_rss_gib']:.2f} GiB", flush=True)
        spark[multiple] = (figures[label]["seconds"], sizes["finding_versions"],
                           sizes["population"])
        if multiple == 1.0:
            reference = warehouse / "_reference"
            shutil.rmtree(reference, ignore_errors=True)
            run_side("reference, all schemes", [sys.executable, "-m", "bench.bench_score",
                                                "--warehouse", str(warehouse),
                                                "--reference-side", str(reference)],
                     warehouse, figures)
            ref = figures["reference, all schemes"]
            print(f"  reference, all schemes: {ref['seconds']:.1f} s, peak RSS "
                  f"{ref['peak_rss_gib']:.2f} GiB", flush=True)
            differ = disagreements(warehouse, reference)
            lines = line_counts(warehouse, reference)

    print(f"\nscore month {MONTH}, {args.adults:,} adults; figures per step (wall, peak RSS of "
          f"its process tree):")
    for label, f in figures.items():
        print(f"  {label:34} {f['seconds']:>8.1f} s   peak RSS {f['peak_rss_gib']:.2f} GiB")
    print("subjects that differ from the reference: "
          + ", ".join(f"{scheme} {n}" for scheme, n in differ.items()))
    print("explanation lines, Spark / reference: "
          + ", ".join(f"{scheme} {s:,} / {r:,}" for scheme, (s, r) in lines.items()))
    if len(spark) > 1:
        per_million = {m: seconds / (versions / 1e6) for m, (seconds, versions, _) in spark.items()}
        print(f"scaling ({'the city: adults and findings' if args.scale == 'city' else 'the findings, same adults'}), "
              "Spark all schemes: " + "  ".join(
                  f"×{m:g} {adults / 1e6:.2f} M adults {versions / 1e6:.2f} M findings "
                  f"{seconds:.1f} s = {per_million[m]:.1f} s/M"
                  for m, (seconds, versions, adults) in sorted(spark.items())))
        if 1.0 in per_million:
            print("seconds per million findings against ×1: " + "  ".join(
                f"×{m:g} {100 * (per_million[m] / per_million[1.0] - 1):+.0f} %"
                for m in sorted(per_million) if m != 1.0) + " (target: within ±20 %)")
    spark_s = figures["spark, all schemes ×1"]["seconds"]
    ref_s = figures["reference, all schemes"]["seconds"]
    print(f"Spark / reference wall-time ratio, all schemes: {spark_s / ref_s:.1f}×")
    return 0 if not any(differ.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
