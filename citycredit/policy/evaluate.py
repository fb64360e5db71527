"""Evaluation of a scheme (issue "Policy tools" item 3): does the grade at M order people by
what happens next (validity, discrimination), is the distribution stable, and how are grades
shared among groups (fairness). Pure steps: DataFrames in, small pandas tables out, measures
from citycredit.policy.measures.

Outcome ("bad"): a subject scored at M with a new serious negative finding — an item of
`policy.outcome_items` (default the court listing, serious administrative penalties and
commitment breaches) that occurred after the as-of date of M and within the outcome window
(`policy.outcome_months`, default 12, shortened to the months delivered so far), read from
silver as known at the window's last month (later deliveries of events in the window count),
active and not overturned on appeal (scoring.appeal_flags, as known then).

Groups (fairness): district, age band on the as-of date, sex and residency (hukou / permit), from
the population snapshot of M.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..months import last_day
from ..rules import Catalogue, Scheme
from ..scoring import appeal_flags
from ..silver.versions import as_known_at
from . import measures

#: age bands (first age, last age; None = open), the usual survey bands of adults
AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, None))
ATTRIBUTES = ("district", "age_band", "sex", "residency")


class OutcomeItemError(ValueError):
    """policy.outcome_items names an item (or level) the catalogue does not have."""


def parse_outcome_items(items: Iterable[str], catalogue: Catalogue) -> list[tuple[str, str | None]]:
    """`ITEM` or `ITEM:level` → (item, level or None), checked against the catalogue."""
    out = []
    for text in items:
        item, _, level = str(text).partition(":")
        if item not in catalogue:
            raise OutcomeItemError(f"conf policy.outcome_items: unknown item {item!r} "
                                   f"(catalogue: {', '.join(catalogue.items)})")
        levels = catalogue[item].levels
        if level and (not levels or level not in levels):
            raise OutcomeItemError(f"conf policy.outcome_items: item {item} has no level "
                                   f"{level!r} (levels: {', '.join(levels or ()) or 'none'})")
        out.append((item, level or None))
    return out


def outcome_subjects(findings: DataFrame, appeals: DataFrame, month: str, last_month: str,
                     items: list[tuple[str, str | None]]) -> DataFrame:
    """subject_key of everyone with an outcome finding occurring after last_day(month) and on
    or before last_day(last_month), as known at last_month.

    In: silver/findings and silver/appeals (all versions)."""
    start, end = last_day(month), last_day(last_month)
    matches = F.lit(False)
    for item, level in items:
        cond = F.col("item_code") == item
        if level:
            cond = cond & (F.col("level") == level)
        matches = matches | cond
    known = (as_known_at(findings, last_month)
             .where(matches & (F.col("status") == "active")
                    & (F.col("occurred_on") > F.lit(start)) & (F.col("occurred_on") <= F.lit(end))))
    upheld = appeal_flags(as_known_at(appeals, last_month), end, end) \
        .where("appeal_upheld").select("source_id", "record_id")
    return (known.join(F.broadcast(upheld), ["source_id", "record_id"], "left_anti")
            .select("subject_key").distinct())


def attributes(population: DataFrame, month: str) -> DataFrame:
    """subject_key, district, age_band ('18-24' … '65+'), sex, residency of the snapshot of M."""
    as_of = last_day(month)
    age = F.floor(F.months_between(F.lit(as_of), F.col("birth_date")) / 12)
    band = F.lit(None).cast("string")
    for low, high in AGE_BANDS:
        label = f"{low}+" if high is None else f"{low}-{high}"
        within = (age >= low) if high is None else (age >= low) & (age <= high)
        band = F.when(within, F.lit(label)).otherwise(band)
    return (population.where(F.col("snapshot_month") == month)
            .select("subject_key", "district", band.alias("age_band"), "sex", "residency"))


def frequency_table(scores: DataFrame, bad: DataFrame | None, groups: DataFrame) -> pd.DataFrame:
    """One row per (score, grade, bad, district, age_band, sex, residency) with its subjects:
    everything validity and fairness need, in one pass. `scores`: subject_key, score, grade;
    `bad`: subject_key of the bad subjects (None: no outcome window, bad = 0)."""
    df = scores
    if bad is not None:
        df = df.join(bad.withColumn("bad", F.lit(1)), "subject_key", "left")
    else:
        df = df.withColumn("bad", F.lit(None).cast("int"))
    df = df.join(groups, "subject_key", "left").withColumn("bad", F.coalesce("bad", F.lit(0)))
    freq = (df.groupBy("score", "grade", "bad", *ATTRIBUTES).count().toPandas())
    for column in ATTRIBUTES:
        freq[column] = freq[column].fillna("unknown")
    return freq


def grade_counts(scores: DataFrame) -> dict[str, int]:
    return {r.grade: r["count"] for r in scores.groupBy("grade").count().collect()}


def migration_counts(before: DataFrame, after: DataFrame) -> pd.DataFrame:
    """(from_grade, to_grade, count) for the subjects scored in both months."""
    return (before.select("subject_key", F.col("grade").alias("from_grade"))
            .join(after.select("subject_key", F.col("grade").alias("to_grade")), "subject_key")
            .groupBy("from_grade", "to_grade").count().toPandas())


# ---------------------------------------------------------------------------------------------
def incentive_grade(scheme: Scheme, configured: dict) -> str:
    """The grade whose "that grade or better" is the incentive threshold: conf
    policy.incentive_grades[scheme], else the first grade above that of a person with no
    finding at all (the base score): 海贝分 AA, 达子香分 AA, 湖州 GREEN."""
    grades = [g.grade for g in scheme.grades]
    chosen = configured.get(scheme.scheme)
    if chosen is not None:
        if chosen not in grades:
            raise measures.Unavailable(f"conf policy.incentive_grades: {scheme.scheme} has no "
                                       f"grade {chosen!r} (grades: {', '.join(grades)})")
        return chosen
    base = scheme.grade_for(scheme.base_score).grade
    position = grades.index(base)
    return grades[max(position - 1, 0)]


def validity(freq: pd.DataFrame, scheme: Scheme) -> tuple[dict, dict]:
    """(figures, reasons): auc, gini, ks, bad rate per grade, monotone and the grades where the
    bad rate does not fall as the grade rises. Reasons name why a figure is None."""
    grades = [g.grade for g in scheme.grades]
    reasons: dict[str, str] = {}
    by_score = freq.groupby(["score", "bad"], as_index=False)["count"].sum()
    by_grade = freq.groupby(["grade", "bad"], as_index=False)["count"].sum()
    rates = measures.bad_rates(by_grade, grades)
    out = {"auc": None, "gini": None, "ks": None, "ks_score": None, "roc": None,
           "subjects": int(freq["count"].sum()),
           "bad": int(freq.loc[freq["bad"] == 1, "count"].sum())}
    try:
        roc = measures.roc_measures(by_score)
        out.update(roc)
    except measures.Unavailable as exc:
        for key in ("auc", "gini", "ks"):
            reasons[key] = str(exc)
    out["bad_rate"] = out["bad"] / out["subjects"] if out["subjects"] else None
    out["bad_rate_by_grade"] = {g: r["rate"] for g, r in rates.items()}
    out["subjects_by_grade"] = {g: r["subjects"] for g, r in rates.items()}
    out["bad_by_grade"] = {g: r["bad"] for g, r in rates.items()}
    if out["bad"] == 0:
        out["monotone"], out["not_falling"] = None, []
        reasons["monotone"] = "no subject had an outcome finding in the outcome window"
    else:
        out["monotone"], out["not_falling"] = measures.monotone(out["bad_rate_by_grade"], grades)
        if out["monotone"] is None:
            reasons["monotone"] = "fewer than two grades have subjects"
    return out, reasons


def fairness_of(freq: pd.DataFrame, scheme: Scheme, grade: str, bound: float) -> dict:
    """measures.fairness over the four attributes of the frequency table."""
    long = pd.concat([
        freq.groupby([attribute, "grade"], as_index=False)["count"].sum()
            .rename(columns={attribute: "group"}).assign(attribute=attribute)
        for attribute in ATTRIBUTES], ignore_index=True)
    return measures.fairness(long[["attribute", "group", "grade", "count"]],
                             [g.grade for g in scheme.grades], grade, bound)
