"""The audit log of lookups: every request, granted or refused, as a hash chain (issue "Lookups"
item 4; 建立查询应用记录用于溯源).

An entry: seq (1, 2, …), at (UTC, ISO 8601 with microseconds), channel (`http`, or `cli:<user>`
for `citycredit lookup`), grantee, purpose, scheme, kind (score | report | recognition),
subject_key (the HMAC pseudonym — never the identity number; empty when the request carried no
valid one), outcome, status (the HTTP status answered), prev_hash and hash, where

    hash = "k" + HMAC-SHA256(audit key, prev_hash + "\\n" + canonical JSON of the entry's other
                             fields, seq included), first 63 hex digits

and prev_hash of entry 1 is 64 zeros. The audit key lives outside the database
(CITYCREDIT_AUDIT_KEY; conf/local.yaml's development key only with CITYCREDIT_ENV=local, see
config.DEVELOPMENT_KEYS), so whoever can write the database can change an entry but cannot
re-hash the chain after it unseen (issue 24 item 7).

Entries written before the chain was keyed (an older citycredit) carry the plain
sha256(prev_hash + "\\n" + body), 64 hex digits, no "k". The chain is keyed from its first
entry whose hash starts with "k" (the first written with a key); `verify` checks the entries
before it with the plain hash — they are covered by the key from there on, since the first
keyed entry's HMAC includes the prev_hash that links them — and refuses (names) any unkeyed
entry after a keyed one, and a log that has entries but no keyed one at all (written before
the key was set and not appended to since, or re-hashed without the key: the next lookup
starts the keyed chain). `audit_head` holds the last seq and hash, updated in the same
transaction, so a removed last entry shows too. Changing, removing or reordering any entry breaks
the chain at that entry; `verify()` names it. Writers serialise (store.writer_lock), so the chain
stays linear with several processes (the service and `citycredit lookup`) writing.

Tamper resistance besides the chain: triggers refuse UPDATE and DELETE on `audit_log` (SQLite and
PostgreSQL); in PostgreSQL grant the service's role INSERT and SELECT only. Erasure keeps these
records (the centre's legal trace of who looked): they hold subject keys only.

Durability: `append` returns after its transaction committed (SQLite synchronous=FULL); the
service sends no answer before that, and answers 503 when it fails. `AuditWriter` groups the
entries of concurrent requests into one transaction (group commit) so that a commit's fsync is
shared, not paid per request.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import hmac
import json
import logging
import queue
import threading
from dataclasses import asdict, dataclass, fields
from typing import Iterable

import sqlalchemy as sa

from .store import DriverStatement, begin_writing, make_engine, writer_lock

GENESIS = "0" * 64
#: the first character of a keyed entry's hash (a plain sha256 hash is hex only)
KEYED = "k"
#: entries one group commit takes at most
GROUP_MAX = 512

log = logging.getLogger(__name__)

_META = sa.MetaData()
AUDIT_LOG = sa.Table(
    "audit_log", _META,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("grantee", sa.String(32)),
    sa.Column("purpose", sa.String(32)),
    sa.Column("scheme", sa.String(32)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject_key", sa.String(64)),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("audit_log_by_subject", "subject_key"),
    sa.Index("audit_log_by_grantee", "grantee", "at"))
AUDIT_HEAD = sa.Table(
    "audit_head", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False))

_SQLITE_GUARDS = [
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, 'the audit log is insert-only'); END"
    for verb in ("UPDATE", "DELETE")]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION audit_log_insert_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is insert-only'; END $$",
    "CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_insert_only()",
    "CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_insert_only()",
]


class AuditUnavailable(RuntimeError):
    """The audit entry could not be written: the lookup must not be answered (503)."""


@dataclass(frozen=True)
class Entry:
    """One lookup as recorded (without seq and hashes, which the log assigns)."""

    at: str
    channel: str
    grantee: str | None
    purpose: str | None
    scheme: str | None
    kind: str
    subject_key: str | None
    outcome: str
    status: int


ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, seq: int, entry: dict, key: str | None = None) -> str:
    """The chain hash of an entry (dict with ENTRY_FIELDS) written as number `seq`: keyed
    ("k" + 63 hex digits of HMAC-SHA256) with `key`, the plain sha256 of older logs without."""
    body = json.dumps({"seq": seq, **{k: entry[k] for k in ENTRY_FIELDS}}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    message = f"{prev_hash}\n{body}".encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return KEYED + hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()[:63]


@dataclass
class Verification:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
    keyed_from: int | None = None   # seq of the first keyed entry (None: no keyed entry)


class AuditLog:
    """The audit log at a SQLAlchemy URL (see store.audit_url), chained with HMAC-SHA256 under
    `key` (None: the plain sha256 of older logs — for reading them; writers use audit_log())."""

    def __init__(self, url: str, key: str | None = None):
        self.url = url
        self.key = key
        self.engine = make_engine(url, writer=True)
        self._ready = False
        self._compiled: dict | None = None

    def ensure(self) -> None:
        """Create the tables and the insert-only triggers if missing (idempotent)."""
        if self._ready:
            return
        with self.engine.begin() as connection:
            writer_lock(connection, "audit")
            _META.create_all(connection)
            guards = _POSTGRES_GUARDS if connection.dialect.name == "postgresql" else \
                _SQLITE_GUARDS if connection.dialect.name == "sqlite" else []
            for statement in guards:
                connection.exec_driver_sql(statement)
        self._ready = True

    def _statements(self) -> dict[str, DriverStatement]:
        if self._compiled is None:
            dialect = self.engine.dialect
            head = AUDIT_HEAD.c
            self._compiled = {
                "head": DriverStatement(sa.select(head.seq, head.hash).where(head.id == 1),
                                        dialect),
                "insert": DriverStatement(AUDIT_LOG.insert().values(
                    {c.name: sa.bindparam(c.name) for c in AUDIT_LOG.c}), dialect),
                "first_head": DriverStatement(AUDIT_HEAD.insert().values(
                    id=1, seq=sa.bindparam("seq"), hash=sa.bindparam("hash")), dialect),
                "move_head": DriverStatement(AUDIT_HEAD.update().where(head.id == 1).values(
                    seq=sa.bindparam("seq"), hash=sa.bindparam("hash")), dialect),
            }
        return self._compiled

    def append(self, entries: Iterable[Entry]) -> list[int]:
        """Write entries in one transaction, chained after the current head; their seqs.
        Returns only after the commit. Raises AuditUnavailable when it cannot.

        Runs on a raw driver connection with statements compiled once (it is on every
        request's path); the transaction holds the writer lock from its first statement."""
        entries = list(entries)
        if not entries:
            return []
        connection = None
        try:
            self.ensure()
            statements = self._statements()
            connection = self.engine.raw_connection()
            cursor = connection.cursor()
            begin_writing(cursor, self.engine.dialect, "audit")
            head = statements["head"].run(cursor)
            seq, prev = head[0] if head else (0, GENESIS)
            rows = []
            for entry in entries:
                seq += 1
                values = asdict(entry)
                digest = entry_hash(prev, seq, values, self.key)
                rows.append({"seq": seq, **values, "prev_hash": prev, "hash": digest})
                prev = digest
            statements["insert"].run_many(cursor, rows)
            statements["move_head" if head else "first_head"].run(cursor, seq=seq, hash=prev)
            connection.commit()
            return [row["seq"] for row in rows]
        except Exception as exc:
            if connection is not None:
                try:
                    connection.rollback()
                except Exception:
                    pass
            cause = getattr(exc, "orig", None) or exc
            raise AuditUnavailable(f"audit log: {type(cause).__name__}: "
                                   f"{(str(cause).splitlines() or [''])[0][:200]}") from None
        finally:
            if connection is not None:
                connection.close()             # back to the pool

    def verify(self) -> Verification:
        """Walk the chain: every entry's hash recomputed (keyed entries with the key), every link
        and seq checked, and the head compared with the last entry. Problems name the seq, never
        the content (see the module's docstring for entries written before keying)."""
        self.ensure()
        problems: list[str] = []
        prev, expected, count = GENESIS, 1, 0
        last_hash = GENESIS
        keyed_from = None
        keyed_changed: list[str] = []       # keyed entries whose hash the key does not give
        keyed_checked = 0
        with self.engine.connect() as connection:
            head = connection.execute(sa.select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash)).first()
            rows = connection.execution_options(yield_per=10_000).execute(
                sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq))
            for row in rows:
                count += 1
                values = row._mapping
                if values["seq"] != expected:
                    problems.append(f"entry {expected}" + (f"–{values['seq'] - 1}"
                                    if values["seq"] > expected + 1 else "")
                                    + " missing (removed)")
                if values["prev_hash"] != prev:
                    problems.append(f"entry {values['seq']}: does not follow the entry before it "
                                    f"(an entry was removed or reordered)")
                keyed = values["hash"].startswith(KEYED)
                if keyed and keyed_from is None:
                    keyed_from = values["seq"]
                    if self.key is None:
                        problems.append(f"entries from {keyed_from} are keyed: verifying them "
                                        f"needs the audit key (CITYCREDIT_AUDIT_KEY)")
                if not keyed and keyed_from is not None:
                    problems.append(f"entry {values['seq']}: not keyed after keyed entries "
                                    f"(changed and re-hashed without the audit key)")
                elif not (keyed and self.key is None) and entry_hash(
                        values["prev_hash"], values["seq"], values,
                        self.key if keyed else None) != values["hash"]:
                    (keyed_changed if keyed else problems).append(
                        f"entry {values['seq']}: changed (its hash does not match its content"
                        f"{' under the audit key' if keyed else ''})")
                keyed_checked += keyed and self.key is not None
                prev = last_hash = values["hash"]
                expected = values["seq"] + 1
            if keyed_checked > 1 and len(keyed_changed) == keyed_checked:
                # not one keyed entry verifies: a wrong key far likelier than every entry changed
                problems.append(f"none of the {keyed_checked} keyed entries verifies under "
                                f"this key: CITYCREDIT_AUDIT_KEY is not the key the log was "
                                f"written with (or every keyed entry was changed)")
            else:
                problems += keyed_changed
            head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
            if (head_seq, head_hash) != (expected - 1, last_hash):
                problems.append(f"the head says the last entry is {head_seq}, the log ends at "
                                f"{expected - 1}: entries removed at the end, or the head changed")
            if self.key is not None and count and keyed_from is None:
                problems.append(f"no entry of the {count} is keyed: written before the audit "
                                f"key was set (the next lookup starts the keyed chain), or "
                                f"changed and re-hashed without the key")
        return Verification(not problems, count, head_seq, head_hash, problems, keyed_from)

    def show(self, grantee: str | None = None, subject_key: str | None = None,
             since: str | None = None, until: str | None = None,
             limit: int | None = None) -> list[dict]:
        """Entries, oldest first, filtered by grantee, subject_key and `at` in [since, until)
        (UTC ISO strings)."""
        self.ensure()
        query = sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq)
        if grantee:
            query = query.where(AUDIT_LOG.c.grantee == grantee)
        if subject_key:
            query = query.where(AUDIT_LOG.c.subject_key == subject_key)
        if since:
            query = query.where(AUDIT_LOG.c.at >= since)
        if until:
            query = query.where(AUDIT_LOG.c.at < until)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def dispose(self) -> None:
        self.engine.dispose()


