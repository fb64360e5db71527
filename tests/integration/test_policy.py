"""Policy tools on real Spark and Delta: a hand-made warehouse of ten people whose scores,
outcomes and groups are known, so every figure below is worked out by hand in the comments.

The world (scheme haibei, months 2025-01 … 2025-04 delivered; evaluated month M = 2025-02):

    subject  findings known at M (delivery month)           score at M     later (outcome?)
    s1       minor penalty 2025-02-10 (02)                  980 B          serious penalty 03-15: bad
    s2       general penalty 2025-01-05 (01)                976 B          court listing 04-02: bad
    s3       minor penalty 2023-12-01, expired              1000 A         —
    s4       —                                              1000 A         commitment breach 03-20: bad
    s5       national award 01-10 (01), minor 02-15 (02)    1080 AA        —
    s6       provincial award 2025-02-01 (02)               1060 AA        minor penalty 03-05: not serious
    s7       serious penalty 2025-01-20 (01)                940 C          serious penalty, revoked: not bad
    s8       court listing 2024-12-01 (01), minor 01-10 (01) 780 D         —
    s9       —  (a serious penalty of 02-20 is only delivered in 03)  1000 A   occurred before M's end: not bad
    s10      —                                              1000 A         serious penalty 2025-05-01: after the window
"""
from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from citycredit import catalog, scoring
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.policy import task
from citycredit.policy.job import PolicyDataMissing, ScoredTogether
from citycredit.rules import RuleFileError, load_draft, load_schemes
from citycredit.scoring.job import load_inputs, run_scoring

PROJECT = Path(__file__).resolve().parents[2]
D = dt.date
M = "2025-02"
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04"]
# subject: (birth date, sex, district, residency)
PEOPLE = {f"s{i}": (D(1985, 6, 1), "F" if i % 2 else "M", "371002" if i <= 5 else "371003",
                    "permit" if i in (9, 10) else "hukou") for i in range(1, 11)}
PEOPLE["s5"] = (D(2005, 1, 1), "F", "371002", "hukou")      # 20 at M: age band 18-24
# (subject, item, level, occurred_on, delivered (known_from), status)
FINDINGS = [
    ("s1", "ADMIN_PENALTY", "minor", D(2025, 2, 10), "2025-02", "active"),
    ("s1", "ADMIN_PENALTY", "serious", D(2025, 3, 15), "2025-03", "active"),
    ("s2", "ADMIN_PENALTY", "general", D(2025, 1, 5), "2025-01", "active"),
    ("s2", "COURT_DISHONEST_DEBTOR", None, D(2025, 4, 2), "2025-04", "active"),
    ("s3", "ADMIN_PENALTY", "minor", D(2023, 12, 1), "2025-01", "active"),
    ("s4", "COMMITMENT_BREACH", None, D(2025, 3, 20), "2025-03", "active"),
    ("s5", "COMMENDATION", "national", D(2025, 1, 10), "2025-01", "active"),
    ("s5", "ADMIN_PENALTY", "minor", D(2025, 2, 15), "2025-02", "active"),
    ("s6", "COMMENDATION", "provincial", D(2025, 2, 1), "2025-02", "active"),
    ("s6", "ADMIN_PENALTY", "minor", D(2025, 3, 5), "2025-03", "active"),
    ("s7", "ADMIN_PENALTY", "serious", D(2025, 1, 20), "2025-01", "active"),
    ("s7", "ADMIN_PENALTY", "serious", D(2025, 3, 9), "2025-03", "revoked"),
    ("s8", "COURT_DISHONEST_DEBTOR", None, D(2024, 12, 1), "2025-01", "active"),
    ("s8", "ADMIN_PENALTY", "minor", D(2025, 1, 10), "2025-01", "active"),
    ("s9", "ADMIN_PENALTY", "serious", D(2025, 2, 20), "2025-03", "active"),
    ("s10", "ADMIN_PENALTY", "serious", D(2025, 5, 1), "2025-04", "active"),
]
SCORES_AT_M = {"s1": 980, "s2": 976, "s3": 1000, "s4": 1000, "s5": 1080, "s6": 1060,
               "s7": 940, "s8": 780, "s9": 1000, "s10": 1000}
