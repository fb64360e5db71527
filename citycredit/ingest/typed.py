"""Typed delivered values read by their meaning, not by a library's default (SPEC §2): what a
Parquet column or a JSON number means as the text the contract's checks read — converted
exactly, or refused naming the column and its type; never shifted, rounded, or refused for a
harmless representation of an exact value.

* a timestamp is the date in Asia/Shanghai at that instant (a zoneless one: the date of a
  midnight; with a time of day it is refused — which day it is depends on a zone it lacks);
* decimals of any precision and scale, and floats, are their exact plain decimal text
  (`12.5000000000` → `12.5`, `1.25e1` → `12.5`; a float by its shortest text, 0.1 → `0.1`);
* identity numbers are text or integers, never floats (which keep 15–17 digits of 18).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .contracts import Contract

#: the zone a timestamp's date is taken in (the cities' own; SPEC §2 dates are local dates)
LOCAL_ZONE = "Asia/Shanghai"

_WHAT = {"date": "a date", "decimal": "a decimal quantity", "identity number": "an identity number",
         "text": "text"}


def plain_decimal(literal: str) -> str:
    """The exact value of a number's text in plain notation, without trailing fractional
    zeros (`12.50` → `12.5`, `1.5E1` → `15`, `-0.0` → `0`); the text itself if it is not a
    finite number (validation then names it)."""
    try:
        value = Decimal(literal)
    except InvalidOperation:
        return literal
    if not value.is_finite():
        return literal
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def column_role(contract: Contract, name: str) -> str:
    """What a contract column holds: date, decimal, identity number or text."""
    if name in contract.dates:
        return "date"
    if name in contract.decimals:
        return "decimal"
    if name == "id_number":
        return "identity number"
    return "text"


def _first_line(mask) -> int:
    """1-based row number of the first true value of a boolean array."""
    return int(np.flatnonzero(np.asarray(pc.fill_null(mask, False)))[0]) + 1


def _plain_numbers(arr: pa.Array) -> pa.Array:
    """Decimal or float values → their exact plain decimal text (`plain_decimal`): arrow
    casts in bulk, Python only for the few it writes with an exponent."""
    text = arr.cast(pa.string())
    text = pc.replace_substring_regex(text, r"^(-?[0-9]+\.[0-9]*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    text = pc.if_else(pc.equal(text, "-0"), "0", text)
    exp = pc.fill_null(pc.match_substring(text, "e", ignore_case=True), False)
    if pc.any(exp).as_py():
        values = text.to_pylist()
        for i in np.flatnonzero(np.asarray(exp)):
            values[i] = plain_decimal(values[i])
        text = pa.array(values, pa.string())
    return text


def _timestamps_as_dates(arr: pa.Array, name: str, refuse: Callable[[str], Exception]) -> pa.Array:
    """A timestamp column → the dates it means: with a zone, the date in Asia/Shanghai at that
    instant; without one, the date of a midnight (a date written as a timestamp)."""
    t = arr.type
    if t.tz is None:
        day = arr.cast(pa.date32())
        off = pc.not_equal(day.cast(t), arr)
        if pc.any(off).as_py():
            raise refuse(f"column {name} is {t} without a time zone and holds times of day "
                         f"(first on line {_first_line(off)}): which day it is depends on a "
                         "zone it does not name — deliver dates, or timestamps with their zone")
        return day
    local = arr.cast(pa.timestamp(t.unit, tz=LOCAL_ZONE))
    try:
        return pc.local_timestamp(local).cast(pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # no time-zone database for arrow: Python's zoneinfo (the tzdata package) per value
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(LOCAL_ZONE)
        return pa.array([None if v is None else v.astimezone(zone).date()
                         for v in arr.to_pylist()], pa.date32())


def column_as_text(arr: pa.Array, name: str, role: str, date_format: str,
                   refuse: Callable[[str], Exception]) -> pa.Array:
    """A Parquet column → text the contract's checks read, by the column's meaning (`role`,
    see column_role); `refuse(reason)` makes the file-level error raised for a type that
    cannot hold the meaning (the reason names column and type):

    * dates: date32/date64 and timestamps are written in the source's `date_format`, so one
      date check fits every format; integers only where that pattern is all digits
      (`%Y%m%d`); anything else is refused;
    * the decimal quantity: integers, decimals and floats → exact plain text; validation then
      checks that the value fits decimal(18,4) (a value that needs rounding is quarantined);
    * identity numbers: text, integers, decimals without a fraction — never floats;
    * other text: strings, integers, decimals, booleans (`true`/`false`), floats below 2^53.
    Binary columns must be UTF-8 text. Times of day, durations, nested and other types are
    refused.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type

    def wrong_type(why: str = "") -> Exception:
        return refuse(f"column {name} has type {t}, which cannot hold {_WHAT[role]} exactly"
                      + (f" ({why})" if why else "")
                      + (" — deliver identity numbers as text" if role == "identity number"
                         else ""))

    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        try:
            return arr.cast(pa.string())
        except pa.ArrowInvalid:
            raise refuse(f"column {name} has type {t} and holds bytes that are not UTF-8 "
                         "text") from None
    if role == "date":
        if pa.types.is_date(t):
            return pc.strftime(arr.cast(pa.date32()).cast(pa.timestamp("s")), format=date_format)
        if pa.types.is_timestamp(t):
            days = _timestamps_as_dates(arr, name, refuse)
            return pc.strftime(days.cast(pa.timestamp("s")), format=date_format)
        if pa.types.is_integer(t) and dt.date(2026, 1, 2).strftime(date_format).isdigit():
            return arr.cast(pa.string())
        raise wrong_type(f"dates are date32/date64, timestamps, or text in {date_format}")
    if pa.types.is_integer(t):
        return arr.cast(pa.string())
    if pa.types.is_decimal(t):
        text = _plain_numbers(arr)
        if role == "identity number" and pc.any(
                pc.fill_null(pc.match_substring(text, "."), False)).as_py():
            raise wrong_type("values with a fraction")
        return text
    if pa.types.is_floating(t):
        if role == "identity number":
            raise wrong_type("floating point keeps 15-17 significant digits")
        if role == "text":
            big = pc.greater_equal(pc.abs(arr), 2.0 ** 53)
            if pc.any(pc.fill_null(big, False)).as_py():
                raise wrong_type(f"values from 2^53 on are rounded, line {_first_line(big)}")
        return _plain_numbers(arr)
    if pa.types.is_boolean(t) and role == "text":
        return arr.cast(pa.string())
    raise wrong_type()
