"""The rules' data model (SPEC §3–§4): plain frozen dataclasses with ``Decimal`` numbers.

Everything here is picklable, so a scheme can be shipped to Spark executors as it is. The files
are read and checked by citycredit/rules/v1.py and v2.py; applying rules to findings is
citycredit/scoring (and, independently, reference/duckdb_scorer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Item:
    """A catalogue item (信用信息目录 entry)."""

    code: str
    title: str
    levels: tuple[str, ...] | None = None  # allowed `level` values, None = item has no levels
    quantity: str | None = None  # unit of `quantity` (hours, ml, ...), None = no quantity


@dataclass(frozen=True)
class Catalogue:
    items: dict[str, Item] = field(hash=False)
    path: Path | None = None

    def __contains__(self, code: object) -> bool:
        return code in self.items

    def __getitem__(self, code: str) -> Item:
        return self.items[code]


@dataclass(frozen=True)
class Tier:
    at_least: Decimal
    points: Decimal


@dataclass(frozen=True)
class Requirement:
    """`requires: {rules: [...], same: case_ref}`: a finding counts only against an earlier (or
    same-day) current finding of one of `rules` with the same non-null case_ref."""

    rules: tuple[str, ...]
    same: str = "case_ref"


@dataclass(frozen=True)
class Repair:
    """`repair: {energy: {ITEM: units_per_repair, ...}}`: repair energy ends a finding early."""

    energy: tuple[tuple[str, Decimal], ...]  # (item, units per repair), in file order

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(item for item, _ in self.energy)

    def units(self, item: str) -> Decimal:
        return dict(self.energy)[item]


@dataclass(frozen=True)
class Growth:
    """`growth: {every_months: k, points: p, cap: c, reset_by: [...]}`: p per full k months since
    the earliest current finding of the rule (or the latest reset), at most c."""

    every_months: int
    points: Decimal
    cap: Decimal | None = None
    reset_by: tuple[str, ...] = ()

    def total(self, periods: int) -> Decimal:
        """p × n, bounded by the cap (an absolute bound, like every cap)."""
        value = self.points * periods
        if self.cap is not None:
            value = max(min(value, self.cap), -self.cap)
        return value


@dataclass(frozen=True)
class Rule:
    id: str
    item: str
    when: dict[str, str] = field(hash=False)  # {} or {'level': value}
    dimension: str
    points: Decimal | None
    points_per_unit: Decimal | None
    tiers: tuple[Tier, ...] | None
    valid_months: int | None  # None only on a growth rule (validity does not apply to growth)
    cap: Decimal | None
    dedupe_group: str | None
    requires: Requirement | None = None
    repair: Repair | None = None
    growth: Growth | None = None

    @property
    def kind(self) -> str:
        """'points' | 'points_per_unit' | 'tiers' | 'growth' (exactly one is set)."""
        if self.growth is not None:
            return "growth"
        if self.tiers is not None:
            return "tiers"
        if self.points_per_unit is not None:
            return "points_per_unit"
        return "points"

    @property
    def level(self) -> str | None:
        """The level this rule is restricted to, or None (every level, and findings without one)."""
        return self.when.get("level")

    def matches(self, item_code: str, level: str | None) -> bool:
        """Does a finding of this item and level match the rule's `item` and `when`?"""
        if item_code != self.item:
            return False
        return all(
            (level if key == "level" else None) == value for key, value in self.when.items()
        )

    def finding_points(self, quantity: Decimal | None) -> Decimal | None:
        """A finding's own value: `points`, or `quantity × points_per_unit`; None for tiers and
        growth rules (and for a points_per_unit rule when the finding carries no quantity)."""
        if self.kind == "points":
            return self.points
        if self.kind == "points_per_unit":
            return None if quantity is None else quantity * self.points_per_unit
        return None

    def tier_points(self, total_quantity: Decimal) -> Decimal:
        """Points of the highest tier whose `at_least` the summed quantity reaches (else 0)."""
        if self.tiers is None:
            raise ValueError(f"rule {self.id!r} has no tiers")
        result = Decimal(0)
        for tier in self.tiers:
            if total_quantity >= tier.at_least:
                result = tier.points
        return result