class AuditWriter:
    """A thread that writes the service's entries: each `submit` returns a Future resolved once
    the entry is committed (AuditUnavailable when it cannot be); entries that arrive while a
    commit is running are written together by the next one."""

    def __init__(self, audit: AuditLog):
        self.audit = audit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((entry, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < GROUP_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            try:
                seqs = self.audit.append([entry for entry, _ in group])
            except AuditUnavailable as exc:
                log.error("%s (%d request(s) answered 503)", exc, len(group))
                for _, future in group:
                    future.set_exception(exc)
            except Exception as exc:   # never leave a request waiting
                log.error("audit log: %s (%d request(s) answered 503)", type(exc).__name__,
                          len(group))
                for _, future in group:
                    future.set_exception(AuditUnavailable(type(exc).__name__))
            else:
                for (_, future), seq in zip(group, seqs):
                    future.set_result(seq)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


def audit_log(settings) -> AuditLog:
    """The audit log of `settings` with its key (lookup.audit_key, CITYCREDIT_AUDIT_KEY):
    what the service, `citycredit lookup` and `citycredit audit verify` use. ConfigError when
    no key is set (an environment other than local must set CITYCREDIT_AUDIT_KEY)."""
    from ..config import ConfigError
    from .store import audit_url

    key = settings.lookup.get("audit_key")
    if not key:
        raise ConfigError(f"no audit key: set CITYCREDIT_AUDIT_KEY (CITYCREDIT_ENV={settings.env}"
                          f" has none); the audit chain is an HMAC under it")
    return AuditLog(audit_url(settings), key)
