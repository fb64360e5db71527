"""Erasure (注销, SPEC §7): every row about an opted-out person removed from every table, the
files and Delta log entries that held them removed from disk, the delivery files in landing
rewritten without them, and the person put on the suppression list.

Driven by the catalogue (citycredit.catalog), not by a list kept here: a table's rows go when a
column the catalogue marks as personal holds the person — a subject_key (SUBJECT_KEY), an
identity number (ID_NUMBER: bronze), raw delivered text containing the number (RAW_CONTENT) — or
when the row is about one of the person's findings (`finding_ref`: appeals). A Delta table found
on disk that the catalogue does not know (a sandbox, an experiment) is erased too when it has a
`subject_key` or `id_number` column. Tables that are the record of erasures (`erasure_record`:
the suppression list and the erasure log) keep the subject key on purpose.

Per table, in one pass: find the person's rows (a filtered scan of the current snapshot), delete
them in one commit whose predicate names partitions and row keys (file + line for bronze and
quarantine, so no identity number enters the log), vacuum with zero retention (a full vacuum:
every file the current version does not reference goes, whatever its age), then purge the log
(checkpoint + cleanup, `tables.purge_history`): no older commit's min/max statistics or
predicates stay on disk. Versions before the erasure can no longer be loaded (time travel fails
rather than return the person). Every table holding personal data is vacuumed and purged when
anyone is erased — earlier versions may hold the person even where the current one does not.

Order, so that an interrupted erasure is completed by the next run: suppression list first (a
re-landing in between drops the person), then landing and bronze (which need the identity
number, read from bronze of the opt-outs source), the other tables, bronze of the opt-outs
source and silver/optouts last; a closing erasure-log row marks the person done. Persons on the
suppression list without that row are erased again by the next erasure, whatever silver says.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..catalog import ID_NUMBER, RAW_CONTENT, SUBJECT_KEY, Location, Table
from ..identity import subject_keys
from ..io import tables
from ..months import last_day
from .landing import FileErased, Targets, erase_from_delivery, erase_from_landing
from ..suppression import (COMPLETE, add_suppressed_findings, add_to_suppression_list,
                           log_erasure, unfinished_erasures)

__all__ = ["ErasureError", "Erasure", "due_optouts", "erase_due", "erase_late_delivery",
           "warehouse_tables"]


class ErasureError(RuntimeError):
    """An erasure could not be completed; rerunning it carries on where it stopped."""


@dataclass
class Erasure:
    """What one erasure did."""

    month: str
    persons: dict[str, dt.date] = field(default_factory=dict)   # subject_key → requested_on
    rows: dict[str, int] = field(default_factory=dict)           # table id → rows removed
    landing: list[FileErased] = field(default_factory=list)
    files_vacuumed: int = 0
    tables_purged: int = 0
    staging_removed: int = 0
    index_rebuilt: bool = False      # the lookup service's index rebuilt without the persons
    #: wall seconds per part: "landing" and each table id (parts run side by side)
    seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# who is due, and their identity numbers
def due_optouts(warehouse, month: str) -> dict[str, dt.date]:
    """subject_key → requested_on of every opt-out in silver/optouts requested on or before the
    last day of `month` (those carried out already are no longer there)."""
    location = catalog.SILVER_OPTOUTS.at(warehouse)
    if not tables.exists(location):
        return {}
    rows = tables.read_arrow(location, columns=["subject_key", "requested_on"]).to_pylist()
    due: dict[str, dt.date] = {}
    for row in rows:
        if row["requested_on"] is not None and row["requested_on"] <= last_day(month):
            key = row["subject_key"]
            due[key] = min(due.get(key, row["requested_on"]), row["requested_on"])
    return due


def _identity_numbers(warehouse, sources: dict, keys: set[str], hmac_key: str) -> dict[str, str]:
    """Upper-case identity number → subject_key of `keys`: from bronze of the opt-outs sources
    (an opt-out row carries the number), else — an erasure interrupted after its opt-out was
    suppressed by a re-landing — from the other bronze tables (every distinct number keyed).
    A key found nowhere in bronze has no rows left there or in landing (landing is rewritten
    before bronze is erased)."""
    found: dict[str, str] = {}
    ordered = sorted(sources.items(), key=lambda item: item[1]["kind"] != "optouts")
    for source_id, conf in ordered:
        if not keys - set(found.values()):
            break
        table = catalog.bronze(source_id, conf["kind"])
        location = table.at(warehouse)
        if ID_NUMBER not in table.personal.values() or not tables.exists(location):
            continue
        numbers = sorted({n.strip().upper() for n in
                          tables.read_arrow(location, columns=["id_number"]).column(0).to_pylist()
                          if n})
        for number, key in zip(numbers, subject_keys(numbers, hmac_key)):
            if key in keys:
                found[number] = key
    return found


#: rows found per (table path, predicate): the scan that finds a table's findings of the persons
#: is the scan that finds the rows to delete — a big table is read once, not twice
Found = dict[tuple[str, str], list[dict]]


def _their_findings(locations: list[Location], keys: set[str], numbers: dict[str, str],
                    found: Found | None = None) -> dict[tuple[str, str], str]:
    """(source_id, record_id) → subject_key of the persons' findings, from every table that
    holds findings with a source_id and record_id next to a personal column (silver, staging,
    bronze, gold lines). A record that another person's version also carries (a correction that
    moved it) is left out: its rows are not only about the erased person — silver/findings keeps
    every version, so the other layers are not searched for that (gold's lines are derived from
    those versions; a full scan of them for it cost most of an erasure). The rows read are kept
    in `found` for _erase_rows."""
    theirs: dict[tuple[str, str], str] = {}
    others: set[tuple[str, str]] = set()
    for location in locations:
        table = location.table
        if not {"source_id", "record_id"} <= set(table.columns) or table.finding_ref:
            continue
        if not tables.exists(location):
            continue
        match = _match(location, keys, numbers, {})
        present = set(tables.arrow_schema(location).names)
        for column, what in table.personal.items():
            if what not in (SUBJECT_KEY, ID_NUMBER) or column not in present:
                continue
            values = keys if what == SUBJECT_KEY else _variants(numbers)
            if not values:
                continue
            if match == _in(column, values) or match == f"({_in(column, values)})":
                rows = _find_rows(location, match, found)    # also the rows _erase_rows deletes
            else:
                rows = tables.find(location, _in(column, values),
                                   ["source_id", "record_id", column]).to_pylist()
            # lines that are about no finding (subject rules, growth, tiers, caps) have none
            rows = [r for r in rows if r["source_id"] is not None and r["record_id"] is not None]
            for row in rows:
                owner = row[column] if what == SUBJECT_KEY else numbers[row[column].upper()]
                theirs[(row["source_id"], row["record_id"])] = owner
            if what == SUBJECT_KEY and rows and table.id == catalog.SILVER_FINDINGS.id:
                records = {r["record_id"] for r in rows}
                shared = tables.find(location, f"{_in('record_id', records)} AND NOT "
                                               f"{_in(column, keys)}",
                                     ["source_id", "record_id"]).to_pylist()
                others |= {(r["source_id"], r["record_id"]) for r in shared}
    return {ref: key for ref, key in theirs.items() if ref not in others}


def _wanted(location: Location) -> list[str]:
    """The columns _erase_rows reads of a table's rows: partitions, key, personal columns and
    the finding a row is about."""
    table = location.table
    present = set(tables.arrow_schema(location).names)
    return [c for c in _unique([*table.partitions, *table.key, *table.personal,
                                *table.finding_ref]) if c in present]


def _find_rows(location: Location, match: str, found: Found | None) -> list[dict]:
    """The rows of `location` matching `match` (the _wanted columns), read once per erasure."""
    if found is not None and (location.path, match) in found:
        return found[(location.path, match)]
    columns = _unique([*_wanted(location), "source_id", "record_id"]) \
        if {"source_id", "record_id"} <= set(tables.arrow_schema(location).names) \
        else _wanted(location)
    rows = tables.find(location, match, columns).to_pylist()
    if found is not None:
        found[(location.path, match)] = rows
    return rows


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(tables.sql_literal(v) for v in sorted(values))})"


def _variants(numbers: dict[str, str]) -> set[str]:
    """The numbers as stored: upper case, and with a lower-case `x` check character."""
    return {v for n in numbers for v in (n, n.lower())}


# ---------------------------------------------------------------------------------------------
# the tables
def warehouse_tables(settings) -> list[Location]:
    """Every Delta table of the warehouse: the catalogue's (bronze per configured source, staging
    per kind, the fixed tables), then any other Delta table on disk under the warehouse, with
    `subject_key` / `id_number` columns taken as personal data by name."""
    known = [table.at(settings) for table in catalog.all_tables(settings.sources)]
    paths = {os.path.normpath(loc.path) for loc in known}
    extra = []
    for path in _delta_tables_on_disk(Path(settings.warehouse)):
        if os.path.normpath(path) in paths:
            continue
        schema = tables.arrow_schema(path)
        personal = {c: {"subject_key": SUBJECT_KEY, "id_number": ID_NUMBER}[c]
                    for c in schema.names if c in ("subject_key", "id_number")}
        rel = os.path.relpath(path, settings.warehouse).replace(os.sep, "/")
        layer, _, name = rel.partition("/")
        extra.append(Location(Table(layer, name or layer, schema,
                                    partitions=tuple(tables.partition_columns(path)),
                                    personal=personal,
                                    description="not in the catalogue"), path))
    return known + extra


def _delta_tables_on_disk(root: Path) -> list[str]:
    found = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, _files in os.walk(root):
        if "_delta_log" in dirnames:
            found.append(dirpath)
            dirnames[:] = []        # a table's folders are its own
        else:
            dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
    return sorted(found)


def _has_people(location: Location) -> bool:
    return bool(location.table.personal or location.table.finding_ref)


def _match(location: Location, keys: set[str], numbers: dict[str, str],
           findings: dict[tuple[str, str], str]) -> str | None:
    """The SQL filter for the persons' rows of one table (None: nothing to look for)."""
    table = location.table
    present = set(tables.arrow_schema(location).names)
    variants = _variants(numbers)
    parts = []
    for column, what in table.personal.items():
        if column not in present:
            continue
        if what == SUBJECT_KEY and keys:
            parts.append(_in(column, keys))
        elif what == ID_NUMBER and variants:
            parts.append(_in(column, variants))
        elif what == RAW_CONTENT and variants:
            parts += [f"strpos({column}, {tables.sql_literal(v)}) > 0" for v in sorted(variants)]
    if table.finding_ref and findings and set(table.finding_ref) <= present:
        source_column, record_column = table.finding_ref
        by_source = defaultdict(set)
        for source_id, record_id in findings:
            by_source[source_id].add(record_id)
        for source_id, records in sorted(by_source.items()):
            parts.append(f"({source_column} = {tables.sql_literal(source_id)} AND "
                         f"{_in(record_column, records)})")
    return " OR ".join(f"({p})" for p in parts) if parts else None


