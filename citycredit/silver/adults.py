"""Who is scored for a month (SPEC §2.2, §7) — the one definition, used by scoring and by the
publication checks: the population snapshot of M, `status = active`, aged 18 or more on the last
day of M, less everyone who opted out on or before that day."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..months import last_day


def adults_of(population: DataFrame, month: str) -> DataFrame:
    """silver/population rows → the month's adults: one column `subject_key`.

    A snapshot holds each person once (landing quarantines a repeated identity number), so no
    distinct() — an extra shuffle; publishing checks every adult is scored exactly once."""
    as_of = last_day(month)
    return (population
            .where((F.col("snapshot_month") == month) & (F.col("status") == "active")
                   & (F.add_months(F.col("birth_date"), 18 * 12) <= F.lit(as_of)))
            .select("subject_key"))


def exclude_opted_out(subjects: DataFrame, optouts: DataFrame, as_of: dt.date) -> DataFrame:
    """Subjects (a `subject_key` column) less the persons who opted out on or before `as_of`:
    they are not scored at all and their findings do not count (their data is deleted, SPEC §7)."""
    gone = optouts.where(F.col("requested_on") <= F.lit(as_of)).select("subject_key").distinct()
    return subjects.join(F.broadcast(gone), "subject_key", "left_anti")


def scored_subjects(population: DataFrame, optouts: DataFrame, month: str) -> DataFrame:
    """The subjects scored for `month`: adults_of, then exclude_opted_out at its last day."""
    return exclude_opted_out(adults_of(population, month), optouts, last_day(month))
