"""Pieces of the lookups without HTTP (issue "Lookups"): the consent rule on its exact days, the
audit chain with several writers, recognition proposals on a published month (real SQLite, real
Delta through the seam; no Spark)."""
from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
import yaml

from citycredit.config import load_settings
from citycredit.lookup.audit import AuditLog, AuditWriter, Entry, now
from citycredit.lookup.consents import (EXPIRED, NO_CONSENT, NOT_YET, REVOKED, VALID, Consent,
                                        consent_state)
from citycredit.lookup.recognition import ProposalError, percentile_mapping, propose, proposal_yaml
from citycredit.rules import load_recognition, load_schemes
from citycredit.synth.publication import people, publish_scores, subject_keys

PROJECT = Path(__file__).resolve().parents[2]
D = dt.date(2026, 5, 10)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("consent,day,state", [
    (Consent("c", D, D + 9 * DAY, None), D, VALID),                 # granted today
    (Consent("c", D, D + 9 * DAY, None), D - DAY, NOT_YET),
    (Consent("c", D, D + 9 * DAY, None), D + 9 * DAY, VALID),       # last day of validity
    (Consent("c", D, D + 9 * DAY, None), D + 10 * DAY, EXPIRED),
    (Consent("c", D, None, D + 3 * DAY), D + 2 * DAY, VALID),
    (Consent("c", D, None, D + 3 * DAY), D + 3 * DAY, REVOKED),     # revoked on its own day
    (Consent("c", D, None, None), D + 4000 * DAY, VALID),           # until revoked
])
def test_a_consent_counts_on_its_exact_days(consent, day, state):
    assert consent.state_on(day) == state
    assert consent_state([consent], day) == state


def test_any_valid_consent_grants_and_the_latest_refusal_is_named():
    old = Consent("a", D - 400 * DAY, D - 35 * DAY, None)
    new = Consent("b", D - 30 * DAY, None, D - DAY)
    assert consent_state([], D) == NO_CONSENT
    assert consent_state([old, new], D) == REVOKED
    assert consent_state([old, new, Consent("c", D, None, None)], D) == VALID


def entry(i: int, grantee: str = "BANK01") -> Entry:
    return Entry(at=now(), channel="http", grantee=grantee, purpose="loan", scheme="haibei",
                 kind="score", subject_key=f"{i:064x}", outcome="granted", status=200)


def test_writers_in_several_threads_and_connections_keep_one_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    service, operator = AuditLog(url), AuditLog(url)        # two writers, as two processes
    writer = AuditWriter(service)
    futures = []

    def burst(start):
        futures.extend(writer.submit(entry(start + i)) for i in range(50))

    threads = [threading.Thread(target=burst, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        operator.append([entry(1000 + i, "PORTAL")])
    for t in threads:
        t.join()
    seqs = sorted(f.result(timeout=30) for f in futures)
    writer.close()
    assert len(set(seqs)) == 200
    result = AuditLog(url).verify()
    assert result.ok and result.entries == 220 and result.head_seq == 220, result.problems
    assert len(AuditLog(url).show(grantee="PORTAL")) == 20


def test_the_log_refuses_changes_and_verify_names_a_changed_entry(tmp_path):
    path = tmp_path / "audit.sqlite"
    log = AuditLog(f"sqlite:///{path}")
    log.append([entry(i) for i in range(5)])
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError, match="insert-only"):
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER audit_log_no_update; "
                         "UPDATE audit_log SET grantee = 'PORTAL' WHERE seq = 2")
    result = AuditLog(f"sqlite:///{path}").verify()
    assert not result.ok and result.problems == ["entry 2: changed (its hash does not match its content)"]


def test_percentile_matching_maps_bands_best_first():
    source = [("AAA", "", 10), ("AA", "", 20), ("A", "", 50), ("B", "", 20), ("C", "", 0)]
    target = [("X", "", 25), ("Y", "", 60), ("Z", "", 15)]
    # AAA band 0-10 % → X; AA 10-30 % (middle 20 %) → X; A 30-80 % → Y; B 80-100 % → Z;
    # C empty at 100 % → the last grade
    assert percentile_mapping(source, target) == {"AAA": "X", "AA": "X", "A": "Y", "B": "Z",
                                                  "C": "Z"}


