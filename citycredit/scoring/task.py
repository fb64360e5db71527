"""The scoring step of the month (thin): every scheme's gold partitions from one scan of the
month's findings (job.run_scoring), and what the report and the publication checks need to
know about them."""
from __future__ import annotations

from typing import TypedDict

from ..config import Settings, load_settings
from ..io.spark import get_spark
from ..publish.report import record_not_scored
from .job import run_scoring
from .rules_in_force import not_in_force_reason, rules_for_month


class Scored(TypedDict):
    scheme: str
    month: str
    run_id: str                    # the scoring run: its gold rows are what publication checks
    subjects: int                  # scores written
    lines: int                     # explanation lines written
    rules_version: str
    grades: dict[str, int]         # grade → subjects, highest grade first
    unmatched: dict[str, int]      # item_code → findings that matched no rule (SPEC §4 step 2)
    seconds: float                 # this scheme's share of the step (the shared scan split evenly)
    adults: int                    # whom scoring was given (rows of the month's scored subjects)
    adults_distinct: int           # their distinct subject keys
    adult_keys: int                # checksums compared by publish.checks (job.ScoringResult)
    subject_keys: int
    points_scored: int
    points_explained: int


def score(month: str, run_id: str, settings: Settings | None = None,
          schemes: list[str] | None = None, progress=None,
          rescore_with_current_rules: bool = False) -> list[Scored]:
    """gold/scores and gold/score_lines for `schemes` (default: every adopted scheme of
    rules/) and the month, scored in one job from one scan of the findings, each scheme under
    its version in force for the month (scoring.rules_in_force: a scheme not yet in force is
    not scored, and run_report says so; a published month whose rules changed is refused with
    RulesChangedSincePublication unless `rescore_with_current_rules`)."""
    settings = settings or load_settings()
    loaded, not_yet = rules_for_month(settings, month, schemes or None,
                                      rescore_with_current_rules)
    if not_yet:
        record_not_scored(settings, month, run_id, {name: not_in_force_reason(month, first)
                                                    for name, first in not_yet.items()})
    if not loaded:
        return []
    spark = get_spark(settings)
    results = run_scoring(spark, settings, list(loaded.values()), month, run_id,
                          progress=progress)
    return [{"scheme": r.scheme, "month": month, "run_id": r.run_id, "subjects": r.subjects, "lines": r.lines,
             "rules_version": loaded[r.scheme].rules_version, "grades": r.grades,
             "unmatched": r.unmatched, "seconds": r.seconds, "adults": r.adults,
             "adults_distinct": r.adults_distinct, "adult_keys": r.adult_keys,
             "subject_keys": r.subject_keys, "points_scored": r.points_scored,
             "points_explained": r.points_explained} for r in results]