def _owner(row: dict, table: Table, keys, numbers, findings) -> str:
    for column, what in table.personal.items():
        value = row.get(column)
        if not isinstance(value, str):
            continue
        if what == SUBJECT_KEY and value in keys:
            return value
        if what == ID_NUMBER and value.upper() in numbers:
            return numbers[value.upper()]
        if what == RAW_CONTENT:
            for number, key in numbers.items():
                if number in value.upper():
                    return key
    if table.finding_ref:
        return findings.get((row.get(table.finding_ref[0]), row.get(table.finding_ref[1])), "?")
    return "?"


def _unique(columns) -> list[str]:
    return list(dict.fromkeys(columns))


def _predicate(table: Table, rows: list[dict], by_key_column: str | None,
               literal=tables.sql_literal) -> str:
    """The delete predicate for `rows`: per partition, `<subject key column> IN (…)` for rows
    found by their subject key, else the row keys (`line IN (…)` per file for bronze and
    quarantine) — never an identity number. `literal`: the SQL dialect's (delta-rs's, or
    tables.spark_sql_literal for delta-spark)."""
    def equal(column, value):
        return f"{column} IS NULL" if value is None else f"{column} = {literal(value)}"

    groups: dict[tuple, set] = defaultdict(set)
    key = [k for k in table.key]
    for row in rows:
        if by_key_column and row.get(by_key_column) is not None and row["_by_key"]:
            group_columns, last = list(table.partitions), by_key_column
        elif key:
            group_columns, last = _unique([*table.partitions, *key[:-1]]), key[-1]
        else:                        # a table outside the catalogue: its personal column
            last = next(c for c in table.personal if row.get(c) is not None)
            group_columns = list(table.partitions)
        group = (tuple((c, row.get(c)) for c in group_columns), last)
        groups[group].add(row.get(last))
    clauses = []
    for (fixed, last), values in sorted(groups.items(), key=repr):
        terms = [equal(c, v) for c, v in fixed]
        listed = ", ".join(literal(v) for v in sorted(values, key=repr))
        terms.append(f"{last} IN ({listed})")
        clauses.append("(" + " AND ".join(terms) + ")")
    return " OR ".join(clauses)


