"""The silver step of the month (thin): the month's staging rows of every landed source into
silver — findings, appeals and consents versioned (silver.versions), the population snapshot, opt-outs.
One writer, one commit per table."""
from __future__ import annotations

import time
from typing import TypedDict

from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from ..io.spark import get_spark
from .versions import findings_changes, merge_versions

#: staging columns renamed on the way into silver: an appeal's delivering source is dropped and
#: the appealed finding's source becomes source_id (the key appeals are matched on)
_RENAMES = {"findings": {}, "appeals": {"source_id": "delivered_by", "appeal_source_id": "source_id"},
            "consents": {}}
_KEYS = {"findings": ["source_id", "record_id"], "appeals": ["appeal_id"],
         "consents": ["consent_id"]}


class SilverResult(TypedDict):
    month: str
    tables: dict[str, int]                 # silver table → rows of the month
    sources: dict[str, dict[str, int]]     # source → versions, corrections, revocations
    seconds: float


def build_silver(month: str, run_id: str, landed: list[dict],
                 settings: Settings | None = None) -> SilverResult:
    """Staging rows of the month's landed sources (`landed`: ingest.task.Landed results) →
    silver."""
    settings = settings or load_settings()
    started = time.perf_counter()
    spark = get_spark(settings)
    kinds = {d["kind"] for d in landed if d.get("status") in ("landed", "kept")}
    out: SilverResult = {"month": month, "tables": {}, "sources": {}, "seconds": 0.0}
    for kind, table in catalog.VERSIONED.items():
        if kind not in kinds:
            continue
        new = tables.read(spark, catalog.staging(kind).at(settings), where={"month": month})
        for before, after in _RENAMES[kind].items():
            new = new.withColumnRenamed(before, after)
        new = new.drop("month", "delivered_by").withColumn("known_from", F.lit(month))
        location = table.at(settings)
        old = tables.read(spark, location) if tables.exists(location) else None
        merged = merge_versions(old, new, _KEYS[kind], month)
        tables.write(merged.select(*table.columns), location, mode="overwrite")
        if kind == "findings":
            out["sources"] = findings_changes(tables.read(spark, location), month)
        out["tables"][kind] = tables.read(spark, location).where(F.col("known_from") == month).count()
    if "population" in kinds:
        snapshot = tables.read_arrow(catalog.staging("population").at(settings),
                                     where={"month": month})
        snapshot = snapshot.rename_columns(
            [("snapshot_month" if c == "month" else c) for c in snapshot.column_names])
        tables.write_arrow(snapshot.select(catalog.SILVER_POPULATION.columns),
                           catalog.SILVER_POPULATION.at(settings), mode="overwrite",
                           replace={"snapshot_month": month})
        out["tables"]["population"] = snapshot.num_rows
    if "optouts" in kinds:
        optouts = tables.read_arrow(catalog.staging("optouts").at(settings), where={"month": month})
        optouts = optouts.select(["subject_key", "requested_on", "month"]).rename_columns(
            ["subject_key", "requested_on", "known_from"])
        tables.write_arrow(optouts, catalog.SILVER_OPTOUTS.at(settings), mode="overwrite",
                           replace={"known_from": month})
        out["tables"]["optouts"] = optouts.num_rows
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
