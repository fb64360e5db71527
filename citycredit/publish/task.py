"""The publish and report steps of the month (thin)."""
from __future__ import annotations

import datetime as dt
import time
from functools import reduce
from typing import TypedDict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from ..crash import crash_point
from ..io.spark import get_spark
from .checks import publication_checks, run_rows
from .published import drop_other_runs, keep_gold_layout
from .report import write_report


class PublishRefused(RuntimeError):
    """A publication check failed; the previous publication stays. `.problems` lists them."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


class Published(TypedDict):
    month: str
    published: dict[str, int]     # scheme → rows published
    published_at: str              # ISO timestamp (UTC)
    seconds: float


def publish(month: str, run_id: str, scored: list[dict], accept_drift: bool = False,
            settings: Settings | None = None) -> Published:
    """Checks first, on exactly the scoring run's rows (each Scored names its run_id; default
    `run_id`); only when all pass are those rows promoted to gold/published_scores: every
    scheme of the month in ONE commit (a replace of score_month = month over the schemes
    scored), carrying the run_id. Then, in a later commit, the month's rows of other runs of
    those schemes leave gold/scores and gold/score_lines (a crash before leaves rows no reader
    takes: citycredit.publish.published). A refusal raises PublishRefused and leaves the
    previous publication as it was (pipeline.run_step records it in run_report)."""
    settings = settings or load_settings()
    started = time.perf_counter()
    spark = get_spark(settings)
    scored = [{**result, "run_id": result.get("run_id") or run_id} for result in scored]
    keep_gold_layout(spark, settings)
    problems = publication_checks(spark, settings, scored, month, accept_drift)
    if problems:
        raise PublishRefused(f"month {month} not published (the previous publication stays): "
                             + "; ".join(problems), problems)
    published_at = dt.datetime.now(dt.timezone.utc)
    stamp = F.lit(published_at).cast("timestamp").alias("published_at")
    crash_point("publish.checked")
    parts = [tables.read(spark, catalog.SCORES.at(settings), where=run_rows(result, month))
             for result in scored]
    rows = {result["scheme"]: result["subjects"] for result in scored}
    if parts:
        scores = reduce(DataFrame.unionByName, parts)
        out = scores.select(*[stamp if c == "published_at" else F.col(c)
                              for c in catalog.PUBLISHED_SCORES.columns])
        tables.write(out, catalog.PUBLISHED_SCORES.at(settings), mode="overwrite",
                     replace={"score_month": month, "scheme": sorted(rows)})
        crash_point("publish.promoted")
        drop_other_runs(settings, month, {r["scheme"]: r["run_id"] for r in scored})
    return {"month": month, "published": rows, "published_at": published_at.isoformat(),
            "seconds": round(time.perf_counter() - started, 2)}


def report(month: str, run_id: str, deliveries: dict | None, landed: list[dict] | None,
           silver: dict | None, scored: list[dict] | None, published: dict | None,
           stages: dict | None = None, settings: Settings | None = None,
           erased: dict | None = None) -> str:
    """The run_report rows and the summary to print; runs after a refused publication too."""
    settings = settings or load_settings()
    return write_report(month, run_id, landed, silver, scored, published, stages, settings,
                        missing_optional=(deliveries or {}).get("missing_optional"),
                        erased=erased)
