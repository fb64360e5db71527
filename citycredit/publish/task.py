"""The publish and report steps of the month (thin)."""
from __future__ import annotations

import datetime as dt
import time
from typing import TypedDict

from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from ..io.spark import get_spark
from .checks import publication_checks
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
    """Checks first; only when all pass does gold/published_scores get the month (one atomic
    partition replace per scheme). A refusal raises PublishRefused and leaves the previous
    publication as it was (pipeline.run_step records it in run_report)."""
    settings = settings or load_settings()
    started = time.perf_counter()
    spark = get_spark(settings)
    problems = []
    for result in scored:
        problems += publication_checks(spark, settings, result, month, accept_drift)
    if problems:
        raise PublishRefused(f"month {month} not published (the previous publication stays): "
                             + "; ".join(problems), problems)
    published_at = dt.datetime.now(dt.timezone.utc)
    rows = {}
    for result in scored:
        where = {"scheme": result["scheme"], "score_month": month}
        scores = tables.read(spark, catalog.SCORES.at(settings), where=where)
        stamp = F.lit(published_at).cast("timestamp").alias("published_at")
        out = scores.select(*[stamp if c == "published_at" else F.col(c)
                              for c in catalog.PUBLISHED_SCORES.columns])
        tables.write(out, catalog.PUBLISHED_SCORES.at(settings), mode="overwrite", replace=where)
        rows[result["scheme"]] = result["subjects"]
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
