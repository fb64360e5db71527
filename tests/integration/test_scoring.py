"""Scoring on real Spark: the seeds' own examples (SPEC §4) and the edges of the semantics.

Every expected score here is computed by hand from the rule values in the test or the shipped
rule file; the comment beside each case shows the arithmetic.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from citycredit import scoring
from citycredit.rules import Rule, RuleFileError, load_catalogue, load_scheme, load_schemes

RULES = Path(__file__).resolve().parents[2] / "rules"
D = dt.date
FINDINGS = ("source_id string, record_id string, subject_key string, item_code string, "
            "level string, quantity decimal(18,4), occurred_on date, valid_until date, "
            "status string, case_ref string")
APPEALS = ("appeal_id string, source_id string, record_id string, filed_on date, "
           "resolved_on date, outcome string")
OPTOUTS = "subject_key string, requested_on date"


def finding(subject, item, occurred, level=None, quantity=None, valid_until=None,
            status="active", case_ref=None, source="court", record=None):
    finding.n += 1
    return (source, record or f"r{finding.n}", subject, item, level,
            None if quantity is None else Decimal(str(quantity)), occurred, valid_until, status,
            case_ref)


finding.n = 0


def score(spark, scheme, month, findings, adults=None, appeals=(), optouts=()):
    """Scores and lines as {subject: row} and a list of line rows."""
    adults = adults or sorted({f[2] for f in findings})
    scores, lines = scoring.score_month(
        spark.createDataFrame(findings, FINDINGS),
        spark.createDataFrame([(a,) for a in adults], "subject_key string"),
        spark.createDataFrame(list(appeals), APPEALS),
        spark.createDataFrame(list(optouts), OPTOUTS),
        scheme, month, "test-run")
    return {r.subject_key: r for r in scores.collect()}, lines.collect()


@pytest.fixture(scope="module")
def shipped():
    return load_schemes(RULES)


def write_scheme(tmp_path, name, body):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "catalogue.yaml").write_text((RULES / "catalogue.yaml").read_text("utf-8"), "utf-8")
    (folder / f"{name}.yaml").write_text(textwrap.dedent(body), "utf-8")
    return load_scheme(folder / f"{name}.yaml", load_catalogue(folder))


EXAMPLE = (Path(__file__).parents[1] / "data" / "spec_example.yaml").read_text("utf-8")  # SPEC §4


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The SPEC §4 example, verbatim, plus nothing: a checker's own file must load and score."""
    return write_scheme(tmp_path_factory.mktemp("example"), "example", EXAMPLE)


# --------------------------------------------------------------------------------- the seeds
def test_drunk_driving_takes_haibei_from_1000_to_940_grade_c(spark, shipped):
    scores, _ = score(spark, shipped["haibei"], "2026-03",
                      [finding("a", "ADMIN_PENALTY", D(2026, 3, 5), level="serious",
                               source="traffic_police")])
    assert (scores["a"].score, scores["a"].grade) == (940, "C")


def test_dishonest_debtor_lands_at_800_grade_d(spark, shipped):
    scores, _ = score(spark, shipped["haibei"], "2026-03",
                      [finding("a", "COURT_DISHONEST_DEBTOR", D(2025, 6, 1), case_ref="(2025)鲁10执1号")])
    assert (scores["a"].score, scores["a"].grade, scores["a"].grade_label) == (800, "D", "不良")


def test_commendation_levels_of_haibei(spark, shipped):
    cases = {"n": ("national", 1100), "p": ("provincial", 1060), "m": ("municipal", 1030),
             "c": ("county", 1020)}
    scores, _ = score(spark, shipped["haibei"], "2026-03",
                      [finding(s, "COMMENDATION", D(2026, 1, 10), level=lvl, source="civilization_office")
                       for s, (lvl, _) in cases.items()])
    assert {s: scores[s].score for s in cases} == {s: v for s, (_, v) in cases.items()}


