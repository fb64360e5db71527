"""Inputs the CLI refuses before it touches anything: a typo'd scheme in `run`, and a value
`privacy-scan` could only match as a substring (a false "found")."""
from click.testing import CliRunner

from citycredit.cli import cli


def test_run_refuses_an_unknown_scheme_before_landing(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(tmp_path / "landing"))
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei,nosuch"])
    assert result.exit_code == 2
    assert "NOT STARTED" in result.output and "unknown scheme 'nosuch'" in result.output
    assert "available: bailu, dazixiang, haibei, huzhou" in result.output
    assert not (tmp_path / "warehouse").exists()          # nothing landed, nothing erased


def test_privacy_scan_refuses_what_is_not_a_number_or_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(tmp_path / "landing"))
    runner = CliRunner()
    short = runner.invoke(cli, ["privacy-scan", "--id-number", "3710021990"])
    assert short.exit_code == 2 and "not a valid resident identity number" in short.output
    assert "3710021990" not in short.output                # never echoed
    bad_check = runner.invoke(cli, ["privacy-scan", "--id-number", "-"],
                              input="371002199001150026\n371002199001150027\n")
    assert bad_check.exit_code == 2 and "standard input, line 2" in bad_check.output
    assert "371002199001150027" not in bad_check.output
    key = runner.invoke(cli, ["privacy-scan", "--subject-key", "ab"])
    assert key.exit_code == 2 and "not a subject key" in key.output


def test_empty_values_are_refused_not_taken_for_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(tmp_path / "landing"))
    runner = CliRunner()
    blank = runner.invoke(cli, ["privacy-scan", "--id-number", "  "])
    assert blank.exit_code == 2 and "the value is empty" in blank.output
    for schemes in (",", ""):          # not "every scheme": that would publish all four
        result = runner.invoke(cli, ["run", "--month", "2026-10", "--schemes", schemes])
        assert result.exit_code == 2 and "names no scheme" in result.output
    assert not (tmp_path / "warehouse").exists()
