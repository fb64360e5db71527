"""Rule format v2 in the independent DuckDB reference scorer (reference/duckdb_scorer.py): the
hand-computed cases the Spark tests use (tests/data/v2_cases.py), on silver-shaped tables with
population snapshots, plus the reference's own repair queue checked against a day-by-day
simulation. No Spark."""
from __future__ import annotations

import datetime as dt
import random
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest

from reference.duckdb_scorer import _repairs, load_scheme, score_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from v2_cases import EVERYONE, EXPECTED, FINDINGS_ROWS, MONTH_ENDS, PEOPLE, SCHEME, person  # noqa: E402

D = dt.date
F_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("record_id", pa.string()), ("subject_key", pa.string()),
    ("item_code", pa.string()), ("level", pa.string()), ("quantity", pa.decimal128(18, 4)),
    ("occurred_on", pa.date32()), ("valid_until", pa.date32()), ("status", pa.string()),
    ("case_ref", pa.string()), ("known_from", pa.string()), ("known_until", pa.string())])
P_SCHEMA = pa.schema([
    ("subject_key", pa.string()), ("birth_date", pa.date32()), ("sex", pa.string()),
    ("district", pa.string()), ("residency", pa.string()), ("status", pa.string()),
    ("snapshot_month", pa.string())])
COLUMNS = ["source_id", "record_id", "subject_key", "item_code", "level", "quantity",
           "occurred_on", "valid_until", "status", "case_ref"]


def months_back(month: str, n: int) -> list[str]:
    y, m = int(month[:4]), int(month[5:])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


def tables(month, findings=FINDINGS_ROWS, people=PEOPLE, everyone=EVERYONE):
    """Silver-shaped inputs: every finding known since 2020-01; each person active in the
    snapshots of the `months_resident` months up to `month`."""
    known = {p[0]: p for p in people}
    population = []
    for key in everyone:
        _, birth, district, residency, months = known.get(key, person(key))
        for snapshot in months_back(month, months):
            population.append(dict(subject_key=key, birth_date=birth, sex="F", district=district,
                                   residency=residency, status="active", snapshot_month=snapshot))
    rows = [dict(zip(COLUMNS, r), known_from="2020-01", known_until=None) for r in findings]
    return {"findings": pa.Table.from_pylist(rows, schema=F_SCHEMA),
            "population": pa.Table.from_pylist(population, schema=P_SCHEMA)}


@pytest.fixture(scope="module")
def scheme_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "v2test.yaml"
    path.write_text(SCHEME, encoding="utf-8")
    return path


def scores(scheme_file, month, **kw) -> dict[str, int]:
    out = score_reference(tables(month, **kw), scheme_file, month)
    return dict(zip(out.column("subject_key").to_pylist(), out.column("score").to_pylist()))


@pytest.mark.parametrize("month", sorted(EXPECTED))
def test_hand_computed_cases(scheme_file, month):
    got = scores(scheme_file, month)
    assert {k: got[k] for k in EXPECTED[month]} == EXPECTED[month]


@pytest.mark.parametrize("month,expected", sorted(MONTH_ENDS.items()))
def test_growth_across_month_ends(scheme_file, month, expected):
    rows = [r for r in FINDINGS_ROWS if r[2] in expected]
    assert scores(scheme_file, month, findings=rows, everyone=sorted(expected)) == expected


def test_months_resident_counts_active_snapshots_up_to_the_month(scheme_file):
    # p_all is active in 60 snapshots up to 2026-03 (+10 settled); one of them moved_out → 59
    t = tables("2026-03", findings=[], people=[person("p", residency="hukou", months=60)],
               everyone=["p"])
    base = score_reference(t, scheme_file, "2026-03").column("score").to_pylist()
    rows = t["population"].to_pylist()
    rows[-1]["status"] = "moved_out"               # the earliest snapshot
    rows.append(dict(rows[0], snapshot_month="2026-04"))   # after M: does not count
    t["population"] = pa.Table.from_pylist(rows, schema=P_SCHEMA)
    fewer = score_reference(t, scheme_file, "2026-03").column("score").to_pylist()
    assert (base, fewer) == ([1055], [1050])       # 20 + 10 capped at 25, or 20; + clean 30


def test_unless_any_in_a_leap_february(tmp_path):
    """A = 29 Feb 2024, N = 12: add_months(A, −12) = 28 Feb 2023 (clamped)."""
    path = tmp_path / "leap.yaml"
    path.write_text(SCHEME.replace("within_months: 36", "within_months: 12"), encoding="utf-8")
    findings = [("s", "a", "on", "COURT_DISHONEST_DEBTOR", None, None, D(2023, 2, 28), None,
                 "active", None),
                ("s", "b", "after", "COURT_DISHONEST_DEBTOR", None, None, D(2023, 3, 1), None,
                 "active", None)]
    got = scores(path, "2024-02", findings=findings, everyone=["on", "after"])
    assert got == {"on": 880, "after": 850}


