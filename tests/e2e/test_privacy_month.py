"""Opt-out erasure end to end (issue "Privacy" item 6): real files, GX, Spark and Delta.

A generated city; one adult, P, gets findings from four departments (csv utf-8, csv gb18030,
jsonl — with a lower-case `x` check character —, parquet), a quarantined row, an appeal and a
volunteer record in month 2, and is scored in every scheme in month 1; P opts out in month 2.
A control city is the same landing with P's rows stripped by this test's own code (P never
existed). The tests then check what the checker checks: an independent scan of every file under
the warehouse and landing finds P only in the suppression list and erasure log; time travel to
before the erasure fails; a late re-delivery, reruns of both months and a backfill from the
warehouse (landing folders gone) do not bring P back; everyone else's scores equal the control
city's; landed = accepted + quarantined + suppressed.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from citycredit import catalog, pipeline
from citycredit.config import load_settings
from citycredit.identity import id_number_tokens, is_valid_id_number, subject_key
from citycredit.io import tables
from citycredit.privacy.task import cleanup, privacy_scan
from citycredit.synth import generate_city

PROJECT = Path(__file__).resolve().parents[2]
MONTHS = ["2026-01", "2026-02"]
SCHEMES = ["bailu", "dazixiang", "haibei", "huzhou"]
RECORD = ("privacy/suppression_list", "privacy/erasure_log")


def settings_for(root: Path, conf: Path = PROJECT / "conf"):
    return load_settings(conf, env="local", environ={
        "CITYCREDIT_LANDING": str(root / "landing"), "CITYCREDIT_WAREHOUSE": str(root / "warehouse"),
        "CITYCREDIT_RULES": str(PROJECT / "rules"),
        "CITYCREDIT_EXPECTATIONS": str(PROJECT / "expectations")})


def published(settings, month):
    rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings), where={"score_month": month})
    return sorted(zip(rows.column("scheme").to_pylist(), rows.column("subject_key").to_pylist(),
                      rows.column("score").to_pylist(), rows.column("grade").to_pylist()))


# ---- the city and P ---------------------------------------------------------------------------
def pick_person(landing: Path) -> str:
    """An active adult of both months' snapshots whose number ends in X and who never opts out."""
    optouts = "".join(p.read_text("utf-8") for p in (landing / "optouts").rglob("*.csv"))
    snapshots = [pq.read_table(next((landing / "population" / m).glob("*.parquet")))
                 for m in MONTHS]
    both = set(snapshots[0].column("id_number").to_pylist()) & \
        set(snapshots[1].column("id_number").to_pylist())
    for row in snapshots[0].to_pylist():
        number = row["id_number"]
        if (number in both and number.endswith("X") and row["status"] == "active"
                and number[6:10] < "1990" and number not in optouts):
            return number
    raise AssertionError("no candidate for P in the generated city")


def _add_manifest_rows(folder: Path, n: int) -> None:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text("utf-8"))
        data["row_count"] += n
        manifest.write_text(json.dumps(data), encoding="utf-8")


def append_csv(folder: Path, rows: list[list], encoding="utf-8") -> None:
    path = next(folder.glob("*.csv"))
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    path.write_bytes(data + buffer.getvalue().encode(encoding))
    _add_manifest_rows(folder, len(rows))


def append_jsonl(folder: Path, rows: list[dict]) -> None:
    path = next(folder.glob("*.jsonl"))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
    _add_manifest_rows(folder, len(rows))


def append_parquet(folder: Path, rows: list[dict]) -> None:
    path = next(folder.glob("*.parquet"))
    table = pq.read_table(path)
    extra = pa.Table.from_pylist(rows, schema=table.schema)
    pq.write_table(pa.concat_tables([table, extra]), path)
    _add_manifest_rows(folder, len(rows))


def finding(record_id, number, item, level=None, quantity=None, occurred="2026-01-10"):
    return [record_id, number, "王某某", item, level, quantity, occurred, None, "active", None]


