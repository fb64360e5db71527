"""Silver benchmark: the month's silver step on a short and a long history — it must cost the
same, in proportion to the month's delivery, not the history behind it.

    python -m bench.bench_silver [--per-month 43000] [--adults 0] [--histories 3,12,36]
                                 [--spark-merge]

For each history length H: finding versions of months 1..H-1 are bulk-loaded into silver (the
fast path: all versions, known_until computed once, one write), month H's delivery is put in
staging, and the real step (`silver.task.build_silver`) merges it — then again as a re-delivery
of the same month. Then, on a copy of the same silver, the alternative measured against it: a
delta-rs MERGE that finds the superseded versions itself, and with --spark-merge the same MERGE
run by delta-spark on a local[2] session (4g driver; started and warmed up before anything is
timed, the delivered Arrow table's conversion into a Spark DataFrame timed with the MERGE). Each
is run --repeat times from the same starting silver and the median printed (the machine is
shared); the first run of each alternative must leave silver's versions as the real step did
(with --spark-merge every peak RSS includes the session's JVM). Volumes follow the synthetic city
(citycredit.synth): `--per-month` new findings over 13 departments, 0.5 % corrections and 0.3 %
revocations of records up to 6 months old, appeals on 0.2 %; `--adults` > 0 adds the provincial
credit score of every adult (all in month 1, re-sent every 12 months, new adults monthly).
Prints seconds per month for each H and the ratio long / short as the last line.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from bench.bench_score import measured

# share of a month's new findings per department (synth.volumes, Weihai's reference volumes)
SOURCES = {"court": 0.015, "public_security": 0.03, "traffic_police": 0.065,
           "market_regulation": 0.015, "urban_management": 0.03, "civilization_office": 0.01,
           "volunteer_federation": 0.26, "blood_center": 0.13, "charity_federation": 0.11,
           "commitments": 0.30, "provincial_credit": 0.027, "commerce": 0.004, "tax": 0.004}
CORRECTIONS, REVOCATIONS, RESEND_MONTHS, APPEALS = 0.005, 0.003, 6, 0.002
FIRST_MONTH = (2023, 1)


def month_name(index: int) -> str:
    year, month = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index, 12)
    return f"{year:04d}-{month + 1:02d}"


def record_ids(prefix: str, serials: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(serials), pa.string()), 10, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def findings_rows(rng, source: str, serials: np.ndarray, status: np.ndarray) -> dict:
    n = len(serials)
    person = rng.integers(0, 10**9, n)
    return {"source_id": pa.array([source] * n, pa.string()),
            "record_id": record_ids(source[:3].upper(), serials),
            "subject_key": pc.utf8_lpad(pc.cast(pa.array(person), pa.string()), 64, "0"),
            "item_code": pa.array(["VOLUNTEER_SERVICE"] * n, pa.string()),
            "level": pa.nulls(n, pa.string()),
            "quantity": pa.array(rng.integers(1, 30000, n).astype("int32")).cast(
                pa.decimal128(18, 4)),
            "occurred_on": pa.array(rng.integers(19000, 20400, n).astype("int32")).cast(
                pa.date32()),
            "valid_until": pa.nulls(n, pa.date32()),
            "status": pa.array(np.where(status, "revoked", "active")),
            "case_ref": pa.nulls(n, pa.string())}


class City:
    """Monthly deliveries (staging-shaped findings and appeals, month by month)."""

    def __init__(self, per_month: int, adults: int, seed: int = 1):
        self.rng = np.random.default_rng(seed)
        self.per_month, self.adults = per_month, adults
        self.next_serial = {s: 1 for s in SOURCES}
        self.born: dict[str, list[tuple[int, int]]] = {s: [] for s in SOURCES}
        self.scored = 0                    # adults with a provincial score so far
        self.appeal_serial = 1

    def month(self, index: int) -> tuple[pa.Table, pa.Table]:
        rng, parts = self.rng, []
        for source, share in SOURCES.items():
            n = int(rng.poisson(self.per_month * share))
            serials = np.arange(self.next_serial[source], self.next_serial[source] + n)
            self.next_serial[source] += n
            window = self.born[source][-RESEND_MONTHS:]
            resent = np.zeros(0, np.int64)
            if window and window[-1][1] > window[0][0]:
                low, high = window[0][0], window[-1][1]
                k = min(int(rng.poisson((CORRECTIONS + REVOCATIONS) * n)), high - low)
                resent = rng.choice(np.arange(low, high), k, replace=False)
            self.born[source].append((serials[0] if n else self.next_serial[source],
                                      self.next_serial[source]))
            revoked = np.r_[np.zeros(n, bool),
                            rng.random(len(resent)) < REVOCATIONS / (CORRECTIONS + REVOCATIONS)]
            parts.append(pa.table(findings_rows(rng, source, np.r_[serials, resent], revoked)))
        if self.adults:
            new_adults = self.adults if index == 0 else int(self.adults * 0.0012)
            people = np.arange(self.scored, self.scored + new_adults)
            self.scored += new_adults
            if index and index % 12 == 0:      # the yearly re-send: every adult scored so far
                people = np.arange(self.scored)
            scores = pa.table(findings_rows(rng, "provincial_credit", 9_000_000_000 + people,
                                            np.zeros(len(people), bool)))
            parts.append(scores.set_column(3, "item_code", pa.array(
                ["PROVINCIAL_CREDIT_SCORE"] * len(people))))
        findings = pa.concat_tables(parts)
        k = int(findings.num_rows * APPEALS)
        appealed = findings.take(rng.choice(findings.num_rows, k, replace=False))
        appeals = pa.table({
            "appeal_id": record_ids("AP", np.arange(self.appeal_serial, self.appeal_serial + k)),
            "source_id": appealed["source_id"], "record_id": appealed["record_id"],
            "filed_on": appealed["occurred_on"], "resolved_on": pa.nulls(k, pa.date32()),
            "outcome": pa.nulls(k, pa.string())})
        self.appeal_serial += k
        return findings, appeals


def bulk_load(settings, months: list[tuple[str, pa.Table, pa.Table]]) -> int:
    """The fast path: every version of the given months straight into silver, known_until
    computed once over all of them (what merging them month by month gives)."""
    from citycredit import catalog
    from citycredit.io import tables
    from citycredit.silver.versions import next_known_from

    count = 0
    for kind, table, position in (("findings", catalog.SILVER_FINDINGS, 1),
                                  ("appeals", catalog.SILVER_APPEALS, 2)):
        rows = pa.concat_tables([m[position].append_column(
            "known_from", pa.array([m[0]] * m[position].num_rows, pa.string())) for m in months])
        key = [c for c in table.key if c != "known_from"]
        rows = rows.append_column("known_until", next_known_from(rows, key))
        rows = rows.append_column("load_id", pa.array(["bulk"] * rows.num_rows, pa.string()))
        # written as the step writes months: sorted by key, cut into key-range files
        tables.replace_files(rows.select(table.columns), table.at(settings),
                             partitions=rows.group_by(list(table.partitions)).aggregate([]).to_pylist())
        count += rows.num_rows if kind == "findings" else 0
    return count


def stage(settings, month: str, findings: pa.Table, appeals: pa.Table) -> list[dict]:
    """Month's delivery into staging (one partition per source), as landing leaves it."""
    from citycredit import catalog
    from citycredit.io import tables

    landed = []
    for kind, rows, by in (("findings", findings, "source_id"), ("appeals", appeals, None)):
        location = catalog.staging(kind).at(settings)
        if kind == "appeals":
            rows = rows.rename_columns(["appeal_id", "appeal_source_id", *rows.column_names[2:]])
        groups = sorted(set(rows[by].to_pylist())) if by else ["appeals"]
        for source in groups:
            part = rows.filter(pc.equal(rows[by], source)).drop([by]) if by else rows
            if kind == "findings":
                part = part.drop(["source_id"]) if "source_id" in part.column_names else part
            data = part.append_column("source_id", pa.array([source] * part.num_rows, pa.string()))
            data = data.append_column("month", pa.array([month] * part.num_rows, pa.string()))
            data = data.append_column("load_id", pa.array(["bench"] * part.num_rows, pa.string()))
            tables.write_arrow(data.select(location.table.columns), location, mode="overwrite",
                               replace={"source_id": source, "month": month})
            landed.append({"source_id": source, "month": month, "status": "landed", "kind": kind})
    return landed