BAD = {"s1", "s2", "s4"}
DRAFT_MINOR_60 = ("penalty-minor,     item: ADMIN_PENALTY, when: {level: minor},   "
                  "dimension: law, points: -20", "points: -60")


def _write(settings, table, columns: dict):
    tables.write_arrow(pa.table(columns), table.at(settings), mode="overwrite")


def build_world(settings):
    n = len(FINDINGS)
    _write(settings, catalog.SILVER_FINDINGS, {
        "source_id": ["court" if f[1] == "COURT_DISHONEST_DEBTOR" else "commitments"
                      if f[1] == "COMMITMENT_BREACH" else "civilization_office"
                      if f[1] == "COMMENDATION" else "public_security" for f in FINDINGS],
        "record_id": [f"r{i}" for i in range(n)], "subject_key": [f[0] for f in FINDINGS],
        "item_code": [f[1] for f in FINDINGS], "level": [f[2] for f in FINDINGS],
        "quantity": pa.array([None] * n, pa.decimal128(18, 4)),
        "occurred_on": [f[3] for f in FINDINGS], "valid_until": pa.array([None] * n, pa.date32()),
        "status": [f[5] for f in FINDINGS], "case_ref": [f"case-{i}" for i in range(n)],
        "known_from": [f[4] for f in FINDINGS], "known_until": pa.array([None] * n, pa.string()),
        "load_id": ["test"] * n})
    rows = [(s, *PEOPLE[s], m) for m in MONTHS for s in PEOPLE]
    _write(settings, catalog.SILVER_POPULATION, {
        "subject_key": [r[0] for r in rows], "birth_date": [r[1] for r in rows],
        "sex": [r[2] for r in rows], "district": [r[3] for r in rows],
        "residency": [r[4] for r in rows], "status": ["active"] * len(rows),
        "snapshot_month": [r[5] for r in rows]})
    _write(settings, catalog.SILVER_APPEALS, {
        f.name: pa.array([], f.type) for f in catalog.SILVER_APPEALS.schema})
    _write(settings, catalog.SILVER_OPTOUTS, {
        f.name: pa.array([], f.type) for f in catalog.SILVER_OPTOUTS.schema})


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("policy")
    settings = load_settings(PROJECT / "conf", env="local", environ={
        "CITYCREDIT_WAREHOUSE": str(root / "warehouse"), "CITYCREDIT_LANDING": str(root / "landing")})
    settings.policy["reports"] = root / "reports"
    build_world(settings)
    return settings


@pytest.fixture(scope="module")
def draft_path(tmp_path_factory):
    """A draft that changes one rule: a minor penalty costs 60 points instead of 20."""
    text = (PROJECT / "rules" / "haibei.yaml").read_text("utf-8")
    old, new = DRAFT_MINOR_60
    assert old in text
    path = tmp_path_factory.mktemp("drafts") / "haibei-minor-60.yaml"
    path.write_text(text.replace(old, old.replace("points: -20", new))
                    .replace('version: "2026.1"', 'version: "minor-60"'), "utf-8")
    return path


@pytest.fixture(scope="module")
def bad_draft_path(tmp_path_factory):
    """A deliberately bad draft: every penalty and listing is rewarded instead of punished."""
    text = (PROJECT / "rules" / "haibei.yaml").read_text("utf-8")
    for value in ("-200", "-60", "-24", "-20", "-10, cap: 50", "-10, valid"):
        text = text.replace(f"points: {value}", f"points: {value[1:]}")
    path = tmp_path_factory.mktemp("drafts") / "haibei-rewards-penalties.yaml"
    path.write_text(text, "utf-8")
    return path