def _erase_rows(location: Location, keys: set[str], numbers: dict[str, str],
                findings: dict[tuple[str, str], str], found: Found | None = None,
                cluster_spark=None) -> tuple[Counter, str]:
    """Delete the persons' rows of one table in one commit (rows already read by
    _their_findings taken from `found`); by delta-spark on the session `cluster_spark()`
    gives (a cluster's, asked for only when there are rows to delete) when that session has
    delta-spark, else by delta-rs here. → (rows removed per subject_key, the engine)."""
    if not tables.exists(location):
        return Counter(), "delta-rs"
    match = _match(location, keys, numbers, findings)
    if match is None:
        return Counter(), "delta-rs"
    table = location.table
    present = set(tables.arrow_schema(location).names)
    rows = _find_rows(location, match, found)
    if not rows:
        return Counter(), "delta-rs"
    key_column = next((c for c, what in table.personal.items()
                       if what == SUBJECT_KEY and c in present), None)
    for row in rows:
        row["_by_key"] = key_column is not None and row.get(key_column) in keys
    owners = Counter(_owner(row, table, keys, numbers, findings) for row in rows)
    from ..io.spark import has_delta_spark

    spark = cluster_spark() if cluster_spark is not None else None
    engine = "delta-spark" if spark is not None and has_delta_spark(spark) else "delta-rs"
    if engine == "delta-spark":
        deleted = tables.delete_where_on_spark(spark, location, _predicate(
            table, rows, key_column, tables.spark_sql_literal)).get("num_deleted_rows")
    elif table.file_rows and key_column and all(row["_by_key"] for row in rows):
        deleted = _rewrite_key_range_files(location, key_column, keys)
    else:
        deleted = tables.delete_where(location, _predicate(table, rows, key_column)).get(
            "num_deleted_rows")
    if deleted != len(rows):
        raise ErasureError(f"{table.id}: found {len(rows)} rows of the persons being erased but "
                           f"deleted {deleted}; rerun the erasure")
    return owners, engine


