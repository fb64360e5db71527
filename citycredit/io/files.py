"""File-level access to a table's current snapshot (delta-rs and pyarrow, no Spark): incremental
maintenance reads and replaces only the files that matter (silver's versions, the lookup index's
scans). Other code goes through citycredit.io.tables, never here."""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from ..catalog import Location
from .filesystem import native_filesystem
from .base import (ConcurrentWriteError, TableError, _layout, _path, arrow_schema, check_protocol,
                   exists, version)
from .bridge import _add_action, _check_same_schema, _partition_values

@dataclass(frozen=True)
class DataFile:
    """One data file of the table's current snapshot, with the statistics its commit recorded
    (a column missing from `min`/`max` has none: treat it as possibly holding any value)."""

    path: str                          # relative to the table folder, as in the Delta log
    size: int
    partition: dict[str, str | None]   # partition column → value
    min: dict[str, Any]
    max: dict[str, Any]


#: Snapshot.version when there was no table: a later write checks every commit since (from 0)
NO_TABLE = -1


@dataclass(frozen=True)
class Snapshot:
    """The current version of a table and its data files, read together: a write computed
    from them passes `version` to replace_files(read_version=…), which refuses to commit over
    a concurrent change of what it replaces."""

    version: int                       # NO_TABLE when there is no table yet
    files: list[DataFile]


def snapshot(path) -> Snapshot:
    """The current version and its data files (NO_TABLE and none when there is no table)."""
    if not exists(path):
        return Snapshot(NO_TABLE, [])
    table = DeltaTable(_path(path))
    return Snapshot(table.version(), _data_files(table))


def data_files(path) -> list[DataFile]:
    """The current snapshot's data files (none when there is no table yet)."""
    return snapshot(path).files


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
    dataset = DeltaTable(_path(path), version=version).to_pyarrow_dataset(
        filesystem=native_filesystem(_path(path)))     # not delta-rs' Python one: io/filesystem.py
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


def replace_files(data: pa.Table | Iterable[pa.Table], path,
                  partitions: list[Mapping[str, str]] = (), files: list[DataFile] = (),
                  file_rows: int = FILE_ROWS, read_version: int | None = None) -> int:
    """One commit: every file of the listed partitions (each names every partition column) and
    the listed files are removed, and `data` is added — sorted by the catalogue key and cut into
    files of at most `file_rows` rows, so that each file holds a key range its statistics tell.
    Every other file is left untouched. A row of `data` outside the listed partitions and the
    partitions of the listed files is refused and the table stays as it was. Creates the table
    when there is none. Returns the new version.

    `data` may also be an iterable of tables (same columns), each sorted and written on its own
    before the one commit: memory is bounded by the largest part, not the whole replacement
    (an erasure rewriting a partition at a time).


    `read_version`: the version `files` and `data` were computed from (Snapshot.version). When
    the table has moved on since, the commits in between are read from the Delta log: if one
    removed a listed file, or added or removed a file in a listed partition, the write raises
    ConcurrentWriteError and commits nothing (a concurrent erasure is never undone); other
    commits (another partition, a property) do not matter. None: no check (a writer that read
    nothing of the table and replaces whole partitions under the warehouse lock)."""
    parts = [data] if isinstance(data, pa.Table) else data
    key = list(path.table.key) if isinstance(path, Location) else []
    schema = path.table.schema if isinstance(path, Location) else None
    location, path = path, _path(path)
    os.makedirs(path, exist_ok=True)
    written: list[tuple[str, pq.FileMetaData]] = []
    partition_by: list[str] | None = None
    try:
        for part in parts:
            if schema is not None:
                part = part.cast(schema)
            schema = part.schema
            if partition_by is None:
                partition_by = _checked_layout(location, path, part.column_names, partitions,
                                               files)
            _write_sorted(part, path, partition_by, key, file_rows, partitions, files, written)
        if schema is None:
            raise TableError(f"{path}: nothing to replace with and no schema to create it by")
        if partition_by is None:
            partition_by = _checked_layout(location, path, schema.names, partitions, files)
        return _commit_replacement(path, schema, written, partition_by, partitions, files,
                                   read_version)
    except BaseException:
        for file_path, _ in written:
            try:
                os.remove(file_path)
            except OSError:
                pass
        raise


def _checked_layout(location, path: str, columns: list[str], partitions, files) -> list[str]:
    partition_by = _layout(location, None, columns)
    if any(set(p) != set(partition_by) for p in partitions):
        raise TableError(f"{path}: a replaced partition must name every partition column "
                         f"{partition_by}, got {[dict(p) for p in partitions]}")
    return partition_by


