"""The scoring job's gold writes (scoring.job.run_scoring) on real Spark and Delta: every scheme
of a run lands in one commit per gold table, each scheme's rows and figures are its own, and a
run scored again replaces only its own rows. The world is test_policy's ten people (haibei
scores worked out by hand there). And the subjects' months_resident read from silver/residence."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from citycredit import catalog
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.rules import load_schemes
from citycredit.scoring.job import load_inputs, run_scoring
from test_policy import M, SCORES_AT_M, build_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from population_deliveries import counted, deliver  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("scoring-job")
    settings = load_settings(PROJECT / "conf", env="local", environ={
        "CITYCREDIT_WAREHOUSE": str(root / "warehouse"), "CITYCREDIT_LANDING": str(root / "landing")})
    build_world(settings)
    return settings


def _rows(spark, settings, table, run_id):
    df = tables.read(spark, table.at(settings)).where(F.col("run_id") == run_id)
    return {r.scheme: r.n for r in df.groupBy("scheme").agg(F.count(F.lit(1)).alias("n")).collect()}


def test_every_scheme_of_a_run_lands_in_one_commit_per_gold_table(world, spark):
    schemes = load_schemes(world.rules, ["haibei", "bailu"])
    run_scoring(spark, world, list(schemes.values()), M, run_id="first")
    versions = {t.name: tables.version(t.at(world)) for t in (catalog.SCORES, catalog.SCORE_LINES)}

    results = run_scoring(spark, world, list(schemes.values()), M, run_id="second")
    assert {t.name: tables.version(t.at(world))
            for t in (catalog.SCORES, catalog.SCORE_LINES)} == {n: v + 1 for n, v in versions.items()}
    # each scheme's rows under its own partition, counted by its own result
    assert [r.scheme for r in results] == ["haibei", "bailu"]
    assert _rows(spark, world, catalog.SCORES, "second") == {"haibei": 10, "bailu": 10}
    assert _rows(spark, world, catalog.SCORE_LINES, "second") == {r.scheme: r.lines for r in results}
    assert all(r.subjects == 10 and r.points_scored == r.points_explained for r in results)
    haibei = tables.read(spark, catalog.SCORES.at(world)).where(
        (F.col("run_id") == "second") & (F.col("scheme") == "haibei"))
    assert {r.subject_key: r.score for r in haibei.collect()} == SCORES_AT_M

    # scored again, a run replaces its own rows only (one scheme this time)
    run_scoring(spark, world, [schemes["haibei"]], M, run_id="second")
    assert _rows(spark, world, catalog.SCORES, "second") == {"haibei": 10, "bailu": 10}
    assert _rows(spark, world, catalog.SCORES, "first") == {"haibei": 10, "bailu": 10}


def test_months_resident_comes_from_the_kept_state_for_the_month_just_delivered(tmp_path, spark,
                                                                              settings):
    """The subjects' months_resident (SPEC §4.1) is the same from silver/residence (the latest
    month: one snapshot and the state read) and counted from every snapshot (an earlier month)."""
    world = dataclasses.replace(settings, warehouse=tmp_path / "warehouse")
    for table in (catalog.SILVER_FINDINGS, catalog.SILVER_APPEALS, catalog.SILVER_OPTOUTS):
        tables.write_arrow(table.schema.empty_table(), table.at(world))
    standing = {"2026-01": {"a": "active", "b": "active", "c": "active"},
                "2026-02": {"a": "active", "c": "moved_out"},
                "2026-03": {"a": "active", "b": "active", "c": "active", "d": "moved_out"}}
    for month, statuses in standing.items():
        deliver(world, month, statuses)

    def months_resident(month):
        subjects = load_inputs(spark, world, month, with_months_resident=True).subjects
        read = {Path(f).parent.name for f in subjects.inputFiles()}
        return {r.subject_key: r.months_resident for r in subjects.collect()}, read

    latest, read = months_resident("2026-03")
    assert latest == {"a": 3, "b": 2, "c": 2} == {k: n for k, n in counted(standing).items()
                                                   if standing["2026-03"].get(k) == "active"}
    assert read == {"snapshot_month=2026-03", "as_of=2026-03"}      # not January's, February's
    earlier, read = months_resident("2026-02")
    assert earlier == {"a": 2} and {"snapshot_month=2026-01", "snapshot_month=2026-02"} <= read


def test_unmatched_items_are_the_findings_the_evaluation_leaves_without_a_rule(world, spark):
    """The run report's unmatched items (ScoringResult.unmatched, counted per item and level in
    one pass for every scheme) equal, per scheme, the findings evaluate_findings gives status
    no_rule when it keeps every row."""
    from citycredit.months import last_day
    from citycredit.scoring import evaluate_findings, rules_frame
    from citycredit.scoring.steps import month_appeal_cutoff

    schemes = load_schemes(world.rules)
    results = run_scoring(spark, world, list(schemes.values()), M, run_id="unmatched")
    inputs = load_inputs(spark, world, M, with_months_resident=True)
    for result in results:
        scheme = schemes[result.scheme]
        evaluated = evaluate_findings(
            inputs.findings, inputs.subjects, inputs.appeals, rules_frame(spark, scheme), scheme,
            last_day(M), month_appeal_cutoff(M, world.scoring["appeal_mask_working_days"]))
        expected = {r.item_code: r.n for r in evaluated.where(F.col("status") == "no_rule")
                    .groupBy("item_code").agg(F.count(F.lit(1)).alias("n")).collect()}
        assert result.unmatched == expected, result.scheme
    assert any(result.unmatched for result in results)      # the world leaves some unmatched


# the SPEC §4 example with edits, findings of one subject (its key must appear in no message)
_NEAR = "points: -9999999999, valid_months: 60"
_OUT_OF_RANGE = [
    # two listings just under the bound: the rule's sum is beyond decimal(18,8)
    ({"points: -150, valid_months: 60": _NEAR}, 2, "rule 'debtor': a subject's points for the "
     "rule reach 10,000,000,000 or more in magnitude"),
    # two rules of a dimension, each within: the dimension's sum is not
    ({"points: -150, valid_months: 60": "points: -6000000000, valid_months: 60",
      "points: -24, valid_months: 24": "points: -6000000000, valid_months: 24"}, 1,
     "dimension 'law': a subject's points in the dimension reach 10,000,000,000"),
    # no min_score: 1000 − 3·10^9 is no whole score gold can hold (int)
    ({"min_score: 0": "",
      "points: -150, valid_months: 60": "points: -3000000000, valid_months: 60"}, 1,
     "a subject's score (base_score and every dimension's points) reaches 2,147,483,648 or "
     "more in magnitude, beyond a whole score (int): set min_score and max_score"),
    # ten listings just under the bound: beyond even a sum of longs
    ({"points: -150, valid_months: 60": _NEAR}, 10, "a subject's points (or a tiers rule's "
     "quantities) add up beyond what exact sums hold"),
]


@pytest.mark.parametrize("edits, listings, said", _OUT_OF_RANGE)
def test_points_beyond_their_type_stop_the_month_naming_file_rule_and_month(
        tmp_path, spark, settings, edits, listings, said):
    """Points are decimal(18,8), scores int (scoring.decimals): a month whose points leave them
    stops with the month, the rule file and the rule or dimension — not Spark's hint to turn
    ANSI mode off, and no subject."""
    import datetime as dt

    from test_scoring import APPEALS, EXAMPLE, FINDINGS, write_scheme

    from citycredit.scoring.job import MonthInputs, PointsOutOfRange

    text = EXAMPLE.replace("scheme: example", "scheme: near")
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    scheme = write_scheme(tmp_path, "near", text)
    key = "f00dfeedsubjectkey"
    findings = [("court", f"r{i}", key, "COURT_DISHONEST_DEBTOR", None, None,
                 dt.date(2026, 1, 1 + i), None, "active", None) for i in range(listings)]
    findings.append(("market_regulation", "fine", key, "ADMIN_PENALTY", "general", None,
                     dt.date(2026, 2, 1), None, "active", None))
    inputs = MonthInputs(findings=spark.createDataFrame(findings, FINDINGS),
                         subjects=spark.createDataFrame([(key,)], "subject_key string"),
                         appeals=spark.createDataFrame([], APPEALS))
    world = dataclasses.replace(settings, warehouse=tmp_path / "warehouse")
    with pytest.raises(PointsOutOfRange) as refused:
        run_scoring(spark, world, scheme, "2026-03", run_id="huge", inputs=inputs)
    message = str(refused.value)
    assert message.startswith("2026-03 cannot be scored: rules/near.yaml: ") and said in message
    assert key not in message and "ansi" not in message.lower()
