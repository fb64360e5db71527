"""Hand-computed cases for the DuckDB reference scorer (bench/reference_duckdb.py), SPEC §4.

No Spark.  Every case builds small silver tables (all versions, known_from/known_until) as pyarrow
tables, writes a small scheme YAML in the SPEC §4 format, and asserts the exact score and grade.
A last randomized test checks the SQL against a plain-Python evaluation of the same rules.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import holidays
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from reference.duckdb_scorer import (
    SchemeError,
    appeal_mask_cutoff,
    load_scheme,
    score_reference,
    working_days_after,
)

MAIN_YAML = """\
scheme: t
title: 测试分
version: "test.1"
effective_from: 2023-01
base_score: 1000
min_score: 0
max_score: 2000
dimensions:
  law:    {title: 守法履约}
  award:  {title: 表彰奖励, cap: 150}
  public: {title: 道德公益}
  misc:   {title: 社会责任, cap: 50}
grades:
  - {grade: AAA, label: 模范, min: 1150}
  - {grade: AA,  label: 优秀, min: 1050}
  - {grade: A,   label: 良好, min: 1000}
  - {grade: B,   label: 一般, min: 950}
  - {grade: C,   label: 警示, min: 801}
  - {grade: D,   label: 不良}
rules:
  - {id: debtor, item: COURT_DISHONEST_DEBTOR, dimension: law, points: -200, valid_months: 60, dedupe_group: court}
  - {id: fine-minor, item: ADMIN_PENALTY, when: {level: minor}, dimension: law, points: -20, valid_months: 12, dedupe_group: penalty}
  - {id: fine-general, item: ADMIN_PENALTY, when: {level: general}, dimension: law, points: -24, valid_months: 24, dedupe_group: penalty}
  - {id: fine-serious, item: ADMIN_PENALTY, when: {level: serious}, dimension: law, points: -60, valid_months: 36, dedupe_group: penalty}
  - {id: award-national, item: COMMENDATION, when: {level: national}, dimension: award, points: 100, valid_months: 60, dedupe_group: deed}
  - {id: award-provincial, item: COMMENDATION, when: {level: provincial}, dimension: award, points: 60, valid_months: 36, dedupe_group: deed}
  - {id: award-municipal, item: COMMENDATION, when: {level: municipal}, dimension: award, points: 30, valid_months: 36, dedupe_group: deed}
  - {id: award-other, item: COMMENDATION, dimension: award, points: 10, valid_months: 36, dedupe_group: deed}
  - {id: bravery, item: BRAVERY, dimension: award, points: 80, valid_months: 36}
  - {id: blood, item: BLOOD_DONATION, dimension: public, points: 10, cap: 40, valid_months: 24}
  - {id: arrears, item: LOAN_ARREARS, dimension: law, points_per_unit: -10, cap: 100, valid_months: 24}
  - {id: volunteer, item: VOLUNTEER_SERVICE, dimension: public, valid_months: 12,
     tiers: [{at_least: 10, points: 2}, {at_least: 50, points: 10}, {at_least: 300, points: 50}]}
  - {id: charity, item: CHARITY_DONATION, dimension: misc, points_per_unit: 0.005, valid_months: 12}
  - {id: uncivil, item: UNCIVIL_CONDUCT, dimension: law, points: -2.5, valid_months: 12}
  - {id: commitment, item: COMMITMENT_SIGNED, dimension: public, points: 20, valid_months: 1}
  - {id: commitment-2m, item: COMMITMENT_BREACH, dimension: public, points: 5, valid_months: 2}
"""

# no clamp at all, base 0: negative half-way values
ROUND_YAML = """\
scheme: r
title: rounding
version: "1"
effective_from: 2026-01
base_score: 0
dimensions:
  law: {title: law}
grades:
  - {grade: P, label: positive, min: 1}
  - {grade: Z, label: zero-or-less}
rules:
  - {id: arrears, item: LOAN_ARREARS, dimension: law, points_per_unit: -0.25, valid_months: 24}
  - {id: charity, item: CHARITY_DONATION, dimension: law, points_per_unit: 0.005, valid_months: 24}
"""

# small clamp range
CLAMP_YAML = """\
scheme: c
title: clamp
version: "1"
effective_from: 2026-01
base_score: 100
min_score: 0
max_score: 150
dimensions:
  law: {title: law}
  award: {title: award}
grades:
  - {grade: A, label: top, min: 150}
  - {grade: B, label: mid, min: 100}
  - {grade: C, label: low, min: 1}
  - {grade: D, label: bottom}
rules:
  - {id: fine, item: ADMIN_PENALTY, dimension: law, points: -60, valid_months: 24}
  - {id: award, item: COMMENDATION, dimension: award, points: 40, valid_months: 24}
