"""Rule format v2 (SPEC §4.1, issue "Rule format v2"): the loader's reading of subject_rules,
unless_any, requires, repair and growth, and its refusals (file, rule and field named)."""

from __future__ import annotations

import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from citycredit.rules import (Condition, Growth, Repair, Requirement, RuleFileError, Unless,
                              load_catalogue, load_scheme, load_schemes)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data"))
from v2_cases import ISSUE_BLOCK  # noqa: E402

SHIPPED = ROOT / "rules"
SPEC_EXAMPLE = (ROOT / "tests" / "data" / "spec_example.yaml").read_text("utf-8")

# The issue's own example, verbatim, on top of a v1 head (dimensions for its ids).
V2 = """\
scheme: example
title: 示例分
version: "2026.2"
effective_from: 2026-01
base_score: 1000
dimensions:
  basic:  {title: 基础信息}
  law:    {title: 守法履约}
  repair: {title: 信用修复}
  commit: {title: 信用承诺}
  growth: {title: 成长激励, cap: 40}
grades:
  - {grade: A, label: 良好, min: 1000}
  - {grade: B, label: 一般}
""" + ISSUE_BLOCK


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(SHIPPED / "catalogue.yaml", folder / "catalogue.yaml")
    return folder


def load_text(folder: Path, text: str, name: str = "example"):
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_scheme(folder / f"{name}.yaml", load_catalogue(folder))


def edit(old: str, new: str, text: str = V2) -> str:
    assert old in text, f"test bug: {old!r} not in the file"
    return text.replace(old, new, 1)


def refused(folder: Path, text: str, *fragments: str) -> str:
    with pytest.raises(RuleFileError) as caught:
        load_text(folder, text)
    message = str(caught.value)
    assert "example.yaml" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def test_the_issue_example_loads(rules_dir: Path) -> None:
    s = load_text(rules_dir, V2)
    assert [r.id for r in s.subject_rules] == ["hukou", "settled", "clean-3y"]
    hukou, settled, clean = s.subject_rules
    assert hukou.when == (Condition("residency", equals="hukou"),) and hukou.points == 20
    assert settled.when == (Condition("months_resident", at_least=Decimal(60)),)
    assert clean.when == () and clean.unless_any == Unless(("debtor", "fine-serious"), 36)
    rules = s.rules_by_id
    assert rules["repaired"].requires == Requirement(("debtor",), "case_ref")
    assert rules["breach"].repair == Repair((("VOLUNTEER_SERVICE", Decimal(10)),
                                             ("BLOOD_DONATION", Decimal(400)),
                                             ("CHARITY_DONATION", Decimal(500))))
    growth = rules["growth"]
    assert growth.kind == "growth" and growth.valid_months is None and growth.points is None
    assert growth.growth == Growth(6, Decimal(5), Decimal(50), ("breach",))
    assert growth.growth.total(3) == 15 and growth.growth.total(11) == 50
    assert s.subject_attributes == {"residency", "months_resident"} and s.uses_v2
    # a growth rule observes its item: findings of it take the growth rule only if no other does
    assert s.rule_for("COMMITMENT_SIGNED", None).id == "growth"
    both = load_text(rules_dir, edit("rules:\n", "rules:\n  - {id: signed, item: COMMITMENT_SIGNED,"
                                     " dimension: commit, points: 20, valid_months: 24}\n"))
    assert both.rule_for("COMMITMENT_SIGNED", None).id == "signed"


def test_a_v1_file_is_not_v2(rules_dir: Path) -> None:
    s = load_text(rules_dir, SPEC_EXAMPLE)
    assert s.subject_rules == () and not s.uses_v2
    assert all(r.requires is None and r.repair is None and r.growth is None for r in s.rules)


def test_subject_conditions(rules_dir: Path) -> None:
    s = load_text(rules_dir, edit(
        "  - {id: hukou, when: {residency: hukou}, dimension: basic, points: 20}\n",
        "  - {id: hukou, when: {residency: hukou}, dimension: basic, points: 20}\n"
        "  - {id: young, when: {age: {at_least: 18, below: 30}, district: 371002}, dimension: basic, points: 5}\n"
        "  - {id: forty, when: {age: 40}, dimension: basic, points: 1}\n"
        "  - {id: new, when: {months_resident: {below: 12}, district: '371003'}, dimension: basic, points: -2}\n"))
    young, forty, new = (s.subject_rules_by_id[i] for i in ("young", "forty", "new"))
    assert young.matches({"age": 18, "district": "371002"})
    assert not young.matches({"age": 30, "district": "371002"})
    assert not young.matches({"age": 20, "district": "371003"})
    assert forty.matches({"age": 40}) and not forty.matches({"age": 41})
    assert new.when[1] == Condition("district", equals="371003")
    assert new.matches({"months_resident": 11, "district": "371003"})
    assert not new.matches({"months_resident": None, "district": "371003"})


