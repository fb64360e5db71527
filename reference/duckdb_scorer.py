"""Independent DuckDB-SQL reference scorer (SPEC §4, docs/contracts.md "Reference scorer").

Used by the differential test (must agree with the Spark scorer on every subject's score and grade)
and by the benchmark. It shares no code with citycredit/scoring or citycredit/rules/: the rule
YAML is parsed here, numbers are read from their literal text into exact ``Decimal`` values, and all
point arithmetic runs in DuckDB DECIMAL (never DOUBLE).

Inputs are the *silver* tables with every delivered version; the as-of-M filtering is done here:

    findings, appeals:  known_from <= M AND (known_until IS NULL OR known_until > M)
    optouts:            the same filter on whichever of known_from / known_until exist
    population:         snapshot_month = M, status = 'active', add_months(birth_date, 216) <= A

where A is the last day of M.  Evaluation (SPEC §4):

1.  current findings; drop revoked, appeal upheld (resolved_on <= A), opted out (requested_on <= A:
    the person is not scored at all);
    mask findings under an appeal open on A filed more than N Chinese working days before A;
2.  first rule in file order whose item and ``when`` (equality on level) match;
3.  counts iff occurred_on <= A <= min(valid_until, add_months(occurred_on, valid_months) - 1 day);
4.  points = ``points`` or quantity x ``points_per_unit``;
5.  highest-value dedupe inside a dedupe_group per subject and behaviour;
6.  tiers on the rule's summed quantity, rule cap, dimension cap (absolute, i.e. [-cap, cap]);
7.  base + sum of dimensions, clamped, rounded half away from zero; grade.

Rule format v2 (SPEC §4.1, issue "Rule format v2"), evaluated here in its own way:

*   ``subject_rules``: one SQL select per rule over the adults (attributes from the snapshot of M,
    months_resident = snapshots <= M in which the person is active, age = full years on A) with
    NOT EXISTS for ``unless_any`` (a current finding of a listed rule after A - N months);
*   ``requires``: EXISTS a current finding of a listed rule, same sid and case_ref, not later;
*   ``repair``: after the dedupe, a plain-Python queue per person and rule in exact fractions
    (``_repairs``): breaches oldest first, each takes the earliest unused energy on or after its
    own day until it has a whole unit;
*   ``growth``: per person the earliest current finding of the rule's item (or the latest reset
    on or after it), full months to A in SQL, ``// every_months``.

"Current" = step 1 (latest version, not revoked, not upheld, not masked) and not after A.

Explanation lines (SPEC §5 as amended 2026-12-05): ``score_reference(..., lines=True)`` also
returns the lines that explain the month, computed in SQL over the temporary tables of the
evaluation (reference/duckdb_lines.py); ``lines_to=`` writes them to parquet.

CLI::

    python -m reference.duckdb_scorer --warehouse DIR --rules DIR --scheme S --month YYYY-MM \
        [--out scores.parquet] [--lines-out lines.parquet] [--threads N] [--mask-working-days 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb
import holidays
import pyarrow as pa
import yaml

__all__ = [
    "Scheme",
    "Rule",
    "load_scheme",
    "month_last_day",
    "appeal_mask_cutoff",
    "working_days_after",
    "score_reference",
    "main",
]

# Silver amounts are decimal(18,4) (contracts.md); point values get at least this scale.
QUANTITY_SCALE = 4
MAX_SCALE = 20  # DECIMAL(38, s): keep at least 18 integer digits

# ---------------------------------------------------------------------------------------------
# Rule file: parsing with exact decimals
# ---------------------------------------------------------------------------------------------


class SchemeError(ValueError):
    """The scheme file cannot be used by the reference scorer."""


class _ExactLoader(yaml.SafeLoader):
    """yaml.SafeLoader that keeps YAML floats as ``Decimal`` built from the literal text.

    safe_load would turn ``0.4`` into a binary float first; here the scalar's own text is used,
    so ``points_per_unit: 0.4`` is exactly Decimal('0.4').  Everything else is SafeLoader.
    """


def _construct_exact_float(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:  # .inf, .nan, sexagesimal 1:30.5 -> let SafeLoader decide
        return yaml.SafeLoader.construct_yaml_float(loader, node)
    return value


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_exact_float)


@dataclass(frozen=True)
class Rule:
    idx: int  # position in the file (0-based): "first rule in file order"
    id: str
    item: str
    when_level: str | None
    dimension: str
    kind: str  # 'points' | 'per_unit' | 'tiers' | 'growth'
    points: Decimal | None
    per_unit: Decimal | None
    tiers: tuple[tuple[Decimal, Decimal], ...]  # (at_least, points)
    valid_months: int | None  # None: a growth rule without one (validity plays no part)
    cap: Decimal | None
    dedupe_group: str | None
    requires: tuple[str, ...] = ()  # rule ids (same case_ref, occurred on or before)
    energy: tuple[tuple[str, Decimal], ...] = ()  # (item, units per repair)
    growth: tuple[int, Decimal, Decimal | None, tuple[str, ...]] | None = None  # k, p, cap, reset_by


@dataclass(frozen=True)
class SubjectRule:
    id: str
    tests: tuple[tuple[str, str, Any], ...]  # (attribute, 'eq' | 'ge' | 'lt', value)
    unless: tuple[str, ...]  # rule ids
    within_months: int | None
    dimension: str
    points: Decimal


@dataclass(frozen=True)
class Scheme:
    scheme: str
    version: str
    effective_from: str | None  # 'YYYY-MM'
    base_score: Decimal
    min_score: Decimal | None
    max_score: Decimal | None
    dimensions: dict[str, Decimal | None]  # id -> cap
    grades: tuple[tuple[str, str | None, Decimal | None], ...]  # (grade, label, min), highest first
    rules: tuple[Rule, ...]
    scale: int  # decimal scale used for every point value in SQL
    subject_rules: tuple[SubjectRule, ...] = ()


def _num(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise SchemeError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):  # only non-finite floats reach here via _ExactLoader
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise SchemeError(f"{where}: not a number: {value!r}") from None
    else:
        raise SchemeError(f"{where}: expected a number, got {value!r}")
    if not d.is_finite():
        raise SchemeError(f"{where}: not a finite number: {value!r}")
    return d


def _scale(d: Decimal | None) -> int:
    if d is None:
        return 0
    return max(0, -int(d.as_tuple().exponent))


def _month_str(value: Any, where: str) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return f"{value.year:04d}-{value.month:02d}"
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise SchemeError(f"{where}: expected YYYY-MM, got {value!r}")
    return text


def load_scheme(path: Path | str) -> Scheme:
    """Parse a SPEC §4 scheme file. Refuses what the reference cannot evaluate unambiguously."""
    path = Path(path)
    fn = path.name
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_ExactLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict):
        raise SchemeError(f"{fn}: not a mapping")
    for key in ("base_score", "dimensions", "grades", "rules"):
        if key not in doc:
            raise SchemeError(f"{fn}: missing field {key!r}")

    base = _num(doc["base_score"], f"{fn}: base_score")
    min_score = _num(doc["min_score"], f"{fn}: min_score") if doc.get("min_score") is not None else None
    max_score = _num(doc["max_score"], f"{fn}: max_score") if doc.get("max_score") is not None else None
    if min_score is not None and max_score is not None and min_score > max_score:
        raise SchemeError(f"{fn}: min_score {min_score} > max_score {max_score}")
    eff = _month_str(doc["effective_from"], f"{fn}: effective_from") if doc.get("effective_from") else None

    dims_raw = doc["dimensions"]
    if not isinstance(dims_raw, dict) or not dims_raw:
        raise SchemeError(f"{fn}: dimensions must be a non-empty mapping")
    dims: dict[str, Decimal | None] = {}
    for did, dval in dims_raw.items():
        cap = None
        if isinstance(dval, dict) and dval.get("cap") is not None:
            cap = _num(dval["cap"], f"{fn}: dimension {did}: cap")
            if cap < 0:
                raise SchemeError(f"{fn}: dimension {did}: cap must be >= 0 (it is an absolute bound)")
        dims[str(did)] = cap

    grades_raw = doc["grades"]
    if not isinstance(grades_raw, list) or not grades_raw:
        raise SchemeError(f"{fn}: grades must be a non-empty list")
    grades = []
    for i, g in enumerate(grades_raw):
        if not isinstance(g, dict) or "grade" not in g:
            raise SchemeError(f"{fn}: grades[{i}]: needs a 'grade'")
        last = i == len(grades_raw) - 1
        gmin = g.get("min")
        if last and gmin is not None:
            raise SchemeError(f"{fn}: grades[{i}] ({g['grade']}): the last grade has no min")
        if not last and gmin is None:
            raise SchemeError(f"{fn}: grades[{i}] ({g['grade']}): min missing")
        gmin_d = _num(gmin, f"{fn}: grade {g['grade']}: min") if gmin is not None else None
        grades.append((str(g["grade"]), g.get("label"), gmin_d))

    rules_raw = doc["rules"]
    if not isinstance(rules_raw, list):
        raise SchemeError(f"{fn}: rules must be a list")
    rules = []
    seen_ids = set()
    for i, r in enumerate(rules_raw):
        if not isinstance(r, dict):
            raise SchemeError(f"{fn}: rules[{i}]: not a mapping")
        rid = str(r.get("id", f"#{i}"))
        where = f"{fn}: rule {rid}"
        if rid in seen_ids:
            raise SchemeError(f"{where}: id: duplicate rule id")
        seen_ids.add(rid)
        for key in ("id", "item", "dimension") + (() if r.get("growth") is not None else ("valid_months",)):
            if r.get(key) is None:
                raise SchemeError(f"{where}: {key}: missing")
        if str(r["dimension"]) not in dims:
            raise SchemeError(f"{where}: dimension: unknown dimension {r['dimension']!r}")
        when = r.get("when") or {}
        if not isinstance(when, dict) or set(when) - {"level"}:
            raise SchemeError(f"{where}: when: only equality on 'level' is defined (SPEC §4)")
        when_level = None
        if "level" in when:
            if when["level"] is None or isinstance(when["level"], (list, dict)):
                raise SchemeError(f"{where}: when.level: expected a single value")
            when_level = str(when["level"])
        present = [k for k in ("points", "points_per_unit", "tiers", "growth") if r.get(k) is not None]
        if len(present) != 1:
            raise SchemeError(f"{where}: needs exactly one of points / points_per_unit / tiers / growth, has {present}")
        vm = r.get("valid_months")
        vmd = None
        if vm is not None or present[0] != "growth":
            if isinstance(vm, bool) or not isinstance(vm, (int, Decimal, str)):
                raise SchemeError(f"{where}: valid_months: expected a positive integer")
            vmd = _num(vm, f"{where}: valid_months")
            if vmd != vmd.to_integral_value() or vmd < 1:
                raise SchemeError(f"{where}: valid_months: expected a positive integer, got {vm!r}")
        cap = _num(r["cap"], f"{where}: cap") if r.get("cap") is not None else None
        if cap is not None and cap < 0:
            raise SchemeError(f"{where}: cap: must be >= 0 (it is an absolute bound)")
        points = per_unit = None
        tiers: list[tuple[Decimal, Decimal]] = []
        growth = None
        kind = present[0]
        if kind == "points":
            points = _num(r["points"], f"{where}: points")
        elif kind == "points_per_unit":
            per_unit = _num(r["points_per_unit"], f"{where}: points_per_unit")
            kind = "per_unit"
        elif kind == "growth":
            g = r["growth"]
            if not isinstance(g, dict) or "every_months" not in g or "points" not in g:
                raise SchemeError(f"{where}: growth: needs every_months and points")
            every = _num(g["every_months"], f"{where}: growth.every_months")
            if every != every.to_integral_value() or every < 1:
                raise SchemeError(f"{where}: growth.every_months: expected a positive integer")
            gcap = _num(g["cap"], f"{where}: growth.cap") if g.get("cap") is not None else None
            reset = g.get("reset_by") or []
            growth = (int(every), _num(g["points"], f"{where}: growth.points"), gcap,
                      tuple(str(x) for x in ([reset] if isinstance(reset, str) else reset)))
        else:
            if not isinstance(r["tiers"], list) or not r["tiers"]:
                raise SchemeError(f"{where}: tiers: expected a non-empty list")
            for j, t in enumerate(r["tiers"]):
                if not isinstance(t, dict) or "at_least" not in t or "points" not in t:
                    raise SchemeError(f"{where}: tiers[{j}]: needs at_least and points")
                tiers.append(
                    (_num(t["at_least"], f"{where}: tiers[{j}].at_least"), _num(t["points"], f"{where}: tiers[{j}].points"))
                )
            if len({a for a, _ in tiers}) != len(tiers):
                raise SchemeError(f"{where}: tiers: duplicate at_least")
        requires: tuple[str, ...] = ()
        if r.get("requires") is not None:
            req = r["requires"]
            if not isinstance(req, dict) or not req.get("rules") or req.get("same", "case_ref") != "case_ref":
                raise SchemeError(f"{where}: requires: expected {{rules: [ids], same: case_ref}}")
            listed = req["rules"]
            requires = tuple(str(x) for x in ([listed] if isinstance(listed, str) else listed))
        energy: tuple[tuple[str, Decimal], ...] = ()
        if r.get("repair") is not None:
            rep = r["repair"]
            if not isinstance(rep, dict) or not isinstance(rep.get("energy"), dict) or not rep["energy"]:
                raise SchemeError(f"{where}: repair: expected {{energy: {{ITEM: units, ...}}}}")
            energy = tuple((str(k), _num(v, f"{where}: repair.energy.{k}")) for k, v in rep["energy"].items())
            if any(u <= 0 for _, u in energy):
                raise SchemeError(f"{where}: repair.energy: units per repair must be positive")
        dg = r.get("dedupe_group")
        rules.append(
            Rule(
                idx=i,
                id=rid,
                item=str(r["item"]),
                when_level=when_level,
                dimension=str(r["dimension"]),
                kind=kind,
                points=points,
                per_unit=per_unit,
                tiers=tuple(tiers),
                valid_months=None if vmd is None else int(vmd),
                cap=cap,
                dedupe_group=None if dg is None else str(dg),
                requires=requires,
                energy=energy,
                growth=growth,
            )
        )

    ids = {r.id for r in rules}
    for r in rules:
        for other in r.requires + (r.growth[3] if r.growth else ()):
            if other not in ids:
                raise SchemeError(f"{fn}: rule {r.id}: names unknown rule {other!r}")
    subject_rules = _subject_rules(fn, doc.get("subject_rules") or [], dims, ids | seen_ids)

    # SPEC §4 refuses a rule that can never match: an earlier rule takes all its findings
    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if "growth" in (earlier.kind, later.kind):
                continue  # a growth rule takes no finding away from another rule
            if earlier.item == later.item and earlier.when_level in (None, later.when_level):
                raise SchemeError(f"{fn}: rule {later.id}: when: can never match, rule {earlier.id} takes all its findings")

    # one decimal scale for all point values: exact for every literal and for quantity x per_unit
    decimals = [base, min_score, max_score, *dims.values(), *(g[2] for g in grades)]
    for r in rules:
        decimals += [r.points, r.cap, *(a for a, _ in r.tiers), *(p for _, p in r.tiers)]
        if r.growth:
            decimals += [r.growth[1], r.growth[2]]
    decimals += [sr.points for sr in subject_rules]
    scale = max(
        [QUANTITY_SCALE, *(_scale(d) for d in decimals)]
        + [QUANTITY_SCALE + _scale(r.per_unit) for r in rules if r.per_unit is not None]
    )
    if scale > MAX_SCALE:
        raise SchemeError(f"{fn}: numbers need {scale} decimal places; at most {MAX_SCALE} supported")
    return Scheme(
        scheme=str(doc.get("scheme", path.stem)),
        version=str(doc.get("version", "")),
        effective_from=eff,
        base_score=base,
        min_score=min_score,
        max_score=max_score,
        dimensions=dims,
        grades=tuple(grades),
        rules=tuple(rules),
        scale=scale,
        subject_rules=subject_rules,
    )


_ATTRIBUTES = ("residency", "district", "age", "months_resident")


def _subject_rules(fn: str, raw: Any, dims: dict, rule_ids: set[str]) -> tuple[SubjectRule, ...]:
    if not isinstance(raw, list):
        raise SchemeError(f"{fn}: subject_rules must be a list")
    out = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or r.get("id") is None:
            raise SchemeError(f"{fn}: subject_rules[{i}]: needs an id")
        where = f"{fn}: subject rule {r['id']}"
        if str(r.get("dimension")) not in dims:
            raise SchemeError(f"{where}: dimension: unknown dimension {r.get('dimension')!r}")
        tests = []
        for attr, value in (r.get("when") or {}).items():
            if attr not in _ATTRIBUTES:
                raise SchemeError(f"{where}: when.{attr}: not an attribute a score may depend on")
            if isinstance(value, dict):
                for op, key in (("ge", "at_least"), ("lt", "below")):
                    if value.get(key) is not None:
                        tests.append((attr, op, _num(value[key], f"{where}: when.{attr}.{key}")))
            elif attr in ("residency", "district"):
                tests.append((attr, "eq", str(value)))
            else:
                tests.append((attr, "eq", _num(value, f"{where}: when.{attr}")))
        unless, within = (), None
        if r.get("unless_any") is not None:
            u = r["unless_any"]
            listed = u.get("rules") or []
            unless = tuple(str(x) for x in ([listed] if isinstance(listed, str) else listed))
            within = int(_num(u.get("within_months"), f"{where}: unless_any.within_months"))
            for other in unless:
                if other not in rule_ids:
                    raise SchemeError(f"{where}: unless_any names unknown rule {other!r}")
        out.append(SubjectRule(id=str(r["id"]), tests=tuple(tests), unless=unless, within_months=within,
                               dimension=str(r["dimension"]), points=_num(r.get("points"), f"{where}: points")))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Dates: month end, Chinese working days
# ---------------------------------------------------------------------------------------------


def month_last_day(month: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    y, m = int(month[:4]), int(month[5:])
    first_next = dt.date(y + (m == 12), m % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _china(years: Iterable[int]) -> holidays.HolidayBase:
    return holidays.China(years=sorted(set(years)))


def working_days_after(filed_on: dt.date, asof: dt.date) -> int:
    """Number of Chinese working days d with filed_on < d <= asof (statutory holidays off,
    调休 make-up weekend days on, as known to the ``holidays`` package)."""
    if filed_on >= asof:
        return 0
    cn = _china(range(filed_on.year, asof.year + 1))
    n, d = 0, filed_on + dt.timedelta(days=1)
    while d <= asof:
        n += cn.is_working_day(d)
        d += dt.timedelta(days=1)
    return n


def appeal_mask_cutoff(asof: dt.date, mask_working_days: int = 10) -> dt.date:
    """The date C such that ``working_days_after(filed_on, asof) > N  <=>  filed_on < C``.

    C is the (N+1)-th working day counting back from A (A itself included): there are N working
    days after C up to A, so a filing before C has at least N+1 of them, one on or after C at
    most N.
    """
    if mask_working_days < 0:
        raise ValueError("mask_working_days must be >= 0")
    cn = _china(range(asof.year - 1 - mask_working_days // 200, asof.year + 1))
    seen, d = 0, asof
    while True:
        if cn.is_working_day(d):
            seen += 1
            if seen == mask_working_days + 1:
                return d
        d -= dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

# name -> (required columns, optional columns), with the SQL type each is normalised to
_COLUMNS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "findings": (
        {
            "source_id": "VARCHAR",
            "record_id": "VARCHAR",
            "subject_key": "VARCHAR",
            "item_code": "VARCHAR",
            "occurred_on": "DATE",
            "status": "VARCHAR",
            "known_from": "VARCHAR",
        },
        {
            "level": "VARCHAR",
            "quantity": "DECIMAL(18,4)",
            "valid_until": "DATE",
            "case_ref": "VARCHAR",
            "known_until": "VARCHAR",
        },
    ),
    "population": (
        {"subject_key": "VARCHAR", "birth_date": "DATE", "status": "VARCHAR", "snapshot_month": "VARCHAR"},
        {"district": "VARCHAR", "residency": "VARCHAR"},
    ),
    "appeals": (
        {"source_id": "VARCHAR", "record_id": "VARCHAR", "filed_on": "DATE"},
        {"resolved_on": "DATE", "outcome": "VARCHAR", "known_from": "VARCHAR", "known_until": "VARCHAR"},
    ),
    "optouts": (
        {"subject_key": "VARCHAR", "requested_on": "DATE"},
        {"known_from": "VARCHAR", "known_until": "VARCHAR"},
    ),
}


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _dec(d: Decimal, scale: int) -> str:
    return f"CAST({_sql_str(str(d))} AS DECIMAL(38,{scale}))"


def _register_input(con: duckdb.DuckDBPyConnection, name: str, src: Any, *, optional: bool) -> set[str]:
    """Create view ``<name>`` with normalised column types; return the optional columns present."""
    required, opt = _COLUMNS[name]
    raw = f"{name}__raw"
    if src is None and not optional:
        raise ValueError(f"tables[{name!r}] is required")
    if src is None or (isinstance(src, (list, tuple)) and len(src) == 0):  # no files: an empty table
        cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in {**required, **opt}.items())
        con.execute(f"CREATE VIEW {name} AS SELECT {cols} WHERE false")
        return set(opt)
    if isinstance(src, (pa.Table, pa.RecordBatch)):
        con.register(raw, src)
    else:
        paths = [src] if isinstance(src, (str, os.PathLike)) else list(src)
        plist = ", ".join(_sql_str(os.fspath(p)) for p in paths)
        con.execute(
            f"CREATE VIEW {raw} AS SELECT * FROM read_parquet([{plist}], "
            "hive_partitioning = true, hive_types_autocast = false, union_by_name = true)"
        )
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()}
    have = set(types)
    missing = [c for c in required if c not in have]
    if missing:
        raise ValueError(f"tables[{name!r}] lacks column(s) {missing}")
    if "quantity" in types:  # exact decimal only: never round a binary float or a finer decimal
        qt = types["quantity"]
        m = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", qt)
        ok = (m is not None and int(m.group(2)) <= QUANTITY_SCALE and int(m.group(1)) - int(m.group(2)) <= 14) or qt in (
            "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", '"NULL"', "NULL")
        if not ok:
            raise ValueError(f"tables[{name!r}].quantity is {qt}; expected decimal(18,4) (contracts.md)")
    sel = [f"CAST({c} AS {t}) AS {c}" for c, t in required.items()]
    sel += [f"CAST({c if c in have else 'NULL'} AS {t}) AS {c}" for c, t in opt.items()]
    con.execute(f"CREATE VIEW {name} AS SELECT {', '.join(sel)} FROM {raw}")
    return {c for c in opt if c in have}


def _asof_filter(alias: str, cols: set[str]) -> str:
    parts = []
    if "known_from" in cols:
        parts.append(f"{alias}.known_from <= $month")
    if "known_until" in cols:
        parts.append(f"({alias}.known_until IS NULL OR {alias}.known_until > $month)")
    return " AND ".join(parts) or "true"


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def _lookup(rules: list[Rule]) -> tuple[list, list]:
    """Step 2 as two lookups.  For an item, a finding whose level is named in some rule's `when`
    takes the first rule with that `when` or with no `when`; any other level (or none) takes the
    first rule with no `when`.  This is exactly "first rule in file order whose item and when match"."""
    by_item: dict[str, list[Rule]] = {}
    for r in rules:
        by_item.setdefault(r.item, []).append(r)
    specific, default = [], []
    for item, rs in by_item.items():
        for level in sorted({r.when_level for r in rs if r.when_level is not None}):
            specific.append((item, level, min(r.idx for r in rs if r.when_level in (None, level))))
        plain = [r.idx for r in rs if r.when_level is None]
        if plain:
            default.append((item, min(plain)))
    return specific, default


def _rules_tables(scheme: Scheme) -> dict[str, pa.Table]:
    """The scheme as small tables for the SQL (all numbers exact DECIMAL(38, scale))."""
    s = scheme.scale
    dec = pa.decimal128(38, s)
    rules = scheme.rules
    groups = sorted({r.dedupe_group for r in rules if r.dedupe_group is not None})
    dims = list(scheme.dimensions)
    rules_t = pa.table(
        {
            "rule_idx": pa.array([r.idx for r in rules], pa.int32()),
            "kind": pa.array([r.kind for r in rules], pa.string()),
            "points": pa.array([r.points for r in rules], dec),
            # per_unit keeps its own scale: quantity (scale 4) x per_unit is exact in scale s
            "per_unit": pa.array([r.per_unit for r in rules], pa.decimal128(38, s - QUANTITY_SCALE)),
            "valid_months": pa.array([r.valid_months for r in rules], pa.int32()),
            "cap": pa.array([r.cap for r in rules], dec),
            "dgrp": pa.array([None if r.dedupe_group is None else groups.index(r.dedupe_group) for r in rules], pa.int32()),
            "dim_idx": pa.array([dims.index(r.dimension) for r in rules], pa.int32()),
            "rule_id": pa.array([r.id for r in rules], pa.string()),
        }
    )
    dims_t = pa.table({"dim_idx": pa.array(range(len(dims)), pa.int32()),
                       "dimension": pa.array(dims, pa.string()),
                       "cap": pa.array(list(scheme.dimensions.values()), dec)})
    out = {"rules": rules_t, "dims": dims_t}
    # growth rules take a finding only when no other rule does (they take none from other rules)
    for prefix, subset in (("rule", [r for r in rules if r.kind != "growth"]),
                           ("growth", [r for r in rules if r.kind == "growth"])):
        specific, default = _lookup(subset)
        out[f"{prefix}_specific"] = pa.table(
            {
                "item": pa.array([x[0] for x in specific], pa.string()),
                "level": pa.array([x[1] for x in specific], pa.string()),
                "rule_idx": pa.array([x[2] for x in specific], pa.int32()),
            }
        )
        out[f"{prefix}_default"] = pa.table(
            {"item": pa.array([x[0] for x in default], pa.string()), "rule_idx": pa.array([x[1] for x in default], pa.int32())}
        )
    return out


def _clamp_abs(expr: str, cap: Decimal | None, s: int) -> str:
    if cap is None:
        return expr
    return f"least(greatest({expr}, {_dec(-cap, s)}), {_dec(cap, s)})"


def _of_rules(scheme: Scheme, ids: Iterable[str], alias: str) -> str:
    """SQL: the current finding `alias` is a finding of one of the rules (the rule it takes; for a
    growth rule, any finding of its item and level)."""
    by_id = {r.id: r for r in scheme.rules}
    terms = []
    taken = [by_id[i].idx for i in ids if by_id[i].kind != "growth"]
    if taken:
        terms.append(f"{alias}.rule_idx IN ({', '.join(map(str, taken))})")
    for i in ids:
        r = by_id[i]
        if r.kind == "growth":
            level = "" if r.when_level is None else f" AND {alias}.level = {_sql_str(r.when_level)}"
            terms.append(f"({alias}.item_code = {_sql_str(r.item)}{level})")
    return "(" + (" OR ".join(terms) or "false") + ")"


def _months_to(day: str) -> str:
    """SQL: full months from `day` to $asof (the largest m with day + m months <= $asof, clamped)."""
    rough = f"((year($asof) - year({day})) * 12 + month($asof) - month({day}))"
    return f"({rough} - CASE WHEN CAST({day} + to_months({rough}) AS DATE) > $asof THEN 1 ELSE 0 END)"


def _stage_sql(scheme: Scheme, appeal_cols: set[str], optout_cols: set[str], findings_cols: set[str]) -> list[str]:
    """Steps 1-5 as temporary tables: adults, current findings (cur), counting findings after the
    dedupe (counted).  Repair (a queue per person) runs in Python between this and _totals_sql."""
    s = scheme.scale
    D = f"DECIMAL(38,{s})"
    demanding = [r for r in scheme.rules if r.requires]
    requirement = "true"
    if demanding:
        cases = " ".join(
            f"WHEN {r.idx} THEN EXISTS (SELECT 1 FROM cur q WHERE q.sid = c.sid AND q.case_ref = c.case_ref "
            f"AND q.occurred_on <= c.occurred_on AND {_of_rules(scheme, r.requires, 'q')})"
            for r in demanding
        )
        requirement = f"CASE c.rule_idx {cases} ELSE true END"
    resident = "CAST(NULL AS BIGINT)"
    if any(a == "months_resident" for sr in scheme.subject_rules for a, _, _ in sr.tests):
        resident = ("(SELECT count(DISTINCT q.snapshot_month) FROM population q WHERE q.subject_key = p.subject_key "
                    "AND q.snapshot_month <= $month AND q.status = 'active')")
    return [
        f"""