def test_subject_without_findings_gets_the_base(spark, shipped):
    scores, lines = score(spark, shipped["dazixiang"], "2026-03", [], adults=["x"])
    assert (scores["x"].score, scores["x"].grade, scores["x"].finding_count) == (600, "A", 0)
    assert lines == []


def probe(scheme):
    """The scheme with one rule: score = base + the probe finding's quantity (no caps)."""
    first = next(iter(scheme.dimensions))
    rule = Rule(id="probe", item="PROVINCIAL_CREDIT_SCORE", when={}, dimension=first, points=None,
                points_per_unit=Decimal(1), tiers=None, valid_months=12, cap=None, dedupe_group=None)
    dims = {k: dataclasses.replace(d, cap=None) for k, d in scheme.dimensions.items()}
    return dataclasses.replace(scheme, rules=(rule,), dimensions=dims, min_score=None,
                               max_score=None)


@pytest.mark.parametrize("name", ["haibei", "dazixiang", "huzhou"])
def test_every_grade_boundary(spark, shipped, name):
    """At each grade's min the grade holds; one point below it is the next grade down; and a
    raw score of min − 0.5 rounds half up into the grade."""
    scheme = probe(shipped[name])
    cases = {}
    for upper, lower in zip(scheme.grades, scheme.grades[1:]):
        for delta, expected in ((0, upper.grade), (-1, lower.grade), (Decimal("-0.5"), upper.grade),
                                (Decimal("-0.5001"), lower.grade)):
            target = upper.min + delta
            cases[f"{upper.grade}{delta}"] = (target - scheme.base_score, expected)
    findings = [finding(s, "PROVINCIAL_CREDIT_SCORE", D(2026, 3, 1), quantity=q,
                        source="provincial_credit") for s, (q, _) in cases.items()]
    scores, _ = score(spark, scheme, "2026-03", findings)
    assert {s: scores[s].grade for s in cases} == {s: g for s, (_, g) in cases.items()}


def test_haibei_named_boundaries(spark, shipped):
    scheme = probe(shipped["haibei"])
    wanted = {1150: "AAA", 1149: "AA", 1050: "AA", 1049: "A", 1000: "A", 999: "B", 950: "B",
              949: "C", 801: "C", 800: "D"}
    findings = [finding(str(v), "PROVINCIAL_CREDIT_SCORE", D(2026, 3, 1), quantity=v - 1000,
                        source="provincial_credit") for v in wanted]
    scores, _ = score(spark, scheme, "2026-03", findings)
    assert {int(s): (r.score, r.grade) for s, r in scores.items()} == \
        {v: (v, g) for v, g in wanted.items()}


# --------------------------------------------------------------------------------- dedupe
def test_same_deed_commended_by_two_departments_counts_once_at_the_higher_value(spark, shipped):
    findings = [
        finding("a", "COMMENDATION", D(2026, 2, 1), level="municipal", case_ref="deed-7",
                source="volunteer_federation", record="v1"),
        finding("a", "COMMENDATION", D(2026, 2, 3), level="provincial", case_ref="deed-7",
                source="civilization_office", record="c1"),
        finding("b", "COMMENDATION", D(2026, 2, 1), level="municipal", case_ref="deed-8"),
        finding("b", "COMMENDATION", D(2026, 2, 1), level="county", case_ref="deed-9"),
    ]
    scores, lines = score(spark, shipped["haibei"], "2026-03", findings)
    assert scores["a"].score == 1060            # +60 once, not +90
    assert scores["b"].score == 1050            # different deeds: +30 +20
    loser = next(l for l in lines if l.record_id == "v1")
    assert (loser.status, loser.deduplicated_by, loser.points) == \
        ("deduplicated", "civilization_office/c1", 0)


