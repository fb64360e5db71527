"""The Parquet + delta-rs commit bridge: how Spark wrote and read Delta tables before delta-spark,
kept for sessions without its jars (conf spark.delta: off; docs/cluster.md has the measurement).

Spark writes plain Parquet into a staging folder inside the table (`_staging-…`, ignored by every
Delta and Spark reader), the files are moved into their `col=value/` partition folders under
unique names, and delta-rs commits them in one transaction. Until that commit nothing is visible;
if anything fails before it, the moved files are removed again and the table is exactly as it
was. A partition replace is one commit that removes the partition's old files and adds the new
ones, so readers see either all old or all new. Reads: delta-rs lists the snapshot's files and
Spark reads them as Parquet. Other code goes through citycredit.io.tables, never here.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Mapping
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .base import TableError, _filters, _matches, _path, _values, exists, version

STAGING_PREFIX = "_staging-"


# ---------------------------------------------------------------------------------------------
# Spark reads without delta-spark
def _spark_schema(spark: SparkSession, schema: pa.Schema) -> T.StructType:
    empty = schema.empty_table()
    # Spark converts Arrow types itself; an empty Arrow table carries the exact schema across.
    return spark.createDataFrame(empty).schema if len(schema) else T.StructType([])


def read_parquet(spark: SparkSession, path: str, where: Mapping[str, str] | None = None,
                 as_of_version: int | None = None) -> DataFrame:
    """The table's snapshot read as Parquet files delta-rs lists (Spark without delta-spark)."""
    table = DeltaTable(path, version=as_of_version)
    schema = _spark_schema(spark, pa.schema(table.schema().to_arrow()))
    files = table.file_uris(file_pruning_predicate=_filters(where))
    if not files:
        return spark.createDataFrame([], schema)
    df = spark.read.schema(schema).option("basePath", _local(path)).parquet(*map(_local, files))
    return df.select(*schema.fieldNames())


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


