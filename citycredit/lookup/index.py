"""The serving index: what the lookup service answers from, built once per published version so
that no request ever scans a Delta table (issue "Lookups" item 3).

A *generation* of the index is three tables built from one version of each source:

  lk<N>_scores    gold/published_scores: per scheme, its latest published month — subject_key,
                  scheme, score_month, score, grade, grade_label (key: subject_key, scheme)
  lk<N>_lines     gold/score_lines of those (scheme, month)s, of the run published (never a
                  refused or unpublished run's: publish.published), for the person's own report:
                  the finding lines counted, deduplicated, expired or masked, and the tier / cap
                  rows
  lk<N>_consents  silver/consents, the current version of every consent

plus `lk_generations` (the Delta versions and months each generation was built from) and
`lk_current` (the generation being served). A build writes generation N+1 in one transaction and
points `lk_current` at it; readers see the old or the new generation, never a mix. Generation N
stays DRAIN_SECONDS for requests in flight, then is dropped (SQLite: secure_delete, so an erased
person's rows do not linger in free pages). The service rebuilds when any of the three
Delta tables has a new version — a publication, a re-scored month, new consents, an erasure.

Store: SQLite under the warehouse by default (one file, no server, ~30 µs a point query);
PostgreSQL by URL in production (several service replicas share one index). Both through
SQLAlchemy Core, one code path.

CLI: `python -m citycredit.lookup.index [--force]` builds the index of the configured warehouse
(the service runs this in a child process, so its own memory stays small).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from deltalake import DeltaTable

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from ..publish.published import published_runs
from .consents import Consent
from .store import DriverStatement, checkpoint, index_url, make_engine, writer_lock

#: finding lines of gold/score_lines a person's report shows (SPEC §5, docs/contracts.md)
REPORT_STATUSES = ("counted", "deduplicated", "expired", "masked")
#: adjustment lines (line_type) that make the points add up to the score
ADJUSTMENT_LINES = ("tier", "rule_cap", "dimension_cap")
SOURCES = {"published": catalog.PUBLISHED_SCORES, "lines": catalog.SCORE_LINES,
           "consents": catalog.SILVER_CONSENTS}
BATCH_ROWS = 50_000
#: how long a reader trusts its cached lk_current before reading it again
POINTER_SECONDS = 1.0
#: how long a replaced generation stays for requests in flight before it is dropped
DRAIN_SECONDS = 3 * POINTER_SECONDS

_META = sa.MetaData()
GENERATIONS = sa.Table(
    "lk_generations", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("versions", sa.Text, nullable=False),     # JSON {published, lines, consents}
    sa.Column("months", sa.Text, nullable=False),       # JSON {scheme: score_month}
    sa.Column("row_counts", sa.Text, nullable=False),   # JSON {scores, lines, consents}
    sa.Column("built_at", sa.String(40), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False))
#: a generation's parts ("scores:<scheme>", "lines:<scheme>", "consents"): the table serving
#: each, its rows, and a digest of the Delta data files it was built from. A part whose files
#: are unchanged at the next build keeps its table (no read, no copy); only changed parts are
#: built, so an unchanged part's table serves several generations in turn.
PARTS = sa.Table(
    "lk_parts", _META,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("part", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(96), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False))
CURRENT = sa.Table(
    "lk_current", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False))


class IndexNotBuilt(RuntimeError):
    """No generation of the serving index exists yet (`citycredit serve` builds one at start)."""


@dataclass(frozen=True)
class Generation:
    id: int
    versions: dict          # Delta version per source (-1: no table)
    months: dict            # scheme → the latest published score month served
    row_counts: dict
    built_at: str
    seconds: float
    reused: tuple = ()      # parts kept unchanged from the previous generation (this build)
    tables: dict = field(default_factory=dict)   # part → table (empty: built before parts)

    def table(self, part: str) -> str:
        """The table serving `part` ("scores:<scheme>", "lines:<scheme>", "consents"); a
        generation built before parts existed has one table per kind for every scheme."""
        if self.tables or not self.months:      # no months: nothing published, no parts yet
            return self.tables.get(part, "")
        return f"lk{self.id}_{part.partition(':')[0]}"

    def parts(self) -> list[str]:
        if self.tables or not self.months:
            return list(self.tables)
        return ["consents", *[f"{kind}:{scheme}" for scheme in self.months
                              for kind in ("scores", "lines")]]


def _tables(generation: int) -> tuple[sa.Table, sa.Table, sa.Table]:
    """A generation's tables as built before parts (one per kind): dropped when replaced."""
    return (_part_table("scores", f"lk{generation}_scores"),
            _part_table("lines", f"lk{generation}_lines"),
            _part_table("consents", f"lk{generation}_consents"))