def inject(landing: Path, number: str) -> None:
    """P's rows: findings of four departments, a bad row, an appeal (month 1); a volunteer
    record and the opt-out (month 2)."""
    m1, m2 = "2026-01", "2026-02"
    append_csv(landing / "court" / m1, [
        finding("PRIV-C1", number, "COURT_DISHONEST_DEBTOR"),
        finding("PRIV-C2", number, "NOT_AN_ITEM")])                     # quarantined
    append_csv(landing / "civilization_office" / m1,
               [finding("PRIV-W1", number, "COMMENDATION", "municipal")], encoding="gb18030")
    append_jsonl(landing / "traffic_police" / m1, [dict(zip(
        ["record_id", "id_number", "name", "item_code", "level", "quantity", "occurred_on",
         "valid_until", "status", "case_ref"],
        finding("PRIV-T1", number.lower(), "ADMIN_PENALTY", "general")))])
    append_parquet(landing / "market_regulation" / m1, [{
        "record_id": "PRIV-M1", "id_number": number, "name": "王某某",
        "item_code": "ADMIN_PENALTY", "level": "minor", "quantity": None,
        "occurred_on": dt.date(2026, 1, 12), "valid_until": None, "status": "active",
        "case_ref": None}])
    append_csv(landing / "appeals" / m1, [["PRIV-A1", "court", "PRIV-C1", "2026-01-20", None, None]])
    append_jsonl(landing / "volunteer_federation" / m2, [dict(zip(
        ["record_id", "id_number", "name", "item_code", "level", "quantity", "occurred_on",
         "valid_until", "status", "case_ref"],
        finding("PRIV-V1", number, "VOLUNTEER_SERVICE", quantity="12", occurred="2026-02-03")))])
    append_csv(landing / "optouts" / m2, [[number, "2026-02-10"]])


def strip_person(landing: Path, number: str) -> None:
    """The control city: every line or row holding P's number (or P's appeal) removed, the
    manifests lowered — P never existed. Independent of citycredit.privacy."""
    needles = (number, number.lower(), "PRIV-A1")
    for path in sorted(p for p in landing.rglob("*") if p.is_file() and not p.name.startswith("_")):
        removed = 0
        if path.suffix in (".csv", ".jsonl"):
            lines = path.read_bytes().split(b"\n")
            kept = [l for l in lines if not any(n.encode() in l for n in needles)]
            removed = len(lines) - len(kept)
            path.write_bytes(b"\n".join(kept))
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            if "id_number" in table.column_names:
                keep = pc.invert(pc.fill_null(pc.is_in(pc.utf8_upper(table["id_number"]),
                                                       value_set=pa.array([number])), False))
                removed = table.num_rows - table.filter(keep).num_rows
                pq.write_table(table.filter(keep), path)
        if removed:
            _add_manifest_rows(path.parent, -removed)


def independent_scan(roots: list[Path], needles: list[str]) -> set[tuple[str, str]]:
    """(file, column) of every place holding a needle: Parquet column by column (values as
    text, nested ones too), every other file as bytes. Shares no code with citycredit."""
    found = set()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
                table = pq.read_table(path)
                for name in table.column_names:
                    texts = [json.dumps(v, default=str) for v in table[name].to_pylist()]
                    if any(n in t for t in texts for n in needles):
                        found.add((str(path.relative_to(root.parent)), name))
            elif any(n.encode() in data for n in needles):
                found.add((str(path.relative_to(root.parent)), "-"))
    return found


def outside_record(places) -> set:
    return {p for p in places if not any(f"warehouse/{r}/" in p[0] for r in RECORD)}


def rows_of(settings, key: str) -> dict[str, int]:
    """Rows holding `key` in a subject_key column, per catalogue table (current snapshots)."""
    out = {}
    for table in catalog.all_tables(settings.sources):
        if table.erasure_record:
            continue
        location = table.at(settings)
        if "subject_key" in table.columns and tables.exists(location) and \
                "subject_key" in tables.arrow_schema(location).names:
            keys = tables.read_arrow(location, columns=["subject_key"]).column(0).to_pylist()
            if key in keys:
                out[table.id] = keys.count(key)
    return out


def appeal_ids(settings) -> set[str]:
    return set(tables.read_arrow(catalog.SILVER_APPEALS.at(settings),
                                 columns=["appeal_id"]).column(0).to_pylist())