def test_propose_drafts_a_table_that_loads_as_a_recognition_file(tmp_path):
    settings = load_settings(PROJECT / "conf", environ={"CITYCREDIT_WAREHOUSE": str(tmp_path / "wh")})
    schemes = load_schemes(settings.rules, ["haibei", "bailu"])
    keys = subject_keys(people(400, seed=3), settings.subject_key)
    # haibei: 10 % AAA, 30 % AA, 60 % A; bailu for the same people: 40 % 极好, 60 % 良好
    publish_scores(settings.warehouse, keys, schemes["haibei"], "2026-03",
                   scores=[1160] * 40 + [1060] * 120 + [1010] * 240)
    publish_scores(settings.warehouse, keys, schemes["bailu"], "2026-03",
                   scores=[760] * 160 + [610] * 240)
    proposal = propose(settings, "haibei", "bailu", "2026-03")
    assert proposal.population == 400
    # empty grades (B, C, D: nobody this month) sit at the end of the ranking: the last grade
    assert proposal.mapping == {"AAA": "AAA", "AA": "AAA", "A": "A", "B": "C", "C": "C", "D": "C"}
    assert proposal.agreement == 1.0
    text = proposal_yaml(proposal)
    assert yaml.safe_load(text)["grades"] == proposal.mapping
    assert "#     AA         120   30.00%     40.00%  优秀" in text
    assert "  B: C    # nobody in B this month: placed by rank, review" in text
    rules = tmp_path / "rules"
    shutil.copytree(settings.rules, rules)
    draft = rules / "recognition" / "haibei__bailu.yaml"
    draft.write_text(text, encoding="utf-8")
    assert load_recognition(draft, schemes).grades == proposal.mapping
    with pytest.raises(ProposalError, match="no person has both"):
        propose(settings, "haibei", "bailu", "2026-04")


def test_show_filters_by_grantee_subject_and_period(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    stamps = ["2026-11-01T10:00:00.000000+00:00", "2026-11-15T10:00:00.000000+00:00",
              "2026-12-01T10:00:00.000000+00:00"]
    log.append([Entry(at=at, channel="http", grantee=g, purpose="loan", scheme="haibei",
                      kind="score", subject_key=k, outcome="granted", status=200)
                for at, g, k in zip(stamps, ["BANK01", "PORTAL", "BANK01"], ["a" * 64, "b" * 64,
                                                                              "a" * 64])])
    assert [e["seq"] for e in log.show(grantee="BANK01")] == [1, 3]
    assert [e["seq"] for e in log.show(subject_key="b" * 64)] == [2]
    assert [e["seq"] for e in log.show(since="2026-11-10", until="2026-12-01")] == [2]


def test_recognition_propose_on_the_command_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from citycredit.cli import cli

    monkeypatch.chdir(tmp_path)
    environ = {"CITYCREDIT_WAREHOUSE": str(tmp_path / "wh")}
    settings = load_settings(PROJECT / "conf", environ=environ)
    schemes = load_schemes(settings.rules, ["haibei", "bailu"])
    keys = subject_keys(people(50, seed=4), settings.subject_key)
    publish_scores(settings.warehouse, keys, schemes["haibei"], "2026-03", scores=[1000] * 50)
    publish_scores(settings.warehouse, keys, schemes["bailu"], "2026-03", scores=[610] * 50)
    runner = CliRunner()
    done = runner.invoke(cli, ["recognition", "propose", "--from", "haibei", "--to", "bailu",
                               "--month", "2026-03"], env=environ)
    assert done.exit_code == 0, done.output
    assert yaml.safe_load(done.output)["grades"]["A"] == "A"
    missing = runner.invoke(cli, ["recognition", "propose", "--from", "haibei", "--to", "bailu",
                                  "--month", "2026-05"], env=environ)
    assert missing.exit_code == 1 and "cannot propose: no person has both" in missing.output


def test_a_huge_body_is_refused_unread():
    from citycredit.lookup.lookups import MAX_BODY, Lookups

    assert "larger than" in Lookups._parse("score", b"{" + b" " * MAX_BODY + b"}")


def test_the_index_rebuilds_only_the_parts_whose_files_changed(tmp_path, monkeypatch):
    """New consents alone keep every scheme's score table; a scheme re-published is rebuilt
    alone and its old table dropped; answers always come from the current data."""
    import sqlalchemy as sa

    from citycredit.lookup import index
    from citycredit.lookup.store import index_url
    from citycredit.synth.publication import write_consents

    monkeypatch.setattr(index, "DRAIN_SECONDS", 0)
    settings = load_settings(PROJECT / "conf",
                             environ={"CITYCREDIT_WAREHOUSE": str(tmp_path / "wh")})
    ids = people(30, seed=5)
    keys = subject_keys(ids, settings.subject_key)
    schemes = load_schemes(settings.rules, ["haibei", "bailu"])
    publish_scores(settings.warehouse, keys, schemes["haibei"], "2026-03", scores=[1000] * 30)
    publish_scores(settings.warehouse, keys, schemes["bailu"], "2026-03", scores=[610] * 30)
    consent = {"grantee": "BANK01", "purpose": "loan", "granted_on": D, "expires_on": None}
    write_consents(settings.warehouse, [{**consent, "consent_id": "C0", "id_number": ids[0]}],
                   settings.subject_key)
    first = index.build_index(settings)
    assert first.reused == () and first.row_counts["scores"] == 60

    write_consents(settings.warehouse, [{**consent, "consent_id": "C1", "id_number": ids[1]}],
                   settings.subject_key, mode="append")
    second = index.build_index(settings)
    assert second.reused == ("scores:bailu", "scores:haibei")
    assert second.table("scores:haibei") == first.table("scores:haibei")
    assert second.table("consents") != first.table("consents")

    publish_scores(settings.warehouse, keys, schemes["haibei"], "2026-03", scores=[1100] * 30)
    third = index.build_index(settings)
    assert third.reused == ("consents", "scores:bailu")
    served = index.ServingIndex(index_url(settings))
    try:
        with served.reader() as read:
            assert read.generation.id == third.id
            assert read.score("haibei", keys[0])["score"] == 1100
            assert read.score("bailu", keys[0])["score"] == 610
            assert read.score("dazixiang", keys[0]) is None          # nothing published there
            assert [c.consent_id for c in read.consents(keys[1], "BANK01", "loan")] == ["C1"]
    finally:
        served.dispose()
    engine = sa.create_engine(index_url(settings))
    with engine.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert first.table("scores:haibei") not in names               # replaced, dropped
    assert {third.table(p) for p in third.parts()} <= names
    assert first.table("scores:bailu") in names                    # still serving


KEY = "audit-key-kept-outside-the-database"
sys.path.insert(0, str(PROJECT / "tests" / "data"))
from audit_forgery import rehash  # noqa: E402


def _editable(path):
    def connect():
        db = sqlite3.connect(path)
        db.executescript("DROP TRIGGER IF EXISTS audit_log_no_update")
        return db
    return connect


@pytest.mark.parametrize("forger_key,problem", [
    (None, "entry 3: not keyed after keyed entries (changed and re-hashed without the audit key)"),
    ("a-guessed-key", "entry 3: changed (its hash does not match its content under the audit key)"),
])
def test_an_entry_changed_and_rehashed_without_the_key_is_found(tmp_path, forger_key, problem):
    path = tmp_path / "audit.sqlite"
    AuditLog(f"sqlite:///{path}", KEY).append([entry(i) for i in range(5)])
    intact = AuditLog(f"sqlite:///{path}", KEY).verify()
    assert intact.ok and intact.keyed_from == 1 and intact.head_hash.startswith("k"), \
        intact.problems
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER audit_log_no_update; "
                         "UPDATE audit_log SET outcome = 'refused' WHERE seq = 3")
    rehash(_editable(path), 3, forger_key)
    result = AuditLog(f"sqlite:///{path}", KEY).verify()
    assert not result.ok and result.problems[0] == problem
    assert AuditLog(f"sqlite:///{path}").verify().ok is False    # nor is it clean without a key