"""

ADULT = dt.date(1980, 5, 17)

F_SCHEMA = pa.schema(
    [
        ("source_id", pa.string()),
        ("record_id", pa.string()),
        ("subject_key", pa.string()),
        ("item_code", pa.string()),
        ("level", pa.string()),
        ("quantity", pa.decimal128(18, 4)),
        ("occurred_on", pa.date32()),
        ("valid_until", pa.date32()),
        ("status", pa.string()),
        ("case_ref", pa.string()),
        ("known_from", pa.string()),
        ("known_until", pa.string()),
        ("load_id", pa.string()),
    ]
)
P_SCHEMA = pa.schema(
    [
        ("subject_key", pa.string()),
        ("birth_date", pa.date32()),
        ("sex", pa.string()),
        ("district", pa.string()),
        ("residency", pa.string()),
        ("status", pa.string()),
        ("snapshot_month", pa.string()),
    ]
)
A_SCHEMA = pa.schema(
    [
        ("appeal_id", pa.string()),
        ("source_id", pa.string()),
        ("record_id", pa.string()),
        ("filed_on", pa.date32()),
        ("resolved_on", pa.date32()),
        ("outcome", pa.string()),
        ("known_from", pa.string()),
        ("known_until", pa.string()),
    ]
)
O_SCHEMA = pa.schema([("subject_key", pa.string()), ("requested_on", pa.date32()), ("known_from", pa.string())])


def d(s: str | None) -> dt.date | None:
    return None if s is None else dt.date.fromisoformat(s)


def finding(subject, item, occurred_on, *, level=None, quantity=None, source_id="court", record_id=None,
            valid_until=None, status="active", case_ref=None, known_from="2023-01", known_until=None):
    return {
        "source_id": source_id,
        "record_id": record_id,
        "subject_key": subject,
        "item_code": item,
        "level": level,
        "quantity": None if quantity is None else Decimal(str(quantity)),
        "occurred_on": d(occurred_on),
        "valid_until": d(valid_until),
        "status": status,
        "case_ref": case_ref,
        "known_from": known_from,
        "known_until": known_until,
        "load_id": "test",
    }


def findings_table(rows):
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        if r["record_id"] is None:
            r["record_id"] = f"rec{i:04d}"
    return pa.Table.from_pylist(rows, schema=F_SCHEMA)


def population_table(month, people):
    """people: subject -> birth date string, or (birth date, status)."""
    rows = []
    for key, v in people.items():
        birth, status = (v, "active") if isinstance(v, str) else v
        rows.append({"subject_key": key, "birth_date": d(birth), "sex": "F", "district": "371002",
                     "residency": "hukou", "status": status, "snapshot_month": month})
    return pa.Table.from_pylist(rows, schema=P_SCHEMA)


def appeal(source_id, record_id, filed_on, resolved_on=None, outcome=None, known_from="2023-01", known_until=None,
           appeal_id=None):
    return {"appeal_id": appeal_id or f"ap-{source_id}-{record_id}-{filed_on}", "source_id": source_id,
            "record_id": record_id, "filed_on": d(filed_on), "resolved_on": d(resolved_on), "outcome": outcome,
            "known_from": known_from, "known_until": known_until}


@pytest.fixture(scope="module")
def schemes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    out = {}
    for name, text in (("t", MAIN_YAML), ("r", ROUND_YAML), ("c", CLAMP_YAML)):
        p = folder / f"{name}.yaml"
        p.write_text(text, encoding="utf-8")
        out[name] = p
    return out


def run(schemes, rows, month, *, people=None, appeals=(), optouts=(), scheme="t", **kw):
    """Score and return {subject: (score, grade, raw_score)}."""
    if people is None:
        people = {r["subject_key"]: "1980-05-17" for r in rows}
    tables = {
        "findings": findings_table(rows),
        "population": population_table(month, people),
        "appeals": pa.Table.from_pylist(list(appeals), schema=A_SCHEMA),
        "optouts": pa.Table.from_pylist(
            [{"subject_key": s, "requested_on": d(on), "known_from": kf} for s, on, kf in optouts], schema=O_SCHEMA),
    }
    out = score_reference(tables, schemes[scheme], month, **kw)
    assert out.column_names == ["subject_key", "score", "grade", "raw_score"]
    assert out.schema.field("score").type == pa.int64()
    assert pa.types.is_decimal(out.schema.field("raw_score").type)
    keys = out.column("subject_key").to_pylist()
    assert keys == sorted(keys)
    return {r["subject_key"]: (r["score"], r["grade"], r["raw_score"]) for r in out.to_pylist()}


def sg(res, subject):
    return res[subject][:2]


# --------------------------------------------------------------------------------------------
# Step 1 inputs: population
# --------------------------------------------------------------------------------------------


def test_serious_penalty_drunk_driving(schemes):
    res = run(schemes, [finding("s1", "ADMIN_PENALTY", "2026-03-10", level="serious", source_id="traffic_police")],
              "2026-03")
    assert res["s1"] == (940, "C", Decimal("940"))


def test_subject_without_findings_gets_base(schemes):
    res = run(schemes, [], "2026-03", people={"nobody": "1980-01-01"})
    assert res == {"nobody": (1000, "A", Decimal("1000"))}


def test_minor_deceased_moved_out_not_scored(schemes):
    people = {
        "minor": "2008-04-01",  # 18 on 2026-04-01: 17 on A = 2026-03-31
        "just18": "2008-03-31",  # 18 on A exactly
        "leap": "2008-02-29",  # add_months(2008-02-29, 216) = 2026-02-28
        "dead": ("1970-01-01", "deceased"),
        "gone": ("1970-01-01", "moved_out"),
        "alive": "1970-01-01",
    }
    rows = [finding(k, "ADMIN_PENALTY", "2026-03-01", level="serious") for k in people]
    res = run(schemes, rows, "2026-03", people=people)
    assert set(res) == {"just18", "leap", "alive"}
    assert all(v[:2] == (940, "C") for v in res.values())
    res4 = run(schemes, rows, "2026-04", people=people)
    assert set(res4) == {"minor", "just18", "leap", "alive"}
    # Feb 29 birthday: adult on 2026-02-28 (month-end clamped add_months), so scored for 2026-02
    res2 = run(schemes, [], "2026-02", people={"leap": "2008-02-29", "late": "2008-03-01"})
    assert set(res2) == {"leap"}


def test_population_is_the_snapshot_of_the_month(schemes):
    pop = pa.concat_tables([population_table("2026-02", {"a": "1980-01-01", "b": "1980-01-01"}),
                            population_table("2026-03", {"a": "1980-01-01"})])
    tables = {"findings": findings_table([finding("b", "ADMIN_PENALTY", "2026-01-05", level="serious")]),
              "population": pop}
    out = score_reference(tables, schemes["t"], "2026-03")
    assert out.to_pylist() == [{"subject_key": "a", "score": 1000, "grade": "A", "raw_score": Decimal("1000")}]
    out = score_reference(tables, schemes["t"], "2026-02")
    assert [(r["subject_key"], r["score"]) for r in out.to_pylist()] == [("a", 1000), ("b", 940)]


def test_findings_of_unknown_subjects_and_unmatched_items_ignored(schemes):
    rows = [finding("s1", "NO_SUCH_ITEM", "2026-03-01"),
            finding("s1", "ADMIN_PENALTY", "2026-03-01", level="unheard-of"),  # no rule for this level
            finding("stranger", "ADMIN_PENALTY", "2026-03-01", level="serious")]
    res = run(schemes, rows, "2026-03", people={"s1": "1980-01-01"})
    assert res == {"s1": (1000, "A", Decimal("1000"))}


# --------------------------------------------------------------------------------------------
# Step 1: revocation, appeals, opt-outs
# --------------------------------------------------------------------------------------------


def test_revoked_drops(schemes):
    rows = [finding("s1", "ADMIN_PENALTY", "2026-03-10", level="serious", status="revoked")]
    assert sg(run(schemes, rows, "2026-03"), "s1") == (1000, "A")


def test_upheld_appeal_drops(schemes):
    rows = [finding("up", "ADMIN_PENALTY", "2026-02-10", level="serious", source_id="traffic_police", record_id="x1"),
            finding("rej", "ADMIN_PENALTY", "2026-02-10", level="serious", source_id="traffic_police", record_id="x2"),
            finding("late", "ADMIN_PENALTY", "2026-02-10", level="serious", source_id="traffic_police", record_id="x3")]
    appeals = [appeal("traffic_police", "x1", "2026-03-02", "2026-03-20", "upheld"),
               appeal("traffic_police", "x2", "2026-02-12", "2026-03-20", "rejected"),
               # upheld only after A: open on A and filed 2026-03-30 (1 working day) -> not masked
               appeal("traffic_police", "x3", "2026-03-30", "2026-04-03", "upheld", known_from="2026-03")]
    res = run(schemes, rows, "2026-03", appeals=appeals)
    assert sg(res, "up") == (1000, "A")
    assert sg(res, "rej") == (940, "C")
    assert sg(res, "late") == (940, "C")
    assert sg(run(schemes, rows, "2026-04", appeals=appeals), "late") == (1000, "A")


def test_appeal_as_known_at_month(schemes):
    # the appeal's upheld outcome is delivered in 2026-04 (earlier version: open, filed 2026-03-27)
    rows = [finding("s1", "ADMIN_PENALTY", "2026-02-10", level="serious", source_id="traffic_police", record_id="x1")]
    appeals = [appeal("traffic_police", "x1", "2026-03-27", None, None, known_from="2026-03", known_until="2026-04",
                      appeal_id="a1"),
               appeal("traffic_police", "x1", "2026-03-27", "2026-03-31", "upheld", known_from="2026-04",
                      appeal_id="a1")]
    assert sg(run(schemes, rows, "2026-03", appeals=appeals), "s1") == (940, "C")  # open, 2 working days
    assert sg(run(schemes, rows, "2026-04", appeals=appeals), "s1") == (1000, "A")


def test_national_day_2026_arrangement_in_holidays_package():
    # The holidays package's 2026 China data (State Council arrangement): National Day + Mid-Autumn
    # Oct 1-7 off; make-up working days Sun Sep 20 and Sat Oct 10; Fri Sep 25 (Mid-Autumn) off.
    cn = holidays.China(years=2026)
    assert [x for x in (dt.date(2026, 10, 1) + dt.timedelta(i) for i in range(10)) if cn.is_working_day(x)] == [
        dt.date(2026, 10, 8), dt.date(2026, 10, 9), dt.date(2026, 10, 10)]
    assert cn.is_working_day(dt.date(2026, 9, 20)) and not cn.is_working_day(dt.date(2026, 9, 25))
    assert not cn.is_working_day(dt.date(2026, 9, 27)) and cn.is_working_day(dt.date(2026, 9, 28))
    # working days d with filed_on < d <= A
    assert working_days_after(dt.date(2026, 9, 30), dt.date(2026, 10, 12)) == 4  # 8, 9, 10 (Sat), 12
    assert working_days_after(dt.date(2026, 9, 19), dt.date(2026, 9, 20)) == 1  # Sunday make-up day
    assert working_days_after(dt.date(2026, 9, 15), dt.date(2026, 9, 30)) == 11
    assert working_days_after(dt.date(2026, 9, 16), dt.date(2026, 9, 30)) == 10


@pytest.mark.parametrize("asof,n", [(dt.date(2026, 9, 30), 10), (dt.date(2026, 10, 31), 10),
                                    (dt.date(2026, 10, 31), 20), (dt.date(2026, 2, 28), 10),
                                    (dt.date(2026, 1, 31), 0), (dt.date(2025, 10, 31), 25)])
def test_mask_cutoff_matches_day_count(asof, n):
    cutoff = appeal_mask_cutoff(asof, n)
    for back in range(0, 70):
        filed = asof - dt.timedelta(days=back)
        assert (filed < cutoff) == (working_days_after(filed, asof) > n), filed


def test_open_appeal_mask_around_2026_national_day(schemes):
    # Score month 2026-09, A = Wed 2026-09-30.  Counting back: 30, 29, 28, [27, 26 weekend, 25 Mid-Autumn],
    # 24, 23, 22, 21, 20 (Sunday make-up workday), [19 Sat], 18, 17 -> 10; 16 is the 11th.
    subjects = {"f0915": "2026-09-15", "f0916": "2026-09-16", "f0930": "2026-09-30"}
    rows = [finding(s, "ADMIN_PENALTY", "2026-08-01", level="serious", source_id="public_security", record_id=s)
            for s in subjects]
    appeals = [appeal("public_security", s, filed, known_from="2026-09") for s, filed in subjects.items()]
    res = run(schemes, rows, "2026-09", appeals=appeals)
    assert sg(res, "f0915") == (1000, "A")  # 11 working days > 10: masked
    assert sg(res, "f0916") == (940, "C")  # exactly 10: not masked
    assert sg(res, "f0930") == (940, "C")

    # Across the National Day holiday: A = Sat 2026-10-31, N = 20 working days.
    # Back from Oct 31: Oct 30..12 (15 days), Oct 10 Sat make-up (16), 9, 8 (18), Oct 1-7 off,
    # Sep 30, 29 (20), Sep 28 (21).  Filed Sun Sep 27 -> 21 > 20 masked; filed Sep 28 -> 20 not masked.
    # (Weekdays alone would have counted Oct 1-7 and missed Oct 10: cutoff Oct 2.)
    subjects = {"f0927": "2026-09-27", "f0928": "2026-09-28", "f1001": "2026-10-01"}
    rows = [finding(s, "ADMIN_PENALTY", "2026-08-01", level="serious", source_id="public_security", record_id=s)
            for s in subjects]
    appeals = [appeal("public_security", s, filed, known_from="2026-09") for s, filed in subjects.items()]
    res = run(schemes, rows, "2026-10", appeals=appeals, mask_working_days=20)
    assert sg(res, "f0927") == (1000, "A")
    assert sg(res, "f0928") == (940, "C")
    assert sg(res, "f1001") == (940, "C")
    # default N = 10 in 2026-10: cutoff Fri Oct 16 (Oct 30..19 = 10 working days)
    res = run(schemes, rows, "2026-10", appeals=appeals)
    assert sg(res, "f0928") == (1000, "A") and sg(res, "f1001") == (1000, "A")


def test_open_appeal_resolved_later_still_masks_then_counts(schemes):
    rows = [finding("s1", "ADMIN_PENALTY", "2026-08-01", level="serious", source_id="public_security", record_id="p1")]
    appeals = [appeal("public_security", "p1", "2026-09-01", "2026-10-05", "rejected", known_from="2026-10")]
    # as known at 2026-09 the appeal does not exist yet (delivered 2026-10)
    assert sg(run(schemes, rows, "2026-09", appeals=appeals), "s1") == (940, "C")
    # known at 2026-10, resolved (rejected) on 2026-10-05 <= A: counts
    assert sg(run(schemes, rows, "2026-10", appeals=appeals), "s1") == (940, "C")
    appeals = [appeal("public_security", "p1", "2026-09-01", "2026-10-05", "rejected", known_from="2026-09")]
    # open on A = 2026-09-30 (resolved after A), filed 21 working days before: masked
    assert sg(run(schemes, rows, "2026-09", appeals=appeals), "s1") == (1000, "A")


def test_optout_drops_every_finding_and_the_subject(schemes):
    rows = [finding("out", "ADMIN_PENALTY", "2026-03-10", level="serious"),
            finding("out", "COMMENDATION", "2026-03-10", level="national"),
            finding("later", "ADMIN_PENALTY", "2026-03-10", level="serious")]
    # opted out on 2026-03-05: no finding counts and no score row (SPEC §4 step 1, §7)
    res = run(schemes, rows, "2026-03", optouts=[("out", "2026-03-05", "2026-03"), ("later", "2026-04-02", "2026-04")])
    assert "out" not in res
    assert sg(res, "later") == (940, "C")
    assert "later" not in run(schemes, rows, "2026-04", optouts=[("later", "2026-04-02", "2026-04")])
    # requested_on after A never drops (even if, anomalously, already known at M)
    res = run(schemes, rows, "2026-03", optouts=[("later", "2026-04-02", "2026-03")])
    assert sg(res, "later") == (940, "C")
    # an opt-out delivered only in 2026-04 is not known when re-scoring 2026-03 (bitemporal)
    res = run(schemes, rows, "2026-03", optouts=[("out", "2026-03-05", "2026-04")])
    assert sg(res, "out") == (1040, "A")  # -60 + 100


# --------------------------------------------------------------------------------------------
# Step 2: first rule in file order
# --------------------------------------------------------------------------------------------


def test_first_matching_rule_in_file_order(schemes):
    rows = [finding("prov", "COMMENDATION", "2026-03-01", level="provincial"),
            finding("county", "COMMENDATION", "2026-03-01", level="county"),  # falls to award-other (+10)
            finding("nolevel", "COMMENDATION", "2026-03-01")]
    res = run(schemes, rows, "2026-03")
    assert sg(res, "prov") == (1060, "AA")
    assert sg(res, "county") == (1010, "A")
    assert sg(res, "nolevel") == (1010, "A")


# --------------------------------------------------------------------------------------------
# Step 3: validity
# --------------------------------------------------------------------------------------------


def test_last_valid_day_counts_next_day_not(schemes):
    # fine-minor: valid_months 12.  occurred 2025-04-01 -> last day 2026-03-31 (= A of 2026-03)
    rows = [finding("edge", "ADMIN_PENALTY", "2025-04-01", level="minor"),
            finding("gone", "ADMIN_PENALTY", "2025-03-31", level="minor"),  # last day 2026-03-30
            finding("vu_a", "ADMIN_PENALTY", "2026-01-10", level="minor", valid_until="2026-03-31"),
            finding("vu_a1", "ADMIN_PENALTY", "2026-01-10", level="minor", valid_until="2026-03-30"),
            finding("future", "ADMIN_PENALTY", "2026-04-01", level="minor")]  # not yet valid on A
    res = run(schemes, rows, "2026-03")
    assert sg(res, "edge") == (980, "B")
    assert sg(res, "gone") == (1000, "A")
    assert sg(res, "vu_a") == (980, "B")
    assert sg(res, "vu_a1") == (1000, "A")
    assert sg(res, "future") == (1000, "A")
    res = run(schemes, rows, "2026-04")
    assert sg(res, "edge") == (1000, "A")
    assert sg(res, "future") == (980, "B")


def test_duckdb_add_months_clamps_month_end():
    con = duckdb.connect()
    got = con.execute(
        "SELECT CAST(DATE '2024-01-31' + to_months(1) AS DATE) - 1, CAST(DATE '2023-01-31' + to_months(1) AS DATE) - 1, "
        "CAST(DATE '2023-12-31' + to_months(2) AS DATE), CAST(DATE '2008-02-29' + to_months(216) AS DATE)").fetchone()
    assert got == (dt.date(2024, 2, 28), dt.date(2023, 2, 27), dt.date(2024, 2, 29), dt.date(2026, 2, 28))


def test_month_end_clamp(schemes):
    # commitment: valid_months 1.  add_months(2024-01-31, 1) = 2024-02-29 -> last day 2024-02-28,
    # so not counted on A = 2024-02-29 (an unclamped 2024-03-02 would have counted).
    rows = [finding("leap", "COMMITMENT_SIGNED", "2024-01-31"),
            finding("feb1", "COMMITMENT_SIGNED", "2024-02-01"),  # last day 2024-02-29 = A
            # commitment-2m: valid_months 2; add_months(2023-12-31, 2) = 2024-02-29 -> last day 2024-02-28
            finding("dec31", "COMMITMENT_BREACH", "2023-12-31")]
    res = run(schemes, rows, "2024-01")
    assert sg(res, "leap") == (1020, "A") and sg(res, "dec31") == (1005, "A")
    res = run(schemes, rows, "2024-02")
    assert sg(res, "leap") == (1000, "A")
    assert sg(res, "feb1") == (1020, "A")
    assert sg(res, "dec31") == (1000, "A")
    # non-leap: add_months(2023-01-31, 1) = 2023-02-28 -> last day 2023-02-27; A = 2023-02-28
    rows = [finding("nonleap", "COMMITMENT_SIGNED", "2023-01-31")]
    assert sg(run(schemes, rows, "2023-01"), "nonleap") == (1020, "A")
    assert sg(run(schemes, rows, "2023-02"), "nonleap") == (1000, "A")


def test_valid_until_earlier_than_window(schemes):
    rows = [finding("s1", "COURT_DISHONEST_DEBTOR", "2025-06-01", valid_until="2026-02-15")]
    assert sg(run(schemes, rows, "2026-01"), "s1") == (800, "D")
    assert sg(run(schemes, rows, "2026-02"), "s1") == (1000, "A")
    assert sg(run(schemes, rows, "2026-03"), "s1") == (1000, "A")


# --------------------------------------------------------------------------------------------
# Bitemporal deliveries
# --------------------------------------------------------------------------------------------


def test_correction_replaces_only_from_its_delivery_month(schemes):
    rows = [
        # p1: delivered 2026-01 as minor, corrected in the 2026-03 delivery to serious
        finding("s1", "ADMIN_PENALTY", "2026-01-05", level="minor", source_id="market_regulation", record_id="p1",
                known_from="2026-01", known_until="2026-03"),
        finding("s1", "ADMIN_PENALTY", "2026-01-05", level="serious", source_id="market_regulation", record_id="p1",
                known_from="2026-03"),
        # r1: delivered 2026-01, revoked in the 2026-03 delivery
        finding("s2", "ADMIN_PENALTY", "2026-01-05", level="serious", source_id="market_regulation", record_id="r1",
                known_from="2026-01", known_until="2026-03"),
        finding("s2", "ADMIN_PENALTY", "2026-01-05", level="serious", source_id="market_regulation", record_id="r1",
                known_from="2026-03", status="revoked"),
        # n1: first delivered in 2026-03 although it occurred in January (late delivery)
        finding("s3", "ADMIN_PENALTY", "2026-01-05", level="serious", source_id="market_regulation", record_id="n1",
                known_from="2026-03"),
    ]
    for month, expected in (("2026-01", {"s1": 980, "s2": 940, "s3": 1000}),
                            ("2026-02", {"s1": 980, "s2": 940, "s3": 1000}),
                            ("2026-03", {"s1": 940, "s2": 1000, "s3": 940}),
                            ("2026-05", {"s1": 940, "s2": 1000, "s3": 940})):
        res = run(schemes, rows, month)
        assert {k: v[0] for k, v in res.items()} == expected, month


# --------------------------------------------------------------------------------------------
# Step 5: highest-value dedupe
# --------------------------------------------------------------------------------------------


def test_two_departments_same_deed_shared_case_ref(schemes):
    rows = [finding("s1", "COMMENDATION", "2026-02-01", level="provincial", source_id="civilization_office",
                    case_ref="deed-7"),
            finding("s1", "COMMENDATION", "2026-02-20", level="municipal", source_id="volunteer_federation",
                    case_ref="deed-7")]
    assert run(schemes, rows, "2026-03")["s1"] == (1060, "AA", Decimal("1060"))


def test_same_date_no_case_ref_dedupes(schemes):
    rows = [finding("s1", "ADMIN_PENALTY", "2026-03-03", level="general", source_id="traffic_police"),
            finding("s1", "ADMIN_PENALTY", "2026-03-03", level="general", source_id="public_security"),
            # different date: another behaviour
            finding("s2", "ADMIN_PENALTY", "2026-03-03", level="general", source_id="traffic_police"),
            finding("s2", "ADMIN_PENALTY", "2026-03-04", level="general", source_id="public_security"),
            # largest absolute value wins: serious (-60) over general (-24)
            finding("s3", "ADMIN_PENALTY", "2026-03-03", level="general", source_id="public_security"),
            finding("s3", "ADMIN_PENALTY", "2026-03-03", level="serious", source_id="traffic_police"),
            # different dedupe groups (court vs penalty) never dedupe
            finding("s4", "ADMIN_PENALTY", "2026-03-03", level="general", source_id="traffic_police", case_ref="k"),
            finding("s4", "COURT_DISHONEST_DEBTOR", "2026-03-03", source_id="court", case_ref="k")]
    res = run(schemes, rows, "2026-03")
    assert sg(res, "s1") == (976, "B")
    assert sg(res, "s2") == (952, "B")
    assert sg(res, "s3") == (940, "C")
    assert sg(res, "s4") == (776, "D")


def test_case_ref_on_one_only_no_dedupe(schemes):
    rows = [finding("s1", "COMMENDATION", "2026-02-01", level="provincial", source_id="civilization_office",
                    case_ref="deed-7"),
            finding("s1", "COMMENDATION", "2026-02-01", level="municipal", source_id="volunteer_federation")]
    assert sg(run(schemes, rows, "2026-03"), "s1") == (1090, "AA")


def test_dedupe_happens_after_validity(schemes):
    # the bigger provincial award has expired (36 months): the municipal one of the same deed counts
    rows = [finding("s1", "COMMENDATION", "2023-01-10", level="provincial", case_ref="deed-1"),
            finding("s1", "COMMENDATION", "2024-06-01", level="municipal", source_id="volunteer_federation",
                    case_ref="deed-1")]
    assert sg(run(schemes, rows, "2026-03"), "s1") == (1030, "A")


# --------------------------------------------------------------------------------------------
# Step 6: tiers, rule cap, dimension cap
# --------------------------------------------------------------------------------------------


def test_tiers(schemes):
    hours = {"h9": [9], "h10": [10], "h49": [49], "h50": [20, 30], "h299": ["299.9999"], "h300": [100, 150, 50],
             "h0": [0]}
    rows = [finding(s, "VOLUNTEER_SERVICE", "2026-02-01", quantity=q, source_id="volunteer_federation")
            for s, qs in hours.items() for q in qs]
    res = run(schemes, rows, "2026-03")
    assert {k: v[0] for k, v in res.items()} == {"h9": 1000, "h10": 1002, "h49": 1002, "h50": 1010,
                                                  "h299": 1010, "h300": 1050, "h0": 1000}
    # expired hours do not count towards the sum (valid_months 12)
    rows = [finding("s", "VOLUNTEER_SERVICE", "2025-02-01", quantity=45, source_id="volunteer_federation"),
            finding("s", "VOLUNTEER_SERVICE", "2026-02-01", quantity=8, source_id="volunteer_federation")]
    assert sg(run(schemes, rows, "2026-03"), "s") == (1000, "A")


def test_rule_cap_and_dimension_cap(schemes):
    rows = (
        # blood: 5 x +10 = 50, rule cap 40
        [finding("blood", "BLOOD_DONATION", f"2026-0{m}-0{m}", source_id="blood_center") for m in (1, 2, 3)]
        + [finding("blood", "BLOOD_DONATION", day, source_id="blood_center") for day in ("2025-10-10", "2025-11-11")]
        # arrears: 15 cycles x -10 = -150, rule cap 100 -> -100
        + [finding("arrears", "LOAN_ARREARS", "2026-02-01", quantity=15, source_id="provincial_credit")]
        # award dimension cap 150: national 100 + provincial 60 + bravery 80 = 240 -> 150
        + [finding("award", "COMMENDATION", "2026-01-01", level="national", case_ref="d1"),
           finding("award", "COMMENDATION", "2026-01-01", level="provincial", case_ref="d2"),
           finding("award", "BRAVERY", "2026-01-01", source_id="civilization_office")]
        # misc dimension cap 50: 20000 yuan x 0.005 = 100 -> 50
        + [finding("charity", "CHARITY_DONATION", "2026-01-01", quantity=20000, source_id="charity_federation")]
    )
    res = run(schemes, rows, "2026-03")
    assert res["blood"] == (1040, "A", Decimal("1040"))
    assert res["arrears"] == (900, "C", Decimal("900"))
    assert res["award"] == (1150, "AAA", Decimal("1150"))
    assert res["charity"] == (1050, "AA", Decimal("1050"))


def test_explanation_lines_explain_the_month(schemes):
    """SPEC §5 as amended: lines for findings in force or changed since the previous month, tier
    and cap lines; none for a finding expired before the previous month, a revocation delivered
    earlier or an item no rule scores. Base + Σ points = raw score for everyone."""
    rows = [
        finding("old", "UNCIVIL_CONDUCT", "2024-01-10", source_id="urban_management"),   # expired 2025-01
        finding("recent", "UNCIVIL_CONDUCT", "2025-02-15", source_id="urban_management"),  # expired 2026-02-14
        finding("recent", "NO_SUCH_ITEM", "2026-03-01"),                                    # no rule
        finding("revoked", "BRAVERY", "2026-01-01", status="revoked", known_from="2026-03"),
        finding("revoked", "BRAVERY", "2025-01-01", status="revoked", known_from="2025-12"),
        finding("later", "BRAVERY", "2026-04-02", source_id="civilization_office"),
        *[finding("blood", "BLOOD_DONATION", f"2026-0{m}-0{m}", source_id="blood_center") for m in (1, 2, 3)],
        *[finding("blood", "BLOOD_DONATION", day, source_id="blood_center") for day in ("2025-10-10", "2025-11-11")],
        finding("award", "COMMENDATION", "2026-01-01", level="national", case_ref="d1"),
        finding("award", "COMMENDATION", "2026-01-01", level="provincial", case_ref="d2"),
        finding("award", "BRAVERY", "2026-01-01", source_id="civilization_office"),
        finding("volunteer", "VOLUNTEER_SERVICE", "2026-02-01", quantity=60, source_id="volunteer_federation"),
        finding("fined", "ADMIN_PENALTY", "2026-02-01", level="minor", case_ref="p1", source_id="public_security"),
        finding("fined", "ADMIN_PENALTY", "2026-02-01", level="serious", case_ref="p1", source_id="traffic_police"),
    ]
    people = {k: "1980-05-17" for k in ("old", "recent", "revoked", "later", "blood", "award", "volunteer", "fined")}
    tables = {"findings": findings_table(rows), "population": population_table("2026-03", people)}
    scores, lines = score_reference(tables, schemes["t"], "2026-03", lines=True)
    got: dict[str, list] = {k: [] for k in people}
    for r in lines.to_pylist():
        assert (r["scheme"], r["score_month"]) == ("t", "2026-03")
        got[r["subject_key"]].append((r["line_type"], r["status"], r["rule_id"], r["points"]))
    D = Decimal
    assert got["old"] == []
    assert got["recent"] == [("finding", "expired", "uncivil", 0)]
    assert got["revoked"] == [("finding", "revoked", "bravery", 0)]
    assert got["later"] == [("finding", "not_yet_valid", "bravery", 0)]
    assert sorted(got["blood"]) == [("finding", "counted", "blood", D(10))] * 5 + [("rule_cap", "counted", "blood", D(-10))]
    assert sorted(got["award"]) == [("dimension_cap", "counted", None, D(-90)),
                                    ("finding", "counted", "award-national", D(100)),
                                    ("finding", "counted", "award-provincial", D(60)),
                                    ("finding", "counted", "bravery", D(80))]
    assert sorted(got["volunteer"]) == [("finding", "counted", "volunteer", 0), ("tier", "counted", "volunteer", D(10))]
    assert sorted(got["fined"]) == [("finding", "counted", "fine-serious", D(-60)),
                                    ("finding", "deduplicated", "fine-minor", 0)]
    tier = [r for r in lines.to_pylist() if r["line_type"] == "tier"][0]
    assert tier["quantity"] == 60 and tier["dimension"] == "public"
    raw = dict(zip(scores.column("subject_key").to_pylist(), scores.column("raw_score").to_pylist()))
    assert {k: 1000 + sum(p for *_, p in v) for k, v in got.items()} == raw


def test_clamp_to_min_and_max(schemes):
    rows = ([finding("low", "ADMIN_PENALTY", f"2026-01-0{i}") for i in (1, 2, 3)]  # 100 - 180 = -80 -> 0
            + [finding("high", "COMMENDATION", f"2026-01-0{i}") for i in (1, 2)]  # 100 + 80 = 180 -> 150
            + [finding("mid", "ADMIN_PENALTY", "2026-01-01")])  # 40
    res = run(schemes, rows, "2026-03", scheme="c")
    assert res["low"] == (0, "D", Decimal("-80"))
    assert res["high"] == (150, "A", Decimal("180"))
    assert res["mid"] == (40, "C", Decimal("40"))


# --------------------------------------------------------------------------------------------
# Step 7: exact decimals, half-up rounding, grades
# --------------------------------------------------------------------------------------------


def test_half_up_rounding_from_points_per_unit(schemes):
    rows = [finding("c100", "CHARITY_DONATION", "2026-01-01", quantity=100, source_id="charity_federation"),  # +0.5
            finding("c300", "CHARITY_DONATION", "2026-01-01", quantity=300, source_id="charity_federation"),  # +1.5
            finding("c99", "CHARITY_DONATION", "2026-01-01", quantity="99.9999", source_id="charity_federation"),
            finding("u", "UNCIVIL_CONDUCT", "2026-01-01", source_id="urban_management")]  # -2.5 -> 997.5
    res = run(schemes, rows, "2026-03")
    assert res["c100"] == (1001, "A", Decimal("1000.5"))
    assert res["c300"] == (1002, "A", Decimal("1001.5"))
    assert res["c99"] == (1000, "A", Decimal("1000.4999995"))  # exact: 99.9999 x 0.005
    assert res["u"] == (998, "B", Decimal("997.5"))
    # negative half-way values round away from zero; 0.1 + 0.2 style sums stay exact
    rows = [finding("neg", "LOAN_ARREARS", "2026-01-01", quantity=10, source_id="provincial_credit"),  # -2.5
            finding("neg1", "LOAN_ARREARS", "2026-01-01", quantity=6, source_id="provincial_credit"),  # -1.5
            finding("pos", "CHARITY_DONATION", "2026-01-01", quantity=500, source_id="charity_federation"),  # 2.5
            finding("zero", "CHARITY_DONATION", "2026-01-01", quantity=20, source_id="charity_federation"),
            finding("zero", "CHARITY_DONATION", "2026-01-02", quantity=40, source_id="charity_federation"),
            finding("zero", "LOAN_ARREARS", "2026-01-03", quantity="1.2", source_id="provincial_credit")]  # 0.1+0.2-0.3
    res = run(schemes, rows, "2026-03", scheme="r")
    assert res["neg"] == (-3, "Z", Decimal("-2.5"))
    assert res["neg1"] == (-2, "Z", Decimal("-1.5"))
    assert res["pos"] == (3, "P", Decimal("2.5"))
    assert res["zero"] == (0, "Z", Decimal("0"))


def test_grade_boundaries(schemes):
    # 1049.5 rounds to 1050 -> AA; 949.5 -> 950 -> B
    rows = ([finding("aa", "CHARITY_DONATION", "2026-01-01", quantity=9900, source_id="charity_federation")]  # +49.5
            + [finding("b", "UNCIVIL_CONDUCT", f"2026-01-{i:02d}", source_id="urban_management") for i in range(1, 22)]
            + [finding("b", "CHARITY_DONATION", "2026-01-01", quantity=400, source_id="charity_federation")])
    res = run(schemes, rows, "2026-03")
    assert res["aa"] == (1050, "AA", Decimal("1049.5"))
    assert res["b"] == (950, "B", Decimal("949.5"))  # 1000 - 21 x 2.5 + 400 x 0.005


def test_scheme_numbers_parsed_exactly(schemes, tmp_path):
    s = load_scheme(schemes["t"])
    charity = next(r for r in s.rules if r.id == "charity")
    assert charity.per_unit == Decimal("0.005") and isinstance(charity.per_unit, Decimal)
    assert next(r for r in s.rules if r.id == "uncivil").points == Decimal("-2.5")
    assert s.effective_from == "2023-01"
    bad = tmp_path / "bad.yaml"
    bad.write_text(MAIN_YAML.replace("points: 80, valid_months: 36}", "points: 80, points_per_unit: 1, valid_months: 36}"))
    with pytest.raises(SchemeError, match="bravery"):
        load_scheme(bad)
    with pytest.raises(ValueError, match="effective"):
        score_reference({"findings": findings_table([]), "population": population_table("2022-12", {})},
                        schemes["t"], "2022-12")


# --------------------------------------------------------------------------------------------
# Parquet inputs in Hive-style partition folders
# --------------------------------------------------------------------------------------------


def test_parquet_inputs_with_hive_partitions(schemes, tmp_path):
    rows = [finding("s1", "ADMIN_PENALTY", "2026-03-10", level="serious", source_id="traffic_police", record_id="a"),
            finding("s1", "COMMENDATION", "2026-03-01", level="provincial", source_id="civilization_office",
                    record_id="a", case_ref="d"),
            finding("s2", "ADMIN_PENALTY", "2026-03-10", level="general", source_id="traffic_police", record_id="b")]
    ft = findings_table(rows)
    paths = []
    for src in ("traffic_police", "civilization_office"):
        part = ft.filter(pc.equal(ft["source_id"], src)).drop_columns(["source_id"])
        p = tmp_path / "findings" / f"source_id={src}" / "part-0.parquet"
        p.parent.mkdir(parents=True)
        pq.write_table(part, p)
        paths.append(str(p))
    pop = population_table("2026-03", {"s1": "1980-01-01", "s2": "1980-01-01"}).drop_columns(["snapshot_month"])
    pp = tmp_path / "population" / "snapshot_month=2026-03" / "part-0.parquet"
    pp.parent.mkdir(parents=True)
    pq.write_table(pop, pp)
    ap = tmp_path / "appeals.parquet"
    pq.write_table(pa.Table.from_pylist([appeal("traffic_police", "b", "2026-03-01", "2026-03-05", "upheld")],
                                        schema=A_SCHEMA), ap)
    out = score_reference({"findings": paths, "population": [str(pp)], "appeals": [str(ap)], "optouts": []},
                          schemes["t"], "2026-03", threads=1)
    assert [(r["subject_key"], r["score"], r["grade"]) for r in out.to_pylist()] == [("s1", 1000, "A"),
                                                                                      ("s2", 1000, "A")]


# --------------------------------------------------------------------------------------------
# Randomized check against a plain-Python evaluation of SPEC §4
# --------------------------------------------------------------------------------------------


def _add_months(day: dt.date, n: int) -> dt.date:
    y, m = divmod(day.month - 1 + n, 12)
    y, m = day.year + y, m + 1
    return dt.date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def _python_scores(scheme, tables, month, n_mask=10):
    import yaml

    doc = yaml.safe_load(scheme.read_text())
    num = lambda v: None if v is None else Decimal(repr(v)) if isinstance(v, float) else Decimal(v)  # noqa: E731
    y, m = map(int, month.split("-"))
    A = dt.date(y, m, calendar.monthrange(y, m)[1])
    known = lambda r: r["known_from"] <= month and (r["known_until"] is None or r["known_until"] > month)  # noqa: E731
    adults = {p["subject_key"] for p in tables["population"].to_pylist()
              if p["snapshot_month"] == month and p["status"] == "active" and _add_months(p["birth_date"], 216) <= A}
    opted = {o["subject_key"] for o in tables["optouts"].to_pylist() if o["requested_on"] <= A and o["known_from"] <= month}
    adults -= opted
    out_keys = set()
    for a in tables["appeals"].to_pylist():
        if not known(a):
            continue
        if a["outcome"] == "upheld" and a["resolved_on"] is not None and a["resolved_on"] <= A:
            out_keys.add((a["source_id"], a["record_id"]))
        elif (a["resolved_on"] is None or a["resolved_on"] > A) and working_days_after(a["filed_on"], A) > n_mask:
            out_keys.add((a["source_id"], a["record_id"]))
    counting = []
    for f in tables["findings"].to_pylist():
        if not known(f) or f["status"] == "revoked" or f["subject_key"] not in adults or f["subject_key"] in opted:
            continue
        if (f["source_id"], f["record_id"]) in out_keys:
            continue
        rule = next((r for r in doc["rules"] if r["item"] == f["item_code"]
                     and (not r.get("when") or r["when"]["level"] == f["level"])), None)
        if rule is None:
            continue
        last = _add_months(f["occurred_on"], rule["valid_months"]) - dt.timedelta(days=1)
        if f["valid_until"] is not None:
            last = min(last, f["valid_until"])
        if not (f["occurred_on"] <= A <= last):
            continue
        q = f["quantity"]
        pts = (num(rule["points"]) if "points" in rule
               else (q or 0) * num(rule["points_per_unit"]) if "points_per_unit" in rule else None)
        counting.append((f, rule, pts))
    groups: dict = {}
    kept = []
    for f, rule, pts in counting:
        if rule.get("dedupe_group") is None:
            kept.append((f, rule, pts))
            continue
        key = (f["subject_key"], rule["dedupe_group"], f["case_ref"], f["occurred_on"] if f["case_ref"] is None else None)
        groups.setdefault(key, []).append((f, rule, pts))
    for members in groups.values():
        members.sort(key=lambda x: (-abs((x[0]["quantity"] or 0) if "tiers" in x[1] else x[2]), x[0]["occurred_on"],
                                    x[0]["source_id"], x[0]["record_id"]))
        kept.append(members[0])
    per_rule: dict = {}
    for f, rule, pts in kept:
        acc = per_rule.setdefault((f["subject_key"], rule["id"]), [rule, Decimal(0), Decimal(0)])
        acc[1] += pts or 0
        acc[2] += f["quantity"] or 0
    dims: dict = {}
    for (subj, _), (rule, pts, qty) in per_rule.items():
        if "tiers" in rule:
            hit = [t for t in rule["tiers"] if qty >= num(t["at_least"])]
            pts = num(max(hit, key=lambda t: num(t["at_least"]))["points"]) if hit else Decimal(0)
        if rule.get("cap") is not None:
            pts = max(-num(rule["cap"]), min(num(rule["cap"]), pts))
        dims.setdefault(subj, {}).setdefault(rule["dimension"], Decimal(0))
        dims[subj][rule["dimension"]] += pts
    result = {}
    for subj in adults:
        raw = num(doc["base_score"])
        for dim, tot in dims.get(subj, {}).items():
            cap = doc["dimensions"][dim].get("cap")
            raw += tot if cap is None else max(-num(cap), min(num(cap), tot))
        x = raw
        if doc.get("min_score") is not None:
            x = max(x, num(doc["min_score"]))
        if doc.get("max_score") is not None:
            x = min(x, num(doc["max_score"]))
        score = int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))  # ROUND_HALF_UP: away from zero
        grade = next((g["grade"] for g in doc["grades"] if g.get("min") is not None and num(g["min"]) <= score),
                     doc["grades"][-1]["grade"])
        result[subj] = (score, grade, raw)
    return result


def test_randomized_against_python_evaluation(schemes):
    rng = random.Random(20260930)
    subjects = [f"k{i:03d}" for i in range(160)]
    catalogue = [("COURT_DISHONEST_DEBTOR", [None]), ("ADMIN_PENALTY", ["minor", "general", "serious", None]),
                 ("COMMENDATION", ["national", "provincial", "municipal", "county"]), ("BRAVERY", [None]),
                 ("BLOOD_DONATION", [None]), ("LOAN_ARREARS", [None]), ("VOLUNTEER_SERVICE", [None]),
                 ("CHARITY_DONATION", [None]), ("UNCIVIL_CONDUCT", [None]), ("COMMITMENT_SIGNED", [None]),
                 ("PROVINCIAL_CREDIT_SCORE", [None])]
    sources = ["court", "public_security", "traffic_police", "civilization_office", "volunteer_federation"]
    months = ["2026-07", "2026-08", "2026-09", "2026-10"]
    rows, appeals, optouts = [], [], []
    for i in range(2500):
        item, levels = rng.choice(catalogue)
        subj = rng.choice(subjects)
        occurred = dt.date(2026, 10, 31) - dt.timedelta(days=rng.randint(0, 1500))
        qty = None
        if item in ("LOAN_ARREARS", "VOLUNTEER_SERVICE", "CHARITY_DONATION"):
            qty = Decimal(rng.randint(0, 4000)) / Decimal(rng.choice([1, 4, 10, 100]))
        src, rid = rng.choice(sources), f"r{i}"
        base = dict(subject=subj, item=item, occurred_on=occurred.isoformat(), level=rng.choice(levels),
                    quantity=qty, source_id=src, record_id=rid,
                    valid_until=(occurred + dt.timedelta(days=rng.randint(0, 900))).isoformat()
                    if rng.random() < 0.2 else None,
                    status="revoked" if rng.random() < 0.05 else "active",
                    case_ref=f"case{rng.randint(0, 40)}" if rng.random() < 0.4 else None)
        if rng.random() < 0.3:  # same-date duplicates from another department
            base["occurred_on"] = dt.date(2026, 8, rng.randint(1, 3)).isoformat()
        kf = rng.choice(["2026-06", "2026-07", "2026-08", "2026-09"])
        if rng.random() < 0.15:  # corrected later
            k2 = rng.choice([m for m in months if m > kf])
            rows.append(finding(**{**base, "known_from": kf, "known_until": k2}))
            base = {**base, "level": rng.choice(levels), "status": rng.choice(["active", "revoked"])}
            kf = k2
        rows.append(finding(**{**base, "known_from": kf}))
        if rng.random() < 0.08:
            filed = dt.date(2026, 8, 15) + dt.timedelta(days=rng.randint(0, 70))
            resolved = filed + dt.timedelta(days=rng.randint(1, 60)) if rng.random() < 0.6 else None
            appeals.append(appeal(src, rid, filed.isoformat(), resolved and resolved.isoformat(),
                                  rng.choice(["upheld", "rejected"]) if resolved else None,
                                  known_from=rng.choice(months)))
    people = {s: (dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 17500))).isoformat() for s in subjects}
    for s in rng.sample(subjects, 6):
        optouts.append({"subject_key": s, "requested_on": dt.date(2026, 8, rng.randint(1, 31)), "known_from": "2026-08"})
    for month in months:
        pop_rows = [{"subject_key": s, "birth_date": d(b), "sex": "M", "district": "371002", "residency": "hukou",
                     "status": "deceased" if s == "k007" else "active", "snapshot_month": month}
                    for s, b in people.items()]
        tables = {"findings": findings_table(rows), "population": pa.Table.from_pylist(pop_rows, schema=P_SCHEMA),
                  "appeals": pa.Table.from_pylist(appeals, schema=A_SCHEMA),
                  "optouts": pa.Table.from_pylist(optouts, schema=O_SCHEMA)}
        got = {r["subject_key"]: (r["score"], r["grade"], r["raw_score"])
               for r in score_reference(tables, schemes["t"], month).to_pylist()}
        want = _python_scores(schemes["t"], tables, month)
        assert got == want, month
        assert len({v[0] for v in got.values()}) > 20  # the data actually exercises the rules


def test_shadowed_rule_refused(tmp_path):
    text = MAIN_YAML.replace(
        "  - {id: fine-minor,",
        "  - {id: fine-any, item: ADMIN_PENALTY, dimension: law, points: -1, valid_months: 12}\n  - {id: fine-minor,")
    p = tmp_path / "t.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SchemeError, match="fine-minor.*fine-any"):
        load_scheme(p)


def test_float_quantity_refused(schemes):
    ft = findings_table([finding("s1", "CHARITY_DONATION", "2026-01-01", quantity=100)])
    ft = ft.set_column(ft.schema.get_field_index("quantity"), "quantity", pa.array([100.0], pa.float64()))
    with pytest.raises(ValueError, match="quantity"):
        score_reference({"findings": ft, "population": population_table("2026-03", {"s1": "1980-01-01"})},
                        schemes["t"], "2026-03")


TIE_YAML = """\
scheme: v
title: dedupe values and ties
version: "1"
effective_from: 2026-01
base_score: 100
dimensions:
  award:  {title: award, cap: 10}
  public: {title: public}
