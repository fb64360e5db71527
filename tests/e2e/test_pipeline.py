"""The monthly pipeline end to end on a generated city: real files, real GX, real Spark, real Delta.

One scenario (module fixture) runs three months in order; the tests then check what an operator
would (a test that re-scores or writes gold does so on its own copy, `own`, so the tests hold in
any order): every adult published once per scheme, counts that reconcile with the generator's ground
truth, scores equal to the independent reference, reruns and re-scoring that reproduce what was
published, and stops that name the source and keep the previous publication.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from reference.duckdb_scorer import score_reference
from citycredit import catalog, pipeline
from citycredit.io import tables
from citycredit.config import load_settings
from citycredit.synth import generate_city
from citycredit.ingest.delivery import DeliveryError

PROJECT = Path(__file__).resolve().parents[2]
MONTHS = ["2026-01", "2026-02", "2026-03"]
SCHEMES = ["haibei", "dazixiang", "huzhou"]


def settings_for(root: Path, **environ):
    return load_settings(PROJECT / "conf", env="local", environ={
        "CITYCREDIT_LANDING": str(root / "landing"),
        "CITYCREDIT_WAREHOUSE": str(root / "warehouse"), **environ})


def published(settings, month, scheme=None):
    rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings),
                             where={"score_month": month, **({"scheme": scheme} if scheme else {})})
    return sorted(zip(rows.column("scheme").to_pylist(), rows.column("subject_key").to_pylist(),
                      rows.column("score").to_pylist(), rows.column("grade").to_pylist()))


def late_changes(landing: Path, month: str) -> tuple[int, int]:
    """(corrections, revocations) the generator delivered in `month`, from _truth/deliveries.csv."""
    with open(landing / "_truth" / "deliveries.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["month"] == month]
    return sum(int(r["corrections"]) for r in rows), sum(int(r["revocations"]) for r in rows)


@pytest.fixture(scope="module")
def city(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("city")
    # 3,000 adults: small enough for a test, but at this size a month's corrections and
    # revocations are a handful of Poisson draws, so take the first seed whose third month (by
    # the generator's ground truth) carries both — the re-scoring test needs them.
    for seed in range(11, 61):
        shutil.rmtree(root / "landing", ignore_errors=True)
        generate_city(root / "landing", adults=3000, months=3, end=MONTHS[-1], seed=seed,
                      bad_share=0.01)
        if all(n > 0 for n in late_changes(root / "landing", MONTHS[-1])):
            break
    settings = settings_for(root)
    runs = {m: pipeline.run_month(m, SCHEMES, settings=settings) for m in MONTHS}
    first_february = published(settings, "2026-02")
    return {"root": root, "settings": settings, "runs": runs, "first_february": first_february}


@pytest.fixture
def own(city, tmp_path):
    """Settings of a copy of the city's landing and warehouse, for a test that re-scores a month
    or writes gold: the shared warehouse stays as the three runs left it, so no test depends on
    which ran before it."""
    root = tmp_path / "own"
    for part in ("landing", "warehouse"):
        shutil.copytree(city["root"] / part, root / part)
    return settings_for(root)


def erased_after(settings, month) -> int:
    """Persons erased by the runs of later months (opt-outs): gone from `month`'s publication."""
    listed = tables.read_arrow(catalog.SUPPRESSION_LIST.at(settings)).to_pylist()
    return sum(1 for r in listed if r["erased_month"] > month)


def test_every_adult_is_published_once_per_scheme(city, spark):
    settings = city["settings"]
    for month in MONTHS:
        rows = published(settings, month)
        per_scheme = Counter(s for s, *_ in rows)
        subjects = city["runs"][month]["scored"][0]["subjects"]
        assert subjects > 2500
        assert set(per_scheme) == set(SCHEMES) and len(set(per_scheme.values())) == 1
        # everyone scored, less those who opted out in a later month (erased since)
        assert 0 <= subjects - per_scheme[SCHEMES[0]] <= erased_after(settings, month)
        assert len({(s, k) for s, k, *_ in rows}) == len(rows)       # exactly once
        assert "published:" in city["runs"][month]["summary"]


