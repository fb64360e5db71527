"""The scoring job's edges: silver as known at the month in, gold out (atomic partition
replace per scheme and month). `jobs/score.py` (spark-submit) and the pipeline call this."""
from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from .. import catalog
from ..config import Settings
from ..io import tables
from ..rules import Scheme
from ..silver.adults import scored_subjects
from ..silver.versions import as_known_at
from .steps import evaluate_month, summarise_month


@dataclass
class ScoringResult:
    scheme: str
    month: str
    run_id: str
    subjects: int          # rows written to gold/scores
    lines: int             # rows written to gold/score_lines
    seconds: float


@dataclass
class MonthInputs:
    """Silver as known at the score month: only deliveries of months <= month count (SPEC §2)."""

    findings: DataFrame    # silver/findings, current versions
    subjects: DataFrame    # every subject scored, with its attributes (silver.adults.scored_subjects)
    appeals: DataFrame     # silver/appeals, current versions


def load_inputs(spark: SparkSession, settings: Settings, month: str,
                with_months_resident: bool = False) -> MonthInputs:
    """Silver as known at `month`; with_months_resident: the subjects carry months_resident
    (reads every population snapshot up to the month: only for schemes whose subject rules
    test it, see needs_months_resident)."""
    def silver(table: catalog.Table, where=None):
        return tables.read(spark, table.at(settings), where=where)

    optouts = silver(catalog.SILVER_OPTOUTS).where(f"known_from <= '{month}'")
    population = (silver(catalog.SILVER_POPULATION) if with_months_resident
                  else silver(catalog.SILVER_POPULATION, where={"snapshot_month": month}))
    return MonthInputs(
        findings=as_known_at(silver(catalog.SILVER_FINDINGS), month),
        subjects=scored_subjects(population, optouts, month, with_months_resident),
        appeals=as_known_at(silver(catalog.SILVER_APPEALS), month),
    )


def needs_months_resident(scheme: Scheme) -> bool:
    """Does a subject rule of the scheme test months_resident (SPEC §4.1)?"""
    return "months_resident" in scheme.subject_attributes


def run_scoring(spark: SparkSession, settings: Settings, scheme: Scheme, month: str,
                run_id: str | None = None, inputs: MonthInputs | None = None) -> ScoringResult:
    """Score one scheme for one month and replace its gold partitions (scores, score_lines)."""
    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex[:12]
    inputs = inputs or load_inputs(spark, settings, month, needs_months_resident(scheme))
    evaluated = evaluate_month(inputs.findings, inputs.subjects, inputs.appeals, scheme, month,
                               mask_working_days=settings.scoring["appeal_mask_working_days"])
    # every output reads the evaluated findings (scan, shuffle, dedupe window): compute them once
    evaluated = evaluated.persist(StorageLevel.MEMORY_AND_DISK)
    subjects = inputs.subjects.persist(StorageLevel.MEMORY_AND_DISK)
    scores, lines = summarise_month(evaluated, subjects, scheme, month, run_id,
                                    computed_at=dt.datetime.now(dt.timezone.utc))
    partition = {"scheme": scheme.scheme, "score_month": month}
    try:
        tables.write(lines, catalog.SCORE_LINES.at(settings), mode="overwrite", replace=partition)
        tables.write(scores, catalog.SCORES.at(settings), mode="overwrite", replace=partition)
    finally:
        evaluated.unpersist()
        subjects.unpersist()
    written = tables.read(spark, catalog.SCORES.at(settings), where=partition).count()
    line_count = tables.read(spark, catalog.SCORE_LINES.at(settings), where=partition).count()
    return ScoringResult(scheme.scheme, month, run_id, written, line_count,
                         time.perf_counter() - started)
