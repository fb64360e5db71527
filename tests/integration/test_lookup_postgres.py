"""The lookups on PostgreSQL (production's store, by URL): the serving index and the audit log on a
real PostgreSQL 15 server — a private cluster started here (initdb + pg_ctl on a free port; as the
`postgres` user when the tests run as root), or the one CITYCREDIT_TEST_POSTGRES_URL names.
`.ci/run` installs postgresql-15 so that CI runs these."""
from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from citycredit.config import load_settings
from citycredit.identity import subject_key
from citycredit.lookup.audit import AuditLog, AuditUnavailable, Entry, now
from citycredit.lookup.consents import today
from citycredit.lookup.index import build_index
from citycredit.lookup.lookups import Lookups
from citycredit.rules import load_schemes
from citycredit.synth.publication import people, publish_scores, write_consents

PROJECT = Path(__file__).resolve().parents[2]


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL server URL (database `postgres`, superuser `citycredit`)."""
    if os.environ.get("CITYCREDIT_TEST_POSTGRES_URL"):
        yield os.environ["CITYCREDIT_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql-15; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="cc-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:                     # initdb refuses root: run the cluster as postgres
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "citycredit",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://citycredit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def database(server):
    """A fresh database on the server for this module."""
    name = f"cc_{os.getpid()}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    yield server.rsplit("/", 1)[0] + f"/{name}"


def entry(i: int) -> Entry:
    return Entry(at=now(), channel="http", grantee="BANK01", purpose="loan", scheme="haibei",
                 kind="score", subject_key=f"{i:064x}", outcome="granted", status=200)


def test_lookups_answer_from_an_index_in_postgresql(database, tmp_path):
    settings = load_settings(PROJECT / "conf", environ={
        "CITYCREDIT_WAREHOUSE": str(tmp_path / "warehouse"), "CITYCREDIT_LOOKUP_INDEX_URL": database})
    person = dict(zip(["granted", "expired", "unpublished"], people(3, seed=9)))
    scheme = load_schemes(settings.rules, ["haibei"])["haibei"]
    publish_scores(settings.warehouse, [subject_key(person[r], settings.subject_key)
                                        for r in ("granted", "expired")], scheme, "2026-03",
                   scores=[1060, 1000])
    t = today("Asia/Shanghai")
    write_consents(settings.warehouse, [
        {"consent_id": r, "id_number": person[r], "grantee": "BANK01", "purpose": "loan",
         "granted_on": t - dt.timedelta(days=10),
         "expires_on": t - dt.timedelta(days=1) if r == "expired" else t}
        for r in person], settings.subject_key)
    generation = build_index(settings)
    assert generation.row_counts == {"scores": 2, "lines": 0, "consents": 3}
    assert build_index(settings).id == generation.id          # current: nothing rebuilt
    lookups = Lookups(settings)
    bank = lookups.grantees.get("BANK01")

    def status(role):
        return lookups.answer("score", bank, "haibei",
                              {"id_number": person[role], "purpose": "loan"}).status
    assert (status("granted"), status("expired"), status("unpublished")) == (200, 403, 404)
    assert lookups.answer("score", bank, "haibei", {"id_number": person["granted"],
                                                    "purpose": "loan"}).body["grade"] == "AA"
    # a rebuild replaces the generation served; the previous one is dropped after it
    assert build_index(settings, force=True).id == generation.id + 1
    assert status("granted") == 200
    assert lookups.index.generation(fresh=True).id == generation.id + 1
    assert status("granted") == 200


KEY = "audit-key-kept-outside-the-database"


def test_the_audit_chain_in_postgresql_is_insert_only_and_verified(database):
    log = AuditLog(database, KEY)
    other = AuditLog(database, KEY)                 # a second writer (the CLI, another replica)
    threads = [threading.Thread(target=lambda k=k: [(log if k % 2 else other).append(
        [entry(k * 100 + i)]) for i in range(15)]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok and result.entries == 60 and result.head_seq == 60, result.problems
    engine = sa.create_engine(database)
    for statement in ("UPDATE audit_log SET status = 403 WHERE seq = 7",
                      "DELETE FROM audit_log WHERE seq = 7", "TRUNCATE audit_log"):
        with engine.begin() as connection, pytest.raises(sa.exc.DatabaseError,
                                                         match="insert-only"):
            connection.exec_driver_sql(statement)
    with engine.begin() as connection:              # a superuser can still get round it …
        connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        connection.exec_driver_sql("UPDATE audit_log SET grantee = 'PORTAL' WHERE seq = 7")
        connection.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER USER")
    result = log.verify()                           # … but not unseen
    assert not result.ok and result.problems == [
        "entry 7: changed (its hash does not match its content under the audit key)"]
    # … nor when the chain after the edit is re-hashed: the key is not in the database
    sys.path.insert(0, str(PROJECT / "tests" / "data"))
    from audit_forgery import rehash

    def connect():
        raw = engine.raw_connection()
        raw.cursor().execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        return raw
    for forger_key, problem in ((None, "entry 7: not keyed after keyed entries"),
                                ("a-guessed-key", "entry 7: changed")):
        rehash(connect, 7, forger_key)
        result = log.verify()
        assert not result.ok and result.problems[0].startswith(problem), result.problems
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER USER")
    assert AuditLog(database, KEY).verify().keyed_from == 1
    engine.dispose()


def test_an_unreachable_audit_database_is_unavailable_not_silent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = AuditLog(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2")
    with pytest.raises(AuditUnavailable, match="audit log"):
        log.append([entry(1)])
