"""The table seam on real Spark and real Delta tables (delta-rs log), read back by other engines."""
from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable
from pyspark.sql import types as T

from citycredit.io import tables

SCHEMA = T.StructType([
    T.StructField("subject_key", T.StringType()),
    T.StructField("score", T.IntegerType()),
    T.StructField("points", T.DecimalType(18, 4)),
    T.StructField("occurred_on", T.DateType()),
    T.StructField("computed_at", T.TimestampType()),
    T.StructField("scheme", T.StringType()),
    T.StructField("score_month", T.StringType()),
])


def rows(scheme, month, n, score=1000):
    return [(f"k{i:04d}", score + i, Decimal("1.2500") * i, dt.date(2026, 1, 1 + i % 28),
             dt.datetime(2026, 2, 1, 8, 30, tzinfo=dt.timezone.utc), scheme, month) for i in range(n)]


def write(spark, path, data, **kw):
    return tables.write(spark.createDataFrame(data, SCHEMA), path,
                        partition_by=["scheme", "score_month"], **kw)


def counts(spark, path, **kw):
    df = tables.read(spark, path, **kw)
    return {(r.scheme, r.score_month): r["count"] for r in df.groupBy("scheme", "score_month").count().collect()}


def parquet_files(path):
    return sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path)
                  for f in fs if f.endswith(".parquet"))


def test_append_creates_table_and_adds_rows(spark, tmp_path):
    path = str(tmp_path / "gold" / "scores")
    assert write(spark, path, rows("haibei", "2026-01", 5)) == 0
    assert write(spark, path, rows("haibei", "2026-02", 3)) == 1
    assert counts(spark, path) == {("haibei", "2026-01"): 5, ("haibei", "2026-02"): 3}
    back = tables.read(spark, path, where={"score_month": "2026-01"}).orderBy("subject_key").collect()
    assert back[2].points == Decimal("2.5000") and back[2].occurred_on == dt.date(2026, 1, 3)
    assert back[2].score == 1002
    assert back[2].computed_at.replace(tzinfo=dt.timezone.utc) == dt.datetime(2026, 2, 1, 8, 30, tzinfo=dt.timezone.utc)
    # files sit in partition folders, none left in staging
    assert all(f.startswith("scheme=haibei/score_month=2026-0") for f in parquet_files(path))


def test_partition_replace_is_atomic_and_leaves_other_partitions(spark, tmp_path):
    path = str(tmp_path / "scores")
    write(spark, path, rows("haibei", "2026-01", 5) + rows("haibei", "2026-02", 4)
          + rows("huzhou", "2026-01", 2))
    v = write(spark, path, rows("haibei", "2026-01", 2, score=500), mode="overwrite",
              replace={"scheme": "haibei", "score_month": "2026-01"})
    assert v == 1
    assert counts(spark, path) == {("haibei", "2026-01"): 2, ("haibei", "2026-02"): 4,
                                   ("huzhou", "2026-01"): 2}
    replaced = tables.read(spark, path, where={"scheme": "haibei", "score_month": "2026-01"})
    assert sorted(r.score for r in replaced.collect()) == [500, 501]
    # the replace was one commit: the log holds exactly one more version
    assert DeltaTable(path).version() == 1


def test_time_travel_reads_an_earlier_version(spark, tmp_path):
    path = str(tmp_path / "scores")
    write(spark, path, rows("haibei", "2026-01", 5))
    write(spark, path, rows("haibei", "2026-01", 1, score=1), mode="overwrite",
          replace={"scheme": "haibei", "score_month": "2026-01"})
    assert counts(spark, path) == {("haibei", "2026-01"): 1}
    assert counts(spark, path, as_of_version=0) == {("haibei", "2026-01"): 5}
    assert tables.read_arrow(path, as_of_version=0).num_rows == 5


def test_empty_table_keeps_its_schema(spark, tmp_path):
    path = str(tmp_path / "empty")
    write(spark, path, [])
    df = tables.read(spark, path)
    assert df.count() == 0
    assert [(f.name, f.dataType) for f in df.schema.fields] == \
        [(f.name, f.dataType) for f in SCHEMA.fields]
    assert DeltaTable(path).metadata().partition_columns == ["scheme", "score_month"]