# ---- the scenario -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scenario(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("privacy")
    generated = root / "generated"
    generate_city(generated, adults=600, months=2, end=MONTHS[-1], seed=5, bad_share=0.01)
    number = pick_person(generated)
    inject(generated, number)
    erased, control = root / "erased", root / "control"
    shutil.copytree(generated, erased / "landing")
    shutil.copytree(generated, control / "landing")
    strip_person(control / "landing", number)
    settings = settings_for(erased)
    key = subject_key(number, settings.subject_key)
    out = {"number": number, "key": key, "settings": settings, "root": root}

    out["run1"] = pipeline.run_month(MONTHS[0], SCHEMES, settings=settings)
    out["before"] = rows_of(settings, key)
    out["quarantine_before"] = tables.read_arrow(catalog.QUARANTINE.at(settings)).to_pylist()
    out["appeals_before"] = tables.read_arrow(catalog.SILVER_APPEALS.at(settings)).to_pylist()
    out["versions_before"] = {t.id: tables.version(t.at(settings))
                              for t in (catalog.SCORES, catalog.bronze("court", "findings"),
                                        catalog.SILVER_FINDINGS)}
    out["run2"] = pipeline.run_month(MONTHS[1], SCHEMES, settings=settings)
    out["after"] = rows_of(settings, key)
    out["scan"] = privacy_scan(id_number=number, settings=settings)
    out["independent"] = independent_scan([settings.warehouse, settings.landing],
                                          [number, number.lower(), key])
    out["published"] = {m: published(settings, m) for m in MONTHS}
    out["published_at"] = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings),
                                            where={"score_month": MONTHS[1]},
                                            columns=["published_at"]).column(0).to_pylist()
    out["erased_at"] = [r["erased_at"] for r in tables.read_arrow(
        catalog.ERASURE_LOG.at(settings)).to_pylist() if r["subject_key"] == key]

    # a late re-delivery of court 2026-01 about P, then both months rerun
    append_csv(settings.landing / "court" / MONTHS[0],
               [finding("PRIV-C9", number, "COURT_DISHONEST_DEBTOR")])
    # and the appeal about P's erased finding delivered again (it names the finding, not P)
    append_csv(settings.landing / "appeals" / MONTHS[0],
               [["PRIV-A1", "court", "PRIV-C1", "2026-01-20", None, None]])
    out["rerun1"] = pipeline.run_month(MONTHS[0], SCHEMES, settings=settings)
    out["rerun2"] = pipeline.run_month(MONTHS[1], SCHEMES, settings=settings)
    out["rescan"] = privacy_scan(id_number=number, settings=settings)
    out["reindependent"] = independent_scan([settings.warehouse, settings.landing],
                                            [number, number.lower(), key])
    out["republished"] = {m: published(settings, m) for m in MONTHS}
    out["appeals_after_reruns"] = appeal_ids(settings)

    control_settings = settings_for(control)
    for month in MONTHS:
        pipeline.run_month(month, SCHEMES, settings=control_settings)
    out["control"] = {m: published(control_settings, m) for m in MONTHS}
    return out


# ---- before: P is everywhere ---------------------------------------------------------------------
def test_before_the_opt_out_the_person_is_in_every_kind_of_table(scenario):
    before = scenario["before"]
    for table in ("staging/findings", "staging/population", "silver/findings",
                  "silver/population", "gold/scores", "gold/score_lines",
                  "gold/published_scores", "quarantine/rows"):
        assert before.get(table), (table, before)
    # four sources' findings, scored in every scheme
    assert before["silver/findings"] >= 4
    assert before["gold/published_scores"] == len(SCHEMES)
    assert any(a["appeal_id"] == "PRIV-A1" for a in scenario["appeals_before"])


def test_quarantine_keeps_numbers_masked_with_the_subject_key(scenario):
    mine = [q for q in scenario["quarantine_before"] if q["subject_key"] == scenario["key"]]
    assert len(mine) == 1 and "unknown_item" in mine[0]["reasons"]
    number = scenario["number"]
    assert number not in mine[0]["raw"]
    assert f"{number[:6]}********{number[-4:]}" in mine[0]["raw"]
    assert mine[0]["file"].startswith("court_") and mine[0]["line"] > 0
    for row in scenario["quarantine_before"]:       # no valid clear number in any row
        assert not any(is_valid_id_number(t) for t in id_number_tokens(row["raw"])), row


def test_gx_results_and_data_docs_hold_no_identity_numbers(scenario):
    pages = list((scenario["settings"].warehouse / "validation_results").rglob("*.*"))
    assert {p.suffix for p in pages} == {".json", ".html"}
    for page in pages:
        text = page.read_text("utf-8")
        assert not any(is_valid_id_number(t) for t in id_number_tokens(text)), page