-- the population of M: active adults, add_months(birth_date, 216) <= A (month-end clamped), with
-- the attributes subject rules test; opt-outs (注销) requested on or before A, as known at M, leave
-- (SPEC §7: their data leaves every table, so a score row at base would only exist until the
-- deletion ran; re-runs must not depend on that).  Every scored subject gets a dense integer id.
CREATE TEMP TABLE adults AS
WITH pop AS (
    SELECT subject_key, any_value(birth_date) AS birth_date, any_value(district) AS district,
           any_value(residency) AS residency
    FROM population
    WHERE snapshot_month = $month AND status = 'active'
      AND CAST(birth_date + to_months(216) AS DATE) <= $asof
    GROUP BY subject_key
),
opted_out AS (
    SELECT DISTINCT o.subject_key FROM optouts o
    WHERE o.requested_on <= $asof AND {_asof_filter('o', optout_cols)}
)
SELECT p.subject_key, CAST(row_number() OVER () AS INTEGER) AS sid, p.birth_date, p.district, p.residency,
       {resident} AS months_resident
FROM pop p ANTI JOIN opted_out o ON o.subject_key = p.subject_key
""",
        f"""
-- steps 1-3 for every finding version as known at M (one filter: known_from <= M < known_until)
-- of a scored adult, with the rule it takes (step 2, or none), its last valid day and its
-- status before requires / dedupe / repair, in the order a finding line reports it: revoked,
-- appeal upheld (resolved by A), masked (open on A, filed before $cutoff), no rule, after A,
-- expired (last valid day before A; a growth rule has no validity), else counted
CREATE TEMP TABLE evaluated AS
WITH appealed AS (
    SELECT a.source_id, a.record_id,
           bool_or(a.outcome = 'upheld' AND a.resolved_on <= $asof) AS upheld,
           bool_or((a.resolved_on IS NULL OR a.resolved_on > $asof) AND a.filed_on < $cutoff) AS masked
    FROM appeals a
    WHERE {_asof_filter('a', appeal_cols)}
    GROUP BY a.source_id, a.record_id
),
matched AS (
    SELECT a.sid, f.source_id, f.record_id, f.item_code, f.level, f.occurred_on, f.valid_until, f.case_ref,
           f.status AS delivered_status, f.known_from,
           CAST(f.quantity AS DECIMAL(38,{QUANTITY_SCALE})) AS quantity,
           coalesce(rs.rule_idx, rd.rule_idx, gs.rule_idx, gd.rule_idx) AS rule_idx,
           coalesce(x.upheld, false) AS upheld, coalesce(x.masked, false) AS masked
    FROM findings f
    JOIN adults a ON a.subject_key = f.subject_key
    LEFT JOIN rule_specific rs ON rs.item = f.item_code AND rs.level = f.level
    LEFT JOIN rule_default rd ON rd.item = f.item_code
    LEFT JOIN growth_specific gs ON gs.item = f.item_code AND gs.level = f.level
    LEFT JOIN growth_default gd ON gd.item = f.item_code
    LEFT JOIN appealed x ON x.source_id = f.source_id AND x.record_id = f.record_id
    WHERE {_asof_filter('f', findings_cols | {'known_from'})}
),
dated AS (
    SELECT m.*, CASE WHEN r.kind <> 'growth' THEN
                  least(m.valid_until, CAST(m.occurred_on + to_months(r.valid_months) AS DATE) - 1)
                END AS last_valid_day
    FROM matched m LEFT JOIN rules r ON r.rule_idx = m.rule_idx
)
SELECT d.* EXCLUDE (delivered_status, upheld, masked),
       CASE WHEN d.delivered_status = 'revoked' THEN 'revoked'
            WHEN d.upheld THEN 'appeal_upheld'
            WHEN d.masked THEN 'masked'
            WHEN d.rule_idx IS NULL THEN 'no_rule'
            WHEN d.occurred_on > $asof THEN 'not_yet_valid'
            WHEN d.last_valid_day < $asof THEN 'expired'
            ELSE 'counted' END AS status
