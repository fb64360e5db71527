"""Chinese working days, for the appeal mask (黑河 rule: 3 days transfer + 7 days verification).

The calendar comes from the `holidays` package (China: statutory holidays and the 调休 make-up
working days, kept current every year), not a hand-written list.
"""
from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache

import holidays


@lru_cache(maxsize=None)
def _china(year: int):
    return holidays.China(years=range(year - 1, year + 2))


def is_working_day(day: dt.date) -> bool:
    return _china(day.year).is_working_day(day)


def last_day(month: str) -> dt.date:
    """'2026-02' → 2026-02-28, the as-of date of a score month."""
    year, mon = map(int, month.split("-"))
    return dt.date(year, mon, calendar.monthrange(year, mon)[1])


def appeal_mask_cutoff(as_of: dt.date, working_days: int) -> dt.date:
    """The latest filing date whose open appeal is masked on `as_of`.

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
