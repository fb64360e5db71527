"""The scoring step of the month (thin): one scheme's gold partitions, and what the report and
the publication checks need to know about them."""
from __future__ import annotations

from typing import TypedDict

from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from ..io.spark import get_spark
from ..rules import load_schemes
from .job import run_scoring


class Scored(TypedDict):
    scheme: str
    month: str
    subjects: int                  # scores written
    lines: int                     # explanation lines written
    rules_version: str
    grades: dict[str, int]         # grade → subjects, highest grade first
    unmatched: dict[str, int]      # item_code → findings that matched no rule (SPEC §4 step 2)
    seconds: float


def score_scheme(scheme: str, month: str, run_id: str, settings: Settings | None = None) -> Scored:
    """gold/scores and gold/score_lines for one scheme and month."""
    settings = settings or load_settings()
    spark = get_spark(settings)
    loaded = load_schemes(settings.rules, [scheme])[scheme]
    result = run_scoring(spark, settings, loaded, month, run_id)
    where = {"scheme": scheme, "score_month": month}
    grades = {r.grade: r["count"] for r in tables.read(
        spark, catalog.SCORES.at(settings), where=where).groupBy("grade").count().collect()}
    lines = tables.read(spark, catalog.SCORE_LINES.at(settings), where=where)
    unmatched = {r.item_code: r["count"] for r in lines.where(F.col("status") == "no_rule")
                 .groupBy("item_code").count().collect()}
    return {"scheme": scheme, "month": month, "subjects": result.subjects, "lines": result.lines,
            "rules_version": loaded.rules_version,
            "grades": {g.grade: grades.get(g.grade, 0) for g in loaded.grades},
            "unmatched": unmatched, "seconds": round(result.seconds, 2)}