FROM dated d
""",
        """
-- step 1: current = not revoked, not upheld or masked on appeal, not after A (any rule, validity)
CREATE TEMP TABLE cur AS
SELECT * EXCLUDE (status, known_from) FROM evaluated
WHERE status NOT IN ('revoked', 'appeal_upheld', 'masked') AND occurred_on <= $asof
""",
        f"""
-- steps 3-4: valid on A (step 3), its points (step 4), whether a `requires` is met (v2)
CREATE TEMP TABLE valid AS
SELECT c.sid, c.source_id, c.record_id, c.occurred_on, c.case_ref, r.rule_idx, r.kind, r.dgrp, c.quantity,
       CAST(CASE r.kind
              WHEN 'points'   THEN r.points
              WHEN 'per_unit' THEN coalesce(c.quantity, 0) * r.per_unit
            END AS {D}) AS points,
       {requirement} AS met
FROM cur c JOIN rules r ON r.rule_idx = c.rule_idx
WHERE r.kind <> 'growth' AND $asof <= c.last_valid_day
""",
        """
-- step 5: the highest-value dedupe within a dedupe_group, per subject and behaviour (behaviour =
-- the same case_ref, or with case_ref null on both, the same occurred_on) among the findings
-- whose requirement is met; value = |points|, for a tiers rule |quantity|; ties: earliest
-- occurred_on, source_id, record_id
CREATE TEMP TABLE counted AS
SELECT sid, source_id, record_id, occurred_on, rule_idx, quantity, points FROM valid
WHERE met AND dgrp IS NULL
UNION ALL
SELECT sid, source_id, record_id, occurred_on, rule_idx, quantity, points FROM valid
WHERE met AND dgrp IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY sid, dgrp, case_ref, CASE WHEN case_ref IS NULL THEN occurred_on END
    ORDER BY abs(CASE WHEN kind = 'tiers' THEN coalesce(quantity, 0) ELSE points END) DESC,
             occurred_on, source_id, record_id) = 1
