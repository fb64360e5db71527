"""The helper columns of the suites (ingest.validate): where GX has no built-in expectation
(GB 11643 check digit, dates under a source's pattern, duplicates within a delivery, levels per
catalogue item, jsonl keys beyond the contract), a suite's `meta.citycredit.derived_columns`
names a function of DERIVATIONS that computes the column with Arrow, vectorised; a plain GX
expectation on it then decides.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..identity import valid_id_numbers
from .contracts import Contract
from .controls import controls_column


def _arrow_text(values: pd.Series) -> pa.Array:
    return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def _boolean(ok: np.ndarray, null: np.ndarray, index) -> pd.Series:
    return pd.Series(pd.arrays.BooleanArray(np.asarray(ok, dtype=bool) & ~null, null), index=index)


def parse_dates(values: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    """(dates as date32, ok) for text under a strptime pattern; strict: the text must be exactly
    what the pattern writes for that date (ISO: `2026-1-5` is not `2026-01-05`). Parsed once per
    distinct value. Null in → NA in both; unparseable → NA date, False ok."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed: list = []
    good = np.zeros(len(uniques) + 1, dtype=bool)   # last slot: the NA sentinel
    for i, text in enumerate(uniques):
        try:
            day = _dt.datetime.strptime(text, date_format).date()
            if day.strftime(date_format) != text:
                raise ValueError
        except (ValueError, TypeError):
            parsed.append(None)
            continue
        parsed.append(day)
        good[i] = True
    table = pa.array(parsed + [None], type=pa.date32())
    idx = np.where(codes < 0, len(uniques), codes)
    dates = pd.Series(pd.array(pc.take(table, pa.array(idx)), dtype=pd.ArrowDtype(pa.date32())),
                      index=values.index)
    ok = pd.Series(pd.arrays.BooleanArray(good[idx], codes < 0), index=values.index)
    return dates, ok


@dataclass
class DeriveContext:
    df: pd.DataFrame
    contract: Contract
    date_format: str
    catalogue_items: dict
    forbidden: frozenset
    cache: dict = field(default_factory=dict)

    def dates(self, column: str):
        if column not in self.cache:
            self.cache[column] = parse_dates(self.df[column], self.date_format)
        return self.cache[column]


def _d_valid_id_number(ctx: DeriveContext, spec: dict) -> pd.Series:
    return valid_id_numbers(ctx.df[spec["column"]])


def _d_date_ok(ctx: DeriveContext, spec: dict) -> pd.Series:
    return ctx.dates(spec["column"])[1]


def _d_date_value(ctx: DeriveContext, spec: dict) -> pd.Series:
    return ctx.dates(spec["column"])[0]


def _d_decimal_value(ctx: DeriveContext, spec: dict) -> pd.Series:
    """Numeric value (float, for sign/range checks only) of text matching `pattern`; else NaN."""
    arr = _arrow_text(ctx.df[spec["column"]])
    ok = pc.fill_null(pc.match_substring_regex(arr, spec["pattern"]), False)
    text = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    return pd.Series(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False),
                     index=ctx.df.index)


def _d_matches(ctx: DeriveContext, spec: dict) -> pd.Series:
    """Does the text match `pattern` (pyarrow regex, vectorised; GX's own pandas regex runs
    Python's re row by row)? NA where null."""
    arr = _arrow_text(ctx.df[spec["column"]])
    null = arr.is_null().to_numpy(zero_copy_only=False)
    ok = pc.fill_null(pc.match_substring_regex(arr, spec["pattern"]), False)
    return _boolean(ok.to_numpy(zero_copy_only=False), null, ctx.df.index)


def first_occurrences(values) -> np.ndarray:
    """For each row, the position of the first earlier row with the same value (row order),
    or -1 (the first occurrence, or null): a duplicate can name what it repeats.

    `values`: a pandas Series or a pyarrow (Chunked)Array of text. Arrow's hash table encodes
    the column (exact string equality, no Python per row; one table across chunks, so codes
    agree between them); codes are handed out in order of first appearance, so a row is a
    first occurrence exactly when its code exceeds every code before it, and code k's first
    row is the k-th such row. Works on 32-bit codes: ~40 bytes a row besides Arrow's table."""
    arr = (pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
           if isinstance(values, pd.Series) else values)
    n = len(arr)
    first = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return first
    encoded = pc.dictionary_encode(arr)
    parts = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    codes = np.concatenate([pc.fill_null(part.indices, -1).to_numpy(zero_copy_only=False)
                            for part in parts])
    del encoded, parts
    seen_max = np.maximum.accumulate(codes)
    is_first = np.empty(n, dtype=bool)
    is_first[0] = codes[0] >= 0
    np.greater(codes[1:], seen_max[:-1], out=is_first[1:])
    del seen_max
    first_rows = np.flatnonzero(is_first)
    repeat = ~is_first & (codes >= 0)
    first[repeat] = first_rows[codes[repeat]]
    return first


def duplicated_later(values: pd.Series) -> np.ndarray:
    """True for the second and later occurrences of a value (in row order); nulls never."""
    return first_occurrences(values) >= 0


def _d_duplicated(ctx: DeriveContext, spec: dict) -> pa.Array:
    """The chunk's part of a delivery-wide derivation: the key column as Arrow text. The whole
    delivery's column is `_duplicated_over` of all parts (DeliveryChecks)."""
    return _arrow_text(ctx.df[spec["column"]])


def _duplicated_over(parts: list[pa.Array], n: int) -> tuple[pd.Series, np.ndarray]:
    """True for the second and later rows with the same value (delivery order); NA where null;
    and the first occurrences (first_occurrences), kept for the quarantine's detail."""
    values = pa.chunked_array(parts, pa.string())
    first = first_occurrences(values)
    null = pc.is_null(values).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    return _boolean(first >= 0, null, pd.RangeIndex(n)), first


def _d_level_ok(ctx: DeriveContext, spec: dict) -> pd.Series:
    """Is `level` one of the catalogue levels of the row's item? NA where there is no level or
    the item is missing / unknown (those rows have their own reason). An item without levels
    takes none."""
    item, level = _arrow_text(ctx.df[spec["item_column"]]), _arrow_text(ctx.df[spec["column"]])
    allowed = pa.array(sorted(f"{code}\x1f{lv}" for code, levels in ctx.catalogue_items.items()
                              for lv in (levels or ())), pa.string())
    known = pc.and_(pc.is_in(item, value_set=pa.array(sorted(ctx.catalogue_items), pa.string())),
                    pc.is_valid(level))
    known = pc.fill_null(known, False).to_numpy(zero_copy_only=False)
    pair = pc.binary_join_element_wise(item, level, "\x1f")
    ok = pc.fill_null(pc.is_in(pair, value_set=allowed), False).to_numpy(zero_copy_only=False)
    return _boolean(ok, ~known, ctx.df.index)


def _extra_keys(ctx: DeriveContext, forbidden: bool) -> pd.Series:
    """The row's jsonl keys beyond the contract that are (not) forbidden; categorical, mostly
    null (cheap for GX to test for null)."""
    extra = ctx.df["_extra"]
    out = np.full(len(extra), None, dtype=object)
    for pos in np.flatnonzero(extra.notna().to_numpy()):
        keys = [k for k in extra.iat[pos].split(";") if (k in ctx.forbidden) == forbidden]
        out[pos] = ";".join(keys) if keys else None
    return pd.Series(pd.Categorical(out), index=extra.index)


def _d_forbidden_keys(ctx: DeriveContext, spec: dict) -> pd.Series:
    return _extra_keys(ctx, True)


def _d_unknown_keys(ctx: DeriveContext, spec: dict) -> pd.Series:
    return _extra_keys(ctx, False)


def _d_control_characters(ctx: DeriveContext, spec: dict) -> pd.Series:
    """The columns (';'-joined) whose value still holds a control character once padding is
    removed (ingest.controls), or null; `columns` defaults to the contract's."""
    return controls_column(ctx.df, spec.get("columns") or ctx.contract.columns)


#: derivations whose value for a row depends on the whole delivery: each chunk gives its part
#: (DERIVATIONS), combined once every chunk is in (DeliveryChecks.run_row_checks)
DELIVERY_WIDE = {"duplicated": _duplicated_over}

DERIVATIONS: dict[str, Callable[[DeriveContext, dict], pd.Series]] = {
    "valid_id_number": _d_valid_id_number,
    "date_ok": _d_date_ok,
    "date_value": _d_date_value,
    "decimal_value": _d_decimal_value,
    "matches": _d_matches,
    "duplicated": _d_duplicated,
    "level_ok": _d_level_ok,
    "forbidden_keys": _d_forbidden_keys,
    "unknown_keys": _d_unknown_keys,
    "control_characters": _d_control_characters,
}
