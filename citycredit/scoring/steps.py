"""Scoring for one scheme and one score month (SPEC §4), as pure DataFrame → DataFrame steps.

Inputs are silver as known at the month (silver.versions.as_known_at) and the month's scored
subjects (silver.adults); outputs are shaped as gold/scores and gold/score_lines (catalog).

The plan costs one shuffle of the findings, by subject_key: every later step (dedupe window, the
join to the month's adults, per-rule, per-dimension and per-subject aggregation) groups by keys
that start with subject_key, so Spark keeps that partitioning. Small inputs (rules, appeals, opt-outs)
are broadcast. All point arithmetic is DECIMAL, and every sum of points or quantities runs on
longs (decimals.exact_sum: exact), so a rerun reproduces a month exactly whatever the
partitioning.

Rule format v2 (SPEC §4.1) adds steps that keep this: `requires` and `repair` are windows over
keys that start with subject_key (across_findings), growth totals group the evaluated findings
by subject_key, and subject rules read the scored subjects — a small frame joined with per-person
flags (person_rules). A v1 scheme gets exactly the v1 plan.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from ..catalog import SCORES
from ..months import appeal_mask_cutoff, last_day
from ..rules import Rule, Scheme
from ..silver.adults import exclude_opted_out
from ..rules.reading import MAX_POINTS, too_many_decimals, too_many_points
from .across_findings import (growth_totals, is_current, item_condition, of_rules, repair_status,
                              requirement_status)
from .decimals import (POINTS, QUANTITY, RULE_VALUE, as_units, bounded, cast_or_stop, exact_sum,
                       from_units, out_of_range)
from .explain import explains_the_month, explanation_lines
from .person_rules import subject_dimension_totals, subject_rule_flags, unless_cutoff

#: the finding columns scoring reads (silver/findings as known at the month); known_from (the
#: delivery month of the version) only tells the explanation whether a revocation is new
FINDING_COLUMNS = ["source_id", "record_id", "subject_key", "item_code", "level", "quantity",
                   "occurred_on", "valid_until", "status", "case_ref", "known_from"]


class ScoringError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# the steps
def rules_frame(spark: SparkSession, scheme: Scheme) -> DataFrame:
    """One row per rule with its constants, in file order (broadcast into the findings).
    The rule files' bounds (rules.reading: the loader refuses them by file and line) checked
    again for a scheme built in code."""
    def below_max(value, where):
        if too_many_points(value):
            raise ScoringError(f"{scheme.path}: {where}: points must be below "
                               f"{MAX_POINTS:,} in magnitude")
        return value

    def dec(value, where):
        if value is None:
            return None
        if too_many_decimals(value):
            raise ScoringError(f"{scheme.path}: {where}: values may have at most 4 decimals")
        return value
    for rule in scheme.rules:        # v2 constants: the same exactness bound
        where = f"rule {rule.id}"
        for value in ((rule.growth.points, rule.growth.cap) if rule.growth else ()) + \
                tuple(units for _, units in (rule.repair.energy if rule.repair else ())):
            dec(value, where)
        for value in (rule.points, rule.growth.points if rule.growth else None,
                      *(tier.points for tier in rule.tiers or ())):
            below_max(value, where)
    for subject_rule in scheme.subject_rules:
        below_max(dec(subject_rule.points, f"rule {subject_rule.id}"), f"rule {subject_rule.id}")
    for name in ("base_score", "min_score", "max_score"):
        below_max(getattr(scheme, name), name)
    rows = []
    for order, rule in enumerate(scheme.rules):
        dim_cap = scheme.dimensions[rule.dimension].cap
        where = f"rule {rule.id}"
        rows.append((rule.id, order, rule.dimension, rule.kind, dec(rule.points, where),
                     dec(rule.points_per_unit, where), rule.valid_months, dec(rule.cap, where),
                     rule.dedupe_group, dec(dim_cap, f"dimension {rule.dimension}")))
    schema = T.StructType([
        T.StructField("rule_id", T.StringType()), T.StructField("rule_order", T.IntegerType()),
        T.StructField("dimension", T.StringType()), T.StructField("rule_kind", T.StringType()),
        T.StructField("rule_points", RULE_VALUE), T.StructField("rule_points_per_unit", RULE_VALUE),
        T.StructField("valid_months", T.IntegerType()), T.StructField("rule_cap", RULE_VALUE),
        T.StructField("dedupe_group", T.StringType()), T.StructField("dimension_cap", RULE_VALUE),
    ])
    return spark.createDataFrame(rows, schema)


def match_rule(rules: tuple[Rule, ...]) -> Column:
    """The id of the first rule in file order whose item and `when` match (null: none); growth
    rules take only findings no other rule takes (Scheme.rule_for)."""
    expr = F.lit(None).cast("string")
    ordered = [r for r in rules if r.growth is None] + [r for r in rules if r.growth is not None]
    for rule in reversed(ordered):
        expr = F.when(item_condition(rule), F.lit(rule.id)).otherwise(expr)
    return expr


def appeal_flags(appeals: DataFrame, as_of: dt.date, mask_cutoff: dt.date) -> DataFrame:
    """Per appealed finding: upheld by A, or still open on A and filed on/before the cutoff."""
    open_on_a = F.col("resolved_on").isNull() | (F.col("resolved_on") > F.lit(as_of))
    return (appeals
            .where(F.col("filed_on") <= F.lit(as_of))
            .groupBy("source_id", "record_id")
            .agg(F.max((F.col("outcome") == "upheld") & ~open_on_a).alias("appeal_upheld"),
                 F.max(open_on_a & (F.col("filed_on") <= F.lit(mask_cutoff))).alias("appeal_masked")))


def with_appeal_flags(findings: DataFrame, flags: DataFrame) -> DataFrame:
    """The findings with their appeal_flags columns (appeal_upheld, appeal_masked: null for a
    finding never appealed), by a broadcast join on (source_id, record_id)."""
    return findings.join(F.broadcast(flags), ["source_id", "record_id"], "left")


def not_current_status() -> Column:
    """SPEC §4 step 1, on findings with_appeal_flags: `revoked`, `appeal_upheld` or `masked`
    for a finding that is no longer current, null for one still current — the one spelling of
    it for the status chain (evaluate_findings) and the unmatched items' count
    (current_findings_per_item), so the run report's unmatched items are exactly the
    findings the evaluation gives status `no_rule`."""
    return (F.when(F.col("status") == "revoked", "revoked")
            .when(F.coalesce(F.col("appeal_upheld"), F.lit(False)), "appeal_upheld")
            .when(F.coalesce(F.col("appeal_masked"), F.lit(False)), "masked"))


def evaluate_findings(findings: DataFrame, adults: DataFrame | None, appeals: DataFrame,
                      rules: DataFrame, scheme: Scheme, as_of: dt.date,
                      mask_cutoff: dt.date, keep_rows: Column | None = None,
                      flags: DataFrame | None = None) -> DataFrame:
    """Steps 1–4 and 5: one row per finding of a scored subject with its rule, validity,
    points and status.

    In: findings (FINDING_COLUMNS), adults (subject_key; None: `findings` are of scored
    subjects only, a caller filtered them — of_scored_subjects), appeals (source_id, record_id,
    filed_on, resolved_on, outcome), rules (rules_frame). Out: subject_key, source_id,
    record_id, item_code, level, quantity, occurred_on, valid_until, rule_id, dimension,
    rule_kind, rule_cap, dimension_cap, last_valid_day, finding_points (points, decimal(18,8)),
    status (revoked, appeal_upheld, masked, no_rule, not_yet_valid, expired,
    requirement_unmet, deduplicated, repaired, counted), deduplicated_by, repaired_on,
    known_from ('YYYY-MM' delivery month of the version; findings without it — hand-made
    frames — count as delivered in the score month).

    flags: appeal_flags(appeals, as_of, mask_cutoff) when the caller holds them already (a job
    scoring several schemes computes them once); else computed here.

    keep_rows: a condition on the findings once their status before the windows is known
    (revoked, appeal_upheld, masked, no_rule, not_yet_valid, expired, counted): only the rows
    it holds go on to the windows and the output (evaluate_month keeps findings_the_month_reads:
    the windows then sort about half the rows). It must hold every `counted` row, whose dedupe
    it would change, and every row a later step reads.

    v2: a growth rule's findings count from their occurred_on with no validity window
    (last_valid_day null; the growth line carries the points); `requires` is checked before the
    dedupe (an unmet finding does not compete), repair energy after it (a deduplicated copy
    takes no energy).
    """
    a = F.lit(as_of)
    if "known_from" not in findings.columns:
        findings = findings.withColumn("known_from", F.lit(as_of.strftime("%Y-%m")))
    # The one shuffle: findings by subject_key. The dedupe window and every later aggregation
    # group by keys that start with subject_key, so Spark keeps this partitioning (explain()).
    df = (with_appeal_flags(findings.select(*FINDING_COLUMNS).repartition("subject_key"),
                            flags if flags is not None
                            else appeal_flags(appeals, as_of, mask_cutoff))
          .withColumn("quantity", F.col("quantity").cast(QUANTITY))
          .withColumn("rule_id", match_rule(scheme.rules))
          .join(F.broadcast(rules), "rule_id", "left"))
    window_end = F.date_sub(F.add_months(F.col("occurred_on"), F.col("valid_months")), 1)
    df = df.withColumn("last_valid_day",
                       F.when(F.col("valid_until").isNull(), window_end)
                       .otherwise(F.least(F.col("valid_until"), window_end)))
    per_unit = (F.coalesce(F.col("quantity"), F.lit(0).cast(QUANTITY))
                * F.col("rule_points_per_unit"))
    df = df.withColumn("finding_points", F.when(F.col("rule_kind") == "points",
                                                F.col("rule_points").cast(POINTS))
                       .when(F.col("rule_kind") == "points_per_unit", cast_or_stop(
                           per_unit, POINTS, out_of_range(
                               scheme, "a finding's points (quantity × points_per_unit)",
                               "rule", "rule_id"))))
    growing = any(r.growth for r in scheme.rules)
    if growing:   # growth counts from occurred_on on: no validity window
        df = df.withColumn("last_valid_day", F.when(F.col("rule_kind") != "growth",
                                                    F.col("last_valid_day")))
    of_a_current_finding = (F.when(F.col("rule_id").isNull(), "no_rule")
                            .when(F.col("occurred_on") > a, "not_yet_valid")
                            .when(F.col("last_valid_day") < a, "expired")
                            .otherwise("counted"))
    df = (df.withColumn("status", F.coalesce(not_current_status(), of_a_current_finding))
          .drop("appeal_upheld", "appeal_masked"))
    if keep_rows is not None:
        df = df.where(keep_rows)
    df = dedupe_highest_value(requirement_status(df, scheme, as_of))
    if any(r.repair for r in scheme.rules):
        df = repair_status(df, scheme, as_of)
    else:
        df = df.withColumn("repaired_on", F.lit(None).cast("date"))
    # (rule constants only steps 1–5 need are dropped: the evaluated findings are held)
    df = df.drop("rule_order", "rule_points", "rule_points_per_unit", "valid_months",
                 "dedupe_group", "case_ref")
    # Adults are joined after the dedupe (which only compares findings of one subject): the
    # window leaves the findings sorted by subject_key, so this join sorts only the adults.
    return df if adults is None else df.join(adults.select("subject_key"), "subject_key")


def of_scored_subjects(findings: DataFrame, subjects: DataFrame) -> DataFrame:
    """The findings of the scored subjects only (findings and subjects both partitioned by
    subject_key: a hash join of each partition's subjects, no exchange and no sort of the
    findings). A job filters its held findings once so that no scheme's evaluation joins the
    2.3 M adults again (evaluate_findings with adults None)."""
    return findings.join(subjects.select("subject_key").hint("shuffle_hash"), "subject_key",
                         "left_semi")


def dedupe_highest_value(df: DataFrame) -> DataFrame:
    """Step 5: of counting findings whose rules share a dedupe_group and that concern the same
    person and behaviour (same case_ref, or both without case_ref and the same occurred_on), only
    the largest absolute value counts (ties: earliest occurred_on, source_id, record_id)."""
    competing = (F.col("status") == "counted") & F.col("dedupe_group").isNotNull()
    behaviour = F.when(F.col("case_ref").isNotNull(), F.concat(F.lit("c:"), F.col("case_ref"))) \
        .otherwise(F.concat(F.lit("d:"), F.col("occurred_on").cast("string")))
    # a tier's value is its quantity (decimal(18,4), up to 10^14): one type holds it and points
    both = T.DecimalType(QUANTITY.precision - QUANTITY.scale + POINTS.scale, POINTS.scale)
    value = F.abs(F.when(F.col("rule_kind") == "tiers", F.col("quantity").cast(both))
                  .otherwise(F.col("finding_points").cast(both)))
    # one frame for both functions: Spark then sorts the findings once, not twice
    w = (Window.partitionBy("subject_key", "dedupe_group", "_behaviour", "_competing")
         .orderBy(F.col("_value").desc_nulls_last(), F.col("occurred_on").asc(),
                  F.col("source_id").asc(), F.col("record_id").asc())
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    df = (df.withColumn("_competing", competing).withColumn("_behaviour", behaviour)
          .withColumn("_value", value))
    winner = F.first(F.concat_ws("/", "source_id", "record_id")).over(w)
    rank = F.row_number().over(w)
    return (df.withColumn("_rank", rank).withColumn("_winner", winner)
            .withColumn("deduplicated_by",
                        F.when(F.col("_competing") & (F.col("_rank") > 1), F.col("_winner")))
            .withColumn("status", F.when(F.col("deduplicated_by").isNotNull(), "deduplicated")
                        .otherwise(F.col("status")))
            .drop("_competing", "_behaviour", "_value", "_rank", "_winner"))


def tier_points(scheme: Scheme) -> Column:
    """Points of a tiers rule for the subject's summed quantity (`_quantity`) of rule `rule_id`."""
    expr = F.lit(None).cast(POINTS)
    for rule in scheme.rules:
        if rule.kind != "tiers":
            continue
        reached = F.lit(0).cast(POINTS)
        for tier in sorted(rule.tiers, key=lambda t: t.at_least):
            reached = F.when(F.col("_quantity") >= F.lit(tier.at_least),
                             F.lit(tier.points).cast(POINTS)).otherwise(reached)
        expr = F.when(F.col("rule_id") == rule.id, reached).otherwise(expr)
    return expr