# --------------------------------------------------------------------------------- simulate
def test_simulation_moves_exactly_the_hand_picked_people(world, draft_path, tmp_path):
    out = tmp_path / "sim.json"
    summary = task.simulate("haibei", draft_path, M, settings=world, json_path=out)
    # −60 instead of −20 for a counted minor penalty: s1 980 B → 940 C, s5 1080 AA → 1040 A,
    # s8 780 → 740 (D either way); s3's minor penalty has expired: unchanged
    assert (summary["subjects"], summary["moved"], summary["score_changed"]) == (10, 2, 3)
    assert (summary["up"], summary["down"]) == (0, 2)
    migration = summary["migration"]
    assert {(a, d): n for a, row in migration.items() for d, n in row.items() if n} == {
        ("AA", "A"): 1, ("AA", "AA"): 1, ("A", "A"): 4, ("B", "C"): 1, ("B", "B"): 1,
        ("C", "C"): 1, ("D", "D"): 1}
    assert summary["threshold_crossings"] == {
        "AAA": {"up": 0, "down": 0}, "AA": {"up": 0, "down": 1}, "A": {"up": 0, "down": 0},
        "B": {"up": 0, "down": 1}, "C": {"up": 0, "down": 0}}
    assert summary["score_change"]["histogram"] == {"-40": 3, "0": 7}
    assert summary["rules"]["penalty-minor"] == {
        "adopted": {"subjects": 3, "mean_points": -20.0},
        "draft": {"subjects": 3, "mean_points": -60.0}}
    assert summary["rules"]["penalty-general"]["draft"] == {"subjects": 1, "mean_points": -24.0}
    sample = summary["explanation_sample"]
    # grade movers first (s1, s5, s8), numbered: no subject key in a report (erasure)
    assert [(s["sample"], s["adopted_score"], s["draft_score"]) for s in sample] == [
        (1, 980, 940), (2, 1080, 1040), (3, 780, 740)]
    assert all("subject_key" not in s for s in sample)
    assert sample[0]["findings"][0]["source"] and "finding" not in sample[0]["findings"][0]
    assert sample[0]["rules"] == {"penalty-minor": {"adopted": -20.0, "draft": -60.0}}
    assert sample[0]["findings"][0]["draft"] == {"rule": "penalty-minor", "status": "counted",
                                                "points": -60.0}
    # the sandbox holds one row per subject with both scores
    rows = {r.subject_key: r for r in tables.read(
        world_spark(), catalog.SIMULATED_SCORES.at(world),
        where={"scheme": "haibei", "draft": "haibei-minor-60", "score_month": M}).collect()}
    assert {s: r.adopted_score for s, r in rows.items()} == SCORES_AT_M
    assert {s for s, r in rows.items() if r.score_change} == {"s1", "s5", "s8"}
    assert (rows["s1"].draft_score, rows["s1"].draft_grade) == (940, "C")
    assert rows["s5"].draft_rules_version.startswith("minor-60+")
    saved = json.loads(out.read_text("utf-8"))
    for key in ("scheme", "draft_version", "month", "subjects", "moved", "migration",
                "threshold_crossings"):
        assert key in saved
    assert saved["migration"]["B"]["C"] == 1 and saved["draft_version"] == "minor-60"
    assert Path(summary["report"]).read_text("utf-8").count("data:image/png;base64,") == 4


def world_spark():
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def test_both_schemes_come_from_one_scan_and_one_shuffle_of_the_findings(world, draft_path,
                                                                         spark):
    schemes = {"adopted": load_schemes(world.rules, ["haibei"])["haibei"],
               "draft": load_draft(draft_path, world.rules)}
    # without the shared scan, a scheme's plan reads silver/findings and shuffles it itself
    alone = scoring.evaluate_month(load_inputs(spark, world, M).findings,
                                   load_inputs(spark, world, M).subjects,
                                   load_inputs(spark, world, M).appeals, schemes["adopted"], M)
    assert findings_exchanges(alone) == 1 and findings_scans(alone) == 1
    with ScoredTogether(spark, world, schemes, M, "test") as scored:
        for label in schemes:
            scores = scored[label].scores
            assert findings_exchanges(scores) == 0, label
            assert findings_scans(scores) == 0, label
            assert scores.count() == 10