def test_dedupe_without_case_ref_uses_the_date_and_ties_by_source(spark, example):
    findings = [
        # same date, no case_ref on either: one behaviour; equal points → source_id order wins
        finding("a", "ADMIN_PENALTY", D(2026, 1, 9), level="general", source="traffic_police"),
        finding("a", "ADMIN_PENALTY", D(2026, 1, 9), level="general", source="public_security"),
        # a case_ref on one only: not the same behaviour, both count
        finding("b", "ADMIN_PENALTY", D(2026, 1, 9), level="general", case_ref="X"),
        finding("b", "ADMIN_PENALTY", D(2026, 1, 9), level="general"),
    ]
    scores, lines = score(spark, example, "2026-03", findings)
    assert scores["a"].score == 976 and scores["b"].score == 952
    won = [l for l in lines if l.subject_key == "a" and l.status == "counted"]
    assert [l.source_id for l in won] == ["public_security"]


# --------------------------------------------------------------------------------- validity
def test_last_valid_day_counts_and_the_next_day_does_not(spark, example):
    # fine-general: 24 months. Occurred 2024-04-01 → last day 2026-03-31.
    f = [finding("a", "ADMIN_PENALTY", D(2024, 4, 1), level="general"),
         # valid_until cuts the window: last day 2026-03-30, so on 2026-03-31 it has expired
         finding("b", "ADMIN_PENALTY", D(2025, 4, 1), level="general", valid_until=D(2026, 3, 30)),
         finding("c", "ADMIN_PENALTY", D(2025, 4, 1), level="general", valid_until=D(2026, 3, 31))]
    march, lines = score(spark, example, "2026-03", f)
    april, _ = score(spark, example, "2026-04", f)
    assert (march["a"].score, april["a"].score) == (976, 1000)
    assert (march["b"].score, march["c"].score) == (1000, 976)
    assert {l.subject_key: (l.status, l.last_valid_day) for l in lines} == {
        "a": ("counted", D(2026, 3, 31)), "b": ("expired", D(2026, 3, 30)),
        "c": ("counted", D(2026, 3, 31))}


def test_month_end_is_clamped(spark, tmp_path):
    scheme = write_scheme(tmp_path, "short", EXAMPLE.replace("scheme: example", "scheme: short")
                          .replace("points: -24, valid_months: 24", "points: -24, valid_months: 1"))
    # 31 Jan + 1 month = 28 Feb (2026) → last day 27 Feb; 2024 is a leap year → 29 Feb → 28 Feb
    f = [finding("a", "ADMIN_PENALTY", D(2026, 1, 31), level="general"),
         finding("b", "ADMIN_PENALTY", D(2026, 2, 1), level="general")]
    scores, lines = score(spark, scheme, "2026-02", f)
    assert {l.subject_key: l.last_valid_day for l in lines} == {"a": D(2026, 2, 27), "b": D(2026, 2, 28)}
    assert (scores["a"].score, scores["b"].score) == (1000, 976)
    _, leap = score(spark, scheme, "2024-02", [finding("c", "ADMIN_PENALTY", D(2024, 1, 31), level="general")])
    assert leap[0].last_valid_day == D(2024, 2, 28)


def test_not_yet_valid_is_explained_and_no_rule_is_not(spark, example):
    f = [finding("a", "COMMENDATION", D(2026, 4, 2), level="provincial"),   # after as-of date
         finding("a", "COMMENDATION", D(2026, 3, 2), level="county"),       # no rule in example
         finding("a", "BRAVERY", D(2026, 3, 2))]                            # no rule either
    scores, lines = score(spark, example, "2026-03", f)
    assert scores["a"].score == 1000
    # SPEC §5 (amended 2026-12-05): no line for a finding the scheme has no rule for (the run
    # report counts unmatched items)
    assert sorted(l.status for l in lines) == ["not_yet_valid"]


def test_lines_explain_the_month_not_the_past(spark, example):
    """SPEC §5 as amended: a line for what is in force and for what changed since the previous
    month — not for findings that expired before it, nor for old revocations."""
    def versioned(subject, item, occurred, known_from, level=None, status="active", record=None):
        return (*finding(subject, item, occurred, level=level, status=status, record=record),
                known_from)
    f = [
        # fine-general, 24 months: last day 2026-02-28 → expired in the previous month: a line
        versioned("a", "ADMIN_PENALTY", D(2024, 3, 1), "2024-03", level="general", record="prev"),
        # last day 2026-03-30 → expired in the month: a line
        versioned("a", "ADMIN_PENALTY", D(2024, 3, 31), "2024-04", level="general", record="now"),
        # last day 2025-12-31 → expired months ago: no line
        versioned("a", "ADMIN_PENALTY", D(2024, 1, 1), "2024-01", level="general", record="old"),
        # revoked by a version delivered this month: a line; revoked a year ago: none
        versioned("a", "COURT_DISHONEST_DEBTOR", D(2025, 1, 5), "2026-03", status="revoked",
                  record="rev-now"),
        versioned("a", "COURT_DISHONEST_DEBTOR", D(2024, 1, 5), "2025-03", status="revoked",
                  record="rev-old"),
        versioned("a", "ADMIN_PENALTY", D(2026, 1, 10), "2026-01", level="general", record="in"),
    ]
    scores, lines = scoring.score_month(
        spark.createDataFrame(f, FINDINGS + ", known_from string"),
        spark.createDataFrame([("a",)], "subject_key string"),
        spark.createDataFrame([], APPEALS), spark.createDataFrame([], OPTOUTS),
        example, "2026-03", "test-run")
    by_record = {l.record_id: (l.status, l.points) for l in lines.collect()}
    assert by_record == {"prev": ("expired", 0), "now": ("expired", 0),
                         "rev-now": ("revoked", 0), "in": ("counted", Decimal(-24))}
    assert scores.collect()[0].score == 976


# --------------------------------------------------------------------------------- step 1
def test_revoked_finding_does_not_count(spark, shipped):
    f = [finding("a", "COURT_DISHONEST_DEBTOR", D(2025, 6, 1), status="revoked")]
    scores, lines = score(spark, shipped["haibei"], "2026-03", f)
    assert scores["a"].score == 1000 and lines[0].status == "revoked"


def test_appeals_upheld_drop_and_long_open_ones_are_masked(spark, example):
    f = [finding("a", "ADMIN_PENALTY", D(2026, 9, 1), level="general", source="s", record="up"),
         finding("b", "ADMIN_PENALTY", D(2026, 9, 1), level="general", source="s", record="old"),
         finding("c", "ADMIN_PENALTY", D(2026, 9, 1), level="general", source="s", record="new"),
         finding("d", "ADMIN_PENALTY", D(2026, 9, 1), level="general", source="s", record="rej")]
    # October 2026: 1–8 Oct National Day holiday, Sat 10 Oct is a make-up working day.
    # Working days after 2026-10-15 up to 31 Oct: 16,19-23,26-30 = 11 → > 10 → masked.
    # Filed 2026-10-16: 19-23, 26-30 = 10 → not masked.
    appeals = [("A1", "s", "up", D(2026, 9, 20), D(2026, 10, 20), "upheld"),
               ("A2", "s", "old", D(2026, 10, 15), None, None),
               ("A3", "s", "new", D(2026, 10, 16), None, None),
               ("A4", "s", "rej", D(2026, 9, 2), D(2026, 9, 30), "rejected")]
    scores, lines = score(spark, example, "2026-10", f, appeals=appeals)
    assert {s: scores[s].score for s in "abcd"} == {"a": 1000, "b": 1000, "c": 976, "d": 976}
    assert {l.subject_key: l.status for l in lines} == \
        {"a": "appeal_upheld", "b": "masked", "c": "counted", "d": "counted"}
    # on 30 Sep that appeal was open but had waited 8 working days (21–25, 28–30 Sep): counts
    sept, _ = score(spark, example, "2026-09", f[:1], appeals=appeals[:1])
    assert sept["a"].score == 976


def test_opted_out_person_is_not_scored(spark, example):
    f = [finding("a", "ADMIN_PENALTY", D(2026, 3, 1), level="general"),
         finding("b", "ADMIN_PENALTY", D(2026, 3, 1), level="general")]
    scores, lines = score(spark, example, "2026-03", f, optouts=[("a", D(2026, 3, 20))])
    assert set(scores) == {"b"} and {l.subject_key for l in lines} == {"b"}