def test_quarantine_reconciles_with_the_generators_ground_truth(city):
    settings = city["settings"]
    truth = list(csv.DictReader(open(city["root"] / "landing" / "_truth" / "bad_rows.csv",
                                     encoding="utf-8")))
    assert {r["reason"] for r in truth} >= {"bad_id_number", "unknown_item", "bad_date",
                                             "date_after_month", "missing_required",
                                             "negative_quantity", "duplicate_record_id",
                                             "forbidden_field", "encoding"}
    quarantine = tables.read_arrow(catalog.QUARANTINE.at(settings)).to_pylist()
    got = {(q["source_id"], q["month"], q["file"], q["line"]): q["reasons"].split(";")
           for q in quarantine}
    want = {(t["source_id"], t["month"], t["file"], int(t["line"])): t["reason"] for t in truth}
    erased = tables.read_arrow(catalog.ERASURE_LOG.at(settings)).to_pylist()
    erased_from = lambda prefix: sum(r["rows_removed"] for r in erased    # noqa: E731
                                     if r["place"].startswith(prefix))
    # every bad row, and nothing else — less the rows of persons erased since (opt-outs)
    assert set(got) <= set(want)
    assert len(want) - len(got) == erased_from("quarantine/rows")
    assert all(want[k] in got[k] for k in got)        # for the reason it was made bad
    # landed = accepted + quarantined + suppressed, per source and month, in the run report
    report = tables.read_arrow(catalog.RUN_REPORT.at(settings)).to_pylist()
    import json
    for row in report:
        if row["section"] == "source":
            m = json.loads(row["metrics"])
            assert m["landed"] == m["accepted"] + m["quarantined"] + m["suppressed"], row
    bronze_rows = sum(tables.read_arrow(catalog.bronze(s, settings.sources[s]["kind"]).at(settings)).num_rows
                      for s in settings.sources if tables.exists(catalog.bronze(s, settings.sources[s]["kind"]).at(settings)))
    metrics = [json.loads(r["metrics"]) for r in report if r["section"] == "source"]
    landed = sum(m["landed"] - m["suppressed"] for m in metrics)
    # nothing lost between landing and bronze but what erasure removed
    assert bronze_rows + erased_from("bronze/") == landed


def test_validation_results_and_data_docs_are_kept_per_run(city):
    settings, run = city["settings"], city["runs"]["2026-01"]
    folder = settings.warehouse / "validation_results" / "2026-01" / run["run_id"]
    for source_id in settings.sources:
        assert (folder / f"{source_id}.json").is_file(), source_id
        for part in ("rows", "batch"):
            assert "Expectation Suite" in (folder / f"{source_id}.{part}.html").read_text("utf-8")


def test_published_scores_equal_the_independent_reference(city):
    settings = city["settings"]
    silver = settings.warehouse / "silver"
    inputs = {name: [u.removeprefix("file://") for u in DeltaTable(str(silver / name)).file_uris()]
              for name in ("findings", "population", "appeals", "optouts")
              if DeltaTable.is_deltatable(str(silver / name))}
    for scheme in SCHEMES:
        ref = score_reference(inputs, settings.rules / f"{scheme}.yaml", "2026-03")
        want = sorted(zip([scheme] * ref.num_rows, ref.column("subject_key").to_pylist(),
                          ref.column("score").to_pylist(), ref.column("grade").to_pylist()))
        assert published(settings, "2026-03", scheme) == want


def test_rerunning_a_month_gives_identical_scores_and_publication(own, spark):
    settings = own
    before = published(settings, "2026-03")
    lines_before = tables.read(spark, catalog.SCORE_LINES.at(settings),
                               where={"score_month": "2026-03"}).drop("run_id").collect()
    pipeline.run_month("2026-03", SCHEMES, settings=settings)
    assert published(settings, "2026-03") == before
    lines_after = tables.read(spark, catalog.SCORE_LINES.at(settings),
                              where={"score_month": "2026-03"}).drop("run_id").collect()
    assert sorted(map(tuple, lines_after), key=repr) == sorted(map(tuple, lines_before), key=repr)


def test_rescoring_a_month_after_later_deliveries_reproduces_it(city, own):
    settings = own
    # 2026-03 brought corrections and revocations of earlier records…
    changes = city["runs"]["2026-03"]["silver"]["sources"]
    assert sum(c["corrections"] for c in changes.values()) > 0
    assert sum(c["revocations"] for c in changes.values()) > 0
    # …yet February re-scored now is February as it was known then
    pipeline.run_month("2026-02", SCHEMES, settings=settings)
    assert published(settings, "2026-02") == city["first_february"]


def test_a_missing_required_source_stops_the_month_naming_it(city):
    with pytest.raises(pipeline.DeliveryMissing, match=r"2026-04.*population.*_READY"):
        pipeline.check_deliveries("2026-04", city["settings"])


