"""Rule format v2 on real Spark (SPEC §4.1, issue "Rule format v2"): subject rules, unless_any,
requires, repair energy and growth, each with its edges, hand-computed.

One scheme and one small city of persons, each built for one case (tests/data/v2_cases.py, shared
with the reference scorer's tests); the comment beside each expected score shows the arithmetic.
Unless a case says otherwise a person is a 45-year-old permit holder of district 371003 resident
for 12 months, so no basic-information rule applies, and has no debtor or serious fine in 36
months, so `clean-3y` gives +30.
"""
from __future__ import annotations

import datetime as dt
import re
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from citycredit import scoring
from citycredit.rules import load_catalogue, load_scheme, load_schemes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from v2_cases import (EVERYONE, FINDINGS_ROWS, ISSUE_BLOCK, MONTH_ENDS, PEOPLE, SCHEME,  # noqa: E402
                      f, person)

RULES = Path(__file__).resolve().parents[2] / "rules"
D = dt.date
FINDINGS = ("source_id string, record_id string, subject_key string, item_code string, "
            "level string, quantity decimal(18,4), occurred_on date, valid_until date, "
            "status string, case_ref string")
APPEALS = ("appeal_id string, source_id string, record_id string, filed_on date, "
           "resolved_on date, outcome string")
SUBJECTS = "subject_key string, birth_date date, district string, residency string, months_resident int"