def test_sex_is_refused_with_the_reason(rules_dir: Path) -> None:
    message = refused(rules_dir, edit("when: {residency: hukou}", "when: {sex: F}"),
                      "subject rule 'hukou'", "field 'when.sex'",
                      "a score must not depend on sex")
    assert "line 16" in message
    refused(rules_dir, edit("when: {residency: hukou}", "when: {ethnicity: han}"),
            "field 'when.ethnicity'", "must not depend on ethnicity")


@pytest.mark.parametrize("old,new,fragments", [
    ("when: {residency: hukou}", "when: {income: 5000}",
     ["subject rule 'hukou'", "field 'when.income'", "unknown person attribute"]),
    ("when: {residency: hukou}", "when: {residency: citizen}",
     ["field 'when.residency'", "unknown residency 'citizen'"]),
    ("when: {residency: hukou}", "when: {residency: {at_least: 1}}",
     ["field 'when.residency'", "equality only"]),
    ("when: {residency: hukou}", "when: {age: {above: 1}}",
     ["field 'when.age.above'", "unknown key"]),
    ("when: {residency: hukou}", "when: {age: {at_least: 30, below: 20}}",
     ["field 'when.age'", "can never hold"]),
    ("when: {residency: hukou}", "when: {age: old}", ["field 'when.age'", "whole number"]),
    ("when: {residency: hukou}", "when: {district: Huancui}",
     ["field 'when.district'", "district code"]),
    ("when: {residency: hukou}, dimension: basic", "when: {residency: hukou}, dimension: basics",
     ["subject rule 'hukou'", "field 'dimension'", "unknown dimension 'basics'"]),
    ("dimension: basic, points: 20}", "dimension: basic, points: many}",
     ["subject rule 'hukou'", "field 'points'", "must be a number"]),
    ("{id: hukou, when", "{id: hukou, item: BRAVERY, when",
     ["subject rule 'hukou'", "field 'item'", "no item"]),
    ("{id: hukou, when: {residency: hukou}, dimension: basic, points: 20}",
     "{id: hukou, when: {residency: hukou}, dimension: basic, points: 20, valid_months: 3}",
     ["subject rule 'hukou'", "field 'valid_months'", "unknown key"]),
    ("{id: settled,", "{id: debtor,", ["subject rule 'debtor'", "field 'id'", "duplicate rule id"]),
    ("unless_any: {rules: [debtor, fine-serious]", "unless_any: {rules: [debtor, fine-minor]",
     ["subject rule 'clean-3y'", "field 'unless_any.rules'", "unknown rule 'fine-minor'"]),
    ("unless_any: {rules: [debtor, fine-serious]", "unless_any: {rules: [debtor, hukou]",
     ["field 'unless_any.rules'", "'hukou' is a subject rule"]),
    ("within_months: 36}", "within_months: 0}",
     ["field 'unless_any.within_months'", "positive"]),
    ("within_months: 36}", "months: 36}", ["field 'unless_any.months'", "unknown key"]),
    ("requires: {rules: [debtor], same: case_ref}", "requires: {rules: [debtors], same: case_ref}",
     ["rule 'repaired'", "field 'requires.rules'", "unknown rule 'debtors'"]),
    ("requires: {rules: [debtor], same: case_ref}", "requires: {rules: [debtor], same: occurred_on}",
     ["rule 'repaired'", "field 'requires.same'", "case_ref"]),
    ("requires: {rules: [debtor], same: case_ref}", "requires: {rules: [repaired]}",
     ["rule 'repaired'", "field 'requires.rules'", "cycle", "repaired → repaired"]),
    ("reset_by: [breach]", "reset_by: [breaches]",
     ["rule 'growth'", "field 'growth.reset_by'", "unknown rule 'breaches'"]),
    ("VOLUNTEER_SERVICE: 10,", "VOLUNTEER_HOURS: 10,",
     ["rule 'breach'", "field 'repair.energy'", "unknown item 'VOLUNTEER_HOURS'"]),
    ("VOLUNTEER_SERVICE: 10,", "VOLUNTEER_SERVICE: 0,",
     ["rule 'breach'", "field 'repair.energy.VOLUNTEER_SERVICE'", "positive"]),
    ("repair: {energy:", "repair: {power:", ["rule 'breach'", "field 'repair.power'", "unknown key"]),
    ("dimension: growth,\n", "dimension: growth, points: 5,\n",
     ["rule 'growth'", "field 'points'", "growth together with points"]),
    ("dimension: growth,\n", "dimension: growth, tiers: [{at_least: 1, points: 1}],\n",
     ["rule 'growth'", "field 'tiers'", "growth together with tiers"]),
    ("growth: {every_months: 6,", "growth: {every_months: 0,",
     ["rule 'growth'", "field 'growth.every_months'", "positive"]),
    ("growth: {every_months: 6,", "growth: {",
     ["rule 'growth'", "field 'growth.every_months'", "missing"]),
    ("cap: 50, reset_by", "cap: -50, reset_by", ["rule 'growth'", "field 'growth.cap'", "positive"]),
    ("dimension: growth,\n", "dimension: growth, dedupe_group: x,\n",
     ["rule 'growth'", "field 'dedupe_group'", "growth rule cannot have"]),
    ("{id: debtor, item: COURT_DISHONEST_DEBTOR,", "{id: debtor, item: COURT_DISHONEST_DEBTOR, unless_any: {rules: [breach], within_months: 1},",
     ["rule 'debtor'", "field 'unless_any'", "only a subject rule"]),
    ("dimension: commit, points: -20, valid_months: 6,", "dimension: commit, valid_months: 6,",
     ["rule 'breach'", "missing"]),
    ("dimension: repair, points: 10, valid_months: 24}", "dimension: repair, points: 10}",
     ["rule 'repaired'", "field 'valid_months'", "missing"]),
])
def test_v2_refusals_name_file_rule_and_field(rules_dir: Path, old, new, fragments) -> None:
    refused(rules_dir, edit(old, new), *fragments)


