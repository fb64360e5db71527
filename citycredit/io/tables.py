"""The table seam: every Delta read and write of citycredit goes through this module.

Tables are named by the catalogue (citycredit.catalog): callers pass `catalog.SCORES.at(settings)`
(a Location); a write then takes the table's partition columns from the catalogue and is refused
when its columns differ from the catalogue's schema. A plain path is accepted for the seam's own
tests and tools.

Embedded (no delta-spark jars — Maven Central is out of reach): Spark writes plain Parquet into a
staging folder inside the table (`_staging-…`, ignored by every Delta and Spark reader), the files
are moved into their `col=value/` partition folders under unique names, and delta-rs commits them
in one transaction. Until that commit nothing is visible; if anything fails before it, the moved
files are removed again and the table is exactly as it was. A partition replace is one commit that
removes the partition's old files and adds the new ones, so readers see either all old or all new.

On a Spark session that has delta-spark configured, the same calls use `format("delta")`.
Small tables built on the driver (reports, quarantine, bronze from Arrow) go through the Arrow
functions here, which use delta-rs directly.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..catalog import Location
from .spark import has_delta_spark

STAGING_PREFIX = "_staging-"


class TableError(RuntimeError):
    """A write was refused or failed; the table is unchanged."""


def _path(ref) -> str:
    return ref.path if isinstance(ref, Location) else str(ref)


def _layout(ref, partition_by, columns: list[str]) -> list[str]:
    """Partition columns of a write: the catalogue's (a Location), or the caller's (a path).
    A Location's write must carry exactly the catalogue's columns, in its order."""
    if not isinstance(ref, Location):
        return list(partition_by or [])
    table = ref.table
    if partition_by is not None and list(partition_by) != list(table.partitions):
        raise TableError(f"{ref.path}: partitioned by {list(table.partitions)} in the catalogue, "
                         f"not {list(partition_by)}")
    if list(columns) != table.columns:
        missing = [c for c in table.columns if c not in columns]
        extra = [c for c in columns if c not in table.columns]
        detail = (f"missing {missing}" if missing else "") + \
                 (f"{'; ' if missing else ''}not in the catalogue {extra}" if extra else "")
        raise TableError(f"{ref.path}: columns differ from catalogue table {table.id}: "
                         f"{detail or 'order ' + str(list(columns))}")
    return list(table.partitions)


# ---------------------------------------------------------------------------------------------
# metadata
def exists(path) -> bool:
    return DeltaTable.is_deltatable(_path(path))


def version(path) -> int | None:
    """Current version of the table, None when there is no table yet."""
    return DeltaTable(_path(path)).version() if exists(path) else None


def arrow_schema(path) -> pa.Schema:
    return pa.schema(DeltaTable(_path(path)).schema().to_arrow())


def partition_columns(path) -> list[str]:
    """The partition columns the table was created with (the catalogue may have moved on)."""
    return list(DeltaTable(_path(path)).metadata().partition_columns)


def partitions(path) -> list[dict[str, str]]:
    """The partitions the table holds now, e.g. [{'scheme': 'haibei', 'score_month': '2026-01'}]."""
    return DeltaTable(_path(path)).partitions() if exists(path) else []


def _filters(where: Mapping[str, str] | None):
    return [(k, "=", str(v)) for k, v in where.items()] if where else None


# ---------------------------------------------------------------------------------------------
# Spark reads
def _spark_schema(spark: SparkSession, schema: pa.Schema) -> T.StructType:
    empty = schema.empty_table()
    # Spark converts Arrow types itself; an empty Arrow table carries the exact schema across.
    return spark.createDataFrame(empty).schema if len(schema) else T.StructType([])


def read(spark: SparkSession, path, where: Mapping[str, str] | None = None,
         as_of_version: int | None = None) -> DataFrame:
    """The table's snapshot (current, or `as_of_version`), partitions in `where` pushed down."""
    path = _path(path)
    if has_delta_spark(spark):
        reader = spark.read.format("delta")
        if as_of_version is not None:
            reader = reader.option("versionAsOf", as_of_version)
        df = reader.load(path)
        for key, value in (where or {}).items():
            df = df.where(df[key] == str(value))
        return df
    if not exists(path):
        raise TableError(f"{path}: no Delta table here")
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
# Spark writes
def write(df: DataFrame, path, mode: str = "append",
          partition_by: list[str] | None = None,
          replace: Mapping[str, str] | None = None) -> int | None:
    """Write `df` as one Delta commit and return the new version (None: delta-spark path).

    mode 'append' adds rows; 'overwrite' replaces the whole table, or — with `replace`, e.g.
    {'scheme': 'haibei', 'score_month': '2026-01'} — exactly that partition, atomically. Rows of
    `df` outside `replace` are refused (the table stays as it was).
    """
    partition_by = _layout(path, partition_by, df.columns)
    path = _path(path)
    if mode not in ("append", "overwrite"):
        raise TableError(f"{path}: mode must be 'append' or 'overwrite', not {mode!r}")
    if replace and mode != "overwrite":
        raise TableError(f"{path}: a partition replace is an overwrite")
    if replace and not set(replace) <= set(partition_by):
        raise TableError(f"{path}: can only replace by partition columns {partition_by}")
    if has_delta_spark(df.sparkSession):
        writer = df.write.format("delta").mode(mode).partitionBy(*partition_by)
        if replace:
            writer = writer.option("replaceWhere", " AND ".join(
                f"{k} = '{v}'" for k, v in replace.items()))
        writer.save(path)
        return None
    return _write_embedded(df, path, mode, partition_by, replace)


