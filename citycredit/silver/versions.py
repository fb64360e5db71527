"""Bitemporal versions (SPEC §2, §5): every delivered version of a record is kept in silver.

`known_from` is the delivery month of a version; `known_until` the delivery month of the next
version of the same key (exclusive), null while it is the latest. The state as known at month M is
one filter: `known_from <= M AND (known_until IS NULL OR known_until > M)`.

A month's delivery is merged incrementally (`merge_month`): the versioned tables are partitioned
by delivery month (`known_from`, and `source_id` for findings), so the month's versions are whole
partitions of their own, and the only other files touched are those holding a version whose
`known_until` changes (files are written sorted by key and cut at tables.FILE_ROWS rows, so a big
delivery month is several files, each a key range) — the versions the delivery supersedes (corrections, revocations) and, when
an earlier month is re-delivered or back-filled, the versions around it. The cost follows the
delivery, not the history: which files may hold a delivered key is decided from the key's min/max
statistics in the Delta log before anything is read. (Measured against a delta-rs MERGE: README,
"Silver, incrementally".)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..catalog import Location
from ..io import tables


def as_known_at(versions: DataFrame, month: str) -> DataFrame:
    """The versions of a versioned silver table that were current at the end of `month`.
    Columns in = columns out (known_from, known_until: 'YYYY-MM' strings)."""
    return versions.where((F.col("known_from") <= month)
                          & (F.col("known_until").isNull() | (F.col("known_until") > month)))


def next_known_from(versions: pa.Table, key: list[str]) -> pa.ChunkedArray:
    """known_until of each row of `versions` (the key columns and known_from): the known_from of
    the next version of the same key, null for the latest. Rows keep their order."""
    n = versions.num_rows
    if n == 0:
        return pa.chunked_array([], pa.string())
    order = pc.sort_indices(versions, [(c, "ascending") for c in [*key, "known_from"]])
    ordered = versions.select([*key, "known_from"]).take(order)
    same_key = np.ones(n - 1, dtype=bool)
    for column in key:
        values = ordered[column]
        same_key &= pc.fill_null(pc.equal(values.slice(0, n - 1), values.slice(1)),
                                 False).to_numpy(zero_copy_only=False)
    following = ordered["known_from"].slice(1).combine_chunks()
    nxt = pc.if_else(pa.array(same_key), following, pa.scalar(None, pa.string()))
    nxt = pa.concat_arrays([nxt.cast(pa.string()), pa.nulls(1, pa.string())])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order.to_numpy()] = np.arange(n)
    return pa.chunked_array([nxt.take(pa.array(inverse))])


@dataclass
class MonthMerge:
    """What merging a month's delivery did to a versioned table."""

    versions: int                          # versions of the month now in the table
    earlier: pa.Table                      # keys of the month's versions that had an earlier one
    files_rewritten: int                   # files replaced besides the month's own
    rows_rewritten: int                    # rows in them
    files_read: int                        # files whose key columns were read to find them