def merge_alternative(path: str, delivered: pa.Table, month: str) -> None:
    """The alternative measured: a delta-rs MERGE that finds the current versions of the
    delivered keys itself (sets their known_until) and inserts the month's versions, one commit.
    (It covers only the latest month; a re-delivery or back-fill needs more — see README.)"""
    n = delivered.num_rows
    source = pa.concat_tables([delivered.append_column("_key", delivered["record_id"]),
                               delivered.append_column("_key", pa.nulls(n, pa.string()))])
    columns = [c for c in delivered.column_names if c != "_key"]
    (DeltaTable(path).merge(source, "t.source_id = s.source_id AND t.record_id = s._key "
                                    "AND t.known_until IS NULL", source_alias="s", target_alias="t")
     .when_matched_update({"known_until": "s.known_from"})
     .when_not_matched_insert({**{c: f"s.{c}" for c in columns}, "known_until": "NULL"},
                              predicate="s._key IS NULL")
     .execute())


def spark_merge_alternative(spark, path: str, delivered: pa.Table, month: str) -> None:
    """merge_alternative run by delta-spark on `spark`: the same source (each delivered row
    twice, once with the key to match, once without it to insert), condition and actions; the
    delivered Arrow table becomes a Spark DataFrame here (timed with the MERGE)."""
    from delta.tables import DeltaTable as SparkDeltaTable

    n = delivered.num_rows
    source = pa.concat_tables([delivered.append_column("_key", delivered["record_id"]),
                               delivered.append_column("_key", pa.nulls(n, pa.string()))])
    columns = [c for c in delivered.column_names if c != "_key"]
    (SparkDeltaTable.forPath(spark, path).alias("t")
     .merge(spark.createDataFrame(source).alias("s"),
            "t.source_id = s.source_id AND t.record_id = s._key AND t.known_until IS NULL")
     .whenMatchedUpdate(set={"known_until": "s.known_from"})
     .whenNotMatchedInsert(condition="s._key IS NULL",
                           values={**{c: f"s.{c}" for c in columns},
                                   "known_until": "CAST(NULL AS STRING)"})
     .execute())