""",
    ]


def _totals_sql(scheme: Scheme) -> list[str]:
    """Step 6 as temporary tables, read by the scores (_scores_sql) and the explanation lines
    (reference.duckdb_lines): ``rule_tot`` one row per subject and rule total (a scored rule with
    counting findings, a growth rule, a subject rule that applies) with its value before (raw) and
    after (total) the rule cap; ``dim_tot`` one row per subject and dimension with the sum of its
    rule totals before (raw) and after (total) the dimension cap."""
    s = scheme.scale
    D = f"DECIMAL(38,{s})"
    zero = f"CAST(0 AS {D})"
    dims = list(scheme.dimensions)
    Q = f"DECIMAL(38,{QUANTITY_SCALE})"

    # step 6: a tiers rule's points for the summed quantity (highest at_least reached, else 0)
    tier_cases = []
    for r in scheme.rules:
        if r.kind == "tiers":
            whens = " ".join(
                f"WHEN qty >= {_dec(a, s)} THEN {_dec(p, s)}" for a, p in sorted(r.tiers, key=lambda t: t[0], reverse=True)
            )
            tier_cases.append(f"WHEN {r.idx} THEN CASE {whens} ELSE {zero} END")
    rule_value = (
        f"CASE rule_idx {' '.join(tier_cases)} ELSE pts END" if tier_cases else "pts"
    )
    # v2: growth totals (per person and growth rule) and subject rules (per person), as rows
    # beside the rule totals, before the dimension caps
    extra = []
    for r in scheme.rules:
        if r.kind != "growth":
            continue
        every, per_period, gcap, reset_by = r.growth
        level = "" if r.when_level is None else f" AND c.level = {_sql_str(r.when_level)}"
        reset = (f"max(c.occurred_on) FILTER (WHERE {_of_rules(scheme, reset_by, 'c')})" if reset_by
                 else "CAST(NULL AS DATE)")
        periods = f"({_months_to('start_day')} // {every})"
        value = _clamp_abs(f"CAST({_dec(per_period, s)} * {periods} AS {D})", gcap, s)
        extra.append(f"""
    SELECT sid, {dims.index(r.dimension)} AS dim_idx, {_sql_str(r.id)} AS rule_id, 'growth' AS kind,
           raw, CAST({_clamp_abs('raw', r.cap, s)} AS {D}) AS total, CAST(periods AS {Q}) AS qty, start_day
    FROM (SELECT sid, start_day, {periods} AS periods, CAST({value} AS {D}) AS raw
          FROM (SELECT sid, CASE WHEN reset_day >= first_day THEN reset_day ELSE first_day END AS start_day
                FROM (SELECT c.sid,
                             min(c.occurred_on) FILTER (WHERE c.item_code = {_sql_str(r.item)}{level}) AS first_day,
                             {reset} AS reset_day
                      FROM cur c GROUP BY c.sid)
                WHERE first_day IS NOT NULL))""")
    for sr in scheme.subject_rules:
        conds = []
        for attr, op, value in sr.tests:
            column = {"age": f"({_months_to('a.birth_date')} // 12)"}.get(attr, f"a.{attr}")
            literal = _sql_str(value) if attr in ("residency", "district") else _dec(value, s)
            conds.append(f"{column} {dict(eq='=', ge='>=', lt='<')[op]} {literal}")
        if sr.unless:
            conds.append(
                f"NOT EXISTS (SELECT 1 FROM cur c WHERE c.sid = a.sid AND {_of_rules(scheme, sr.unless, 'c')} "
                f"AND c.occurred_on > CAST($asof - to_months({sr.within_months}) AS DATE))")
        extra.append(f"""
    SELECT a.sid, {dims.index(sr.dimension)} AS dim_idx, {_sql_str(sr.id)} AS rule_id, 'subject' AS kind,
           {_dec(sr.points, s)} AS raw, {_dec(sr.points, s)} AS total, CAST(NULL AS {Q}) AS qty,
           CAST(NULL AS DATE) AS start_day
    FROM adults a WHERE {' AND '.join(conds) or 'true'}""")
    extra_sql = "".join(f"\n    UNION ALL{e}" for e in extra)
    return [f"""