def test_a_wrong_key_is_said_once_not_as_every_entry_changed(tmp_path):
    path = tmp_path / "audit.sqlite"
    AuditLog(f"sqlite:///{path}", KEY).append([entry(i) for i in range(5)])
    result = AuditLog(f"sqlite:///{path}", "not-the-key").verify()
    assert not result.ok and result.problems == [
        "none of the 5 keyed entries verifies under this key: CITYCREDIT_AUDIT_KEY is not the "
        "key the log was written with (or every keyed entry was changed)"]


def test_a_whole_chain_rehashed_without_the_key_is_not_keyed(tmp_path):
    path = tmp_path / "audit.sqlite"
    AuditLog(f"sqlite:///{path}", KEY).append([entry(i) for i in range(4)])
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER audit_log_no_update; "
                         "UPDATE audit_log SET grantee = 'PORTAL' WHERE seq = 2")
    rehash(_editable(path), 1, None)
    result = AuditLog(f"sqlite:///{path}", KEY).verify()
    assert not result.ok and result.problems == [
        "no entry of the 4 is keyed: written before the audit key was set (the next lookup "
        "starts the keyed chain), or changed and re-hashed without the key"]


def test_a_log_from_before_keying_is_keyed_from_its_next_entry(tmp_path):
    """Entries of an older, unkeyed log keep their plain hashes; the first keyed entry covers
    them (its HMAC takes their last hash), so an edit there shows at that entry."""
    path = tmp_path / "audit.sqlite"
    AuditLog(f"sqlite:///{path}").append([entry(i) for i in range(3)])     # before keying
    keyed = AuditLog(f"sqlite:///{path}", KEY)
    assert not keyed.verify().ok                     # not keyed yet: said, not passed
    keyed.append([entry(10), entry(11)])
    result = keyed.verify()
    assert result.ok and result.keyed_from == 4 and result.entries == 5, result.problems
    without_key = AuditLog(f"sqlite:///{path}").verify()
    assert without_key.problems == ["entries from 4 are keyed: verifying them needs the audit "
                                    "key (CITYCREDIT_AUDIT_KEY)"]
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER audit_log_no_update; "
                         "UPDATE audit_log SET status = 403 WHERE seq = 2")
    rehash(_editable(path), 2, None, until=4)        # the plain part re-hashed, entry 4 relinked
    result = keyed.verify()
    assert not result.ok and result.problems == [
        "entry 4: changed (its hash does not match its content under the audit key)"]