def delivered_findings(findings: pa.Table, month: str) -> pa.Table:
    """A month's findings as silver/findings rows less known_until (the MERGEs' delivery)."""
    from citycredit import catalog

    delivered = findings.append_column("known_from", pa.array([month] * findings.num_rows))
    delivered = delivered.append_column("load_id", pa.array(["bench"] * findings.num_rows))
    return delivered.select([c for c in catalog.SILVER_FINDINGS.columns if c != "known_until"])


def versions_of(path) -> pa.Table:
    """Every version's key and known_until, sorted: what two merges of a month must agree on."""
    columns = ["source_id", "record_id", "known_from", "known_until"]
    rows = DeltaTable(str(path)).to_pyarrow_table(columns=columns)
    return rows.sort_by([(c, "ascending") for c in columns])


def merge_files(path) -> tuple[int, int]:
    """(files removed, files added) by the table's last commit, from its operation metrics
    (delta-rs and delta-spark name them differently)."""
    metrics = DeltaTable(str(path)).history(1)[0].get("operationMetrics") or {}

    def pick(*names: str) -> int:
        return int(next((metrics[n] for n in names if n in metrics), -1))

    return (pick("numTargetFilesRemoved", "num_target_files_removed"),
            pick("numTargetFilesAdded", "num_target_files_added"))


def spark_session(args):
    """The project's session (citycredit.io.spark.get_spark, delta-spark required), kept to
    local[2] with a 4g driver on this shared box."""
    from citycredit.config import load_settings
    from citycredit.io.spark import get_spark

    settings = dataclasses.replace(load_settings(), spark_master="local[2]",
                                   spark_driver_memory="4g", spark_delta="on")
    return get_spark(settings, app_name="bench-silver")