def rule_totals(lines: DataFrame, scheme: Scheme) -> DataFrame:
    """Step 6a: per subject and rule — tiers on the summed quantity, then the rule cap.
    (Growth rules are totalled by across_findings.growth_totals in the same columns: `_start`
    is the day growth counts from, null on the other rows; subject rules per person and
    dimension by person_rules.subject_dimension_totals.)"""
    counted = lines.where(F.col("status") == "counted")
    if any(r.growth for r in scheme.rules):
        counted = counted.where(F.col("rule_kind") != "growth")
    per_rule = (counted.groupBy("subject_key", "rule_id", "dimension", "rule_kind", "rule_cap",
                                "dimension_cap")
                .agg(exact_sum(F.col("finding_points")).alias("_points"),
                     exact_sum(F.coalesce(F.col("quantity"), F.lit(0).cast(QUANTITY)),
                               QUANTITY.scale).alias("_quantity"),
                     F.count(F.lit(1)).alias("finding_count")))
    raw = F.when(F.col("rule_kind") == "tiers", tier_points(scheme)).otherwise(F.col("_points"))
    within = cast_or_stop(raw, POINTS, out_of_range(scheme, "a subject's points for the rule",
                                                    "rule", "rule_id"))
    return (per_rule.withColumn("rule_raw", within)
            .withColumn("rule_total", bounded(F.col("rule_raw"), F.col("rule_cap")).cast(POINTS))
            .withColumn("_start", F.lit(None).cast("date")))     # growth rows carry theirs