-- step 6: per subject and rule: sum, tiers on the summed quantity, rule cap; (v2) repaired
-- findings stop counting
CREATE TEMP TABLE rule_tot AS
WITH counting AS (
    SELECT c.* FROM counted c
    ANTI JOIN repaired x ON x.sid = c.sid AND x.source_id = c.source_id AND x.record_id = c.record_id
),
rule_sums AS (
    SELECT sid, rule_idx, sum(points) AS pts, coalesce(sum(quantity), 0) AS qty
    FROM counting GROUP BY sid, rule_idx
)
SELECT s.sid, r.dim_idx, r.rule_id, r.kind, s.v AS raw,
       CAST(CASE WHEN r.cap IS NULL THEN s.v ELSE least(greatest(s.v, -r.cap), r.cap) END AS {D}) AS total,
       CAST(s.qty AS {Q}) AS qty, CAST(NULL AS DATE) AS start_day
FROM (SELECT sid, rule_idx, qty, CAST({rule_value} AS {D}) AS v FROM rule_sums) s
JOIN rules r ON r.rule_idx = s.rule_idx{extra_sql}
""", f"""
-- step 6: each dimension total bounded by its (absolute) cap
CREATE TEMP TABLE dim_tot AS
SELECT t.sid, t.dim_idx, t.raw,
       CAST(CASE WHEN d.cap IS NULL THEN t.raw ELSE least(greatest(t.raw, -d.cap), d.cap) END AS {D}) AS total
