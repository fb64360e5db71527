"""The table seam: every Delta read and write of citycredit goes through this module.

Tables are named by the catalogue (citycredit.catalog): callers pass `catalog.SCORES.at(settings)`
(a Location); a write then takes the table's partition columns from the catalogue and is refused
when its columns differ from the catalogue's schema. A plain path is accepted for the seam's own
tests and tools.

One engine per operation (ARCHITECTURE §2, docs/cluster.md):
- Spark DataFrames (`read`: silver's versions; `read`, `write`: gold's scores and score lines,
  the publication, policy runs) — delta-spark, `format("delta")`, a partition replace by
  `replaceWhere` (one atomic commit: readers see all old or all new rows), on every session that
  carries it (conf spark.delta: auto, the default once `make install` fetched its jars). A session
  without it (spark.delta: off) uses the old Parquet + delta-rs bridge (citycredit.io.bridge).
- Arrow on the driver (`read_arrow`, `write_arrow`, `replace_files`, `read_files`,
  `scan_batches`: landing → bronze, quarantine, reports, silver's month merge, the lookup index)
  and erasure's `find` / `delete_where` / `vacuum` / `purge_history` — delta-rs. Silver stays
  here: its file replace beat a delta-spark MERGE 12-32× (docs/performance.md, 2026-12-06).
Both engines write one table only while its protocol stays reader 1 / writer 2 with no table
features either cannot write: every table delta-spark creates gets the properties pinned in
citycredit.io.spark.DELTA_TABLE_PROPERTIES, and every write here first refuses (TableError) a
table that has gained another feature (`check_protocol`) rather than write or rewrite it.
Two writer processes on one table need the warehouse lock (citycredit.io.lock): on a local file
system delta-spark's commit is atomic only inside its own JVM.
Concurrent commits (issue 24 item 3, docs/operating.md "Crashes and concurrent writers"):
`replace_files` is told the version its input was read at and refuses (ConcurrentWriteError)
when a commit since removed a file it replaces or touched a partition it replaces; delta-rs'
DELETE and partition writes (`delete_where`, `write_arrow`) and delta-spark's `replaceWhere`
read and commit in one transaction, whose own conflict check refuses a concurrent delete or
rewrite of what they replace.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Mapping
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from pyspark.sql import DataFrame, SparkSession

from ..catalog import Location
from . import bridge
from . import files as _files
from .base import (SHARED_READER_FEATURES, SHARED_WRITER_FEATURES,  # noqa: F401
                   ConcurrentWriteError, TableError,
                   _filters, _layout, _path, _predicate, _values, arrow_schema,
                   check_protocol, exists, partition_columns, partitions, version)
from .bridge import (STAGING_PREFIX, _arrow_schema_of, _check_same_schema,  # noqa: F401
                     remove_leftover_folders, remove_staging_leftovers)
from .files import (DATA_FILE, NO_TABLE, DataFile, Snapshot, data_files,  # noqa: F401
                    read_files, scan_batches, snapshot)
from .filesystem import native_filesystem
from .spark import has_delta_spark

#: rows per file written by replace_files (sorted by the key first, so a file holds a key range)
FILE_ROWS = _files.FILE_ROWS


# ---------------------------------------------------------------------------------------------
# Spark reads and writes
def read(spark: SparkSession, path, where: Mapping[str, str] | None = None,
         as_of_version: int | None = None) -> DataFrame:
    """The table's snapshot (current, or `as_of_version`), partitions in `where` pushed down.
    Raises TableError when there is no table."""
    path = _path(path)
    if not exists(path):
        raise TableError(f"{path}: no Delta table here")
    if not has_delta_spark(spark):
        return bridge.read_parquet(spark, path, where, as_of_version)
    reader = spark.read.format("delta")
    if as_of_version is not None:
        reader = reader.option("versionAsOf", as_of_version)
    df = reader.load(path)
    for key, value in (where or {}).items():
        values = _values(value)
        df = df.where(df[key].isin(values) if values is not None else df[key] == str(value))
    return df


def write(df: DataFrame, path, mode: str = "append",
          partition_by: list[str] | None = None,
          replace: Mapping[str, str] | None = None) -> int:
    """Write `df` as one Delta commit and return the new version.

    mode 'append' adds rows; 'overwrite' replaces the whole table, or — with `replace`, e.g.
    {'scheme': 'haibei', 'score_month': '2026-01'} — exactly that partition, atomically (a list
    value replaces any of its values' partitions: {'score_month': M, 'scheme': [a, b]}, one
    commit). Rows of
    `df` outside `replace`, data whose schema differs from the table's (append, replace), and a
    table with Delta features both engines do not write are refused with TableError; the table
    then stays as it was.
    """
    partition_by = _layout(path, partition_by, df.columns)
    file_rows = getattr(path.table, "file_rows", None) if isinstance(path, Location) else None
    stats = _stats_property(path)
    if file_rows:       # files of key ranges, as replace_files writes them (erasure, issue 20)
        key = [c for c in path.table.key if c in df.columns]
        df = df.repartitionByRange(*key).sortWithinPartitions(*key)
    path = _path(path)
    if mode not in ("append", "overwrite"):
        raise TableError(f"{path}: mode must be 'append' or 'overwrite', not {mode!r}")
    if replace and mode != "overwrite":
        raise TableError(f"{path}: a partition replace is an overwrite")
    if replace and not set(replace) <= set(partition_by):
        raise TableError(f"{path}: can only replace by partition columns {partition_by}")
    table = DeltaTable(path) if exists(path) else None
    if table is not None:
        check_protocol(path, table)
    spark = df.sparkSession
    files = {"spark.sql.files.maxRecordsPerFile": str(file_rows)} if file_rows else {}
    if not has_delta_spark(spark):
        with _session_conf(spark, files):
            written = bridge.write_parquet(df, path, mode, partition_by, replace)
        # the bridge's commit carries no statistics settings: the property follows the write
        return (stats and _keep_table_properties(DeltaTable(path), stats)) or written
    if table is not None and (replace or mode == "append"):
        _check_same_schema(path, table, DeltaSchema.from_arrow(_arrow_schema_of(df)))
        if list(table.metadata().partition_columns) != partition_by:
            raise TableError(f"{path}: the table is partitioned by "
                             f"{list(table.metadata().partition_columns)}, not {partition_by}")
    writer = df.write.format("delta").mode(mode).partitionBy(*partition_by)
    if replace:
        writer = writer.option("replaceWhere", _predicate(replace, quote="`"))
    elif mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")     # as the bridge's overwrite did
    if table is not None:
        _keep_table_properties(table, stats)
    # a table this write creates gets the properties from Delta's session defaults
    created = {f"spark.databricks.delta.properties.defaults.{k[len('delta.'):]}": v
               for k, v in (stats if table is None else {}).items()}
    started = time.time()
    try:
        with _session_conf(spark, {**files, **created}):
            writer.save(path)
    except Exception as error:       # py4j / pyspark errors: the table is as it was
        _remove_uncommitted(path, started)
        text = str(error)
        if "REPLACE_WHERE_MISMATCH" in text or "partial table overwrite" in text:
            raise TableError(f"{path}: rows outside the partition being replaced "
                             f"({dict(replace or {})}); the table is unchanged") from None
        first = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
        raise TableError(f"{path}: delta-spark refused the write: {first[:500]}") from error
    return DeltaTable(path).version()


@contextlib.contextmanager
def _session_conf(spark, settings: Mapping[str, str]):
    """Spark session settings for the writes inside, restored after (maxRecordsPerFile for
    key-range files, Delta's property defaults for a table being created)."""
    before = {name: spark.conf.get(name, None) for name in settings}
    for name, value in settings.items():
        spark.conf.set(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                spark.conf.unset(name)
            else:
                spark.conf.set(name, value)


def _stats_property(path) -> dict[str, str]:
    """The table properties a catalogue table keeps (Table.stats_columns → Delta's
    delta.dataSkippingStatsColumns: per-file statistics of those columns only)."""
    columns = getattr(path.table, "stats_columns", ()) if isinstance(path, Location) else ()
    return {"delta.dataSkippingStatsColumns": ",".join(columns)} if columns else {}


def _keep_table_properties(table: DeltaTable, properties: Mapping[str, str]) -> int | None:
    """Set `properties` on a table that lacks them (one commit: a table created before the
    catalogue named them) and return the new version; None when nothing was missing. No
    property set here adds a table feature."""
    configuration = table.metadata().configuration
    missing = {k: v for k, v in properties.items() if configuration.get(k) != v}
    if not missing:
        return None
    table.alter.set_table_properties(missing)
    return table.version()


def _remove_uncommitted(path: str, since: float) -> None:
    """Remove the data files a failed delta-spark write left in the table (written since `since`,
    referenced by no commit): uncommitted files are invisible, but a table folder should hold
    only its versions' files. Writers of one table are serialised by the warehouse lock."""
    if not os.path.isdir(path):
        return
    kept = ({unquote(f.path) for f in data_files(path)} if exists(path) else set())
    for root, dirs, names in os.walk(path):
        if root == path:
            dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        for name in names:
            full = os.path.join(root, name)
            relative = os.path.relpath(full, path).replace(os.sep, "/")
            data_name = name[1:-len(".crc")] if name.startswith(".") and name.endswith(".crc") \
                else name
            if not data_name.endswith(".parquet"):
                continue
            referenced = os.path.join(os.path.dirname(relative), data_name).lstrip("/")
            if referenced not in kept and os.path.getmtime(full) >= since - 1:
                try:
                    os.remove(full)
                except OSError:
                    pass


# ---------------------------------------------------------------------------------------------
# Arrow (driver-side) reads and writes, through delta-rs
def read_arrow(path, where: Mapping[str, str] | None = None,
               as_of_version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    return DeltaTable(_path(path), version=as_of_version).to_pyarrow_table(
        filters=_filters(where), columns=columns, filesystem=native_filesystem(_path(path)))


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
    predicate = _predicate(replace) if replace else None
    if replace and mode != "overwrite":
        raise TableError(f"{path}: a partition replace is an overwrite")
    if exists(path):
        check_protocol(path)
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


def spark_sql_literal(value) -> str:
    """sql_literal in Spark SQL's dialect, where a quote is escaped by a backslash ('it\\'s'):
    Spark reads 'it''s' as two adjacent literals, 'its'."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return sql_literal(value)


def delete_where(path, predicate: str) -> dict:
    """Delete the rows matching a SQL predicate in one commit; only the files holding them are
    rewritten (delta-rs). The old files stay on disk (time travel still reads them) until
    `vacuum`, and the predicate is written into the commit info until `purge_history`: callers
    that erase personal data do both. A table with features delta-rs and delta-spark do not
    share (deletion vectors would hide rows instead of rewriting files) is refused."""
    table = DeltaTable(_path(path))
    check_protocol(path, table)
    return table.delete(predicate)


def delete_where_on_spark(spark: SparkSession, path, predicate: str) -> dict:
    """delete_where run by delta-spark on `spark`'s cluster (a Spark SQL predicate): the
    executors rewrite the files holding the rows, one commit, no deletion vectors (the pinned
    table properties). → {'num_deleted_rows': n} from the commit's metrics (0: no commit, as
    delta-rs). Raises TableError for a session without delta-spark or a table with features
    the engines do not share."""
    path = _path(path)
    check_protocol(path)
    if not has_delta_spark(spark):
        raise TableError(f"{path}: a delete on Spark needs delta-spark on the session")
    from delta.tables import DeltaTable as SparkDeltaTable

    before = version(path)
    SparkDeltaTable.forPath(spark, path).delete(predicate)
    if version(path) == before:
        return {"num_deleted_rows": 0}
    metrics = DeltaTable(path).history(1)[0].get("operationMetrics") or {}
    return {"num_deleted_rows": int(metrics.get("numDeletedRows", 0))}


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
        _remove_checksums_before(_path(path), checkpoint)
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


def _remove_checksums_before(path: str, checkpoint: int) -> None:
    """delta-rs' log cleanup leaves the checksum files of the versions it removed: Delta's own
    `<version>.crc` (which can list a version's files with their statistics; citycredit's
    sessions do not write them, spark.databricks.delta.writeChecksumFile.enabled=false, other
    Sparks may) and the file system's `.<name>.crc`. Those before `checkpoint` go too."""
    log = os.path.join(path, "_delta_log")
    for name in os.listdir(log):
        digits = name.lstrip(".").split(".")[0]
        if name.endswith(".crc") and digits.isdigit() and int(digits) < checkpoint:
            try:
                os.remove(os.path.join(log, name))
            except OSError:
                pass


def replace_files(data, path, partitions: list[Mapping[str, str]] = (),
                  files: list[DataFile] = (), read_version: int | None = None) -> int:
    """One delta-rs commit removing the listed partitions' and files' rows and adding `data` (a
    table, or an iterable of tables written one at a time: citycredit.io.files.replace_files), sorted by the catalogue key in files of at most the
    catalogue's `file_rows` rows (default FILE_ROWS). Returns the version. With `read_version`
    (the Snapshot.version `files` and `data` come from) a commit made since that removed a
    listed file or touched a listed partition refuses the write: ConcurrentWriteError, nothing
    committed."""
    file_rows = (getattr(path.table, "file_rows", None) if isinstance(path, Location)
                 else None) or FILE_ROWS     # the catalogue's file size (issue 20)
    return _files.replace_files(data, path, partitions, files, file_rows=file_rows,
                                read_version=read_version)


# ---------------------------------------------------------------------------------------------
# Issue 20 (erasure off the critical path): small data files for the tables an erasure deletes
# from row by row, so that a delete rewrites only the few small files holding the rows (found by
# their statistics), not a month's whole partition. A separate hunk: nothing above changes.
TARGET_FILE_SIZE = "delta.targetFileSize"


def keep_files_small(path, size_bytes: int, schema: pa.Schema | None = None) -> None:
    """Set the table's `delta.targetFileSize` to `size_bytes` (when it is not that already):
    delta-rs writes (write_arrow) then cut their data into files of about that size, in the
    order the rows come. Creates the table empty with `schema` first when there is none."""
    if not exists(path):
        if schema is None:
            return
        write_arrow(schema.empty_table(), path, mode="append")
    table = DeltaTable(_path(path))
    if table.metadata().configuration.get(TARGET_FILE_SIZE) != str(size_bytes):
        table.alter.set_table_properties({TARGET_FILE_SIZE: str(size_bytes)})