@pytest.fixture(scope="module")
def scheme(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    (folder / "catalogue.yaml").write_text((RULES / "catalogue.yaml").read_text("utf-8"), "utf-8")
    (folder / "v2test.yaml").write_text(SCHEME, "utf-8")
    return load_scheme(folder / "v2test.yaml", load_catalogue(folder))


def score(spark, scheme, month, findings=FINDINGS_ROWS, people=PEOPLE, everyone=EVERYONE,
          appeals=()):
    known = {p[0]: p for p in people}
    subjects = [known.get(k, person(k)) for k in everyone]
    scores, lines = scoring.score_month(
        spark.createDataFrame(findings, FINDINGS),
        spark.createDataFrame(subjects, SUBJECTS),
        spark.createDataFrame(list(appeals), APPEALS),
        spark.createDataFrame([], "subject_key string, requested_on date"),
        scheme, month, "v2-test")
    return {r.subject_key: r for r in scores.collect()}, lines.collect()


@pytest.fixture(scope="module")
def march(spark, scheme):
    return score(spark, scheme, "2026-03")


def scores_of(result, keys):
    scores, _ = result
    return {k: scores[k].score for k in keys}


def lines_of(result, subject, line_type=None):
    _, lines = result
    return [l for l in lines if l.subject_key == subject
            and (line_type is None or l.line_type == line_type)]


# ------------------------------------------------------------------------------ subject rules
def test_subject_rules_by_attributes_and_the_dimension_cap(march):
    assert scores_of(march, ["p_all", "p_young", "p_thirty", "p_elsewhere", "p_leap"]) == {
        "p_all": 1055,        # hukou 20 + settled 10 = 30, basic cap 25; clean +30
        "p_young": 1031,      # 29 full years on 31 Mar 2026 (born 1 Apr 1996), 371002: +1; +30
        "p_thirty": 1030,     # born 31 Mar 1996: 30 full years on A, not below 30
        "p_elsewhere": 1030,  # 29 but district 371003
        "p_leap": 1031,       # born 29 Feb 2008: 18 on 28 Feb 2026, 18 on A; 371002: +1; +30
    }
    subject = {l.rule_id: (l.status, l.points) for l in lines_of(march, "p_all", "subject")}
    # `young` does not apply to p_all: no line (SPEC §5 as amended 2026-12-05)
    assert subject == {"hukou": ("counted", 20), "settled": ("counted", 10),
                       "clean-3y": ("counted", 30)}
    cap = lines_of(march, "p_all", "dimension_cap")
    assert [(l.dimension, l.points) for l in cap] == [("basic", Decimal(-5))]
    scores, _ = march
    assert scores["p_all"].dimension_points["basic"] == Decimal(25)
    assert scores["p_all"].finding_count == 0


def test_a_person_gets_a_line_per_subject_rule_that_applies_only(march):
    _, lines = march
    per_person = {}
    for l in lines:
        if l.line_type == "subject":
            assert (l.status, l.points != 0) == ("counted", True), l
            per_person.setdefault(l.subject_key, []).append(l.rule_id)
    assert sorted(per_person["p_all"]) == ["clean-3y", "hukou", "settled"]
    assert sorted(per_person["p_young"]) == ["clean-3y", "young"]
    assert "clean-3y" not in per_person.get("u_inside", [])     # blocked by the listing


def test_unless_any_with_a_finding_exactly_n_months_back(march):
    assert scores_of(march, ["u_exact", "u_inside", "u_serious", "u_revoked", "u_expired",
                             "u_norule"]) == {
        "u_exact": 880,       # debtor on 31 Mar 2023 = add_months(A, −36): not after → +30 − 150
        "u_inside": 850,      # debtor on 1 Apr 2023: blocks clean-3y; −150
        "u_serious": 940,     # serious fine 1 Apr 2023 (last valid day = A): −60, blocks
        "u_revoked": 1030,    # a revoked listing is not a current finding
        "u_expired": 1000,    # expired listing (valid_until 2024-01-01) still blocks
        "u_norule": 1030,     # a general fine matches no rule of the list
    }
    # the listing expired long before the previous month: it explains nothing about the month
    assert lines_of(march, "u_expired", "finding") == []


def test_requires_an_earlier_finding_of_the_same_case(march):
    assert scores_of(march, ["r_met", "r_alone", "r_revoked", "r_before", "r_sameday",
                             "r_nocase", "r_othercase", "r_expired"]) == {
        "r_met": 860,         # −150 + 10 (repair of case C1); clean-3y blocked
        "r_alone": 1030,      # no listing of C2: requirement unmet; clean +30
        "r_revoked": 1030,    # the listing of C3 is revoked: unmet; and no listing blocks
        "r_before": 850,      # repair dated before the listing: unmet; −150
        "r_sameday": 860,     # same day counts ("on or before its own")
        "r_nocase": 850,      # no case_ref: unmet
        "r_othercase": 850,   # another case: unmet
        "r_expired": 1010,    # the listing expired but is current: +10; clean blocked
    }
    status = {l.item_code: l.status for l in lines_of(march, "r_revoked", "finding")}
    assert status == {"COURT_DISHONEST_DEBTOR": "revoked",
                      "CREDIT_REPAIR_COMPLETED": "requirement_unmet"}
    assert [l.points for l in lines_of(march, "r_alone", "finding")] == [0]


def test_repair_energy_reaching_one_before_on_and_after_the_breach(spark, scheme, march):
    assert scores_of(march, ["e_before", "e_on", "e_later", "e_short", "e_mixed", "e_charity",
                             "e_revoked"]) == {
        "e_before": 1011,     # volunteering the day before the breach gives no energy: −20 +1 +30
        "e_on": 1031,         # 10 h on the breach day: repaired that day; +1 +30
        "e_later": 1031,      # 10 h on 5 Mar: repaired on 5 Mar
        "e_short": 1011,      # 9.9999 h = 0.99999 of a unit: −20 + 0.99999 + 30 → 1010.99999
        "e_mixed": 1030,      # 4 h (0.4) + 240 ml (0.6) = 1 exactly on 10 Feb; +0.4 +30
        "e_charity": 1030,    # 250 + 250 yuan: repaired on 16 Jan
        "e_revoked": 1010,    # a revoked volunteering record gives neither energy nor points
    }
    repaired = {l.subject_key: (l.status, l.repaired_on, l.points) for l in march[1]
                if l.item_code == "COMMITMENT_BREACH" and l.subject_key in
                ("e_before", "e_on", "e_later", "e_mixed", "e_charity")}
    assert repaired == {"e_before": ("counted", None, -20),
                        "e_on": ("repaired", D(2026, 1, 10), 0),
                        "e_later": ("repaired", D(2026, 3, 5), 0),
                        "e_mixed": ("repaired", D(2026, 2, 10), 0),
                        "e_charity": ("repaired", D(2026, 1, 16), 0)}
    # February: the 5 March volunteering has not happened on 28 Feb, the breach counts
    february = score(spark, scheme, "2026-02")
    assert scores_of(february, ["e_later"]) == {"e_later": 1010}


def test_two_breaches_and_energy_for_one(march):
    assert scores_of(march, ["e_two", "e_both", "e_lost", "e_tie", "e_expired"]) == {
        "e_two": 1011,        # 12 h repairs the older breach (0.2 left); newer −20; +1.2 +30
        "e_both": 1032,       # 0.2 left + 8 h (0.8) = 1 on 1 Mar repairs the newer; +2.0 +30
        "e_lost": 1012,       # the 0.2 left on 20 Jan (no breach waiting) is lost: 0.8 < 1
        "e_tie": 1011,        # same day: commitments/t1 before t2 (record_id); t2 −20
        "e_expired": 1031,    # an expired breach takes no energy: the counting one is repaired
    }
    two = {l.record_id: (l.status, l.repaired_on) for l in lines_of(march, "e_two", "finding")
           if l.item_code == "COMMITMENT_BREACH"}
    assert two == {"two-1": ("repaired", D(2026, 2, 15)), "two-2": ("counted", None)}
    tie = {l.record_id: l.status for l in lines_of(march, "e_tie", "finding")
           if l.item_code == "COMMITMENT_BREACH"}
    assert tie == {"t1": "repaired", "t2": "counted"}
    lost = {l.record_id: l.status for l in lines_of(march, "e_lost", "finding")
            if l.item_code == "COMMITMENT_BREACH"}
    assert lost["lost-2"] == "counted"


def test_growth_periods_caps_and_resets(march):
    assert scores_of(march, ["g_one", "g_cap", "g_reset", "g_old_breach", "g_reset_expired",
                             "g_revoked_reset", "g_many", "g_repaired"]) == {
        "g_one": 1035,           # 30 Sep 2025 + 6 months = 30 Mar 2026 ≤ A: n = 1
        "g_cap": 1080,           # 74 full months: n = 12 → 60, growth cap 50
        "g_reset": 1010,         # breach 15 Oct 2025 restarts: 5 months, n = 0; breach −20
        "g_old_breach": 1050,    # breach before the first commitment: no reset; 26 months: +20
        "g_reset_expired": 1035,  # an expired breach still resets: 1 Jun 2025, 9 months: +5
        "g_revoked_reset": 1050,  # a revoked breach does not
        "g_many": 1045,          # the earliest of two commitments: 1 Sep 2024, 18 months: +15
        "g_repaired": 1031,      # a repaired breach is current: resets; repaired (0); +1
    }
    growth = lines_of(march, "g_many", "growth")
    assert [(l.rule_id, l.occurred_on, l.quantity, l.points, l.status) for l in growth] == \
        [("growth", D(2024, 9, 1), Decimal(3), Decimal(15), "counted")]
    signed = lines_of(march, "g_many", "finding")
    assert {(l.rule_id, l.status, l.points, l.last_valid_day) for l in signed} == \
        {("growth", "counted", 0, None)}
    assert lines_of(march, "u_exact", "growth") == []      # no commitment, no growth line


@pytest.mark.parametrize("month,expected", sorted(MONTH_ENDS.items()))
def test_growth_across_month_ends(spark, scheme, month, expected):
    rows = [r for r in FINDINGS_ROWS if r[2] in expected]
    result = score(spark, scheme, month, findings=rows, everyone=sorted(expected))
    assert scores_of(result, expected) == expected


def test_explanations_sum_to_every_raw_score(march):
    scores, lines = march
    explained = {}
    for l in lines:
        explained[l.subject_key] = explained.get(l.subject_key, Decimal(0)) + l.points
    for key, row in scores.items():
        # a person with nothing in force and no subject rule that applies has no line (SPEC §5
        # as amended 2026-12-05): no points either
        assert row.points_positive + row.points_negative == explained.get(key, 0), key
        raw = Decimal(1000) + explained.get(key, Decimal(0))
        assert row.score == int(raw.quantize(Decimal(1), rounding="ROUND_HALF_UP")), key


def test_subject_rules_need_their_attributes(spark, scheme):
    with pytest.raises(ValueError, match="months_resident"):
        scoring.score_month(
            spark.createDataFrame([], FINDINGS),
            spark.createDataFrame([("x", D(1980, 1, 1), "371002", "hukou")],
                                  "subject_key string, birth_date date, district string, "
                                  "residency string"),
            spark.createDataFrame([], APPEALS),
            spark.createDataFrame([], "subject_key string, requested_on date"),
            scheme, "2026-03", "t")


def test_a_checkers_file_in_the_issue_syntax_scores(spark, tmp_path):
    """The issue's example block, verbatim, under a v1 head: loads and scores through the same
    entry point as a shipped scheme."""
    text = textwrap.dedent("""\
        scheme: issue
        title: 示例
        version: "1"
        effective_from: 2026-01
        base_score: 100
        dimensions: {basic: 基础, law: 守法, repair: 修复, commit: 承诺, growth: 成长}
        grades:
          - {grade: A, label: a, min: 100}
          - {grade: B, label: b}
        """) + ISSUE_BLOCK
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "catalogue.yaml").write_text((RULES / "catalogue.yaml").read_text("utf-8"), "utf-8")
    (folder / "issue.yaml").write_text(text, "utf-8")
    issue = load_schemes(folder)["issue"]
    findings = [f("a", "COMMITMENT_SIGNED", D(2025, 3, 31)),            # 12 months: +10
                f("a", "COMMITMENT_BREACH", D(2026, 2, 2)),             # resets: 1 month, 0
                f("a", "BLOOD_DONATION", D(2026, 3, 1), quantity=400),  # repairs the breach
                f("b", "COURT_DISHONEST_DEBTOR", D(2024, 5, 6), case_ref="K"),
                f("b", "CREDIT_REPAIR_COMPLETED", D(2025, 5, 6), case_ref="K")]
    people = [person("a", residency="hukou", months=60), person("b")]
    result = score(spark, issue, "2026-03", findings=findings, people=people,
                   everyone=["a", "b"])
    # a: 100 + hukou 20 + settled 10 + clean 30 + growth 0 + breach repaired 0 = 160
    # b: 100 − 150 + 10 = −40 (clean-3y blocked by the 2024 listing)
    assert scores_of(result, ["a", "b"]) == {"a": 160, "b": -40}


