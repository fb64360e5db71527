"""Every writer under the warehouse lock (issue 24 item 2): a simulation and an erasure started at
once, in two processes, on the hand-made world of test_policy.py (real Spark, real Delta). The
simulation holds the lock (shared) from before it reads silver until its sandbox commit, so the
erasure waits its turn instead of deleting files under it; afterwards the erased person is
nowhere and every table's log names only files that exist."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from citycredit import catalog
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.io.lock import EXCLUSIVE, holders, warehouse_lock
from citycredit.suppression import add_to_suppression_list
from test_policy import DRAFT_MINOR_60, M, build_world

PROJECT = Path(__file__).resolve().parents[2]
ERASED = "s5"          # opted out on 2025-02-03: due at the erasure of 2025-02


def _world(root: Path):
    environ = {"CITYCREDIT_WAREHOUSE": str(root / "warehouse"),
               "CITYCREDIT_LANDING": str(root / "landing"),
               "CITYCREDIT_REPORTS": str(root / "reports")}
    settings = load_settings(PROJECT / "conf", env="local", environ=environ)
    build_world(settings)
    (root / "landing").mkdir()  # erasure refuses a landing zone that is not there
    tables.write_arrow(pa.table({"subject_key": [ERASED], "requested_on": [dt.date(2025, 2, 3)],
                                 "known_from": ["2025-02"]}),
                       catalog.SILVER_OPTOUTS.at(settings), mode="overwrite")
    text = (PROJECT / "rules" / "haibei.yaml").read_text("utf-8")
    old, new = DRAFT_MINOR_60
    draft = root / "haibei-minor-60.yaml"
    draft.write_text(text.replace(old, old.replace("points: -20", new))
                     .replace('version: "2026.1"', 'version: "minor-60"'), "utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")},
           **environ, "PYTHONPATH": str(PROJECT), "COLUMNS": "200"}
    return settings, draft, env


def _cli(env, *args, **popen):
    return [sys.executable, "-m", "citycredit.cli", *args], dict(cwd=PROJECT, env=env, text=True,
                                                                 **popen)


def _delta_tables(warehouse: Path) -> list[Path]:
    return sorted(p.parent for p in warehouse.rglob("_delta_log") if p.is_dir())


def test_a_simulation_and_an_erasure_at_once_leave_the_person_nowhere(tmp_path):
    settings, draft, env = _world(tmp_path)
    command, options = _cli(env, "simulate", "--scheme", "haibei", "--draft", str(draft),
                            "--month", M)
    simulation = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  **options)
    try:
        deadline = time.monotonic() + 120
        while not any("simulate" in h["what"] for h in holders(settings.warehouse)):
            assert simulation.poll() is None, simulation.communicate()
            assert time.monotonic() < deadline, "the simulation never took the lock"
            time.sleep(0.1)
        command, options = _cli(env, "erase", "--month", M, capture_output=True)
        refused = subprocess.run(command, timeout=300, **options)
        assert refused.returncode == 75, refused.stderr
        assert refused.stderr.startswith("NOT STARTED:")
        assert "citycredit simulate haibei" in refused.stderr and "shared" in refused.stderr
        out, err = simulation.communicate(timeout=600)
    finally:
        if simulation.poll() is None:
            simulation.kill()
    assert simulation.returncode == 0, err[-2000:]
    # (the opted-out person is not scored: SPEC §7, an opt-out counts from its request)
    assert ERASED in tables.read_arrow(catalog.SILVER_FINDINGS.at(settings)) \
        .column("subject_key").to_pylist()                           # not erased yet

    erased = subprocess.run(command, timeout=300, **options)          # its turn now
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith("1 person(s) erased")
    found = []
    for path in _delta_tables(settings.warehouse):
        table = DeltaTable(str(path)).to_pyarrow_table()              # every logged file exists
        if "subject_key" in table.column_names and \
                ERASED in table.column("subject_key").to_pylist():
            found.append(path.relative_to(settings.warehouse))
    assert sorted(found) == [Path("privacy/erasure_log"), Path("privacy/suppression_list")]
    kept = tables.read_arrow(catalog.SIMULATED_SCORES.at(settings)).column("subject_key")
    assert sorted(kept.to_pylist()) == sorted(f"s{i}" for i in range(1, 11) if f"s{i}" != ERASED)


def test_a_policy_tool_waits_for_no_erasure(tmp_path):
    """While an erasure (or cleanup, or a whole run) holds the warehouse, simulate and evaluate
    do not start: NOT STARTED naming the holder, exit 75 — before Spark starts."""
    settings, draft, env = _world(tmp_path)
    with warehouse_lock(settings.warehouse, "citycredit erase --month 2025-02", EXCLUSIVE):
        for args in (("simulate", "--scheme", "haibei", "--draft", str(draft), "--month", M),
                     ("evaluate", "--scheme", "haibei", "--month", M)):
            command, options = _cli(env, *args, capture_output=True)
            done = subprocess.run(command, timeout=120, **options)
            assert done.returncode == 75, done.stderr
            assert "NOT STARTED" in done.stderr and "citycredit erase --month 2025-02" in done.stderr
        # a draft that is not there is said as such, busy warehouse or not (exit 2, not 75)
        command, options = _cli(env, "simulate", "--scheme", "haibei", "--draft",
                                str(tmp_path / "no-such-draft.yaml"), "--month", M,
                                capture_output=True)
        done = subprocess.run(command, timeout=120, **options)
        assert done.returncode == 2 and "no-such-draft.yaml" in done.stderr, done.stderr
        assert "NOT STARTED" not in done.stderr
    assert not tables.exists(catalog.SIMULATED_SCORES.at(settings))


def test_a_simulation_leaves_suppressed_persons_out_of_the_sandbox(tmp_path, spark):
    """A person on the suppression list whose rows silver still holds (an erasure under way)
    is not written into sandbox/simulated_scores."""
    from citycredit.policy import task

    settings, draft, _env = _world(tmp_path)
    add_to_suppression_list(settings, {"s3": dt.date(2025, 2, 1)}, M,
                            dt.datetime.now(dt.timezone.utc))
    summary = task.simulate("haibei", draft, M, settings=settings)
    keys = tables.read_arrow(catalog.SIMULATED_SCORES.at(settings)).column("subject_key")
    # ten people, less s5 (opted out: not scored) and s3 (suppressed: not written)
    assert sorted(keys.to_pylist()) == sorted(f"s{i}" for i in (1, 2, 4, 6, 7, 8, 9, 10))
    assert "s3" in tables.read_arrow(catalog.SILVER_POPULATION.at(settings)) \
        .column("subject_key").to_pylist()
    assert summary["run_id"]