def _part_table(kind: str, name: str) -> sa.Table:
    """A part's table (kind scores | lines | consents), without its index (see _part_index:
    built after the load, one sort instead of millions of random B-tree inserts)."""
    meta = sa.MetaData()
    key = lambda: sa.Column("subject_key", sa.String(64), nullable=False)  # noqa: E731
    if kind == "scores":
        return sa.Table(
        name, meta, key(),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("score_month", sa.String(7), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("grade_label", sa.String(32), nullable=False))
    if kind == "lines":
        return sa.Table(
        name, meta, key(),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        *[sa.Column(name, sa.String) for name in (
            "line_type", "status", "source_id", "record_id", "item_code", "level", "quantity",
            "rule_id", "dimension", "finding_points", "points", "deduplicated_by")],
        sa.Column("occurred_on", sa.Date), sa.Column("last_valid_day", sa.Date))
    return sa.Table(
        name, meta, key(),
        sa.Column("grantee", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("consent_id", sa.String, nullable=False),
        sa.Column("granted_on", sa.Date, nullable=False),
        sa.Column("expires_on", sa.Date), sa.Column("revoked_on", sa.Date))


def _part_index(kind: str, table: sa.Table) -> sa.Index:
    c = table.c
    if kind == "scores":
        return sa.Index(f"{table.name}_key", c.subject_key, c.scheme, unique=True)
    if kind == "lines":
        return sa.Index(f"{table.name}_key", c.subject_key, c.scheme, c.seq, unique=True)
    return sa.Index(f"{table.name}_person", c.subject_key, c.grantee, c.purpose)


def _part_table_name(generation: int, part: str) -> str:
    kind, _, scheme = part.partition(":")
    return f"lk{generation}_{kind}" + (f"_{re.sub(r'[^a-z0-9_]', '_', scheme.lower())}"
                                       if scheme else "")


def source_versions(settings: Settings) -> dict[str, int]:
    """The current Delta version of each table the index is built from (-1: no table yet)."""
    out = {}
    for name, table in SOURCES.items():
        version = tables.version(table.at(settings))
        out[name] = -1 if version is None else int(version)
    return out


def _generation(row, tables: dict | None = None) -> Generation:
    return Generation(row.id, json.loads(row.versions), json.loads(row.months),
                      json.loads(row.row_counts), row.built_at, row.seconds,
                      tables=dict(tables or {}))


def current_generation(connection: sa.Connection) -> Generation | None:
    if not sa.inspect(connection).has_table(CURRENT.name):
        return None
    row = connection.execute(
        sa.select(GENERATIONS).join(CURRENT, CURRENT.c.generation == GENERATIONS.c.id)).first()
    if row is None:
        return None
    tables = {}
    if sa.inspect(connection).has_table(PARTS.name):
        tables = dict(connection.execute(sa.select(PARTS.c.part, PARTS.c.table_name)
                                         .where(PARTS.c.generation == row.id)).all())
    return _generation(row, tables)


# ---------------------------------------------------------------------------------------------
# building

def _batches(location, version: int, columns: list[str], where) -> Iterator[pa.RecordBatch]:
    yield from tables.scan_batches(location, columns, where, version=version,
                                   batch_size=BATCH_ROWS)


def _insert(connection: sa.Connection, table: sa.Table, batches) -> int:
    """Arrow batches → rows of `table`, by the driver's executemany on the transaction's own
    connection (SQLAlchemy's per-row parameter processing would take 20× longer)."""
    names = [c.name for c in table.columns]
    insert = DriverStatement(table.insert().values({n: sa.bindparam(n) for n in names}),
                             connection.dialect)
    order = list(insert.order) if insert.order is not None else None
    cursor = connection.connection.dbapi_connection.cursor()
    rows = 0
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            columns = {n: _driver_values(batch.column(n), connection.dialect) for n in names}
            if order is not None:
                cursor.executemany(insert.sql, list(zip(*(columns[n] for n in order))))
            else:
                cursor.executemany(insert.sql, [dict(zip(names, values))
                                                for values in zip(*(columns[n] for n in names))])
            rows += batch.num_rows
    finally:
        cursor.close()
    return rows


def _driver_values(column: pa.Array, dialect) -> list:
    """A column as the driver takes it: dates as ISO text for SQLite (what SQLAlchemy's Date
    type stores there), Python dates elsewhere."""
    if pa.types.is_date(column.type) and dialect.name == "sqlite":
        column = pc.strftime(column, format="%Y-%m-%d")
    return column.to_pylist()


def latest_months(settings: Settings, version: int) -> dict[str, str]:
    """scheme → the latest score month published at this version of gold/published_scores."""
    if version < 0:
        return {}
    months: dict[str, str] = {}
    for part in DeltaTable(catalog.PUBLISHED_SCORES.at(settings).path, version=version).partitions():
        months[part["scheme"]] = max(months.get(part["scheme"], ""), part["score_month"])
    return dict(sorted(months.items()))


def _as_text(batch: pa.RecordBatch, columns: tuple[str, ...]) -> pa.RecordBatch:
    """Decimal columns as their exact text (no binary floats in the index)."""
    arrays = [pc.cast(batch.column(name), pa.string()) if name in columns else batch.column(name)
              for name in batch.schema.names]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _files_digest(paths) -> str:
    return hashlib.sha256("\n".join(sorted(paths)).encode("utf-8")).hexdigest()


def fingerprints(settings: Settings, versions: dict, months: dict,
                 runs: dict | None = None) -> dict[str, str]:
    """part → digest of the Delta data files (paths: immutable, so the same files are the same
    rows) a generation reads for it at `versions`: per scheme its latest month's partition of
    gold/published_scores and the published run's partition of gold/score_lines (`runs`:
    publish.published.published_runs at the published version), and silver/consents whole."""
    runs = published_runs(settings, versions["published"]) if runs is None else runs
    out: dict[str, str] = {}
    for part, name, key in (("scores", "published", SOURCES["published"]),
                            ("lines", "lines", SOURCES["lines"])):
        if versions[name] < 0:
            continue
        actions = pa.table(DeltaTable(key.at(settings).path,
                                      version=versions[name]).get_add_actions(flatten=True))
        run_ids = (actions.column("partition.run_id").to_pylist()
                   if part == "lines" and "partition.run_id" in actions.column_names
                   else [None] * actions.num_rows)
        columns = actions.select(["path", "partition.scheme", "partition.score_month"]).to_pydict()
        by_part: dict[tuple, list] = {}
        for path, scheme, month, run_id in zip(columns["path"], columns["partition.scheme"],
                                               columns["partition.score_month"], run_ids):
            if part == "lines" and runs.get((scheme, month)) not in (None, run_id):
                continue                          # another run's lines: never shown
            by_part.setdefault((scheme, month), []).append(path)
        for scheme, month in months.items():
            out[f"{part}:{scheme}"] = _files_digest([month, *by_part.get((scheme, month), [])])
    if versions["consents"] >= 0:
        actions = pa.table(DeltaTable(SOURCES["consents"].at(settings).path,
                                      version=versions["consents"]).get_add_actions(flatten=True))
        out["consents"] = _files_digest(actions.column("path").to_pylist())
    return out


def _load_part(connection, settings: Settings, versions: dict, months: dict, part: str,
               table: sa.Table, runs: dict | None = None) -> int:
    """One part's rows from its Delta table (at the generation's version) into `table`; the
    lines of the published run only (`runs`: as fingerprints takes them)."""
    kind, _, scheme = part.partition(":")
    if kind == "consents":
        return _insert(connection, table, _batches(
            catalog.SILVER_CONSENTS.at(settings), versions["consents"],
            list(table.columns.keys()), pc.field("known_until").is_null()))
    where = (pc.field("scheme") == scheme) & (pc.field("score_month") == months[scheme])
    if kind == "scores":
        return _insert(connection, table, _batches(
            catalog.PUBLISHED_SCORES.at(settings), versions["published"],
            list(table.columns.keys()), where))
    runs = published_runs(settings, versions["published"]) if runs is None else runs
    if runs.get((scheme, months[scheme])) is not None:
        where = where & (pc.field("run_id") == runs[(scheme, months[scheme])])
    wanted = where & (pc.field("status").isin(REPORT_STATUSES)
                      | pc.field("line_type").isin(ADJUSTMENT_LINES))
    names = [c for c in table.columns.keys() if c != "seq"]
    rows = 0

    def numbered(batches):
        nonlocal rows
        for batch in batches:
            batch = _as_text(batch, ("quantity", "finding_points", "points"))
            seq = pa.array(range(rows, rows + batch.num_rows), pa.int64())
            rows += batch.num_rows
            yield batch.append_column("seq", seq)
    _insert(connection, table, numbered(_batches(
        catalog.SCORE_LINES.at(settings), versions["lines"], names, wanted)))
    return rows


def build_index(settings: Settings | None = None, force: bool = False,
                engine: sa.Engine | None = None) -> Generation:
    """Build a new generation of the serving index when a source table has a new Delta version
    (or `force`), and serve it; return the generation served. One builder at a time (the
    writer lock); a second one waits, then finds the index current.

    Incremental: a part (a scheme's scores, its lines, the consents) whose Delta data files
    are those the current generation was built from keeps its table; only the changed parts
    are read from Delta and indexed (`force` rebuilds every part)."""
    settings = settings or load_settings()
    own = engine is None
    engine = engine or make_engine(index_url(settings), writer=True)
    try:
        versions = source_versions(settings)
        started = time.perf_counter()
        with engine.begin() as connection:
            writer_lock(connection, "index")
            _META.create_all(connection)
            current = current_generation(connection)
            if current is not None and current.versions == versions and not force \
                    and (current.tables or not current.months):
                return current
            generation = (connection.scalar(sa.select(sa.func.max(GENERATIONS.c.id))) or 0) + 1
            months = latest_months(settings, versions["published"])
            runs = published_runs(settings, versions["published"])
            prints = fingerprints(settings, versions, months, runs)
            before = {}
            if current is not None and current.tables and not force:
                before = {r.part: r for r in connection.execute(
                    sa.select(PARTS).where(PARTS.c.generation == current.id)).all()}
            counts = {"scores": 0, "lines": 0, "consents": 0}
            parts, reuse = [], []
            for part, fingerprint in sorted(prints.items()):
                kind = part.partition(":")[0]
                kept = before.get(part)
                if kept is not None and kept.fingerprint == fingerprint:
                    name, rows = kept.table_name, kept.row_count
                    reuse.append(part)
                else:
                    name = _part_table_name(generation, part)
                    table = _part_table(kind, name)
                    table.create(connection)
                    rows = _load_part(connection, settings, versions, months, part, table,
                                      runs)
                    _part_index(kind, table).create(connection)
                counts[kind] += rows
                parts.append({"generation": generation, "part": part, "table_name": name,
                              "row_count": rows, "fingerprint": fingerprint})
            if parts:
                connection.execute(PARTS.insert(), parts)
            built = Generation(generation, versions, months, counts,
                               dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               round(time.perf_counter() - started, 2), tuple(reuse),
                               {p["part"]: p["table_name"] for p in parts})
            connection.execute(GENERATIONS.insert().values(
                id=generation, versions=json.dumps(versions), months=json.dumps(months),
                row_counts=json.dumps(counts), built_at=built.built_at, seconds=built.seconds))
            if connection.execute(CURRENT.update().values(generation=generation)).rowcount == 0:
                connection.execute(CURRENT.insert().values(id=1, generation=generation))
        # requests in flight finish on the previous generation (readers re-read the pointer
        # every POINTER_SECONDS); then it goes, so that an erased person leaves the index too
        time.sleep(DRAIN_SECONDS if current is not None else 0)
        with engine.begin() as connection:
            writer_lock(connection, "index")
            serving = set(built.tables.values())
            for (old,) in connection.execute(sa.select(GENERATIONS.c.id)
                                             .where(GENERATIONS.c.id < generation)).all():
                names = {r.table_name for r in connection.execute(
                    sa.select(PARTS.c.table_name).where(PARTS.c.generation == old)).all()}
                names |= {t.name for t in _tables(old)}     # built before parts existed
                for name in sorted(names - serving):
                    connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
                connection.execute(GENERATIONS.delete().where(GENERATIONS.c.id == old))
                connection.execute(PARTS.delete().where(PARTS.c.generation == old))
        checkpoint(engine)
        return built
    finally:
        if own:
            engine.dispose()


# ---------------------------------------------------------------------------------------------
# reading

def _day(value) -> dt.date | None:
    """A Date column as the driver returns it (SQLite: ISO text) → date."""
    return value if value is None or isinstance(value, dt.date) else dt.date.fromisoformat(value)


class Reader:
    """Point queries against one generation, on one connection (one request)."""

    def __init__(self, cursor, generation: Generation, queries: dict[str, DriverStatement]):
        self.cursor, self.generation, self._q = cursor, generation, queries

    def score(self, scheme: str, subject_key: str) -> dict | None:
        query = self._q.get(f"scores:{scheme}")
        if query is None:                    # nothing published in this scheme
            return None
        rows = query.run(self.cursor, k=subject_key, s=scheme)
        return dict(zip(query.columns, rows[0])) if rows else None

    def consents(self, subject_key: str, grantee: str, purpose: str) -> list[Consent]:
        query = self._q.get("consents")
        if query is None:
            return []
        rows = query.run(self.cursor, k=subject_key, g=grantee, p=purpose)
        return [Consent(c, _day(g), _day(e), _day(r)) for c, g, e, r in rows]

    def lines(self, scheme: str, subject_key: str) -> list[dict]:
        query = self._q.get(f"lines:{scheme}")
        if query is None:
            return []
        out = []
        for row in query.run(self.cursor, k=subject_key, s=scheme):
            line = dict(zip(query.columns, row))
            line["occurred_on"], line["last_valid_day"] = \
                _day(line["occurred_on"]), _day(line["last_valid_day"])
            out.append(line)
        return out


class ServingIndex:
    """The service's (and `citycredit lookup`'s) view of the index: the current generation,
    re-read at most every POINTER_SECONDS, and point queries against it on one driver
    connection per thread."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pointer: tuple[float, Generation | None] = (0.0, None)
        self._queries: dict[int, dict] = {}

    def generation(self, fresh: bool = False) -> Generation | None:
        at, generation = self._pointer
        if fresh or time.monotonic() - at > POINTER_SECONDS:
            with self.engine.connect() as connection:
                generation = current_generation(connection)
            self._pointer = (time.monotonic(), generation)
        return generation

    def _prepared(self, generation: Generation) -> dict[str, DriverStatement]:
        """The point queries of a generation, by part ("scores:<scheme>", "lines:<scheme>",
        "consents"), compiled once."""
        queries = self._queries.get(generation.id)
        if queries is None:
            k, s = sa.bindparam("k"), sa.bindparam("s")
            statements = {}
            for part in generation.parts():
                kind = part.partition(":")[0]
                table = _part_table(kind, generation.table(part))
                if kind == "scores":
                    statements[part] = sa.select(
                        table.c.score_month, table.c.score, table.c.grade, table.c.grade_label
                    ).where(table.c.subject_key == k, table.c.scheme == s)
                elif kind == "lines":
                    statements[part] = sa.select(
                        *[c for c in table.c if c.name not in ("subject_key", "scheme")]
                    ).where(table.c.subject_key == k, table.c.scheme == s).order_by(table.c.seq)
                else:
                    statements[part] = sa.select(
                        table.c.consent_id, table.c.granted_on, table.c.expires_on,
                        table.c.revoked_on
                    ).where(table.c.subject_key == k, table.c.grantee == sa.bindparam("g"),
                            table.c.purpose == sa.bindparam("p"))
            queries = {name: DriverStatement(st, self.engine.dialect)
                       for name, st in statements.items()}
            with self._lock:
                self._queries = {generation.id: queries,
                                 **{g: v for g, v in self._queries.items()
                                    if g >= generation.id - 1}}
        return queries

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A Reader on the current generation; IndexNotBuilt when there is none."""
        generation = self.generation()
        if generation is None:
            generation = self.generation(fresh=True)
            if generation is None:
                raise IndexNotBuilt(f"no serving index yet in {self.url.split('://')[0]} store: "
                                    f"`citycredit serve` builds it at start")
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.engine.raw_connection()
        cursor = connection.cursor()
        try:
            yield Reader(cursor, generation, self._prepared(generation))
        except BaseException:
            self._local.connection = None          # a broken connection is not reused
            connection.invalidate() if hasattr(connection, "invalidate") else connection.close()
            raise
        finally:
            cursor.close()
        connection.rollback()                       # end the read transaction (PostgreSQL)

    def dispose(self) -> None:
        self.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m citycredit.lookup.index",
                                     description="Build the lookup service's serving index.")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    args = parser.parse_args(argv)
    generation = build_index(load_settings(), force=args.force)
    print(json.dumps({"generation": generation.id, "versions": generation.versions,
                      "months": generation.months, "rows": generation.row_counts,
                      "reused": list(generation.reused),
                      "seconds": generation.seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