# ---------------------------------------------------------------------------------------------
# Spark writes without delta-spark
def write_parquet(df: DataFrame, path: str, mode: str, partition_by: list[str],
                  replace: Mapping[str, str] | None) -> int:
    """`df` as Parquet files committed by delta-rs in one commit (citycredit.io.tables.write's
    contract); returns the new version."""
    os.makedirs(path, exist_ok=True)
    staging = os.path.join(path, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    moved: list[str] = []
    try:
        if replace and partition_by and set(replace) == set(partition_by) \
                and not any(_values(v) is not None for v in replace.values()):
            _write_one_partition(df, staging, path, partition_by, replace)
        else:
            df.write.mode("error").partitionBy(*partition_by).parquet(staging)
        actions = []
        for rel_dir, name in _staged_files(staging):
            values = _partition_values(rel_dir)
            if replace and not _matches(replace, values):
                raise TableError(f"{path}: rows outside the partition being replaced "
                                 f"({dict(replace)}): found {values}")
            target_dir = os.path.join(path, rel_dir)
            os.makedirs(target_dir, exist_ok=True)
            target = os.path.join(target_dir, f"{uuid.uuid4().hex}-{name}")
            os.replace(os.path.join(staging, rel_dir, name), target)
            moved.append(target)
            actions.append(_add_action(path, target, values))
        schema = _arrow_schema_of(df)
        _commit(path, schema, actions, mode, partition_by, replace)
    except BaseException:
        for target in moved:   # uncommitted files are invisible, but do not leave them behind
            try:
                os.remove(target)
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version(path)


def _write_one_partition(df: DataFrame, staging: str, path: str, partition_by: list[str],
                         replace: Mapping[str, str]) -> None:
    """Write the rows of one partition straight into its folder under `staging`, without the
    partition columns. A dynamic-partition write would sort every row by the partition columns
    first (Spark's planned write), and that sorter shares the task's memory with the job's own
    aggregations: at full scale (15 M findings, 4 GiB heap) the scores write then failed with
    AGGREGATE_OUT_OF_MEMORY. Rows outside `replace` are counted on the way and refused."""
    rel_dir = os.path.join(*[f"{quote(c, safe='')}={quote(str(replace[c]), safe='')}"
                             for c in partition_by])
    inside = F.lit(True)
    for column in partition_by:
        inside = inside & (F.col(column) == F.lit(str(replace[column])))
    seen = Observation(f"outside-{uuid.uuid4().hex[:8]}")
    checked = df.observe(seen, F.sum(F.when(inside, 0).otherwise(1)).alias("outside"))
    checked.drop(*partition_by).write.mode("error").parquet(os.path.join(staging, rel_dir))
    outside = seen.get.get("outside") or 0
    if outside:
        raise TableError(f"{path}: {outside} rows outside the partition being replaced "
                         f"({dict(replace)})")


def _staged_files(staging: str) -> Iterable[tuple[str, str]]:
    for root, _dirs, files in os.walk(staging):
        for name in sorted(files):
            if name.endswith(".parquet"):
                rel_dir = os.path.relpath(root, staging)
                yield ("" if rel_dir == "." else rel_dir), name


def _partition_values(rel_dir: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for part in filter(None, rel_dir.split(os.sep)):
        key, _, value = part.partition("=")
        value = unquote(value)
        values[unquote(key)] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
    return values


def _arrow_schema_of(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema
    return to_arrow_schema(df.schema, timezone="UTC")   # Spark writes TIMESTAMP_MICROS in UTC


def _stat_value(value):
    if isinstance(value, (datetime,)):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() and abs(value) < 2**53 \
            else str(value)
    if isinstance(value, bytes):
        return None
    return value


def _file_stats(file_path: str, meta: pq.FileMetaData | None = None) -> str:
    """numRecords + min/max/nullCount per top-level column, so readers can skip files."""
    meta = meta or pq.read_metadata(file_path)
    mins: dict = {}
    maxs: dict = {}
    nulls: dict = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for ci in range(group.num_columns):
            column = group.column(ci)
            name = column.path_in_schema
            if "." in name:        # nested (map/struct): no stats
                continue
            stats = column.statistics
            if stats is None:
                continue
            nulls[name] = nulls.get(name, 0) + (stats.null_count or 0)
            if not stats.has_min_max:
                continue
            lo, hi = _stat_value(stats.min), _stat_value(stats.max)
            if lo is None or hi is None or isinstance(lo, float) and lo != lo:
                continue
            try:
                mins[name] = lo if name not in mins else min(mins[name], lo)
                maxs[name] = hi if name not in maxs else max(maxs[name], hi)
            except TypeError:
                pass
    return json.dumps({"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs,
                       "nullCount": nulls})


def _add_action(table: str, file_path: str, values: dict,
                meta: pq.FileMetaData | None = None) -> AddAction:
    stat = os.stat(file_path)
    return AddAction(
        path=os.path.relpath(file_path, table).replace(os.sep, "/"),
        size=stat.st_size,
        partition_values=values,
        modification_time=int(stat.st_mtime * 1000),
        data_change=True,
        stats=_file_stats(file_path, meta),
    )


def _commit(path, schema, actions, mode, partition_by, replace):
    schema = DeltaSchema.from_arrow(schema)
    if not exists(path):
        create_table_with_add_actions(path, schema, actions, mode="error",
                                      partition_by=partition_by or None)
        return
    table = DeltaTable(path)
    if replace or mode == "append":
        _check_same_schema(path, table, schema)
    table.create_write_transaction(actions, mode=mode, schema=schema,
                                   partition_by=partition_by or None,
                                   partition_filters=_filters(replace))


def _check_same_schema(path, table: DeltaTable, incoming: DeltaSchema):
    """delta-rs commits an append of another schema without complaint; refuse it here."""
    def columns(schema):
        return [(f.name, str(f.type)) for f in pa.schema(schema.to_arrow())]
    have, got = columns(table.schema()), columns(incoming)
    if have != got:
        diff = [f"{a} → {b}" for a, b in zip(have, got) if a != b] or [f"{have} → {got}"]
        raise TableError(f"{path}: the data's schema differs from the table's: {'; '.join(diff)}")


def remove_staging_leftovers(path, older_than_seconds: float = 0) -> list[str]:
    """Remove the table's `_staging-*` folders (Spark's output before it is committed, left
    behind by a killed run) last modified more than `older_than_seconds` ago. Returns them."""
    return remove_leftover_folders(_path(path), STAGING_PREFIX, older_than_seconds)


def remove_leftover_folders(root, prefix: str, older_than_seconds: float = 0) -> list[str]:
    """Remove the folders directly under `root` whose names start with `prefix` and in which
    nothing (the folder or a file below it) was modified in the last `older_than_seconds`: the
    work folders a killed run left behind. Returns them."""
    import time

    root = str(root)
    removed = []
    if not os.path.isdir(root):
        return removed
    cutoff = time.time() - older_than_seconds
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if name.startswith(prefix) and os.path.isdir(folder):
            newest = max([os.path.getmtime(os.path.join(dirpath, f))
                          for dirpath, _dirs, files in os.walk(folder) for f in files]
                         + [os.path.getmtime(folder)])
            if newest <= cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed
