"""Explanation lines (gold/score_lines): why each score is what it is (SPEC §5)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..catalog import SCORE_LINES
from ..months import first_day, month_before
from .decimals import POINTS, QUANTITY
from .person_rules import subject_rule_lines

#: finding statuses that say nothing about the month unless they changed in it (SPEC §5 as
#: amended 2026-12-05): an expired finding is explained only while it expired in the month or
#: the one before, a revoked one only in the month its revocation was delivered
_CHANGED_ONLY = ("expired", "revoked")


def explains_the_month(month: str):
    """The finding lines gold/score_lines keeps for `month` (SPEC §5): every finding in force
    (counted, deduplicated, masked, appeal_upheld, requirement_unmet, repaired, not_yet_valid),
    an `expired` finding whose last valid day is on or after the first day of the previous
    month, a `revoked` one whose current version was delivered in the month (known_from); never
    a `no_rule` finding (the run report counts unmatched items). Three quarters of the lines
    written before this rule explained nothing about the month."""
    since = first_day(month_before(month))
    status = F.col("status")
    return ((~status.isin("no_rule", *_CHANGED_ONLY))
            | ((status == "expired") & (F.col("last_valid_day") >= F.lit(since)))
            | ((status == "revoked") & (F.col("known_from") == F.lit(month))))


def explanation_lines(evaluated: DataFrame, per_rule: DataFrame, per_dimension: DataFrame,
                      scheme, month: str, run_id: str,
                      subject_flags: DataFrame | None = None) -> DataFrame:
    """gold/score_lines rows (catalog.SCORE_LINES): the evaluated findings that explain the
    month (line_type `finding`, its status and points; a repaired finding with `repaired_on`;
    which findings: explains_the_month), plus `tier`, `rule_cap` and `dimension_cap` rows, and
    for format v2 a `subject` row per person and subject rule that applies (status `counted`)
    and a `growth` row per person and growth rule (occurred_on = the day growth counts from,
    quantity = full periods), so that for each subject base_score + Σ points = the score before
    clamp and rounding (the lines left out all carry 0 points).

    In: `evaluated` (steps.evaluate_findings), `per_rule` (steps.rule_totals with the growth
    totals — across_findings.growth_totals, `_start`), `per_dimension` (steps.dimension_totals),
    `subject_flags` (person_rules.subject_rule_flags; needed when the scheme has subject
    rules)."""
    zero = F.lit(0).cast(POINTS)
    null = lambda t: F.lit(None).cast(t)  # noqa: E731
    finding_rows = evaluated.where(explains_the_month(month)).select(
        F.lit("finding").alias("line_type"), "subject_key", "source_id", "record_id", "item_code",
        "level", "quantity", "occurred_on", "valid_until", "rule_id", "dimension",
        "last_valid_day", "finding_points",
        F.when((F.col("status") == "counted") & ~F.col("rule_kind").isin("tiers", "growth"),
               F.col("finding_points")).otherwise(zero).alias("points"),
        "status", "deduplicated_by", "repaired_on")

    def adjustment(df, line_type, points, rule_id, quantity=None, status=None, since=None):
        return df.select(
            F.lit(line_type).alias("line_type"), "subject_key", null("string").alias("source_id"),
            null("string").alias("record_id"), null("string").alias("item_code"),
            null("string").alias("level"), (quantity if quantity is not None
                                             else null(QUANTITY)).alias("quantity"),
            (since if since is not None else null("date")).alias("occurred_on"),
            null("date").alias("valid_until"),
            rule_id.alias("rule_id"), "dimension", null("date").alias("last_valid_day"),
            null(POINTS).alias("finding_points"), points.cast(POINTS).alias("points"),
            (status if status is not None else F.lit("counted")).alias("status"),
            null("string").alias("deduplicated_by"), null("date").alias("repaired_on"))

    tiers = adjustment(per_rule.where(F.col("rule_kind") == "tiers"), "tier",
                       F.col("rule_raw"), F.col("rule_id"), F.col("_quantity").cast(QUANTITY))
    rule_caps = adjustment(per_rule.where(F.col("rule_total") != F.col("rule_raw")), "rule_cap",
                           F.col("rule_total") - F.col("rule_raw"), F.col("rule_id"))
    dim_caps = adjustment(per_dimension.where(F.col("dimension_total") != F.col("dimension_raw")),
                          "dimension_cap", F.col("dimension_total") - F.col("dimension_raw"),
                          null("string"))
    all_rows = finding_rows.unionByName(tiers).unionByName(rule_caps).unionByName(dim_caps)
    if any(r.growth for r in scheme.rules):
        all_rows = all_rows.unionByName(adjustment(
            per_rule.where(F.col("rule_kind") == "growth"), "growth", F.col("rule_raw"),
            F.col("rule_id"), F.col("_quantity").cast(QUANTITY), since=F.col("_start")))
    if scheme.subject_rules:    # a line per rule that applies: no other line
        all_rows = all_rows.unionByName(adjustment(
            subject_rule_lines(subject_flags, scheme), "subject", F.col("points"),
            F.col("rule_id")))
    constants = {"scheme": F.lit(scheme.scheme), "score_month": F.lit(month),
                 "rules_version": F.lit(scheme.rules_version), "run_id": F.lit(run_id)}
    return all_rows.select(*[constants[c].alias(c) if c in constants else F.col(c)
                             for c in SCORE_LINES.columns])
