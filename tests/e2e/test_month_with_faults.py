"""Real-world delivery faults through `citycredit run` (pipeline.run_month) on a small generated
city: each fault ends in correct rows, in quarantine with the right reason and detail, or in a
clear stop naming source, month, file and problem — nothing lost, nothing garbled, no double
counting, no personal data in quarantine or messages.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from citycredit import catalog, pipeline
from citycredit.config import load_settings
from citycredit.identity import check_char, is_valid_id_number, subject_key
from citycredit.io import tables
from citycredit.synth import generate_city

PROJECT = Path(__file__).resolve().parents[2]
MONTH = "2026-10"
CASE = "公安行罚2026001"
HEADER = "record_id,id_number,name,item_code,level,quantity,occurred_on,valid_until,status,case_ref"


def settings_for(root: Path, conf: Path = PROJECT / "conf"):
    return load_settings(conf, env="local", environ={
        "CITYCREDIT_LANDING": str(root / "landing"), "CITYCREDIT_WAREHOUSE": str(root / "warehouse"),
        "CITYCREDIT_RULES": str(PROJECT / "rules"),
        "CITYCREDIT_EXPECTATIONS": str(PROJECT / "expectations")})


def add_file(folder: Path, name: str, content, rows: int) -> None:
    """A file more in a delivery, keeping its manifest's row count right."""
    if isinstance(content, pa.Table):
        pq.write_table(content, folder / name)
    else:
        (folder / name).write_bytes(content)
    manifest = folder / "manifest.json"
    if manifest.exists():
        count = json.loads(manifest.read_text())["row_count"]
        manifest.write_text(json.dumps({"row_count": count + rows}))


def ids_in_findings(landing: Path) -> set[str]:
    """Identity numbers in any findings file of the month other than provincial scores."""
    found = set()
    for path in landing.glob(f"*/{MONTH}/*.*"):
        if path.parts[-3] in ("population", "optouts", "appeals"):
            continue
        text = (path.read_bytes().decode("gb18030" if path.parts[-3] in
                                         ("public_security", "civilization_office") else "utf-8",
                                         errors="replace")
                if path.suffix != ".parquet" else None)
        if text is None:
            t = pq.read_table(path).to_pylist()
            found |= {r["id_number"] for r in t if r["item_code"] != "PROVINCIAL_CREDIT_SCORE"}
        elif path.suffix in (".csv", ".jsonl"):
            found |= set(re.findall(r"[0-9]{17}[0-9X]", text))
    return found


@pytest.fixture(scope="module")
def city(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("faults")
    landing = root / "landing"
    generate_city(landing, adults=300, months=1, end=MONTH, seed=5)
    population = pq.read_table(next((landing / "population" / MONTH).glob("*.parquet")))
    people = population.to_pylist()
    taken = ids_in_findings(landing)
    adults = [p["id_number"] for p in people if p["status"] == "active"
              and p["id_number"] not in taken and p["id_number"][6:14] <= "19900101"]
    with_x = next(i for i in adults if i.endswith("X"))
    fined, dated = [i for i in adults if i != with_x][:2]
    line_of_x = [p["id_number"] for p in people].index(with_x) + 1

    # 1. the same person in a second population file, lower-case x and ideographic spaces
    pop = landing / "population" / MONTH
    add_file(pop, "population_2026-10_02.csv",
             ("id_number,district,residency,status\n"
              f"\u3000{with_x[:-1]}x\u00a0,371002,hukou,active\n").encode(), 1)
    # … and an Excel-truncated number that passes the check digit, for a person who is nobody
    excel = next(n for n in (fined[:14] + f"{k:03d}" for k in range(0, 1000, 100))
                 if is_valid_id_number(n + check_char(n)) and n + check_char(n) not in
                 {p["id_number"] for p in people})
    excel += check_char(excel)
    add_file(landing / "court" / MONTH, "court_2026-10_99.csv",
             (HEADER + f"\nFY99,{excel},某某,COURT_DISHONEST_DEBTOR,,,2026-10-09,,active,\n")
             .encode(), 1)
    # 2. one penalty delivered by two departments with the same case_ref: public security in its
    #    declared GB 18030, traffic police in jsonl (UTF-8) — highest-value dedupe counts it once
    add_file(landing / "public_security" / MONTH, "public_security_2026-10_99.csv",
             (HEADER + f"\nGA99,{fined},张伟,ADMIN_PENALTY,general,,2026-10-08,,active,{CASE}\n")
             .encode("gb18030"), 1)
    add_file(landing / "traffic_police" / MONTH, "traffic_police_2026-10_99.jsonl",
             (json.dumps({"record_id": "JJ99", "id_number": fined, "name": "张伟",
                          "item_code": "ADMIN_PENALTY", "level": "general",
                          "occurred_on": "2026-10-08", "status": "active", "case_ref": CASE},
                         ensure_ascii=False) + "\n").encode(), 1)
    # 3. a Parquet writer's UTC timestamps: midnight in Shanghai on 5 October and 1 November
    stamps = pa.array([dt.datetime(2026, 10, 4, 16, tzinfo=dt.timezone.utc),
                       dt.datetime(2026, 10, 31, 16, tzinfo=dt.timezone.utc)],
                      pa.timestamp("us", tz="UTC"))
    add_file(landing / "market_regulation" / MONTH, "market_regulation_2026-10_99.parquet",
             pa.table({"record_id": ["SJ98", "SJ99"], "id_number": [dated, dated],
                       "item_code": ["ADMIN_PENALTY"] * 2, "level": ["serious"] * 2,
                       "occurred_on": stamps, "status": ["active"] * 2}), 2)
    settings = settings_for(root)
    run = pipeline.run_month(MONTH, ["haibei"], settings=settings)
    return {"root": root, "settings": settings, "run": run, "with_x": with_x, "fined": fined,
            "dated": dated, "excel": excel, "line_of_x": line_of_x}


def quarantined(settings, source_id):
    return tables.read_arrow(catalog.QUARANTINE.at(settings),
                             where={"source_id": source_id, "month": MONTH}).to_pylist()


def published(settings):
    rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings), where={"score_month": MONTH})
    return dict(zip(rows.column("subject_key").to_pylist(), rows.column("score").to_pylist()))


