"""Landing in chunks (issue 15): `ingest.task.land_source` reads, checks and writes a delivery
chunk by chunk. Landed in chunks of a few rows, a month must be exactly what it is landed whole —
bronze, quarantine (reasons, details, raw), staging — with checks that span chunks (a duplicate
names the first row in another chunk and file) and the batch verdict over the whole delivery;
a rerun replaces the month; a refused delivery leaves staging alone; the spools are gone after.
"""
from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from citycredit import catalog
from citycredit.io.spool import SPOOL_PREFIX
from citycredit.ingest.task import BatchRejected, land_source
from citycredit.io import tables
from test_landing_validation import FINDINGS_HEADER, MONTH, deliver, id_with_x, idn

POP_HEADER = "id_number,district,residency,status"


def population(landing):
    people = [idn(seq=s) for s in range(1, 12)]
    a = [f"{p},371002,hukou,active" for p in people[:6]]
    a.insert(3, f"{idn(seq=40, good=False)},371002,hukou,active")        # bad_id_number
    b = [f"{p},371002,permit,active" for p in people[6:]]
    b.insert(1, f"{people[2]},371002,hukou,active")                       # repeats pop_a line 3
    b.insert(4, f"{idn(seq=41)},37100,hukou,nobody")                      # bad district, status
    table = pa.table({"id_number": [idn(seq=60), people[4], idn(seq=61)],   # repeats pop_a
                      "district": ["371002", "371002", None],                # missing_required
                      "residency": ["hukou"] * 3, "status": ["active"] * 3})
    deliver(landing, "population", {"pop_a.csv": POP_HEADER + "\n" + "\n".join(a) + "\n",
                                    "pop_b.csv": POP_HEADER + "\n" + "\n".join(b) + "\n",
                                    "pop_c.parquet": table})