# ---- after month 2: gone everywhere but the erasure record ----------------------------------------
def test_after_the_month_of_the_opt_out_no_table_holds_the_person(scenario):
    assert scenario["after"] == {}
    erased = scenario["run2"]["erased"]
    assert erased["persons"] >= 2                    # P and the generator's own opt-out
    assert erased["landing_files"] >= 6
    assert "erased:" in scenario["run2"]["summary"]


def test_the_month_of_the_opt_out_is_published_without_the_person_before_the_erasure(scenario):
    # erasure runs after publication (issue 20): P, who opted out in month 2, was still in
    # silver when month 2 was scored and published, and is not among its published scores
    assert scenario["published_at"] and scenario["erased_at"]
    assert max(scenario["published_at"]) < min(scenario["erased_at"])
    keys = {key for _scheme, key, _score, _grade in scenario["published"][MONTHS[1]]}
    assert scenario["key"] not in keys and len(keys) > 100
    assert list(scenario["run2"]["stages"])[-2:] == ["publish", "erase"]


def test_the_privacy_scan_finds_the_person_only_in_the_erasure_record(scenario):
    scan = scenario["scan"]
    assert scan.clean, scan.outside_record
    assert {p.table for p in scan.places} == set(RECORD)
    assert all(p.found == "subject key" for p in scan.places)     # never the number
    assert scan.files > 100


def test_an_independent_scan_of_every_file_agrees(scenario):
    found = scenario["independent"]
    assert found, "the erasure record holds the key"
    assert outside_record(found) == set()


def test_time_travel_to_before_the_erasure_fails(scenario):
    """The log before the erasure is purged and its files vacuumed: loading an earlier version
    fails rather than return the person's rows."""
    settings = scenario["settings"]
    for table_id, version in scenario["versions_before"].items():
        layer, name = table_id.split("/")
        location = str(settings.warehouse / layer / name)
        with pytest.raises(Exception):
            DeltaTable(location, version=version).to_pyarrow_table()
        assert tables.version(location) > version


def test_the_erasure_log_says_what_was_removed_without_other_personal_data(scenario):
    log = tables.read_arrow(catalog.ERASURE_LOG.at(scenario["settings"])).to_pylist()
    mine = [r for r in log if r["subject_key"] == scenario["key"]]
    places = {r["place"] for r in mine}
    assert {"bronze/court", "bronze/civilization_office", "bronze/traffic_police",
            "bronze/market_regulation", "bronze/population", "bronze/optouts", "silver/findings",
            "silver/appeals", "gold/scores", "gold/published_scores", "quarantine/rows",
            "complete"} <= places
    assert any(p.startswith("landing/court/2026-01/") for p in places)
    assert all(r["requested_on"] == dt.date(2026, 2, 10) for r in mine)
    suppressed = tables.read_arrow(catalog.SUPPRESSION_LIST.at(scenario["settings"])).to_pylist()
    assert [r["subject_key"] for r in suppressed].count(scenario["key"]) == 1


def test_landing_files_were_rewritten_and_still_reconcile(scenario):
    landing = scenario["settings"].landing
    for path in landing.rglob("*"):
        if path.is_file():
            assert scenario["number"].encode() not in path.read_bytes().upper(), path
    # the rerun of month 1 re-landed every rewritten delivery: manifests matched


# ---- reruns and late deliveries ----------------------------------------------------------------
def test_a_late_delivery_about_the_person_is_suppressed_and_reconciles(scenario):
    court = next(d for d in scenario["rerun1"]["landed"] if d["source_id"] == "court")
    assert court["suppressed"] == 1
    assert court["landed"] == court["accepted"] + court["quarantined"] + court["suppressed"]
    assert "suppr." in scenario["rerun1"]["summary"]
    # the delivery file lost the row too (the scan of landing finds nothing), and the log says so
    log = tables.read_arrow(catalog.ERASURE_LOG.at(scenario["settings"])).to_pylist()
    late = [r for r in log if r["detail"].startswith("late delivery")]
    assert [(r["subject_key"], r["place"], r["rows_removed"]) for r in late
            if r["place"].startswith("landing/court/")] == [
        (scenario["key"], "landing/court/2026-01/court_2026-01_01.csv", 1)]
    report = tables.read_arrow(catalog.RUN_REPORT.at(scenario["settings"])).to_pylist()
    for row in report:
        if row["section"] == "source":
            m = json.loads(row["metrics"])
            assert m["landed"] == m["accepted"] + m["quarantined"] + m.get("suppressed", 0), row