#: the person attributes a subject rule may test (SPEC §4.1)
SUBJECT_ATTRIBUTES = ("residency", "district", "age", "months_resident")
#: the values of `residency` in the population extract (SPEC §2.2)
RESIDENCIES = ("hukou", "permit")

@dataclass(frozen=True)
class Condition:
    """One test of a subject rule's `when` on a person attribute: equality (`equals`) or a range
    (`at_least` ≤ value < `below`, either bound optional)."""

    attribute: str
    equals: str | int | None = None
    at_least: Decimal | None = None
    below: Decimal | None = None

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        if self.equals is not None:
            return value == self.equals
        if self.at_least is not None and not value >= self.at_least:
            return False
        if self.below is not None and not value < self.below:
            return False
        return True


@dataclass(frozen=True)
class Unless:
    """`unless_any: {rules: [...], within_months: N}`: the subject rule does not apply to a
    person with a current finding of a listed rule that occurred after add_months(A, −N)."""

    rules: tuple[str, ...]
    within_months: int


@dataclass(frozen=True)
class SubjectRule:
    """A rule over the person (SPEC §4.1): `points` once per scored person whose attributes
    satisfy every condition of `when` and who has no recent finding of `unless_any`."""

    id: str
    when: tuple[Condition, ...]
    unless_any: Unless | None
    dimension: str
    points: Decimal

    def matches(self, attributes: dict[str, Any]) -> bool:
        """Do the person's attributes (residency, district, age, months_resident) satisfy `when`?
        (`unless_any` depends on findings and is left to the scorer.)"""
        return all(c.holds(attributes.get(c.attribute)) for c in self.when)


@dataclass(frozen=True)
class Dimension:
    id: str
    title: str
    cap: Decimal | None = None


@dataclass(frozen=True)
class Grade:
    grade: str
    label: str
    min: Decimal | None = None  # None only on the last (lowest) grade


@dataclass(frozen=True)
class Scheme:
    scheme: str
    title: str
    version: str
    effective_from: str  # 'YYYY-MM', the first score month
    base_score: Decimal
    min_score: Decimal | None
    max_score: Decimal | None
    dimensions: dict[str, Dimension] = field(hash=False)  # file order
    grades: tuple[Grade, ...]
    rules: tuple[Rule, ...]
    rules_version: str  # '<version>+<12 hex of sha256(file bytes)>'
    path: Path
    subject_rules: tuple[SubjectRule, ...] = ()  # format v2; () in a v1 file

    def grade_for(self, score: Decimal | int) -> Grade:
        """The first grade (highest first) whose `min` ≤ score; the last grade otherwise."""
        for grade in self.grades:
            if grade.min is None or score >= grade.min:
                return grade
        return self.grades[-1]  # unreachable for a loaded scheme (the last grade has no min)

    def rule_for(self, item_code: str, level: str | None) -> Rule | None:
        """The rule a finding of this item and level takes, or None: the first rule in file order
        whose item and `when` match, growth rules aside; failing one, the first such growth rule
        (a growth rule observes every finding of its item: it takes none away from other rules)."""
        for rule in self.rules:
            if rule.growth is None and rule.matches(item_code, level):
                return rule
        for rule in self.rules:
            if rule.growth is not None and rule.matches(item_code, level):
                return rule
        return None

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    @property
    def subject_rules_by_id(self) -> dict[str, SubjectRule]:
        return {rule.id: rule for rule in self.subject_rules}

    @property
    def subject_attributes(self) -> set[str]:
        """The person attributes the subject rules test (the scorer must be given them)."""
        return {c.attribute for rule in self.subject_rules for c in rule.when}

    @property
    def uses_v2(self) -> bool:
        """Does the file use any addition of format v2 (SPEC §4.1)?"""
        return bool(self.subject_rules) or any(
            r.requires or r.repair or r.growth for r in self.rules)


@dataclass(frozen=True)
class Recognition:
    """A grade recognition table (互认): every grade of scheme `source` → a grade of `target`."""

    source: str
    target: str
    grades: dict[str, str]
    path: Path
