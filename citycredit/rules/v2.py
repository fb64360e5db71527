"""Format v2 additions to a scheme file (SPEC §4.1, docs/rule-format.md): checked here.

On a finding rule: `requires` (counts only against an earlier finding of the same case),
`repair` (repair energy from listed items ends a finding early) and `growth` (points per full k
months since the earliest finding, reset by listed rules); on the scheme: `subject_rules`
(points per person by residency, district, age, months_resident, optionally `unless_any` recent
findings). A v1 file uses none of them and loads exactly as before (citycredit/rules/v1.py).
"""

from __future__ import annotations

from typing import Any, Iterable

from .model import (RESIDENCIES, SUBJECT_ATTRIBUTES, Catalogue, Condition, Dimension, Growth,
                    Repair, Requirement, Rule, SubjectRule, Unless)
from .reading import (RuleFileError, _check_keys, _describe, _four_decimals, _Map, _mapping,
                      _number, _optional_number, _points, _text, _Where)

_EQUALITY_ONLY = ("residency", "district")
# Personal characteristics a score must never depend on (sex and anything like it).
_PROTECTED = ("sex", "gender", "ethnicity", "ethnic_group", "nation", "nationality", "minzu",
              "race", "religion", "faith", "marital_status", "pregnancy", "sexual_orientation",
              "disability", "health", "political_affiliation", "birthplace", "native_place")
_SUBJECT_RULE_REQUIRED = ["id", "dimension", "points"]
_SUBJECT_RULE_OPTIONAL = ["when", "unless_any"]


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
        amount = _four_decimals(where, _number(where, units, f"repair.energy.{item_code}",
                                               key="repair"), f"repair.energy.{item_code}",
                                key="repair")
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
    points = _four_decimals(where, _points(where, node["points"], "growth.points",
                                           key="growth"), "growth.points", key="growth")
    cap = _four_decimals(where, _optional_number(where, node, "cap"), "cap")
    if cap is not None and cap <= 0:
        raise where.error(f"must be a positive number (an absolute bound on the growth points), "
                          f"got {cap}", "growth.cap", key="growth")
    reset_by: tuple[str, ...] = ()
    if node.get("reset_by") is not None:
        reset_by = _rule_ids(where, node["reset_by"], "growth.reset_by")
    return Growth(every_months=every, points=points, cap=cap, reset_by=reset_by)

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
        points = _four_decimals(sw, _points(sw, entry["points"], "points"), "points")
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