def _write_sorted(data: pa.Table, path: str, partition_by: list[str], key: list[str],
                  file_rows: int, partitions, files, written: list) -> None:
    """data sorted by `key`, written as files of at most `file_rows` rows (appended to
    `written`: path, metadata) — refused when a row lies outside what is being replaced."""
    replaced = {tuple(str(p[c]) for c in partition_by) for p in partitions}
    allowed = replaced | {tuple(f.partition.get(c) for c in partition_by) for f in files}
    if partition_by and data.num_rows:
        present = data.group_by(partition_by).aggregate([]).to_pylist()
        outside = [g for g in present if tuple(str(g[c]) for c in partition_by) not in allowed]
        if outside:
            raise TableError(f"{path}: rows outside the partitions being replaced: {outside[:3]}")
    if not data.num_rows:
        return
    if key:
        data = data.sort_by([(c, "ascending") for c in key])
    ds.write_dataset(
        data, path, format="parquet",
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
        partitioning=ds.partitioning(pa.schema([data.schema.field(c) for c in partition_by]),
                                     flavor="hive") if partition_by else None,
        existing_data_behavior="overwrite_or_ignore", max_rows_per_file=file_rows,
        max_rows_per_group=file_rows, preserve_order=True,
        file_visitor=lambda f: written.append((f.path, f.metadata)))


def _commit_replacement(path: str, schema: pa.Schema, written: list, partition_by: list[str],
                        partitions, files, read_version: int | None = None) -> int:
    """One commit adding the `written` files and removing the listed files and every file of
    the replaced partitions (refused when a commit since `read_version` conflicts: see
    replace_files). → the new version."""
    replaced = {tuple(str(p[c]) for c in partition_by) for p in partitions}
    actions: list = []
    for file_path, meta in written:
        values = _partition_values(os.path.dirname(os.path.relpath(file_path, path)))
        actions.append(_add_action(path, file_path, values, meta))
    table = DeltaTable(path) if exists(path) else None
    if table is not None:
        check_protocol(path, table)
        if table.metadata().partition_columns != partition_by:
            raise TableError(f"{path}: the table is partitioned by "
                             f"{table.metadata().partition_columns}, not {partition_by}")
        named = {f.path for f in files}
        if read_version is not None:
            _check_unchanged_since(path, table.version(), read_version,
                                   {unquote(p) for p in named}, replaced, partition_by)
        now = int(time.time() * 1000)
        actions += [RemoveAction(f.path, True, now, f.size, dict(f.partition))
                    for f in _data_files(table)
                    if f.path in named
                    or tuple(f.partition.get(c) for c in partition_by) in replaced]
    _commit_actions(path, table, schema, actions, partition_by)
    if table is None:
        return version(path)
    table.update_incremental()
    return table.version()


def _check_unchanged_since(path: str, latest: int, read_version: int, removing: set[str],
                           replaced: set[tuple], partition_by: list[str]) -> None:
    """Raise ConcurrentWriteError when a commit after `read_version` (up to `latest`) removed
    one of the files being removed (`removing`, unquoted paths) or added or removed a file in
    a partition being replaced (`replaced`: partition-value tuples in `partition_by` order).
    The commits are read from the Delta log's JSON files; one that is gone (history purged by
    an erasure) cannot be told harmless, so it counts as a conflict."""
    for number in range(read_version + 1, latest + 1):
        entry = os.path.join(path, "_delta_log", f"{number:020d}.json")
        try:
            with open(entry, encoding="utf-8") as log:
                actions = [json.loads(line) for line in log if line.strip()]
        except FileNotFoundError:
            raise ConcurrentWriteError(
                f"{path}: the table moved on from version {read_version} (read) to {latest}, "
                f"and the log of version {number} is gone (history purged, e.g. by an "
                "erasure); nothing was committed: rerun to read the table again") from None
        operation = next((a["commitInfo"].get("operation") for a in actions
                          if "commitInfo" in a), None) or "a commit"
        for action in actions:
            kind = "add" if "add" in action else "remove" if "remove" in action else None
            if kind is None:
                continue
            file_path = unquote(action[kind]["path"])
            values = action[kind].get("partitionValues")
            if values is None:
                values = _partition_values(os.path.dirname(file_path))
            what = None
            if kind == "remove" and file_path in removing:
                what = "removed a file this write replaces"
            elif partition_by and tuple(values.get(c) for c in partition_by) in replaced:
                partition = {c: values.get(c) for c in partition_by}
                what = (f"{'added' if kind == 'add' else 'removed'} a file in a partition this "
                        f"write replaces ({partition})")
            if what:
                raise ConcurrentWriteError(
                    f"{path}: version {number} ({operation}), committed after version "
                    f"{read_version} this write read, {what}; nothing was committed (the "
                    f"table stays at version {latest}): rerun to read the table again")


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