def _nodes(plan):
    """Every node of a physical plan, through adaptive plans and query stages; a cached
    relation (InMemoryTableScan) is a leaf: its own plan ran once, before."""
    name = plan.getClass().getSimpleName()
    if name == "AdaptiveSparkPlanExec":
        yield from _nodes(plan.executedPlan())
        return
    if name.endswith("QueryStageExec"):
        yield from _nodes(plan.plan())
        return
    yield plan
    children = plan.children()
    for i in range(children.size()):
        yield from _nodes(children.apply(i))


def findings_exchanges(df) -> int:
    """Shuffles of finding rows (an exchange whose input carries item_code) in df's plan."""
    plan = df._jdf.queryExecution().executedPlan()
    return sum(1 for node in _nodes(plan)
               if node.getClass().getSimpleName() == "ShuffleExchangeExec"
               and "item_code" in node.child().output().toString())


def findings_scans(df) -> int:
    """Scans of silver/findings in df's plan (by the scan's root paths: a delta-spark scan's
    description abbreviates its location)."""
    plan = df._jdf.queryExecution().executedPlan()
    return sum(1 for node in _nodes(plan)
               if node.getClass().getSimpleName() == "FileSourceScanExec"
               and "silver/findings" in node.relation().location().rootPaths().toString())


# --------------------------------------------------------------------------------- evaluate
def test_evaluation_matches_the_hand_computation(world, tmp_path):
    out = tmp_path / "eval.json"
    result = task.evaluate("haibei", M, settings=world, json_path=out, record=True)
    assert result["subjects"] == 10 and result["bad"] == 3
    # two months (03, 04) delivered after M: the window is shortened, and says so
    assert result["outcome_months"] == 2 and result["outcome_known_at"] == "2025-04"
    assert "only 2 month(s)" in result["reasons"]["outcome_months"]
    # bad 980 976 1000 against good 1000 1000 1000 1080 1060 940 780: of 21 pairs the bad one
    # is lower in 5 + 5 + 2, ties 3 × ½ → 13.5 / 21
    assert result["auc"] == pytest.approx(13.5 / 21)
    assert result["gini"] == pytest.approx(2 * 13.5 / 21 - 1)
    # score ≤ 980 holds 2 of 3 bad and 2 of 7 good
    assert result["ks"] == pytest.approx(2 / 3 - 2 / 7)
    assert result["bad_rate_by_grade"] == {"AAA": None, "AA": 0.0, "A": 0.25, "B": 1.0,
                                           "C": 0.0, "D": 0.0}
    assert (result["monotone"], result["not_falling"]) == (False, ["B"])
    # January as known then: AA s5; B s2; C s7; D s8; A the other six. February: AA 2, A 4,
    # B 2, C 1, D 1 (AAA empty in both: ε against ε adds nothing)
    expected = (0.2 - 0.1) * _ln(2) + (0.4 - 0.6) * _ln(0.4 / 0.6) + (0.2 - 0.1) * _ln(2)
    assert result["psi"]["previous_month"] == pytest.approx(expected)
    assert result["psi_band"]["previous_month"] == "watch"
    assert result["psi"]["twelve_months_before"] is None
    assert "2024-02" in result["reasons"]["psi.twelve_months_before"]
    assert result["migration_previous_month"]["A"] == {"AAA": 0, "AA": 1, "A": 4, "B": 1,
                                                       "C": 0, "D": 0}
    # incentive grade AA: 2 of 10 reach it; permit holders 0 of 2, age 35-44 1 of 9
    assert result["incentive_grade"] == "AA"
    assert result["fairness"]["residency"] == {"hukou": pytest.approx(0.25 / 0.2),
                                               "permit": pytest.approx(0.0)}
    assert result["fairness"]["age_band"] == {"18-24": pytest.approx(5.0),
                                              "35-44": pytest.approx((1 / 9) / 0.2)}
    assert result["fairness"]["sex"] == {"F": pytest.approx(1.0), "M": pytest.approx(1.0)}
    assert sorted((f["attribute"], f["group"]) for f in result["fairness_flags"]) == \
        [("age_band", "35-44"), ("residency", "permit")]
    saved = json.loads(out.read_text("utf-8"))
    for key in ("scheme", "month", "outcome_months", "auc", "gini", "ks", "bad_rate_by_grade",
                "monotone", "psi", "fairness"):
        assert key in saved
    assert saved["psi"]["twelve_months_before"] is None
    recorded = tables.read_arrow(catalog.EVALUATIONS.at(world)).to_pylist()
    assert any(r["variant"] == "adopted" and json.loads(r["metrics"])["auc"] == saved["auc"]
               for r in recorded)