# --------------------------------------------------------------------------------- step 4–7
def test_tiers_caps_and_dimension_caps(spark, example):
    f = [finding("t9", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=9),
         finding("t10", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=10),
         finding("t49", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=20),
         finding("t49", "VOLUNTEER_SERVICE", D(2026, 3, 2), quantity=29),
         finding("t50", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=50),
         finding("t300", "VOLUNTEER_SERVICE", D(2026, 2, 1), quantity=299.5),
         finding("t300", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=0.5),
         # 6 blood donations × 10 = 60, rule cap 40
         *[finding("blood", "BLOOD_DONATION", D(2026, 1, d), quantity=400) for d in range(1, 7)],
         # 12 arrears cycles × −10 = −120, rule cap 100 → −100
         finding("arrears", "LOAN_ARREARS", D(2026, 1, 5), quantity=12),
         # 3 distinct provincial commendations: 180, dimension cap 150
         *[finding("award", "COMMENDATION", D(2026, 1, d), level="provincial", case_ref=f"d{d}")
           for d in (1, 2, 3)]]
    scores, lines = score(spark, example, "2026-03", f)
    assert {s: scores[s].score for s in scores} == {
        "t9": 1000, "t10": 1002, "t49": 1002, "t50": 1010, "t300": 1050, "blood": 1040,
        "arrears": 900, "award": 1150}
    caps = {(l.subject_key, l.line_type): l.points for l in lines if l.line_type != "finding"}
    assert caps[("blood", "rule_cap")] == Decimal(-20)
    assert caps[("arrears", "rule_cap")] == Decimal(20)
    assert caps[("award", "dimension_cap")] == Decimal(-30)
    assert caps[("t300", "tier")] == Decimal(50)
    assert scores["award"].dimension_points["award"] == Decimal(150)


def test_clamp_and_half_up_rounding(spark, tmp_path):
    scheme = write_scheme(tmp_path, "frac", EXAMPLE.replace("scheme: example", "scheme: frac")
                          .replace("points_per_unit: -10, cap: 100", "points_per_unit: -0.25")
                          .replace("min_score: 0", "min_score: 900"))
    f = [finding("a", "LOAN_ARREARS", D(2026, 3, 1), quantity=2),    # −0.5 → 999.5 → 1000
         finding("b", "LOAN_ARREARS", D(2026, 3, 1), quantity=3),    # −0.75 → 999.25 → 999
         finding("c", "LOAN_ARREARS", D(2026, 3, 1), quantity=1000)] # −250 → 750, clamped 900
    scores, _ = score(spark, scheme, "2026-03", f)
    assert {s: (scores[s].score, scores[s].grade) for s in "abc"} == \
        {"a": (1000, "A"), "b": (999, "B"), "c": (900, "B")}


def test_points_are_bounded_by_their_type_and_quantities_are_not(spark, tmp_path, example):
    """Points are decimal(18,8) (|points| < 10^10, scoring.decimals); a quantity keeps its
    decimal(18,4) range: 10^12 volunteer hours reach the top tier (a tier's value is compared
    as a quantity), 10^8 arrears cycles (−10^9 points) meet the rule cap of 100; a rule whose
    points do not fit is refused by name."""
    f = [finding("hours", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=10 ** 12),
         finding("cycles", "LOAN_ARREARS", D(2026, 3, 1), quantity=10 ** 8)]
    scores, _ = score(spark, example, "2026-03", f)
    assert (scores["hours"].score, scores["cycles"].score) == (1050, 900)
    huge = EXAMPLE.replace("scheme: example", "scheme: huge").replace(
        "points: -150, valid_months: 60", "points: -10000000000, valid_months: 60")
    with pytest.raises(RuleFileError, match=r"huge\.yaml: rule 'debtor': field 'points': "
                                             r"must be below 10,000,000,000 .* \(line 18\)"):
        write_scheme(tmp_path, "huge", huge)      # refused as the file loads, before any Spark


