"""A conf folder outside the checkout (issue 22 item 2): rules and suites still come from the
project, data from the working directory; a missing rules or suite folder stops before anything
runs, in one line naming the setting, its value and its origin; `citycredit config` shows every
resolved setting with where it came from, secrets masked."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from citycredit.cli import cli
from citycredit.config import PROJECT_ROOT, ConfigError, load_settings

CONF = PROJECT_ROOT / "conf"


@pytest.fixture
def etc(tmp_path, monkeypatch):
    """The shipped conf/ copied to <tmp>/etc/citycredit (no rules or expectations beside it), the
    working directory elsewhere, no CITYCREDIT_* variable but CITYCREDIT_CONF."""
    folder = tmp_path / "etc" / "citycredit"
    shutil.copytree(CONF, folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for var in [v for v in os.environ if v.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_CONF", str(folder))
    return folder


def test_rules_and_suites_come_from_the_project_data_from_the_working_directory(etc, tmp_path):
    s = load_settings()
    assert s.conf_dir == etc
    assert (s.rules, s.expectations) == (PROJECT_ROOT / "rules", PROJECT_ROOT / "expectations")
    assert (s.landing, s.warehouse) == (tmp_path / "work" / "landing", tmp_path / "work" / "warehouse")
    assert s.policy["reports"] == tmp_path / "work" / "reports"
    assert s.origins["paths.rules"] == str(etc / "base.yaml")
    assert s.origins["paths.warehouse"] == str(etc / "local.yaml")
    assert s.origins["conf"] == "environment variable CITYCREDIT_CONF"


def test_an_explicit_absolute_folder_wins(etc, tmp_path, monkeypatch):
    rules = tmp_path / "own-rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules))
    assert load_settings().rules == rules
    (etc / "local.yaml").write_text((etc / "local.yaml").read_text().replace(
        "  warehouse: warehouse\n",
        f"  warehouse: warehouse\n  expectations: {PROJECT_ROOT / 'expectations'}\n"))
    s = load_settings()
    assert s.expectations == PROJECT_ROOT / "expectations"
    assert s.origins["paths.expectations"] == str(etc / "local.yaml")


@pytest.mark.parametrize("variable, value, said", [
    ("CITYCREDIT_EXPECTATIONS", "/nowhere/expectations",
     "environment variable CITYCREDIT_EXPECTATIONS: key 'paths.expectations': no expectations "
     "folder at /nowhere/expectations (value '/nowhere/expectations')"),
    ("CITYCREDIT_RULES", "/nowhere/rules",
     "environment variable CITYCREDIT_RULES: key 'paths.rules': no rules folder at "
     "/nowhere/rules (value '/nowhere/rules')"),
])
def test_a_missing_folder_stops_the_month_before_anything_is_landed(etc, tmp_path, monkeypatch,
                                                                    variable, value, said):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"NOT STARTED: {said}"]     # one line
    assert "Traceback" not in result.output
    assert not (tmp_path / "work" / "warehouse").exists()


def test_a_missing_suite_names_the_file_the_setting_and_the_source(etc, tmp_path):
    suites = tmp_path / "suites"
    shutil.copytree(PROJECT_ROOT / "expectations", suites)
    (suites / "kind.population.json").unlink()
    (etc / "local.yaml").write_text((etc / "local.yaml").read_text().replace(
        "  warehouse: warehouse\n", f"  warehouse: warehouse\n  expectations: {suites}\n"))
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        f"{etc / 'local.yaml'}: key 'paths.expectations': no expectation suite "
        f"kind.population.json in {suites} (source 'population') (value '{suites}')")


def test_a_relative_value_says_what_it_is_relative_to(etc):
    (etc / "local.yaml").write_text((etc / "local.yaml").read_text().replace(
        "  warehouse: warehouse\n", "  warehouse: warehouse\n  rules: regels\n"))
    with pytest.raises(ConfigError, match=rf"local.yaml: key 'paths.rules': no rules folder at "
                                          rf"{PROJECT_ROOT / 'regels'} \(value 'regels'; relative "
                                          rf"to the project {PROJECT_ROOT}\)"):
        load_settings()


def test_config_shows_each_setting_with_its_origin_and_masks_secrets(etc, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYCREDIT_SUBJECT_KEY", "prod-subject-key-123")
    monkeypatch.setenv("CITYCREDIT_LOOKUP_AUDIT_URL", "postgresql://audit:s3cret-pw@db:5432/audit")
    (etc / "local.yaml").write_text((etc / "local.yaml").read_text().replace(
        'spark:\n', 'spark:\n  conf: {spark.ssl.keyPassword: pw-in-conf, spark.ui.enabled: "false"}\n'))
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["conf"].endswith("← environment variable CITYCREDIT_CONF") and str(etc) in lines["conf"]
    assert lines["paths.warehouse"].split() == [
        "paths.warehouse", str(tmp_path / "work" / "warehouse"), "←",
        f"{etc / 'local.yaml'}:", "paths.warehouse"]
    assert lines["paths.rules"].split()[1:] == [str(PROJECT_ROOT / "rules"), "←",
                                                f"{etc / 'base.yaml'}:", "paths.rules"]
    assert lines["subject_key"].split()[1:] == ["********", "(set)", "←", "environment",
                                                "variable", "CITYCREDIT_SUBJECT_KEY"]
    assert "postgresql://audit:********@db:5432/audit" in lines["lookup.audit_url"]
    assert lines["spark.conf.spark.ssl.keyPassword"].split()[1] == "********"
    assert lines["spark.conf.spark.ui.enabled"].split()[1] == "false"
    assert lines["sources"].endswith(f"← {etc / 'sources.yaml'}")
    assert lines["grantees"].endswith(f"← {etc / 'grantees.yaml'}")
    (etc / "grantees.yaml").unlink()
    missing = CliRunner().invoke(cli, ["config"]).output
    assert f"none: {etc / 'grantees.yaml'} is missing (serve and lookup will not start" in missing
    for secret in ("prod-subject-key-123", "s3cret-pw", "pw-in-conf",
                   "citycredit-development-key-not-for-production"):
        assert secret not in result.output


def test_config_shows_production_settings_before_the_keys_are_set(etc, monkeypatch):
    # an operator looks the settings over before setting the keys (newcomer try-out): shown,
    # then what would stop a run, exit 2; a run itself still refuses to start
    (etc / "production.yaml").write_text("paths:\n  warehouse: /srv/credit/warehouse\n")
    monkeypatch.setenv("CITYCREDIT_ENV", "production")
    monkeypatch.delenv("CITYCREDIT_SUBJECT_KEY", raising=False)
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 2, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert lines["paths.warehouse"].split()[1] == "/srv/credit/warehouse"
    assert "NOT READY: no subject key: set CITYCREDIT_SUBJECT_KEY" in result.output
    with pytest.raises(ConfigError, match="no subject key"):
        load_settings()
