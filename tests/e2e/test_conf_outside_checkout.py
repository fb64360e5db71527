"""A month with the conf folder outside the checkout, then every read-only command in a bare
process on the warehouse it left, with checkpoints on every table (issue 22 items 2 and 3).

The operator's set-up: conf/ copied to <tmp>/etc/citycredit (CITYCREDIT_CONF), data under the
working directory, nothing else set. Each command is its own `python -m citycredit.cli` (or
`python -c` for the notebooks' reader) so its exit status is the process's, as Airflow and every
script see it."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from citycredit import catalog
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.synth import generate_city

PROJECT = Path(__file__).resolve().parents[2]
MONTH = "2026-10"
ADULTS = 400


def command(root: Path, *args: str, stdin: str = "", timeout: int = 900):
    """`citycredit <args>` as an operator would run it: its own process, cwd <root>/work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    env.update(CITYCREDIT_CONF=str(root / "etc" / "citycredit"), PYTHONPATH=str(PROJECT),
               CITYCREDIT_SPARK_SHUFFLE_PARTITIONS="4", SPARK_LOCAL_IP="127.0.0.1",
               GX_ANALYTICS_ENABLED="false")
    argv = list(args) if args[0] == "-c" or args[0].endswith(".py") \
        else ["-m", "citycredit.cli", *args]
    return subprocess.run([sys.executable, *argv], cwd=root / "work", env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    root = tmp_path_factory.mktemp("outside")
    shutil.copytree(PROJECT / "conf", root / "etc" / "citycredit")
    (root / "work").mkdir()
    generate_city(root / "work" / "landing", adults=ADULTS, months=1, end=MONTH, seed=7)
    done = command(root, "run", "--month", MONTH, "--schemes", "haibei")
    settings = load_settings(root / "etc" / "citycredit", env="local", environ={
        "CITYCREDIT_LANDING": str(root / "work" / "landing"),
        "CITYCREDIT_WAREHOUSE": str(root / "work" / "warehouse")})
    return {"root": root, "run": done, "settings": settings}


def test_a_month_runs_with_the_conf_folder_outside_the_checkout(month):
    run = month["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "SuiteError" not in run.stderr and "Traceback" not in run.stderr
    published = tables.read_arrow(catalog.PUBLISHED_SCORES.at(month["settings"]),
                                  where={"score_month": MONTH, "scheme": "haibei"})
    assert 0 < published.num_rows <= ADULTS
    shown = command(month["root"], "config")
    assert shown.returncode == 0, shown.stderr
    assert f"← environment variable CITYCREDIT_CONF" in shown.stdout
    assert str(PROJECT / "rules") in shown.stdout


@pytest.fixture(scope="module")
def checkpointed(month):
    """Every Delta table of the warehouse gets a checkpoint (what delta-spark leaves every ten
    commits); the partitioned ones are most of them."""
    assert month["run"].returncode == 0, month["run"].stderr[-3000:]
    logs = list((month["root"] / "work" / "warehouse").rglob("_delta_log"))
    partitioned = 0
    for log in logs:
        table = DeltaTable(str(log.parent))
        table.create_checkpoint()
        partitioned += bool(table.metadata().partition_columns)
    assert partitioned >= 5
    return month


def test_read_only_commands_exit_with_their_own_status(checkpointed):
    root, settings = checkpointed["root"], checkpointed["settings"]
    # lookups for the people who consented, as their grantee would make them
    with open(next((settings.landing / "consents" / MONTH).glob("*.csv")), encoding="utf-8") as f:
        consents = [r for r in csv.DictReader(f) if not r["revoked_on"]]
    statuses = []
    for row in consents[:4]:
        kind = ["--report"] if row["purpose"] == "self" else []
        done = command(root, "lookup", "--grantee", row["grantee"], "--purpose", row["purpose"],
                       "--scheme", "haibei", *kind, stdin=row["id_number"] + "\n")
        statuses.append(done.returncode)
        if done.returncode == 0:
            assert json.loads(done.stdout)["score_month"] == MONTH
        else:   # refused: 1, with the HTTP status the service would give
            assert done.returncode == 1 and done.stderr[:1] == "4", done.stderr
        assert row["id_number"] not in done.stderr
    assert 0 in statuses
    verified = command(root, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{len(statuses)} entries" in verified.stdout and "chain intact" in verified.stdout
    clean = command(root, "privacy-scan", "--subject-key", "0" * 64)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.splitlines()[-1].startswith("clean:")
    reader = command(root, "-c", "from citycredit import analysis; "
                                 "s = analysis.open_warehouse('warehouse'); print(len(analysis."
                                 "read_table('gold.scores', where={'scheme': 'haibei'}, settings=s)))")
    assert reader.returncode == 0, reader.stderr
    assert int(reader.stdout) == tables.read_arrow(catalog.SCORES.at(settings),
                                                   where={"scheme": "haibei"}).num_rows


def test_evaluate_exits_with_its_own_status(checkpointed):
    """evaluate reads gold and silver through the seam; with no month after the score month
    there is no outcome to measure: it says so and exits 1, nothing else."""
    done = command(checkpointed["root"], "evaluate", "--scheme", "haibei", "--month", MONTH)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    if done.returncode == 1:
        assert "STOPPED:" in done.stderr and "Traceback" not in done.stderr
    else:
        assert "report:" in done.stdout


def test_the_run_ends_its_spark_jvm_before_erasure(month):
    """Erasure after publication is Arrow work: the JVM the run started for scoring and
    publication (4 GiB resident at full scale) is gone by then; the month is published again
    (a rerun) all the same."""
    assert month["run"].returncode == 0, month["run"].stderr[-3000:]
    # a script file, not `python -c`: pyspark.sql.connect takes a main module without a file
    # for its own doctests and exits (0) when GX imports it
    probe = month["root"] / "jvm_probe.py"
    probe.write_text(
        "import json, psutil\n"
        "from citycredit.pipeline import run_month\n"
        "jvm = {}\n"
        "def progress(stage, detail=''):\n"
        "    jvm.setdefault(stage, any('java' in p.name() for p in\n"
        "                               psutil.Process().children(recursive=True)))\n"
        f"run_month('{MONTH}', schemes=['haibei'], progress=progress)\n"
        "print(json.dumps(jvm))\n")
    seen = command(month["root"], str(probe))
    assert seen.returncode == 0, seen.stderr[-3000:]
    jvm = json.loads(seen.stdout.strip().splitlines()[-1])
    assert jvm["publish"] is True, jvm        # scoring started it, publication still uses it
    assert jvm["erase"] is False, jvm
