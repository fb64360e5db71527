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
class Rule:
    id: str
    item: str
    when: dict[str, str] = field(hash=False)  # {} or {'level': value}
    dimension: str
    points: Decimal | None
    points_per_unit: Decimal | None
    tiers: tuple[Tier, ...] | None
    valid_months: int
    cap: Decimal | None
    dedupe_group: str | None

    @property
    def kind(self) -> str:
        """'points' | 'points_per_unit' | 'tiers' (exactly one is set)."""
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
        """A finding's own value: `points`, or `quantity × points_per_unit`; None for tiers rules
        (and for a points_per_unit rule when the finding carries no quantity)."""
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

    def grade_for(self, score: Decimal | int) -> Grade:
        """The first grade (highest first) whose `min` ≤ score; the last grade otherwise."""
        for grade in self.grades:
            if grade.min is None or score >= grade.min:
                return grade
        return self.grades[-1]  # unreachable for a loaded scheme (the last grade has no min)

    def rule_for(self, item_code: str, level: str | None) -> Rule | None:
        """The first rule in file order that a finding of this item and level takes, or None."""
        for rule in self.rules:
            if rule.matches(item_code, level):
                return rule
        return None

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}


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
_SCHEME_OPTIONAL = ["min_score", "max_score"]
_RULE_REQUIRED = ["id", "item", "dimension", "valid_months"]
_RULE_EXCLUSIVE = ["points", "points_per_unit", "tiers"]
_RULE_OPTIONAL = _RULE_EXCLUSIVE + ["when", "cap", "dedupe_group"]
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
    _check_keys(rw, entry, _RULE_REQUIRED, _RULE_OPTIONAL, "a rule")
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
    if len(given) != 1:
        if not given:
            raise rw.error("missing: a rule needs exactly one of points, points_per_unit, tiers",
                           "points", line=entry.line)
        raise rw.error(f"a rule takes exactly one of points, points_per_unit, tiers; this one "
                       f"has {' and '.join(given)}", given[1])
    kind = given[0]
    points = points_per_unit = None
    tiers = None
    if kind == "points":
        points = _number(rw, entry["points"], "points")
    elif kind == "points_per_unit":
        points_per_unit = _number(rw, entry["points_per_unit"], "points_per_unit")
    else:
        tiers = _tiers(rw, entry["tiers"])
    if kind != "points" and item.quantity is None:
        raise rw.error(f"item {item_code} carries no quantity, so it cannot be scored with "
                       f"{kind} (use points)", kind)

    months = entry["valid_months"]
    if isinstance(months, bool) or not isinstance(months, int):
        raise rw.error(f"must be a whole number of months, got {_describe(months)}",
                       "valid_months")
    if months <= 0:
        raise rw.error(f"must be a positive number of months, got {months}", "valid_months")

    dedupe_group = None
    if entry.get("dedupe_group") is not None:
        dedupe_group = _text(rw, entry["dedupe_group"], "dedupe_group")

    return Rule(id=rule_id, item=item_code, when=when, dimension=dimension, points=points,
                points_per_unit=points_per_unit, tiers=tiers, valid_months=months,
                cap=_positive_cap(rw, entry), dedupe_group=dedupe_group)


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
            if earlier.item != rule.item:
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
    return tuple(rules)


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
    digest = hashlib.sha256(data).hexdigest()[:12]
    return Scheme(scheme=scheme_id, title=title, version=version, effective_from=effective_from,
                  base_score=base_score, min_score=min_score, max_score=max_score,
                  dimensions=dimensions, grades=grades, rules=rules,
                  rules_version=f"{version}+{digest}", path=path)


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