def _write_embedded(df, path, mode, partition_by, replace):
    os.makedirs(path, exist_ok=True)
    staging = os.path.join(path, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    moved: list[str] = []
    try:
        if replace and partition_by and set(replace) == set(partition_by):
            _write_one_partition(df, staging, path, partition_by, replace)
        else:
            df.write.mode("error").partitionBy(*partition_by).parquet(staging)
        actions = []
        for rel_dir, name in _staged_files(staging):
            values = _partition_values(rel_dir)
            if replace and any(values.get(k) != str(v) for k, v in replace.items()):
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


# ---------------------------------------------------------------------------------------------
# Arrow (driver-side) reads and writes, through delta-rs
def read_arrow(path, where: Mapping[str, str] | None = None,
               as_of_version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    return DeltaTable(_path(path), version=as_of_version).to_pyarrow_table(
        filters=_filters(where), columns=columns)


def write_arrow(data: pa.Table | pa.RecordBatchReader, path, mode: str = "append",
                partition_by: list[str] | None = None,
                replace: Mapping[str, str] | None = None) -> int:
    """Arrow data → one Delta commit (append, overwrite, or atomic replace of one partition).
    `data` is a table, or a RecordBatchReader that delta-rs consumes batch by batch (memory
    bounded by a batch and the files being written, not by the data): still one commit, and
    nothing is committed if the reader raises. A catalogue Location's data is cast to the
    catalogue's schema (same columns, exact types)."""
    partition_by = _layout(path, partition_by, data.schema.names)
    if isinstance(path, Location):
        schema = path.table.schema
        data = (data.cast(schema) if isinstance(data, pa.Table) else
                pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in data)))
    path = _path(path)
    predicate = " AND ".join(f"{k} = '{v}'" for k, v in replace.items()) if replace else None
    if replace and mode != "overwrite":
        raise TableError(f"{path}: a partition replace is an overwrite")
    write_deltalake(str(path), data, mode=mode, partition_by=partition_by or None,
                    predicate=predicate if exists(path) else None)
    return version(path)


def relayout_arrow(data: pa.Table, location: Location) -> int:
    """Overwrite the whole table with `data` partitioned as the catalogue says now (one commit;
    for a table written under an earlier layout). Returns the new version."""
    partition_by = _layout(location, None, data.column_names)
    write_deltalake(location.path, data.cast(location.table.schema), mode="overwrite",
                    schema_mode="overwrite", partition_by=partition_by or None)
    return version(location)


def history(path) -> list[dict]:
    return DeltaTable(_path(path)).history()


