"""Inputs the CLI refuses before it touches anything: a typo'd scheme in `run`, and a value
`privacy-scan` could only match as a substring (a false "found")."""
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from citycredit.cli import cli


@pytest.fixture
def warehouse_env(tmp_path, monkeypatch):
    """CITYCREDIT_WAREHOUSE / CITYCREDIT_LANDING under tmp_path (neither created)."""
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("CITYCREDIT_LANDING", str(tmp_path / "landing"))
    return tmp_path


def test_run_refuses_an_unknown_scheme_before_landing(tmp_path, warehouse_env):
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei,nosuch"])
    assert result.exit_code == 2
    assert "NOT STARTED" in result.output and "unknown scheme 'nosuch'" in result.output
    assert "available: bailu, dazixiang, haibei, huzhou" in result.output
    assert not (tmp_path / "warehouse").exists()          # nothing landed, nothing erased


def test_run_refuses_a_broken_rule_file_before_landing(tmp_path, monkeypatch, warehouse_env):
    """Without --schemes every scheme is scored: a broken one stops the month before anything
    is landed (not at the score step, after landing and erasing)."""
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parents[2] / "rules", rules)
    (rules / "haibei.yaml").write_text((rules / "haibei.yaml").read_text()
                                       .replace("base_score:", "base_scor:", 1))
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules))
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10"])
    assert result.exit_code == 2, result.output
    assert "NOT STARTED" in result.output and "haibei.yaml" in result.output
    assert not (tmp_path / "warehouse").exists()