def _exchanges(df, skip_cached: bool = True) -> list[str]:
    """The Exchange (shuffle) nodes of the physical plan, outside any cached relation's plan."""
    out, cached_at = [], None
    for line in df._jdf.queryExecution().executedPlan().toString().splitlines():
        indent = len(line) - len(line.lstrip(" :+-"))
        if cached_at is not None and indent > cached_at:
            continue
        cached_at = None
        if skip_cached and "InMemoryRelation" in line:
            cached_at = indent
        elif "Exchange" in line:     # without expression ids: comparable across plans
            out.append(re.sub(r"#\d+|plan_id=\d+", "", line.strip(" :+-")))
    return out


def test_v2_keeps_the_one_shuffle_of_the_findings(spark, scheme):
    """SPEC-cost contract (scoring/steps.py): requires and repair are windows inside the
    findings' partitioning, growth totals group the persisted evaluated findings by subject_key,
    subject rules shuffle only the (small) subjects frame."""
    example = load_schemes(RULES, ["haibei"])["haibei"]
    findings = spark.createDataFrame(FINDINGS_ROWS, FINDINGS)
    subjects = spark.createDataFrame([person(k) for k in EVERYONE], SUBJECTS)
    appeals = spark.createDataFrame([], APPEALS)
    before = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")     # the plan as planned, not replanned
    try:
        plans = {}
        for name, s in (("v1", example), ("v2", scheme)):
            evaluated = scoring.evaluate_month(findings, subjects, appeals, s, "2026-03").persist()
            scores, lines = scoring.summarise_month(evaluated, subjects, s, "2026-03", "plan")
            plans[name] = (_exchanges(evaluated, skip_cached=False), _exchanges(scores),
                           _exchanges(lines))
            evaluated.unpersist()
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", before)
    (v1_evaluated, v1_scores, v1_lines), (v2_evaluated, v2_scores, v2_lines) = plans["v1"], plans["v2"]
    assert v2_evaluated == v1_evaluated           # the findings shuffled once by subject_key, as v1
    assert any("hashpartitioning(subject_key" in e for e in v2_evaluated)
    # after the evaluated findings: only the subjects are repartitioned (or reused)
    extra = [e for e in v2_scores + v2_lines if e not in v1_scores + v1_lines]
    assert all("REPARTITION_BY_COL" in e or e.startswith("ReusedExchange") for e in extra), extra
    assert len([e for e in v2_scores if "REPARTITION_BY_COL" in e]) == 1
