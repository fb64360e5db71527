"""The catalogue and scheme files of SPEC §3–§4 (format v1), checked field by field.

    catalogue = load_catalogue(Path("rules"))
    scheme = load_scheme(Path("rules/haibei.yaml"), catalogue)

A finding rule's v2 fields and the scheme's `subject_rules` are checked by
citycredit/rules/v2.py; every refusal is a RuleFileError naming file, rule, field and line.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from .model import Catalogue, Dimension, Grade, Item, Rule, Scheme, Tier
from .reading import (_check_keys, _describe, _display, _four_decimals, _Map, _mapping,
                      _number, _optional_number, _points, _positive_cap, _text, _top_mapping,
                      _Where)
from .v2 import _check_rule_references, _growth, _repair, _requirement, _subject_rules

CATALOGUE_FILE = "catalogue.yaml"


def _catalogue_path(rules_dir: Path) -> Path:
    rules_dir = Path(rules_dir)
    return rules_dir if rules_dir.is_file() else rules_dir / CATALOGUE_FILE


def load_catalogue(rules_dir: Path) -> Catalogue:
    """Read `<rules_dir>/catalogue.yaml` (or the file itself, if a file is given)."""
    path = _catalogue_path(rules_dir)
    _, top, where = _top_mapping(path, "the file is empty (expected `items:`)",
                                 "must be a mapping with `items:`")
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


_SCHEME_REQUIRED = ["scheme", "title", "version", "effective_from", "base_score", "dimensions",
                    "grades", "rules"]
_SCHEME_OPTIONAL = ["min_score", "max_score", "subject_rules"]
_RULE_REQUIRED = ["id", "item", "dimension", "valid_months"]
_RULE_EXCLUSIVE = ["points", "points_per_unit", "tiers"]
_RULE_V2 = ["requires", "repair", "growth"]
_RULE_OPTIONAL = _RULE_EXCLUSIVE + ["when", "cap", "dedupe_group"] + _RULE_V2
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
        points = _points(tier_where, entry["points"], prefix + "points", key="points")
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
            points = _four_decimals(rw, _points(rw, entry["points"], "points"), "points")
        elif kind == "points_per_unit":
            points_per_unit = _four_decimals(
                rw, _number(rw, entry["points_per_unit"], "points_per_unit"), "points_per_unit")
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

def load_scheme(path: Path, catalogue: Catalogue, draft: bool = False,
                adopted_as: str | None = None) -> Scheme:
    """Read and check one scheme file (SPEC §4); refuse it with a RuleFileError. A draft's file
    name starts with the id of the scheme it revises (drafts/haibei-2027.yaml: scheme haibei);
    an earlier adopted version of scheme `adopted_as` is named by its effective_from
    (adopted/haibei/2026-01.yaml, citycredit/rules/adopted.py)."""
    path = Path(path)
    data, document, where = _top_mapping(path, "the file is empty",
                                         "must be a mapping (scheme, title, version, ...)")
    _check_keys(where, document, _SCHEME_REQUIRED, _SCHEME_OPTIONAL, "a scheme file")

    scheme_id = _text(where, document["scheme"], "scheme")
    if adopted_as is not None:
        if scheme_id != adopted_as:
            raise where.error(f"is {scheme_id!r}, but the file is kept among the adopted versions "
                              f"of {adopted_as!r}", "scheme")
    elif draft and not (path.stem == scheme_id or path.stem.startswith(f"{scheme_id}-")):
        raise where.error(f"is {scheme_id!r}, but a draft's file name starts with the id of the "
                          f"scheme it revises ({scheme_id}-….yaml), not {path.name!r}", "scheme")
    elif not draft and scheme_id != path.stem:
        raise where.error(f"is {scheme_id!r} but must equal the file name without .yaml "
                          f"({path.stem!r})", "scheme")
    title = _text(where, document["title"], "title")
    version = _version(where, document["version"])
    effective_from = _month(where, document["effective_from"])
    if adopted_as is not None and effective_from != path.stem:
        raise where.error(f"is {effective_from}, but an adopted version's file is named by its "
                          f"effective_from ({effective_from}.yaml, not {path.name})",
                          "effective_from")
    base_score = _points(where, document["base_score"], "base_score")
    min_score, max_score = (None if document.get(f) is None else _points(where, document[f], f)
                            for f in ("min_score", "max_score"))
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

