"""A warehouse written before gold was kept per run (issue 24, item 4), with points as
decimal(28,8) (before issue 20's ninth sitting), is brought into the per-run layout and the
catalogue's decimal(18,8) once, rows and values unchanged, and its publications read as before."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from deltalake import write_deltalake

from citycredit import analysis, catalog
from citycredit.io import tables
from citycredit.publish.published import keep_gold_layout, published_runs, published_where

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


OLD_POINTS = pa.decimal128(28, 8)


def old_gold(settings, partition_by=("scheme", "score_month")) -> None:
    """gold/scores partitioned by `partition_by`, points decimal(28,8); gold/published_scores
    without run_id."""
    old_schema = pa.schema([
        pa.field(f.name, OLD_POINTS if pa.types.is_decimal(f.type) else
                 pa.map_(pa.string(), OLD_POINTS) if pa.types.is_map(f.type) else f.type)
        for f in catalog.SCORES.schema])
    scores = pa.Table.from_pylist([
        {"subject_key": k, "scheme": "haibei", "score_month": "2026-10", "score": v,
         "grade": "A", "grade_label": "良好", "base_score": Decimal("1000"),
         "points_positive": Decimal("12.5"), "points_negative": Decimal(v - 1000) - Decimal("12.5"),
         "dimension_points": [("守信", Decimal("0.00000001"))], "finding_count": 0,
         "rules_version": "1", "run_id": "old", "computed_at": NOW}
        for k, v in (("a", 1000), ("b", 990))],
        schema=old_schema)
    write_deltalake(catalog.SCORES.at(settings).path, scores, partition_by=list(partition_by))
    published = scores.select(["subject_key", "scheme", "score_month", "score", "grade",
                               "grade_label", "computed_at"]).rename_columns(
        ["subject_key", "scheme", "score_month", "score", "grade", "grade_label", "published_at"])
    write_deltalake(catalog.PUBLISHED_SCORES.at(settings).path, published,
                    partition_by=["scheme", "score_month"])


def test_an_old_gold_is_laid_out_per_run_with_the_same_rows(settings, spark):
    old_gold(settings)
    keep_gold_layout(spark, settings)
    location = catalog.SCORES.at(settings)
    # two commits: the catalogue's statistics columns set on the old table, then the relayout
    laid_out = tables.version(location)
    assert laid_out == 2
    assert tables.partition_columns(location) == ["scheme", "score_month", "run_id"]
    assert tables.partitions(location) == [{"scheme": "haibei", "score_month": "2026-10",
                                            "run_id": "old"}]
    assert "run_id" in catalog.PUBLISHED_SCORES.columns
    published = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings))
    assert published.column("run_id").to_pylist() == [None, None]
    # a publication from before runs were recorded: all of its partition's gold rows are its
    assert published_runs(settings) == {("haibei", "2026-10"): None}
    assert published_where(settings, "haibei", "2026-10") == {"scheme": "haibei",
                                                              "score_month": "2026-10"}
    frame = analysis.read_table("gold.scores", settings=settings)
    assert dict(zip(frame.subject_key, frame.score)) == {"a": 1000, "b": 990}
    # points as the catalogue types them now, every value exactly as it was
    schema = tables.arrow_schema(location)
    assert schema.field("points_negative").type == pa.decimal128(18, 8)
    assert schema.field("dimension_points").type.item_type == pa.decimal128(18, 8)
    rows = {r["subject_key"]: r for r in tables.read_arrow(location).to_pylist()}
    assert rows["b"]["points_negative"] == Decimal("-22.5")
    assert rows["a"]["points_positive"] == Decimal("12.5")
    assert dict(rows["b"]["dimension_points"]) == {"守信": Decimal("0.00000001")}
    keep_gold_layout(spark, settings)                        # once: nothing more to do
    assert tables.version(location) == laid_out


def test_a_per_run_gold_with_points_as_decimal_28_8_gets_the_catalogues_types(settings, spark):
    old_gold(settings, partition_by=catalog.SCORES.partitions)
    location = catalog.SCORES.at(settings)
    before = tables.version(location)
    keep_gold_layout(spark, settings)
    assert tables.version(location) > before
    schema = tables.arrow_schema(location)
    assert {f.name: f.type for f in schema if pa.types.is_decimal(f.type)} == {
        "base_score": pa.decimal128(18, 8), "points_positive": pa.decimal128(18, 8),
        "points_negative": pa.decimal128(18, 8)}
    rows = {r["subject_key"]: (r["score"], r["points_negative"], r["run_id"])
            for r in tables.read_arrow(location).to_pylist()}
    assert rows == {"a": (1000, Decimal("-12.5"), "old"), "b": (990, Decimal("-22.5"), "old")}