# ---------------------------------------------------------------------------------------------
# erasure and housekeeping (citycredit.privacy): find rows, delete them, and make sure no file
# and no log entry on disk still holds them
def find(path, predicate: str, columns: list[str]) -> pa.Table:
    """`columns` of the current snapshot's rows matching a SQL `predicate` (delta-rs' query
    engine: files pruned by partition and statistics, scanned in parallel). Text comes back as
    plain strings (files rewritten by delta-rs hold string views)."""
    from deltalake import QueryBuilder

    listed = ", ".join(f'"{c}"' for c in columns)
    reader = QueryBuilder().register("t", DeltaTable(_path(path))).execute(
        f"SELECT {listed} FROM t WHERE {predicate}")
    found = pa.table(reader)
    return found.cast(pa.schema([
        (f.name, pa.string() if pa.types.is_string_view(f.type) else
         pa.binary() if pa.types.is_binary_view(f.type) else f.type) for f in found.schema]))


def sql_literal(value) -> str:
    """A value as a SQL literal for a delete predicate ('it''s', 12, NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def delete_where(path, predicate: str) -> dict:
    """Delete the rows matching a SQL predicate in one commit; only the files holding them are
    rewritten (delta-rs). The old files stay on disk (time travel still reads them) until
    `vacuum`, and the predicate is written into the commit info until `purge_history`: callers
    that erase personal data do both."""
    return DeltaTable(_path(path)).delete(predicate)


def vacuum(path, retention_hours: float = 0) -> list[str]:
    """Physically remove files the current version does not reference, once unreferenced for
    longer than `retention_hours` (0: all of them — erasure, SPEC §7). A full vacuum: files
    removed before the last checkpoint and files never committed (a killed write's) go too.
    Folders whose names start with '_' (the seam's `_staging-*`) are never vacuumed: see
    `remove_staging_leftovers`. Returns the files removed."""
    return DeltaTable(_path(path)).vacuum(retention_hours=int(retention_hours), dry_run=False,
                                          enforce_retention_duration=False, full=True)


LOG_RETENTION = "delta.logRetentionDuration"
DEFAULT_LOG_RETENTION = "interval 30 days"      # Delta's default
PURGING_RETENTION = "interval 0 seconds"         # only while purge_history runs


def purge_history(path) -> int:
    """Drop every log entry before the current version: log retention set to 0, a checkpoint of
    the current version, the older log files deleted, the retention set back. Afterwards the
    log holds only the current files' actions and statistics, so min/max statistics and delete
    predicates of earlier commits are gone; versions before it can no longer be loaded.
    Returns the version of the checkpoint. The retention is set back whatever happens (a kill
    in between is repaired by restore_log_retention, which the next erasure runs first)."""
    from ..crash import crash_point

    table = DeltaTable(_path(path))
    before = table.metadata().configuration.get(LOG_RETENTION)
    if before == PURGING_RETENTION:         # left by a purge that was killed
        before = None
    table.alter.set_table_properties({LOG_RETENTION: PURGING_RETENTION})
    try:
        crash_point("purge_history.retention_zero")
        table = DeltaTable(_path(path))
        table.create_checkpoint()
        table.cleanup_metadata()
        checkpoint = table.version()
    finally:
        DeltaTable(_path(path)).alter.set_table_properties(
            {LOG_RETENTION: before or DEFAULT_LOG_RETENTION})
    return checkpoint


def restore_log_retention(path) -> bool:
    """A table whose log retention a killed purge_history left at 0 gets Delta's default back
    (its history would otherwise be dropped at every checkpoint). True when it was repaired."""
    if not exists(path):
        return False
    table = DeltaTable(_path(path))
    if table.metadata().configuration.get(LOG_RETENTION) != PURGING_RETENTION:
        return False
    table.alter.set_table_properties({LOG_RETENTION: DEFAULT_LOG_RETENTION})
    return True


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

# ---------------------------------------------------------------------------------------------
# File-level access: incremental maintenance reads and replaces only the files that matter
@dataclass(frozen=True)
class DataFile:
    """One data file of the table's current snapshot, with the statistics its commit recorded
    (a column missing from `min`/`max` has none: treat it as possibly holding any value)."""

    path: str                          # relative to the table folder, as in the Delta log
    size: int
    partition: dict[str, str | None]   # partition column → value
    min: dict[str, Any]
    max: dict[str, Any]


def data_files(path) -> list[DataFile]:
    """The current snapshot's data files (none when there is no table yet)."""
    if not exists(path):
        return []
    return _data_files(DeltaTable(_path(path)))


def _data_files(table: DeltaTable) -> list[DataFile]:
    actions = pa.table(table.get_add_actions(flatten=True))
    names = actions.column_names
    column = {name: actions[name].to_pylist() for name in names}

    def grouped(prefix: str, keep_nulls: bool) -> list[dict]:
        fields = [(n[len(prefix):], column[n]) for n in names if n.startswith(prefix)]
        return [{k: v[i] for k, v in fields if keep_nulls or v[i] is not None}
                for i in range(actions.num_rows)]

    return [DataFile(path, size, partition, low, high) for path, size, partition, low, high in zip(
        column["path"], column["size_bytes"], grouped("partition.", True),
        grouped("min.", False), grouped("max.", False))]


#: read_files(with_file=True): the column naming the DataFile.path each row was read from
DATA_FILE = "_data_file"
#: rows per file written by replace_files (sorted by the key first, so a file holds a key range)
FILE_ROWS = 1 << 18


def read_files(path, files: list[DataFile], columns: list[str] | None = None,
               filter: pc.Expression | None = None, with_file: bool = False) -> pa.Table:
    """Rows of the given files of the current snapshot (partition columns included), typed by
    the table's schema (a Location's: the catalogue's); `filter` is pushed into the scan;
    `with_file` adds DATA_FILE, the DataFile.path of each row's file."""
    schema = path.table.schema if isinstance(path, Location) else arrow_schema(path)
    columns = list(columns or schema.names)
    if not files:
        empty = schema.empty_table().select(columns)
        return empty.append_column(DATA_FILE, pa.array([], pa.string())) if with_file else empty
    root = _path(path)
    partitions, paths = [], {}
    for f in files:
        expression = pc.scalar(True)
        for column, value in f.partition.items():
            expression = expression & (pc.field(column) == pa.scalar(value, schema.field(column).type)
                                       if value is not None else pc.field(column).is_null())
        partitions.append(expression)
        paths[os.path.join(root, unquote(f.path))] = f.path
    dataset = ds.FileSystemDataset.from_paths(
        list(paths), schema=schema, format=ds.ParquetFileFormat(),
        filesystem=pa.fs.LocalFileSystem(), partitions=partitions)
    wanted = columns + (["__filename"] if with_file else [])
    try:
        rows = dataset.to_table(columns=wanted, filter=filter)
    except pa.ArrowNotImplementedError:
        # files rewritten by delta-rs (an erasure's delete) hold string_view columns, which the
        # scan's filter cannot compare with the schema's strings: read, cast, then filter
        rows = dataset.to_table(columns=sorted(set(wanted) | _filter_columns(filter, schema)))
        rows = rows.filter(filter).select(wanted)
    if not with_file:
        return rows
    names = pa.array(list(paths), pa.string())
    relative = pa.array(list(paths.values()), pa.string())
    where = pc.index_in(rows["__filename"], value_set=names)
    return rows.drop(["__filename"]).append_column(DATA_FILE, relative.take(where))


def scan_batches(path, columns: list[str], filter: pc.Expression | None = None,
                 version: int | None = None, batch_size: int = 131_072):
    """Record batches of `columns` of a snapshot (default the current) whose rows match
    `filter`, text as plain strings, memory bounded by a batch.

    Files rewritten by delta-rs (an erasure's delete) hold string_view columns beside older
    files' strings, and a filter pushed into such a file's scan can fail (pyarrow: no kernel
    for string vs string_view in the statistics check). Those files are read without the
    pushed filter, cast, then filtered; the others keep the pushed-down scan."""
    dataset = DeltaTable(_path(path), version=version).to_pyarrow_dataset()
    wanted = sorted(set(columns) | _filter_columns(filter, dataset.schema))
    for fragment in dataset.get_fragments(filter=filter):     # partitions pruned here
        if not any(_is_view(f.type) for f in fragment.physical_schema):
            yield from fragment.to_batches(schema=dataset.schema, columns=columns,
                                           filter=filter, batch_size=batch_size)
            continue
        for batch in fragment.to_batches(schema=dataset.schema, columns=wanted,
                                         batch_size=batch_size):
            rows = pa.Table.from_batches([batch])
            if filter is not None:
                rows = rows.filter(filter)
            yield from rows.select(columns).to_batches()


def _is_view(type_: pa.DataType) -> bool:
    return pa.types.is_string_view(type_) or pa.types.is_binary_view(type_)


def _filter_columns(filter, schema: pa.Schema) -> set[str]:
    """The schema's columns a filter expression names (by its text: expressions do not list
    their fields)."""
    if filter is None:
        return set()
    text = str(filter)
    return {name for name in schema.names if name in text}


def replace_files(data: pa.Table, path, partitions: list[Mapping[str, str]] = (),
                  files: list[DataFile] = ()) -> int:
    """One commit: every file of the listed partitions (each names every partition column) and
    the listed files are removed, and `data` is added — sorted by the catalogue key and cut into
    files of at most FILE_ROWS rows, so that each file holds a key range its statistics tell.
    Every other file is left untouched. A row of `data` outside the listed partitions and the
    partitions of the listed files is refused and the table stays as it was. Creates the table
    when there is none. Returns the new version."""
    partition_by = _layout(path, None, data.column_names)
    key = list(path.table.key) if isinstance(path, Location) else []
    if isinstance(path, Location):
        data = data.cast(path.table.schema)
    path = _path(path)
    if any(set(p) != set(partition_by) for p in partitions):
        raise TableError(f"{path}: a replaced partition must name every partition column "
                         f"{partition_by}, got {[dict(p) for p in partitions]}")
    replaced = {tuple(str(p[c]) for c in partition_by) for p in partitions}
    allowed = replaced | {tuple(f.partition.get(c) for c in partition_by) for f in files}
    if partition_by and data.num_rows:
        present = data.group_by(partition_by).aggregate([]).to_pylist()
        outside = [g for g in present if tuple(str(g[c]) for c in partition_by) not in allowed]
        if outside:
            raise TableError(f"{path}: rows outside the partitions being replaced: {outside[:3]}")
    os.makedirs(path, exist_ok=True)
    written: list[tuple[str, pq.FileMetaData]] = []
    try:
        if data.num_rows:
            if key:
                data = data.sort_by([(c, "ascending") for c in key])
            ds.write_dataset(
                data, path, format="parquet",
                basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
                partitioning=ds.partitioning(pa.schema([data.schema.field(c) for c in partition_by]),
                                             flavor="hive") if partition_by else None,
                existing_data_behavior="overwrite_or_ignore", max_rows_per_file=FILE_ROWS,
                max_rows_per_group=FILE_ROWS, preserve_order=True,
                file_visitor=lambda f: written.append((f.path, f.metadata)))
        actions: list = []
        for file_path, meta in written:
            values = _partition_values(os.path.dirname(os.path.relpath(file_path, path)))
            actions.append(_add_action(path, file_path, values, meta))
        table = DeltaTable(path) if exists(path) else None
        if table is not None:
            if table.metadata().partition_columns != partition_by:
                raise TableError(f"{path}: the table is partitioned by "
                                 f"{table.metadata().partition_columns}, not {partition_by}")
            now = int(time.time() * 1000)
            named = {f.path for f in files}
            actions += [RemoveAction(f.path, True, now, f.size, dict(f.partition))
                        for f in _data_files(table)
                        if f.path in named
                        or tuple(f.partition.get(c) for c in partition_by) in replaced]
        _commit_actions(path, table, data.schema, actions, partition_by)
    except BaseException:
        for file_path, _ in written:
            try:
                os.remove(file_path)
            except OSError:
                pass
        raise
    if table is None:
        return version(path)
    table.update_incremental()
    return table.version()


def _commit_actions(path, table: DeltaTable | None, schema: pa.Schema, actions: list,
                    partition_by: list[str]) -> None:
    delta_schema = DeltaSchema.from_arrow(schema)
    if table is None:
        create_table_with_add_actions(path, delta_schema, [a for a in actions
                                                           if isinstance(a, AddAction)],
                                      mode="error", partition_by=partition_by or None)
        return
    _check_same_schema(path, table, delta_schema)
    # 'append' with remove actions: exactly these files go, exactly these come, in one commit
    table.create_write_transaction(actions, mode="append", schema=delta_schema,
                                   partition_by=partition_by or None)
