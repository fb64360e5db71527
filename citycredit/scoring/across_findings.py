"""Rule format v2 conditions across a person's findings (SPEC §4.1, issue "Rule format v2"):
`requires` (a finding counts only against an earlier one of the same case), `repair` (repair
energy ends a finding early) and `growth` (points per full period since the earliest finding).

"Current finding" is SPEC §4 step 1: the latest version, not revoked, not upheld on appeal, not
masked — whatever its validity, rule or dedupe — and, as of A, not after A. "A finding of rule R"
is a finding that takes R (step 2); for a growth rule, which takes no finding away from other
rules, every finding whose item and `when` match it.

Every step here keeps the findings where steps.evaluate_findings put them — partitioned by
subject_key: the windows partition by keys that start with subject_key and the growth totals
group by subject_key, so none of them shuffles the findings again.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from math import lcm

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from ..months import full_months_column
from ..rules import Rule, Scheme
from .decimals import POINTS, QUANTITY, RULE_VALUE, bounded, cast_or_stop, out_of_range

#: statuses of findings that are not current (SPEC §4 step 1)
NOT_CURRENT = ("revoked", "appeal_upheld", "masked")
#: the decimal type of repair energy (quantity × an integer weight, see energy_weights)
ENERGY = "decimal(38,4)"


def is_current(as_of: dt.date) -> Column:
    """Current as of A: not revoked, upheld or masked, and not after A."""
    return ~F.col("status").isin(*NOT_CURRENT) & (F.col("occurred_on") <= F.lit(as_of))


def item_condition(rule: Rule) -> Column:
    """The finding's item and level match the rule's `item` and `when`."""
    cond = F.col("item_code") == rule.item
    for key, value in rule.when.items():
        cond = cond & (F.col(key) == value)
    return cond


def of_rules(scheme: Scheme, names: tuple[str, ...]) -> Column:
    """The finding is a finding of one of the named rules (growth rules: by item and when)."""
    by_id = scheme.rules_by_id
    taken = [n for n in names if by_id[n].growth is None]
    cond = F.col("rule_id").isin(*taken) if taken else F.lit(False)
    for name in names:
        if by_id[name].growth is not None:
            cond = cond | item_condition(by_id[name])
    return cond


# ---------------------------------------------------------------------------------- requires
def requirement_status(df: DataFrame, scheme: Scheme, as_of: dt.date) -> DataFrame:
    """`requires`: a counted finding of a rule with `requires` keeps counting only if the same
    person has a current finding of a listed rule with the same non-null case_ref that occurred
    on or before its own; otherwise its status becomes `requirement_unmet`.

    In/out: the findings frame of steps.evaluate_findings (status, rule_id, case_ref, ...)."""
    demanding = [r for r in scheme.rules if r.requires is not None]
    if not demanding:
        return df
    lists = list(dict.fromkeys(r.requires.rules for r in demanding))
    same_case = Window.partitionBy("subject_key", "case_ref")
    for i, names in enumerate(lists):
        df = df.withColumn(f"_required_{i}", F.min(F.when(
            is_current(as_of) & of_rules(scheme, names), F.col("occurred_on"))).over(same_case))
    unmet = F.lit(False)
    for rule in demanding:
        required = F.col(f"_required_{lists.index(rule.requires.rules)}")
        met = F.coalesce(F.col("case_ref").isNotNull() & (required <= F.col("occurred_on")),
                         F.lit(False))
        unmet = F.when(F.col("rule_id") == rule.id, ~met).otherwise(unmet)
    return (df.withColumn("status", F.when((F.col("status") == "counted") & unmet,
                                           "requirement_unmet").otherwise(F.col("status")))
            .drop(*[f"_required_{i}" for i in range(len(lists))]))


# ---------------------------------------------------------------------------------- repair
def energy_weights(rule: Rule) -> tuple[dict[str, int], Decimal]:
    """Exact repair energy without division: item → integer weight w and a threshold M such that
    Σ quantity / units_per_repair >= r  ⟺  Σ quantity × w >= r × M.

    With every units_per_repair u = a / 10^s (a an integer), M = lcm(a) / 10^s and w = lcm(a) / a."""
    scale = max(max(0, -u.as_tuple().exponent) for _, u in rule.repair.energy)
    ints = {item: int(u.scaleb(scale)) for item, u in rule.repair.energy}
    common = lcm(*ints.values())
    return {item: common // a for item, a in ints.items()}, Decimal(common).scaleb(-scale)


def _repair_days(events: str, threshold: Decimal) -> str:
    """SQL: the repair queue of one person and rule, over the column `events` (array of
    struct<day, kind, source_id, record_id, value> sorted: by day, breaches (kind 0) before energy
    (kind 1) on the same day, breaches oldest first then by source_id, record_id): the array of
    repair days, the k-th for the k-th breach. Energy goes to the oldest unrepaired breach; each repair takes one unit
    (`threshold` in weighted energy); what is left when no breach waits is lost (energy counts
    only from a breach's own occurred_on)."""
    m = f"CAST('{threshold}' AS {ENERGY})"
    waiting = "(acc.arrived - acc.repaired)"
    total = f"CAST(acc.energy + e.value AS {ENERGY})"
    r = f"least({waiting}, CAST({total} div {m} AS INT))"
    return f"""aggregate({events},
      named_struct('arrived', 0, 'repaired', 0, 'energy', CAST(0 AS {ENERGY}),
                   'days', CAST(array() AS ARRAY<DATE>)),
      (acc, e) -> CASE
        WHEN e.kind = 0 THEN named_struct('arrived', acc.arrived + 1, 'repaired', acc.repaired,
                                          'energy', acc.energy, 'days', acc.days)
        WHEN {waiting} = 0 THEN acc
        ELSE named_struct(
          'arrived', acc.arrived,
          'repaired', acc.repaired + {r},
          'energy', CASE WHEN {waiting} = {r} THEN CAST(0 AS {ENERGY})
                         ELSE CAST({total} - {r} * {m} AS {ENERGY}) END,
          'days', concat(acc.days, array_repeat(e.day, {r})))
      END,
      acc -> acc.days)"""


def repair_status(df: DataFrame, scheme: Scheme, as_of: dt.date) -> DataFrame:
    """`repair`: a counted finding of a rule with repair energy stops counting on the first day
    D ≥ its occurred_on on which the person's repair energy reaches 1 (energy = Σ quantity /
    units_per_repair of the person's current findings of the listed items from that day on;
    quantity 1 where a finding has none). Several findings of the rule are repaired oldest first
    (ties: source_id, record_id), each taking one unit. Adds `repaired_on` (date, null unless
    repaired) and sets status `repaired`. Findings that would not count on A (expired,
    deduplicated, unmet, ...) take no energy. Each rule keeps its own account of energy."""
    repaired_on = F.lit(None).cast("date")
    person = Window.partitionBy("subject_key")
    current = is_current(as_of)
    no_text = F.lit(None).cast("string")
    columns = []
    for i, rule in enumerate(r for r in scheme.rules if r.repair is not None):
        weights, threshold = energy_weights(rule)
        breach = (F.col("status") == "counted") & (F.col("rule_id") == rule.id)
        value = F.lit(None).cast(ENERGY)
        for item, weight in weights.items():
            value = F.when(F.col("item_code") == item,
                           (F.coalesce(F.col("quantity").cast(QUANTITY), F.lit(1).cast(QUANTITY))
                            * F.lit(weight)).cast(ENERGY)).otherwise(value)
        def event(kind, source_id, record_id, val):
            return F.struct(F.col("occurred_on").alias("day"), F.lit(kind).alias("kind"),
                            source_id.alias("source_id"), record_id.alias("record_id"),
                            val.cast(ENERGY).alias("value"))
        breaches = F.collect_list(F.when(breach, event(
            0, F.col("source_id"), F.col("record_id"), F.lit(0)))).over(person)
        energy = F.collect_list(F.when(current & F.col("item_code").isin(*weights),
                                       event(1, no_text, no_text, value))).over(person)
        events, days = f"_events_{i}", f"_days_{i}"
        df = df.withColumn(events, F.when(breach, F.array_sort(F.concat(breaches, energy))))
        df = df.withColumn(days, F.expr(_repair_days(events, threshold)))
        # the k-th breach of the sorted events is the k-th repaired (first in, first out)
        position = F.array_position(
            F.expr(f"transform(filter({events}, e -> e.kind = 0), "
                   f"e -> named_struct('s', e.source_id, 'r', e.record_id))"),
            F.struct(F.col("source_id").alias("s"), F.col("record_id").alias("r")))
        day = F.when(breach & (position <= F.size(F.col(days))),
                     F.element_at(F.col(days), position.cast("int")))
        repaired_on = F.coalesce(repaired_on, day)
        columns += [events, days]
    df = df.withColumn("repaired_on", repaired_on).drop(*columns)
    return df.withColumn("status", F.when(F.col("repaired_on").isNotNull(), "repaired")
                         .otherwise(F.col("status")))


# ---------------------------------------------------------------------------------- growth
def growth_totals(evaluated: DataFrame, scheme: Scheme, as_of: dt.date) -> DataFrame:
    """`growth`: per person and growth rule with at least one current finding of it: start =
    occurred_on of the earliest, or of the latest current finding of a `reset_by` rule when that
    is on or after it; n = the largest whole number with add_months(start, n·k) ≤ A; points =
    p × n, at most the growth cap; then the rule cap as for any rule.

    In: steps.evaluate_findings rows. Out: rule_totals-shaped rows (subject_key, rule_id,
    dimension, rule_kind 'growth', rule_cap, dimension_cap, _points null, _quantity = n,
    finding_count, rule_raw, rule_total) plus `_start` (the day growth counts from)."""
    rules = [r for r in scheme.rules if r.growth is not None]
    current = is_current(as_of)
    aggregates = []
    for i, rule in enumerate(rules):
        reset = rule.growth.reset_by
        aggregates += [
            F.min(F.when(current & item_condition(rule), F.col("occurred_on"))).alias(f"_first_{i}"),
            (F.max(F.when(current & of_rules(scheme, reset), F.col("occurred_on"))) if reset
             else F.lit(None).cast("date")).alias(f"_reset_{i}"),
            F.count(F.when((F.col("rule_id") == rule.id) & (F.col("status") == "counted"),
                           1)).alias(f"_count_{i}")]
    per_person = evaluated.groupBy("subject_key").agg(*aggregates)

    def constant(value, type_):
        return F.lit(value).cast(type_)

    entries = []
    for i, rule in enumerate(rules):
        first, reset = F.col(f"_first_{i}"), F.col(f"_reset_{i}")
        entries.append(F.struct(
            constant(rule.id, "string").alias("rule_id"),
            constant(rule.dimension, "string").alias("dimension"),
            constant(rule.cap, RULE_VALUE).alias("rule_cap"),
            constant(scheme.dimensions[rule.dimension].cap, RULE_VALUE).alias("dimension_cap"),
            constant(rule.growth.every_months, "int").alias("_every"),
            constant(rule.growth.points, RULE_VALUE).alias("_per_period"),
            constant(rule.growth.cap, RULE_VALUE).alias("_growth_cap"),
            F.when(reset >= first, reset).otherwise(first).alias("_start"),
            F.col(f"_count_{i}").cast("long").alias("finding_count")))
    rows = (per_person.select("subject_key", F.explode(F.array(*entries)).alias("g"))
            .select("subject_key", "g.*").where(F.col("_start").isNotNull()))
    months = full_months_column(F.col("_start"), as_of)
    periods = F.expr("CAST(greatest(_months, 0) div _every AS INT)")
    rows = rows.withColumn("_months", months).withColumn("_n", periods)
    growth = bounded(F.col("_per_period").cast(POINTS) * F.col("_n"), F.col("_growth_cap"))
    rows = rows.withColumn("rule_raw", cast_or_stop(growth, POINTS, out_of_range(
        scheme, "a subject's growth points", "rule", "rule_id")))
    return rows.select(
        "subject_key", "rule_id", "dimension", F.lit("growth").alias("rule_kind"), "rule_cap",
        "dimension_cap", F.lit(None).cast(POINTS).alias("_points"),
        F.col("_n").cast(QUANTITY).alias("_quantity"), "finding_count", "rule_raw",
        bounded(F.col("rule_raw"), F.col("rule_cap")).cast(POINTS).alias("rule_total"),
        "_start")
