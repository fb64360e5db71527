"""What the DAG's score step submits on a cluster (citycredit.cluster): jobs/score.py with the
embedded session's delta-spark jars and settings, conf's Spark settings and sizes, and the month's
arguments; the `spark.submit.conn_id` setting that switches the step to it. No Spark runs here
(tests/e2e/test_cluster.py submits it to a real standalone cluster)."""
from __future__ import annotations

import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from citycredit.cluster import (SCORE_JOB, package_zip, read_result, result_path,
                                score_submission, write_result)
from citycredit.config import ConfigError, describe, load_settings
from citycredit.io.spark import DELTA_EXTENSION, delta_conf

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def jar(tmp_path, monkeypatch):
    folder = tmp_path / "jars"
    folder.mkdir()
    jar = folder / "delta-spark_4.2_2.13-4.4.0.jar"
    jar.write_bytes(b"")
    monkeypatch.setenv("CITYCREDIT_DELTA_JARS", str(folder))
    return jar


def conf_of(args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for flag, a in zip(args, args[1:]) if flag == "--conf")


def test_the_score_submission_carries_delta_spark_as_the_embedded_session_does(settings, jar,
                                                                              tmp_path):
    settings = replace(settings, spark_driver_memory="3g")
    result = result_path(settings, "2026-02", "manual__x")
    job = score_submission(settings, "2026-02", "manual__x", tmp_path / "cc.zip", result,
                           rescore_with_current_rules=True, lock_wait_seconds=600)
    args = job.arguments("spark://10.0.0.5:7077")
    assert args[:2] == ["--master", "spark://10.0.0.5:7077"]
    at = args.index(str(SCORE_JOB))
    assert args[at:] == [str(PROJECT / "jobs" / "score.py"), "--month", "2026-02", "--run-id",
                         "manual__x", "--result", str(result), "--lock-wait", "600",
                         "--rescore-with-current-rules"]
    assert result.parent == settings.warehouse / "_jobs"
    options = dict(zip(args[:at:2], args[1:at:2]))
    assert options["--jars"] == str(jar)
    assert options["--py-files"] == str(tmp_path / "cc.zip")
    assert options["--driver-memory"] == "3g"
    conf = conf_of(args)
    delta = {k: v for k, v in delta_conf([jar]).items() if k != "spark.jars"}
    assert {k: conf[k] for k in delta} == delta
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION
    assert conf["spark.pyspark.python"] == conf["spark.pyspark.driver.python"] == sys.executable


def test_conf_decides_engine_python_and_sizes(settings, jar, tmp_path):
    off = score_submission(replace(settings, spark_delta="off"), "2026-02", "r", tmp_path / "z")
    assert off.jars is None and "spark.sql.extensions" not in off.conf
    assert "--jars" not in off.arguments("yarn") and "--result" not in off.application_args
    site = replace(settings, spark_conf={"spark.pyspark.python": "/opt/py/bin/python",
                                         "spark.executor.memory": "8g"})
    job = score_submission(site, "2026-02", "r", tmp_path / "z")
    assert job.conf["spark.pyspark.python"] == "/opt/py/bin/python"
    assert job.conf["spark.executor.memory"] == "8g"
    assert job.driver_memory.endswith("m")                   # auto: sized from this machine


def test_the_submit_connection_setting(settings, monkeypatch):
    assert settings.spark_submit_conn_id is None             # default: score in the task
    assert ("spark.submit.conn_id", "null", "conf/base.yaml: spark.submit.conn_id") in [
        (k, v, o.replace(str(PROJECT) + "/", "")) for k, v, o in describe(settings)]
    monkeypatch.setenv("CITYCREDIT_SPARK_SUBMIT_CONN_ID", "citycredit_cluster")
    named = load_settings(PROJECT / "conf", env="local")
    assert named.spark_submit_conn_id == "citycredit_cluster"
    assert ("spark.submit.conn_id", "citycredit_cluster",
            "environment variable CITYCREDIT_SPARK_SUBMIT_CONN_ID") in describe(named)
    with pytest.raises(ConfigError, match="SUBMIT_CONN is not a citycredit setting"):
        load_settings(PROJECT / "conf", env="local",
                      environ={"CITYCREDIT_SPARK_SUBMIT_CONN": "citycredit_cluster"})


def test_the_package_zip_and_the_result_file(tmp_path):
    with zipfile.ZipFile(package_zip(tmp_path)) as package:
        names = package.namelist()
    assert "citycredit/cluster.py" in names and "citycredit/scoring/job.py" in names
    assert all(n.startswith("citycredit/") and n.endswith(".py") for n in names)
    result = tmp_path / "w" / "_jobs" / "score-2026-02-r.json"
    write_result(result, [{"scheme": "haibei", "subjects": 3, "grades": {"AA": 1, "A": 2}}])
    assert read_result(result) == [{"scheme": "haibei", "subjects": 3,
                                    "grades": {"AA": 1, "A": 2}}]
    assert not result.exists() and not list(result.parent.iterdir())
    with pytest.raises(FileNotFoundError):
        read_result(result)