def test_a_cycle_through_two_rules_is_refused(rules_dir: Path) -> None:
    text = edit("  - {id: debtor, item: COURT_DISHONEST_DEBTOR, dimension: law, points: -150, "
                "valid_months: 60}",
                "  - {id: debtor, item: COURT_DISHONEST_DEBTOR, dimension: law, points: -150, "
                "valid_months: 60, requires: {rules: [repaired]}}")
    refused(rules_dir, text, "rule 'debtor'", "field 'requires.rules'",
            "a cycle of requires: debtor → repaired → debtor")


def test_repair_on_a_tiers_rule_is_refused(rules_dir: Path) -> None:
    text = V2 + ("  - {id: hours, item: VOLUNTEER_SERVICE, dimension: basic, valid_months: 12,\n"
                 "     tiers: [{at_least: 10, points: 2}], repair: {energy: {BLOOD_DONATION: 1}}}\n")
    refused(rules_dir, text, "rule 'hours'", "field 'repair'", "tiers")


def test_growth_rules_may_carry_valid_months_and_share_an_item(rules_dir: Path) -> None:
    s = load_text(rules_dir, edit("dimension: growth,\n", "dimension: growth, valid_months: 12,\n")
                  + "  - {id: signed, item: COMMITMENT_SIGNED, dimension: commit, points: 20,"
                    " valid_months: 24}\n")
    assert s.rules_by_id["growth"].valid_months == 12
    assert s.rule_for("COMMITMENT_SIGNED", None).id == "signed"   # growth rules take none


def test_subject_rule_points_are_exact_decimals(rules_dir: Path) -> None:
    s = load_text(rules_dir, edit("dimension: basic, points: 20}", "dimension: basic, points: 0.1}"))
    assert s.subject_rules[0].points == Decimal("0.1")


def test_shipped_v2_schemes_load_and_use_the_additions() -> None:
    schemes = load_schemes(SHIPPED)
    bailu, huzhou = schemes["bailu"], schemes["huzhou"]
    assert {r.dimension for r in bailu.subject_rules} >= {"basic"}
    assert any(r.requires for r in bailu.rules if r.dimension == "repair")
    assert {r.item for r in bailu.rules if r.dimension == "credit_use"} >= {
        "CREDIT_SERVICE_SETTLED", "CREDIT_SERVICE_OVERDUE"}
    breach = huzhou.rule_for("COMMITMENT_BREACH", None)
    assert breach.repair is not None and set(breach.repair.items) == {
        "VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION"}
    growth = [r for r in huzhou.rules if r.growth]
    assert growth and growth[0].growth.reset_by == (breach.id,)
    for name in ("haibei", "dazixiang"):
        assert not schemes[name].uses_v2
