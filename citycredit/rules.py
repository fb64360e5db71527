"""Rule files: the item catalogue and the scheme files of SPEC §3–§4, loaded and checked.

    catalogue = load_catalogue(Path("rules"))
    scheme = load_scheme(Path("rules/haibei.yaml"), catalogue)
    schemes = load_schemes(Path("rules"), ["haibei", "huzhou"])

Everything here is plain data (frozen dataclasses, ``Decimal`` numbers) and picklable, so a
scheme can be shipped to Spark executors as it is. This module only *reads* rules; applying them
to findings is citycredit/scoring (and, independently, reference/duckdb_scorer.py).

A rules folder holds the adopted schemes (`<scheme>.yaml` beside `catalogue.yaml`: the monthly
run scores every one), candidate revisions in `drafts/` (`<scheme>-<anything>.yaml`, loaded and
checked like adopted files, never scored by the monthly run) and grade recognition tables in
`recognition/` (`<from>__<to>.yaml`: every grade of one scheme → a grade of the other).

Numbers: every number of a rule file becomes a ``Decimal`` built from the text written in the
file (the YAML reader is taught to do so), never through a binary float: ``0.4`` is exactly
``Decimal('0.4')`` and ``2026.10`` stays ``2026.10``. Integers written with a leading zero
(``010``, which YAML 1.1 reads as octal 8), hexadecimal or sexagesimal forms are not accepted
as numbers.

``version`` should be quoted (``version: "2026.10"``). Unquoted numeric versions are accepted
and kept exactly as written (``version: 2026.10`` → ``"2026.10"``, not ``"2026.1"``), because
this loader reads decimal text itself; other YAML readers would not, so quote it.

Format v2 (SPEC §4.1, docs/rule-format.md) adds `subject_rules` (points per person by
residency, district, age, months_resident, optionally `unless_any` recent findings), and on a
finding rule `requires` (counts only against an earlier finding of the same case), `repair`
(repair energy from listed items ends a finding early) and `growth` (points per full k months
since the earliest finding, reset by listed rules). A v1 file loads exactly as before.

Every refusal is a :class:`RuleFileError` whose message names the file, the rule (or grade,
dimension, item) at fault, the field, and the line, e.g.::

    rules/haibei.yaml: rule 'fine-general': field 'dimension': unknown dimension 'lawx'
    (known: law, award, public) (line 14)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

import yaml

__all__ = [
    "RuleFileError",
    "UnknownSchemeError",
    "Item",
    "Catalogue",
    "Tier",
    "Rule",
    "Requirement",
    "Repair",
    "Growth",
    "Condition",
    "Unless",
    "SubjectRule",
    "SUBJECT_ATTRIBUTES",
    "RESIDENCIES",
    "Dimension",
    "Grade",
    "Scheme",
    "CATALOGUE_FILE",
    "load_catalogue",
    "load_scheme",
    "load_schemes",
    "available_schemes",
    "DRAFTS_FOLDER",
    "RECOGNITION_FOLDER",
    "available_drafts",
    "load_draft",
    "Recognition",
    "available_recognitions",
    "load_recognition",
]

CATALOGUE_FILE = "catalogue.yaml"


class RuleFileError(ValueError):
    """A rule file (scheme or catalogue) is refused; the message names file, rule and field."""


class UnknownSchemeError(RuleFileError):
    """A scheme was asked for by name that has no rules/<name>.yaml."""


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


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
_EQUALITY_ONLY = ("residency", "district")
# Personal characteristics a score must never depend on (sex and anything like it).
_PROTECTED = ("sex", "gender", "ethnicity", "ethnic_group", "nation", "nationality", "minzu",
              "race", "religion", "faith", "marital_status", "pregnancy", "sexual_orientation",
              "disability", "health", "political_affiliation", "birthplace", "native_place")


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


# --------------------------------------------------------------------------------------------
# YAML reading: decimals from text, line numbers, duplicate keys kept for refusal
# --------------------------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers where it and its keys were written, and repeated keys."""

    def __init__(self) -> None:
        super().__init__()
        self.line: int | None = None
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class _Loader(yaml.SafeLoader):
    pass