#: the per-rule columns the dimension totals read (person_rules.subject_dimension_totals gives
#: the subject rules' share in them)
DIMENSION_INPUT = ["subject_key", "dimension", "dimension_cap", "rule_total", "finding_count"]


def dimension_totals(per_rule: DataFrame, scheme: Scheme) -> DataFrame:
    """Step 6b: per subject and dimension, bounded by the dimension cap. In: DIMENSION_INPUT
    columns, a row per rule total (rule_totals, growth_totals) or per person and dimension
    (subject_dimension_totals). The raw total must fit the points too, capped or not: the
    cap's explanation line carries the difference."""
    raw = cast_or_stop(F.col("dimension_raw"), POINTS, out_of_range(
        scheme, "a subject's points in the dimension", "dimension", "dimension"))
    return (per_rule.groupBy("subject_key", "dimension", "dimension_cap")
            .agg(exact_sum(F.col("rule_total")).alias("dimension_raw"),
                 F.sum("finding_count").alias("finding_count"))
            .withColumn("dimension_total", bounded(raw, F.col("dimension_cap")).cast(POINTS)))


def grade_columns(score: Column, scheme: Scheme) -> tuple[Column, Column]:
    grade = label = None
    for g in reversed(scheme.grades):
        if g.min is None:
            grade, label = F.lit(g.grade), F.lit(g.label)
        else:
            grade = F.when(score >= F.lit(g.min), F.lit(g.grade)).otherwise(grade)
            label = F.when(score >= F.lit(g.min), F.lit(g.label)).otherwise(label)
    return grade, label


