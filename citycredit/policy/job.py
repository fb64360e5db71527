"""The policy tools' edges: silver and gold in through the catalogue, the sandbox out.

Every score here comes from citycredit.scoring itself (one semantics, SPEC §4); this module only
decides what is scored together and where results go.

`ScoredTogether` scores several schemes of one month (the adopted scheme and a draft, or any
set) with the monthly job's own mechanism, scoring.job.MonthScan: the findings as known at the
month are read once, repartitioned by subject_key and held, and every scheme is evaluated
inside that partitioning (no further scan or exchange of the findings: checked with explain()
in tests/integration/test_policy.py).
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings
from ..io import tables
from ..months import month_of
from ..rules import Scheme
from ..scoring.job import MonthInputs, MonthScan


class PolicyDataMissing(RuntimeError):
    """The warehouse lacks what a policy tool needs (a month's silver); the message says what."""


@dataclass
class SchemeScores:
    """One scheme's results for the month, computed in memory (nothing written to gold).

    scores: catalog.SCORES columns; lines: catalog.SCORE_LINES columns (the explanation)."""

    label: str            # "adopted" or the draft's name
    scheme: Scheme
    scores: DataFrame
    lines: DataFrame


class ScoredTogether:
    """Context manager: {label: Scheme} scored for `month` from one scan and one shuffle of the
    findings (scoring.job.MonthScan). Inside the block, `results[label]` is a SchemeScores
    whose frames read held data; leaving the block releases it.

        with ScoredTogether(spark, settings, {"adopted": a, "draft": d}, "2026-10", run_id) as r:
            r["adopted"].scores ...
    """

    def __init__(self, spark: SparkSession, settings: Settings, schemes: dict[str, Scheme],
                 month: str, run_id: str, inputs: MonthInputs | None = None, progress=None):
        self.settings, self.schemes, self.month, self.run_id = settings, schemes, month, run_id
        self.say = progress or (lambda stage, detail="": None)
        self.scan = MonthScan(spark, settings, month, schemes.values(), inputs, progress)
        self.results: dict[str, SchemeScores] = {}

    def __enter__(self) -> dict[str, SchemeScores]:
        require_month(self.settings, self.month)
        scan = self.scan.__enter__()
        try:
            computed_at = dt.datetime.now(dt.timezone.utc)
            for label, scheme in self.schemes.items():
                self.say("score", f"{label} ({scheme.scheme} {scheme.version})")
                scored = scan.score(scheme, self.run_id, computed_at)
                scored.evaluated.count()   # every scheme evaluated before the scan is released
                self.results[label] = SchemeScores(label, scheme, scored.scores, scored.lines)
            scan.release(scan.findings)
        except BaseException:      # released, and a total beyond its type said (MonthScan)
            self.scan.__exit__(*sys.exc_info())
            raise
        return self.results

    def __exit__(self, *exc) -> None:
        self.scan.__exit__(*exc)


# ---------------------------------------------------------------------------------------------
# what the warehouse holds
def population_months(settings: Settings) -> list[str]:
    """The months with a population snapshot in silver (the months that were delivered)."""
    location = catalog.SILVER_POPULATION.at(settings)
    return sorted(p["snapshot_month"] for p in tables.partitions(location))


def require_month(settings: Settings, month: str) -> None:
    """PolicyDataMissing unless silver holds the month (its population snapshot)."""
    if not catalog.holds_warehouse(settings.warehouse):     # a mistyped path, not a month
        raise PolicyDataMissing(f"no warehouse at {settings.warehouse} (no "
                                f"{', '.join(catalog.WAREHOUSE_LAYERS)} folder; check "
                                "CITYCREDIT_WAREHOUSE)")
    if month not in population_months(settings):
        known = population_months(settings)
        span = f"{known[0]} … {known[-1]}" if known else "none"
        today = dt.date.today()
        then = (f"{month} has not begun yet (today is {today.isoformat()})"
                if month > month_of(today) else f"run `citycredit run --month {month}` first")
        raise PolicyDataMissing(f"silver has no population snapshot for {month} (months held: "
                                f"{span}): {then}")


def gold_scores(spark: SparkSession, settings: Settings, scheme: str, month: str
                ) -> DataFrame | None:
    """gold/scores of (scheme, month) as the monthly run published them (the published run's
    rows: publish.published), or None when the month is not published for the scheme."""
    from ..publish.published import published_where

    location = catalog.SCORES.at(settings)
    where = published_where(settings, scheme, month) if tables.exists(location) else None
    if where is None or not any(all(p.get(k) == v for k, v in where.items())
                                for p in tables.partitions(location)):
        return None
    return tables.read(spark, location, where=where)


def silver(spark: SparkSession, settings: Settings, table: catalog.Table,
           where: dict | None = None) -> DataFrame:
    return tables.read(spark, table.at(settings), where=where)


# ---------------------------------------------------------------------------------------------
# sandbox writes
def write_simulation(df: DataFrame, settings: Settings, scheme: str, draft: str,
                     month: str) -> int:
    """Replace the (scheme, draft, month) partition of sandbox/simulated_scores; rows written.
    Persons on the suppression list are left out: what was read before an erasure does not
    bring an erased subject_key back into the sandbox (the caller holds the warehouse lock, so
    no erasure adds to the list between this check and the commit)."""
    from ..suppression import suppressed_keys

    erased = sorted(suppressed_keys(settings))
    if erased:
        df = df.where(~F.col("subject_key").isin(erased))
    location = catalog.SIMULATED_SCORES.at(settings)
    partition = {"scheme": scheme, "draft": draft, "score_month": month}
    tables.write(df, location, mode="overwrite", replace=partition)
    return tables.read(df.sparkSession, location, where=partition).count()


def read_simulation(spark: SparkSession, settings: Settings, scheme: str, draft: str,
                    month: str) -> DataFrame:
    return tables.read(spark, catalog.SIMULATED_SCORES.at(settings),
                       where={"scheme": scheme, "draft": draft, "score_month": month})


def record_evaluation(settings: Settings, scheme: str, month: str, variant: str,
                      rules_version: str, metrics_json: str, run_id: str) -> None:
    """Append one evaluation (its JSON) to sandbox/evaluations."""
    import pyarrow as pa

    row = {"scheme": [scheme], "score_month": [month], "variant": [variant],
           "rules_version": [rules_version], "metrics": [metrics_json], "run_id": [run_id],
           "created_at": [dt.datetime.now(dt.timezone.utc)]}
    tables.write_arrow(pa.table(row), catalog.EVALUATIONS.at(settings), mode="append")


def subject_frame(scores: DataFrame) -> DataFrame:
    """The columns the measures need from a scores frame: subject_key, score, grade."""
    return scores.select("subject_key", F.col("score").cast("int").alias("score"), "grade")