def run_history(args, history: int, spark=None) -> dict:
    """Bulk-load months 1..H-1, stage month H, then measure (each --repeat times from the same
    starting silver; the median is kept): the month, its re-delivery, the MERGE alternative."""
    from citycredit.config import load_settings
    from citycredit.io import tables
    from citycredit import catalog
    from citycredit.silver.task import build_silver

    root = args.dir / f"h{history}"
    shutil.rmtree(root, ignore_errors=True)
    settings = dataclasses.replace(load_settings(), warehouse=root)
    city = City(args.per_month, args.adults)
    months = [(month_name(i), *city.month(i)) for i in range(history)]
    figures: dict = {}
    with measured("bulk load", figures):
        versions = bulk_load(settings, months[:-1])
    month, findings, appeals = months[-1]
    landed = stage(settings, month, findings, appeals)
    silver = root / "silver"
    before = root / "silver-before"
    shutil.copytree(silver, before)
    delivered = delivered_findings(findings, month)
    runs: dict[str, list] = {"month": [], "re-delivery": [], "delta-rs MERGE": []}
    if spark is not None:
        runs["delta-spark MERGE"] = []
    expected = None
    for run in range(args.repeat):
        shutil.rmtree(silver)
        shutil.copytree(before, silver)
        with measured("month", figures):
            result = build_silver(month, "bench", landed, settings)
        runs["month"].append(figures["month"])
        if run == 0:
            expected = versions_of(silver / "findings")
        with measured("re-delivery", figures):
            build_silver(month, "bench-again", landed, settings)
        runs["re-delivery"].append(figures["re-delivery"])
        shutil.rmtree(silver)
        shutil.copytree(before, silver)
        with measured("delta-rs MERGE", figures):
            merge_alternative(str(silver / "findings"), delivered, month)
        runs["delta-rs MERGE"].append(figures["delta-rs MERGE"])
        if run == 0:
            assert versions_of(silver / "findings").equals(expected), \
                "the delta-rs MERGE left other versions than the silver step"
            touched = {"delta-rs MERGE": merge_files(silver / "findings")}
        if spark is not None:
            # a fresh path each run: Spark caches a table's log by path, and a copy put back
            # under the same path would be an older version than the one it holds
            spark_silver = root / f"silver-spark-{run}"
            shutil.copytree(before, spark_silver)
            with measured("delta-spark MERGE", figures):
                spark_merge_alternative(spark, str(spark_silver / "findings"), delivered, month)
            runs["delta-spark MERGE"].append(figures["delta-spark MERGE"])
            if run == 0:
                assert versions_of(spark_silver / "findings").equals(expected), \
                    "the delta-spark MERGE left other versions than the silver step"
                touched["delta-spark MERGE"] = merge_files(spark_silver / "findings")
            shutil.rmtree(spark_silver)
    for label, measured_runs in runs.items():
        figures[label] = sorted(measured_runs, key=lambda f: f["seconds"])[len(measured_runs) // 2]
    files = len(tables.data_files(catalog.SILVER_FINDINGS.at(settings)))
    corrections = sum(c["corrections"] for c in result["sources"].values())
    print(f"history {history:>2} months: {versions:,} finding versions in silver; month {month}: "
          f"{findings.num_rows:,} findings ({corrections:,} corrections), {appeals.num_rows:,} "
          f"appeals; earlier files rewritten: {result['rewritten']['findings']['files']} of "
          f"{files} ({result['rewritten']['findings']['rows']:,} rows)")
    print("  files removed / added by the MERGE: " + ", ".join(
        f"{label} {removed} / {added}" for label, (removed, added) in touched.items()))
    for label, f in figures.items():
        print(f"  {label:17} {f['seconds']:>7.1f} s   peak RSS {f['peak_rss_gib']:.2f} GiB"
              + (f"   (median of {args.repeat})" if label in runs else ""))
    shutil.rmtree(before, ignore_errors=True)
    return figures


def warm_up(args, spark=None) -> None:
    """One small month first, so that no measured month pays for imports and first calls
    (with `spark`, a delta-spark MERGE of a third month too)."""
    from citycredit.config import load_settings
    from citycredit.silver.task import build_silver

    root = args.dir / "warm-up"
    shutil.rmtree(root, ignore_errors=True)
    settings = dataclasses.replace(load_settings(), warehouse=root)
    city = City(500, 0, seed=2)
    for i in range(2):
        build_silver(month_name(i), "warm-up", stage(settings, month_name(i), *city.month(i)),
                     settings)
    if spark is not None:
        findings, _ = city.month(2)
        spark_merge_alternative(spark, str(root / "silver" / "findings"),
                                delivered_findings(findings, month_name(2)), month_name(2))
    shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-month", type=int, default=43_000,
                        help="new findings a month (43,000: 1.5 M versions after 36 months)")
    parser.add_argument("--adults", type=int, default=0,
                        help="add the provincial score of this many adults (full city: 2250000)")
    parser.add_argument("--histories", default="3,12,36", help="history lengths, in months")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/citycredit-silver-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median")
    parser.add_argument("--spark-merge", action="store_true",
                        help="also time the MERGE by delta-spark (local[2], 4g; needs Java and "
                             "the delta-spark jars of `make jars`)")
    args = parser.parse_args(argv)
    histories = [int(h) for h in args.histories.split(",")]
    spark = spark_session(args) if args.spark_merge else None
    warm_up(args, spark)
    results = {h: run_history(args, h, spark) for h in histories}
    short, long = results[min(histories)], results[max(histories)]
    print("silver step per month (median): " + ", ".join(
        f"{h}-month history {results[h]['month']['seconds']:.1f} s" for h in histories)
        + "; delta-rs MERGE: " + ", ".join(
        f"{results[h]['delta-rs MERGE']['seconds']:.1f} s" for h in histories)
        + ("; delta-spark MERGE: " + ", ".join(
            f"{results[h]['delta-spark MERGE']['seconds']:.1f} s" for h in histories)
           if spark is not None else ""))
    if spark is not None:
        from citycredit.io.spark import stop_spark
        stop_spark()
    print(f"long / short history, seconds per month: "
          f"{long['month']['seconds'] / max(short['month']['seconds'], 0.01):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
