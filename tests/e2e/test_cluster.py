"""The same scoring job on a real Spark standalone cluster: a master and a worker started on
127.0.0.1 from the installed pyspark's own launcher (`spark-class`), the month's scoring submitted
with `spark-submit --master spark://127.0.0.1:<port> jobs/score.py --month M`, and its gold rows
identical to the embedded run's. The cluster is stopped at the end whatever happens.

Runs with `make cluster-test` (marker `cluster`; `make test` leaves it out: it takes longer than a
test in the suite should — see README, "On a cluster")."""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pyspark
import pytest
from deltalake import DeltaTable

from citycredit import catalog, pipeline
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.cluster import Submission, package_zip, read_result, score_submission
from citycredit.io.spark import delta_jars
from citycredit.synth import generate_city

pytestmark = pytest.mark.cluster

PROJECT = Path(__file__).resolve().parents[2]
SPARK_BIN = Path(pyspark.__file__).parent / "bin"
MONTH = "2026-03"
PROBED_MODULES = ("citycredit.scoring.steps", "citycredit.scoring.job", "citycredit.io.tables")
# what a Python worker of an executor imports: the same modules, by their source
PROBE = f"""
import hashlib, importlib, inspect, json
from pyspark.sql import SparkSession

def imported(_):
    return json.dumps({{m: hashlib.sha256(inspect.getsource(importlib.import_module(m)).encode())
                       .hexdigest() for m in {PROBED_MODULES!r}}}, sort_keys=True)

spark = SparkSession.builder.getOrCreate()
print("PROBE " + json.dumps(sorted(set(
    spark.sparkContext.parallelize(range(4), 4).map(imported).collect()))))
spark.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """The process and everything it started (its own session): TERM, then KILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=20)


@contextmanager
def standalone_cluster(folder: Path, cores: int = 2, memory: str = "2g"):
    """A Spark standalone master and one worker on 127.0.0.1 (free ports); yields the master
    URL once the worker has registered; both stop on the way out, whatever happened."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder / "logs"),
           "PYSPARK_PYTHON": sys.executable}
    port, ui = free_port(), free_port()
    started: list[subprocess.Popen] = []

    def launch(name, *args):
        log = open(folder / f"{name}.log", "wb")
        started.append(subprocess.Popen([str(SPARK_BIN / "spark-class"), *args], env=env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))

    try:
        launch("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
               "--port", str(port), "--webui-port", str(ui))
        launch("worker", "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
               "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port",
               str(free_port()), "--cores", str(cores), "--memory", memory,
               "--work-dir", str(folder / "work"))
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as answer:
                    if json.load(answer).get("aliveworkers", 0) >= 1:
                        break
            except OSError:
                pass
            dead = [p for p in started if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join((folder / f"{n}.log").read_text(errors="replace")[-2000:]
                                 for n in ("master", "worker"))
                raise RuntimeError(f"the standalone cluster did not come up:\n{logs}")
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for process in reversed(started):
            stop(process)


def submit(master: str, submission: Submission, env: dict) -> tuple[str, float]:
    """spark-submit as the DAG's score step on a cluster runs it: citycredit.cluster's
    submission (the package as --py-files, delta-spark's jars and settings as --jars / --conf,
    the embedded session's) with small executors. Returns its output and wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(SPARK_BIN / "spark-submit"), "--executor-memory", "1g",
         *submission.arguments(master)],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=900)
    if done.returncode:
        pytest.fail(f"spark-submit {Path(submission.application).name} exited {done.returncode}"
                    f" (its Python's output is in stdout):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}", pytrace=False)
    return done.stdout, time.perf_counter() - started


def gold(settings, run_id: str) -> dict[str, list]:
    """gold/scores and gold/score_lines of the month's run `run_id`, all columns but run_id and
    computed_at."""
    out = {}
    for table in (catalog.SCORES, catalog.SCORE_LINES):
        rows = tables.read_arrow(table.at(settings), where={"score_month": MONTH,
                                                            "run_id": run_id})
        rows = rows.drop([c for c in ("run_id", "computed_at") if c in rows.column_names])
        out[table.name] = sorted(map(repr, rows.to_pylist()))
    return out


def test_scoring_submitted_to_a_standalone_cluster_writes_the_embedded_runs_gold(
        tmp_path, spark):
    if not delta_jars():
        pytest.fail("the delta-spark jars are not installed: `make jars`", pytrace=False)
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    generate_city(landing, adults=600, months=1, end=MONTH, seed=5, bad_share=0.0)
    # a small driver: the test shares its machine (the embedded run's session is running)
    environ = {"CITYCREDIT_LANDING": str(landing), "CITYCREDIT_WAREHOUSE": str(warehouse),
               "CITYCREDIT_SPARK_DRIVER_MEMORY": "1g"}
    settings = load_settings(PROJECT / "conf", env="local", environ=environ)
    embedded = pipeline.run_month(MONTH, settings=settings)
    assert embedded["published"]
    want = gold(settings, embedded["run_id"])
    assert len(want["scores"]) > 400 and len(want["score_lines"]) > len(want["scores"])

    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCREDIT_")}
    # the driver imports citycredit from the --py-files zip too: conf/ (with rules/ beside it)
    # is named, as on any cluster
    env.update(environ, CITYCREDIT_CONF=str(PROJECT / "conf"), PYTHONPATH=str(PROJECT),
               PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    result = tmp_path / "result.json"
    job = score_submission(settings, MONTH, "on-cluster", package_zip(tmp_path), result)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    with standalone_cluster(tmp_path) as master:
        printed, wall = submit(master, job, env)
        seen, _ = submit(master, replace(job, application=str(probe), application_args=[]), env)
    scored = read_result(result)
    rows = {name: len(found) for name, found in gold(settings, "on-cluster").items()}
    print(f"\ncluster test: {len(scored)} schemes of {MONTH} scored on the standalone cluster "
          f"in {wall:.1f} s (spark-submit wall); gold rows {rows}; "
          f"delta-spark jars: {len(job.jars.split(','))}")
    # the cluster run wrote its own gold rows (beside the published run's, unseen until a
    # publication promotes them), and they are the embedded run's
    assert gold(settings, "on-cluster") == want
    runs = {r["run_id"] for r in tables.read_arrow(catalog.SCORES.at(settings),
                                                   where={"score_month": MONTH}).to_pylist()}
    assert runs == {embedded["run_id"], "on-cluster"}
    # …written by delta-spark on the cluster, not by the bridge
    for table in (catalog.SCORES, catalog.SCORE_LINES):
        last = DeltaTable(table.at(settings).path).history(1)[0]
        assert "Apache-Spark" in last.get("engineInfo", ""), last
    assert printed.count(MONTH) == len(embedded["scored"])
    # …and the step's result (what the DAG's publish takes) is the embedded step's
    assert [{**r, "seconds": 0, "run_id": None} for r in scored] == \
        [{**r, "seconds": 0, "run_id": None} for r in embedded["scored"]]
    assert {r["run_id"] for r in scored} == {"on-cluster"}
    # …and the executors' Python workers imported the very citycredit this test runs
    mine = json.dumps({m: hashlib.sha256(inspect.getsource(
        sys.modules[m] if m in sys.modules else __import__(m, fromlist=["_"])).encode())
        .hexdigest() for m in PROBED_MODULES}, sort_keys=True)
    line = next(l for l in seen.splitlines() if l.startswith("PROBE "))
    assert json.loads(line[len("PROBE "):]) == [mine]
