"""Silver versions merged month by month (silver.versions.merge_month, silver.task.build_silver):
the table after any sequence of deliveries, re-deliveries and back-filled months equals the
versions recomputed from scratch, and a month touches only the files it has to. Real Delta tables
(delta-rs), no Spark."""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from citycredit import catalog
from citycredit.io import tables
from citycredit.silver.task import build_silver
from citycredit.silver.versions import merge_month, next_known_from

FINDING_COLUMNS = [c for c in catalog.SILVER_FINDINGS.columns if c != "known_until"]


def finding(source, record, month, status="active", quantity="1"):
    return {"source_id": source, "record_id": record, "subject_key": f"k-{record}",
            "item_code": "VOLUNTEER_SERVICE", "level": None, "quantity": Decimal(quantity),
            "occurred_on": dt.date(2026, 1, 1), "valid_until": None, "status": status,
            "case_ref": None, "known_from": month, "load_id": "t"}


def delivery(rows):
    schema = pa.schema([catalog.SILVER_FINDINGS.schema.field(c) for c in FINDING_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def from_scratch(deliveries: dict) -> list[tuple]:
    """{(source, month): rows} (the standing delivery of each) → every version with its
    known_until, computed the obvious way."""
    rows = [dict(r) for rs in deliveries.values() for r in rs]
    by_key: dict = {}
    for r in rows:
        by_key.setdefault((r["source_id"], r["record_id"]), []).append(r)
    for versions in by_key.values():
        versions.sort(key=lambda r: r["known_from"])
        for this, following in zip(versions, versions[1:] + [None]):
            this["known_until"] = following["known_from"] if following else None
    return sorted((r["source_id"], r["record_id"], r["known_from"], r["known_until"], r["status"],
                   r["quantity"]) for r in rows)


def in_table(location) -> list[tuple]:
    if not tables.exists(location):
        return []
    return sorted((r["source_id"], r["record_id"], r["known_from"], r["known_until"], r["status"],
                   r["quantity"]) for r in tables.read_arrow(location).to_pylist())


def land(location, standing, source_rows: dict, month):
    """Deliver `month` for the sources in source_rows ({source: rows}) and remember it."""
    for source, rows in source_rows.items():
        standing[(source, month)] = rows
    merge_month(location, delivery([r for rs in source_rows.values() for r in rs]), month,
                [{"source_id": s} for s in source_rows])


def test_next_known_from_is_the_next_delivery_month_of_the_same_key():
    versions = pa.table({"source_id": ["a", "a", "b", "a", "a"],
                         "record_id": ["1", "1", "1", "2", "1"],
                         "known_from": ["2026-03", "2026-01", "2026-01", "2026-02", "2026-02"]})
    assert next_known_from(versions, ["source_id", "record_id"]).to_pylist() == \
        [None, "2026-02", None, None, "2026-03"]


def test_any_order_of_deliveries_and_redeliveries_equals_recomputing_from_scratch(
        tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "FILE_ROWS", 7)      # months of several files each
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    rng = random.Random(5)
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    standing: dict = {}
    # month order: in order, then a re-delivery of an earlier month, a back-filled gap, and an
    # emptied re-delivery
    plan = [("2026-01", None), ("2026-02", None), ("2026-03", None), ("2026-05", None),
            ("2026-02", "redeliver"), ("2026-04", None), ("2026-03", "empty b"),
            ("2026-05", "redeliver"), ("2026-01", "redeliver")]
    serial = 0
    for month, how in plan:
        source_rows = {}
        for source in ("a", "b"):
            if how == "empty b" and source == "b":
                source_rows[source] = []
                continue
            rows = []
            for _ in range(rng.randint(5, 15)):
                serial += 1
                rows.append(finding(source, f"{source}{serial}", month))
            earlier = [r for (s, m), rs in standing.items() if s == source and m != month
                       for r in rs]
            for old in rng.sample(earlier, min(len(earlier), rng.randint(1, 6))):
                rows.append(finding(source, old["record_id"], month,
                                    status=rng.choice(["active", "revoked"]),
                                    quantity=str(rng.randint(1, 9))))
            # a key may come twice from the same source in different months: keep one per month
            rows = list({r["record_id"]: r for r in rows}.values())
            source_rows[source] = rows
        land(location, standing, source_rows, month)
        assert in_table(location) == from_scratch(standing), (month, how)
    assert {m for (_, m) in standing} == set(months)


def test_a_month_touches_only_its_partitions_and_the_files_of_the_versions_it_supersedes(
        tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "FILE_ROWS", 10)     # a month of a source: several files
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    standing: dict = {}
    for month in ("2026-01", "2026-02", "2026-03"):
        land(location, standing, {s: [finding(s, f"{s}-{month}-{i:02d}", month) for i in range(40)]
                                  for s in ("a", "b", "c")}, month)
    before = {f.path: f for f in tables.data_files(location)}
    assert sum(f.partition == {"source_id": "a", "known_from": "2026-01"}
               for f in before.values()) == 4
    # April: new records of a and b, and a correction of one of a's January records
    land(location, standing, {"a": [finding("a", "a-2026-04-00", "2026-04"),
                                    finding("a", "a-2026-01-17", "2026-04", quantity="5")],
                              "b": [finding("b", "b-2026-04-00", "2026-04")]}, "2026-04")
    after = tables.data_files(location)
    added = {(f.partition["source_id"], f.partition["known_from"]) for f in after
             if f.path not in before}
    assert added == {("a", "2026-01"), ("a", "2026-04"), ("b", "2026-04")}
    removed = [before[p] for p in set(before) - {f.path for f in after}]
    assert len(removed) == 1                    # of a's four January files, the one holding 17
    assert removed[0].min["record_id"] <= "a-2026-01-17" <= removed[0].max["record_id"]
    assert in_table(location) == from_scratch(standing)
    january = [r for r in in_table(location) if r[1] == "a-2026-01-17"]
    assert [(r[2], r[3]) for r in january] == [("2026-01", "2026-04"), ("2026-04", None)]


def staged(tmp_path, kind, source, month, rows):
    location = catalog.staging(kind).at(tmp_path)
    data = pa.Table.from_pylist([{**r, "source_id": source, "month": month, "load_id": "t"}
                                 for r in rows], schema=location.table.schema)
    tables.write_arrow(data, location, mode="overwrite",
                       replace={"source_id": source, "month": month})


def staged_finding(record, status="active"):
    return {"record_id": record, "subject_key": "k", "item_code": "BLOOD_DONATION", "level": None,
            "quantity": Decimal("200"), "occurred_on": dt.date(2026, 1, 5), "valid_until": None,
            "status": status, "case_ref": None}


def staged_appeal(appeal, record):
    return {"appeal_id": appeal, "appeal_source_id": "court", "record_id": record,
            "filed_on": dt.date(2026, 1, 9), "resolved_on": None, "outcome": None}


def landed(*sources):
    return [{"source_id": s, "status": "landed", "kind": k} for s, k in sources]


def test_build_silver_counts_corrections_and_a_redelivery_replaces_the_month(tmp_path, settings):
    settings = dataclasses.replace(settings, warehouse=tmp_path)
    staged(tmp_path, "findings", "court", "2026-01", [staged_finding("r1"), staged_finding("r2")])
    staged(tmp_path, "appeals", "appeals", "2026-01", [staged_appeal("ap1", "r1"),
                                                       staged_appeal("ap2", "r2")])
    build_silver("2026-01", "run1", landed(("court", "findings"), ("appeals", "appeals")), settings)
    staged(tmp_path, "findings", "court", "2026-02",
           [staged_finding("r1", "revoked"), staged_finding("r3")])
    result = build_silver("2026-02", "run2", landed(("court", "findings")), settings)
    assert result["sources"] == {"court": {"versions": 2, "corrections": 1, "revocations": 1}}
    assert result["tables"] == {"findings": 2}
    assert result["rewritten"]["findings"] == {"files": 1, "rows": 2}   # January's, for r1
    findings = catalog.SILVER_FINDINGS.at(settings)
    assert {(r[1], r[2], r[3]) for r in in_table(findings)} == {
        ("r1", "2026-01", "2026-02"), ("r2", "2026-01", None), ("r1", "2026-02", None),
        ("r3", "2026-02", None)}
    # February re-delivered, now empty: its versions go, and r1's January version is current again
    staged(tmp_path, "findings", "court", "2026-02", [])
    result = build_silver("2026-02", "run3", landed(("court", "findings")), settings)
    assert result["sources"]["court"] == {"versions": 0, "corrections": 0, "revocations": 0}
    assert {(r[1], r[2], r[3]) for r in in_table(findings)} == {
        ("r1", "2026-01", None), ("r2", "2026-01", None)}
    # January's appeals re-delivered with one appeal fewer: the month's appeals are replaced
    staged(tmp_path, "appeals", "appeals", "2026-01", [staged_appeal("ap2", "r2")])
    build_silver("2026-01", "run4", landed(("appeals", "appeals")), settings)
    appeals = tables.read_arrow(catalog.SILVER_APPEALS.at(settings)).to_pylist()
    assert [(a["appeal_id"], a["source_id"], a["known_from"], a["known_until"])
            for a in appeals] == [("ap2", "court", "2026-01", None)]


def test_silver_written_under_the_old_layout_is_rewritten_once(tmp_path, settings):
    settings = dataclasses.replace(settings, warehouse=tmp_path)
    location = catalog.SILVER_FINDINGS.at(settings)
    old = delivery([finding("court", "r1", "2026-01")])
    old = old.append_column("known_until", pa.nulls(1, pa.string())).select(
        catalog.SILVER_FINDINGS.columns)
    write_deltalake(location.path, old.cast(catalog.SILVER_FINDINGS.schema),
                           partition_by=["source_id"])
    staged(tmp_path, "findings", "court", "2026-02", [staged_finding("r1", "revoked")])
    build_silver("2026-02", "run", landed(("court", "findings")), settings)
    assert tables.partition_columns(location) == ["source_id", "known_from"]
    assert {(r[1], r[2], r[3], r[4]) for r in in_table(location)} == {
        ("r1", "2026-01", "2026-02", "active"), ("r1", "2026-02", None, "revoked")}


def test_rows_outside_the_replaced_partitions_are_refused(tmp_path):
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    rows = delivery([finding("a", "1", "2026-01")])
    rows = rows.append_column("known_until", pa.nulls(1, pa.string())).select(
        catalog.SILVER_FINDINGS.columns)
    with pytest.raises(tables.TableError, match="outside the partitions being replaced"):
        tables.replace_files(rows, location, partitions=[{"source_id": "b", "known_from": "2026-01"}])
    assert not tables.exists(location)