def _rewrite_key_range_files(location: Location, column: str, keys: set[str]) -> int:
    """Delete the persons' rows of a table kept in files of subject-key ranges (the catalogue's
    `file_rows`: silver/population) in one commit that replaces only the files holding them,
    each by its rows less the persons' (sorted, cut at file_rows: tables.replace_files). A
    delta-rs DELETE would merge every file it touches into one new file whose key range spans
    them all, so that each later erasure rewrites more. No predicate enters the log.
    → rows deleted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def may_hold(f: tables.DataFile) -> bool:
        low, high = f.min.get(column), f.max.get(column)
        if not isinstance(low, str) or not isinstance(high, str):
            return True          # no statistics: read it
        # a truncated maximum (a file delta-rs wrote) is a prefix of the true maximum
        return any(low <= key and key[:len(high)] <= high for key in keys)

    wanted = pa.array(sorted(keys), pa.string())
    read = tables.snapshot(location)      # a concurrent change of these files refuses the commit
    candidates = [f for f in read.files if may_hold(f)]
    # First the key column alone, filtered in the scan: which files hold the persons. Then the
    # files holding them, a partition at a time, rewritten without them in ONE commit: memory is
    # a partition's touched files, not the table (187 persons touch every file of 35 months).
    theirs_in: dict[str, int] = {}
    for start in range(0, len(candidates), 256):
        keys_read = tables.read_files(location, candidates[start:start + 256], columns=[column],
                                      filter=pc.field(column).isin(wanted), with_file=True)
        for path, count in zip(*pc.value_counts(keys_read[tables.DATA_FILE]).flatten()):
            theirs_in[path.as_py()] = count.as_py()
    if not theirs_in:
        return 0
    touched = [f for f in candidates if f.path in theirs_in]
    by_partition: dict[tuple, list] = {}
    for f in touched:
        by_partition.setdefault(tuple(sorted(f.partition.items(), key=lambda kv: kv[0])),
                                []).append(f)

    def kept_rows():
        for files in by_partition.values():
            rows = tables.read_files(location, files)
            yield rows.filter(pc.invert(pc.is_in(rows[column], value_set=wanted))) \
                .select(location.table.columns)

    tables.replace_files(kept_rows(), location, files=touched, read_version=read.version)
    return sum(theirs_in.values())


def _order(location: Location) -> int:
    """Landing-dependent tables first, the opt-out tables last (see the module docstring)."""
    table = location.table
    if table.id == catalog.SILVER_OPTOUTS.id:
        return 3
    if table.layer == "bronze" and "requested_on" in table.columns:
        return 2
    return 0 if table.layer == "bronze" else 1


def erase_due(settings, month: str, run_id: str, cluster_spark=None) -> Erasure:
    """Carry out every opt-out requested on or before the last day of `month` that is still in
    silver/optouts (see the module docstring). `cluster_spark`: a function giving a session on
    a cluster (conf names one: privacy.task.erase), called once a table Spark writes (the
    catalogue's `spark_written`: gold, the sandbox) has rows to delete; with delta-spark on it
    those deletes run on the executors. Everything else — and everything without it, or on a
    cluster without delta-spark — is delta-rs's here. Raises ErasureError when a table does not
    delete what was found (a concurrent writer): rerunning completes it."""
    from ..io.lock import EXCLUSIVE, warehouse_lock

    # no writer beside it: the zero-retention vacuum and the leftovers of any age below would
    # delete files a live writer has yet to commit (a no-op when the caller holds it already)
    with warehouse_lock(settings.warehouse, f"erasure of {month} (run {run_id})", EXCLUSIVE):
        return _erase_due(settings, month, run_id, cluster_spark)


def _erase_due(settings, month: str, run_id: str, cluster_spark=None) -> Erasure:
    for location in warehouse_tables(settings):     # a purge killed half-way: history kept again
        tables.restore_log_retention(location)
    done = Erasure(month)
    done.persons = {**unfinished_erasures(settings), **due_optouts(settings, month)}
    if not done.persons:
        return done
    keys = set(done.persons)
    now = dt.datetime.now(dt.timezone.utc)
    began = time.perf_counter()
    numbers = _identity_numbers(settings, settings.sources, keys, settings.subject_key)
    add_to_suppression_list(settings, done.persons, month, now)

    locations = [loc for loc in warehouse_tables(settings) if not loc.table.erasure_record]
    found: Found = {}
    findings = _their_findings(locations, keys, numbers, found)
    # before anything is deleted: an appeal about these findings re-delivered later is dropped
    add_suppressed_findings(settings, findings, settings.subject_key, month, now)
    done.seconds["numbers and findings"] = round(time.perf_counter() - began, 2)

    def entry(owner: str, place: str, rows: int, detail: str) -> dict:
        return {"subject_key": owner, "requested_on": done.persons.get(owner), "erased_at": now,
                "erased_month": month, "run_id": run_id, "place": place, "rows_removed": rows,
                "detail": detail}

    kinds = {kind for kind in catalog.EXTRACT_KINDS
             if catalog.bronze("x", kind).personal or catalog.bronze("x", kind).finding_ref}
    from ..io.spool import remove_spool_leftovers

    # a killed landing's spools hold delivered rows in clear (the erase step holds the lock
    # exclusively, so no landing is using one)
    done.staging_removed += len(remove_spool_leftovers(settings.warehouse))
    if cluster_spark is not None:       # started once, and only if a Spark table needs it
        cluster_spark = _once(cluster_spark)

    def erase_table(location: Location) -> tuple[Counter, str, int, int]:
        """One table: its rows deleted, staging leftovers removed, vacuumed, history purged.
        → (rows per owner, engine, staging files removed, files vacuumed)."""
        started = time.perf_counter()
        owners, engine = _erase_rows(location, keys, numbers, findings, found,
                                     cluster_spark if location.table.spark_written else None)
        staged = len(tables.remove_staging_leftovers(location))
        vacuumed = -1
        if tables.exists(location) and (_has_people(location) or owners):
            vacuumed = len(tables.vacuum(location, retention_hours=0))
            tables.purge_history(location)
        done.seconds[location.table.id] = round(time.perf_counter() - started, 2)
        return owners, engine, staged, vacuumed

    def record(location: Location, result: tuple[Counter, str, int, int]) -> None:
        owners, engine, staged, vacuumed = result
        done.staging_removed += staged
        if vacuumed >= 0:
            done.files_vacuumed += vacuumed
            done.tables_purged += 1
        if owners:      # logged table by table: an interrupted erasure keeps what it did
            done.rows[location.table.id] = sum(owners.values())
            log_erasure(settings, [
                entry(owner, location.table.id, rows,
                      ("rows deleted by delta-spark on the cluster" if engine == "delta-spark"
                       else "rows deleted") + "; files vacuumed (zero retention); log purged")
                for owner, rows in sorted(owners.items())])

    # The tables other than bronze (_order 1) depend neither on landing nor on one another, and
    # each is I/O plus Arrow/delta-rs work outside the GIL: they run beside landing's rewrite, a
    # worker per core. Bronze follows landing (a person whose number is gone from bronze must be
    # gone from landing: _identity_numbers); the opt-out tables go last, in order. The log is
    # written by this thread alone, table by table as each one finishes.
    ordered = sorted(locations, key=_order)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        started = time.perf_counter()
        landing_done = pool.submit(erase_from_landing, settings.landing, settings.sources,
                                   Targets(numbers, findings), kinds)
        running = {pool.submit(erase_table, loc): loc for loc in ordered if _order(loc) == 1}
        failed: BaseException | None = None
        try:
            done.landing = landing_done.result()
            done.seconds["landing"] = round(time.perf_counter() - started, 2)
            log_erasure(settings, _landing_log(done.landing, done.persons, now, month, run_id,
                                               "delivery file rewritten without the rows"))
            running.update({pool.submit(erase_table, loc): loc
                            for loc in ordered if _order(loc) == 0})
        except BaseException as exc:        # bronze waits for landing: it is not started
            failed = exc
        for future in as_completed(running):    # what finishes is logged, failing or not
            if future.exception() is not None:
                failed = failed or future.exception()
            else:
                record(running[future], future.result())
        if failed is not None:
            raise failed
    for location in [loc for loc in ordered if _order(loc) >= 2]:
        record(location, erase_table(location))
    began = time.perf_counter()
    done.index_rebuilt = _refresh_lookup_index(settings)
    done.seconds["lookup index"] = round(time.perf_counter() - began, 2)
    log_erasure(settings, [entry(owner, COMPLETE, 0, f"erasure complete: {len(locations)} "
                                                     f"tables, their history and the landing zone"
                                 + ("; lookup index rebuilt" if done.index_rebuilt else ""))
                           for owner in sorted(keys)])
    return done


def _once(make):
    """`make()` called at most once, whichever of the erasure's threads asks first."""
    lock = threading.Lock()
    made = []

    def once():
        with lock:
            if not made:
                made.append(make())
            return made[0]
    return once


def _refresh_lookup_index(settings) -> bool:
    """The lookup service's serving index is derived from the tables just erased: when there is
    one, its parts holding the persons are rebuilt now (and the replaced tables dropped), so
    the index does not keep them until the service's next refresh — or for good, when no
    service runs. The lookup audit log is kept (README "Lookups")."""
    from sqlalchemy.engine import make_url

    from ..lookup.index import build_index
    from ..lookup.store import index_url

    url = make_url(index_url(settings))
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return False
    build_index(settings)
    return True


def _landing_log(erased: list[FileErased], requested: dict[str, dt.date], now: dt.datetime,
                 month: str, run_id: str, what: str) -> list[dict]:
    rows = []
    for result in erased:
        manifest = (f"; manifest.json row_count {result.manifest[0]} → {result.manifest[1]}"
                    if result.manifest else "")
        for owner, count in sorted(result.owners.items()):
            rows.append({"subject_key": owner, "requested_on": requested.get(owner),
                         "erased_at": now, "erased_month": month, "run_id": run_id,
                         "place": result.place, "rows_removed": count,
                         "detail": f"{what}{manifest}"})
    return rows


#: the owner of an appeal dropped at landing: it names an erased person's finding, not the person
_APPEALED = "appeal about an erased person's finding"


def erase_late_delivery(settings, delivery, numbers: dict[str, str], month: str,
                        run_id: str, appealed: set[tuple[str, str]] = frozenset()
                        ) -> list[FileErased]:
    """A delivery that arrived after its persons were erased (a re-delivery, a late file):
    landing has dropped their rows (citycredit.ingest.suppress); the delivery files lose them
    too, and the erasure log says so. `numbers`: upper-case identity number → subject_key;
    `appealed`: (source_id, record_id) of erased persons' findings that dropped appeals named
    (logged without a subject key: an appeal does not say whose finding it is about)."""
    from ..suppression import suppression_list

    conf = settings.sources[delivery.source_id]
    erased = erase_from_delivery(Path(delivery.path), delivery.source_id, conf,
                                 Targets(numbers, {ref: _APPEALED for ref in appealed}))
    requested = {r["subject_key"]: r["requested_on"] for r in suppression_list(settings)}
    rows = _landing_log(erased, requested, dt.datetime.now(dt.timezone.utc), month, run_id,
                        "late delivery rewritten without the suppressed rows")
    for row in rows:
        if row["subject_key"] == _APPEALED:
            row["subject_key"] = None
            row["detail"] = row["detail"].replace(
                "the suppressed rows", "the appeals about erased persons' findings")
    log_erasure(settings, rows)
    return erased
