"""What is wrong with each quarantined row, in words a department can act on (SPEC §2: bad input
is never lost and the department can repair it), and the summary a refused batch gives: the
files, the reason codes with counts, and an example line for each.

A detail names the column, the value found and what was expected — `occurred_on '2026-09-01'
is not a date in %Y%m%d, the date_format conf/sources.yaml declares for urban_management`,
`the same identity number as pop_a.parquet line 12` — but never an identity number or a name
(SPEC §7): for those columns it says what is wrong with the value instead
(`identity.id_number_problem`).

The phrases follow from the suite: each row-level expectation's type, its column, and for a
helper column the derivation that computed it (derive.DERIVATIONS); a suite check of another
shape falls back to its reason code and description.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..identity import id_number_problem
from .controls import control_detail, controls_column

#: columns whose values never appear in a detail or a message
PERSONAL_COLUMNS = frozenset({"id_number", "name"})

#: what a suite parameter's value set stands for
_PARAMETER_WORDS = {
    "catalogue_items": "the catalogue (rules/catalogue.yaml)",
    "source_items": "the items conf/sources.yaml allows {source}",
    "findings_sources": "the findings sources of conf/sources.yaml",
    "month_end": "the month's last day",
    "month_start": "the month's first day",
}


@dataclass
class CheckFailure:
    """One row-level expectation of the suite and the rows it quarantines."""

    check: str
    reason: str
    type: str
    kwargs: dict
    meta: dict
    mask: np.ndarray


@dataclass
class SourceContext:
    """What the phrases need to know about the delivery."""

    source_id: str
    kind: str
    date_format: str
    date_format_declared: bool     # the source declares it (else the ISO default)
    derived: dict                  # the suite's derived columns: name → spec
    params: dict                   # suite parameters of the run
    forbidden: frozenset           # validation.forbidden_columns
    first_of: dict = field(default_factory=dict)   # column → first_occurrences (delivery
    #                                                positions) of the rows of the frame
    place: Callable[[int], str] | None = None      # delivery position → "<file> line <n>"


def _value(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return "empty"
    text = str(v)
    return repr(text if len(text) <= 40 else text[:37] + "…")


def _resolve(ctx: SourceContext, value):
    """A suite kwarg as its words: a parameter by what it stands for (and its value, if
    short), a literal as itself."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        words = _PARAMETER_WORDS.get(name, name).format(source=ctx.source_id)
        actual = ctx.params.get(name)
        return f"{words} {actual}" if isinstance(actual, str) else words
    if isinstance(value, (list, tuple, set)):
        items = [str(v) for v in value]
        return "one of " + ", ".join(items[:8]) + (" …" if len(items) > 8 else "")
    return str(value)


def _date_pattern(ctx: SourceContext) -> str:
    if ctx.date_format_declared:
        return (f"{ctx.date_format}, the date_format conf/sources.yaml declares for "
                f"{ctx.source_id}")
    return f"{ctx.date_format} (ISO, the default date format)"


