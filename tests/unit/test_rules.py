"""Rule files (SPEC §3–§4): the catalogue, the scheme loader and its refusals, shipped schemes."""

from __future__ import annotations

import pickle
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` run from anywhere, not only `python -m pytest` at the root
    sys.path.insert(0, str(ROOT))

from citycredit.rules import (  # noqa: E402
    Catalogue,
    Grade,
    Rule,
    RuleFileError,
    Scheme,
    Tier,
    UnknownSchemeError,
    load_catalogue,
    load_scheme,
    load_schemes,
)

SHIPPED = ROOT / "rules"

# SPEC §4's example rule file, copied verbatim (the scoring tests use it too).
SPEC_EXAMPLE = (ROOT / "tests" / "data" / "spec_example.yaml").read_text("utf-8")


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A fresh rules folder holding only the shipped catalogue."""
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(SHIPPED / "catalogue.yaml", folder / "catalogue.yaml")
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_text(folder: Path, text: str, name: str = "example") -> Scheme:
    path = write(folder, name, text)
    return load_scheme(path, load_catalogue(folder))


def edit(old: str, new: str, text: str = SPEC_EXAMPLE) -> str:
    assert old in text, f"test bug: {old!r} not in the file"
    return text.replace(old, new, 1)


def refused(folder: Path, text: str, *fragments: str, name: str = "example") -> str:
    """The file is refused; the message names the file and every fragment (rule, field, ...)."""
    with pytest.raises(RuleFileError) as caught:
        load_text(folder, text, name)
    message = str(caught.value)
    assert f"{name}.yaml" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


# --------------------------------------------------------------------------------------------
# The SPEC example and exact decimals
# --------------------------------------------------------------------------------------------


def test_spec_example_loads_with_exact_decimals(rules_dir: Path) -> None:
    write(rules_dir, "example", SPEC_EXAMPLE)
    schemes = load_schemes(rules_dir)
    assert list(schemes) == ["example"]
    s = schemes["example"]
    assert (s.scheme, s.title, s.version, s.effective_from) == ("example", "示例分", "2026.1",
                                                                "2026-01")
    assert s.base_score == Decimal("1000") and isinstance(s.base_score, Decimal)
    assert (s.min_score, s.max_score) == (Decimal(0), Decimal(2000))
    assert list(s.dimensions) == ["law", "award", "public"]  # file order
    assert s.dimensions["award"].cap == Decimal(150) and s.dimensions["law"].cap is None
    assert s.dimensions["public"].title == "道德公益"
    assert s.grades == (Grade("AA", "优秀", Decimal(1100)), Grade("A", "良好", Decimal(1000)),
                        Grade("B", "一般", Decimal(900)), Grade("D", "不良", None))
    assert [r.id for r in s.rules] == ["debtor", "fine-general", "award-provincial", "blood",
                                       "arrears", "volunteer"]
    debtor, fine, award, blood, arrears, volunteer = s.rules
    assert debtor == Rule(id="debtor", item="COURT_DISHONEST_DEBTOR", when={}, dimension="law",
                          points=Decimal(-150), points_per_unit=None, tiers=None,
                          valid_months=60, cap=None, dedupe_group="court")
    assert fine.when == {"level": "general"} and fine.points == Decimal(-24)
    assert award.when == {"level": "provincial"} and award.dedupe_group == "deed"
    assert blood.cap == Decimal(40) and blood.dedupe_group is None
    assert arrears.kind == "points_per_unit" and arrears.points_per_unit == Decimal(-10)
    assert arrears.points is None and arrears.cap == Decimal(100)
    assert volunteer.kind == "tiers" and volunteer.valid_months == 12
    assert volunteer.tiers == (Tier(Decimal(10), Decimal(2)), Tier(Decimal(50), Decimal(10)),
                               Tier(Decimal(300), Decimal(50)))
    assert [r.kind for r in s.rules] == ["points"] * 4 + ["points_per_unit", "tiers"]
    for rule in s.rules:
        for value in (rule.points, rule.points_per_unit, rule.cap):
            assert value is None or type(value) is Decimal
    assert s.rules_version.startswith("2026.1+") and len(s.rules_version) == len("2026.1+") + 12
    assert s.path.name == "example.yaml"


def test_numbers_are_decimals_from_the_text_never_floats(rules_dir: Path) -> None:
    text = edit("points_per_unit: -10, cap: 100", "points_per_unit: 0.1, cap: 0.3")
    text = edit("base_score: 1000", "base_score: 1000.10", text)
    text = edit("{at_least: 10, points: 2}", "{at_least: 10.5, points: 0.2}", text)
    s = load_text(rules_dir, text)
    arrears = s.rules_by_id["arrears"]
    assert arrears.points_per_unit == Decimal("0.1") and str(arrears.points_per_unit) == "0.1"
    assert arrears.cap == Decimal("0.3")
    assert str(s.base_score) == "1000.10"
    assert s.rules_by_id["volunteer"].tiers[0] == Tier(Decimal("10.5"), Decimal("0.2"))
    # 3 × 0.1 is exactly 0.3 (it would not be with floats)
    assert arrears.points_per_unit * 3 == arrears.cap


def test_huzhou_forty_percent_is_exactly_decimal_0_4() -> None:
    rule = load_schemes(SHIPPED, ["huzhou"])["huzhou"].rules_by_id["provincial-evaluation"]
    assert rule.points_per_unit == Decimal("0.4") and str(rule.points_per_unit) == "0.4"
    assert rule.points_per_unit * 1000 == Decimal(400) == rule.cap


def test_unquoted_version_is_kept_as_written(rules_dir: Path) -> None:
    # YAML would read 2026.10 as the float 2026.1; the loader keeps the text as written.
    s = load_text(rules_dir, edit('version: "2026.1"', "version: 2026.10"))
    assert s.version == "2026.10" and s.rules_version.startswith("2026.10+")
    assert load_text(rules_dir, edit('version: "2026.1"', "version: 3")).version == "3"


def test_effective_from_as_a_date(rules_dir: Path) -> None:
    s = load_text(rules_dir, edit("effective_from: 2026-01", "effective_from: 2026-03-01"))
    assert s.effective_from == "2026-03"


def test_dimension_title_shorthand_and_null_optionals(rules_dir: Path) -> None:
    text = edit("law:    {title: 守法履约}", "law:    守法履约")
    text = edit("min_score: 0 ", "min_score: null ", text)
    s = load_text(rules_dir, text)
    assert s.dimensions["law"].title == "守法履约" and s.min_score is None


def test_rule_helpers(rules_dir: Path) -> None:
    s = load_text(rules_dir, SPEC_EXAMPLE)
    assert s.rule_for("ADMIN_PENALTY", "general").id == "fine-general"
    assert s.rule_for("ADMIN_PENALTY", "minor") is None  # unmatched: counted in the run report
    assert s.rule_for("ADMIN_PENALTY", None) is None
    assert s.rule_for("COURT_DISHONEST_DEBTOR", None).id == "debtor"
    volunteer = s.rules_by_id["volunteer"]
    assert [volunteer.tier_points(Decimal(q)) for q in ("0", "9.9", "10", "49", "50", "300",
                                                         "1000")] == \
        [Decimal(0), Decimal(0), Decimal(2), Decimal(2), Decimal(10), Decimal(50), Decimal(50)]
    assert s.rules_by_id["arrears"].finding_points(Decimal(3)) == Decimal(-30)
    assert s.rules_by_id["blood"].finding_points(Decimal(400)) == Decimal(10)
    assert volunteer.finding_points(Decimal(5)) is None


def test_schemes_are_hashable_and_picklable(rules_dir: Path) -> None:
    s = load_text(rules_dir, SPEC_EXAMPLE)
    hash(s)
    assert pickle.loads(pickle.dumps(s)) == s  # shipped to Spark executors as is


# --------------------------------------------------------------------------------------------
# Content hash
# --------------------------------------------------------------------------------------------


def test_rules_version_changes_with_any_content_change(rules_dir: Path) -> None:
    first = load_text(rules_dir, SPEC_EXAMPLE).rules_version
    assert load_text(rules_dir, SPEC_EXAMPLE).rules_version == first  # stable
    changed = load_text(rules_dir, edit("points: -24", "points: -25")).rules_version
    assert changed != first and changed.split("+")[0] == first.split("+")[0] == "2026.1"
    comment = load_text(rules_dir, SPEC_EXAMPLE + "# reviewed\n").rules_version
    assert comment not in (first, changed)


# --------------------------------------------------------------------------------------------
# Refusals: each names the file, the rule (or grade / dimension) and the field
# --------------------------------------------------------------------------------------------


def test_refuses_unknown_dimension_with_the_documented_message(rules_dir: Path) -> None:
    message = refused(rules_dir, edit("dimension: law, points: -24", "dimension: lawx, points: -24"))
    assert "example.yaml: rule 'fine-general': field 'dimension': unknown dimension 'lawx' " \
           "(known: law, award, public)" in message


@pytest.mark.parametrize("key", ["scheme", "title", "version", "effective_from", "base_score",
                                 "dimensions", "grades", "rules"])
def test_refuses_missing_top_level_key(rules_dir: Path, key: str) -> None:
    lines = SPEC_EXAMPLE.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    text = "".join(lines[:start] + lines[end:])
    refused(rules_dir, text, f"field '{key}'", "missing")


def test_refuses_unknown_top_level_key(rules_dir: Path) -> None:
    refused(rules_dir, SPEC_EXAMPLE + "base_scor: 10\n", "field 'base_scor'", "unknown key",
            "did you mean 'base_score'")


def test_refuses_typo_in_rule_key(rules_dir: Path) -> None:
    refused(rules_dir, edit("points: -24", "point: -24"), "rule 'fine-general'", "field 'point'",
            "unknown key", "did you mean 'points'")


def test_refuses_unknown_key_in_grade(rules_dir: Path) -> None:
    refused(rules_dir, edit("label: 优秀, min: 1100", "label: 优秀, minimum: 1100"),
            "grade 'AA'", "field 'minimum'", "unknown key")


def test_refuses_unknown_key_in_tier(rules_dir: Path) -> None:
    refused(rules_dir, edit("{at_least: 50, points: 10}", "{at_least: 50, point: 10}"),
            "rule 'volunteer'", "field 'tiers[2].point'", "unknown key")


def test_refuses_unknown_key_in_dimension(rules_dir: Path) -> None:
    refused(rules_dir, edit("{title: 表彰奖励, cap: 150}", "{title: 表彰奖励, cpa: 150}"),
            "dimension 'award'", "field 'cpa'", "did you mean 'cap'")


def test_refuses_a_key_written_twice(rules_dir: Path) -> None:
    refused(rules_dir, edit("points: -24,", "points: -24, points: -42,"), "rule 'fine-general'",
            "field 'points'", "twice")


@pytest.mark.parametrize("key", ["id", "item", "dimension", "valid_months"])
def test_refuses_rule_missing_required_key(rules_dir: Path, key: str) -> None:
    rule = ("{id: blood, item: BLOOD_DONATION, dimension: public, points: 10, cap: 40, "
            "valid_months: 24}")
    fields = {"id": "id: blood, ", "item": "item: BLOOD_DONATION, ",
              "dimension": "dimension: public, ", "valid_months": ", valid_months: 24"}
    broken = rule.replace(fields[key], "")
    owner = "rule #4" if key == "id" else "rule 'blood'"
    refused(rules_dir, edit(rule, broken), owner, f"field '{key}'", "missing")


@pytest.mark.parametrize("old,new,rule,fld,words", [
    ("points: -24", 'points: "-24"', "fine-general", "points", "must be a number"),
    ("points: -24", "points: yes", "fine-general", "points", "must be a number"),
    ("points: -24", "points: .inf", "fine-general", "points", "must be a number"),
    ("points: -24", "points: 010", "fine-general", "points", "must be a number"),
    ("valid_months: 24, dedupe_group: penalty", "valid_months: 1.5, dedupe_group: penalty",
     "fine-general", "valid_months", "whole number"),
    ("valid_months: 24, dedupe_group: penalty", "valid_months: '24', dedupe_group: penalty",
     "fine-general", "valid_months", "whole number"),
    ("item: ADMIN_PENALTY", "item: [ADMIN_PENALTY]", "fine-general", "item", "text"),
    ("dedupe_group: penalty", "dedupe_group: 7", "fine-general", "dedupe_group", "text"),
    ("when: {level: general}", "when: general", "fine-general", "when", "mapping"),
    ("tiers: [{at_least: 10, points: 2}, {at_least: 50, points: 10}, {at_least: 300, points: 50}]",
     "tiers: 5", "volunteer", "tiers", "list"),
    ("{at_least: 50, points: 10}", "{at_least: fifty, points: 10}", "volunteer",
     "tiers[2].at_least", "must be a number"),
    # points are decimal(18,8) in scoring: below 10^10, and constants have at most 4 decimals
    ("points: -24", "points: -10000000000", "fine-general", "points",
     "must be below 10,000,000,000 in magnitude"),
    ("{at_least: 50, points: 10}", "{at_least: 50, points: 10000000000}", "volunteer",
     "tiers[2].points", "must be below 10,000,000,000"),
    ("points: -24", "points: -24.00001", "fine-general", "points", "at most 4 decimals"),
    ("points_per_unit: -10, cap: 100", "points_per_unit: -0.00001, cap: 100", "arrears",
     "points_per_unit", "at most 4 decimals"),
    ("points_per_unit: -10, cap: 100", "points_per_unit: -10, cap: 100.00001", "arrears",
     "cap", "at most 4 decimals"),
])
def test_refuses_wrong_types_in_rules(rules_dir: Path, old: str, new: str, rule: str, fld: str,
                                      words: str) -> None:
    refused(rules_dir, edit(old, new), f"rule '{rule}'", f"field '{fld}'", words)


@pytest.mark.parametrize("old,new,fld,words", [
    ("base_score: 1000", "base_score: lots", "base_score", "must be a number"),
    ("base_score: 1000", "base_score: 10000000000", "base_score", "must be below"),
    ("max_score: 2000", "max_score: 20000000000", "max_score", "must be below"),
    ("max_score: 2000", "max_score: [2000]", "max_score", "must be a number"),
    ('version: "2026.1"', "version: true", "version", "quote"),
    ("title: 示例分", "title: ''", "title", "non-empty text"),
    ("effective_from: 2026-01", "effective_from: 2026-13", "effective_from", "YYYY-MM"),
    ("effective_from: 2026-01", "effective_from: January", "effective_from", "YYYY-MM"),
    ("scheme: example ", "scheme: 12 ", "scheme", "text"),
])
def test_refuses_wrong_types_at_top_level(rules_dir: Path, old: str, new: str, fld: str,
                                          words: str) -> None:
    refused(rules_dir, edit(old, new), f"field '{fld}'", words)


def test_refuses_wrong_types_in_sections(rules_dir: Path) -> None:
    refused(rules_dir, edit("  law:    {title: 守法履约}\n", "  law:    [守法履约]\n"),
            "dimension 'law'", "field 'title'")
    refused(rules_dir, edit("{grade: A,  label: 良好, min: 1000}",
                            "{grade: A,  label: 良好, min: '1000'}"),
            "grade 'A'", "field 'min'", "must be a number")
    grades_as_map = SPEC_EXAMPLE.split("grades:")[0] + "grades: {AA: 1100}\nrules: []\n"
    refused(rules_dir, grades_as_map, "field 'grades'", "list")
    rules_as_number = SPEC_EXAMPLE.split("rules:")[0] + "rules: 3\n"
    refused(rules_dir, rules_as_number, "field 'rules'", "list")
    rule_as_text = SPEC_EXAMPLE.split("rules:")[0] + "rules:\n  - debtor\n"
    refused(rules_dir, rule_as_text, "rule #1", "mapping")


@pytest.mark.parametrize("months", ["0", "-1"])
def test_refuses_non_positive_valid_months(rules_dir: Path, months: str) -> None:
    refused(rules_dir, edit("valid_months: 60", f"valid_months: {months}"), "rule 'debtor'",
            "field 'valid_months'", "positive")


@pytest.mark.parametrize("cap", ["-40", "0"])
def test_refuses_non_positive_rule_cap(rules_dir: Path, cap: str) -> None:
    refused(rules_dir, edit("cap: 40", f"cap: {cap}"), "rule 'blood'", "field 'cap'", "positive")


def test_refuses_negative_dimension_cap(rules_dir: Path) -> None:
    refused(rules_dir, edit("cap: 150", "cap: -150"), "dimension 'award'", "field 'cap'",
            "positive")


def test_refuses_scheme_not_matching_file_name(rules_dir: Path) -> None:
    refused(rules_dir, edit("scheme: example ", "scheme: exampel "), "field 'scheme'",
            "'exampel'", "file name")


def test_refuses_unknown_item(rules_dir: Path) -> None:
    refused(rules_dir, edit("item: BLOOD_DONATION", "item: BLOOD_DONATIONS"), "rule 'blood'",
            "field 'item'", "unknown item 'BLOOD_DONATIONS'")


def test_refuses_when_on_another_key(rules_dir: Path) -> None:
    refused(rules_dir, edit("when: {level: general}", "when: {quantity: 10}"),
            "rule 'fine-general'", "field 'when'", "'level'")
    refused(rules_dir, edit("when: {level: general}", "when: {level: general, status: active}"),
            "rule 'fine-general'", "field 'when'", "'status'")
    refused(rules_dir, edit("when: {level: general}", "when: {}"), "rule 'fine-general'",
            "field 'when'", "empty")


def test_refuses_level_not_in_catalogue(rules_dir: Path) -> None:
    refused(rules_dir, edit("when: {level: general}", "when: {level: severe}"),
            "rule 'fine-general'", "field 'when'", "unknown level 'severe'",
            "minor, general, serious")
    refused(rules_dir, edit("item: COURT_DISHONEST_DEBTOR,", "item: COURT_DISHONEST_DEBTOR, "
                            "when: {level: minor},"), "rule 'debtor'", "field 'when'",
            "has no levels")


def test_refuses_duplicate_rule_ids(rules_dir: Path) -> None:
    refused(rules_dir, edit("id: blood,", "id: debtor,"), "rule 'debtor'", "field 'id'",
            "duplicate rule id")


def test_refuses_rule_without_points(rules_dir: Path) -> None:
    refused(rules_dir, edit("points: 10, cap: 40", "cap: 40"), "rule 'blood'", "field 'points'",
            "exactly one of points, points_per_unit, tiers")


@pytest.mark.parametrize("old,new,rule,second", [
    ("points: 10, cap: 40", "points: 10, points_per_unit: 0.02, cap: 40", "blood",
     "points_per_unit"),
    ("valid_months: 12,\n", "valid_months: 12, points: 5,\n", "volunteer", "tiers"),
    ("points_per_unit: -10,", "points_per_unit: -10, points: -10,", "arrears", "points_per_unit"),
])
def test_refuses_mixed_points_kinds(rules_dir: Path, old: str, new: str, rule: str,
                                    second: str) -> None:
    refused(rules_dir, edit(old, new), f"rule '{rule}'", f"field '{second}'", "exactly one of")


def test_refuses_quantity_scoring_on_item_without_quantity(rules_dir: Path) -> None:
    refused(rules_dir, edit("dimension: law, points: -150", "dimension: law, points_per_unit: -1"),
            "rule 'debtor'", "field 'points_per_unit'", "no quantity")
    tiers = edit("item: VOLUNTEER_SERVICE", "item: BRAVERY")
    refused(rules_dir, tiers, "rule 'volunteer'", "field 'tiers'", "no quantity")


@pytest.mark.parametrize("second", ["10", "5"])
def test_refuses_tiers_not_strictly_increasing(rules_dir: Path, second: str) -> None:
    refused(rules_dir, edit("{at_least: 50, points: 10}", f"{{at_least: {second}, points: 10}}"),
            "rule 'volunteer'", "field 'tiers[2].at_least'", "strictly increasing")


@pytest.mark.parametrize("new_min", ["1100", "1200"])
def test_refuses_grades_not_strictly_descending(rules_dir: Path, new_min: str) -> None:
    refused(rules_dir, edit("label: 良好, min: 1000", f"label: 良好, min: {new_min}"),
            "grade 'A'", "field 'min'", "strictly descending")


def test_refuses_grade_without_min_before_the_last(rules_dir: Path) -> None:
    refused(rules_dir, edit("{grade: A,  label: 良好, min: 1000}", "{grade: A,  label: 良好}"),
            "grade 'A'", "field 'min'", "only the last grade")


def test_refuses_last_grade_with_min(rules_dir: Path) -> None:
    message = refused(rules_dir, edit("{grade: D,  label: 不良}", "{grade: D,  label: 不良, min: 0}"),
                      "grade 'D'", "field 'min'", "no grade")
    assert "(line 16)" in message


def test_refuses_duplicate_grade(rules_dir: Path) -> None:
    refused(rules_dir, edit("{grade: B,  label: 一般", "{grade: A,  label: 一般"), "grade 'A'",
            "field 'grade'", "twice")


def test_refuses_min_score_above_max_score(rules_dir: Path) -> None:
    refused(rules_dir, edit("max_score: 2000", "max_score: -1"), "field 'min_score'",
            "above max_score")


def test_refuses_rule_shadowed_by_earlier_rule_without_when(rules_dir: Path) -> None:
    text = edit("  - {id: fine-general,",
                "  - {id: fine-any, item: ADMIN_PENALTY, dimension: law, points: -10, "
                "valid_months: 12}\n  - {id: fine-general,")
    refused(rules_dir, text, "rule 'fine-general'", "field 'when'", "never match", "'fine-any'")
    text = edit("  - {id: blood,", "  - {id: blood-all, item: BLOOD_DONATION, dimension: public, "
                "points: 5, valid_months: 12}\n  - {id: blood,")
    refused(rules_dir, text, "rule 'blood'", "field 'item'", "never match", "'blood-all'")


def test_refuses_rule_shadowed_by_earlier_rule_with_same_when(rules_dir: Path) -> None:
    text = edit("  - {id: award-provincial,",
                "  - {id: fine-general-2, item: ADMIN_PENALTY, when: {level: general}, "
                "dimension: law, points: -30, valid_months: 12}\n  - {id: award-provincial,")
    refused(rules_dir, text, "rule 'fine-general-2'", "field 'when'", "never match",
            "'fine-general'")


def test_accepts_a_catch_all_after_level_rules(rules_dir: Path) -> None:
    # a later rule without `when` still takes the findings of other levels (and without level)
    text = edit("  - {id: award-provincial,",
                "  - {id: fine-other, item: ADMIN_PENALTY, dimension: law, points: -10, "
                "valid_months: 12}\n  - {id: award-provincial,")
    s = load_text(rules_dir, text)
    assert s.rule_for("ADMIN_PENALTY", "minor").id == "fine-other"
    assert s.rule_for("ADMIN_PENALTY", "general").id == "fine-general"


def test_refuses_dedupe_group_mixing_tiers_and_points(rules_dir: Path) -> None:
    text = edit("valid_months: 12,\n", "valid_months: 12, dedupe_group: court,\n")
    refused(rules_dir, text, "rule 'volunteer'", "field 'dedupe_group'", "'court'")


def test_refuses_broken_yaml_and_empty_files(rules_dir: Path) -> None:
    refused(rules_dir, edit("rules:\n", "rules: [\n"), "invalid YAML")
    refused(rules_dir, "", "empty")
    refused(rules_dir, "- just\n- a list\n", "mapping")


def test_rule_without_id_is_named_by_position(rules_dir: Path) -> None:
    refused(rules_dir, edit("{id: arrears, ", "{"), "rule #5", "field 'id'", "missing")


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def test_shipped_catalogue_is_spec_section_3() -> None:
    catalogue = load_catalogue(SHIPPED)
    assert isinstance(catalogue, Catalogue)
    assert list(catalogue.items) == [
        "COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "ADMIN_PENALTY", "UNCIVIL_CONDUCT",
        "LOAN_ARREARS", "COMMITMENT_SIGNED", "COMMITMENT_BREACH", "COMMENDATION", "BRAVERY",
        "VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION", "PROVINCIAL_CREDIT_SCORE",
        # rule format v2 (issue 14): 用信行为 and 信用修复
        "CREDIT_SERVICE_SETTLED", "CREDIT_SERVICE_OVERDUE", "CREDIT_REPAIR_COMPLETED"]
    items = catalogue.items
    assert items["ADMIN_PENALTY"].levels == ("minor", "general", "serious")
    assert items["COMMENDATION"].levels == ("international", "national", "provincial",
                                            "municipal", "county")
    assert {code: item.quantity for code, item in items.items() if item.quantity} == {
        "LOAN_ARREARS": "cycles", "VOLUNTEER_SERVICE": "hours", "BLOOD_DONATION": "ml",
        "CHARITY_DONATION": "yuan", "PROVINCIAL_CREDIT_SCORE": "score",
        "CREDIT_SERVICE_OVERDUE": "days"}
    assert all(item.title for item in items.values())
    assert items["COURT_DISHONEST_DEBTOR"].levels is None
    assert items["COURT_DISHONEST_DEBTOR"].quantity is None


def test_a_new_item_is_a_new_catalogue_entry(rules_dir: Path) -> None:
    catalogue = rules_dir / "catalogue.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8") +
                         "  GARBAGE_SORTING:\n    title: 垃圾分类\n    levels: [good, poor]\n"
                         "    quantity: times\n", encoding="utf-8")
    text = SPEC_EXAMPLE + ("  - {id: garbage, item: GARBAGE_SORTING, when: {level: poor}, "
                           "dimension: public, points_per_unit: -1, valid_months: 6}\n")
    s = load_text(rules_dir, text)
    assert s.rules_by_id["garbage"].item == "GARBAGE_SORTING"


@pytest.mark.parametrize("text,words", [
    ("items:\n  X:\n    title: 某\n    unit: ml\n", ["item 'X'", "field 'unit'", "unknown key"]),
    ("items:\n  X:\n    title: 某\n    levels: minor\n", ["item 'X'", "field 'levels'", "list"]),
    ("items:\n  X:\n    levels: [a]\n", ["item 'X'", "field 'title'", "missing"]),
    ("items:\n  X: {title: 某}\n  X: {title: 某某}\n", ["'X'", "twice"]),
    ("things: {}\n", ["field 'things'", "unknown key"]),
])
def test_catalogue_refusals(tmp_path: Path, text: str, words: list[str]) -> None:
    (tmp_path / "catalogue.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_catalogue(tmp_path)
    message = str(caught.value)
    assert "catalogue.yaml" in message
    for word in words:
        assert word in message, message


def test_missing_catalogue_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "example", SPEC_EXAMPLE)
    with pytest.raises(RuleFileError, match="catalogue.yaml: file not found"):
        load_schemes(tmp_path)


# --------------------------------------------------------------------------------------------
# load_schemes: any valid file of the SPEC shape, names, unknown names
# --------------------------------------------------------------------------------------------

CHECKER_OWN = """\
# a checker's own scheme, written from SPEC §4 alone
scheme: mycity
title: 我的城市分
version: '7'
effective_from: 2025-07-01
base_score: 500.5
dimensions:
  good: {title: 好, cap: 80.25}
  bad:
    title: 坏
grades:
  - grade: TOP
    label: 顶
    min: 600
  - {grade: MID, label: 中, min: 500.5}
  - {grade: LOW, label: 低}
rules:
  - id: p-serious
    item: ADMIN_PENALTY
    when:
      level: serious
    dimension: bad
    points: -33.3
    valid_months: 18
    dedupe_group: pen
  - {id: p-rest, item: ADMIN_PENALTY, dimension: bad, points: -1, valid_months: 3, dedupe_group: pen}
  - {id: prov, item: PROVINCIAL_CREDIT_SCORE, dimension: good, points_per_unit: 0.05, valid_months: 2, cap: 50}
  - id: give
    item: CHARITY_DONATION
    dimension: good
    valid_months: 12
    cap: 30
    tiers:
      - {at_least: 0.5, points: 1.5}
      - {at_least: 1000, points: 30}
"""


def test_load_schemes_accepts_a_checkers_own_file(rules_dir: Path) -> None:
    write(rules_dir, "mycity", CHECKER_OWN)
    schemes = load_schemes(rules_dir)
    assert list(schemes) == ["mycity"]
    s = schemes["mycity"]
    assert s.version == "7" and s.effective_from == "2025-07" and s.base_score == Decimal("500.5")
    assert s.min_score is None and s.max_score is None
    assert s.dimensions["good"].cap == Decimal("80.25") and s.dimensions["bad"].cap is None
    assert [r.id for r in s.rules] == ["p-serious", "p-rest", "prov", "give"]
    assert s.rules[0].points == Decimal("-33.3") and s.rules[0].when == {"level": "serious"}
    assert s.rules[2].points_per_unit == Decimal("0.05")
    assert s.rules[3].tiers[0] == Tier(Decimal("0.5"), Decimal("1.5"))
    assert s.grade_for(Decimal("500.5")).grade == "MID"
    assert s.grade_for(500).grade == "LOW"
    assert s.rule_for("ADMIN_PENALTY", "minor").id == "p-rest"


def test_load_schemes_picks_by_name_and_lists_available_on_unknown(rules_dir: Path) -> None:
    write(rules_dir, "example", SPEC_EXAMPLE)
    write(rules_dir, "mycity", CHECKER_OWN)
    write(rules_dir, "draft", "scheme: draft\n")  # broken: only read when picked
    assert list(load_schemes(rules_dir, ["mycity"])) == ["mycity"]
    assert list(load_schemes(rules_dir, ["mycity", "example"])) == ["mycity", "example"]
    with pytest.raises(UnknownSchemeError) as caught:
        load_schemes(rules_dir, ["example", "nosuch"])
    assert isinstance(caught.value, RuleFileError)
    assert "'nosuch'" in str(caught.value)
    assert "available: draft, example, mycity" in str(caught.value)
    with pytest.raises(RuleFileError, match="draft.yaml"):
        load_schemes(rules_dir)  # all of them: the broken draft is refused


# --------------------------------------------------------------------------------------------
# Shipped schemes
# --------------------------------------------------------------------------------------------


def test_every_shipped_scheme_loads() -> None:
    schemes = load_schemes(SHIPPED)
    assert list(schemes) == ["bailu", "dazixiang", "haibei", "huzhou"]
    for name, s in schemes.items():
        assert s.scheme == name and s.path.name == f"{name}.yaml"
        assert s.rules_version.startswith(s.version + "+")
        text = s.path.read_text(encoding="utf-8")
        assert "OFFICIAL" in text and "ILLUSTRATIVE" in text  # documented in the header
    assert len({s.rules_version for s in schemes.values()}) == 4


def _grades_at(s: Scheme, scores: list[int]) -> list[str]:
    return [s.grade_for(Decimal(score)).grade for score in scores]


def test_haibei_grades_and_seed_examples() -> None:
    s = load_schemes(SHIPPED, ["haibei"])["haibei"]
    assert s.base_score == 1000
    assert [(g.grade, g.label) for g in s.grades] == [("AAA", "模范"), ("AA", "优秀"),
                                                      ("A", "良好"), ("B", "一般"),
                                                      ("C", "警示"), ("D", "不良")]
    assert _grades_at(s, [1300, 1150, 1149, 1050, 1049, 1000, 999, 950, 949, 801, 800, 0]) == \
        ["AAA", "AAA", "AA", "AA", "A", "A", "B", "B", "C", "C", "D", "D"]
    assert [d.title for d in s.dimensions.values()] == ["道德公益", "守法履约", "社会责任",
                                                        "表彰奖励", "公共服务"]
    # drunk driving is a serious administrative penalty: 1000 → 940 = C
    drunk = s.base_score + s.rule_for("ADMIN_PENALTY", "serious").points
    assert drunk == 940 and s.grade_for(drunk).grade == "C"
    debtor = s.base_score + s.rule_for("COURT_DISHONEST_DEBTOR", None).points
    assert debtor == 800 and s.grade_for(debtor).grade == "D"
    assert [s.rule_for("ADMIN_PENALTY", lv).points for lv in ("minor", "general", "serious")] == \
        [-20, -24, -60]
    assert [s.rule_for("COMMENDATION", lv).points
            for lv in ("national", "provincial", "municipal", "county")] == [100, 60, 30, 20]
    # the same court case from court and provincial_credit, and the same deed, count once
    assert s.rule_for("COURT_DISHONEST_DEBTOR", None).dedupe_group == "court"
    assert {s.rule_for("COMMENDATION", lv).dedupe_group
            for lv in ("international", "national", "provincial", "municipal", "county")} == \
        {"deed"}
    volunteer = s.rule_for("VOLUNTEER_SERVICE", None)
    assert volunteer.tier_points(Decimal(10)) == 2 and volunteer.tier_points(Decimal(300)) == 50
    blood = s.rule_for("BLOOD_DONATION", None)
    assert (blood.points, blood.cap) == (10, 40)
    assert s.rule_for("CHARITY_DONATION", None).cap == 40
    assert s.rule_for("LOAN_ARREARS", None).points_per_unit == -10
    performed = s.rule_for("DEBT_PERFORMED", None)
    assert (performed.points, performed.valid_months) == (-50, 24)


def test_dazixiang_grades_and_validity() -> None:
    s = load_schemes(SHIPPED, ["dazixiang"])["dazixiang"]
    assert s.base_score == 600
    assert [g.grade for g in s.grades] == ["SSS", "SS", "S", "AAA", "AA", "A", "B", "C", "D"]
    assert _grades_at(s, [950, 949, 900, 899, 850, 849, 800, 799, 750, 749, 600, 599, 500, 499,
                          400, 399]) == \
        ["SSS", "SS", "SS", "S", "S", "AAA", "AAA", "AA", "AA", "A", "A", "B", "B", "C", "C", "D"]
    assert s.grade_for(s.base_score).grade == "A"
    for rule in s.rules:
        exception = rule.item == "COMMENDATION" and rule.level in ("international", "national")
        assert (rule.valid_months > 36) == exception, rule.id
    # multi-department highest value
    for item in ("COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY", "COMMENDATION", "UNCIVIL_CONDUCT"):
        assert all(r.dedupe_group for r in s.rules if r.item == item), item


def test_huzhou_one_plus_one_plus_one_plus_x() -> None:
    s = load_schemes(SHIPPED, ["huzhou"])["huzhou"]
    assert s.base_score == 0
    evaluation = s.rule_for("PROVINCIAL_CREDIT_SCORE", None)
    assert evaluation.kind == "points_per_unit" and evaluation.cap == 400
    assert s.dimensions[evaluation.dimension].cap == 400
    commitment = s.rule_for("COMMITMENT_SIGNED", None)
    assert commitment.points == 20 and commitment.cap == 400 == 20 * commitment.points
    breach = s.rule_for("COMMITMENT_BREACH", None)
    assert breach.points == -commitment.points and breach.valid_months == 6
    assert breach.dimension == commitment.dimension
    award = s.rule_for("COMMENDATION", "national")
    assert s.dimensions[award.dimension].cap == 50
    assert [(g.grade, g.label) for g in s.grades] == [("BLUE", "蓝码"), ("GREEN", "绿码"),
                                                      ("YELLOW", "黄码")]
    assert _grades_at(s, [1000, 500, 499, 250, 249, 0]) == \
        ["BLUE", "BLUE", "GREEN", "GREEN", "YELLOW", "YELLOW"]


def test_bailu_five_factor_groups() -> None:
    s = load_schemes(SHIPPED, ["bailu"])["bailu"]
    assert list(s.dimensions) == ["basic", "positive", "breach", "repair", "credit_use"]
    assert not [r for r in s.rules if r.dimension == "basic"]  # not expressible: see the header
    assert [g.label for g in s.grades] == ["极好", "优秀", "良好", "一般", "不良"]
    assert _grades_at(s, [750, 749, 700, 699, 600, 599, 500, 499]) == \
        ["AAA", "AA", "AA", "A", "A", "B", "B", "C"]
    assert "CANNOT EXPRESS" in s.path.read_text(encoding="utf-8")