def test_a_bad_batch_stops_before_silver_and_names_the_file(city, own, tmp_path):
    settings = own
    landing = tmp_path / "landing"
    shutil.copytree(city["root"] / "landing" / "court" / "2026-03", landing / "court" / "2026-03")
    (landing / "court" / "2026-03" / "manifest.json").write_text('{"row_count": 999999}')
    broken = load_settings(PROJECT / "conf", env="local", environ={
        "CITYCREDIT_LANDING": str(landing), "CITYCREDIT_WAREHOUSE": str(settings.warehouse)})
    silver_version = tables.version(catalog.SILVER_FINDINGS.at(settings))
    with pytest.raises(DeliveryError, match=r"court 2026-03 manifest.json: manifest row_count 999999"):
        pipeline.land_source("court", "2026-03", "broken", broken)
    assert tables.version(catalog.SILVER_FINDINGS.at(settings)) == silver_version


def test_a_refused_publication_keeps_the_previous_one(own, tmp_path):
    settings = own
    before = published(settings, "2026-03")
    version = tables.version(catalog.PUBLISHED_SCORES.at(settings))
    strict = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", strict)
    (strict / "local.yaml").write_text((strict / "local.yaml").read_text() +
                                       "publish:\n  max_grade_share_change: 0.0\n")
    # with a bound of 0, the city's real month-on-month movement is beyond it
    refusing = load_settings(strict, env="local", environ={
        "CITYCREDIT_LANDING": str(settings.landing), "CITYCREDIT_WAREHOUSE": str(settings.warehouse),
        "CITYCREDIT_RULES": str(PROJECT / "rules"),
        "CITYCREDIT_EXPECTATIONS": str(PROJECT / "expectations")})
    scored = pipeline.score("2026-03", "strict", refusing, schemes=["haibei"])
    with pytest.raises(pipeline.PublishRefused, match=r"haibei: grade \w+ share moved .* against 2026-02"):
        pipeline.publish("2026-03", "strict", scored, settings=refusing)
    assert tables.version(catalog.PUBLISHED_SCORES.at(settings)) == version
    assert published(settings, "2026-03") == before


def unmatched_bounds(settings, scheme_name, month, gold):
    """Per item: (findings no rule of the scheme takes, less the appealed ones; all of them),
    among the current, active findings of the adults scored (gold's subject keys)."""
    from citycredit.rules import load_schemes

    scheme = load_schemes(settings.rules, [scheme_name])[scheme_name]
    findings = tables.read_arrow(catalog.SILVER_FINDINGS.at(settings)).to_pylist()
    appeals = tables.read_arrow(catalog.SILVER_APPEALS.at(settings)).to_pylist()
    appealed = {(a["source_id"], a["record_id"]) for a in appeals if a["known_from"] <= month}
    adults = set(gold.column("subject_key").to_pylist())
    low, high = Counter(), Counter()
    for f in findings:
        current = f["known_from"] <= month and (f["known_until"] is None
                                                 or f["known_until"] > month)
        if current and f["status"] == "active" and f["subject_key"] in adults \
                and scheme.rule_for(f["item_code"], f["level"]) is None:
            high[f["item_code"]] += 1
            low[f["item_code"]] += (f["source_id"], f["record_id"]) not in appealed
    return low, high


def test_publication_checks_the_figures_the_scoring_job_recorded(own):
    """The score step scores several schemes in one job and records, while it writes gold, what
    publication checks (rows, key and points checksums, grades); publish compares them instead
    of re-joining the explanation lines, and a figure that disagrees stops the month."""
    settings = own
    scored = pipeline.score("2026-03", "figures", settings, schemes=["haibei", "huzhou"])
    assert [s["scheme"] for s in scored] == ["haibei", "huzhou"]
    for s in scored:
        where = {"scheme": s["scheme"], "score_month": "2026-03", "run_id": "figures"}
        gold = tables.read_arrow(catalog.SCORES.at(settings), where=where)
        lines = tables.read_arrow(catalog.SCORE_LINES.at(settings), where=where, columns=["run_id"])
        assert s["subjects"] == s["adults"] == s["adults_distinct"] == gold.num_rows > 2500
        assert s["lines"] == lines.num_rows and set(lines.column("run_id").to_pylist()) == {"figures"}
        assert s["subject_keys"] == s["adult_keys"]
        assert s["points_scored"] == s["points_explained"]
        counted = Counter(gold.column("grade").to_pylist())
        assert s["grades"] == {g: counted.get(g, 0) for g in s["grades"]}
        assert sum(s["grades"].values()) == gold.num_rows
        # findings matching no rule: counted per item while scoring (no line of their own), as
        # many as the current findings of the scored adults that no rule takes — less those an
        # appeal may have masked or upheld first (SPEC §4 steps 1–2)
        low, high = unmatched_bounds(settings, s["scheme"], "2026-03", gold)
        assert sum(high.values()) > 0 and set(s["unmatched"]) <= set(high)
        assert all(low[item] <= s["unmatched"].get(item, 0) <= high[item] for item in high), \
            (s["scheme"], s["unmatched"], low, high)
        no_lines = tables.read_arrow(catalog.SCORE_LINES.at(settings), where=where,
                                     columns=["status"]).column("status").to_pylist()
        assert "no_rule" not in no_lines and "not_applicable" not in no_lines
    version = tables.version(catalog.PUBLISHED_SCORES.at(settings))
    haibei = scored[0]
    with pytest.raises(pipeline.PublishRefused,
                       match=r"haibei: explanation lines do not sum to the score"):
        pipeline.publish("2026-03", "figures", [{**haibei, "points_explained":
                                                 haibei["points_explained"] + 1}],
                         accept_drift=True, settings=settings)
    with pytest.raises(pipeline.PublishRefused,
                       match=r"haibei: gold/scores of 2026-03 holds \d+ rows of run figures, "
                             r"not the \d+ the score step wrote"):
        pipeline.publish("2026-03", "figures", [{**haibei, "subjects": haibei["subjects"] - 1}],
                         accept_drift=True, settings=settings)
    assert tables.version(catalog.PUBLISHED_SCORES.at(settings)) == version


