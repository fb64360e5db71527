"""Rule format v2 hand-computed cases, shared by the Spark tests (tests/integration/
test_scoring_v2.py) and the reference scorer's tests (tests/unit/test_reference_v2.py): one
scheme, one small city of persons each built for one case, and the expected scores.

Unless a case says otherwise a person is a 45-year-old permit holder of district 371003 resident
for 12 months, so no basic-information rule applies, and has no debtor or serious fine in 36
months, so `clean-3y` gives +30. The arithmetic is in tests/integration/test_scoring_v2.py.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

D = dt.date

#: the issue's example block, verbatim (a checker writes files in exactly this syntax)
ISSUE_BLOCK = """\
subject_rules:        # optional; scored once per person, one explanation line each
  - {id: hukou, when: {residency: hukou}, dimension: basic, points: 20}
  - {id: settled, when: {months_resident: {at_least: 60}}, dimension: basic, points: 10}
  - {id: clean-3y, unless_any: {rules: [debtor, fine-serious], within_months: 36}, dimension: law, points: 30}
rules:
  - {id: debtor, item: COURT_DISHONEST_DEBTOR, dimension: law, points: -150, valid_months: 60}
  - {id: fine-serious, item: ADMIN_PENALTY, when: {level: serious}, dimension: law, points: -60, valid_months: 36}
  - {id: repaired, item: CREDIT_REPAIR_COMPLETED, requires: {rules: [debtor], same: case_ref},
     dimension: repair, points: 10, valid_months: 24}
  - {id: breach, item: COMMITMENT_BREACH, dimension: commit, points: -20, valid_months: 6,
     repair: {energy: {VOLUNTEER_SERVICE: 10, BLOOD_DONATION: 400, CHARITY_DONATION: 500}}}
  - {id: growth, item: COMMITMENT_SIGNED, dimension: growth,
     growth: {every_months: 6, points: 5, cap: 50, reset_by: [breach]}}
"""

_SETTLED = "  - {id: settled, when: {months_resident: {at_least: 60}}, dimension: basic, points: 10}\n"
assert _SETTLED in ISSUE_BLOCK
#: the issue's example plus a rule on age and district and one that repair energy leaves alone
SCHEME = """\
scheme: v2test
title: 测试分
version: "t.1"
effective_from: 2020-01
base_score: 1000
dimensions:
  basic:  {title: 基础信息, cap: 25}
  law:    {title: 守法履约}
  repair: {title: 信用修复}
  commit: {title: 信用承诺}
  growth: {title: 成长激励}
  public: {title: 道德公益}
grades:
  - {grade: A, label: 良好, min: 1000}
  - {grade: B, label: 一般}
