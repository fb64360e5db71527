"""Erasure on real Delta tables (delta-rs; no Spark needed): rows gone from the current
version, their files and log entries gone from disk, time travel refused; tables outside the
catalogue erased too; an interrupted erasure completed by the next one."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from citycredit import catalog
from citycredit.identity import subject_key
from citycredit.io import tables
from citycredit.privacy.erasure import erase_due
from citycredit.privacy.scan import needles_for, scan_for
from citycredit.suppression import (COMPLETE, add_to_suppression_list,
                                            suppressed_keys, unfinished_erasures)

P = "37100219900115000X"
Q = "371002199001150026"
RECORD = [catalog.SUPPRESSION_LIST.id, catalog.ERASURE_LOG.id]


def put(location, rows: list[dict], **replace):
    schema = location.table.schema if hasattr(location, "table") else None
    data = pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows],
                                schema=schema)
    tables.write_arrow(data, location, mode="overwrite" if replace else "append",
                       replace=replace or None)


def test_delete_vacuum_and_purge_leave_nothing_on_disk(tmp_path):
    path = str(tmp_path / "t")
    keys = [f"{i:064x}" for i in range(300)]
    for part in range(3):       # three commits: statistics of each hold min/max keys
        tables.write_arrow(pa.table({"subject_key": keys, "n": list(range(300)),
                                     "part": [f"p{part}"] * 300}), path, partition_by=["part"])
    gone = keys[0]               # the minimum: in every commit's statistics
    before = tables.version(path)
    tables.delete_where(path, f"subject_key = {tables.sql_literal(gone)}")
    assert scan_for(needles_for(None, gone), tmp_path, tmp_path / "none", []).places
    tables.vacuum(path, retention_hours=0)
    tables.purge_history(path)
    result = scan_for(needles_for(None, gone), tmp_path, tmp_path / "none", [])
    assert result.places == [] and result.files > 3
    assert tables.read_arrow(path).num_rows == 897
    with pytest.raises(Exception):
        DeltaTable(path, version=before).to_pyarrow_table()
    assert DeltaTable(path).metadata().configuration[tables.LOG_RETENTION] == \
        tables.DEFAULT_LOG_RETENTION


def build_warehouse(settings):
    k, q = subject_key(P, settings.subject_key), subject_key(Q, settings.subject_key)
    put(catalog.SILVER_OPTOUTS.at(settings),
        [{"subject_key": k, "requested_on": dt.date(2026, 1, 5), "known_from": "2026-01"}])
    put(catalog.bronze("optouts", "optouts").at(settings),
        [{"source_id": "optouts", "id_number": P.lower(), "requested_on": "2026-01-05",
          "file": "o.csv", "line": 1, "month": "2026-01", "load_id": "r"}])
    put(catalog.bronze("court", "findings").at(settings),
        [{"source_id": "court", "record_id": "C-P", "id_number": P, "file": "c.csv",
          "line": 1, "month": "2026-01", "load_id": "r"},
         {"source_id": "court", "record_id": "C-Q", "id_number": Q, "file": "c.csv",
          "line": 2, "month": "2026-01", "load_id": "r"}])
    put(catalog.SILVER_FINDINGS.at(settings),
        [{"source_id": "court", "record_id": "C-P", "subject_key": k, "known_from": "2026-01"},
         {"source_id": "court", "record_id": "C-Q", "subject_key": q, "known_from": "2026-01"}])
    put(catalog.SILVER_APPEALS.at(settings),
        [{"appeal_id": "A-P", "source_id": "court", "record_id": "C-P", "known_from": "2026-01"},
         {"appeal_id": "A-Q", "source_id": "court", "record_id": "C-Q", "known_from": "2026-01"}])
    put(catalog.QUARANTINE.at(settings),
        [{"source_id": "court", "month": "2026-01", "file": "c.csv", "line": 3,
          "reasons": "unknown_item", "raw": "371002********000X", "subject_key": k},
         {"source_id": "court", "month": "2026-01", "file": "c.csv", "line": 4,
          "reasons": "unknown_item", "raw": "371002********0026", "subject_key": q}])
    sandbox = str(settings.warehouse / "sandbox" / "simulation")      # not in the catalogue
    tables.write_arrow(pa.table({"subject_key": [k, q], "score": [900, 1000]}), sandbox)
    return k, q, sandbox


def test_erasure_is_driven_by_the_catalogue_and_reaches_unknown_tables(settings):
    k, q, sandbox = build_warehouse(settings)
    done = erase_due(settings, "2026-01", "run-1")
    assert set(done.persons) == {k}
    assert done.rows == {"bronze/optouts": 1, "bronze/court": 1, "silver/findings": 1,
                         "silver/appeals": 1, "quarantine/rows": 1, "sandbox/simulation": 1,
                         "silver/optouts": 1}
    assert tables.read_arrow(sandbox).column("subject_key").to_pylist() == [q]
    assert tables.read_arrow(catalog.SILVER_APPEALS.at(settings)).column("appeal_id") \
        .to_pylist() == ["A-Q"]
    assert suppressed_keys(settings) == {k} and unfinished_erasures(settings) == {}
    scan = scan_for(needles_for(P, k), settings.warehouse, settings.landing, RECORD)
    assert scan.clean, scan.outside_record
    assert {p.table for p in scan.places} == set(RECORD)
    # nothing is due any more: a second erasure does nothing
    assert erase_due(settings, "2026-01", "run-2").persons == {}


def test_on_a_cluster_the_spark_written_tables_lose_the_rows_on_spark(settings, spark):
    """With a cluster configured (privacy.task.erase passes its session), gold's rows go by a
    delta-spark DELETE on the executors, the rest by delta-rs; the log says which; nothing of
    the person is left on disk either way."""
    from citycredit.io.spark import has_delta_spark

    assert has_delta_spark(spark), "make jars: the test session runs delta-spark"
    k, q, _sandbox = build_warehouse(settings)
    at = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)
    published = pa.Table.from_pylist(
        [{"subject_key": key, "scheme": "haibei", "score_month": "2026-01", "score": score,
          "grade": "A", "grade_label": "良好", "published_at": at, "run_id": "r1"}
         for key, score in ((k, 900), (q, 1000), (q + "0", 950))],
        schema=catalog.PUBLISHED_SCORES.schema)
    tables.write(spark.createDataFrame(published), catalog.PUBLISHED_SCORES.at(settings),
                 mode="overwrite", replace={"scheme": "haibei", "score_month": "2026-01"})
    # a draft's name is free text: Spark SQL escapes a quote unlike delta-rs ('' is 2 literals)
    simulated = pa.Table.from_pylist(
        [{"subject_key": key, "scheme": "haibei", "draft": "o'neil\\x", "score_month": "2026-01",
          "adopted_score": 900, "draft_score": 910} for key in (k, q)],
        schema=catalog.SIMULATED_SCORES.schema)
    tables.write(spark.createDataFrame(simulated), catalog.SIMULATED_SCORES.at(settings),
                 mode="overwrite", replace={"scheme": "haibei", "draft": "o'neil\\x",
                                            "score_month": "2026-01"})

    asked = []
    done = erase_due(settings, "2026-01", "run-1",
                     cluster_spark=lambda: asked.append(1) or spark)
    assert asked == [1]                                  # one session, asked for once
    assert done.rows["gold/published_scores"] == 1 and done.rows["bronze/court"] == 1
    assert done.rows["sandbox/simulated_scores"] == 1
    assert sorted(tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings))
                  .column("score").to_pylist()) == [950, 1000]
    log = tables.read_arrow(catalog.ERASURE_LOG.at(settings)).to_pylist()
    detail = {r["place"]: r["detail"] for r in log}
    assert detail["gold/published_scores"].startswith("rows deleted by delta-spark on the cluster")
    assert detail["sandbox/simulated_scores"].startswith("rows deleted by delta-spark")
    assert detail["bronze/court"].startswith("rows deleted;")
    scan = scan_for(needles_for(P, k), settings.warehouse, settings.landing, RECORD)
    assert scan.clean, scan.outside_record


def test_an_interrupted_erasure_is_completed_by_the_next_one(settings):
    """Interrupted after the suppression list was written; a re-landing then suppressed the
    opt-out itself (silver/optouts and bronze/optouts no longer have it): the list drives the
    erasure, and the number is found in the other bronze tables."""
    k, q, sandbox = build_warehouse(settings)
    add_to_suppression_list(settings, {k: dt.date(2026, 1, 5)}, "2026-01",
                            dt.datetime.now(dt.timezone.utc))
    put(catalog.SILVER_OPTOUTS.at(settings), [], known_from="2026-01")
    put(catalog.bronze("optouts", "optouts").at(settings), [], month="2026-01")
    assert unfinished_erasures(settings) == {k: dt.date(2026, 1, 5)}
    done = erase_due(settings, "2026-02", "run-3")
    assert set(done.persons) == {k}
    assert done.rows["bronze/court"] == 1 and done.rows["sandbox/simulation"] == 1
    assert unfinished_erasures(settings) == {}
    log = tables.read_arrow(catalog.ERASURE_LOG.at(settings)).to_pylist()
    assert [r["place"] for r in log if r["place"] == COMPLETE] == [COMPLETE]
    assert scan_for(needles_for(P, k), settings.warehouse, settings.landing, RECORD).clean


def test_the_scan_and_erase_commands(settings, monkeypatch):
    """`citycredit privacy-scan` exits 1 while the person is held, 0 after `citycredit erase`;
    it never prints the number."""
    from click.testing import CliRunner

    from citycredit.cli import cli

    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(settings.warehouse))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(settings.landing))
    settings.landing.mkdir(parents=True, exist_ok=True)      # the (empty) landing zone
    build_warehouse(settings)
    runner = CliRunner()
    before = runner.invoke(cli, ["privacy-scan", "--id-number", "-"], input=P + "\n")
    assert before.exit_code == 1, before.output
    assert "FOUND" in before.output and "bronze/court" in before.output
    assert P not in before.output and P.lower() not in before.output
    erased = runner.invoke(cli, ["erase", "--month", "2026-01"])
    assert erased.exit_code == 0, erased.output
    assert erased.output.startswith("1 person(s) erased")
    after = runner.invoke(cli, ["privacy-scan", "--id-number", P, "--json"])
    assert after.exit_code == 0, after.output
    assert "prefer --id-number - < file" in after.stderr and P not in after.stderr
    result = json.loads(after.stdout)
    assert result["clean"] and {p["table"] for p in result["places"]} == set(RECORD)
    usage = runner.invoke(cli, ["privacy-scan"])
    assert usage.exit_code == 2 and "exactly one of" in usage.output


def test_the_audit_log_is_kept_by_erasure_and_the_scan_allows_it(settings, monkeypatch):
    """Lookup records are the centre's legal trace of who looked (issue "Lookups" item 4):
    erasure keeps them, keyed by subject_key only; the chain still verifies; the scan reports
    the audit log as an allowed place, and finds a policy report that names the person."""
    from click.testing import CliRunner

    from citycredit.cli import cli
    from citycredit.lookup.audit import Entry, audit_log, now

    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(settings.warehouse))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(settings.landing))
    settings.landing.mkdir(parents=True, exist_ok=True)      # the (empty) landing zone
    reports = settings.warehouse.parent / "reports"
    monkeypatch.setenv("CITYCREDIT_REPORTS", str(reports))
    from citycredit.lookup.index import build_index
    from citycredit.rules import load_schemes
    from citycredit.synth.publication import publish_scores

    k, q, _sandbox = build_warehouse(settings)
    publish_scores(settings.warehouse, [k, q], load_schemes(settings.rules, ["haibei"])["haibei"],
                   "2026-01", scores=[1000, 1000])
    build_index(settings)                       # the lookup service's index holds P too
    log = audit_log(settings)                   # keyed, as the service writes it
    log.ensure()
    log.append([Entry(now(), "http", "BANK01", "loan", "haibei", "score", who, "granted", 200)
                for who in (k, q)])
    log.dispose()
    runner = CliRunner()
    assert runner.invoke(cli, ["erase", "--month", "2026-01"]).exit_code == 0
    kept = runner.invoke(cli, ["audit", "show", "--json", "--subject"], input=P + "\n")
    shown = [json.loads(line) for line in kept.output.splitlines() if line.strip()]
    assert kept.exit_code == 0 and [e["subject_key"] for e in shown] == [k]
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    scan = runner.invoke(cli, ["privacy-scan", "--id-number", P])
    assert scan.exit_code == 0, scan.output
    assert "allowed: lookup/audit.sqlite (lookup audit log, kept as the legal trace" in scan.output
    assert "allowed: privacy/suppression_list (erasure record" in scan.output
    assert "lookup/index" not in scan.output    # rebuilt by the erasure, without P
    # both persons in one pass (stdin, one a line): Q was not erased, P was
    both = runner.invoke(cli, ["privacy-scan", "--id-number", "-"], input=f"{Q}\n{P}\n")
    assert both.exit_code == 1 and "still hold persons 1 of 2" in both.output
    assert "FOUND person 1 " in both.output and "FOUND person 2 " not in both.output
    assert "allowed: person 2: privacy/erasure_log" in both.output
    assert P not in both.output and Q not in both.output
    # a report written before reports stopped holding keys: the scan looks there too
    reports.mkdir()
    (reports / "simulate-old-2026-01.json").write_text(json.dumps(
        {"explanation_sample": [{"subject_key": k}]}), encoding="utf-8")
    found = runner.invoke(cli, ["privacy-scan", "--subject-key", k])
    assert found.exit_code == 1
    assert "FOUND reports" in found.output and "simulate-old-2026-01.json" in found.output


def test_a_snapshot_in_key_range_files_loses_a_person_by_rewriting_one_file(tmp_path):
    # issue 20: silver/population is written sorted by subject_key in files of `file_rows`
    # rows; an erasure's delete (statistics pruning) rewrites only the file holding the person
    from dataclasses import replace

    from citycredit.privacy.erasure import _erase_rows

    table = replace(catalog.SILVER_POPULATION, file_rows=100)
    location = table.at(tmp_path)
    keys = [subject_key(f"{i}", "k") for i in range(1000)]          # random order, like HMACs
    rows = pa.Table.from_pylist([{"subject_key": k, "birth_date": dt.date(1980, 1, 1), "sex": "F",
                                  "district": "d", "residency": "local", "status": "active",
                                  "snapshot_month": "2026-01"} for k in keys], schema=table.schema)
    tables.replace_files(rows, location, partitions=[{"snapshot_month": "2026-01"}])
    files = tables.data_files(location)
    assert len(files) == 10
    ranges = sorted((f.min["subject_key"], f.max["subject_key"]) for f in files)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))     # disjoint key ranges
    gone = keys[123]
    assert _erase_rows(location, {gone}, {}, {}) == ({gone: 1}, "delta-rs")
    after = tables.data_files(location)
    assert len({f.path for f in files} - {f.path for f in after}) == 1   # one file rewritten
    assert len(after) == 10                     # into one file of its own key range
    ranges = sorted((f.min["subject_key"], f.max["subject_key"]) for f in after)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))
    assert tables.read_arrow(location).num_rows == 999
    assert gone not in tables.read_arrow(location, columns=["subject_key"]).column(0).to_pylist()
    # and again, two persons in two files: the other eight files are left as they were
    two = {keys[5], keys[900]}
    assert _erase_rows(location, two, {}, {}) == ({k: 1 for k in two}, "delta-rs")
    assert len({f.path for f in after} - {f.path for f in tables.data_files(location)}) <= 2
    assert tables.read_arrow(location).num_rows == 997
    assert not two & set(tables.read_arrow(location, columns=["subject_key"]).column(0).to_pylist())


def test_persons_in_every_month_of_a_snapshot_are_erased_in_one_commit(tmp_path):
    # the erasure rewrites the touched files a partition at a time (memory bounded by one
    # month's files: at full scale 187 persons touch every file of 35 months) and still commits
    # once: a reader sees every month with the persons or every month without them
    from dataclasses import replace

    from citycredit.privacy.erasure import _erase_rows

    table = replace(catalog.SILVER_POPULATION, file_rows=100)
    location = table.at(tmp_path)
    keys = [subject_key(f"{i}", "k") for i in range(500)]
    months = ["2026-01", "2026-02", "2026-03"]
    for month in months:
        rows = pa.Table.from_pylist([{"subject_key": k, "birth_date": dt.date(1980, 1, 1),
                                      "sex": "F", "district": "d", "residency": "local",
                                      "status": "active", "snapshot_month": month} for k in keys],
                                    schema=table.schema)
        tables.replace_files(rows, location, partitions=[{"snapshot_month": month}])
    before = tables.version(location)
    gone = {keys[7], keys[300]}
    assert _erase_rows(location, gone, {}, {}) == ({k: 3 for k in gone}, "delta-rs")
    assert tables.version(location) == before + 1                       # one commit
    left = tables.read_arrow(location, columns=["subject_key", "snapshot_month"])
    assert left.num_rows == 3 * 498
    assert not gone & set(left.column("subject_key").to_pylist())
    assert sorted(set(left.column("snapshot_month").to_pylist())) == months
    ranges = {}
    for f in tables.data_files(location):
        ranges.setdefault(f.partition["snapshot_month"], []).append(
            (f.min["subject_key"], f.max["subject_key"]))
    for month_ranges in ranges.values():                    # still disjoint key-range files
        month_ranges.sort()
        assert all(a[1] < b[0] for a, b in zip(month_ranges, month_ranges[1:]))


def test_a_record_corrected_to_another_person_keeps_its_appeal(settings):
    # silver/findings keeps every version: a record whose correction moved it from P to Q is
    # found there as shared (erasure no longer scans gold's lines for this), so P's version goes
    # and the appeal about the record, which is also about Q's finding, stays
    k, q, _sandbox = build_warehouse(settings)
    put(catalog.SILVER_FINDINGS.at(settings),
        [{"source_id": "court", "record_id": "C-S", "subject_key": k, "known_from": "2025-12",
          "known_until": "2026-01"},
         {"source_id": "court", "record_id": "C-S", "subject_key": q, "known_from": "2026-01"}])
    put(catalog.SILVER_APPEALS.at(settings),
        [{"appeal_id": "A-S", "source_id": "court", "record_id": "C-S", "known_from": "2026-01"}])
    done = erase_due(settings, "2026-01", "run-1")
    assert done.rows["silver/findings"] == 2           # C-P and P's version of C-S
    findings = tables.read_arrow(catalog.SILVER_FINDINGS.at(settings)).to_pylist()
    assert sorted((f["record_id"], f["subject_key"] == q) for f in findings) == \
        [("C-Q", True), ("C-S", True)]
    assert sorted(tables.read_arrow(catalog.SILVER_APPEALS.at(settings)).column("appeal_id")
                  .to_pylist()) == ["A-Q", "A-S"]


def test_a_failed_purge_sets_the_log_retention_back(tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    tables.write_arrow(pa.table({"subject_key": ["a", "b"]}), path)
    tables.write_arrow(pa.table({"subject_key": ["c"]}), path)

    def full_disk(self, *args, **kwargs):
        raise OSError("No space left on device")
    monkeypatch.setattr(DeltaTable, "cleanup_metadata", full_disk)
    with pytest.raises(OSError, match="No space left"):
        tables.purge_history(path)
    assert DeltaTable(path).metadata().configuration[tables.LOG_RETENTION] == \
        tables.DEFAULT_LOG_RETENTION
    assert tables.read_arrow(path).num_rows == 3


def test_a_purge_killed_at_zero_retention_is_repaired_by_the_next_erasure(settings):
    """Killed (a marked crash point, as SIGKILL would: no finally) while the log retention is
    0: the table is intact but would drop its history at every checkpoint; the next erasure
    sets the retention back first, then erases as usual."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from citycredit.crash import CRASH_VARIABLE

    k, _q, _sandbox = build_warehouse(settings)
    findings = catalog.SILVER_FINDINGS.at(settings).path
    killed = subprocess.run(
        [sys.executable, "-c", "import sys; from citycredit.io import tables; "
                               "tables.purge_history(sys.argv[1])", findings],
        env={**os.environ, CRASH_VARIABLE: "purge_history.retention_zero",
             "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True, text=True, timeout=120)
    assert killed.returncode == 137, killed.stderr
    assert DeltaTable(findings).metadata().configuration[tables.LOG_RETENTION] == \
        tables.PURGING_RETENTION
    assert tables.read_arrow(findings).num_rows == 2                  # nothing lost
    done = erase_due(settings, "2026-01", "run-after-a-kill")
    assert set(done.persons) == {k} and done.rows["silver/findings"] == 1
    for location in [catalog.SILVER_FINDINGS.at(settings), catalog.QUARANTINE.at(settings)]:
        assert DeltaTable(location.path).metadata().configuration[tables.LOG_RETENTION] == \
            tables.DEFAULT_LOG_RETENTION