def test_audit_verify_says_whether_the_chain_is_intact_under_the_key(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from citycredit.cli import cli
    from citycredit.lookup.audit import audit_log

    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "wh"))
    (tmp_path / "wh" / "lookup").mkdir(parents=True)
    audit_log(load_settings()).append([entry(i) for i in range(3)])
    intact = CliRunner().invoke(cli, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "3 entries" in intact.output and "keyed (HMAC-SHA256) from entry 1" in intact.output
    assert "chain intact" in intact.output
    path = tmp_path / "wh" / "lookup" / "audit.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER audit_log_no_update; "
                         "UPDATE audit_log SET purpose = 'rental' WHERE seq = 2")
    rehash(_editable(path), 2, None)
    broken = CliRunner().invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN: entry 2: not keyed after keyed entries" in broken.output
    assert "CHAIN BROKEN" in broken.output


def test_audit_show_refuses_a_grantee_that_is_neither_configured_nor_in_the_log(tmp_path,
                                                                             monkeypatch):
    """A mistyped --grantee said "0 entries", exit 0, as if it had made no lookup: refused
    (exit 2) naming the configured grantees. A configured grantee with no entries, and one that
    left grantees.yaml but has entries in the log, are shown as before."""
    from click.testing import CliRunner

    from citycredit.cli import cli
    from citycredit.lookup.audit import audit_log

    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "wh"))
    (tmp_path / "wh" / "lookup").mkdir(parents=True)
    audit_log(load_settings()).append([entry(0), entry(1, grantee="OLDBANK")])
    typo = CliRunner().invoke(cli, ["audit", "show", "--grantee", "BANK1"])
    assert typo.exit_code == 2, typo.output
    said = " ".join(typo.output.split())
    assert "no grantee 'BANK1' is configured in" in said and "grantees.yaml" in said
    assert "the grantees are BANK01 (威海市商业银行), PORTAL (信用威海)" in said
    assert "0 entries" not in typo.output
    # an empty one (an unset shell variable) is no filter either: refused, not every entry
    empty = CliRunner().invoke(cli, ["audit", "show", "--grantee", ""])
    assert empty.exit_code == 2 and "no grantee '' is configured" in " ".join(
        empty.output.split()), empty.output
    for grantee, count in (("PORTAL", 0), ("OLDBANK", 1), ("BANK01", 1)):
        shown = CliRunner().invoke(cli, ["audit", "show", "--grantee", grantee])
        assert shown.exit_code == 0, shown.output
        assert f"{count} entries" in shown.output


def test_audit_verify_and_show_refuse_a_log_that_does_not_exist(tmp_path, monkeypatch):
    # a typo in lookup.audit_url (or the wrong warehouse) must not verify an empty log it
    # created as "chain intact" (newcomer try-out, 2026-12-05)
    from click.testing import CliRunner

    from citycredit.cli import cli

    typo = tmp_path / "typo.sqlite"
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("CITYCREDIT_LOOKUP_AUDIT_URL", f"sqlite:///{typo}")
    for command in (["audit", "verify"], ["audit", "show"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert f"NOT FOUND: no audit log at {typo} (lookup.audit_url, from " in result.output
        assert "chain intact" not in result.output
        assert ("nothing was verified" if command[1] == "verify" else "nothing to show") in \
            " ".join(result.output.split())
    assert not typo.exists()
    monkeypatch.delenv("CITYCREDIT_LOOKUP_AUDIT_URL")
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 2 and "the default under paths.warehouse" in result.output
    assert not (tmp_path / "wh").exists()
    # an empty file (a copy made without its -wal) is no log either, and is left as it was
    empty = tmp_path / "copy.sqlite"
    empty.write_bytes(b"")
    monkeypatch.setenv("CITYCREDIT_LOOKUP_AUDIT_URL", f"sqlite:///{empty}")
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 2 and f"no audit log in {empty}" in result.output, result.output
    assert "chain intact" not in result.output and empty.read_bytes() == b""


def test_serve_says_a_busy_port_before_building_anything():
    """A second `citycredit serve` on a port another service listens on is refused at once
    (PortInUse naming host and port), not after it built the index; a free port passes."""
    import socket

    from citycredit.lookup.service import PortInUse, check_port_free

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)          # released: free again