def subject_scores(per_dimension: DataFrame, adults: DataFrame, scheme: Scheme) -> DataFrame:
    """Step 7: base + Σ dimensions, clamped, rounded half up; grade. Every adult gets a row."""
    zero = F.lit(0).cast(POINTS)
    dims = list(scheme.dimensions)
    # the dimension's total in units once per row (a BigDecimal product), not once per sum and
    # row as exact_sum would: every sum below adds longs (−11 % of this aggregation at full
    # scale, docs/performance.md)
    units = F.col("_units")
    per_subject = (per_dimension.withColumn("_units", as_units(F.col("dimension_total")))
                   .groupBy("subject_key").agg(
        F.sum(units).alias("_total"),
        F.sum(F.when(units > 0, units)).alias("_positive"),
        F.sum(F.when(units < 0, units)).alias("_negative"),
        F.sum("finding_count").alias("finding_count"),
        *[F.sum(F.when(F.col("dimension") == d, units)).alias(f"_dim_{i}")
          for i, d in enumerate(dims)]))
    per_subject = per_subject.select(
        "subject_key", "finding_count",
        *[from_units(F.col(f"_{c}")).alias(f"points_{c}")
          for c in ("total", "positive", "negative")],
        *[from_units(F.col(f"_dim_{i}")).alias(f"_dim_{i}") for i in range(len(dims))])
    df = adults.select("subject_key").join(per_subject, "subject_key", "left")
    base = F.lit(scheme.base_score).cast(POINTS)
    raw = base + F.coalesce(F.col("points_total"), zero)
    clamped = raw
    if scheme.min_score is not None:
        clamped = F.greatest(clamped, F.lit(scheme.min_score).cast(POINTS))
    if scheme.max_score is not None:
        clamped = F.least(clamped, F.lit(scheme.max_score).cast(POINTS))
    score = cast_or_stop(F.round(clamped, 0), T.IntegerType(), out_of_range(  # round: HALF_UP
        scheme, "a subject's score (base_score and every dimension's points)", score=True))
    df = df.withColumn("score", score)
    grade, label = grade_columns(F.col("score"), scheme)
    dim_map = F.create_map(*[c for i, d in enumerate(dims)
                             for c in (F.lit(d), F.coalesce(F.col(f"_dim_{i}"), zero).cast(POINTS))])
    return df.select(
        "subject_key", "score", grade.alias("grade"), label.alias("grade_label"),
        base.alias("base_score"),
        *[cast_or_stop(F.coalesce(f"points_{sign}", zero), POINTS, out_of_range(
            scheme, f"a subject's points of the {sign} dimensions together"))
          .alias(f"points_{sign}") for sign in ("positive", "negative")],
        dim_map.alias("dimension_points"),
        F.coalesce("finding_count", F.lit(0)).cast("int").alias("finding_count"),
        raw.cast(POINTS).alias("raw_score"))