def test_failure_after_parquet_write_leaves_table_as_it_was(spark, tmp_path):
    path = str(tmp_path / "scores")
    write(spark, path, rows("haibei", "2026-01", 5))
    before = (DeltaTable(path).version(), parquet_files(path))
    # 1. the Parquet files are written, then the replace is refused: rows outside the partition
    with pytest.raises(tables.TableError, match="outside the partition"):
        write(spark, path, rows("haibei", "2026-01", 2) + rows("haibei", "2026-03", 1),
              mode="overwrite", replace={"scheme": "haibei", "score_month": "2026-01"})
    # 2. the Parquet files are written and moved, then delta-rs refuses the commit (schema clash)
    clash = spark.createDataFrame([("x", "not-a-number", "haibei", "2026-01")],
                                  "subject_key string, score string, scheme string, score_month string")
    with pytest.raises(tables.TableError, match="schema differs"):
        tables.write(clash, path, partition_by=["scheme", "score_month"])
    assert (DeltaTable(path).version(), parquet_files(path)) == before
    assert counts(spark, path) == {("haibei", "2026-01"): 5}
    assert not [d for d in os.listdir(path) if d.startswith(tables.STAGING_PREFIX)]


def test_other_engines_read_what_the_seam_wrote(spark, tmp_path):
    path = str(tmp_path / "scores")
    write(spark, path, rows("haibei", "2026-01", 5) + rows("huzhou", "2026-01", 3))
    write(spark, path, rows("haibei", "2026-01", 2), mode="overwrite",
          replace={"scheme": "haibei", "score_month": "2026-01"})
    # Polars (delta-rs underneath)
    frame = pl.read_delta(path)
    assert frame.height == 5 and set(frame["scheme"]) == {"haibei", "huzhou"}
    # DuckDB with its own Delta reader (delta kernel), as ARCHITECTURE describes
    import duckdb_ext  # a namespace package shipping the extension binary (no download)
    from pathlib import Path
    ext = next(Path(duckdb_ext.__path__[0]).glob("extensions/v1.4.4/*/delta.duckdb_extension"))
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{ext}'")
    got = con.execute(f"SELECT scheme, count(*), sum(points) FROM delta_scan('{path}') "
                      "GROUP BY scheme ORDER BY scheme").fetchall()
    assert got == [("haibei", 2, Decimal("1.2500")), ("huzhou", 3, Decimal("3.7500"))]


def test_arrow_writes_replace_a_partition_too(tmp_path):
    import pyarrow as pa
    path = str(tmp_path / "report")
    t = lambda month, n: pa.table({"score_month": [month] * n, "n": list(range(n))})  # noqa: E731
    tables.write_arrow(t("2026-01", 3), path, partition_by=["score_month"])
    tables.write_arrow(t("2026-02", 2), path, partition_by=["score_month"])
    tables.write_arrow(t("2026-01", 1), path, mode="overwrite", partition_by=["score_month"],
                       replace={"score_month": "2026-01"})
    assert tables.read_arrow(path, where={"score_month": "2026-01"}).num_rows == 1
    assert tables.read_arrow(path).num_rows == 3


def test_a_replace_of_several_partitions_is_one_commit_on_both_engines(spark, tmp_path):
    """{'score_month': M, 'scheme': [a, b]}: those partitions replaced in one commit, the others
    kept; rows outside them refused — by delta-spark (replaceWhere … IN) and by the bridge."""
    replace = {"score_month": "2026-01", "scheme": ["haibei", "huzhou"]}
    for engine in ("session", "bridge"):
        path = str(tmp_path / engine)
        write(spark, path, rows("haibei", "2026-01", 5) + rows("huzhou", "2026-01", 2)
              + rows("bailu", "2026-01", 3) + rows("haibei", "2026-02", 4))

        def replace_with(data):
            df = spark.createDataFrame(data, SCHEMA)
            if engine == "bridge":
                return tables.bridge.write_parquet(df, path, "overwrite",
                                                   ["scheme", "score_month"], replace)
            return tables.write(df, path, mode="overwrite",
                                partition_by=["scheme", "score_month"], replace=replace)
        assert replace_with(rows("haibei", "2026-01", 2, score=500)
                            + rows("huzhou", "2026-01", 1, score=500)) == 1
        assert counts(spark, path) == {("haibei", "2026-01"): 2, ("huzhou", "2026-01"): 1,
                                       ("bailu", "2026-01"): 3, ("haibei", "2026-02"): 4}, engine
        both = tables.read(spark, path, where={"scheme": ["haibei", "huzhou"],
                                               "score_month": "2026-01"})
        assert sorted(r.score for r in both.collect()) == [500, 500, 501], engine
        with pytest.raises(tables.TableError, match="outside the partition"):
            replace_with(rows("bailu", "2026-01", 1))
        assert DeltaTable(path).version() == 1 and counts(spark, path)[("bailu", "2026-01")] == 3