_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_int(loader: _Loader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if _PLAIN_INT.fullmatch(text):
        return int(text)
    # 010 (YAML 1.1 octal), 0x1f, 1:30 ... are not read as numbers: kept as the text written,
    # so that a numeric field refuses them and a text field (an id, a version) keeps them as is.
    return str(loader.construct_scalar(node))


def _construct_float(loader: _Loader, node: yaml.Node) -> Any:
    raw = str(loader.construct_scalar(node))
    text = raw.replace("_", "")
    if ":" in text:  # sexagesimal 1:30.5
        return raw
    try:
        return Decimal(text)  # .inf / .nan become non-finite Decimals, refused by _number()
    except InvalidOperation:
        return raw


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    result = _Map()
    result.line = node.start_mark.line + 1
    yield result
    own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)  # `<<: *anchor` pairs first, then the mapping's own pairs
    first_own = len(node.value) - own
    own_keys: set[Any] = set()
    for position, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found unhashable key", key_node.start_mark) from None
        value = loader.construct_object(value_node, deep=True)
        if position < first_own:  # merged in: the mapping's own keys may override it
            result[key] = value
            result.key_lines[key] = result.line
            continue
        line = key_node.start_mark.line + 1
        if key in own_keys:  # PyYAML would silently keep the second; we refuse it later
            result.duplicates.append((key, line))
            continue
        own_keys.add(key)
        result[key] = value
        result.key_lines[key] = line


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _display(path: Path) -> str:
    """The file as the message shows it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read(path: Path) -> tuple[bytes, Any]:
    shown = _display(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RuleFileError(f"{shown}: file not found") from None
    except OSError as exc:
        raise RuleFileError(f"{shown}: cannot read: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{shown}: not UTF-8 text: {exc}") from None
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise RuleFileError(f"{shown}: invalid YAML: {detail}") from None
    return data, document


# --------------------------------------------------------------------------------------------
# Checking helpers
# --------------------------------------------------------------------------------------------


class _Where:
    """Where in a file a check is: builds RuleFileError messages naming file, owner and field."""

    def __init__(self, file: str, owner: str = "", node: _Map | None = None) -> None:
        self.file = file
        self.owner = owner  # e.g. "rule 'debtor': " or "grade 'AA': " or ""
        self.node = node

    def at(self, owner: str, node: Any) -> "_Where":
        return _Where(self.file, owner, node if isinstance(node, _Map) else None)

    def line_of(self, key: Any = None) -> int | None:
        if self.node is None:
            return None
        if key is not None and key in self.node.key_lines:
            return self.node.key_lines[key]
        return self.node.line

    def error(self, message: str, fld: str | None = None, line: int | None = None,
              key: Any = None) -> RuleFileError:
        if line is None:
            line = self.line_of(key if key is not None else fld)
        text = f"{self.file}: {self.owner}"
        if fld is not None:
            text += f"field '{fld}': "
        text += message
        if line:
            text += f" (line {line})"
        return RuleFileError(text)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, Decimal)):
        return f"number {value}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, _dt.date):
        return f"date {value.isoformat()}"
    return type(value).__name__


def _check_keys(where: _Where, node: _Map, required: Iterable[str], optional: Iterable[str],
                what: str, prefix: str = "") -> None:
    """Repeated keys, unknown keys (typos such as `point:`) and missing keys are refused."""
    required = list(required)
    allowed = set(required) | set(optional)
    for key, line in node.duplicates:
        raise where.error(f"written twice in {what} (the second would silently win)",
                          f"{prefix}{key}", line=line)
    for key in node:
        if key not in allowed:
            hint = ""
            close = [name for name in sorted(allowed) if _similar(str(key), name)]
            if close:
                hint = f"; did you mean '{close[0]}'?"
            raise where.error(
                f"unknown key in {what}{hint} (allowed: {', '.join(_ordered(allowed, required))})",
                f"{prefix}{key}", key=key)
    for key in required:
        if key not in node:
            raise where.error(f"missing (required in {what})", f"{prefix}{key}", line=node.line)


def _ordered(allowed: set[str], required: list[str]) -> list[str]:
    return required + sorted(allowed - set(required))


def _similar(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if abs(len(a) - len(b)) > 2:
        return False
    # a cheap edit distance for short names
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] <= 2


def _mapping(where: _Where, value: Any, fld: str, key: Any = None) -> _Map:
    if not isinstance(value, _Map):
        raise where.error(f"must be a mapping, got {_describe(value)}", fld, key=key or fld)
    return value


def _text(where: _Where, value: Any, fld: str, key: Any = None) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "empty text" if isinstance(value, str) else _describe(value)
        raise where.error(f"must be non-empty text, got {got}", fld, key=key or fld)
    return value


def _number(where: _Where, value: Any, fld: str, key: Any = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise where.error(f"must be a number, got {_describe(value)}", fld, key=key or fld)
    number = Decimal(value)
    if not number.is_finite():
        raise where.error(f"must be a finite number, got {value}", fld, key=key or fld)
    return number


def _optional_number(where: _Where, node: _Map, fld: str) -> Decimal | None:
    value = node.get(fld)
    return None if value is None else _number(where, value, fld)


def _positive_cap(where: _Where, node: _Map, fld: str = "cap") -> Decimal | None:
    cap = _optional_number(where, node, fld)
    if cap is not None and cap <= 0:
        raise where.error(
            f"must be a positive number (an absolute bound on the total, whichever its sign), "
            f"got {cap}", fld)
    return cap


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def _catalogue_path(rules_dir: Path) -> Path:
    rules_dir = Path(rules_dir)
    return rules_dir if rules_dir.is_file() else rules_dir / CATALOGUE_FILE


def load_catalogue(rules_dir: Path) -> Catalogue:
    """Read `<rules_dir>/catalogue.yaml` (or the file itself, if a file is given)."""
    path = _catalogue_path(rules_dir)
    _, document = _read(path)
    where = _Where(_display(path))
    if document is None:
        raise where.error("the file is empty (expected `items:`)")
    if not isinstance(document, _Map):
        raise where.error(f"must be a mapping with `items:`, got {_describe(document)}")
    top = document
    where = _Where(where.file, "", top)
    _check_keys(where, top, ["items"], [], "the catalogue")
    items_node = _mapping(where, top["items"], "items")
    if not items_node:
        raise where.error("lists no item", "items")
    items: dict[str, Item] = {}
    for key, line in items_node.duplicates:
        raise where.error(f"item {key!r} is listed twice", "items", line=line)
    for code, entry in items_node.items():
        code_where = _Where(where.file, "", items_node)
        _text(code_where, code, "items", key=code)
        if entry is None:
            entry = _Map()
            entry.line = items_node.key_lines.get(code)
        item_where = where.at(f"item '{code}': ", entry)
        entry = _mapping(item_where, entry, "title")
        _check_keys(item_where, entry, ["title"], ["levels", "quantity"], "an item")
        title = _text(item_where, entry["title"], "title")
        levels = None
        if entry.get("levels") is not None:
            raw = entry["levels"]
            if not isinstance(raw, list) or not raw:
                raise item_where.error(f"must be a non-empty list of level names, got "
                                       f"{_describe(raw)}", "levels")
            levels = tuple(_text(item_where, level, "levels") for level in raw)
            repeated = sorted({level for level in levels if levels.count(level) > 1})
            if repeated:
                raise item_where.error(f"level {repeated[0]!r} is listed twice", "levels")
        quantity = None
        if entry.get("quantity") is not None:
            quantity = _text(item_where, entry["quantity"], "quantity")
        items[code] = Item(code=code, title=title, levels=levels, quantity=quantity)
    return Catalogue(items=items, path=path)


# --------------------------------------------------------------------------------------------
# Scheme
# --------------------------------------------------------------------------------------------

_SCHEME_REQUIRED = ["scheme", "title", "version", "effective_from", "base_score", "dimensions",
                    "grades", "rules"]
_SCHEME_OPTIONAL = ["min_score", "max_score", "subject_rules"]
_RULE_REQUIRED = ["id", "item", "dimension", "valid_months"]
_RULE_EXCLUSIVE = ["points", "points_per_unit", "tiers"]
_RULE_V2 = ["requires", "repair", "growth"]
_RULE_OPTIONAL = _RULE_EXCLUSIVE + ["when", "cap", "dedupe_group"] + _RULE_V2
_SUBJECT_RULE_REQUIRED = ["id", "dimension", "points"]
_SUBJECT_RULE_OPTIONAL = ["when", "unless_any"]
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _version(where: _Where, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise where.error(f"must be text such as \"2026.1\" (quote it), got {_describe(value)}",
                          "version")
    if isinstance(value, (int, Decimal)):
        # Unquoted: this loader has kept the decimal text as written (2026.10 stays 2026.10).
        return str(value)
    return _text(where, value, "version").strip()


def _month(where: _Where, value: Any) -> str:
    if isinstance(value, _dt.date):  # 2026-01-01 (YAML date): its month
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, str):
        match = _MONTH.fullmatch(value.strip())
        if match and 1 <= int(match.group(2)) <= 12:
            return value.strip()
    raise where.error(f"must be a month YYYY-MM (or a date), got {_describe(value)}",
                      "effective_from")


def _dimensions(where: _Where, node: _Map) -> dict[str, Dimension]:
    raw = _mapping(where, node["dimensions"], "dimensions")
    if not raw:
        raise where.error("declares no dimension", "dimensions")
    for key, line in raw.duplicates:
        raise where.error(f"dimension {key!r} is declared twice", "dimensions", line=line)
    dimensions: dict[str, Dimension] = {}
    for dim_id, entry in raw.items():
        _text(_Where(where.file, "", raw), dim_id, "dimensions", key=dim_id)
        dim_where = where.at(f"dimension '{dim_id}': ", entry)
        if isinstance(entry, str):  # shorthand `law: 守法履约`
            dimensions[dim_id] = Dimension(id=dim_id, title=_text(dim_where, entry, "title"))
            continue
        if not isinstance(entry, _Map):
            raise _Where(where.file, f"dimension '{dim_id}': ", raw).error(
                f"must be {{title: ..., cap: ...}} or a title, got {_describe(entry)}",
                "title", key=dim_id)
        _check_keys(dim_where, entry, ["title"], ["cap"], "a dimension")
        dimensions[dim_id] = Dimension(id=dim_id, title=_text(dim_where, entry["title"], "title"),
                                       cap=_positive_cap(dim_where, entry))
    return dimensions


def _grades(where: _Where, node: _Map) -> tuple[Grade, ...]:
    raw = node["grades"]
    if not isinstance(raw, list) or not raw:
        raise where.error(f"must be a non-empty list of grades, highest first, got "
                          f"{_describe(raw)}", "grades")
    grades: list[Grade] = []
    for position, entry in enumerate(raw, 1):
        name = entry.get("grade") if isinstance(entry, _Map) else None
        label = f"grade '{name}': " if isinstance(name, str) else f"grade #{position}: "
        grade_where = where.at(label, entry)
        if not isinstance(entry, _Map):
            raise where.error(f"grade #{position} must be {{grade, label, min}}, got "
                              f"{_describe(entry)}", "grades")
        _check_keys(grade_where, entry, ["grade", "label"], ["min"], "a grade")
        grade = _text(grade_where, entry["grade"], "grade")
        grade_label = _text(grade_where, entry["label"], "label")
        minimum = _optional_number(grade_where, entry, "min")
        last = position == len(raw)
        if last and minimum is not None:
            raise grade_where.error(
                f"the last grade must have no min (it takes every lower score): with min "
                f"{minimum}, a score below {minimum} would have no grade", "min")
        if not last and minimum is None:
            raise grade_where.error(
                "missing: only the last grade may have no min (a grade without min takes every "
                "score, leaving the grades after it unreachable)", "min", line=entry.line)
        if grades and minimum is not None and minimum >= grades[-1].min:  # type: ignore[operator]
            raise grade_where.error(
                f"grades must be highest first with strictly descending min: {minimum} is not "
                f"below grade '{grades[-1].grade}' min {grades[-1].min}", "min")
        if any(g.grade == grade for g in grades):
            raise grade_where.error(f"grade {grade!r} is listed twice", "grade")
        grades.append(Grade(grade=grade, label=grade_label, min=minimum))
    return tuple(grades)


def _tiers(where: _Where, value: Any) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise where.error(f"must be a non-empty list of {{at_least, points}}, got "
                          f"{_describe(value)}", "tiers")
    tiers: list[Tier] = []
    for position, entry in enumerate(value, 1):
        prefix = f"tiers[{position}]."
        if not isinstance(entry, _Map):
            raise where.error(f"tier #{position} must be {{at_least: ..., points: ...}}, got "
                              f"{_describe(entry)}", "tiers")
        tier_where = _Where(where.file, where.owner, entry)
        _check_keys(tier_where, entry, ["at_least", "points"], [], "a tier", prefix=prefix)
        at_least = _number(tier_where, entry["at_least"], prefix + "at_least", key="at_least")
        points = _number(tier_where, entry["points"], prefix + "points", key="points")
        if tiers and at_least <= tiers[-1].at_least:
            raise tier_where.error(
                f"tiers must be strictly increasing in at_least: {at_least} follows "
                f"{tiers[-1].at_least}", prefix + "at_least", key="at_least")
        tiers.append(Tier(at_least=at_least, points=points))
    return tuple(tiers)


def _rule(where: _Where, position: int, entry: Any, catalogue: Catalogue,
          dimensions: dict[str, Dimension]) -> Rule:
    rule_id = entry.get("id") if isinstance(entry, _Map) else None
    owner = f"rule '{rule_id}': " if isinstance(rule_id, str) and rule_id.strip() \
        else f"rule #{position}: "
    if not isinstance(entry, _Map):
        raise where.error(f"rule #{position} must be a mapping, got {_describe(entry)}", "rules")
    rw = where.at(owner, entry)
    if "unless_any" in entry:
        raise rw.error("only a subject rule (under `subject_rules`) can have unless_any; a "
                       "finding rule is scored by its findings", "unless_any")
    growing = "growth" in entry
    # a growth rule's points come from time, not from a validity window: valid_months optional
    required = [k for k in _RULE_REQUIRED if not (growing and k == "valid_months")]
    optional = _RULE_OPTIONAL + (["valid_months"] if growing else [])
    _check_keys(rw, entry, required, optional, "a rule")
    rule_id = _text(rw, entry["id"], "id")

    item_code = _text(rw, entry["item"], "item")
    if item_code not in catalogue:
        raise rw.error(f"unknown item {item_code!r} (not in the catalogue "
                       f"{_display(catalogue.path) if catalogue.path else ''}; known: "
                       f"{', '.join(catalogue.items)})", "item")
    item = catalogue[item_code]

    when: dict[str, str] = {}
    if entry.get("when") is not None:
        raw_when = _mapping(rw, entry["when"], "when")
        if not raw_when:
            raise rw.error("is empty; leave `when` out to match every finding of the item", "when")
        for key, line in raw_when.duplicates:
            raise rw.error(f"'{key}' is written twice", "when", line=line)
        for key, value in raw_when.items():
            if key != "level":
                raise rw.error(f"can only test 'level' (equality), not {key!r}", "when",
                               line=raw_when.key_lines.get(key))
            level = _text(rw, value, "when.level", key="when")
            if item.levels is None:
                raise rw.error(f"item {item_code} has no levels, so `when: {{level: {level}}}` "
                               f"can never match", "when")
            if level not in item.levels:
                raise rw.error(f"unknown level {level!r} for item {item_code} (known: "
                               f"{', '.join(item.levels)})", "when")
            when["level"] = level

    dimension = _text(rw, entry["dimension"], "dimension")
    if dimension not in dimensions:
        raise rw.error(f"unknown dimension {dimension!r} (known: {', '.join(dimensions)})",
                       "dimension")

    given = [name for name in _RULE_EXCLUSIVE if name in entry]
    points = points_per_unit = None
    tiers = None
    growth = None
    if growing:
        if given:
            raise rw.error(f"growth together with {' and '.join(given)}: a growth rule takes its "
                           f"points from `growth` (points per full period), so it has no "
                           f"{given[0]}", given[0])
        growth = _growth(rw, entry["growth"])
        for name in ("requires", "repair", "dedupe_group"):
            if entry.get(name) is not None:
                raise rw.error(f"a growth rule cannot have {name}: it counts from the earliest "
                               f"current finding of its item, whatever other rules make of it",
                               name)
    elif len(given) != 1:
        if not given:
            raise rw.error("missing: a rule needs exactly one of points, points_per_unit, tiers",
                           "points", line=entry.line)
        raise rw.error(f"a rule takes exactly one of points, points_per_unit, tiers; this one "
                       f"has {' and '.join(given)}", given[1])
    else:
        kind = given[0]
        if kind == "points":
            points = _number(rw, entry["points"], "points")
        elif kind == "points_per_unit":
            points_per_unit = _number(rw, entry["points_per_unit"], "points_per_unit")
        else:
            tiers = _tiers(rw, entry["tiers"])
        if kind != "points" and item.quantity is None:
            raise rw.error(f"item {item_code} carries no quantity, so it cannot be scored with "
                           f"{kind} (use points)", kind)

    months = entry.get("valid_months")
    if months is not None or not growing:
        if isinstance(months, bool) or not isinstance(months, int):
            raise rw.error(f"must be a whole number of months, got {_describe(months)}",
                           "valid_months")
        if months <= 0:
            raise rw.error(f"must be a positive number of months, got {months}", "valid_months")

    dedupe_group = None
    if entry.get("dedupe_group") is not None:
        dedupe_group = _text(rw, entry["dedupe_group"], "dedupe_group")

    requires = _requirement(rw, entry["requires"]) if entry.get("requires") is not None else None
    repair = None
    if entry.get("repair") is not None:
        if tiers is not None:
            raise rw.error("a tiers rule has no per-finding points for repair to end; repair "
                           "applies to a rule with points or points_per_unit", "repair")
        repair = _repair(rw, entry["repair"], catalogue)

    return Rule(id=rule_id, item=item_code, when=when, dimension=dimension, points=points,
                points_per_unit=points_per_unit, tiers=tiers, valid_months=months,
                cap=_positive_cap(rw, entry), dedupe_group=dedupe_group, requires=requires,
                repair=repair, growth=growth)


def _positive_int(where: _Where, value: Any, fld: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"must be a whole number of {what}, got {_describe(value)}", fld)
    if value <= 0:
        raise where.error(f"must be a positive number of {what}, got {value}", fld)
    return value


def _rule_ids(where: _Where, value: Any, fld: str) -> tuple[str, ...]:
    """A non-empty list of rule ids (checked against the file's rules once all are read)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise where.error(f"must be a non-empty list of rule ids, got {_describe(value)}", fld)
    ids = tuple(_text(where, v, fld) for v in value)
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise where.error(f"rule {repeated[0]!r} is listed twice", fld)
    return ids


def _requirement(where: _Where, value: Any) -> Requirement:
    node = _mapping(where, value, "requires")
    _check_keys(where, node, ["rules"], ["same"], "requires", prefix="requires.")
    same = node.get("same", "case_ref")
    if same != "case_ref":
        raise where.error(f"can only be case_ref (the finding and the one it requires concern "
                          f"the same case), got {_describe(same)}", "requires.same")
    return Requirement(rules=_rule_ids(where, node["rules"], "requires.rules"))


def _repair(where: _Where, value: Any, catalogue: Catalogue) -> Repair:
    node = _mapping(where, value, "repair")
    _check_keys(where, node, ["energy"], [], "repair", prefix="repair.")
    energy = _mapping(where, node["energy"], "repair.energy")
    if not energy:
        raise where.error("lists no item (ITEM: units per repair)", "repair.energy")
    for key, line in energy.duplicates:
        raise where.error(f"item {key!r} is listed twice", "repair.energy", line=line)
    pairs = []
    for item_code, units in energy.items():
        if item_code not in catalogue:
            raise where.error(f"unknown item {item_code!r} (not in the catalogue; known: "
                              f"{', '.join(catalogue.items)})", "repair.energy")
        amount = _number(where, units, f"repair.energy.{item_code}", key="repair")
        if amount <= 0:
            raise where.error(f"must be a positive quantity per repair, got {amount}",
                              f"repair.energy.{item_code}", key="repair")
        pairs.append((item_code, amount))
    return Repair(energy=tuple(pairs))


def _growth(where: _Where, value: Any) -> Growth:
    node = _mapping(where, value, "growth")
    _check_keys(where, node, ["every_months", "points"], ["cap", "reset_by"], "growth",
                prefix="growth.")
    every = _positive_int(where, node["every_months"], "growth.every_months", "months")
    points = _number(where, node["points"], "growth.points", key="growth")
    cap = _optional_number(where, node, "cap")
    if cap is not None and cap <= 0:
        raise where.error(f"must be a positive number (an absolute bound on the growth points), "
                          f"got {cap}", "growth.cap", key="growth")
    reset_by: tuple[str, ...] = ()
    if node.get("reset_by") is not None:
        reset_by = _rule_ids(where, node["reset_by"], "growth.reset_by")
    return Growth(every_months=every, points=points, cap=cap, reset_by=reset_by)


def _rules(where: _Where, node: _Map, catalogue: Catalogue,
           dimensions: dict[str, Dimension]) -> tuple[Rule, ...]:
    raw = node["rules"]
    if not isinstance(raw, list):
        raise where.error(f"must be a list of rules, got {_describe(raw)}", "rules")
    rules: list[Rule] = []
    lines: dict[str, int | None] = {}
    for position, entry in enumerate(raw, 1):
        rule = _rule(where, position, entry, catalogue, dimensions)
        rw = where.at(f"rule '{rule.id}': ", entry)
        if rule.id in lines:
            raise rw.error(f"duplicate rule id (first at line {lines[rule.id]})", "id")
        for earlier in rules:
            # a growth rule observes its item's findings without taking them from other rules
            if earlier.item != rule.item or earlier.growth or rule.growth:
                continue
            if not earlier.when:
                what = f"every {rule.item} finding"
                fld = "when" if rule.when else "item"
            elif earlier.when == rule.when:
                what = f"every {rule.item} finding with level {rule.level}"
                fld = "when"
            else:
                continue
            raise rw.error(f"the rule can never match: earlier rule '{earlier.id}' (line "
                           f"{lines[earlier.id]}) takes {what} (a finding takes the first "
                           f"matching rule in file order)", fld)
        lines[rule.id] = entry.line
        rules.append(rule)
    # a dedupe group compares findings' values: per-finding points, or the quantity for a tiers
    # rule (docs/contracts.md). Mixing the two in one group would compare points with hours.
    kinds: dict[str, Rule] = {}
    for rule, entry in zip(rules, raw):
        if rule.dedupe_group is None:
            continue
        first = kinds.setdefault(rule.dedupe_group, rule)
        if (first.kind == "tiers") != (rule.kind == "tiers"):
            raise where.at(f"rule '{rule.id}': ", entry).error(
                f"dedupe group {rule.dedupe_group!r} mixes a tiers rule with a per-finding rule "
                f"(rule '{first.id}'); their values (quantity vs points) cannot be compared",
                "dedupe_group")
    _check_rule_references(where, rules, raw)
    return tuple(rules)


def _unknown_rule(where: _Where, fld: str, name: str, rules: dict[str, Any],
                  subject_ids: Iterable[str] = ()) -> RuleFileError:
    if name in set(subject_ids):
        return where.error(f"'{name}' is a subject rule; only finding rules (under `rules`) have "
                           f"findings to look for", fld)
    return where.error(f"unknown rule '{name}' (rules: {', '.join(rules)})", fld)


def _check_rule_references(where: _Where, rules: list[Rule], raw: list) -> None:
    """`requires` and `growth.reset_by` name rules of the file; `requires` has no cycle."""
    by_id = {rule.id: rule for rule in rules}
    entries = {rule.id: entry for rule, entry in zip(rules, raw)}
    for rule in rules:
        rw = where.at(f"rule '{rule.id}': ", entries[rule.id])
        named = [("requires.rules", n) for n in (rule.requires.rules if rule.requires else ())]
        named += [("growth.reset_by", n) for n in (rule.growth.reset_by if rule.growth else ())]
        for fld, name in named:
            if name not in by_id:
                raise _unknown_rule(rw, fld, name, by_id)
    # a cycle of `requires` (a requires b requires a) can never be satisfied in file terms
    for start in rules:
        path = [start.id]
        stack = [(start.id, iter(start.requires.rules if start.requires else ()))]
        while stack:
            _, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                continue
            if child == start.id:
                rw = where.at(f"rule '{start.id}': ", entries[start.id])
                raise rw.error(f"a cycle of requires: {' → '.join(path + [child])}",
                               "requires.rules", key="requires")
            if child in path:
                continue  # a cycle not through `start`: reported when it is the start
            child_rule = by_id[child]
            path.append(child)
            stack.append((child, iter(child_rule.requires.rules if child_rule.requires else ())))


def _subject_rules(where: _Where, node: _Map, rules: tuple[Rule, ...],
                   dimensions: dict[str, Dimension]) -> tuple[SubjectRule, ...]:
    raw = node.get("subject_rules")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.error(f"must be a list of subject rules, got {_describe(raw)}",
                          "subject_rules")
    finding_ids = {rule.id: rule for rule in rules}
    lines: dict[str, int | None] = {rule.id: None for rule in rules}
    result: list[SubjectRule] = []
    raw_ids = [e.get("id") for e in raw if isinstance(e, _Map)]
    for position, entry in enumerate(raw, 1):
        if not isinstance(entry, _Map):
            raise where.error(f"subject rule #{position} must be a mapping, got "
                              f"{_describe(entry)}", "subject_rules")
        rule_id = entry.get("id")
        owner = f"subject rule '{rule_id}': " if isinstance(rule_id, str) and rule_id.strip() \
            else f"subject rule #{position}: "
        sw = where.at(owner, entry)
        if "item" in entry:
            raise sw.error("a subject rule scores the person, not findings: it has no item "
                           "(put a rule with an item under `rules`)", "item")
        _check_keys(sw, entry, _SUBJECT_RULE_REQUIRED, _SUBJECT_RULE_OPTIONAL, "a subject rule")
        rule_id = _text(sw, entry["id"], "id")
        if rule_id in lines:
            first = lines[rule_id]
            where_first = f"line {first}" if first else "under `rules`"
            raise sw.error(f"duplicate rule id (first at {where_first}): rule ids are shared by "
                           f"rules and subject rules", "id")
        dimension = _text(sw, entry["dimension"], "dimension")
        if dimension not in dimensions:
            raise sw.error(f"unknown dimension {dimension!r} (known: {', '.join(dimensions)})",
                           "dimension")
        points = _number(sw, entry["points"], "points")
        when: list[Condition] = []
        if entry.get("when") is not None:
            raw_when = _mapping(sw, entry["when"], "when")
            if not raw_when:
                raise sw.error("is empty; leave `when` out to give the points to every person",
                               "when")
            for key, line in raw_when.duplicates:
                raise sw.error(f"'{key}' is written twice", "when", line=line)
            for attribute, value in raw_when.items():
                when.append(_condition(sw, raw_when, attribute, value))
        unless = None
        if entry.get("unless_any") is not None:
            un = _mapping(sw, entry["unless_any"], "unless_any")
            _check_keys(sw, un, ["rules", "within_months"], [], "unless_any",
                        prefix="unless_any.")
            names = _rule_ids(sw, un["rules"], "unless_any.rules")
            for name in names:
                if name not in finding_ids:
                    raise _unknown_rule(sw, "unless_any.rules", name, finding_ids, raw_ids)
            unless = Unless(rules=names, within_months=_positive_int(
                sw, un["within_months"], "unless_any.within_months", "months"))
        lines[rule_id] = entry.line
        result.append(SubjectRule(id=rule_id, when=tuple(when), unless_any=unless,
                                  dimension=dimension, points=points))
    return tuple(result)


def _condition(where: _Where, raw_when: _Map, attribute: Any, value: Any) -> Condition:
    line = raw_when.key_lines.get(attribute)
    fld = f"when.{attribute}"
    if isinstance(attribute, str) and attribute.strip().lower() in _PROTECTED:
        raise where.error(f"a score must not depend on {attribute} (a protected personal "
                          f"characteristic); subject rules may test only "
                          f"{', '.join(SUBJECT_ATTRIBUTES)}", fld, line=line)
    if attribute not in SUBJECT_ATTRIBUTES:
        raise where.error(f"unknown person attribute {attribute!r} (a subject rule may test "
                          f"{', '.join(SUBJECT_ATTRIBUTES)})", fld, line=line)
    if isinstance(value, _Map):
        if attribute in _EQUALITY_ONLY:
            raise where.error(f"{attribute} is tested by equality only (e.g. "
                              f"`{attribute}: {'hukou' if attribute == 'residency' else '371002'}`)"
                              f", not by a range", fld, line=line)
        sub = _Where(where.file, where.owner, value)
        _check_keys(sub, value, [], ["at_least", "below"], f"the test of {attribute}",
                    prefix=f"{fld}.")
        if not value:
            raise where.error("is empty: give at_least and/or below, or a value", fld, line=line)
        at_least = below = None
        if value.get("at_least") is not None:
            at_least = _number(sub, value["at_least"], f"{fld}.at_least", key="at_least")
        if value.get("below") is not None:
            below = _number(sub, value["below"], f"{fld}.below", key="below")
        if at_least is not None and below is not None and below <= at_least:
            raise where.error(f"can never hold: below {below} is not above at_least {at_least}",
                              fld, line=line)
        return Condition(attribute=attribute, at_least=at_least, below=below)
    if attribute == "residency":
        residency = _text(where, value, fld, key=None)
        if residency not in RESIDENCIES:
            raise where.error(f"unknown residency {residency!r} (known: {', '.join(RESIDENCIES)})",
                              fld, line=line)
        return Condition(attribute=attribute, equals=residency)
    if attribute == "district":
        if isinstance(value, bool) or not isinstance(value, (str, int)) or \
                not str(value).strip().isdigit():
            raise where.error(f"must be a district code such as 371002, got {_describe(value)}",
                              fld, line=line)
        return Condition(attribute=attribute, equals=str(value).strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise where.error(f"must be a whole number (or {{at_least: n}} / {{below: n}}), got "
                          f"{_describe(value)}", fld, line=line)
    return Condition(attribute=attribute, equals=value)


def load_scheme(path: Path, catalogue: Catalogue, draft: bool = False) -> Scheme:
    """Read and check one scheme file (SPEC §4); refuse it with a RuleFileError. A draft's file
    name starts with the id of the scheme it revises (drafts/haibei-2027.yaml: scheme haibei)."""
    path = Path(path)
    data, document = _read(path)
    where = _Where(_display(path))
    if document is None:
        raise where.error("the file is empty")
    if not isinstance(document, _Map):
        raise where.error(f"must be a mapping (scheme, title, version, ...), got "
                          f"{_describe(document)}")
    where = _Where(where.file, "", document)
    _check_keys(where, document, _SCHEME_REQUIRED, _SCHEME_OPTIONAL, "a scheme file")

    scheme_id = _text(where, document["scheme"], "scheme")
    if draft and not (path.stem == scheme_id or path.stem.startswith(f"{scheme_id}-")):
        raise where.error(f"is {scheme_id!r}, but a draft's file name starts with the id of the "
                          f"scheme it revises ({scheme_id}-….yaml), not {path.name!r}", "scheme")
    if not draft and scheme_id != path.stem:
        raise where.error(f"is {scheme_id!r} but must equal the file name without .yaml "
                          f"({path.stem!r})", "scheme")
    title = _text(where, document["title"], "title")
    version = _version(where, document["version"])
    effective_from = _month(where, document["effective_from"])
    base_score = _number(where, document["base_score"], "base_score")
    min_score = _optional_number(where, document, "min_score")
    max_score = _optional_number(where, document, "max_score")
    if min_score is not None and max_score is not None and min_score > max_score:
        raise where.error(f"min_score {min_score} is above max_score {max_score}", "min_score")
    dimensions = _dimensions(where, document)
    grades = _grades(where, document)
    rules = _rules(where, document, catalogue, dimensions)
    subject_rules = _subject_rules(where, document, rules, dimensions)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return Scheme(scheme=scheme_id, title=title, version=version, effective_from=effective_from,
                  base_score=base_score, min_score=min_score, max_score=max_score,
                  dimensions=dimensions, grades=grades, rules=rules,
                  rules_version=f"{version}+{digest}", path=path,
                  subject_rules=subject_rules)


def available_schemes(rules_dir: Path) -> dict[str, Path]:
    """Scheme name → file: every rules_dir/*.yaml except the catalogue, sorted by name."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RuleFileError(f"{_display(rules_dir)}: rules folder not found")
    return {p.stem: p for p in sorted(rules_dir.glob("*.yaml"))
            if p.name != CATALOGUE_FILE and p.is_file()}


def load_schemes(rules_dir: Path, names: list[str] | None = None) -> dict[str, Scheme]:
    """Load the schemes of a rules folder: all of them (by name), or the ones named.

    Only the named files are read, so a draft scheme elsewhere in the folder does not stop a
    run of the others; an unknown name is an UnknownSchemeError listing the available ones.
    """
    rules_dir = Path(rules_dir)
    available = available_schemes(rules_dir)
    if names is None:
        chosen = list(available)
    else:
        chosen = list(dict.fromkeys(name.strip() for name in names))
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise UnknownSchemeError(
                f"{_display(rules_dir)}: unknown scheme{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)} (available: "
                f"{', '.join(available) or 'none'})")
    catalogue = load_catalogue(rules_dir)
    return {name: load_scheme(available[name], catalogue) for name in chosen}


DRAFTS_FOLDER = "drafts"
RECOGNITION_FOLDER = "recognition"


def available_drafts(rules_dir: Path) -> dict[str, Path]:
    """Draft name (file name without .yaml) → file, for rules_dir/drafts/*.yaml."""
    folder = Path(rules_dir) / DRAFTS_FOLDER
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()}


def load_draft(path: Path, rules_dir: Path | None = None) -> Scheme:
    """A candidate rule file (policy tools): checked exactly like an adopted scheme against the
    catalogue of `rules_dir` (default: the folder above drafts/)."""
    path = Path(path)
    rules_dir = Path(rules_dir) if rules_dir else path.resolve().parent.parent
    return load_scheme(path, load_catalogue(rules_dir), draft=True)


@dataclass(frozen=True)
class Recognition:
    """A grade recognition table (互认): every grade of scheme `source` → a grade of `target`."""

    source: str
    target: str
    grades: dict[str, str]
    path: Path


def available_recognitions(rules_dir: Path) -> dict[tuple[str, str], Path]:
    """(from, to) → file, for rules_dir/recognition/<from>__<to>.yaml."""
    folder = Path(rules_dir) / RECOGNITION_FOLDER
    out = {}
    for p in sorted(folder.glob("*.yaml")):
        source, sep, target = p.stem.partition("__")
        if sep and source and target:
            out[(source, target)] = p
    return out


def load_recognition(path: Path, schemes: dict[str, Scheme]) -> Recognition:
    """Read and check `<from>__<to>.yaml` (`grades: {<from grade>: <to grade>}`): both schemes
    adopted, every grade of <from> mapped, to a grade <to> has. RuleFileError otherwise."""
    path = Path(path)
    _, document = _read(path)
    where = _Where(_display(path))
    source, sep, target = path.stem.partition("__")
    if not sep:
        raise where.error("a recognition table is named <from>__<to>.yaml")
    for role, name in (("from", source), ("to", target)):
        if name not in schemes:
            raise where.error(f"the {role} scheme {name!r} is not an adopted scheme "
                              f"(adopted: {', '.join(schemes)})")
    if not isinstance(document, _Map) or not isinstance(document.get("grades"), dict):
        raise where.error("must be a mapping with 'grades: {<from grade>: <to grade>, ...}'",
                          "grades")
    where = _Where(where.file, "", document)
    grades = {str(k): str(v) for k, v in document["grades"].items()}
    have = [g.grade for g in schemes[source].grades]
    targets = {g.grade for g in schemes[target].grades}
    missing = [g for g in have if g not in grades]
    if missing:
        raise where.error(f"grade(s) {', '.join(missing)} of {source} are not mapped", "grades")
    unknown = sorted(set(grades) - set(have))
    if unknown:
        raise where.error(f"{source} has no grade(s) {', '.join(unknown)}", "grades")
    wrong = sorted({v for v in grades.values() if v not in targets})
    if wrong:
        raise where.error(f"{target} has no grade(s) {', '.join(wrong)}", "grades")
    return Recognition(source, target, grades, path)