def test_huzhou_commitments_cap_and_breach_repair(spark, shipped):
    huzhou = shipped["huzhou"]
    commitment = next(r for r in huzhou.rules if r.item == "COMMITMENT_SIGNED")
    breach = next(r for r in huzhou.rules if r.item == "COMMITMENT_BREACH")
    assert (commitment.points, commitment.cap) == (Decimal(20), Decimal(400))
    assert (breach.points, breach.valid_months) == (Decimal(-20), 6)
    base = huzhou.base_score
    signed = lambda s, n: [finding(s, "COMMITMENT_SIGNED", D(2026, 1, 1 + i % 28),  # noqa: E731
                                   source="commitments", case_ref=f"{s}-c{i}") for i in range(n)]
    f = (signed("twenty", 20) + signed("twentyfive", 25) + signed("breach", 20)
         + [finding("breach", "COMMITMENT_BREACH", D(2026, 2, 10), source="commitments")])
    march, _ = score(spark, huzhou, "2026-03", f)
    assert march["twenty"].score == base + 400
    assert march["twentyfive"].score == base + 400          # the cap holds
    assert march["breach"].score == base + 380              # a breach takes 20 off…
    july, _ = score(spark, huzhou, "2026-07", f)            # …for six months: 10 Feb – 9 Aug
    august, _ = score(spark, huzhou, "2026-08", f)
    assert july["breach"].score == base + 380
    assert august["breach"].score == base + 400


def test_explanation_lines_sum_to_the_raw_score(spark, example):
    f = [finding("a", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=60),
         *[finding("a", "BLOOD_DONATION", D(2026, 1, d), quantity=300) for d in range(1, 6)],
         *[finding("a", "COMMENDATION", D(2026, 1, d), level="provincial", case_ref=f"d{d}")
           for d in (1, 2, 3)],
         finding("a", "COMMENDATION", D(2026, 1, 1), level="provincial", case_ref="d1",
                 source="charity_federation"),
         finding("a", "LOAN_ARREARS", D(2026, 1, 5), quantity=3)]
    scores, lines = score(spark, example, "2026-03", f)
    # +10 tier, blood 50→40, award 180→150, arrears −30 → 1170
    assert scores["a"].score == 1170
    assert example.base_score + sum(l.points for l in lines) == Decimal(1170)
    assert scores["a"].points_positive + scores["a"].points_negative == Decimal(170)


def test_the_publication_checksum_sees_a_subject_whose_lines_miss_its_score(spark):
    """scoring.job's points checksum (compared by publish.checks): equal when every subject's
    explanation lines sum to its score; points moved between subjects (the total unchanged) or
    10⁻⁸ of a point missing make it differ."""
    from pyspark.sql import functions as F

    from citycredit.scoring.job import CHECK_MODULUS, weighted_points

    scores = spark.createDataFrame(
        [("a", Decimal("12.5"), Decimal("-3.25")), ("b", Decimal("0"), Decimal("-0.00000001"))],
        "subject_key string, points_positive decimal(18,8), points_negative decimal(18,8)")

    def checksum(rows):
        lines = spark.createDataFrame([(k, Decimal(p)) for k, p in rows],
                                      "subject_key string, points decimal(18,8)")
        return lines.agg(F.sum(weighted_points(F.col("points")))).first()[0] % CHECK_MODULUS

    scored = scores.agg(F.sum(weighted_points(F.col("points_positive")
                                              + F.col("points_negative")))).first()[0]
    right = [("a", "10.5"), ("a", "2"), ("a", "-3.25"), ("b", "-0.00000001")]
    assert checksum(right) == scored % CHECK_MODULUS
    moved = [("a", "10.5"), ("b", "2"), ("a", "-3.25"), ("a", "-0.00000001")]
    assert checksum(moved) != scored % CHECK_MODULUS
    assert checksum(right[:3]) != scored % CHECK_MODULUS