def _phrase(ctx: SourceContext, df: pd.DataFrame, failure: CheckFailure):
    """A function row position → the detail of this failure there."""
    column = failure.kwargs.get("column")
    spec = ctx.derived.get(column) or {}
    function = spec.get("function")
    source = spec.get("column", column)
    def column_values(name):      # numpy, not pandas .iat: ~50x faster per row
        return df[name].to_numpy(dtype=object) if name in df.columns else None

    values = column_values(source)
    personal = source in PERSONAL_COLUMNS
    kind = failure.type
    description = failure.meta.get("description")

    def val(pos):
        return None if values is None else values[pos]

    if column == "_error":
        details = column_values("_detail")
        return lambda pos: ((details[pos] if details is not None else None)
                            or description or failure.reason)
    if kind == "expect_column_values_to_not_be_null":
        return lambda pos: f"{source} is missing"
    if function == "valid_id_number":
        return lambda pos: f"{source}: {id_number_problem(val(pos))}"
    if function == "date_ok":
        pattern = _date_pattern(ctx)
        return lambda pos: f"{source} {_value(val(pos))} is not a date in {pattern}"
    if function == "duplicated":
        first = ctx.first_of.get(source)

        def repeated(pos):
            where = (ctx.place(first[pos]) if first is not None and first[pos] >= 0
                     else "an earlier row")
            if personal:
                return f"the same {source} as {where}"
            return f"{source} {_value(val(pos))} repeats {where}"
        return repeated
    if function == "level_ok":
        items = column_values(spec["item_column"])
        return lambda pos: (f"{source} {_value(val(pos))} is not a level of "
                            f"{items[pos]} in the catalogue")
    if function in ("forbidden_keys", "unknown_keys"):
        keys = column_values("_extra")
        forbidden = function == "forbidden_keys"
        what = "forbidden (SPEC §7)" if forbidden else f"not in the {ctx.kind} contract"

        def extra(pos):
            named = [k for k in str(keys[pos]).split(";") if (k in ctx.forbidden) == forbidden]
            return f"key(s) {', '.join(named)}: {what}"
        return extra
    if function == "control_characters":
        where = controls_column(df, spec.get("columns") or [c for c in df.columns
                                                            if not c.startswith("_")])
        return lambda pos: control_detail(df, pos, where.iat[pos])
    shown = (lambda pos: "") if personal else (lambda pos: " " + _value(val(pos)))
    if kind == "expect_column_values_to_be_between" and function == "date_value":
        low, high = failure.kwargs.get("min_value"), failure.kwargs.get("max_value")
        need = (f"after {_resolve(ctx, high)}" if low is None else
                f"before {_resolve(ctx, low)}" if high is None else
                f"outside {_resolve(ctx, low)} … {_resolve(ctx, high)}")
        return lambda pos: f"{source} {_value(val(pos))} is {need}"
    if kind == "expect_column_values_to_be_between":
        low, high = failure.kwargs.get("min_value"), failure.kwargs.get("max_value")
        bounds = []
        if low is not None:
            bounds.append(f"at least {_resolve(ctx, low)}")
        if high is not None:
            bounds.append(f"at most {_resolve(ctx, high)}")
        need = " and ".join(bounds)
        return lambda pos: f"{source}{shown(pos)} is not {need}"
    if kind == "expect_column_values_to_be_in_set" and not function:
        value_set = failure.kwargs.get("value_set")
        allowed = _resolve(ctx, value_set)
        verb = "is not" if isinstance(value_set, (list, tuple, set)) else "is not in"
        return lambda pos: f"{source}{shown(pos)} {verb} {allowed}"
    if kind == "expect_column_values_to_match_regex" or function == "matches":
        need = description or f"the pattern {failure.kwargs.get('regex') or spec.get('pattern')}"
        return lambda pos: f"{source}{shown(pos)}: expected {need}"
    return lambda pos: f"{source}{shown(pos)}: {description or failure.check}"


@dataclass
class RowDetails:
    """The details of the quarantined rows, per reason code and row position."""

    by_reason: dict[str, dict[int, str]]

    def of_rows(self, positions) -> list[str | None]:
        """Per row position: its details, reason by reason (sorted), '; '-joined."""
        out = []
        for pos in positions:
            texts = [by_pos[pos] for reason, by_pos in sorted(self.by_reason.items())
                     if pos in by_pos]
            out.append("; ".join(texts) if texts else None)
        return out


def row_details(ctx: SourceContext, df: pd.DataFrame,
                failures: list[CheckFailure]) -> RowDetails:
    """The detail of every failing (row, check), grouped by reason code; a row failing two
    checks of one reason gets both, ', '-joined."""
    by_reason: dict[str, dict[int, str]] = {}
    for failure in failures:
        positions = np.flatnonzero(failure.mask)
        if not len(positions):
            continue
        phrase = _phrase(ctx, df, failure)
        texts = by_reason.setdefault(failure.reason, {})
        for pos in positions.tolist():
            text = phrase(pos)
            texts[pos] = f"{texts[pos]}, {text}" if pos in texts else text
    return RowDetails(by_reason)


def refusal_summary(landed_per_file: dict[str, int], bad_per_file: dict[str, int],
                    reasons: dict[str, list]) -> str:
    """Which files the bad rows are in (bad of landed per file, by file name), then per reason
    code (most rows first) its count and one example line with its detail — the first row of
    the delivery with it. `reasons`: code → [rows, file, line, detail of the example]."""
    per_file = [f"{name} {bad_per_file[name]} of {landed}"
                for name, landed in sorted(landed_per_file.items()) if bad_per_file.get(name)]
    shown = [f"{reason} {rows} (e.g. {file} line {line}: {detail})"
             for reason, (rows, file, line, detail)
             in sorted(reasons.items(), key=lambda kv: (-kv[1][0], kv[0]))]
    return (f"Bad rows by file: {', '.join(per_file)}."
            + (f" By reason: {'; '.join(shown)}." if shown else ""))