# ---------------------------------------------------------------------------------------------
def score_month(findings: DataFrame, adults: DataFrame, appeals: DataFrame, optouts: DataFrame,
                scheme: Scheme, month: str, run_id: str, mask_working_days: int = 10,
                computed_at: dt.datetime | None = None) -> tuple[DataFrame, DataFrame]:
    """Score every adult of `month` under `scheme`. Inputs are as known at `month`.

    Returns (scores, score_lines) shaped as gold/scores and gold/score_lines (docs/contracts.md).
    """
    # opted-out persons leave the adults; their findings then fall out at the adults join
    subjects = exclude_opted_out(adults, optouts, last_day(month))
    evaluated = evaluate_month(findings, subjects, appeals, scheme, month, mask_working_days)
    return summarise_month(evaluated, subjects, scheme, month, run_id, computed_at)


def month_appeal_cutoff(month: str, mask_working_days: int) -> dt.date:
    """The filing day on or before which an open appeal masks its finding in `month`."""
    return appeal_mask_cutoff(last_day(month), mask_working_days)


def findings_read_across(scheme: Scheme, as_of: dt.date) -> Column | None:
    """The findings a rule format v2 step reads beyond those in force (SPEC §4.1), as a
    condition on a finding whose status before the windows is known: the current findings
    (across_findings.is_current, any validity) of the rules a `requires` lists, of a repair
    rule's energy items, of a growth rule's item and `when` and of its `reset_by` rules, and of
    the rules a subject rule's `unless_any` lists that occurred after its cutoff. None for a
    scheme with none of these (rule format v1): it reads only the findings in force."""
    current = is_current(as_of)
    reads = []
    for rule in scheme.rules:
        if rule.requires is not None:
            reads.append(of_rules(scheme, rule.requires.rules))
        if rule.repair is not None:
            reads.append(F.col("item_code").isin(*[item for item, _ in rule.repair.energy]))
        if rule.growth is not None:
            reads.append(item_condition(rule))
            if rule.growth.reset_by:
                reads.append(of_rules(scheme, rule.growth.reset_by))
    for subject_rule in scheme.subject_rules:
        if subject_rule.unless_any is not None:
            reads.append(of_rules(scheme, subject_rule.unless_any.rules)
                         & (F.col("occurred_on") > F.lit(unless_cutoff(subject_rule, as_of))))
    if not reads:
        return None
    read = reads[0]
    for more in reads[1:]:
        read = read | more
    return current & read