def _ln(x):
    import math
    return math.log(x)


def test_a_month_without_later_deliveries_says_why_validity_is_missing(world, tmp_path,
                                                                       monkeypatch):
    """The months an outcome window would take are said in the summary, the report and the
    CLI's output; the evaluation still succeeds (exit 0): its stability and fairness stand, and
    the DAG evaluates the latest month, which never has one."""
    from click.testing import CliRunner

    from citycredit.cli import cli

    result = task.evaluate("haibei", "2025-04", settings=world, record=False)
    assert result["outcome_months"] == 0
    assert result["auc"] is None and result["ks"] is None and result["monotone"] is None
    needed = ("no month after 2025-04 delivered yet (silver holds no later population snapshot): "
              "validity and discrimination need 2025-05 at least, 2025-05 … 2026-04 for the full "
              "window (policy.outcome_months: 12)")
    assert needed in result["reasons"]["auc"] and needed in result["reasons"]["bad_rate"]
    page = Path(result["report"]).read_text("utf-8")
    assert f"<b>no outcome window</b>: {needed}" in page
    # 2025-03 → 2025-04 of ten subjects: one fewer in B, one more in D, the rest alike, so
    # PSI = (0.1 - 0.2)·ln(0.1/0.2) + (0.2 - 0.1)·ln(0.2/0.1) = 0.2·ln 2, in the 'watch' band
    assert result["grade_counts"]["2025-03"] == {"AA": 1, "A": 3, "B": 2, "C": 3, "D": 1}
    assert result["grade_counts"]["2025-04"] == {"AA": 1, "A": 3, "B": 1, "C": 3, "D": 2}
    assert result["psi"]["previous_month"] == pytest.approx(0.2 * _ln(2))
    assert result["psi_band"]["previous_month"] == "watch"

    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(world.warehouse))
    monkeypatch.setenv("CITYCREDIT_REPORTS", str(tmp_path))
    monkeypatch.chdir(PROJECT)
    shown = CliRunner().invoke(cli, ["evaluate", "--scheme", "haibei", "--month", "2025-04"])
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "haibei 2025-04: no outcome window (AUC, KS and bad rates need later months: see " \
           "below), 10 subjects" in said
    assert "AUC —, KS —, monotone —" in said
    assert f"outcome_months, auc, gini, ks, monotone, bad_rate: {needed}" in said    # once


