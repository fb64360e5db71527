"""Rule format v2 subject rules (SPEC §4.1): points once per scored person by the person's
attributes (`when` on residency, district, age, months_resident) unless the person has a recent
current finding of listed rules (`unless_any`).

Attributes come with the scored subjects (citycredit.silver.adults): residency, district and
birth_date from the month's population snapshot, months_resident from silver/residence or the
snapshots up to the month (scoring.job.load_inputs); age (full years on A) is computed here.
The per-person findings flags group the evaluated findings by subject_key (already their
partitioning) and join the subjects: the findings are not shuffled again.
"""
from __future__ import annotations

import datetime as dt
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ..months import add_months, full_months_column
from ..rules import Condition, Scheme, SubjectRule
from .across_findings import is_current, of_rules
from .decimals import POINTS, RULE_VALUE, cast_or_stop, out_of_range


class MissingAttribute(ValueError):
    """The scheme's subject rules test an attribute the scored subjects frame does not carry."""


#: the subjects column each attribute is read from (age is computed from birth_date)
SOURCE_COLUMN = {"residency": "residency", "district": "district", "age": "birth_date",
                 "months_resident": "months_resident"}


def with_age(people: DataFrame, as_of: dt.date) -> DataFrame:
    """Adds `age`: full years on A, by the clamped month arithmetic of the adult test
    (the largest n with add_months(birth_date, 12·n) <= A)."""
    return (people.withColumn("_months_lived", full_months_column(F.col("birth_date"), as_of))
            .withColumn("age", F.expr("CAST(_months_lived div 12 AS INT)"))
            .drop("_months_lived"))


def condition(cond: Condition) -> Column:
    """The condition on the person's attribute column (null attribute: the test fails)."""
    value = F.col(cond.attribute)
    if cond.equals is not None:
        return value == F.lit(cond.equals)
    test = F.lit(True)
    if cond.at_least is not None:
        test = test & (value >= F.lit(cond.at_least))
    if cond.below is not None:
        test = test & (value < F.lit(cond.below))
    return test


def unless_cutoff(rule: SubjectRule, as_of: dt.date) -> dt.date:
    """add_months(A, −N): a listed finding blocks the rule when it occurred after this day."""
    return add_months(as_of, -rule.unless_any.within_months)


def recent_findings(evaluated: DataFrame, scheme: Scheme, as_of: dt.date) -> DataFrame | None:
    """Per person with findings: `_blocked_<i>` = has a current finding of a rule listed in the
    i-th subject rule's `unless_any` with occurred_on after add_months(A, −N) (any validity).
    None when no subject rule has unless_any."""
    flags = []
    for i, rule in enumerate(scheme.subject_rules):
        if rule.unless_any is None:
            continue
        recent = (is_current(as_of) & of_rules(scheme, rule.unless_any.rules)
                  & (F.col("occurred_on") > F.lit(unless_cutoff(rule, as_of))))
        flags.append(F.max(recent).alias(f"_blocked_{i}"))
    if not flags:
        return None
    return evaluated.groupBy("subject_key").agg(*flags)


def check_attributes(subjects: DataFrame, scheme: Scheme) -> None:
    needed = {SOURCE_COLUMN[a] for a in scheme.subject_attributes}
    missing = sorted(needed - set(subjects.columns))
    if missing:
        users = [r.id for r in scheme.subject_rules
                 if any(SOURCE_COLUMN[c.attribute] in missing for c in r.when)]
        raise MissingAttribute(
            f"{scheme.path}: subject rule(s) {', '.join(users)} test {', '.join(missing)}, which "
            f"the scored subjects do not carry (citycredit.silver.adults.scored_subjects"
            f"{', with_months_resident=True' if 'months_resident' in missing else ''})")


def subject_rule_flags(subjects: DataFrame, evaluated: DataFrame, scheme: Scheme,
                       as_of: dt.date) -> DataFrame:
    """One row per scored person: subject_key and `_applies_<i>` (boolean) for the i-th subject
    rule of the scheme — its `when` holds and no listed finding blocks it (`unless_any`).

    In: subjects (subject_key + the attributes the rules test), evaluated findings. Kept per
    person, not per person and rule: 白鹭分's seven subject rules would make 16 M rows at full
    scale, of which the dimension totals need two a person (subject_dimension_totals) and only
    the explanation needs one per rule that applies (subject_rule_lines)."""
    check_attributes(subjects, scheme)
    needed = sorted({SOURCE_COLUMN[a] for a in scheme.subject_attributes})
    # partitioned by subject_key like the findings, so the union with the per-rule totals and
    # the dimension aggregation after it need no exchange
    people = subjects.select("subject_key", *needed).repartition("subject_key")
    if "age" in scheme.subject_attributes:
        people = with_age(people, as_of)
    flags = recent_findings(evaluated, scheme, as_of)
    if flags is not None:
        people = people.join(flags, "subject_key", "left")
    applies = []
    for i, rule in enumerate(scheme.subject_rules):
        test = F.lit(True)
        for cond in rule.when:
            test = test & F.coalesce(condition(cond), F.lit(False))
        if rule.unless_any is not None:
            test = test & ~F.coalesce(F.col(f"_blocked_{i}"), F.lit(False))
        applies.append(test.alias(f"_applies_{i}"))
    return people.select("subject_key", *applies)


def subject_dimension_totals(flags: DataFrame, scheme: Scheme) -> DataFrame:
    """Per person and dimension that a subject rule applying to the person scores in:
    subject_key, dimension, dimension_cap, rule_total (Σ points of the subject rules that apply
    there, points), finding_count (0) — the columns steps.dimension_totals sums, so the subject
    rules join the rule totals before the dimension caps (SPEC §4.1).

    In: subject_rule_flags."""
    entries = []
    for dimension in dict.fromkeys(r.dimension for r in scheme.subject_rules):
        mine = [(i, r) for i, r in enumerate(scheme.subject_rules) if r.dimension == dimension]
        total = F.lit(0).cast(POINTS)
        for i, rule in mine:
            total = total + F.when(F.col(f"_applies_{i}"), F.lit(rule.points).cast(POINTS)) \
                .otherwise(F.lit(0).cast(POINTS))
        entries.append(F.struct(
            F.lit(dimension).alias("dimension"),
            F.lit(scheme.dimensions[dimension].cap).cast(RULE_VALUE).alias("dimension_cap"),
            cast_or_stop(total, POINTS, out_of_range(
                scheme, f"dimension '{dimension}': a subject's points of the subject rules"))
            .alias("rule_total"),
            reduce(lambda a, b: a | b, [F.col(f"_applies_{i}") for i, _ in mine]).alias("_any")))
    return (flags.select("subject_key", F.explode(F.array(*entries)).alias("s"))
            .where(F.col("s._any"))
            .select("subject_key", "s.dimension", "s.dimension_cap", "s.rule_total",
                    F.lit(0).cast("long").alias("finding_count")))


def subject_rule_lines(flags: DataFrame, scheme: Scheme) -> DataFrame:
    """One row per person and subject rule that applies: subject_key, rule_id, dimension,
    points (the rule's points). In: subject_rule_flags."""
    entries = [F.when(F.col(f"_applies_{i}"), F.struct(
        F.lit(rule.id).alias("rule_id"), F.lit(rule.dimension).alias("dimension"),
        F.lit(rule.points).cast(POINTS).alias("points")))
        for i, rule in enumerate(scheme.subject_rules)]
    return (flags.select("subject_key", F.explode(F.array(*entries)).alias("s"))
            .where(F.col("s").isNotNull())
            .select("subject_key", "s.rule_id", "s.dimension", "s.points"))