def findings_the_month_reads(scheme: Scheme, month: str) -> Column:
    """The findings the month's steps after the first five statuses read: those that explain
    the month (explain.explains_the_month: every counted one among them) and what a v2 step
    reads across findings (findings_read_across). The rest — at full scale about half of a
    month's findings, long expired or matching no rule (current_findings_per_item counts
    those) — leave before the windows sort the findings."""
    keep = explains_the_month(month)
    across = findings_read_across(scheme, last_day(month))
    return keep if across is None else keep | across


def current_findings_per_item(findings: DataFrame, flags: DataFrame) -> DataFrame:
    """The findings of scored subjects still current at step 2 (not revoked, not upheld or
    masked on appeal: SPEC §4 steps 1-2) per item_code and level — what a rule matches on
    (Rule.matches), so the ones a scheme leaves without a rule (status `no_rule`, the run
    report's unmatched items) are the rows whose Scheme.rule_for is None: every scheme's count
    from one pass, not an expression of every rule per finding.

    In: findings of the scored subjects only (FINDING_COLUMNS; of_scored_subjects), flags
    (appeal_flags). Out: item_code, level, findings (long), a row per item and level present."""
    return (with_appeal_flags(findings, flags).where(not_current_status().isNull())
            .groupBy("item_code", "level").agg(F.count(F.lit(1)).alias("findings")))