# ------------------------------------------------------------------------ the repair queue
def fifo(breaches, events, units):
    """A day-by-day simulation: on each day breaches arrive first, then that day's energy goes to
    the oldest waiting breach; energy with nobody waiting is lost."""
    waiting, repaired, energy = [], [], Fraction(0)
    days = sorted({b[0] for b in breaches} | {e[0] for e in events})
    for day in days:
        waiting += sorted(b for b in breaches if b[0] == day)
        for _, item, q in (e for e in events if e[0] == day):
            if not waiting:
                continue
            energy += Fraction(1 if q is None else q) / units[item]
            while waiting and energy >= 1:
                energy -= 1
                repaired.append(waiting.pop(0)[1:])
            if not waiting:
                energy = Fraction(0)
    return repaired


def test_repair_queue_agrees_with_a_day_by_day_simulation():
    rng = random.Random(5)
    units = {"VOLUNTEER_SERVICE": Fraction(10), "BLOOD_DONATION": Fraction(400),
             "BRAVERY": Fraction(1, 2)}
    for _ in range(3000):
        day = lambda: D(2026, 1, 1) + dt.timedelta(days=rng.randrange(40))  # noqa: E731
        breaches = [(day(), rng.choice("ab"), f"r{i}") for i in range(rng.randrange(5))]
        events = [(day(), item, None if item == "BRAVERY" else Decimal(rng.choice([1, 3, 5, 200, 400])))
                  for item in (rng.choice(list(units)) for _ in range(rng.randrange(8)))]
        assert _repairs(breaches, events, units) == fifo(breaches, events, units)


def test_the_reference_reads_every_v2_field(scheme_file):
    s = load_scheme(scheme_file)
    assert [r.id for r in s.subject_rules] == ["hukou", "settled", "young", "clean-3y"]
    rules = {r.id: r for r in s.rules}
    assert rules["repaired"].requires == ("debtor",)
    assert dict(rules["breach"].energy) == {"VOLUNTEER_SERVICE": 10, "BLOOD_DONATION": 400,
                                            "CHARITY_DONATION": 500}
    assert rules["growth"].kind == "growth" and rules["growth"].growth == (6, 5, 50, ("breach",))


DOC_EXAMPLE = """\
scheme: doc
title: docs/rule-format.md section 11
version: "1"
effective_from: 2026-01
base_score: 1000
dimensions:
  basic:      {title: 基础信息, cap: 100}
  positive:   {title: 守信正向, cap: 200}
  breach:     守信违约
  repair:     信用修复
  commitment: 信用承诺
  credit_use: 用信行为
grades:
  - {grade: A, label: a, min: 1000}
  - {grade: C, label: c}
subject_rules:
  - {id: hukou,       when: {residency: hukou}, dimension: basic, points: 30}
  - {id: resident-5y, when: {months_resident: {at_least: 60}}, dimension: basic, points: 10}
  - {id: young-local, when: {age: {below: 30}, district: 371002}, dimension: basic, points: 5}
  - {id: clean-3y, unless_any: {rules: [debtor, penalty-serious], within_months: 36}, dimension: positive, points: 20}
rules:
  - {id: debtor, item: COURT_DISHONEST_DEBTOR, dimension: breach, points: -150, valid_months: 60, dedupe_group: court}
  - {id: penalty-serious, item: ADMIN_PENALTY, when: {level: serious}, dimension: breach, points: -60, valid_months: 36, dedupe_group: penalty}
  - {id: repaired, item: CREDIT_REPAIR_COMPLETED, dimension: repair, points: 15, valid_months: 24,
     requires: {rules: [debtor, penalty-serious], same: case_ref}}
  - {id: breach, item: COMMITMENT_BREACH, dimension: commitment, points: -20, valid_months: 6,
     repair: {energy: {VOLUNTEER_SERVICE: 10, BLOOD_DONATION: 400, CHARITY_DONATION: 500}}}
  - {id: growth, item: COMMITMENT_SIGNED, dimension: commitment,
     growth: {every_months: 6, points: 5, cap: 50, reset_by: [breach]}}
"""


def test_the_worked_example_of_the_format_reference(tmp_path):
    """docs/rule-format.md section 11: 1000 − 150 + 15 + 40 = 905."""
    path = tmp_path / "doc.yaml"
    path.write_text(DOC_EXAMPLE, encoding="utf-8")
    findings = [("court", "1", "p", "COURT_DISHONEST_DEBTOR", None, None, D(2024, 5, 6), None, "active", "K"),
                ("credit_services", "2", "p", "CREDIT_REPAIR_COMPLETED", None, None, D(2025, 5, 6), None,
                 "active", "K"),
                ("commitments", "3", "p", "COMMITMENT_SIGNED", None, None, D(2025, 3, 31), None, "active", None),
                ("commitments", "4", "p", "COMMITMENT_BREACH", None, None, D(2026, 2, 2), None, "active", None),
                ("blood_center", "5", "p", "BLOOD_DONATION", None, Decimal(400), D(2026, 3, 1), None, "active",
                 None)]
    people = [person("p", residency="hukou", months=60)]
    assert scores(path, "2026-03", findings=findings, people=people, everyone=["p"]) == {"p": 905}