def test_a_run_killed_midway_keeps_the_publication_and_a_rerun_completes(own):
    """`citycredit run` killed (SIGKILL) while scoring: the published month stays readable and
    unchanged; the next run of the month completes and publishes the same rows."""
    settings = own
    before = published(settings, "2026-03")
    env = {**os.environ, "CITYCREDIT_LANDING": str(settings.landing),
           "CITYCREDIT_WAREHOUSE": str(settings.warehouse), "COLUMNS": "200"}
    run = subprocess.Popen(
        [sys.executable, "-m", "citycredit.cli", "run", "--month", "2026-03",
         "--schemes", ",".join(SCHEMES)], cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    try:
        for line in run.stderr:                # progress: … score haibei … write gold of …
            seen.append(line)
            if "write gold of" in line:        # every scheme's gold being written, in one commit
                break                          # per table: killed before or within it
    finally:
        os.killpg(run.pid, signal.SIGKILL)     # the CLI and its Spark JVM
        run.wait(timeout=60)
    assert any("write gold of" in line for line in seen), "".join(seen[-20:])
    assert run.returncode == -signal.SIGKILL
    assert published(settings, "2026-03") == before
    pipeline.run_month("2026-03", SCHEMES, settings=settings)
    assert published(settings, "2026-03") == before


def test_consents_land_version_and_serve_lookups(city):
    """Consents (issue "Lookups"): landed and reconciled like the other sources, versioned in
    silver by consent_id (a revocation re-sent later is a correction), pseudonymised; a lookup
    on the month's publication answers from them."""
    from citycredit.lookup.index import build_index
    from citycredit.lookup.lookups import Lookups

    settings = city["settings"]
    landed = [d for m in MONTHS for d in city["runs"][m]["landed"] if d["source_id"] == "consents"]
    assert [d["status"] for d in landed] == ["landed"] * len(MONTHS)
    silver = tables.read_arrow(catalog.SILVER_CONSENTS.at(settings)).to_pylist()
    assert len(silver) == sum(d["accepted"] for d in landed) > 0
    assert all(len(r["subject_key"]) == 64 for r in silver)
    revoked = [r for r in silver if r["revoked_on"] is not None]
    assert revoked, "the generated city re-sends some consents revoked"
    for r in revoked:       # the earlier version of the same consent_id is closed by it
        earlier = [v for v in silver if v["consent_id"] == r["consent_id"] and v is not r]
        assert r["known_until"] is None and [v["known_until"] for v in earlier] == [r["known_from"]]
    # a landed, never revoked `self` consent of a published person: the report is granted
    build_index(settings)
    lookups = Lookups(settings)
    rows = []
    for month in MONTHS:
        with open(next((settings.landing / "consents" / month).glob("*.csv")), encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    gone = {r["consent_id"] for r in rows if r["revoked_on"]}
    answers = [lookups.lookup_as_operator("report", r["grantee"], "haibei",
                                          {"id_number": r["id_number"], "purpose": "self"})
               for r in rows if r["purpose"] == "self" and r["consent_id"] not in gone]
    assert answers and {a.status for a in answers} <= {200, 404}
    granted = [a for a in answers if a.status == 200]
    assert granted and all(a.body["score_month"] == MONTHS[-1] for a in granted)
