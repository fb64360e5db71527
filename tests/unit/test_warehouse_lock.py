"""The warehouse lock (issue "Privacy"): no `citycredit erase` or `cleanup` while a run writes.
A real second process holds the lock (as `citycredit run` does); the operator's command is
refused with a message naming the run and since when; after the run is killed (SIGKILL, no
clean-up of its own) the command goes through."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from citycredit.cli import cli
from citycredit.config import load_settings
from citycredit.io.lock import EXCLUSIVE, SHARED, WarehouseBusy, holders, warehouse_lock

PROJECT = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
from citycredit.io.lock import warehouse_lock
with warehouse_lock(sys.argv[1], sys.argv[2], sys.argv[3]):
    print("holding", flush=True)
    time.sleep(120)
"""


def _holder(warehouse: Path, what: str, mode: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), what, mode],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert process.stdout.readline().strip() == "holding"
    return process


@pytest.fixture
def environ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landing").mkdir()
    return {"CITYCREDIT_WAREHOUSE": str(tmp_path / "wh"),
            "CITYCREDIT_LANDING": str(tmp_path / "landing")}


def test_cleanup_and_erase_refused_while_a_run_holds_the_warehouse_until_it_is_killed(environ):
    warehouse = Path(environ["CITYCREDIT_WAREHOUSE"])
    (warehouse / "silver").mkdir(parents=True)      # a warehouse, not only a lock folder
    run = _holder(warehouse, "citycredit run 2026-03 (run 20261130T100000)", EXCLUSIVE)
    try:
        runner = CliRunner()
        for command in (["cleanup"], ["erase", "--month", "2026-03"]):
            refused = runner.invoke(cli, command, env=environ)
            assert refused.exit_code == 75, refused.output
            assert "busy" in refused.output
            assert "citycredit run 2026-03 (run 20261130T100000)" in refused.output
            assert f"pid {run.pid}" in refused.output and "since 20" in refused.output
    finally:
        run.send_signal(signal.SIGKILL)      # a killed run: its lock goes with it
        run.wait()
    done = CliRunner().invoke(cli, ["cleanup"], env=environ)
    assert done.exit_code == 0, done.output
    assert "vacuumed" in done.output
    assert holders(warehouse) == []          # the dead run's holder note is gone too


def test_steps_of_a_run_share_the_lock_and_erasure_waits_for_them(environ, tmp_path):
    from citycredit import pipeline

    warehouse = Path(environ["CITYCREDIT_WAREHOUSE"])
    landing = [_holder(warehouse, f"run R1 (2026-03) step land_source {s}", SHARED)
               for s in ("court", "tax")]
    try:
        with warehouse_lock(warehouse, "run R1 (2026-03) step land_source utility", SHARED):
            pass                                  # a third landing task is not held up
        with pytest.raises(WarehouseBusy) as busy:
            with warehouse_lock(warehouse, "erase 2026-03 (run erase-1)", EXCLUSIVE,
                                wait_seconds=0.5):
                pass
        message = str(busy.value)
        assert "land_source court" in message and "land_source tax" in message
        assert "waited" in message
        # the DAG's erase step (declared EXCLUSIVE) is refused the same way
        settings = load_settings(PROJECT / "conf", environ=environ)
        with pytest.raises(WarehouseBusy, match="land_source court"):
            pipeline.run_step(pipeline.STEP_BY_NAME["erase"], "2026-03", "R1", settings, {})
    finally:
        for process in landing:
            process.terminate()
            process.wait()
    with warehouse_lock(warehouse, "erase 2026-03 (run erase-1)", EXCLUSIVE):
        assert [h["what"] for h in holders(warehouse)] == ["erase 2026-03 (run erase-1)"]
