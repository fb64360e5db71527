"""Simulation of a draft scheme against the adopted one (SPEC §6, issue "Policy tools" item 2):
pure steps from the two schemes' scores and explanation lines to the sandbox rows and the
summary. The scores themselves come from citycredit.scoring (policy.job.ScoredTogether).

Frames in: `scores` shaped as catalog.SCORES, `lines` as catalog.SCORE_LINES (both schemes score
the same subjects from the same findings). Out: catalog.SIMULATED_SCORES rows, small aggregates
collected to the driver, and the JSON-able summary `summarise` builds from them.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..catalog import SIMULATED_SCORES
from ..rules import Scheme
from ..scoring.decimals import POINTS
from . import measures

#: the quantiles of the score change the summary gives
CHANGE_QUANTILES = {"min": 0.0, "p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5,
                    "p75": 0.75, "p95": 0.95, "p99": 0.99, "max": 1.0}


def side_by_side(adopted: DataFrame, draft: DataFrame, draft_name: str, run_id: str,
                 computed_at: dt.datetime) -> DataFrame:
    """catalog.SIMULATED_SCORES rows: per subject the adopted and the draft score and grade.
    Both frames score the same subjects (the month's scored adults), so the join is inner."""
    a = adopted.select("subject_key", "scheme", "score_month",
                       F.col("score").alias("adopted_score"), F.col("grade").alias("adopted_grade"),
                       F.col("rules_version").alias("adopted_rules_version"))
    d = draft.select("subject_key", F.col("score").alias("draft_score"),
                     F.col("grade").alias("draft_grade"),
                     F.col("rules_version").alias("draft_rules_version"))
    constants = {"draft": F.lit(draft_name), "run_id": F.lit(run_id),
                 "computed_at": F.lit(computed_at).cast("timestamp"),
                 "score_change": (F.col("draft_score") - F.col("adopted_score")).cast("int")}
    return a.join(d, "subject_key").select(
        *[constants[c].alias(c) if c in constants else F.col(c)
          for c in SIMULATED_SCORES.columns])


def movement_counts(simulated: DataFrame) -> pd.DataFrame:
    """(adopted_grade, draft_grade, score_change, count): everything the migration matrix, the
    threshold crossings and the score-change distribution need, in one small table."""
    return (simulated.groupBy("adopted_grade", "draft_grade", "score_change").count()
            .toPandas())


def rule_effects(lines: DataFrame) -> pd.DataFrame:
    """Per rule: subjects touched (at least one counted finding, or a tier or cap line, of the
    rule) and their summed rule totals (after the rule's cap; tier and cap lines included).
    Columns rule_id, subjects, points."""
    per_subject = (lines.where(F.col("rule_id").isNotNull())
                   .groupBy("subject_key", "rule_id")
                   .agg(F.sum("points").alias("points"),
                        F.max(F.col("status") == "counted").alias("touched")))
    return (per_subject.where("touched").groupBy("rule_id")
            .agg(F.count(F.lit(1)).alias("subjects"), F.sum("points").alias("points"))
            .toPandas())


def sample_moved(simulated: DataFrame, size: int) -> list[str]:
    """Up to `size` subject keys of people the draft moves: grade changes first, the largest
    score changes first, then by subject_key (deterministic)."""
    if size <= 0:
        return []
    moved = simulated.where(F.col("score_change") != 0)
    rows = (moved.orderBy((F.col("adopted_grade") != F.col("draft_grade")).desc(),
                          F.abs("score_change").desc(), "subject_key")
            .select("subject_key").limit(size).collect())
    return [r.subject_key for r in rows]


def explanation_lines_of(lines: DataFrame, subject_keys: list[str]) -> pd.DataFrame:
    """The explanation lines of a few subjects (subject_key, line_type, source_id, record_id,
    item_code, occurred_on, rule_id, dimension, points, status)."""
    if not subject_keys:
        return pd.DataFrame(columns=["subject_key", "line_type", "source_id", "record_id",
                                     "item_code", "occurred_on", "rule_id", "dimension",
                                     "points", "status"])
    return (lines.where(F.col("subject_key").isin(subject_keys))
            .select("subject_key", "line_type", "source_id", "record_id", "item_code",
                    "occurred_on", "rule_id", "dimension", "points", "status")
            .toPandas())


# ---------------------------------------------------------------------------------------------
# the summary (pure Python on the collected aggregates)
def _line_key(row) -> str:
    """What a line explains: its rule, or for a dimension cap the dimension."""
    if isinstance(row.rule_id, str):
        return row.rule_id
    return f"cap:{row.dimension}"


def _points_number(value: Decimal) -> float:
    """Points as a JSON number: the decimal at the points' scale (8 places), so that a mean
    reads 33.33333333, not 33.333333333333336 (float of the 28-digit quotient)."""
    return float(value.quantize(Decimal(1).scaleb(-POINTS.scale)))


def explanation_differences(adopted_lines: pd.DataFrame, draft_lines: pd.DataFrame,
                            sample: list[str], scores: dict[str, dict]) -> list[dict]:
    """Per sampled subject, numbered 1… in sample order (`sample`): scores and grades before
    and after, and each rule (or dimension cap) whose points differ, with the findings whose
    status or points differ (source, item, date, rule, status, points). No subject_key and no
    record id: reports are files that get copied beyond the reach of erasure (SPEC §7), so
    they hold nobody's key; sample n is the n-th row of sandbox/simulated_scores in
    `sample_moved`'s order, for whoever may look a person up there."""
    def per_key(lines):
        out: dict[tuple, Decimal] = {}
        for row in lines.itertuples(index=False):
            key = (row.subject_key, _line_key(row))
            out[key] = out.get(key, Decimal(0)) + Decimal(row.points)
        return out

    def findings(lines):
        rows = lines[lines["line_type"] == "finding"]
        return {(r.subject_key, r.source_id, r.record_id): r for r in rows.itertuples(index=False)}

    a_rules, d_rules = per_key(adopted_lines), per_key(draft_lines)
    a_find, d_find = findings(adopted_lines), findings(draft_lines)
    out = []
    for number, subject in enumerate(sample, start=1):
        rules = {}
        for key in sorted({k for s, k in (*a_rules, *d_rules) if s == subject}):
            before = a_rules.get((subject, key), Decimal(0))
            after = d_rules.get((subject, key), Decimal(0))
            if before != after:
                rules[key] = {"adopted": _points_number(before), "draft": _points_number(after)}
        changed = []
        for ref in sorted({k for k in (*a_find, *d_find) if k[0] == subject}):
            a, d = a_find.get(ref), d_find.get(ref)
            pick = lambda r, f: None if r is None else getattr(r, f)  # noqa: E731
            points = lambda r: None if r is None else _points_number(Decimal(r.points))  # noqa
            if (pick(a, "status"), pick(a, "points"), pick(a, "rule_id")) != \
                    (pick(d, "status"), pick(d, "points"), pick(d, "rule_id")):
                base = a if a is not None else d
                changed.append({
                    "source": ref[1], "item": base.item_code,
                    "occurred_on": str(base.occurred_on),
                    "adopted": {"rule": pick(a, "rule_id"), "status": pick(a, "status"),
                                "points": points(a)},
                    "draft": {"rule": pick(d, "rule_id"), "status": pick(d, "status"),
                              "points": points(d)}})
        out.append({"sample": number, **scores.get(subject, {}), "rules": rules,
                    "findings": changed})
    return out


def rule_table(adopted: pd.DataFrame, draft: pd.DataFrame, adopted_scheme: Scheme,
               draft_scheme: Scheme) -> dict[str, dict]:
    """{rule_id: {"adopted": {subjects, mean_points}, "draft": {...}}} over the subject rules
    and the rules of both schemes, each in file order (a side is None where its scheme has no
    such rule). In: rule_effects of each side."""
    def ids(scheme: Scheme) -> list[str]:
        return [r.id for r in scheme.subject_rules] + [r.id for r in scheme.rules]

    def stats(frame, rule_id, known: list[str]):
        if rule_id not in known:
            return None
        row = frame[frame["rule_id"] == rule_id]
        subjects = int(row["subjects"].iloc[0]) if len(row) else 0
        points = Decimal(row["points"].iloc[0]) if len(row) else Decimal(0)
        return {"subjects": subjects,
                "mean_points": _points_number(points / subjects) if subjects else None}
    adopted_ids, draft_ids = ids(adopted_scheme), ids(draft_scheme)
    order = adopted_ids + [i for i in draft_ids if i not in adopted_ids]
    return {rule_id: {"adopted": stats(adopted, rule_id, adopted_ids),
                      "draft": stats(draft, rule_id, draft_ids)} for rule_id in order}


def draft_predates(adopted: Scheme, draft: Scheme, draft_name: str) -> str | None:
    """A warning when the draft starts before the adopted version of its scheme (an
    `effective_from` earlier than the current file's): it was written from rules replaced
    since, so the migration shown mixes its own changes with every change the adoption made —
    and `citycredit adopt` would refuse it. None otherwise."""
    if draft.effective_from >= adopted.effective_from:
        return None
    return (f"the draft {draft_name} (version {draft.version}, effective_from "
            f"{draft.effective_from}) predates the adopted {adopted.scheme} rules (version "
            f"{adopted.version}, effective_from {adopted.effective_from}): it revises rules "
            "replaced since, so what it moves includes every change of the adoption")


def summarise(counts: pd.DataFrame, adopted: Scheme, draft: Scheme, draft_name: str,
              month: str) -> dict:
    """The summary's figures from movement_counts: subjects, moved (grade changes), the
    migration matrix (counts and row shares), up / down, threshold crossings, grade counts
    and the score-change distribution (quantiles, mean, histogram)."""
    a_grades = [g.grade for g in adopted.grades]
    d_grades = [g.grade for g in draft.grades]
    migration_counts = (counts.groupby(["adopted_grade", "draft_grade"], as_index=False)["count"]
                        .sum().rename(columns={"adopted_grade": "from_grade",
                                               "draft_grade": "to_grade"}))
    matrix = measures.migration_matrix(migration_counts, a_grades, d_grades)
    moves = measures.migration_moves(matrix, a_grades, d_grades)
    histogram = {int(k): int(v) for k, v in counts.groupby("score_change")["count"].sum().items()}
    total = sum(histogram.values())
    q = measures.quantiles(histogram, list(CHANGE_QUANTILES.values()))
    adopted_counts = {g: sum(matrix[g].values()) for g in a_grades}
    draft_counts = {g: sum(row.get(g, 0) for row in matrix.values()) for g in d_grades}
    return {
        "scheme": adopted.scheme, "draft": draft_name, "draft_version": draft.version,
        "adopted_version": adopted.version, "month": month,
        "subjects": moves["subjects"], "moved": moves["moved"],
        "up": moves["up"], "down": moves["down"],
        "score_changed": total - histogram.get(0, 0),
        "migration": matrix, "migration_shares": measures.matrix_shares(matrix),
        "bandwidth": {"upward": moves["upward_bandwidth"],
                      "downward": moves["downward_bandwidth"]},
        "grades": {"adopted": adopted_counts, "draft": draft_counts},
        "herfindahl": {"adopted": measures.herfindahl(adopted_counts),
                       "draft": measures.herfindahl(draft_counts)},
        "threshold_crossings": measures.threshold_crossings(matrix, a_grades, d_grades),
        "score_change": {
            "quantiles": {name: q[level] for name, level in CHANGE_QUANTILES.items()},
            "mean": (sum(k * v for k, v in histogram.items()) / total) if total else None,
            "histogram": {str(k): v for k, v in sorted(histogram.items())}},
    }