FROM (SELECT sid, dim_idx, CAST(sum(total) AS {D}) AS raw FROM rule_tot GROUP BY sid, dim_idx) t
JOIN dims d ON d.dim_idx = t.dim_idx
"""]


def _scores_sql(scheme: Scheme) -> str:
    """Step 7 over dim_tot: base + Σ dimensions; clamp; round half away from zero; grade."""
    s = scheme.scale
    D = f"DECIMAL(38,{s})"
    zero = f"CAST(0 AS {D})"
    clamp = "raw_score"
    if scheme.min_score is not None:
        clamp = f"greatest({clamp}, {_dec(scheme.min_score, s)})"
    if scheme.max_score is not None:
        clamp = f"least({clamp}, {_dec(scheme.max_score, s)})"
    if len(scheme.grades) == 1:
        grade_case = _sql_str(scheme.grades[0][0])
    else:
        grade_case = (
            "CASE "
            + " ".join(f"WHEN score >= {_dec(gmin, s)} THEN {_sql_str(g)}" for g, _, gmin in scheme.grades[:-1])
            + f" ELSE {_sql_str(scheme.grades[-1][0])} END"
        )

    return f"""
WITH
subject_pts AS (
    SELECT sid, CAST(sum(total) AS {D}) AS pts FROM dim_tot GROUP BY sid
),
raw AS (
    SELECT a.subject_key, CAST({_dec(scheme.base_score, s)} + coalesce(p.pts, {zero}) AS {D}) AS raw_score
    FROM adults a LEFT JOIN subject_pts p ON p.sid = a.sid
),
scored AS (
    SELECT subject_key, raw_score, CAST(round(CAST({clamp} AS {D})) AS BIGINT) AS score FROM raw
)
SELECT subject_key, score, {grade_case} AS grade, raw_score
FROM scored
ORDER BY subject_key
"""


def _repairs(breaches: list[tuple], events: list[tuple], units: dict[str, Fraction]) -> list[tuple]:
    """One person's repaired findings of one rule: [(source_id, record_id)] (see _repair_queue)."""
    return [(source_id, record_id) for source_id, record_id, _ in _repair_queue(breaches, events, units)]