""" + ISSUE_BLOCK.replace(_SETTLED, _SETTLED + (
    "  - {id: young, when: {age: {below: 30}, district: 371002}, dimension: basic, points: 1}\n")) + (
    "  - {id: volunteer, item: VOLUNTEER_SERVICE, dimension: public, points_per_unit: 0.1, "
    "valid_months: 12}\n")

_serial = iter(range(1, 10 ** 6))


def f(subject, item, occurred, *, level=None, quantity=None, valid_until=None, status="active",
      case_ref=None, source="s", record=None):
    return (source, record or f"r{next(_serial)}", subject, item, level,
            None if quantity is None else Decimal(str(quantity)), occurred, valid_until, status,
            case_ref)


def person(key, birth=D(1980, 5, 5), district="371003", residency="permit", months=12):
    return (key, birth, district, residency, months)


# ------------------------------------------------------------------------------ the city
PEOPLE = [
    person("p_all", residency="hukou", months=60, district="371002"),
    person("p_young", birth=D(1996, 4, 1), district="371002", months=59),
    person("p_thirty", birth=D(1996, 3, 31), district="371002"),
    person("p_elsewhere", birth=D(1996, 4, 1)),
    person("p_leap", birth=D(2008, 2, 29), district="371002"),
]
FINDINGS_ROWS = [
    # unless_any: A = 2026-03-31, N = 36 → blocking findings occurred after 2023-03-31
    f("u_exact", "COURT_DISHONEST_DEBTOR", D(2023, 3, 31)),
    f("u_inside", "COURT_DISHONEST_DEBTOR", D(2023, 4, 1)),
    f("u_serious", "ADMIN_PENALTY", D(2023, 4, 1), level="serious"),
    f("u_revoked", "COURT_DISHONEST_DEBTOR", D(2025, 1, 1), status="revoked"),
    f("u_expired", "COURT_DISHONEST_DEBTOR", D(2023, 6, 1), valid_until=D(2024, 1, 1)),
    f("u_norule", "ADMIN_PENALTY", D(2025, 1, 1), level="general"),
    # requires
    f("r_met", "COURT_DISHONEST_DEBTOR", D(2025, 1, 10), case_ref="C1"),
    f("r_met", "CREDIT_REPAIR_COMPLETED", D(2025, 6, 1), case_ref="C1"),
    f("r_alone", "CREDIT_REPAIR_COMPLETED", D(2025, 6, 1), case_ref="C2"),
    f("r_revoked", "COURT_DISHONEST_DEBTOR", D(2025, 1, 10), case_ref="C3", status="revoked"),
    f("r_revoked", "CREDIT_REPAIR_COMPLETED", D(2025, 6, 1), case_ref="C3"),
    f("r_before", "CREDIT_REPAIR_COMPLETED", D(2025, 1, 1), case_ref="C4"),
    f("r_before", "COURT_DISHONEST_DEBTOR", D(2025, 2, 1), case_ref="C4"),
    f("r_sameday", "COURT_DISHONEST_DEBTOR", D(2025, 2, 1), case_ref="C5"),
    f("r_sameday", "CREDIT_REPAIR_COMPLETED", D(2025, 2, 1), case_ref="C5"),
    f("r_nocase", "COURT_DISHONEST_DEBTOR", D(2025, 2, 1)),
    f("r_nocase", "CREDIT_REPAIR_COMPLETED", D(2025, 3, 1)),
    f("r_othercase", "COURT_DISHONEST_DEBTOR", D(2025, 2, 1), case_ref="C6"),
    f("r_othercase", "CREDIT_REPAIR_COMPLETED", D(2025, 3, 1), case_ref="C7"),
    f("r_expired", "COURT_DISHONEST_DEBTOR", D(2025, 1, 1), valid_until=D(2025, 6, 30),
      case_ref="C8"),
    f("r_expired", "CREDIT_REPAIR_COMPLETED", D(2025, 7, 1), case_ref="C8"),
    # repair energy: breach −20 for 6 months; 10 h of volunteering (also +0.1/h), 400 ml of
    # blood or 500 yuan of donations make one unit
    f("e_before", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_before", "VOLUNTEER_SERVICE", D(2026, 1, 9), quantity=10),
    f("e_on", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_on", "VOLUNTEER_SERVICE", D(2026, 1, 10), quantity=10),
    f("e_later", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_later", "VOLUNTEER_SERVICE", D(2026, 3, 5), quantity=10),
    f("e_short", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_short", "VOLUNTEER_SERVICE", D(2026, 1, 20), quantity="9.9999"),
    f("e_mixed", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_mixed", "VOLUNTEER_SERVICE", D(2026, 1, 20), quantity=4),
    f("e_mixed", "BLOOD_DONATION", D(2026, 2, 10), quantity=240),
    f("e_charity", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_charity", "CHARITY_DONATION", D(2026, 1, 15), quantity=250),
    f("e_charity", "CHARITY_DONATION", D(2026, 1, 16), quantity=250),
    f("e_two", "COMMITMENT_BREACH", D(2026, 1, 5), record="two-1"),
    f("e_two", "COMMITMENT_BREACH", D(2026, 2, 1), record="two-2"),
    f("e_two", "VOLUNTEER_SERVICE", D(2026, 2, 15), quantity=12),
    f("e_both", "COMMITMENT_BREACH", D(2026, 1, 5)),
    f("e_both", "COMMITMENT_BREACH", D(2026, 2, 1)),
    f("e_both", "VOLUNTEER_SERVICE", D(2026, 2, 15), quantity=12),
    f("e_both", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=8),
    f("e_lost", "COMMITMENT_BREACH", D(2026, 1, 5)),
    f("e_lost", "VOLUNTEER_SERVICE", D(2026, 1, 20), quantity=12),
    f("e_lost", "COMMITMENT_BREACH", D(2026, 2, 1), record="lost-2"),
    f("e_lost", "VOLUNTEER_SERVICE", D(2026, 3, 1), quantity=8),
    f("e_tie", "COMMITMENT_BREACH", D(2026, 1, 10), source="commitments", record="t2"),
    f("e_tie", "COMMITMENT_BREACH", D(2026, 1, 10), source="commitments", record="t1"),
    f("e_tie", "VOLUNTEER_SERVICE", D(2026, 1, 20), quantity=10),
    f("e_expired", "COMMITMENT_BREACH", D(2025, 6, 1), record="old"),
    f("e_expired", "COMMITMENT_BREACH", D(2026, 1, 15), record="new"),
    f("e_expired", "VOLUNTEER_SERVICE", D(2026, 2, 1), quantity=10),
    f("e_revoked", "COMMITMENT_BREACH", D(2026, 1, 10)),
    f("e_revoked", "VOLUNTEER_SERVICE", D(2026, 1, 20), quantity=10, status="revoked"),
    # growth: +5 per full 6 months since the earliest signed commitment, at most 50; a breach
    # on or after that day restarts the count
    f("g_one", "COMMITMENT_SIGNED", D(2025, 9, 30)),
    f("g_cap", "COMMITMENT_SIGNED", D(2020, 1, 1)),
    f("g_reset", "COMMITMENT_SIGNED", D(2024, 1, 1)),
    f("g_reset", "COMMITMENT_BREACH", D(2025, 10, 15)),
    f("g_old_breach", "COMMITMENT_BREACH", D(2023, 5, 1)),
    f("g_old_breach", "COMMITMENT_SIGNED", D(2024, 1, 1)),
    f("g_reset_expired", "COMMITMENT_SIGNED", D(2024, 1, 1)),
    f("g_reset_expired", "COMMITMENT_BREACH", D(2025, 6, 1)),
    f("g_revoked_reset", "COMMITMENT_SIGNED", D(2024, 1, 1)),
    f("g_revoked_reset", "COMMITMENT_BREACH", D(2025, 10, 15), status="revoked"),
    f("g_many", "COMMITMENT_SIGNED", D(2025, 3, 1)),
    f("g_many", "COMMITMENT_SIGNED", D(2024, 9, 1)),
    f("g_repaired", "COMMITMENT_SIGNED", D(2024, 1, 1)),
    f("g_repaired", "COMMITMENT_BREACH", D(2025, 10, 15)),
    f("g_repaired", "VOLUNTEER_SERVICE", D(2025, 10, 20), quantity=10),
    # growth across month ends: 31 Jan + 6 months = 31 Jul; 31 Aug + 6 months = 28 Feb
    f("g_jan31", "COMMITMENT_SIGNED", D(2026, 1, 31)),
    f("g_aug31", "COMMITMENT_SIGNED", D(2025, 8, 31)),
]
EVERYONE = sorted({p[0] for p in PEOPLE} | {r[2] for r in FINDINGS_ROWS})


#: hand-computed scores per score month (the arithmetic: tests/integration/test_scoring_v2.py)
EXPECTED = {
    "2026-03": {
        "p_all": 1055, "p_young": 1031, "p_thirty": 1030, "p_elsewhere": 1030, "p_leap": 1031,
        "u_exact": 880, "u_inside": 850, "u_serious": 940, "u_revoked": 1030, "u_expired": 1000,
        "u_norule": 1030,
        "r_met": 860, "r_alone": 1030, "r_revoked": 1030, "r_before": 850, "r_sameday": 860,
        "r_nocase": 850, "r_othercase": 850, "r_expired": 1010,
        "e_before": 1011, "e_on": 1031, "e_later": 1031, "e_short": 1011, "e_mixed": 1030,
        "e_charity": 1030, "e_revoked": 1010, "e_two": 1011, "e_both": 1032, "e_lost": 1012,
        "e_tie": 1011, "e_expired": 1031,
        "g_one": 1035, "g_cap": 1080, "g_reset": 1010, "g_old_breach": 1050,
        "g_reset_expired": 1035, "g_revoked_reset": 1050, "g_many": 1045, "g_repaired": 1031,
    },
    "2026-02": {"e_later": 1010},
}
#: growth across month ends, per score month (only the two persons g_jan31 and g_aug31)
MONTH_ENDS = {
    "2026-01": {"g_aug31": 1030, "g_jan31": 1030},
    "2026-02": {"g_aug31": 1035, "g_jan31": 1030},   # 31 Aug + 6 months = 28 Feb
    "2026-06": {"g_aug31": 1035, "g_jan31": 1030},   # 31 Jan + 5 months: n = 0
    "2026-07": {"g_aug31": 1035, "g_jan31": 1035},   # 31 Jan + 6 months = 31 Jul
    "2026-08": {"g_aug31": 1040, "g_jan31": 1035},   # 31 Aug + 12 months = 31 Aug
}