def findings(landing):
    good = idn()
    rows = [f"T{i},{good},张三,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active," for i in range(1, 8)]
    rows[2] = f"T3,{idn(good=False)},王五,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,"
    rows[5] = f"T2,{id_with_x()},李四,DEBT_PERFORMED,,,2026-01-31,,active,"   # repeats T2
    rows.insert(4, f'T8,{good},张三,DEBT_PERFORMED,,,2026-01-06,,active,"JJ-2026\n第1号"')
    rows.append('T9,"broken,quoting')
    deliver(landing, "court", {"court.csv": FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"})


def traffic(landing):
    import json

    good = idn()
    lines = [json.dumps({"record_id": f"J{i}", "id_number": good, "name": "张三",
                         "item_code": "ADMIN_PENALTY", "level": "minor", "quantity": 12.5,
                         "occurred_on": "2026-01-05", "status": "active"}, ensure_ascii=False)
             for i in range(1, 8)]
    lines[1] = lines[1].replace('"minor"', '"huge"')                       # unknown_level
    lines[3] = "not json at all"                                           # unparseable_row
    lines[5] = lines[5].replace('"status"', '"religion": "x", "status"')   # forbidden_field
    lines.insert(4, "")
    lines.append(lines[0])                                                 # duplicate J1
    deliver(landing, "traffic_police", {"tp.jsonl": "\n".join(lines) + "\n"})


def month_tables(settings, source_id, kind):
    where = {"source_id": source_id, "month": MONTH}
    out = {}
    for name, location, filt in (
            ("bronze", catalog.bronze(source_id, kind).at(settings), {"month": MONTH}),
            ("quarantine", catalog.QUARANTINE.at(settings), where),
            ("staging", catalog.staging(kind).at(settings), where)):
        if tables.exists(location):
            rows = tables.read_arrow(location, where=filt).to_pylist()
            out[name] = sorted(rows, key=lambda r: sorted((k, str(v)) for k, v in r.items()))
    return out


def lenient(settings):
    return dataclasses.replace(settings, validation={**settings.validation,
                                                     "max_bad_share": 1.0})


def strict(settings):
    """One bad row in twenty stops the month (a refused delivery)."""
    return dataclasses.replace(settings, validation={**settings.validation,
                                                     "max_bad_share": 0.05, "min_bad_rows": 1})


def court_versions(settings) -> dict:
    """The Delta versions of the tables a court delivery lands in."""
    return {t: tables.version(loc) for t, loc in (
        ("bronze", catalog.bronze("court", "findings").at(settings)),
        ("quarantine", catalog.QUARANTINE.at(settings)),
        ("staging", catalog.staging("findings").at(settings)))}


@pytest.mark.parametrize("source_id,kind,make", [("population", "population", population),
                                                 ("court", "findings", findings),
                                                 ("traffic_police", "findings", traffic)])
def test_a_month_landed_in_chunks_is_the_month_landed_whole(settings, tmp_path, source_id,
                                                            kind, make):
    make(settings.landing)
    whole_settings = dataclasses.replace(lenient(settings), warehouse=tmp_path / "whole")
    whole = land_source(source_id, MONTH, "r1", whole_settings, chunk_rows=1_000_000)
    chunked = land_source(source_id, MONTH, "r1", lenient(settings), chunk_rows=2)
    for key in ("landed", "accepted", "quarantined", "by_reason", "files"):
        assert chunked[key] == whole[key], key
    assert chunked["quarantined"] >= 3 and chunked["accepted"] >= 4
    assert month_tables(settings, source_id, kind) == month_tables(whole_settings, source_id,
                                                                   kind)
    assert not [p for p in settings.warehouse.iterdir() if p.name.startswith(SPOOL_PREFIX)]


def test_a_quoted_value_with_a_line_break_stays_one_row_across_blocks(settings):
    findings(settings.landing)
    land_source("court", MONTH, "r1", lenient(settings), chunk_rows=1)
    staged = tables.read_arrow(catalog.staging("findings").at(settings),
                               where={"source_id": "court", "month": MONTH}).to_pylist()
    assert [r["case_ref"] for r in staged if r["record_id"] == "T8"] == ["JJ-2026\n第1号"]
    bronze = tables.read_arrow(catalog.bronze("court", "findings").at(settings)).to_pylist()
    assert {r["record_id"]: r["line"] for r in bronze}["T8"] == 5
    assert max(r["line"] for r in bronze) == 10          # T9, after the two-line record


def test_a_duplicate_in_a_later_chunk_names_the_first_row(settings):
    population(settings.landing)
    landed = land_source("population", MONTH, "r1", lenient(settings), chunk_rows=2)
    assert landed["by_reason"]["duplicate_id_number"] == 2
    q = tables.read_arrow(catalog.QUARANTINE.at(settings),
                          where={"source_id": "population", "month": MONTH}).to_pylist()
    details = {(r["file"], r["line"]): r["detail"] for r in q}
    assert details[("pop_b.csv", 2)] == "the same id_number as pop_a.csv line 3"
    assert details[("pop_c.parquet", 2)] == "the same id_number as pop_a.csv line 6"
    assert details[("pop_a.csv", 4)].startswith("id_number: ")
    assert details[("pop_c.parquet", 3)] == "district is missing"


def test_a_rerun_in_chunks_replaces_the_month(settings):
    findings(settings.landing)
    first = land_source("court", MONTH, "r1", lenient(settings), chunk_rows=3)
    again = land_source("court", MONTH, "r2", lenient(settings), chunk_rows=3)
    assert again["accepted"] == first["accepted"]
    month = month_tables(settings, "court", "findings")
    assert len(month["bronze"]) == first["landed"]
    assert len(month["staging"]) == first["accepted"]
    assert len(month["quarantine"]) == first["quarantined"]
    assert {r["load_id"] for rows in month.values() for r in rows} == {"r2"}


def test_a_refused_delivery_in_chunks_keeps_staging_out_and_quarantine_in(settings):
    findings(settings.landing)
    with pytest.raises(BatchRejected, match=r"court 2026-01: .*3 of 9 rows quarantined.*"
                                            r"Bad rows by file: court.csv 3 of 9"):
        land_source("court", MONTH, "r1", strict(settings), chunk_rows=2)
    month = month_tables(settings, "court", "findings")
    assert "staging" not in month
    assert len(month["bronze"]) == 9 and len(month["quarantine"]) == 3
    assert not [p for p in settings.warehouse.iterdir() if p.name.startswith(SPOOL_PREFIX)]


def test_a_rejected_redelivery_leaves_the_month_as_it_was_landed(settings):
    """A re-delivery of a landed month that is rejected changes nothing: bronze, quarantine and
    staging keep the first landing (same table versions, same rows)."""
    findings(settings.landing)
    first = land_source("court", MONTH, "r1", lenient(settings), chunk_rows=3)
    before = month_tables(settings, "court", "findings")
    versions = court_versions(settings)
    with pytest.raises(BatchRejected, match=r"court 2026-01: delivery rejected.*the month as "
                                            r"landed before stands"):
        land_source("court", MONTH, "r2", strict(settings), chunk_rows=3)
    assert month_tables(settings, "court", "findings") == before
    assert {r["load_id"] for rows in before.values() for r in rows} == {"r1"}
    assert len(before["staging"]) == first["accepted"]
    assert versions == court_versions(settings)


REDELIVER = """import dataclasses, sys
from pathlib import Path
from citycredit.config import load_settings
from citycredit.ingest.task import land_source
settings = load_settings(Path(sys.argv[1]), env="local")
settings = dataclasses.replace(settings, validation={**settings.validation, "max_bad_share": 1.0})
land_source("court", sys.argv[2], "r2", settings, chunk_rows=3)
"""


def test_a_redelivery_killed_after_bronze_is_landed_whole_by_the_rerun(settings, tmp_path):
    """Killed (a marked crash point, as SIGKILL would) after bronze took the re-delivery and
    before quarantine and staging did: the month's step failed, and its rerun lands the
    delivery into all three, nothing of the first landing left beside it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from citycredit.crash import CRASH_VARIABLE

    findings(settings.landing)
    land_source("court", MONTH, "r1", lenient(settings), chunk_rows=3)
    folder = settings.landing / "court" / MONTH
    header, rest = (folder / "court.csv").read_text(encoding="utf-8").split("\n", 1)
    (folder / "court.csv").write_text(                                    # one more finding
        f"{header}\nT10,{idn()},张三,DEBT_PERFORMED,,,2026-01-07,,active,\n{rest}",
        encoding="utf-8")
    project = Path(__file__).resolve().parents[2]
    script = tmp_path / "redeliver.py"      # a file, not -c: pyspark.sql.connect, imported by
    script.write_text(REDELIVER)            # GX, exits a process whose __main__ has no file
    killed = subprocess.run(
        [sys.executable, str(script), str(project / "conf"), MONTH], cwd=tmp_path,
        env={**os.environ, CRASH_VARIABLE: "land_source.bronze_written",
             "PYTHONPATH": str(project)}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-2000:]
    month = month_tables(settings, "court", "findings")
    assert {r["load_id"] for r in month["bronze"]} == {"r2"}               # the window
    assert {r["load_id"] for r in month["staging"]} == {"r1"}
    again = land_source("court", MONTH, "r3", lenient(settings), chunk_rows=3)
    month = month_tables(settings, "court", "findings")
    assert {r["load_id"] for rows in month.values() for r in rows} == {"r3"}
    assert (len(month["bronze"]), len(month["staging"]), len(month["quarantine"])) == \
        (again["landed"], again["accepted"], again["quarantined"]) == (10, 7, 3)
    assert "T10" in {r["record_id"] for r in month["staging"]}
