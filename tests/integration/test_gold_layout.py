"""A warehouse written before gold was kept per run (issue 24, item 4) is brought into the
per-run layout once, rows unchanged, and its publications read as before."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from deltalake import write_deltalake

from citycredit import analysis, catalog
from citycredit.io import tables
from citycredit.publish.published import keep_gold_layout, published_runs, published_where

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def old_gold(settings) -> None:
    """gold/scores partitioned by (scheme, score_month), gold/published_scores without run_id."""
    scores = pa.Table.from_pylist([
        {"subject_key": k, "scheme": "haibei", "score_month": "2026-10", "score": v,
         "grade": "A", "grade_label": "良好", "base_score": Decimal("1000"),
         "points_positive": Decimal("0"), "points_negative": Decimal("0"),
         "dimension_points": [], "finding_count": 0, "rules_version": "1", "run_id": "old",
         "computed_at": NOW} for k, v in (("a", 1000), ("b", 990))],
        schema=catalog.SCORES.schema)
    write_deltalake(catalog.SCORES.at(settings).path, scores,
                    partition_by=["scheme", "score_month"])
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
    keep_gold_layout(spark, settings)                        # once: nothing more to do
    assert tables.version(location) == laid_out