def test_the_month_publishes_everyone_once(city):
    scores = published(city["settings"])
    assert city["run"]["scored"][0]["subjects"] == len(scores) > 250
    assert "published:" in city["run"]["summary"]


def test_a_person_repeated_with_a_lowercase_x_is_one_duplicate_naming_the_first(city):
    rows = quarantined(city["settings"], "population")
    assert [(r["file"], r["line"], r["reasons"]) for r in rows] == [
        ("population_2026-10_02.csv", 1, "duplicate_id_number")]
    assert rows[0]["detail"] == (f"the same id_number as population_2026-10_01.parquet "
                                 f"line {city['line_of_x']}")
    assert city["with_x"] not in rows[0]["detail"]
    key = subject_key(city["with_x"], city["settings"].subject_key)
    assert key in published(city["settings"])


def test_a_valid_number_of_nobody_is_counted_in_the_report(city):
    report = tables.read_arrow(catalog.RUN_REPORT.at(city["settings"])).to_pylist()
    court = [json.loads(r["metrics"]) for r in report
             if r["section"] == "source" and r["name"] == "court"]
    assert court[-1]["not_in_population"] == 1 and court[-1]["accepted"] >= 1
    assert "accepted but not in the 2026-10 population 1" in city["run"]["summary"]
    assert city["excel"] not in city["run"]["summary"]


def test_a_case_delivered_by_two_departments_counts_once_and_is_not_garbled(city):
    settings = city["settings"]
    findings = tables.read_arrow(catalog.SILVER_FINDINGS.at(settings)).to_pylist()
    refs = {r["source_id"]: r["case_ref"] for r in findings if r["record_id"] in ("GA99", "JJ99")}
    assert refs == {"public_security": CASE, "traffic_police": CASE}
    key = subject_key(city["fined"], settings.subject_key)
    assert published(settings)[key] == 1000 - 24             # 海贝分: general penalty once


def test_utc_timestamps_are_the_dates_in_shanghai(city):
    settings = city["settings"]
    findings = tables.read_arrow(catalog.SILVER_FINDINGS.at(settings),
                                 where={"source_id": "market_regulation"}).to_pylist()
    assert [(r["record_id"], r["occurred_on"]) for r in findings
            if r["record_id"].startswith("SJ9")] == [("SJ98", dt.date(2026, 10, 5))]
    rows = [r for r in quarantined(settings, "market_regulation")
            if r["file"] == "market_regulation_2026-10_99.parquet"]
    assert [(r["line"], r["reasons"], r["detail"]) for r in rows] == [
        (2, "date_after_month", "occurred_on '2026-11-01' is after the month's last day 2026-10-31")]
    key = subject_key(city["dated"], settings.subject_key)
    assert published(settings)[key] == 1000 - 60             # serious penalty, counted once


def test_a_utf8_file_from_a_gb18030_source_stops_the_month_naming_both(city):
    settings = city["settings"]
    version = tables.version(catalog.PUBLISHED_SCORES.at(settings))
    before = published(settings)
    path = settings.landing / "public_security" / MONTH / "public_security_2026-10_99.csv"
    original = path.read_bytes()
    path.write_bytes(original.decode("gb18030").encode("utf-8"))
    try:
        with pytest.raises(pipeline.DeliveryError) as err:
            pipeline.run_month(MONTH, ["haibei"], settings=settings)
    finally:
        path.write_bytes(original)
    message = str(err.value)
    assert "public_security 2026-10 public_security_2026-10_99.csv" in message
    assert "the file is UTF-8" in message and "declares gb18030" in message
    assert city["fined"] not in message and "张伟" not in message
    assert "NOT PUBLISHED" in err.value.summary
    assert tables.version(catalog.PUBLISHED_SCORES.at(settings)) == version
    assert published(settings) == before


