"""Production-safe keys (issue 24 item 5): the public development keys only with
CITYCREDIT_ENV=local, and a warehouse that refuses a run with another subject key than the one
that made its subject keys."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from citycredit.config import DEVELOPMENT_KEYS, ConfigError, load_settings
from citycredit.key_record import KeyMismatch, check_subject_key, key_fingerprint, record_path

REAL_KEY = "a-real-secret-of-at-least-32-characters"
CENTRE_KEY = "the-centre-s-secret-key-long-enough-32+"

PROJECT = Path(__file__).resolve().parents[2]
DEV_KEY = DEVELOPMENT_KEYS["subject_key"]


@pytest.fixture
def conf(tmp_path):
    """The shipped conf/ plus a production overlay that sets no key (as an operator's would)."""
    shutil.copytree(PROJECT / "conf", tmp_path / "conf")
    (tmp_path / "rules").mkdir()
    (tmp_path / "conf" / "production.yaml").write_text("paths:\n  warehouse: /srv/wh\n")
    return tmp_path / "conf"


def test_local_uses_the_development_key(conf):
    settings = load_settings(conf, environ={})      # CITYCREDIT_ENV unset: local
    assert settings.env == "local" and settings.subject_key == DEV_KEY
    assert settings.lookup["audit_key"] == DEVELOPMENT_KEYS["lookup.audit_key"]


def test_production_without_a_key_is_refused(conf):
    with pytest.raises(ConfigError, match=r"no subject key: set CITYCREDIT_SUBJECT_KEY "
                                          r"\(CITYCREDIT_ENV=production has none\); identity"):
        load_settings(conf, environ={"CITYCREDIT_ENV": "production"})


@pytest.mark.parametrize("where", ["conf", "environment"])
def test_the_development_key_is_refused_outside_local(conf, where):
    environ = {"CITYCREDIT_ENV": "production"}
    if where == "conf":
        (conf / "production.yaml").write_text(f"subject_key: {DEV_KEY}\n")
    else:
        environ["CITYCREDIT_SUBJECT_KEY"] = DEV_KEY
    with pytest.raises(ConfigError, match=r"key 'subject_key' is the public development key, "
                                          r"used only with CITYCREDIT_ENV=local"):
        load_settings(conf, environ=environ)


def test_the_development_audit_key_is_refused_outside_local(conf):
    with pytest.raises(ConfigError, match=r"environment variable CITYCREDIT_AUDIT_KEY: key "
                                          r"'lookup.audit_key' is the public development key"):
        load_settings(conf, environ={"CITYCREDIT_ENV": "production",
                                     "CITYCREDIT_SUBJECT_KEY": REAL_KEY,
                                     "CITYCREDIT_AUDIT_KEY": DEVELOPMENT_KEYS["lookup.audit_key"]})


def test_production_with_its_own_keys_starts(conf):
    settings = load_settings(conf, environ={"CITYCREDIT_ENV": "production",
                                            "CITYCREDIT_SUBJECT_KEY": REAL_KEY})
    assert settings.subject_key == REAL_KEY and settings.lookup["audit_key"] is None


def test_production_refuses_a_short_key_without_showing_it(conf):
    with pytest.raises(ConfigError, match=r"key 'subject_key' \(CITYCREDIT_SUBJECT_KEY\) has 3 "
                                          r"characters; outside CITYCREDIT_ENV=local a key has "
                                          r"at least 32") as refused:
        load_settings(conf, environ={"CITYCREDIT_ENV": "production",
                                     "CITYCREDIT_SUBJECT_KEY": "abc"})
    assert "abc" not in str(refused.value).replace("abcd", "")
    with pytest.raises(ConfigError, match=r"key 'lookup.audit_key' \(CITYCREDIT_AUDIT_KEY\)"):
        load_settings(conf, environ={"CITYCREDIT_ENV": "production",
                                     "CITYCREDIT_SUBJECT_KEY": "k" * 43,
                                     "CITYCREDIT_AUDIT_KEY": "short"})


def _cli(tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    environ.update({"PYTHONPATH": str(PROJECT), "CITYCREDIT_WAREHOUSE": str(tmp_path / "wh"),
                    "CITYCREDIT_LANDING": str(tmp_path / "landing"), **env})
    return subprocess.run([sys.executable, "-m", "citycredit.cli", "run", "--month", "2026-10"],
                          cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def test_a_production_run_without_a_key_is_not_started(tmp_path, conf):
    done = _cli(tmp_path, CITYCREDIT_ENV="production", CITYCREDIT_CONF=str(conf))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("NOT STARTED: no subject "
                                                   "key: set CITYCREDIT_SUBJECT_KEY (CITYCREDIT_ENV"
                                                   "=production has none)")
    assert not (tmp_path / "wh").exists()


def test_the_warehouse_refuses_another_key_before_landing(tmp_path, conf):
    """The first run records the key's fingerprint (never the key); a run with another key
    stops before anything is landed, naming both fingerprints."""
    from citycredit.ingest.task import check_deliveries

    production = load_settings(conf, environ={
        "CITYCREDIT_ENV": "production", "CITYCREDIT_SUBJECT_KEY": CENTRE_KEY,
        "CITYCREDIT_WAREHOUSE": str(tmp_path / "wh"), "CITYCREDIT_LANDING": str(tmp_path / "l")})
    (tmp_path / "l").mkdir()                # (a landing zone that is not there refuses first)
    (tmp_path / "landing").mkdir()
    with pytest.raises(Exception):          # no deliveries: but the key is recorded first
        check_deliveries("2026-10", production)
    record = json.loads(record_path(tmp_path / "wh").read_text())
    assert record["fingerprint"] == key_fingerprint(CENTRE_KEY)
    assert record["development"] is False
    assert CENTRE_KEY not in record_path(tmp_path / "wh").read_text()
    check_subject_key(production)           # the same key: accepted

    # a worker that forgot its settings: local env, development key, same warehouse
    done = _cli(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "NOT STARTED: " in done.stderr
    assert "subject keys were made with another key (a production key)" in done.stderr
    assert key_fingerprint(DEV_KEY) in done.stderr and "nothing was done" in done.stderr
    # as the refused run found it: the record, and not the lock folder it made
    assert sorted(p.name for p in (tmp_path / "wh").iterdir()) == ["_keys"]
    with pytest.raises(KeyMismatch):
        check_subject_key(load_settings(conf, environ={"CITYCREDIT_WAREHOUSE":
                                                       str(tmp_path / "wh")}))
