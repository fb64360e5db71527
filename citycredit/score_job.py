"""The scoring job's edges: read silver as known at the month, score, write gold atomically."""
from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from . import tables
from .config import Settings
from .rules import Scheme
from .scoring import adults_of, as_known_at, evaluate_month, summarise_month

SCORES_PARTITIONS = ["scheme", "score_month"]


@dataclass
class ScoringResult:
    scheme: str
    month: str
    run_id: str
    subjects: int
    lines: int
    seconds: float


def load_inputs(spark: SparkSession, settings: Settings, month: str) -> dict:
    """Silver inputs of the score month: only deliveries of months <= month count (SPEC §2)."""
    silver = lambda name: tables.read(spark, settings.table_path("silver", name))  # noqa: E731
    optouts = silver("optouts").where(f"known_from <= '{month}'")
    return {
        "findings": as_known_at(silver("findings"), month),
        "adults": adults_of(tables.read(spark, settings.table_path("silver", "population"),
                                        where={"snapshot_month": month}), month),
        "appeals": as_known_at(silver("appeals"), month),
        "optouts": optouts,
    }


def run_scoring(spark: SparkSession, settings: Settings, scheme: Scheme, month: str,
                run_id: str | None = None, inputs: dict | None = None) -> ScoringResult:
    """Score one scheme for one month and replace its gold partitions (scores, score_lines)."""
    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex[:12]
    inputs = inputs or load_inputs(spark, settings, month)
    evaluated, adults = evaluate_month(
        inputs["findings"], inputs["adults"], inputs["appeals"], inputs["optouts"], scheme, month,
        mask_working_days=settings.scoring["appeal_mask_working_days"])
    # every output reads the evaluated findings (scan, shuffle, dedupe window): compute them once
    evaluated = evaluated.persist(StorageLevel.MEMORY_AND_DISK)
    adults = adults.persist(StorageLevel.MEMORY_AND_DISK)
    scores, lines = summarise_month(evaluated, adults, scheme, month, run_id,
                                    computed_at=dt.datetime.now(dt.timezone.utc))
    partition = {"scheme": scheme.scheme, "score_month": month}
    try:
        tables.write(lines, settings.table_path("gold", "score_lines"), mode="overwrite",
                     partition_by=SCORES_PARTITIONS, replace=partition)
        tables.write(scores, settings.table_path("gold", "scores"), mode="overwrite",
                     partition_by=SCORES_PARTITIONS, replace=partition)
    finally:
        evaluated.unpersist()
        adults.unpersist()
    written = tables.read(spark, settings.table_path("gold", "scores"), where=partition).count()
    line_count = tables.read(spark, settings.table_path("gold", "score_lines"), where=partition).count()
    return ScoringResult(scheme.scheme, month, run_id, written, line_count,
                         time.perf_counter() - started)