def evaluate_month(findings: DataFrame, subjects: DataFrame | None, appeals: DataFrame,
                   scheme: Scheme, month: str, mask_working_days: int = 10,
                   flags: DataFrame | None = None) -> DataFrame:
    """Steps 1–5 for the month: one row per finding of a scored subject (`subjects`: the
    month's scored subjects, silver.adults.scored_subjects; None: the findings are theirs only,
    of_scored_subjects) that a later step reads
    (findings_the_month_reads) with its rule, validity, points and status (columns: see
    evaluate_findings; flags too).

    Every output of summarise_month reads the evaluated findings — four times over; a job on
    real data holds them in between (scoring.job.MonthScan.score), or Spark recomputes them."""
    spark = findings.sparkSession
    as_of = last_day(month)
    cutoff = month_appeal_cutoff(month, mask_working_days)
    rules = rules_frame(spark, scheme)
    return evaluate_findings(findings, subjects, appeals, rules, scheme, as_of, cutoff,
                             keep_rows=findings_the_month_reads(scheme, month), flags=flags)


def summarise_month(evaluated: DataFrame, adults: DataFrame, scheme: Scheme, month: str,
                    run_id: str, computed_at: dt.datetime | None = None, keep=None
                    ) -> tuple[DataFrame, DataFrame]:
    """Steps 6–7 and the explanation: (gold/scores rows, gold/score_lines rows), columns as
    catalog.SCORES and catalog.SCORE_LINES. In: evaluate_month's rows, the scored subjects
    (with the attributes the scheme's subject rules test: silver.adults.scored_subjects).

    v2: growth totals and the subject rules that apply join the per-rule totals before the
    dimension caps, so dimension caps bound them like any rule total. `keep`, when given, takes
    in turn the per-rule totals of the findings and growth rules, the subject rules' flags per
    person (person_rules.subject_rule_flags) and the per-dimension totals — each read by both
    outputs — and returns the frame to use: a job holds them there
    (scoring.job.MonthScan.score), so each aggregation and the per-person work of the subject
    rules is done once. The subject rules stay one row a person until the explanation writes a
    line per rule that applies (白鹭分: 2.3 M rows held, not the 12 M per-rule rows they made
    when held per rule at full scale)."""
    as_of = last_day(month)
    keep = keep or (lambda frame: frame)
    per_rule = rule_totals(evaluated, scheme)
    if any(r.growth for r in scheme.rules):
        per_rule = per_rule.unionByName(growth_totals(evaluated, scheme, as_of))
    per_rule = keep(per_rule)
    summed = per_rule.select(*DIMENSION_INPUT)
    flags = None
    if scheme.subject_rules:
        flags = keep(subject_rule_flags(adults, evaluated, scheme, as_of))
        summed = summed.unionByName(subject_dimension_totals(flags, scheme))
    per_dimension = keep(dimension_totals(summed, scheme))
    scores = subject_scores(per_dimension, adults, scheme)

    stamp = F.lit(computed_at or dt.datetime.now(dt.timezone.utc)).cast("timestamp")
    constants = {"scheme": F.lit(scheme.scheme), "score_month": F.lit(month),
                 "rules_version": F.lit(scheme.rules_version), "run_id": F.lit(run_id),
                 "computed_at": stamp}
    scores = scores.select(*[constants[c].alias(c) if c in constants else F.col(c)
                             for c in SCORES.columns])
    return scores, explanation_lines(evaluated, per_rule, per_dimension, scheme, month, run_id,
                                     subject_flags=flags)
