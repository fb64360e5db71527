"""The two databases of the lookup service, through SQLAlchemy: the serving index and the audit
log. Embedded default: SQLite files under the warehouse (`<warehouse>/lookup/index.sqlite`,
`<warehouse>/lookup/audit.sqlite`); production: any SQLAlchemy URL, PostgreSQL
(`postgresql+psycopg://…`) in practice — `lookup.index_url` / `lookup.audit_url` in conf, or
CITYCREDIT_LOOKUP_INDEX_URL / CITYCREDIT_LOOKUP_AUDIT_URL.

SQLite is opened in WAL mode (readers never wait for the writer) with `synchronous=FULL` (a
committed transaction is on disk: the audit entry is durable before the answer leaves) and
`secure_delete` (a dropped index generation or erased row leaves no readable bytes behind).
Writers serialise: SQLite by `BEGIN IMMEDIATE` (the write lock is taken when the transaction
starts, so two processes cannot both read the same chain head), PostgreSQL by a transaction-level
advisory lock.
"""
from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ..config import Settings

#: how long a SQLite writer waits for another process's write lock before giving up
SQLITE_BUSY_SECONDS = 2.0


def index_url(settings: Settings) -> str:
    """The serving index's URL: `lookup.index_url`, else SQLite under the warehouse."""
    return settings.lookup.get("index_url") or \
        f"sqlite:///{Path(settings.warehouse) / 'lookup' / 'index.sqlite'}"


def audit_url(settings: Settings) -> str:
    """The audit log's URL: `lookup.audit_url`, else SQLite under the warehouse."""
    return settings.lookup.get("audit_url") or \
        f"sqlite:///{Path(settings.warehouse) / 'lookup' / 'audit.sqlite'}"


def missing_audit_log(settings: Settings, nothing: str = "nothing was verified") -> str | None:
    """What to say when the audit log a reader (audit verify / show) is pointed at does not
    exist — a SQLite file missing, e.g. a typo in lookup.audit_url or the wrong warehouse —
    rather than creating an empty log that would verify as intact. None when it exists (or the
    URL is a server database, whose absence its connection reports)."""
    url = audit_url(settings)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return None
    if settings.lookup.get("audit_url"):
        setting = f"lookup.audit_url, from {settings.origins.get('lookup.audit_url', 'conf')}"
    else:
        setting = (f"the default under paths.warehouse, from "
                   f"{settings.origins.get('paths.warehouse', 'conf')}")
    path = Path(parsed.database)
    if not path.is_file():
        return f"no audit log at {path} ({setting}): {nothing}"
    if not _holds_audit_log(path):
        return (f"no audit log in {path} ({setting}): the file holds no audit_log table (an "
                "empty file, or a copy made without its -wal file: copy with sqlite3's .backup): "
                f"{nothing}")
    return None


def _holds_audit_log(path: Path) -> bool:
    """Does the SQLite file hold the audit_log table? Opened read-only: nothing is written."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                                uri=True)) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                              "AND name = 'audit_log'").fetchone() is not None
    except sqlite3.DatabaseError:       # not a SQLite database at all
        return False


def no_warehouse(settings: Settings) -> str | None:
    """What to say when `settings` name no warehouse folder (a lookup command run from another
    folder, CITYCREDIT_WAREHOUSE unset): nothing is published there. One line naming the
    setting, its value and where it came from; None when the folder exists."""
    if Path(settings.warehouse).is_dir():
        return None
    origin = settings.origins.get("paths.warehouse", "conf")
    return (f"nothing is published: no warehouse at {settings.warehouse} (paths.warehouse, from "
            f"{origin}); run a month first (`citycredit run`), or set CITYCREDIT_WAREHOUSE to "
            "the warehouse's folder")


def shown(url: str) -> str:
    """A URL fit for a message: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, *, writer: bool = False) -> Engine:
    """An engine for `url`. `writer=True`: every transaction takes the write lock at its start
    (SQLite `BEGIN IMMEDIATE`; on PostgreSQL call `writer_lock` inside the transaction)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS,
                                                 "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None      # we emit BEGIN ourselves (below)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON",
                       "foreign_keys=ON", f"cache_size=-{64 * 1024 if writer else 8 * 1024}"):
            dbapi_connection.execute(f"PRAGMA {pragma}")        # cache in KiB

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def writer_lock(connection: sa.Connection, name: str) -> None:
    """Serialise writers of `name` for the rest of this transaction (PostgreSQL: an advisory
    lock; SQLite: already held since BEGIN IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"SELECT pg_advisory_xact_lock({zlib.crc32(f'citycredit.{name}'.encode())})")


def checkpoint(engine: Engine) -> None:
    """SQLite: move the WAL into the database file and truncate it (after a large write)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class DriverStatement:
    """A statement compiled once for an engine's driver and run on a raw DBAPI cursor: the
    per-request paths (index reads, audit appends) skip SQLAlchemy's execution machinery
    (~10 µs a statement instead of ~0.3 ms); SQLAlchemy still writes the dialect's SQL."""

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup if compiled.positional else None
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        self.columns = [c.name for c in getattr(statement, "selected_columns", [])]

    def params(self, values: dict):
        """Values by bind name (the statement's literals, e.g. `id = 1`, filled in)."""
        if self.defaults:
            values = {**self.defaults, **values}
        return tuple(values[n] for n in self.order) if self.order is not None else values

    def run(self, cursor, **values) -> list[tuple]:
        cursor.execute(self.sql, self.params(values))
        return cursor.fetchall() if cursor.description else []

    def run_many(self, cursor, rows: list[dict]) -> None:
        cursor.executemany(self.sql, [self.params(row) for row in rows])


def begin_writing(cursor, dialect, name: str) -> None:
    """Start a writing transaction on a raw connection and serialise it with other writers of
    `name` (SQLite: BEGIN IMMEDIATE; PostgreSQL: the driver begins, then an advisory lock)."""
    if dialect.name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")
    elif dialect.name == "postgresql":
        cursor.execute(f"SELECT pg_advisory_xact_lock({zlib.crc32(f'citycredit.{name}'.encode())})")