def test_run_refuses_a_rules_folder_without_schemes(tmp_path, monkeypatch, warehouse_env):
    """A mis-set CITYCREDIT_RULES (no scheme file) would land, erase and 'publish' nothing with
    exit 0: refused before anything runs."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "catalogue.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "rules" / "catalogue.yaml").read_text())
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules))
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10"])
    assert result.exit_code == 2, result.output
    assert "NOT STARTED" in result.output and "no scheme file" in result.output
    assert not (tmp_path / "warehouse").exists()


def test_run_without_deliveries_says_each_missing_path_once(tmp_path, warehouse_env):
    """Nothing delivered where the landing folder points: the report's NOT PUBLISHED line lists
    every required source's expected `_READY`, and the STOPPED line does not list them all
    again."""
    from citycredit.config import load_settings

    (tmp_path / "landing").mkdir()
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei"])
    assert result.exit_code == 1, result.output
    required = [s for s, conf in load_settings().sources.items() if conf["required"]]
    assert len(required) > 1
    for source in required:
        expected = str(tmp_path / "landing" / source / "2026-10" / "_READY")
        assert result.output.count(expected) == 1, (expected, result.output)
    # a first month: there is no previous publication to stay (a newcomer's try-out)
    assert "NOT PUBLISHED (nothing is published yet): month 2026-10: no complete " \
           "delivery from required source(s)" in result.output
    # the STOPPED line names the month and the sources (a log keeping only stderr has them)
    assert f"STOPPED: month 2026-10: no complete delivery from required source(s) " \
           f"{', '.join(required)} (in full: the report's NOT PUBLISHED line above)" \
           in result.output


def test_progress_lines_in_a_file_are_whole_lines_without_a_source_location(tmp_path,
                                                                          warehouse_env, capsys):
    """Into a file or a pipe a step is one line, `[HH:MM:SS] stage detail`: not rich's log
    with its `cli.py:107` column, wrapped at 80 columns and padded (newcomer try-out)."""
    import re

    (tmp_path / "landing").mkdir()
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei"])
    assert result.exit_code == 1, result.output
    assert re.search(r"^\[\d\d:\d\d:\d\d\] check check_deliveries$", result.output, re.M), \
        result.output
    assert "cli.py" not in result.output
    from citycredit.cli import _progress      # the policy tools' progress too

    detail = " ".join(f"part{i}" for i in range(40))        # 270 characters
    status, progress = _progress("simulate haibei-blood-15 2026-10")
    with status:
        progress("scan", detail)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"] scan {detail}"), lines


def test_privacy_scan_refuses_what_is_not_a_number_or_key(tmp_path, warehouse_env):
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


def test_empty_values_are_refused_not_taken_for_everything(tmp_path, warehouse_env):
    runner = CliRunner()
    blank = runner.invoke(cli, ["privacy-scan", "--id-number", "  "])
    assert blank.exit_code == 2 and "the value is empty" in blank.output
    for schemes in (",", ""):          # not "every scheme": that would publish all four
        result = runner.invoke(cli, ["run", "--month", "2026-10", "--schemes", schemes])
        assert result.exit_code == 2 and "names no scheme" in result.output
    assert not (tmp_path / "warehouse").exists()


def test_privacy_scan_of_a_missing_folder_is_no_proof_and_waits_for_no_run(tmp_path,
                                                                              warehouse_env):
    """A mistyped warehouse or landing path is refused (it would otherwise say "clean"), and a
    scan does not run while a run, an erasure or a cleanup holds the warehouse."""
    import subprocess
    import sys

    runner = CliRunner()
    number = "371002199001150026"
    missing = runner.invoke(cli, ["privacy-scan", "--id-number", number])
    assert missing.exit_code == 2 and "does not exist: nothing was scanned" in missing.output
    assert "warehouse" in missing.output and number not in missing.output
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "landing").mkdir()
    empty = runner.invoke(cli, ["privacy-scan", "--id-number", number])   # a folder, no warehouse
    assert empty.exit_code == 2 and "holds no warehouse" in empty.output
    assert not (tmp_path / "warehouse" / "_locks").exists()             # and nothing written
    (tmp_path / "warehouse" / "bronze").mkdir()
    clean = runner.invoke(cli, ["privacy-scan", "--id-number", number])
    assert clean.exit_code == 0, clean.output
    holder = subprocess.Popen(      # another process holds the lock, as a run would
        [sys.executable, "-c", "import sys, time\n"
         "from citycredit.io.lock import EXCLUSIVE, warehouse_lock\n"
         f"with warehouse_lock({str(tmp_path / 'warehouse')!r}, 'citycredit run 2026-10', EXCLUSIVE):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = runner.invoke(cli, ["privacy-scan", "--id-number", number])
    finally:
        holder.kill()
    assert busy.exit_code == 75 and "NOT STARTED" in busy.output
    assert "citycredit run 2026-10" in busy.output


def test_the_spark_submit_entry_refuses_a_bad_month_or_scheme_before_spark(tmp_path):
    """jobs/score.py (what spark-submit runs): a one-line refusal, exit 2, no traceback."""
    import os
    import subprocess
    import sys

    job = Path(__file__).resolve().parents[2] / "jobs" / "score.py"
    env = {**os.environ, "CITYCREDIT_WAREHOUSE": str(tmp_path / "warehouse")}
    for args, said in ((["--month", "2026-13"], "'2026-13' is not a month"),
                       (["--month", "2026-10", "--scheme", "nope"], "unknown scheme 'nope'")):
        done = subprocess.run([sys.executable, str(job), *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("NOT STARTED") and said in done.stderr
        assert "Traceback" not in done.stderr


def test_the_spark_submit_entry_waits_for_no_erasure(tmp_path):
    """jobs/score.py writes gold under the warehouse lock (shared): while an erasure holds it,
    the job does not start (exit 75, naming the holder) — before Spark starts."""
    import os
    import subprocess
    import sys

    from citycredit.io.lock import EXCLUSIVE, warehouse_lock

    project = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CITYCREDIT_WAREHOUSE": str(tmp_path / "warehouse"),
           "PYTHONPATH": str(project)}
    with warehouse_lock(tmp_path / "warehouse", "citycredit erase --month 2026-10", EXCLUSIVE):
        done = subprocess.run([sys.executable, str(project / "jobs" / "score.py"), "--month",
                               "2026-10"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 75, done.stderr
    assert done.stderr.startswith("NOT STARTED") and "citycredit erase --month 2026-10" \
        in done.stderr


def test_the_spark_submit_entry_refuses_production_without_a_key(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    project = Path(__file__).resolve().parents[2]
    shutil.copytree(project / "conf", tmp_path / "conf")
    (tmp_path / "conf" / "production.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    env.update({"CITYCREDIT_CONF": str(tmp_path / "conf"), "CITYCREDIT_ENV": "production",
                "CITYCREDIT_RULES": str(project / "rules"), "PYTHONPATH": str(project)})
    done = subprocess.run([sys.executable, str(project / "jobs" / "score.py"), "--month",
                           "2026-10"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("NOT STARTED: no subject key: set CITYCREDIT_SUBJECT_KEY")


def _lookup(body: str):
    from citycredit.identity import check_char

    return CliRunner().invoke(cli, ["lookup", "--grantee", "BANK01", "--purpose", "loan",
                                    "--scheme", "haibei"], input=body + check_char(body) + "\n")


def test_a_lookup_without_a_warehouse_says_nothing_is_published_and_creates_nothing(
        tmp_path, warehouse_env):
    """Run from a folder without a warehouse (CITYCREDIT_WAREHOUSE forgotten): one line saying
    nothing is published there, naming the setting and where it came from — not a 403 about
    consent, and no ./warehouse made by a read."""
    body = "37100219900101123"
    result = _lookup(body)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"nothing is published: no warehouse at {tmp_path / 'warehouse'} (paths.warehouse, "
        "from environment variable CITYCREDIT_WAREHOUSE)")
    assert "Traceback" not in result.output and body not in result.output
    assert not (tmp_path / "warehouse").exists()
    served = CliRunner().invoke(cli, ["serve", "--port", "18089"])
    assert served.exit_code == 1 and served.output.startswith("nothing is published: no warehouse")
    assert not (tmp_path / "warehouse").exists()


def test_a_lookup_on_a_warehouse_with_nothing_published_says_so(tmp_path, warehouse_env):
    """A warehouse before its first month: the lookup answers 503 'no scores are published yet'
    (not a refusal about consent, not a crash of the serving index)."""
    (tmp_path / "warehouse").mkdir()
    body = "37100219900101123"
    result = _lookup(body)
    assert result.exit_code == 1, result.output
    assert "503: no scores are published yet" in result.output
    assert "consent" not in result.output
    assert "Traceback" not in result.output and body not in result.output


def test_run_and_erase_refuse_a_landing_zone_that_is_not_there(tmp_path, warehouse_env):
    """A mistyped CITYCREDIT_LANDING is a setting's mistake: not every delivery folder gone by
    retention (the month was published from bronze), nor an erasure that leaves delivery files."""
    for command in (["run", "--month", "2026-10"], ["erase", "--month", "2026-10"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert f"paths.landing: no landing folder at {tmp_path / 'landing'} (from environment " \
               "variable CITYCREDIT_LANDING)" in result.output, result.output
        if command[0] == "run":     # refused before anything is written: no key record, no lock
            # and a warehouse folder that is not there yet is said to be new (a mistyped path)
            assert f"NOTE: no warehouse at {tmp_path / 'warehouse'} yet (paths.warehouse, from " \
                   "environment variable CITYCREDIT_WAREHOUSE)" in result.output, result.output
            assert not (tmp_path / "warehouse").exists() or \
                not any((tmp_path / "warehouse").iterdir()), list((tmp_path / "warehouse").iterdir())
    assert not (tmp_path / "warehouse" / "gold").exists()


def test_run_refuses_a_new_warehouse_when_the_landing_zone_holds_earlier_months(tmp_path,
                                                                               warehouse_env):
    """A mistyped CITYCREDIT_WAREHOUSE (a folder that is not there) beside a landing zone with
    earlier months would score the month without their findings and publish it (exit 0):
    refused before anything is written, naming the months; --new-warehouse starts one anyway."""
    for source, month in (("population", "2026-08"), ("court", "2026-09"), ("court", "2026-10")):
        folder = tmp_path / "landing" / source / month
        folder.mkdir(parents=True)
        (folder / "_READY").write_text("")
    (tmp_path / "landing" / "court" / "2026-07").mkdir()          # not complete: not a month
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei"])
    assert result.exit_code == 2, result.output
    assert (f"NOT STARTED: no warehouse at {tmp_path / 'warehouse'} (paths.warehouse, from "
            "environment variable CITYCREDIT_WAREHOUSE), but the landing zone "
            f"{tmp_path / 'landing'} holds 2 earlier month(s) (2026-08 … 2026-09)") \
        in " ".join(result.output.split()), result.output
    assert "citycredit run --month 2026-08" in result.output
    assert not (tmp_path / "warehouse").exists()
    # nor does an erasure there say "0 person(s) erased" and leave a lock folder that would
    # pass for a warehouse
    result = CliRunner().invoke(cli, ["erase", "--month", "2026-10"])
    assert result.exit_code == 2 and "NOT STARTED: no warehouse at" in result.output, result.output
    assert not (tmp_path / "warehouse").exists()
    # on purpose: the run goes on (and stops at the missing deliveries of 2026-10, exit 1),
    # and the refused run leaves no key record, lock or report where it was to start one
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei",
                                      "--new-warehouse"])
    assert result.exit_code == 1 and "NOT STARTED" not in result.output, result.output
    assert "NOTE: no warehouse at" in result.output
    assert not (tmp_path / "warehouse").exists(), list((tmp_path / "warehouse").rglob("*"))
    assert f"NOTE: {tmp_path / 'warehouse'} is as it was before the run" in result.output
    # a folder that was there keeps what it held, and only that
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "warehouse" / "README.txt").write_text("the new warehouse goes here\n")
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei",
                                      "--new-warehouse"])
    assert result.exit_code == 1, result.output
    assert [p.name for p in (tmp_path / "warehouse").iterdir()] == ["README.txt"]


def _months_run(tmp_path, *months, sources=("court",)):
    """An empty landing zone beside a warehouse whose run report records each source's
    `<source>.csv` landed in each of `months`."""
    from citycredit import catalog
    from citycredit.config import load_settings
    from citycredit.io import tables

    (tmp_path / "landing").mkdir(exist_ok=True)
    settings = load_settings()
    (settings.warehouse / "bronze").mkdir(parents=True, exist_ok=True)
    report = catalog.RUN_REPORT.at(settings)
    tables.write_arrow(pa.Table.from_pylist([{
        "run_id": f"r{month}", "score_month": month, "section": "source", "name": source,
        "metrics": f'{{"status": "landed", "files": ["{source}.csv"]}}', "created_at": None}
        for month in months for source in sources], schema=report.table.schema), report)
    return settings


def test_erase_refuses_a_month_no_run_has_landed(tmp_path, warehouse_env):
    """`erase --month` after the latest month run here, or of a month to come, erased nobody
    and exited 0 ("0 person(s) erased"): refused, exit 2, naming the latest month it can
    erase; that month itself is erased as before."""
    import datetime as dt

    _months_run(tmp_path, "2026-08", "2026-09")
    result = CliRunner().invoke(cli, ["erase", "--month", "2026-10"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "NOT STARTED: no run has landed 2026-10 yet (the latest month run here is 2026-09): run "
        "it first (citycredit run --month 2026-10; its erase step carries out its opt-outs); "
        "nobody was erased (citycredit erase --month 2026-09 carries out every opt-out landed "
        "so far)")
    result = CliRunner().invoke(cli, ["erase", "--month", "2999-01"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"NOT STARTED: 2999-01 has not begun yet (today is "
                                    f"{dt.date.today().isoformat()}); nobody was erased")
    result = CliRunner().invoke(cli, ["erase", "--month", "2026-09"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 person(s) erased")


def test_erase_says_which_delivered_opt_outs_it_does_not_see(tmp_path, warehouse_env):
    """`erase` carries out the opt-outs runs have landed (validated, pseudonymised): one
    delivered for the month but never landed is not erased — its help says so, and its output
    names the delivery and the month to run first. Landed files, files left with no row (an
    erasure blanked them) and folders without `_READY` are not listed."""
    from citycredit.identity import check_char

    _months_run(tmp_path, "2026-08", "2026-09", sources=("court", "optouts"))
    number = "37100219900101123"
    row = f"id_number,requested_on\n{number}{check_char(number)},2026-09-10\n"
    for month, files in (("2026-08", {"optouts.csv": row, "erased.csv": "id_number,"
                                                                         "requested_on\n\n"}),
                         ("2026-09", {"optouts.csv": row, "late.csv": row}),
                         ("2026-10", {"optouts.csv": row})):
        folder = tmp_path / "landing" / "optouts" / month
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        (folder / "_READY").write_text("")
    (tmp_path / "landing" / "optouts" / "2026-07").mkdir()       # not delivered: no _READY
    (tmp_path / "landing" / "optouts" / "2026-07" / "o.csv").write_text("id_number\n")
    helped = CliRunner().invoke(cli, ["erase", "--help"])
    assert "opt-outs landed here" in helped.output
    assert "not landed yet are not seen" in " ".join(helped.output.split())
    result = CliRunner().invoke(cli, ["erase", "--month", "2026-09"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 person(s) erased (opt-outs landed here and requested by "
                                    "the end of 2026-09)")
    warning = [line for line in result.output.splitlines() if line.startswith("WARNING")]
    assert warning == [f"WARNING: not seen: opt-outs delivered but not landed yet in "
                       f"{tmp_path / 'landing' / 'optouts' / '2026-09'}: run their month first "
                       "(citycredit run --month 2026-09: it lands them and its erase step "
                       "carries them out)"], result.output
    assert number not in result.output


def test_a_month_after_months_never_run_names_the_month_to_run_first(tmp_path, warehouse_env):
    """A month whose deliveries are missing, two months after the latest month run here: the
    refusal lists the missing `_READY` files as before and says that months run in order,
    naming the month to run first; the month right after the latest gets no such hint."""
    _months_run(tmp_path, "2026-08", "2026-09")

    def stopped(month):
        result = CliRunner().invoke(cli, ["run", "--month", month, "--schemes", "haibei"])
        assert result.exit_code == 1, result.output
        lines = result.output.splitlines()
        return ([line for line in lines if line.startswith("NOT PUBLISHED")][-1],
                [line for line in lines if line.startswith("STOPPED")][-1])

    in_full, short = stopped("2026-11")
    assert str(tmp_path / "landing" / "court" / "2026-11" / "_READY") in in_full
    hint = ("; months run in order, and 2026-10 was never run here (the latest month run is "
            "2026-09): run 2026-10 first (citycredit run --month 2026-10)")
    assert in_full.endswith(hint) and hint in short, (in_full, short)
    assert "2026-10 … 2026-11 were never run here" in stopped("2026-12")[1]
    assert "in order" not in stopped("2026-10")[1]


def test_a_month_after_a_delivered_month_never_run_is_refused(tmp_path, warehouse_env):
    """2026-09 delivered completely but never run, 2026-08 run: `run --month 2026-10` landed and
    published 2026-10 without 2026-09's findings, exit 0 (a newcomer's try-out). Refused now
    before anything lands, naming the month to run first; 2026-09 itself is not refused for it."""
    from citycredit.config import load_settings

    settings = _months_run(tmp_path, "2026-08")
    for month in ("2026-09", "2026-10"):
        for source_id, conf in settings.sources.items():
            if conf["required"]:
                (tmp_path / "landing" / source_id / month).mkdir(parents=True)
                (tmp_path / "landing" / source_id / month / "_READY").write_text("")
    result = CliRunner().invoke(cli, ["run", "--month", "2026-10", "--schemes", "haibei"])
    assert result.exit_code == 1, result.output
    stopped = [line for line in result.output.splitlines() if line.startswith("STOPPED")][-1]
    assert stopped.startswith(
        "STOPPED: month 2026-10: months run in order, and 2026-09 was delivered but never run "
        "here (the latest month run is 2026-08): run 2026-09 first (citycredit run --month "
        "2026-09)"), stopped
    full = [line for line in result.output.splitlines() if line.startswith("NOT PUBLISHED")][-1]
    assert full.endswith(f"({tmp_path / 'landing' / 'population' / '2026-09' / '_READY'}) but "
                         "never run here (the latest month run is 2026-08): run 2026-09 first "
                         "(citycredit run --month 2026-09), or 2026-10 would be scored without "
                         "2026-09's deliveries"), full
    assert not (settings.warehouse / "bronze" / "court").exists()   # nothing landed
    from citycredit.ingest.task import check_deliveries
    assert check_deliveries("2026-09", load_settings())["month"] == "2026-09"


def test_cleanup_deletes_no_delivery_on_a_mistyped_warehouse_and_keeps_those_never_landed(
        tmp_path, warehouse_env):
    """Landing retention deletes old delivery folders because bronze keeps their rows: pointed
    at a folder holding no warehouse it deleted every old month (a newcomer's try-out). Refused
    now, and a folder holding a file never landed here (a month never run, a file that arrived
    after its month was landed) is kept and listed (helpers 19 and 20)."""
    from citycredit import catalog
    from citycredit.config import load_settings
    from citycredit.io import tables

    folders = {}
    for month in ("2019-12", "2020-01", "2020-02"):
        folders[month] = tmp_path / "landing" / "court" / month
        folders[month].mkdir(parents=True)
        (folders[month] / "_READY").write_text("")
    result = CliRunner().invoke(cli, ["cleanup"])
    assert result.exit_code == 2, result.output
    assert (f"NOT STARTED: no warehouse at {tmp_path / 'warehouse'} (no bronze, silver, gold "
            "folder; paths.warehouse, from environment variable CITYCREDIT_WAREHOUSE): nothing "
            "was cleaned and no delivery deleted") in " ".join(result.output.split()), \
        result.output
    assert all(folder.exists() for folder in folders.values())
    # a warehouse whose run report records court's c.csv landed for 2019-12 and 2020-01
    settings = load_settings()
    (settings.warehouse / "bronze").mkdir(parents=True)
    report = catalog.RUN_REPORT.at(settings)
    tables.write_arrow(pa.Table.from_pylist([{
        "run_id": f"r{month}", "score_month": month, "section": "source", "name": "court",
        "metrics": '{"status": "landed", "files": ["c.csv"]}', "created_at": None}
        for month in ("2019-12", "2020-01")], schema=report.table.schema), report)
    (folders["2020-01"] / "c.csv").write_text("x\n")
    (folders["2020-02"] / "c.csv").write_text("x\n")
    (folders["2019-12"] / "late.csv").write_text("x\n")          # arrived after its landing
    result = CliRunner().invoke(cli, ["cleanup"])
    assert result.exit_code == 0, result.output
    assert not folders["2020-01"].exists()
    assert folders["2020-02"].exists() and (folders["2019-12"] / "late.csv").exists()
    assert "kept 2 delivery folder(s) before" in result.output
    assert str(folders["2020-02"]) in result.output and str(folders["2019-12"]) in result.output


def test_a_lookup_given_two_identity_numbers_answers_neither(monkeypatch):
    """Standard input with a second number (lookup, audit show): refused — one person per
    command — not the first answered and the second silently dropped; neither number echoed."""
    import io

    import click

    from citycredit.cli import _read_id_number
    from citycredit.identity import check_char

    first, second = "37100219900101123", "37100219900101131"
    one, two = first + check_char(first), second + check_char(second)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{one}\n{two}\n"))
    with pytest.raises(click.UsageError) as refused:
        _read_id_number("identity number")
    assert str(refused.value.message) == ("standard input holds 2 lines: give one identity "
                                          "number per command")
    assert one not in refused.value.message and two not in refused.value.message
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n{one}\n\n"))
    assert _read_id_number("identity number") == one
    # nothing on standard input: said so, not taken for an invalid number
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    with pytest.raises(click.UsageError) as refused:
        _read_id_number("identity number")
    assert str(refused.value.message) == ("standard input holds no identity number: give one "
                                          "on a line")


@pytest.mark.parametrize("command", [
    ["simulate", "--scheme", "haibei", "--draft", "rules/drafts/x.yaml", "--month", "2026-10"],
    ["evaluate", "--scheme", "haibei", "--month", "2026-10"]])
@pytest.mark.parametrize("option", ["--json", "--report"])
def test_a_policy_output_in_a_missing_folder_is_refused_before_any_work(tmp_path, warehouse_env,
                                                                       command, option):
    """--json / --report naming a folder that does not exist: exit 2 naming the folder, and
    the folder is not created (it was, even at /)."""
    missing = tmp_path / "no" / "such"
    result = CliRunner().invoke(cli, [*command, option, str(missing / "out.json")])
    assert result.exit_code == 2, result.output
    assert f"folder {missing} does not exist" in result.output
    assert not (tmp_path / "no").exists()
    # not a file name: '' (the current folder), a folder, a trailing /; a file taken for a folder
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for given, said in [("", "is a folder: name a file"), (str(tmp_path), "is a folder"),
                        (f"{tmp_path}/new/", "is a folder"),
                        (f"{a_file}/out.json", f"{a_file} is not a folder")]:
        result = CliRunner().invoke(cli, [*command, option, given])
        assert result.exit_code == 2, (given, result.output)
        assert said in " ".join(result.output.split()), (given, result.output)
    assert not (tmp_path / "new").exists()


def test_an_identity_number_typed_as_an_argument_is_masked_in_the_usage_error(warehouse_env):
    """A number typed where no argument belongs (or as a --month) is refused, exit 2, and the
    error does not echo it (only the masked form, as every message)."""
    number = "37108219920717130X"
    for command in (["lookup", "--grantee", "BANK01", "--purpose", "loan", "--scheme", "haibei",
                     number], ["run", "--month", number], ["audit", "show", number]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert number not in result.output and "371082********130X" in result.output, \
            (command, result.output)