def _repair_queue(breaches: list[tuple], events: list[tuple], units: dict[str, Fraction]) -> list[tuple]:
    """One person's repaired findings of one rule: [(source_id, record_id, repaired_on)].

    breaches: (occurred_on, source_id, record_id) of the counting findings of the rule; events:
    (occurred_on, item_code, quantity or None) of the person's current findings of the energy
    items.  Breaches oldest first (ties source_id, record_id) each take one whole unit from the
    earliest energy on or after their own day that no older breach has taken; repaired_on is the
    day of the energy that completes the unit."""
    left = sorted([day, Fraction(1 if q is None else Fraction(q)) / units[item]] for day, item, q in events)
    repaired = []
    for day, source_id, record_id in sorted(breaches):
        need = Fraction(1)
        for event in left:
            if event[0] < day or event[1] == 0:
                continue
            take = min(need, event[1])
            event[1] -= take
            need -= take
            if need == 0:
                repaired.append((source_id, record_id, event[0]))
                break
        if need > 0:
            break  # the energy after this breach is short of a unit: no later breach has more
    return repaired


def _repair_table(con: duckdb.DuckDBPyConnection, scheme: Scheme) -> pa.Table:
    rows: list[tuple] = []
    for r in scheme.rules:
        if not r.energy:
            continue
        units = {item: Fraction(u) for item, u in r.energy}
        breaches: dict[int, list] = {}
        for sid, day, source_id, record_id in con.execute(
                "SELECT sid, occurred_on, source_id, record_id FROM counted WHERE rule_idx = $idx",
                {"idx": r.idx}).fetchall():
            breaches.setdefault(sid, []).append((day, source_id, record_id))
        events: dict[int, list] = {}
        if breaches:
            items = ", ".join(_sql_str(i) for i in units)
            for sid, day, item, quantity in con.execute(
                    f"SELECT c.sid, c.occurred_on, c.item_code, c.quantity FROM cur c "
                    f"SEMI JOIN (SELECT DISTINCT sid FROM counted WHERE rule_idx = $idx) b ON b.sid = c.sid "
                    f"WHERE c.item_code IN ({items})", {"idx": r.idx}).fetchall():
                events.setdefault(sid, []).append((day, item, quantity))
        for sid, own in breaches.items():
            rows += [(sid, *repair) for repair in _repair_queue(own, events.get(sid, []), units)]
    return pa.table({"sid": pa.array([x[0] for x in rows], pa.int32()),
                     "source_id": pa.array([x[1] for x in rows], pa.string()),
                     "record_id": pa.array([x[2] for x in rows], pa.string()),
                     "repaired_on": pa.array([x[3] for x in rows], pa.date32())})