def merge_month(location: Location, delivered: pa.Table, month: str,
                scopes: list[dict[str, str]]) -> MonthMerge:
    """Merge the month's delivery into a versioned silver table, in one commit.

    `delivered`: the table's columns but known_until (known_from = `month`). `scopes` name the
    partitions of the month this delivery replaces, without known_from — `[{"source_id": s}]`
    per landed source for findings, `[{}]` for the whole month of appeals: any earlier landing
    of the same month there is replaced (a re-delivery), and the delivered versions, with the
    versions around them, get their known_until (= the delivery month of the next version of
    their key). The result equals recomputing known_until over all versions from scratch.
    Raises tables.TableError if the table's layout differs from the catalogue's, and
    tables.ConcurrentWriteError (nothing committed) when a commit made after the files were
    read removed one of those it rewrites or touched the month's partitions (an erasure's
    delete: its rows must not come back); rerunning the merge reads the table again.
    """
    table = location.table
    key = [c for c in table.key if c != "known_from"]
    month_parts = [{**scope, "known_from": month} for scope in scopes]
    delivered = delivered.append_column("known_until", pa.nulls(delivered.num_rows, pa.string()))
    delivered = delivered.select(table.columns).cast(table.schema)
    read = tables.snapshot(location)       # the commit refuses a concurrent change of it
    files = read.files
    in_month = [f for f in files if any(_within(f, p) for p in month_parts)]
    in_scope = [f for f in files if f not in in_month and any(_within(f, s) for s in scopes)]
    scope_columns = sorted({c for s in scopes for c in s})
    wanted = [*key, "known_from", "known_until"]
    replaced = tables.read_files(location, in_month, wanted)
    keys = pa.concat_tables([delivered.select(key), replaced.select(key)])
    candidates = _may_hold(in_scope, keys, key, scope_columns)
    # versions that can change: current ones, ones superseded at or after the month (a
    # re-delivery or back-fill), and later ones
    relevant = (pc.field("known_until").is_null() | (pc.field("known_until") >= month)
                | (pc.field("known_from") > month))
    found = tables.read_files(location, candidates, wanted, filter=pc.field(key[-1]).isin(
        pc.unique(keys[key[-1]].combine_chunks())) & relevant, with_file=True)
    found = found.join(keys.group_by(key).aggregate([]), key, join_type="left semi")
    # every version of the affected keys after the merge: the ones found, and the delivered ones
    around = pa.concat_tables([found.select([*key, "known_from"]),
                               delivered.select([*key, "known_from"])])
    following = next_known_from(around, key)
    delivered = delivered.set_column(table.columns.index("known_until"), "known_until",
                                     following.slice(found.num_rows))
    found = found.append_column("new_until", following.slice(0, found.num_rows))
    changed = found.filter(_differs(found["known_until"], found["new_until"]))
    holding = set(changed[tables.DATA_FILE].to_pylist())
    rewritten_files = [f for f in files if f.path in holding]
    rows = tables.read_files(location, rewritten_files)
    rows = _set_known_until(rows, changed.select([*key, "known_from", "new_until"]), key)
    tables.replace_files(pa.concat_tables([rows.select(table.columns).cast(table.schema),
                                           delivered]),
                         location, partitions=month_parts, files=rewritten_files,
                         read_version=read.version)
    earlier = found.filter(pc.less(found["known_from"], month)).select(key)
    return MonthMerge(versions=delivered.num_rows, earlier=earlier.group_by(key).aggregate([]),
                      files_rewritten=len(rewritten_files), rows_rewritten=rows.num_rows,
                      files_read=len(candidates) + len(in_month))


def _within(file: tables.DataFile, partition: dict[str, str]) -> bool:
    return all(file.partition.get(c) == str(v) for c, v in partition.items())


def _differs(a, b) -> pa.Array:
    """a != b, where null equals null."""
    same = pc.or_kleene(pc.equal(a, b), pc.and_(pc.is_null(a), pc.is_null(b)))
    return pc.invert(pc.fill_null(same, False))


def _may_hold(files: list, keys: pa.Table, key: list[str], scope_columns: list[str]) -> list:
    """The files whose min/max statistics of the key's last column admit one of `keys` (of the
    same partition-key values, e.g. the same source). A file without statistics may hold any."""
    range_column = key[-1]
    grouping = [c for c in key[:-1] if c in scope_columns]
    sorted_keys: dict[tuple, np.ndarray] = {}
    if grouping:
        for group in keys.group_by(grouping).aggregate([(range_column, "list")]).to_pylist():
            sorted_keys[tuple(group[c] for c in grouping)] = np.sort(np.array(
                group[f"{range_column}_list"], dtype=object))
    else:
        sorted_keys[()] = np.sort(np.array(keys[range_column].to_pylist(), dtype=object))
    out = []
    for f in files:
        values = sorted_keys.get(tuple(f.partition.get(c) for c in grouping))
        if values is None or not len(values):
            continue
        low, high = f.min.get(range_column), f.max.get(range_column)
        if low is None or high is None:
            out.append(f)
            continue
        i = np.searchsorted(values, low, "left")
        if i < len(values) and values[i] <= high:
            out.append(f)
    return out


def _set_known_until(rows: pa.Table, changes: pa.Table, key: list[str]) -> pa.Table:
    """rows with known_until replaced where (key, known_from) is in `changes` (new_until)."""
    if not rows.num_rows:
        return rows
    marked = changes.append_column("_changed", pa.array(np.ones(changes.num_rows, dtype=bool)))
    joined = rows.join(marked, [*key, "known_from"], join_type="left outer")
    until = pc.if_else(pc.fill_null(joined["_changed"], False), joined["new_until"],
                       joined["known_until"])
    return joined.set_column(joined.column_names.index("known_until"), "known_until",
                             until).drop(["new_until", "_changed"])
