"""What every part of the table seam shares: its error, paths and the catalogue's layout, the
table's metadata (delta-rs), and the protocol check that keeps a table one that both delta-spark
and delta-rs can write (ARCHITECTURE "delta-spark with delta-rs"). Other code imports
citycredit.io.tables, never this module."""
from __future__ import annotations

from typing import Mapping

import pyarrow as pa
from deltalake import DeltaTable

from ..catalog import Location

#: features a shared table may carry: both engines write them (delta-rs 1.6, delta-spark 4.4)
SHARED_READER_FEATURES = frozenset({"timestampNtz"})
SHARED_WRITER_FEATURES = frozenset({"appendOnly", "invariants", "timestampNtz"})


class TableError(RuntimeError):
    """A write was refused or failed; the table is unchanged."""


class ConcurrentWriteError(TableError):
    """Another commit, made after the version a write read, removed a file the write replaces
    or changed a partition it replaces (issue 24 item 3): committing would undo it (an erased
    row could come back). Nothing was committed; rerunning the write reads the table again.
    The message names the table and the versions, never a row."""


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


def _values(value) -> list[str] | None:
    """The values of a `where`/`replace` entry given as a list (any of them), else None."""
    return [str(v) for v in value] if isinstance(value, (list, tuple, set, frozenset)) else None


def _filters(where: Mapping[str, str] | None):
    """delta-rs partition filters of `where`: column → value, or a list of values (any)."""
    if not where:
        return None
    return [(k, "in", _values(v)) if _values(v) is not None else (k, "=", str(v))
            for k, v in where.items()]


def _matches(where: Mapping[str, str], values: Mapping[str, str | None]) -> bool:
    """Do a file's partition `values` lie inside `where` (a value, or a list of values)?"""
    return all(values.get(k) in (_values(v) if _values(v) is not None else [str(v)])
               for k, v in where.items())


def _predicate(where: Mapping[str, str], quote: str = "") -> str:
    """`where` as a SQL predicate (`k = 'v'`, `k IN ('a', 'b')`), names quoted with `quote`."""
    def literal(value) -> str:
        return "'" + str(value).replace("'", "''") + "'"
    return " AND ".join(
        f"{quote}{k}{quote} IN ({', '.join(literal(x) for x in _values(v))})"
        if _values(v) is not None else f"{quote}{k}{quote} = {literal(v)}"
        for k, v in where.items())


def check_protocol(path, table: DeltaTable | None = None) -> None:
    """Refuse a table whose protocol is one delta-rs and delta-spark do not both write: above
    reader 1 / writer 2, or table features beyond SHARED_*_FEATURES (deletion vectors, column
    mapping, row tracking, in-commit timestamps, clustering, v2 checkpoints,
    checkpointProtection…). Such a table is never written (nor silently rewritten) by the seam.
    Raises TableError naming the table and the features."""
    table = table or DeltaTable(_path(path))
    protocol = table.protocol()
    reader = set(protocol.reader_features or ())
    writer = set(protocol.writer_features or ())
    bad = sorted((reader - SHARED_READER_FEATURES) | (writer - SHARED_WRITER_FEATURES))
    if protocol.min_writer_version in (3, 4, 5, 6):     # legacy: constraints, CDF, column mapping…
        bad.append(f"writer version {protocol.min_writer_version}")
    if protocol.min_reader_version == 2:               # legacy: column mapping
        bad.append("reader version 2")
    if bad:
        raise TableError(
            f"{_path(path)}: the table has Delta features citycredit does not write "
            f"({', '.join(bad)}; protocol reader {protocol.min_reader_version} / writer "
            f"{protocol.min_writer_version}); delta-rs and delta-spark share only reader 1 / "
            "writer 2 tables. It was left as it is: restore a version before the change (docs/cluster.md)")