def score_reference(
    tables: Mapping[str, Any],
    scheme_yaml: Path | str,
    month: str,
    *,
    mask_working_days: int = 10,
    threads: int | None = None,
    lines: bool = False,
    lines_to: Path | str | None = None,
) -> pa.Table | tuple[pa.Table, pa.Table]:
    """Score every adult of ``month`` under the scheme file ``scheme_yaml``.

    ``tables`` maps ``findings``, ``population``, ``appeals``, ``optouts`` to a pyarrow.Table or a
    list of parquet paths (Hive partition folders such as ``source_id=court/`` are read back as
    columns).  ``appeals`` and ``optouts`` may be missing or empty.  ``population`` may hold every
    snapshot (months_resident counts those up to ``month``).  Returns
    ``subject_key, score (int64), grade, raw_score (decimal)`` sorted by subject_key; with
    ``lines=True`` the pair (scores, explanation lines), the lines with the columns
    reference.duckdb_lines.LINE_COLUMNS (the lines that explain the month, SPEC §5 as amended).
    ``lines_to``: also write those lines to this parquet file (by DuckDB, without collecting them).
    """
    from reference.duckdb_lines import lines_sql  # it reads this module's temporary tables

    scheme = load_scheme(scheme_yaml)
    asof = month_last_day(month)
    if scheme.effective_from and month < scheme.effective_from:
        raise ValueError(f"scheme {scheme.scheme} is effective from {scheme.effective_from}, not {month}")
    cutoff = appeal_mask_cutoff(asof, mask_working_days)

    tmp = tempfile.mkdtemp(prefix="refduck-")
    con = duckdb.connect(config={"temp_directory": tmp})

    def run(sql: str) -> duckdb.DuckDBPyConnection:
        params = {"month": month, "asof": asof, "cutoff": cutoff}
        return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})

    try:
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = false")
        findings_cols = _register_input(con, "findings", tables.get("findings"), optional=False)
        _register_input(con, "population", tables.get("population"), optional=False)
        appeal_cols = _register_input(con, "appeals", tables.get("appeals"), optional=True)
        optout_cols = _register_input(con, "optouts", tables.get("optouts"), optional=True)
        for name, table in _rules_tables(scheme).items():
            con.register(name, table)
        for statement in _stage_sql(scheme, appeal_cols, optout_cols, findings_cols):
            run(statement)
        con.register("repaired", _repair_table(con, scheme))
        for statement in _totals_sql(scheme):
            run(statement)
        out = run(_scores_sql(scheme)).fetch_arrow_table()
        explanation = lines_sql(scheme.scale, scheme.scheme, month)
        if lines_to is not None:
            con.execute(f"COPY ({explanation}) TO {_sql_str(os.fspath(lines_to))} (FORMAT parquet)")
        if lines:
            out = (out, con.execute(explanation).fetch_arrow_table())
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _delta_files(path: Path, predicate: list | None = None) -> list[str]:
    if not path.exists():
        return []
    from deltalake import DeltaTable  # only to list the current files

    table = DeltaTable(str(path))
    features = set(getattr(table.protocol(), "reader_features", None) or [])
    if "deletionVectors" in features:
        raise SystemExit(f"{path}: deletion vectors enabled; a file list is not the table's state")
    uris = table.file_uris(file_pruning_predicate=predicate) if predicate else table.file_uris()
    return [u[len("file://"):] if u.startswith("file://") else u for u in uris]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.duckdb_scorer", description=__doc__.split("\n\n")[0])
    ap.add_argument("--warehouse", required=True, type=Path)
    ap.add_argument("--rules", required=True, type=Path, help="rules folder holding <scheme>.yaml")
    ap.add_argument("--scheme", required=True)
    ap.add_argument("--month", required=True, help="score month YYYY-MM")
    ap.add_argument("--out", type=Path, help="write the scores to this parquet file")
    ap.add_argument("--lines-out", type=Path, help="write the explanation lines to this parquet file")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--mask-working-days", type=int, default=10)
    ap.add_argument("--show", type=int, default=0, metavar="N", help="also print the first N score rows")
    args = ap.parse_args(argv)

    silver = args.warehouse / "silver"
    t0 = time.perf_counter()
    tables = {
        "findings": _delta_files(silver / "findings"),
        # every snapshot up to M: subject rules may count the months a person is resident
        "population": _delta_files(silver / "population", [("snapshot_month", "<=", args.month)]),
        "appeals": _delta_files(silver / "appeals"),
        "optouts": _delta_files(silver / "optouts"),
    }
    if not (silver / "findings").exists():
        print(f"no silver/findings table under {args.warehouse}", file=sys.stderr)
        return 2
    if not tables["population"]:
        print(f"no silver/population snapshot for {args.month} under {args.warehouse}", file=sys.stderr)
        return 2
    if args.lines_out:
        args.lines_out.parent.mkdir(parents=True, exist_ok=True)
    scores = score_reference(
        tables,
        args.rules / f"{args.scheme}.yaml",
        args.month,
        mask_working_days=args.mask_working_days,
        threads=args.threads,
        lines_to=args.lines_out,
    )
    wall = time.perf_counter() - t0
    if args.out:
        import pyarrow.parquet as pq

        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(scores, args.out)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    grades: dict[str, int] = {}
    for g in scores.column("grade").to_pylist():
        grades[g] = grades.get(g, 0) + 1
    print(f"scheme={args.scheme} month={args.month} rows={scores.num_rows}")
    print("grades: " + ", ".join(f"{g}={n}" for g, n in sorted(grades.items())))
    print(f"wall_time_s={wall:.3f} peak_rss_mib={peak_mib:.1f}")
    for row in scores.slice(0, max(args.show, 0)).to_pylist():
        print(f"{row['subject_key']}\t{row['score']}\t{row['grade']}\t{row['raw_score']}")
    if args.out:
        print(f"wrote {args.out}")
    if args.lines_out:
        print(f"wrote {args.lines_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
