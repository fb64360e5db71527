"""Shared fixtures: one real local Spark session for the whole run, settings in a temp folder."""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from citycredit.config import load_settings  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
LANES = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items):
    """Each test carries the marker of its lane (the folder it is in): `-m unit` etc."""
    for item in items:
        lane = Path(str(item.fspath)).parent.name
        if lane in LANES:
            item.add_marker(getattr(pytest.mark, lane))


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings whose landing and warehouse live in this test's temp folder."""
    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    return load_settings(PROJECT / "conf", env="local")


@pytest.fixture(scope="session")
def spark():
    """A real local[2] Spark session, stopped at the end (avoids py4j's logging error at exit)."""
    from citycredit.config import load_settings
    from citycredit.io.spark import get_spark

    settings = load_settings(PROJECT / "conf", env="local", environ={})
    # one session serves ~700 tests: the shuffle files of finished queries leave its local dir
    # only when the JVM collects their objects, which a large heap seldom does (default 30 min)
    # and 6g rather than the 4g sized for a month run: the differential's ninth 35 k-adult
    # city hit AGGREGATE_OUT_OF_MEMORY in this long-lived session (it passes alone)
    settings = dataclasses.replace(settings, spark_driver_memory="6g", spark_conf={
        **settings.spark_conf, "spark.cleaner.periodicGC.interval": "1min"})
    session = get_spark(settings, "citycredit-tests")
    yield session
    # Airflow's logging setup (DAG tests) turns py4j's INFO on; its goodbye at exit would then
    # write to pytest's closed capture streams.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session.stop()
