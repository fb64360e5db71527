"""The lookup service on real HTTP (issue "Lookups" item 8): `citycredit serve` started on
127.0.0.1 in a child process, a real SQLite index and audit log, a real Delta warehouse written
through the table seam (gold/published_scores, gold/score_lines, silver/consents).

Consents are dated relative to today in Asia/Shanghai, so expiry and revocation are checked on
their exact days: a consent expiring today still counts, one revoked today does not.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from citycredit import catalog
from citycredit.config import load_settings
from citycredit.identity import subject_key
from citycredit.io import tables
from citycredit.lookup.audit import AuditLog
from citycredit.lookup.consents import today
from citycredit.rules import load_schemes
from citycredit.synth.publication import people, publish_scores, write_consents

PROJECT = Path(__file__).resolve().parents[2]
BANK = {"Authorization": "Bearer dev-bank01-key-not-for-production"}
PORTAL = {"Authorization": "Bearer dev-portal-key-not-for-production"}
MONTH, NEXT = "2026-03", "2026-04"
ROLES = ["granted", "expires_today", "expired", "revoked_today", "revoked_tomorrow", "self",
         "unpublished", "no_consent", "not_yet", "corrected", "rental"]
PERSON = dict(zip(ROLES, people(len(ROLES), seed=7)))
MALFORMED = ["371002199001151230", "37100219900115123"]   # wrong check character; 17 long
SENT: list[str] = []          # every response body the tests received


def environment(warehouse: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    return {**env, "PYTHONPATH": str(PROJECT), "CITYCREDIT_WAREHOUSE": str(warehouse),
            "CITYCREDIT_LOOKUP_REFRESH_SECONDS": "1", **extra}


def cli(warehouse: Path, *args, stdin: str = "", **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citycredit.cli", *args], input=stdin,
                          capture_output=True, text=True, env=environment(warehouse, **extra),
                          cwd=warehouse.parent, timeout=120)


def score_lines(key: str) -> pa.Table:
    def line(line_type, status, record_id, item, points, last_valid, rule, finding_points=None):
        return {"scheme": "haibei", "score_month": MONTH, "subject_key": key,
                "line_type": line_type, "source_id": "court" if record_id else None,
                "record_id": record_id, "item_code": item, "level": None, "quantity": None,
                "occurred_on": dt.date(2025, 6, 1) if record_id else None, "valid_until": None,
                "rule_id": rule, "dimension": "law",
                "last_valid_day": last_valid, "finding_points": finding_points,
                "points": Decimal(points), "status": status, "deduplicated_by": None,
                "rules_version": "t", "run_id": "t"}
    rows = [line("finding", "counted", "FY1", "ADMIN_PENALTY", "-60", dt.date(2027, 5, 31),
                 "fine-serious", Decimal("-60")),
            line("finding", "counted", "FY2", "COMMENDATION", "30", dt.date(2026, 12, 31),
                 "award-municipal", Decimal("30")),
            line("finding", "deduplicated", "FY3", "ADMIN_PENALTY", "0", dt.date(2027, 5, 31),
                 "fine-serious", Decimal("-60")),
            line("finding", "expired", "FY4", "ADMIN_PENALTY", "0", dt.date(2025, 12, 31),
                 "fine-minor", Decimal("-20")),
            line("finding", "masked", "FY5", "ADMIN_PENALTY", "0", dt.date(2027, 1, 31),
                 "fine-general", Decimal("-24")),
            line("finding", "no_rule", "FY6", "PROVINCIAL_CREDIT_SCORE", "0", None, None),
            line("rule_cap", "counted", None, None, "5", None, "fine-serious")]
    rows[2]["deduplicated_by"] = "court/FY1"
    return pa.Table.from_pylist(rows, schema=catalog.SCORE_LINES.schema)


def bailu_lines(key: str) -> pa.Table:
    """白鹭分 lines below its min_score: base 550 − 600 (a subject rule) − 20 = −70 → score 0."""
    def line(line_type, record_id, points, rule):
        return {"scheme": "bailu", "score_month": MONTH, "subject_key": key,
                "line_type": line_type, "source_id": "court" if record_id else None,
                "record_id": record_id, "item_code": "ADMIN_PENALTY" if record_id else None,
                "level": None, "quantity": None, "occurred_on": None, "valid_until": None,
                "rule_id": rule, "dimension": "basic", "last_valid_day": None,
                "finding_points": Decimal(points) if record_id else None,
                "points": Decimal(points), "status": "counted", "deduplicated_by": None,
                "rules_version": "t", "run_id": "t"}
    return pa.Table.from_pylist([line("finding", "FB1", "-20", "fine"),
                                 line("subject", None, "-600", "hukou")],
                                schema=catalog.SCORE_LINES.schema)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("lookups")
    warehouse = root / "warehouse"
    settings = load_settings(PROJECT / "conf", env="local",
                             environ={"CITYCREDIT_WAREHOUSE": str(warehouse)})
    key = settings.subject_key
    schemes = load_schemes(settings.rules, ["haibei", "bailu"])
    published = [r for r in ROLES if r != "unpublished"]
    keys = [subject_key(PERSON[r], key) for r in published]
    publish_scores(warehouse, keys, schemes["haibei"], MONTH,
                   scores=[940 if r == "granted" else 1000 for r in published])
    publish_scores(warehouse, keys, schemes["bailu"], MONTH,
                   scores=[0 if r == "self" else 610 for r in published])
    tables.write_arrow(score_lines(subject_key(PERSON["self"], key)),
                       catalog.SCORE_LINES.at(warehouse), mode="overwrite",
                       replace={"scheme": "haibei", "score_month": MONTH})
    tables.write_arrow(bailu_lines(subject_key(PERSON["self"], key)),
                       catalog.SCORE_LINES.at(warehouse), mode="overwrite",
                       replace={"scheme": "bailu", "score_month": MONTH})
    t, day = today("Asia/Shanghai"), dt.timedelta(days=1)

    def consent(role, grantee="BANK01", purpose="loan", **dates):
        return {"consent_id": f"SQ-{role}", "id_number": PERSON[role], "grantee": grantee,
                "purpose": purpose, "granted_on": dates.pop("granted_on", t - 100 * day),
                **dates}
    write_consents(warehouse, [
        consent("granted", expires_on=t + 200 * day),
        consent("expires_today", expires_on=t),
        consent("expired", expires_on=t - day),
        consent("revoked_today", revoked_on=t),
        consent("revoked_tomorrow", revoked_on=t + day),
        consent("self", "PORTAL", "self"),
        consent("unpublished"),
        consent("not_yet", granted_on=t + day),
        # a correction: the current version (revoked) replaces the first one
        consent("corrected", known_from="2026-02", known_until="2026-03"),
        consent("corrected", revoked_on=t - 5 * day, known_from="2026-03"),
        consent("rental", "PORTAL", "rental"),
    ], key)
    return warehouse


@pytest.fixture(scope="module")
def service(warehouse):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = warehouse.parent / "service.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "citycredit.cli", "serve", "--host", "127.0.0.1", "--port",
             str(port)], stdout=log, stderr=subprocess.STDOUT, env=environment(warehouse),
            cwd=warehouse.parent)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 90
    while True:
        try:
            if client.get("/v1/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "service did not start: " + log_path.read_text()
        time.sleep(0.3)
    yield {"client": client, "process": process, "log": log_path, "warehouse": warehouse}
    process.terminate()
    process.wait(timeout=30)
    client.close()


def post(service, path, body, headers=BANK) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = service["client"].post(path, content=content, headers=headers)
    SENT.append(response.text)
    return response


def ask(service, role, path="/v1/scores/haibei", purpose="loan", headers=BANK, **extra):
    return post(service, path, {"id_number": PERSON[role], "purpose": purpose, **extra}, headers)


def audit_entries(warehouse) -> list[dict]:
    return AuditLog(f"sqlite:///{warehouse / 'lookup' / 'audit.sqlite'}").show()


# ---------------------------------------------------------------------------------------------
def test_a_granted_lookup_answers_score_and_grade_only(service):
    response = ask(service, "granted")
    assert response.status_code == 200
    assert response.json() == {"scheme": "haibei", "score_month": MONTH, "score": 940,
                               "grade": "C", "grade_label": "警示"}


@pytest.mark.parametrize("role,headers,path,purpose,status,outcome", [
    ("granted", {}, "/v1/scores/haibei", "loan", 401, "no_key"),
    ("granted", {"Authorization": "Bearer not-a-key"}, "/v1/scores/haibei", "loan", 401, "bad_key"),
    ("granted", BANK, "/v1/scores/bailu", "loan", 403, "scheme_not_allowed"),
    ("granted", BANK, "/v1/scores/nosuch", "loan", 403, "scheme_not_allowed"),
    ("rental", BANK, "/v1/scores/haibei", "rental", 403, "purpose_not_allowed"),
    ("no_consent", BANK, "/v1/scores/haibei", "loan", 403, "no_consent"),
    ("expired", BANK, "/v1/scores/haibei", "loan", 403, "consent_expired"),
    ("expires_today", BANK, "/v1/scores/haibei", "loan", 200, "granted"),
    ("revoked_today", BANK, "/v1/scores/haibei", "loan", 403, "consent_revoked"),
    ("revoked_tomorrow", BANK, "/v1/scores/haibei", "loan", 200, "granted"),
    ("not_yet", BANK, "/v1/scores/haibei", "loan", 403, "consent_not_yet_valid"),
    ("corrected", BANK, "/v1/scores/haibei", "loan", 403, "consent_revoked"),
    ("unpublished", BANK, "/v1/scores/haibei", "loan", 404, "not_found"),
    ("rental", PORTAL, "/v1/scores/bailu", "rental", 200, "granted"),
])
def test_each_status_and_its_audit_entry(service, role, headers, path, purpose, status, outcome):
    before = len(audit_entries(service["warehouse"]))
    response = ask(service, role, path, purpose, headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ({"scheme", "score_month", "score", "grade", "grade_label"}
                         if status == 200 else {"detail"})
    entries = audit_entries(service["warehouse"])
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry["status"], entry["outcome"], entry["channel"]) == (status, outcome, "http")
    key = subject_key(PERSON[role], load_settings(PROJECT / "conf", environ={}).subject_key)
    assert entry["subject_key"] == (None if status == 401 else key)   # no key: body unread
    assert entry["grantee"] == (None if status == 401 else
                                "PORTAL" if headers is PORTAL else "BANK01")


@pytest.mark.parametrize("body", [
    {"id_number": MALFORMED[0], "purpose": "loan"},
    {"id_number": MALFORMED[1], "purpose": "loan"},
    {"id_number": PERSON["granted"]},                                # no purpose
    {"id_number": PERSON["granted"], "purpose": "loan", "name": "张三"},
    b"not json", b"[1, 2]", b"",
])
def test_a_malformed_request_is_422_and_quotes_nothing(service, body):
    response = post(service, "/v1/scores/haibei", body)
    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
    assert "371002" not in response.text and "张三" not in response.text
    assert audit_entries(service["warehouse"])[-1]["outcome"] in ("malformed_id", "malformed_body")


@pytest.mark.parametrize("extra,said", [
    ({"purpse": "loan"}, 'missing field(s) purpose; unknown field(s) "purpse" in the body'),
    ({"purpose": "loan", "name": "张三"}, 'unknown field(s) "name" in the body'),
    ({"purpose": "loan", PERSON["granted"]: "loan"},
     "1 unknown field(s) not named here (not a plain field name) in the body"),
    ({"purpose": "loan", "张三": "x", "channel": "x"},
     'unknown field(s) "channel"; 1 unknown field(s) not named here'),
])
def test_an_unknown_field_is_named_and_no_value_is_quoted(service, extra, said):
    """A 422 for an unknown field names it (a newcomer's typo said only "unknown field(s)"),
    with the same status and JSON keys; a key that is no plain field name (it may be a value:
    an identity number, a name) is counted, not quoted."""
    response = post(service, "/v1/scores/haibei", {"id_number": PERSON["granted"], **extra})
    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
    assert response.json()["detail"].startswith(said), response.json()
    assert PERSON["granted"] not in response.text and "张三" not in response.text
    assert audit_entries(service["warehouse"])[-1]["outcome"] == "malformed_body"


def test_the_persons_own_report_explains_the_score(service):
    response = ask(service, "self", "/v1/reports/haibei", "self", PORTAL)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["score"] == 1000 and report["grade"] == "A" and report["base_score"] == "1000"
    counted = {f["record_id"]: f for f in report["counted"]}
    assert counted["FY1"]["points"] == "-60" and counted["FY1"]["last_valid_day"] == "2027-05-31"
    assert (counted["FY2"]["item_code"], counted["FY2"]["item"]) == ("COMMENDATION", "表彰奖励")
    assert [f["record_id"] for f in report["deduplicated"]] == ["FY3"]
    assert report["deduplicated"][0]["deduplicated_by"] == "court/FY1"
    assert [f["record_id"] for f in report["expired"]] == ["FY4"]
    assert [f["record_id"] for f in report["masked"]] == ["FY5"]
    assert "FY6" not in response.text                                 # no_rule lines are not shown
    assert report["adjustments"] == [{"type": "rule_cap", "rule_id": "fine-serious",
                                      "dimension": "law", "quantity": None, "points": "5"}]
    assert report["next_change_after"] == "2026-12-31"               # earliest counted last day
    # base + every point listed (this hand-made month's lines: −60 + 30 + 5); no bound reached
    assert (report["raw_score"], report["bounded_by"]) == ("975", None)
    # a score at the scheme's minimum says so: its lines sum below it
    bounded = ask(service, "self", "/v1/reports/bailu", "self", PORTAL).json()
    assert (bounded["score"], bounded["base_score"]) == (0, "550")
    assert [a["type"] for a in bounded["adjustments"]] == ["subject"]
    assert (bounded["raw_score"], bounded["bounded_by"]) == ("-70", "min_score")
    # a report is the person's own: a bank's loan purpose does not get it
    assert ask(service, "granted", "/v1/reports/haibei", "loan").status_code == 403


def test_recognition_reads_the_grade_through_the_mapping_table(service):
    response = ask(service, "rental", "/v1/recognition/haibei", "rental", PORTAL, **{"as": "bailu"})
    assert response.status_code == 200, response.text
    assert response.json() == {"scheme": "haibei", "score_month": MONTH, "grade": "A",
                               "grade_label": "良好",
                               "as": {"scheme": "bailu", "grade": "A", "grade_label": "良好"}}
    unknown = ask(service, "rental", "/v1/recognition/haibei", "rental", PORTAL, **{"as": "huzhou"})
    assert unknown.status_code == 422


def test_the_cli_writes_the_same_chained_log(service):
    warehouse = service["warehouse"]
    before = audit_entries(warehouse)
    shown = cli(warehouse, "audit", "show", "--json")
    assert [json.loads(line) for line in shown.stdout.splitlines()] == before
    done = cli(warehouse, "lookup", "--grantee", "BANK01", "--purpose", "loan", "--scheme",
               "haibei", stdin=PERSON["granted"] + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"scheme": "haibei", "score_month": MONTH, "score": 940,
                                       "grade": "C", "grade_label": "警示"}
    refused = cli(warehouse, "lookup", "--grantee", "BANK01", "--purpose", "loan", "--scheme",
                  "haibei", stdin=PERSON["expired"] + "\n")
    assert refused.returncode == 1 and refused.stderr.startswith("403:")
    assert ask(service, "granted").status_code == 200                 # the service goes on
    after = audit_entries(warehouse)
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    new = after[len(before):]
    assert [(e["channel"].split(":")[0], e["status"]) for e in new] == \
        [("cli", 200), ("cli", 403), ("http", 200)]
    verified = cli(warehouse, "audit", "verify")
    assert verified.returncode == 0 and "chain intact" in verified.stdout
    # audit show by person: the identity number goes in on stdin, hashed
    mine = cli(warehouse, "audit", "show", "--json", "--subject", stdin=PERSON["expired"] + "\n")
    outcomes = [json.loads(line)["outcome"] for line in mine.stdout.splitlines()]
    assert outcomes and set(outcomes) == {"consent_expired"}
    SENT.extend([done.stdout, done.stderr, refused.stdout, refused.stderr, mine.stdout])


def test_no_answer_leaves_without_its_audit_entry(service):
    audit_db = service["warehouse"] / "lookup" / "audit.sqlite"
    blocker = sqlite3.connect(audit_db, isolation_level=None, timeout=5)
    blocker.execute("BEGIN EXCLUSIVE")             # the log cannot be written meanwhile
    try:
        response = ask(service, "granted")
        assert response.status_code == 503
        assert set(response.json()) == {"detail"} and "score" not in response.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ask(service, "granted").status_code == 200


def test_a_new_publication_is_served_without_restart(service):
    warehouse = service["warehouse"]
    settings = load_settings(PROJECT / "conf", environ={"CITYCREDIT_WAREHOUSE": str(warehouse)})
    scheme = load_schemes(settings.rules, ["haibei"])["haibei"]
    # revoked_tomorrow is published again too: the erasure test finds them served, whichever
    # of the two runs first
    publish_scores(warehouse, [subject_key(PERSON[r], settings.subject_key)
                               for r in ("granted", "revoked_tomorrow")], scheme,
                   NEXT, scores=[1160, 1000])
    deadline = time.monotonic() + 60
    while True:
        body = ask(service, "granted").json()
        if body["score_month"] == NEXT:
            break
        assert time.monotonic() < deadline, "the new month was not served within a minute"
        time.sleep(0.5)
    assert body == {"scheme": "haibei", "score_month": NEXT, "score": 1160, "grade": "AAA",
                    "grade_label": "模范"}
    # a person not in the new month's publication has no score in it
    assert ask(service, "expires_today").status_code == 404
    assert service["process"].poll() is None


def test_an_erased_person_leaves_the_index(service):
    """Erasure (the privacy issue) deletes the person from the Delta tables; the service rebuilds
    and drops the old generation, and no byte of the index keeps their subject key."""
    warehouse = service["warehouse"]
    key = subject_key(PERSON["revoked_tomorrow"],
                      load_settings(PROJECT / "conf", environ={}).subject_key)
    before = ask(service, "revoked_tomorrow", "/v1/scores/haibei")
    assert before.status_code == 200 and before.json()["score"] == 1000, before.text
    for table in (catalog.PUBLISHED_SCORES, catalog.SILVER_CONSENTS):
        tables.delete_where(table.at(warehouse), f"subject_key = '{key}'")
    deadline = time.monotonic() + 60
    while ask(service, "revoked_tomorrow").status_code != 403:      # no consent any more
        assert time.monotonic() < deadline, "the erasure was not served within a minute"
        time.sleep(0.5)
    index = warehouse / "lookup"
    while True:                                   # the replaced generation is dropped after 3 s
        holding = [p.name for p in index.glob("index.sqlite*") if key.encode() in p.read_bytes()]
        if not holding:
            break
        assert time.monotonic() < deadline, f"the erased key is still in {holding}"
        time.sleep(0.5)
    assert ask(service, "revoked_tomorrow").status_code == 403


def _copy(db: Path, to: Path) -> Path:
    with sqlite3.connect(db) as source, sqlite3.connect(to) as copy:
        source.backup(copy)
    return to


@pytest.mark.parametrize("tamper,named", [
    ("UPDATE audit_log SET status = 200, outcome = 'granted' WHERE seq = 3", "entry 3: changed"),
    ("DELETE FROM audit_log WHERE seq = 4", "entry 4 missing"),
    ("UPDATE audit_log SET seq = CASE seq WHEN 5 THEN -6 ELSE -5 END WHERE seq IN (5, 6); "
     "UPDATE audit_log SET seq = -seq WHERE seq < 0", "entry 5"),
    ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", "entries removed at the end"),
])
def test_verify_fails_after_an_entry_is_edited_removed_or_reordered(service, tmp_path, tamper,
                                                                     named):
    warehouse = service["warehouse"]
    copy = _copy(warehouse / "lookup" / "audit.sqlite", tmp_path / "audit.sqlite")
    url = f"sqlite:///{copy}"
    assert cli(warehouse, "audit", "verify", CITYCREDIT_LOOKUP_AUDIT_URL=url).returncode == 0
    with sqlite3.connect(copy) as db:
        with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
            db.execute(tamper.split(";")[0])
        db.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; "
                         + tamper)
    broken = cli(warehouse, "audit", "verify", CITYCREDIT_LOOKUP_AUDIT_URL=url)
    assert broken.returncode == 1 and "CHAIN BROKEN" in broken.stdout
    assert named in broken.stderr


def test_no_identity_number_in_any_answer_log_or_audit_entry(service):
    """Runs last: everything the service said, logged and recorded in this module."""
    service_log = service["log"].read_text(encoding="utf-8")
    assert "grantee=BANK01 kind=score scheme=haibei status=200 outcome=granted" in service_log
    audit_db = (service["warehouse"] / "lookup" / "audit.sqlite")
    dump = "\n".join(sqlite3.connect(audit_db).iterdump())
    sent_numbers = [*PERSON.values(), MALFORMED[0], MALFORMED[1]]
    for text in [service_log, dump, *SENT]:
        for number in sent_numbers:
            assert number not in text
