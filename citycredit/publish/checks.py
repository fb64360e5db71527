"""Publication checks (SPEC §5): a month whose checks fail is not published and the previous
publication stays. Every scored subject has exactly one score; explanation lines sum to the
scores (both from the figures the scoring job recorded: no re-join of the lines unless they
disagree); the grade distribution moved within the configured bound against the previous
publication (or the move was reviewed: accept_drift)."""
from __future__ import annotations

import pyarrow.compute as pc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings
from ..io import tables


def previous_publication(settings: Settings, scheme: str, month: str) -> tuple[str | None, dict]:
    """(the latest published month before `month`, its grade → subjects), or (None, {})."""
    location = catalog.PUBLISHED_SCORES.at(settings)
    if not tables.exists(location):
        return None, {}
    months = sorted(p["score_month"] for p in tables.partitions(location)
                    if p["scheme"] == scheme and p["score_month"] < month)
    if not months:
        return None, {}
    grades = tables.read_arrow(location, where={"scheme": scheme, "score_month": months[-1]},
                               columns=["grade"]).column("grade")
    return months[-1], {count["values"]: count["counts"]
                        for count in pc.value_counts(grades).to_pylist()}


def run_rows(scored: dict, month: str) -> dict:
    """The `where` of one scheme's rows of the scoring run `scored` (scoring.task.Scored) in
    gold/scores and gold/score_lines: exactly what that run wrote, no other run's rows."""
    return {"scheme": scored["scheme"], "score_month": month, "run_id": scored["run_id"]}


def grade_shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {g: n / total for g, n in counts.items()}


def grade_drift(now: dict[str, int], before: dict[str, int]) -> dict[str, float]:
    """Per grade: share now − share before (a fraction of the subjects)."""
    a, b = grade_shares(now), grade_shares(before)
    return {g: a.get(g, 0) - b.get(g, 0) for g in {*a, *b}}


def _repeated_persons(settings: Settings, month: str, subjects, shown: int = 5) -> str:
    """Where a person the month scores more than once was delivered: each repeated subject's
    accepted population rows by source, file and line (never the person)."""
    from ..ingest.bronze import where_delivered

    keys = {r.subject_key for r in subjects.groupBy("subject_key").count()
            .where(F.col("count") > 1).limit(shown).collect()}
    if not keys:
        return ""
    rows = where_delivered(settings, month, "population", keys)
    places = [" and ".join(rows[k]) for k in sorted(rows)]
    return (f" — the same person is in the {month} population more than once: "
            + "; ".join(places or ["(rows not found in bronze)"]))


def publication_checks(spark: SparkSession, settings: Settings, scored: list[dict], month: str,
                       accept_drift: bool) -> list[str]:
    """The problems that stop the month's publication of the schemes scored ([] = publish).

    `scored` holds the score step's result for each scheme (scoring.task.Scored): what the job
    recorded while writing gold (adults given, score rows, checksums of subject keys and of
    points per subject on scores and explanation lines, the grade counts). The checks compare
    those, and make one cheap pass over the runs' own rows of gold/scores, every scheme at once
    (row count and key checksum per scheme: gold still holds what the job wrote). Only when a
    figure disagrees are the month's inputs and the explanation lines read again, to say
    exactly what is wrong."""
    from ..scoring.job import key_weight

    if not scored:
        return []
    everyone = tables.read(spark, catalog.SCORES.at(settings), where={
        "scheme": sorted({r["scheme"] for r in scored}), "score_month": month,
        "run_id": sorted({r["run_id"] for r in scored})})
    figures = {(row.scheme, row.run_id): (row.rows, row.keys or 0) for row in
               everyone.groupBy("scheme", "run_id").agg(
                   F.count(F.lit(1)).alias("rows"), F.sum(key_weight()).alias("keys")).collect()}
    problems = []
    for result in scored:
        problems += _scheme_problems(spark, settings, result, month, accept_drift,
                                     figures.get((result["scheme"], result["run_id"]), (0, 0)))
    return problems


def _scheme_problems(spark: SparkSession, settings: Settings, scored: dict, month: str,
                     accept_drift: bool, gold: tuple[int, int]) -> list[str]:
    """One scheme's problems; `gold`: (rows, key checksum) of its run's rows of gold/scores."""
    scheme = scored["scheme"]
    where = run_rows(scored, month)
    if gold != (scored["subjects"], scored["subject_keys"]):
        return [f"{scheme}: gold/scores of {month} holds {gold[0]} rows of run "
                f"{where['run_id']}, not the {scored['subjects']} the score step wrote: rerun "
                "the month"]
    problems = []
    subjects_agree = (scored["subjects"] == scored["adults"] == scored["adults_distinct"]
                      and scored["subject_keys"] == scored["adult_keys"])
    points_agree = scored["points_scored"] == scored["points_explained"]
    if not (subjects_agree and points_agree):     # read the run's rows only to say what is wrong
        scores = tables.read(spark, catalog.SCORES.at(settings), where=where)
        if not subjects_agree:
            problems += _subject_problems(spark, settings, scheme, month, scores)
        if not points_agree:
            problems += _explanation_problems(spark, settings, where, scores)
    previous, before = previous_publication(settings, scheme, month)
    if previous:
        bound = settings.publish["max_grade_share_change"]
        moved = grade_drift(scored["grades"], before)
        worst = max(moved, key=lambda g: abs(moved[g]))
        if abs(moved[worst]) > bound and not accept_drift:
            problems.append(f"{scheme}: grade {worst} share moved {moved[worst]:+.1%} against "
                            f"{previous} (bound ±{bound:.0%}); rerun with --accept-drift once "
                            "reviewed")
    return problems


def _subject_problems(spark: SparkSession, settings: Settings, scheme: str, month: str,
                      scores) -> list[str]:
    """The figures of a failed subject check, from the month's inputs (the refusal's path)."""
    from ..scoring.job import load_inputs

    problems = []
    subjects = load_inputs(spark, settings, month).subjects      # whom scoring was given
    stats = scores.agg(F.count(F.lit(1)).alias("rows"),
                       F.countDistinct("subject_key").alias("subjects")).first()
    expected = subjects.count()
    if not stats.rows == stats.subjects == expected:
        problems.append(f"{scheme}: {stats.rows} score rows for {stats.subjects} subjects, "
                        f"expected each of {expected} adults exactly once"
                        + _repeated_persons(settings, month, subjects))
    missing = subjects.join(scores, "subject_key", "left_anti").count()
    if missing:
        problems.append(f"{scheme}: {missing} adults have no score")
    return problems or [f"{scheme}: the scored subjects differ from the month's adults"]


def _explanation_problems(spark: SparkSession, settings: Settings, where: dict,
                          scores) -> list[str]:
    """How many subjects' explanation lines of the run (`where`: run_rows) miss their score
    (the refusal's path)."""
    scheme = where["scheme"]
    lines = tables.read(spark, catalog.SCORE_LINES.at(settings), where=where) \
        .groupBy("subject_key").agg(F.sum("points").alias("explained"))
    unexplained = (scores.join(lines, "subject_key", "left")
                   .where(F.col("points_positive") + F.col("points_negative")
                          != F.coalesce(F.col("explained"), F.lit(0))).count())
    return [f"{scheme}: explanation lines do not sum to the score for "
            f"{unexplained or 'some'} subjects"]