grades:
  - {grade: A, label: a, min: 150}
  - {grade: B, label: b}
rules:
  - {id: award, item: COMMENDATION, dimension: award, points: 60, valid_months: 24, dedupe_group: deed}
  - {id: bravery, item: BRAVERY, dimension: public, points: -60, valid_months: 24, dedupe_group: deed}
  - {id: volunteer, item: VOLUNTEER_SERVICE, dimension: public, valid_months: 24, dedupe_group: hours,
     tiers: [{at_least: 10, points: 2}, {at_least: 50, points: 10}, {at_least: 70, points: 30}]}
"""


def test_dedupe_value_of_tiers_rule_and_tie_breaks(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(TIE_YAML, encoding="utf-8")
    rows = [
        # tiers rule: the value is the quantity; the same deed reported twice (30 h, 20 h) keeps 30 h;
        # with v2 (20 h): 50 h -> +10 (keeping 20 h would give 40 h -> +2, no dedupe 70 h -> +30)
        finding("vol", "VOLUNTEER_SERVICE", "2026-02-01", quantity=30, source_id="volunteer_federation", case_ref="v1"),
        finding("vol", "VOLUNTEER_SERVICE", "2026-02-01", quantity=20, source_id="charity_federation", case_ref="v1"),
        finding("vol", "VOLUNTEER_SERVICE", "2026-02-05", quantity=20, source_id="charity_federation", case_ref="v2"),
        # |+60| = |-60|: earliest occurred_on wins (award: capped to +10; bravery: -60)
        finding("t_occ", "COMMENDATION", "2026-02-01", source_id="z_src", record_id="z", case_ref="c"),
        finding("t_occ", "BRAVERY", "2026-02-02", source_id="a_src", record_id="a", case_ref="c"),
        # same occurred_on: smallest source_id wins
        finding("t_src", "COMMENDATION", "2026-02-01", source_id="b_src", record_id="a", case_ref="c"),
        finding("t_src", "BRAVERY", "2026-02-01", source_id="a_src", record_id="z", case_ref="c"),
        # same occurred_on and source_id: smallest record_id wins
        finding("t_rec", "COMMENDATION", "2026-02-01", source_id="s", record_id="r1", case_ref="c"),
        finding("t_rec", "BRAVERY", "2026-02-01", source_id="s", record_id="r2", case_ref="c"),
    ]
    tables = {"findings": findings_table(rows),
              "population": population_table("2026-03", {k: "1980-01-01" for k in ("vol", "t_occ", "t_src", "t_rec")})}
    res = {r["subject_key"]: r["score"] for r in score_reference(tables, path, "2026-03").to_pylist()}
    assert res == {"vol": 110, "t_occ": 110, "t_src": 40, "t_rec": 110}
