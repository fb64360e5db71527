"""Who is scored for a month (SPEC §2.2, §7) — the one definition, used by scoring and by the
publication checks: the population snapshot of M, `status = active`, aged 18 or more on the last
day of M, less everyone who opted out on or before that day.

The scored subjects carry the person attributes rule format v2's subject rules test (SPEC §4.1):
`residency`, `district` and `birth_date` from the snapshot of M (age is computed by scoring on
the as-of date) and, when asked for, `months_resident`: the number of monthly snapshots up to and
including M in which the person is active (it reads every snapshot up to M, so only schemes that
test it pay for it; the scoring job reads it from silver/residence instead when that is kept as
of M: silver.residence)."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..months import last_day

#: the columns of the scored subjects (months_resident only when asked for)
SUBJECT_COLUMNS = ["subject_key", "birth_date", "district", "residency"]


def adults_of(population: DataFrame, month: str) -> DataFrame:
    """silver/population rows (the snapshot of `month`, or more snapshots) → the month's adults:
    subject_key, birth_date, district, residency.

    A snapshot holds each person once (landing quarantines a repeated identity number), so no
    distinct() — an extra shuffle; publishing checks every adult is scored exactly once."""
    as_of = last_day(month)
    return (population
            .where((F.col("snapshot_month") == month) & (F.col("status") == "active")
                   & (F.add_months(F.col("birth_date"), 18 * 12) <= F.lit(as_of)))
            .select(*SUBJECT_COLUMNS))


def months_resident(population: DataFrame, month: str) -> DataFrame:
    """subject_key, months_resident: the snapshots of months up to and including `month` in
    which the person is active (`population`: silver/population, any snapshots)."""
    return (population.where((F.col("snapshot_month") <= month) & (F.col("status") == "active"))
            .groupBy("subject_key").agg(F.count(F.lit(1)).cast("int").alias("months_resident")))


def exclude_opted_out(subjects: DataFrame, optouts: DataFrame, as_of: dt.date) -> DataFrame:
    """Subjects (a `subject_key` column) less the persons who opted out on or before `as_of`:
    they are not scored at all and their findings do not count (their data is deleted, SPEC §7)."""
    gone = optouts.where(F.col("requested_on") <= F.lit(as_of)).select("subject_key").distinct()
    return subjects.join(F.broadcast(gone), "subject_key", "left_anti")


def scored_subjects(population: DataFrame, optouts: DataFrame, month: str,
                    with_months_resident: bool = False) -> DataFrame:
    """The subjects scored for `month`: adults_of, then exclude_opted_out at its last day;
    with_months_resident adds months_resident (then `population` must hold the snapshots up to
    the month, not only its own)."""
    subjects = exclude_opted_out(adults_of(population, month), optouts, last_day(month))
    if with_months_resident:
        subjects = subjects.join(months_resident(population, month), "subject_key", "left")
    return subjects
