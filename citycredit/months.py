"""Score months (`YYYY-MM`), their dates, and Chinese working days — the one home of month
arithmetic in citycredit (the independent reference scorer keeps its own on purpose).

A score month M stands for its as-of date A = the last day of M (SPEC §4). `add_months` clamps
to the month's end the way Spark's `add_months` does (31 Jan + 1 month = 28/29 Feb), which is the
validity rule of SPEC §4 step 3. Working days come from the `holidays` package (China: statutory
holidays and the 调休 make-up working days, kept current every year), not a hand-written list.

The numpy functions at the end do the same arithmetic on whole arrays of day numbers (days since
1970-01-01) for the synthetic city, which mints millions of dates.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache

import numpy as np

#: a score month, `YYYY-MM`
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)


class MonthError(ValueError):
    """A value that should be a `YYYY-MM` month is not one."""


def is_month(value: object) -> bool:
    return isinstance(value, str) and bool(_MONTH.match(value))


def check_month(value: object, what: str = "month") -> str:
    """`value` if it is a `YYYY-MM` month, else MonthError naming `what`."""
    if not is_month(value):
        raise MonthError(f"{what} {value!r} is not a month: use YYYY-MM, e.g. 2026-03")
    return value  # type: ignore[return-value]


def _parts(month: str) -> tuple[int, int]:
    check_month(month)
    year, mon = month.split("-")
    return int(year), int(mon)


def month_of(day: dt.date) -> str:
    """2026-02-14 → '2026-02'."""
    return f"{day.year:04d}-{day.month:02d}"


def first_day(month: str) -> dt.date:
    year, mon = _parts(month)
    return dt.date(year, mon, 1)


def last_day(month: str) -> dt.date:
    """'2026-02' → 2026-02-28, the as-of date of a score month."""
    year, mon = _parts(month)
    return dt.date(year, mon, calendar.monthrange(year, mon)[1])


def shift_month(month: str, n: int) -> str:
    """The month n months after `month` (n may be negative): ('2026-01', -1) → '2025-12'."""
    year, mon = _parts(month)
    index = year * 12 + mon - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_before(month: str) -> str:
    return shift_month(month, -1)


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included ([] when last < first)."""
    out, month = [], check_month(first)
    check_month(last)
    while month <= last:
        out.append(month)
        month = shift_month(month, 1)
    return out


def add_months(day: dt.date, n: int) -> dt.date:
    """`day` + n months, clamped to the target month's end (Spark's add_months)."""
    index = day.year * 12 + day.month - 1 + n
    year, mon = index // 12, index % 12 + 1
    return dt.date(year, mon, min(day.day, calendar.monthrange(year, mon)[1]))


def full_months_column(start, as_of: dt.date):
    """As a Spark Column over a date column `start`: the largest m with add_months(start, m) <=
    as_of (month-end clamped; negative when start is after as_of; null stays null). Age in full
    years is this over the birth date, div 12; growth periods are it div every_months."""
    from pyspark.sql import functions as F

    a = F.lit(as_of)
    rough = (F.year(a) - F.year(start)) * 12 + F.month(a) - F.month(start)
    # add_months(start, rough) falls in A's month: later than A only when A is not a month end
    return F.when(F.add_months(start, rough) > a, rough - 1).otherwise(rough)


def score_month_of_run(logical_date, param_month: str | None = None) -> str:
    """The score month of a monthly run: the `month` param, else the month before the run's
    (logical) date — the run of 5 November scores October."""
    if param_month:
        return check_month(param_month, "the month param")
    if isinstance(logical_date, str):
        logical_date = dt.date.fromisoformat(logical_date[:10])
    return month_before(month_of(logical_date))


# ---------------------------------------------------------------------------------------------
# Chinese working days (the appeal mask, 黑河 rule: 3 days transfer + 7 days verification)
@lru_cache(maxsize=None)
def _china(year: int):
    import holidays

    return holidays.China(years=range(year - 1, year + 2))


def is_working_day(day: dt.date) -> bool:
    return _china(day.year).is_working_day(day)


def appeal_mask_cutoff(as_of: dt.date, working_days: int) -> dt.date:
    """The latest filing date whose open appeal is masked on `as_of` (SPEC §4 step 1).

    An appeal filed on F has waited the working days d with F < d <= as_of; it is masked when that
    count exceeds `working_days`. Walking back from `as_of`, the (working_days + 1)-th working day
    W is the first that makes the count large enough, so every F <= W - 1 day is masked.
    """
    seen, day = 0, as_of
    while True:
        if is_working_day(day):
            seen += 1
            if seen == working_days + 1:
                return day - dt.timedelta(days=1)
        day -= dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# the same arithmetic on numpy arrays of day numbers (days since 1970-01-01) and month indexes
# (months since 1970-01), for the synthetic city
def month_index(month: str) -> int:
    """'1970-01' → 0, '2026-10' → 681."""
    year, mon = _parts(month)
    return (year - 1970) * 12 + mon - 1


def month_of_index(index: int) -> str:
    return f"{1970 + index // 12:04d}-{index % 12 + 1:02d}"


def month_start_days(index) -> np.ndarray:
    """Month index (array) → day number of its first day."""
    return np.asarray(index, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]") \
        .astype(np.int64)


def month_index_of_days(days) -> np.ndarray:
    """Day numbers → month index of each."""
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]") \
        .astype(np.int64)


def year_of_days(days) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]") \
        .astype(np.int64) + 1970


def add_months_days(days, n) -> np.ndarray:
    """add_months with month-end clamping on day numbers (vectorised `add_months`)."""
    d = np.asarray(days, dtype=np.int64)
    m = month_index_of_days(d)
    day_of_month = d - month_start_days(m)
    target = m + np.asarray(n, dtype=np.int64)
    start = month_start_days(target)
    length = month_start_days(target + 1) - start
    return start + np.minimum(day_of_month, length - 1)