def test_a_redelivered_appeal_about_the_erased_finding_is_suppressed(scenario):
    """An appeal names a finding, not a person: the erasure recorded P's findings (keyed), so
    the re-delivered appeal about P's court finding is dropped at landing and counted."""
    appeals = next(d for d in scenario["rerun1"]["landed"] if d["source_id"] == "appeals")
    assert appeals["suppressed"] == 1
    assert appeals["landed"] == appeals["accepted"] + appeals["quarantined"] + 1
    assert "PRIV-A1" in {a["appeal_id"] for a in scenario["appeals_before"]}
    assert "PRIV-A1" not in scenario["appeals_after_reruns"]
    report = tables.read_arrow(catalog.RUN_REPORT.at(scenario["settings"])).to_pylist()
    counted = [json.loads(r["metrics"])["suppressed"] for r in report
               if r["section"] == "source" and r["name"] == "appeals"
               and r["run_id"] == scenario["rerun1"]["run_id"]]
    assert counted == [1]                # the run report shows it
    log = tables.read_arrow(catalog.ERASURE_LOG.at(scenario["settings"])).to_pylist()
    late = [(r["subject_key"], r["rows_removed"]) for r in log
            if r["place"].startswith("landing/appeals/2026-01/")
            and r["detail"].startswith("late delivery")]
    assert late == [(None, 1)]           # the landing file lost it too; no key: none is known
    for path in (scenario["settings"].landing / "appeals").rglob("*.csv"):
        assert b"PRIV-A1" not in path.read_bytes(), path


def test_reruns_do_not_bring_the_person_back(scenario):
    assert scenario["rescan"].clean, scenario["rescan"].outside_record
    assert outside_record(scenario["reindependent"]) == set()
    assert scenario["rerun1"]["erased"]["persons"] == 0
    assert scenario["republished"] == scenario["published"]


def test_everyone_elses_scores_equal_a_city_where_the_person_never_existed(scenario):
    for month in MONTHS:
        assert scenario["control"][month], month
        assert scenario["published"][month] == scenario["control"][month], month
        assert scenario["republished"][month] == scenario["control"][month], month
        assert scenario["key"] not in {k for _s, k, *_ in scenario["published"][month]}


# ---- housekeeping ------------------------------------------------------------------------------
def test_cleanup_then_a_backfill_runs_from_the_warehouse(scenario, tmp_path):
    """Landing retention deletes month 1's deliveries; a rerun of month 1 takes bronze,
    quarantine and staging as they stand and publishes the same scores."""
    settings = scenario["settings"]
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    (conf / "local.yaml").write_text((conf / "local.yaml").read_text() +
                                     "landing:\n  retention_months: 1\n")
    short = settings_for(scenario["root"] / "erased", conf)
    leftover = settings.warehouse / "gold" / "scores" / "_staging-killed"
    leftover.mkdir()
    (leftover / "part-0.parquet").write_bytes(b"x")
    old = dt.datetime.now().timestamp() - 2 * 3600
    os.utime(leftover / "part-0.parquet", (old, old))
    os.utime(leftover, (old, old))
    spool = settings.warehouse / "_landing-spool-killed"     # a killed landing's spool
    spool.mkdir()
    (spool / "bronze.arrow").write_bytes(b"x")
    os.utime(spool / "bronze.arrow", (old, old))
    os.utime(spool, (old, old))
    done = cleanup(short, today=dt.date(2026, 3, 15))
    assert done["landing_before"] == "2026-02"
    assert len(done["deliveries_removed"]) == len(settings.sources)
    assert not (settings.landing / "court" / "2026-01").exists()
    assert (settings.landing / "court" / "2026-02").exists()
    assert str(leftover) in done["staging_removed"] and not leftover.exists()
    assert str(spool) in done["staging_removed"] and not spool.exists()

    deliveries = pipeline.check_deliveries(MONTHS[0], short)
    assert sorted(deliveries["kept"]) == sorted(settings.sources)
    rerun = pipeline.run_month(MONTHS[0], ["haibei"], settings=short)
    assert {d["status"] for d in rerun["landed"]} == {"kept"}
    for d in rerun["landed"]:
        assert d["landed"] == d["accepted"] + d["quarantined"], d
    assert published(short, MONTHS[0]) == scenario["control"][MONTHS[0]]