def test_a_table_with_file_rows_is_written_in_files_of_key_ranges(spark, tmp_path):
    """A catalogue table with `file_rows` (gold/published_scores): Spark's write sorts by the
    key and cuts files at that many rows, so that each file holds a key range an erasure can
    find by its statistics and rewrite alone."""
    import dataclasses
    import random

    import pyarrow.parquet as pq

    from citycredit import catalog

    table = dataclasses.replace(catalog.PUBLISHED_SCORES, file_rows=3)
    location = catalog.Location(table, str(tmp_path / "published"))
    keys = [f"k{i:03d}" for i in range(11)]
    random.Random(5).shuffle(keys)
    data = [(k, 700, "A", "良好", dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc), "r1", "haibei",
             "2026-01") for k in keys] + \
           [(k, 650, "B", "一般", dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc), "r1", "bailu",
             "2026-01") for k in keys[:4]]
    df = spark.createDataFrame(data, "subject_key string, score int, grade string, "
                                     "grade_label string, published_at timestamp, run_id string, "
                                     "scheme string, score_month string")
    tables.write(df.select(*table.columns), location, mode="overwrite",
                 replace={"score_month": "2026-01", "scheme": ["haibei", "bailu"]})
    assert counts(spark, location.path) == {("haibei", "2026-01"): 11, ("bailu", "2026-01"): 4}
    by_partition: dict[str, list[tuple[str, str]]] = {}
    for name in parquet_files(location.path):
        column = pq.read_table(os.path.join(location.path, name)).column("subject_key")
        assert 0 < len(column) <= 3, name
        values = column.to_pylist()
        assert values == sorted(values), name
        by_partition.setdefault(os.path.dirname(name), []).append((values[0], values[-1]))
    for partition, ranges in by_partition.items():
        ranges.sort()
        assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:])), (partition, ranges)
    assert len(by_partition[os.path.join("scheme=haibei", "score_month=2026-01")]) >= 4
    assert spark.conf.get("spark.sql.files.maxRecordsPerFile", None) in (None, "0")


def test_a_table_with_stats_columns_keeps_statistics_of_those_only(spark, tmp_path,
                                                                   monkeypatch):
    """gold's big tables keep per-file statistics of subject_key only (catalogue
    stats_columns → delta.dataSkippingStatsColumns), on a table the seam creates and on one
    created before the catalogue said so; the protocol stays the one both engines write, and
    a delete by subject_key (erasure) still finds the person's rows."""
    import pyarrow as pa

    from citycredit import catalog

    def add_actions(path):
        return pa.table(DeltaTable(path).get_add_actions(flatten=True)).to_pylist()

    def stats_of(path):
        return sorted({name for a in add_actions(path) for name, value in a.items()
                       if name.startswith("min.") and value is not None})

    data = rows("haibei", "2026-01", 6)
    table = catalog.Table("gold", "stats", pa.schema([(f.name, pa.string()) for f in SCHEMA]),
                          partitions=("scheme", "score_month"), key=("subject_key",),
                          stats_columns=("subject_key",))
    new = catalog.Location(table, str(tmp_path / "new"))
    tables.write(spark.createDataFrame(data, SCHEMA), new, mode="overwrite")
    assert stats_of(new.path) == ["min.subject_key"]

    old = tmp_path / "old"
    write(spark, str(old), data, mode="overwrite")          # a plain path: Delta's defaults
    assert "min.score" in stats_of(str(old))
    tables.write(spark.createDataFrame(rows("haibei", "2026-02", 4), SCHEMA),
                 catalog.Location(table, str(old)), mode="overwrite",
                 replace={"scheme": "haibei", "score_month": "2026-02"})
    configuration = DeltaTable(str(old)).metadata().configuration
    assert configuration["delta.dataSkippingStatsColumns"] == "subject_key"
    newest = [a for a in add_actions(str(old)) if a["partition.score_month"] == "2026-02"]
    assert newest and all(a.get("min.score") is None for a in newest)
    assert all(a["min.subject_key"] for a in newest)
    # a session without delta-spark (spark.delta: off) writes through the bridge: the table
    # it creates gets the property too, so delta-spark's later writes keep to it
    monkeypatch.setattr(tables, "has_delta_spark", lambda session: False)
    bridged = catalog.Location(table, str(tmp_path / "bridged"))
    version = tables.write(spark.createDataFrame(data, SCHEMA), bridged, mode="overwrite")
    assert version == DeltaTable(bridged.path).version()
    assert DeltaTable(bridged.path).metadata().configuration[
        "delta.dataSkippingStatsColumns"] == "subject_key"
    monkeypatch.undo()
    for path in (new.path, str(old), bridged.path):
        tables.check_protocol(path)
        protocol = DeltaTable(path).protocol()
        assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    tables.delete_where(new.path, "subject_key = 'k0003'")
    assert sorted(r.subject_key for r in tables.read(spark, new.path).collect()) == \
        ["k0000", "k0001", "k0002", "k0004", "k0005"]
