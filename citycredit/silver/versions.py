"""Bitemporal versions (SPEC §2, §5): every delivered version of a record is kept in silver.

`known_from` is the delivery month of a version; `known_until` the delivery month of the next
version of the same key (exclusive), null while it is the latest. The state as known at month M is
one filter: `known_from <= M AND (known_until IS NULL OR known_until > M)`.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window


def as_known_at(versions: DataFrame, month: str) -> DataFrame:
    """The versions of a versioned silver table that were current at the end of `month`.
    Columns in = columns out (known_from, known_until: 'YYYY-MM' strings)."""
    return versions.where((F.col("known_from") <= month)
                          & (F.col("known_until").isNull() | (F.col("known_until") > month)))


def merge_versions(old: DataFrame | None, new: DataFrame, key: list[str], month: str) -> DataFrame:
    """The month's delivery (`new`: the table's columns but known_until, known_from = month)
    replaces any earlier landing of the same month by the same sources, and every version's
    known_until becomes the delivery month of the next version of its key."""
    landed_sources = [r.source_id for r in new.select("source_id").distinct().collect()]
    if old is not None:
        old = old.where(~((F.col("known_from") == month) & F.col("source_id").isin(landed_sources)))
        merged = old.drop("known_until").unionByName(new)
    else:
        merged = new
    w = Window.partitionBy(*key).orderBy("known_from")
    return merged.withColumn("known_until", F.lead("known_from").over(w))


def findings_changes(versions: DataFrame, month: str) -> dict[str, dict[str, int]]:
    """Per source, of the month's finding versions: {versions, corrections (a key seen in an
    earlier month), revocations (status revoked)}."""
    this = versions.where(F.col("known_from") == month)
    earlier = versions.where(F.col("known_from") < month).select("source_id", "record_id").distinct()
    corrected = this.join(earlier, ["source_id", "record_id"], "left_semi")
    result: dict = {}
    for row in this.groupBy("source_id").agg(
            F.count(F.lit(1)).alias("versions"),
            F.sum(F.when(F.col("status") == "revoked", 1).otherwise(0)).alias("revocations")).collect():
        result[row.source_id] = {"versions": row.versions, "revocations": row.revocations,
                                 "corrections": 0}
    for row in corrected.groupBy("source_id").count().collect():
        result[row.source_id]["corrections"] = row["count"]
    return result