def test_a_draft_never_touches_gold_published_or_the_run_report(world, draft_path,
                                                                 bad_draft_path, spark):
    # the monthly run's own tables exist: gold for M, a publication, a run report
    adopted = load_schemes(world.rules, ["haibei"])["haibei"]
    run_scoring(spark, world, adopted, M, "monthly-run")
    gold = tables.read(spark, catalog.SCORES.at(world),
                       where={"scheme": "haibei", "score_month": M, "run_id": "monthly-run"})
    published = gold.select("subject_key", "scheme", "score_month", "score", "grade",
                            "grade_label", F.current_timestamp().alias("published_at"), "run_id")
    tables.write(published, catalog.PUBLISHED_SCORES.at(world), mode="overwrite",
                 replace={"scheme": "haibei", "score_month": M})
    tables.write_arrow(pa.table({"run_id": ["monthly-run"], "score_month": [M],
                                 "section": ["scheme"], "name": ["haibei"], "metrics": ["{}"],
                                 "created_at": [dt.datetime.now(dt.timezone.utc)]}),
                       catalog.RUN_REPORT.at(world), mode="append")
    watched = [catalog.SCORES, catalog.SCORE_LINES, catalog.PUBLISHED_SCORES, catalog.RUN_REPORT]
    before = {t.id: (tables.version(t.at(world)), _files(t.at(world).path)) for t in watched}

    task.simulate("haibei", draft_path, M, settings=world)
    result = task.evaluate("haibei", M, draft=bad_draft_path, settings=world)

    after = {t.id: (tables.version(t.at(world)), _files(t.at(world).path)) for t in watched}
    assert after == before
    assert not (Path(world.warehouse) / "gold" / "scores" / "scheme=haibei-minor-60").exists()
    # drafts are never among what the monthly run and the DAG score
    # (the score step scores load_schemes(rules) when no scheme is named)
    assert set(load_schemes(world.rules)) == {"bailu", "dazixiang", "haibei", "huzhou"}
    # the adopted scores of M came from gold; the bad draft was scored in memory, side by side
    assert "2025-02: gold/scores" in result["scores_from"]
    bad = result["draft"]
    assert bad["draft"] == "haibei-rewards-penalties"
    assert "scored in memory" in bad["scores_from"]
    # rewarding penalties: bad 1020 (s1) 1024 (s2) 1000 (s4) against good 1000 ×3, 1060 (s6,
    # s7), 1120 (s5), 1220 (s8): lower in 4 + 4 + 4, ties 3 × ½ → 13.5 / 21 again in this tiny
    # world, but KS at "≤ 1024" is 3/3 − 3/7, and every bad subject is now in grade A
    assert result["auc"] == pytest.approx(13.5 / 21)
    assert bad["auc"] == pytest.approx(13.5 / 21)
    assert bad["ks"] == pytest.approx(1 - 3 / 7)
    assert bad["bad_rate_by_grade"] == {"AAA": 0.0, "AA": 0.0, "A": 0.5, "B": None, "C": None,
                                        "D": None}


def _files(path):
    return sorted((os.path.relpath(os.path.join(r, f), path), os.path.getmtime(os.path.join(r, f)))
                  for r, _, fs in os.walk(path) for f in fs)


def test_a_draft_of_another_scheme_or_a_missing_month_is_refused(world, draft_path):
    with pytest.raises(RuleFileError, match="is a draft of 'haibei', not of 'huzhou'"):
        task.simulate("huzhou", draft_path, M, settings=world)
    with pytest.raises(PolicyDataMissing, match="no population snapshot for 2026-01"):
        task.simulate("haibei", draft_path, "2026-01", settings=world)


def test_a_draft_whose_points_leave_their_type_is_refused_naming_file_dimension_and_month(
        world, tmp_path, monkeypatch):
    """s8's court listing (−200) and a minor penalty at −9,999,999,999 in the draft: the law
    dimension's points are beyond decimal(18,8). Refused (exit 2) by name, not with Spark's
    hint to turn ANSI mode off."""
    from click.testing import CliRunner

    from citycredit.cli import cli

    text = (PROJECT / "rules" / "haibei.yaml").read_text("utf-8")
    old, _ = DRAFT_MINOR_60
    draft = tmp_path / "haibei-huge.yaml"
    draft.write_text(text.replace(old, old.replace("points: -20", "points: -9999999999")), "utf-8")
    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(world.warehouse))
    monkeypatch.setenv("CITYCREDIT_REPORTS", str(tmp_path / "reports"))
    monkeypatch.chdir(PROJECT)
    result = CliRunner().invoke(cli, ["simulate", "--scheme", "haibei", "--draft", str(draft),
                                      "--month", M])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert (f"REFUSED: {M} cannot be scored: {draft}: dimension 'law': a subject's points in the "
            "dimension reach 10,000,000,000 or more in magnitude") in said, said
    assert "ansi" not in said.lower()
    assert not (tmp_path / "reports").exists()