def test_a_person_in_two_population_sources_is_refused_naming_files_and_lines(tmp_path, spark):
    """Landing cannot see across sources: the same person accepted by two population sources
    stops publication, and the refusal says where each was delivered."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    sources = {"population": {"kind": "population", "format": "csv"},
               "population_annex": {"kind": "population", "format": "csv"},
               "court": {"kind": "findings", "format": "csv",
                         "items": ["COURT_DISHONEST_DEBTOR"]},
               "optouts": {"kind": "optouts", "format": "csv"},
               "appeals": {"kind": "appeals", "format": "csv"}}
    (conf / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    landing = tmp_path / "landing"
    person = "11010519491231002X"
    others = ["110105194912310038", "110105194912310046"]
    assert all(map(is_valid_id_number, [person, *others]))
    files = {"population": {"a.csv": [others[0], person]},
             "population_annex": {"b.csv": [others[1], " " + person[:-1] + "x"]}}
    for source_id, by_file in files.items():
        folder = landing / source_id / MONTH
        folder.mkdir(parents=True)
        for name, ids in by_file.items():
            (folder / name).write_text("id_number,district,residency,status\n" + "".join(
                f"{i},110105,hukou,active\n" for i in ids), encoding="utf-8")
        (folder / "_READY").touch()
    for source_id, text in (("court", HEADER + f"\nFY1,{others[0]},,COURT_DISHONEST_DEBTOR,,,"
                                          "2026-10-09,,active,\n"),
                            ("optouts", "id_number,requested_on\n"),
                            ("appeals", "appeal_id,source_id,record_id,filed_on,resolved_on,"
                                        "outcome\n")):
        folder = landing / source_id / MONTH
        folder.mkdir(parents=True)
        (folder / "data.csv").write_text(text, encoding="utf-8")
        (folder / "_READY").touch()
    settings = settings_for(tmp_path, conf)
    with pytest.raises(pipeline.PublishRefused) as err:
        pipeline.run_month(MONTH, ["haibei"], settings=settings)
    message = str(err.value)
    assert ("haibei: 4 score rows for 3 subjects, expected each of 4 adults exactly once — the "
            "same person is in the 2026-10 population more than once: population a.csv line 2 "
            "and population_annex b.csv line 2") in message
    assert person not in message and person[:-1] + "x" not in message


def test_sources_landed_on_two_cores_give_the_same_month_and_the_same_refusals(
        tmp_path, spark, monkeypatch):
    """A month of large deliveries lands the largest in the run's process and the others in a
    second one (pipeline.PARALLEL_LANDING_BYTES, here 0 so that a small city does): the same
    landed counts and published scores as one after another; a refusal in the second process
    stops the month with the same error, and the previous publication stays."""
    generate_city(tmp_path / "city", adults=200, months=1, end=MONTH, seed=7)
    roots = {how: tmp_path / how for how in ("sequential", "parallel")}
    for root in roots.values():
        shutil.copytree(tmp_path / "city", root / "landing")
    sequential = pipeline.run_month(MONTH, ["haibei"], settings=settings_for(roots["sequential"]))
    monkeypatch.setattr(pipeline, "PARALLEL_LANDING_BYTES", 0)
    settings = settings_for(roots["parallel"])
    step = pipeline.STEP_BY_NAME["land_source"]
    here, there = pipeline._split_by_size(step, list(settings.sources), MONTH, settings)
    size = {s: pipeline._delivery_bytes(settings, s, MONTH) for s in settings.sources}
    assert max(size, key=size.get) in here and len(there) >= 5
    assert abs(sum(size[s] for s in here) - sum(size[s] for s in there)) <= max(size.values())
    parallel = pipeline.run_month(MONTH, ["haibei"], settings=settings)

    def landed(run):
        return {r["source_id"]: (r["status"], r["landed"], r["accepted"], r["quarantined"])
                for r in run["landed"]}
    assert landed(parallel) == landed(sequential) and len(landed(parallel)) == len(
        settings.sources)
    assert [r["source_id"] for r in parallel["landed"]] == [
        r["source_id"] for r in sequential["landed"]]
    assert published(settings) == published(settings_for(roots["sequential"]))
    # a stray file in a delivery the second process lands: the month stops, naming it
    stray = settings.landing / there[-1] / MONTH / "notes.txt"
    stray.write_text("not a data file")
    before = published(settings)
    with pytest.raises(pipeline.DeliveryError) as err:
        pipeline.run_month(MONTH, ["haibei"], settings=settings)
    assert f"delivery {there[-1]} {MONTH}" in str(err.value) and "notes.txt" in str(err.value)
    assert err.value.source_id == there[-1]
    assert "NOT PUBLISHED" in err.value.summary
    assert published(settings) == before
