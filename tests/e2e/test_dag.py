"""The Airflow DAG, on real Airflow: parsed by a DagBag, run with dag.test() (no mocks).

A session fixture gives Airflow its own AIRFLOW_HOME (SQLite metadata DB, `airflow db migrate`
once) with the repo's dags/ as the DAGs folder. Airflow reads its configuration when first
imported, so nothing here imports airflow at module level.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DAGS = PROJECT / "dags"
DAG_ID = "citycredit_monthly"
SHANGHAI = "Asia/Shanghai"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    """A migrated Airflow metadata DB in a temp AIRFLOW_HOME, the repo's dags/ as DAGs folder."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "GX_ANALYTICS_ENABLED": "false",
    }
    if "airflow.configuration" in sys.modules:   # configured before us: it would use another home
        from airflow.configuration import AIRFLOW_HOME
        if Path(AIRFLOW_HOME).resolve() != home.resolve():
            pytest.fail(f"airflow was imported before the airflow_home fixture (home {AIRFLOW_HOME})")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        airflow = Path(sys.executable).with_name("airflow")
        started = time.perf_counter()
        done = subprocess.run([str(airflow), "db", "migrate"], env=os.environ.copy(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}"
        print(f"\nairflow db migrate: {time.perf_counter() - started:.1f} s")
        yield home


@pytest.fixture
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def dag(dagbag):
    return dagbag.dags[DAG_ID]


# ---- parsing and shape --------------------------------------------------------------------------
def test_dagbag_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_one_run_at_a_time_no_catchup_with_retries(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_delay >= timedelta(minutes=1), task.task_id


def test_wiring_maps_sources_from_conf_and_scores_every_scheme_in_one_task(dag):
    from citycredit.config import load_settings

    settings = load_settings()
    assert [t.task_id for t in dag.topological_sort()] == [
        "check_deliveries", "land_source", "build_silver", "score", "publish", "erase",
        "report"]
    land, score = dag.task_dict["land_source"], dag.task_dict["score"]
    # the schemes share one scan of the findings: one task, not one per scheme
    assert land.is_mapped and not score.is_mapped
    assert land.op_kwargs_expand_input.value == {"source_id": list(settings.sources)}
    assert dag.task_dict["build_silver"].upstream_task_ids == {"land_source"}
    # erasure after publication (issue 20): the portals do not wait for its rewrites; a
    # teardown, so a refused month's opt-outs are still erased (and the run stays failed)
    assert dag.task_dict["score"].upstream_task_ids == {"build_silver"}
    assert dag.task_dict["publish"].upstream_task_ids == {"score"}
    assert dag.task_dict["erase"].upstream_task_ids == {"publish"}
    assert dag.task_dict["erase"].is_teardown and dag.task_dict["report"].is_teardown
    assert "erase" in dag.task_dict["report"].upstream_task_ids


def test_publish_updates_the_published_scores_asset(dag):
    from airflow.sdk import Asset

    outlets = dag.task_dict["publish"].outlets
    assert len(outlets) == 1 and isinstance(outlets[0], Asset)
    assert outlets[0].name == "citycredit_published_scores"
    assert outlets[0].uri.startswith("file:///")
    assert outlets[0].uri.endswith("/gold/published_scores")
    assert all(not t.outlets for t in dag.tasks if t.task_id != "publish")


def test_schedule_is_monthly_on_the_fifth_and_scores_the_month_before(dag):
    from airflow.sdk import CronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    from citycredit.airflow_support import run_month

    assert isinstance(dag.timetable, CronTriggerTimetable)
    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=datetime(2026, 1, 1, tzinfo=timezone.utc), latest=None,
                                  catchup=True)
    runs, last = [], None
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        runs.append(info.logical_date)
        last = info.data_interval
    local = [r.in_timezone(SHANGHAI) for r in runs]
    assert [(d.month, d.day, d.hour) for d in local] == [(1, 5, 3), (2, 5, 3), (3, 5, 3)]
    assert [run_month(r, r, None, SHANGHAI) for r in runs] == ["2025-12", "2026-01", "2026-02"]


def test_month_param_is_optional_and_checked(dag):
    from airflow.sdk.exceptions import ParamValidationError

    month = dag.params.get_param("month")
    assert month.resolve() is None and month.resolve(None) is None
    assert month.resolve("2026-02") == "2026-02"
    for bad in ("2026-13", "2026-2", "202602", "feb"):
        with pytest.raises(ParamValidationError):
            month.resolve(bad)
    assert dag.params.get_param("accept_drift").resolve() is False
    assert dag.params.get_param("rescore_with_current_rules").resolve() is False


def test_run_month_and_run_id():
    from citycredit.airflow_support import pipeline_run_id, run_month
    from citycredit.months import score_month_of_run as resolve_month

    assert resolve_month(datetime(2026, 3, 5, 3), None) == "2026-02"
    assert resolve_month(datetime(2026, 1, 5, 3), None) == "2025-12"
    assert resolve_month(datetime(2026, 3, 5, 3), "2025-07") == "2025-07"
    # the schedule's zone decides the month: 1 March 01:00 in Shanghai is still 28 Feb in UTC
    early = datetime(2026, 2, 28, 17, 0, tzinfo=timezone.utc)
    assert run_month(early, early, None, SHANGHAI) == "2026-02"
    assert run_month(None, early, None, SHANGHAI) == "2026-02"      # run without a logical date
    assert run_month(early, early, "2025-11", SHANGHAI) == "2025-11"
    assert pipeline_run_id("manual__2026-03-05T03:00:00.123456+00:00") == \
        "manual__2026-03-05T030000.123456Z"
    assert pipeline_run_id("scheduled__2026-03-04T19:00:00+00:00") == \
        "scheduled__2026-03-04T190000Z"


# ---- the score step on a cluster (spark.submit.conn_id) -----------------------------------------
CLUSTER_CONN = "citycredit_cluster"


@pytest.fixture
def cluster_conf(monkeypatch, tmp_path):
    """conf naming an Airflow connection to a standalone master (client deploy mode), and a
    warehouse of the test's own."""
    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("CITYCREDIT_SPARK_SUBMIT_CONN_ID", CLUSTER_CONN)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CLUSTER_CONN.upper()}", json.dumps(
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077,
         "extra": {"deploy-mode": "client"}}))
    return tmp_path


def test_on_a_cluster_the_score_step_spark_submits_the_scoring_job(airflow_home, cluster_conf):
    """With spark.submit.conn_id the score task is the Spark provider's SparkSubmitOperator:
    jobs/score.py for the run's month on the connection's master, with delta-spark's jars and
    settings as the embedded session has them (io/spark.py); the graph around it is unchanged
    and publish takes its result."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from citycredit.cluster import result_path
    from citycredit.config import load_settings
    from citycredit.io.spark import DELTA_CATALOG, DELTA_EXTENSION, delta_jars

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    score = dag.task_dict["score"]
    assert isinstance(score, SparkSubmitOperator) and score.retries >= 1
    assert [t.task_id for t in dag.topological_sort()] == [
        "check_deliveries", "land_source", "build_silver", "score", "publish", "erase",
        "report"]
    assert score.upstream_task_ids == {"build_silver"}
    assert score.downstream_task_ids == {"publish", "report"}     # both take its result
    assert dag.task_dict["publish"].op_kwargs["scored"].operator is score

    settings = load_settings()
    assert settings.spark_submit_conn_id == CLUSTER_CONN
    result = score.prepare(settings, "2026-02", "manual__2026-03-05T030000Z", cluster_conf)
    command = score.command_line()
    assert command[:3] == ["spark-submit", "--master", "spark://127.0.0.1:7077"]
    job = command.index(str(PROJECT / "jobs" / "score.py"))
    assert command[job + 1:] == ["--month", "2026-02", "--run-id", "manual__2026-03-05T030000Z",
                                 "--result", str(result), "--lock-wait", "600"]
    assert result == result_path(settings, "2026-02", "manual__2026-03-05T030000Z")
    assert result.is_relative_to(settings.warehouse)
    options = dict(zip(command[3:job:2], command[4:job:2]))
    assert options["--deploy-mode"] == "client" and options["--driver-memory"]
    conf = dict(a.split("=", 1) for flag, a in zip(command, command[1:]) if flag == "--conf")
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION
    assert conf["spark.sql.catalog.spark_catalog"] == DELTA_CATALOG
    assert conf["spark.databricks.delta.properties.defaults.minWriterVersion"] == "2"
    assert conf["spark.pyspark.python"] == sys.executable
    jars = options["--jars"].split(",")
    assert jars == [str(j) for j in delta_jars()] and any("delta-spark_" in j for j in jars)
    import zipfile

    with zipfile.ZipFile(options["--py-files"]) as package:
        assert "citycredit/scoring/job.py" in package.namelist()
    # the secrets stay in the environment the job inherits, never on its command line
    assert not any("development-key" in part for part in command)


# ---- a real month, end to end -------------------------------------------------------------------
def test_dag_runs_two_months_end_to_end(airflow_home, tmp_path, monkeypatch, spark):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState, TaskInstanceState
    from deltalake import DeltaTable

    from citycredit.config import load_settings
    from citycredit.synth import generate_city
    from citycredit.rules import available_schemes

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    generate_city(landing, adults=300, months=2, end="2026-02", seed=3)
    # an optional source that did not deliver in February: its land task is skipped, the run goes on
    (landing / "optouts" / "2026-02" / "_READY").unlink()
    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_LANDING", str(landing))
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(warehouse))
    monkeypatch.chdir(tmp_path)

    bag = DagBag(dag_folder=str(DAGS))          # parsed now: the Asset names this warehouse
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:                      # a failure fails now, not after 2 × 5 min
        task.retries = 0

    for month in ("2026-01", "2026-02"):
        started = time.perf_counter()
        run = dag.test(run_conf={"month": month})
        print(f"\ndag.test {month}: {time.perf_counter() - started:.1f} s")
        unhappy = {(ti.task_id, ti.rendered_map_index or ti.map_index): ti.state
                   for ti in run.get_task_instances()
                   if ti.state not in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)}
        assert run.state == DagRunState.SUCCESS, f"{month}: {unhappy} (the task logs are above)"
    skipped = [ti for ti in run.get_task_instances() if ti.state == TaskInstanceState.SKIPPED]
    assert [ti.rendered_map_index for ti in skipped] == ["optouts"]

    settings = load_settings()
    published = DeltaTable(str(warehouse / "gold" / "published_scores")).to_pandas(
        columns=["scheme", "score_month", "subject_key", "score", "grade"])
    assert set(published["score_month"]) == {"2026-01", "2026-02"}
    february = published[published["score_month"] == "2026-02"]
    schemes = set(available_schemes(settings.rules))
    assert set(february["scheme"]) == schemes
    assert february.groupby("scheme").size().nunique() == 1     # every scheme: the same adults
    for scheme, rows in february.groupby("scheme"):
        assert len(rows) > 100, scheme
        assert rows["subject_key"].is_unique, scheme
        assert rows["score"].notna().all() and rows["grade"].notna().all(), scheme

    # a refused publication is reported: the report task runs after the failed publish and the
    # run report says why (here: a rules folder whose 海贝分 base moves everyone from A to AA)
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    haibei = (rules / "haibei.yaml").read_text("utf-8")
    assert "base_score: 1000" in haibei
    (rules / "haibei.yaml").write_text(haibei.replace("base_score: 1000", "base_score: 1100"),
                                       "utf-8")
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules))
    before = DeltaTable(str(warehouse / "gold" / "published_scores")).version()
    # the month was published under the shipped rules: re-scoring it under the edited file is
    # asked for explicitly (docs/rule-format.md §12), so that publication's checks decide
    run = dag.test(run_conf={"month": "2026-02", "rescore_with_current_rules": True})
    states = {ti.task_id: ti.state for ti in run.get_task_instances() if ti.map_index < 0}
    assert run.state == DagRunState.FAILED
    assert states["score"] == TaskInstanceState.SUCCESS
    assert states["publish"] == TaskInstanceState.FAILED
    assert states["report"] == TaskInstanceState.SUCCESS
    assert states["erase"] == TaskInstanceState.SUCCESS     # erasure does not wait for a publishable month
    assert DeltaTable(str(warehouse / "gold" / "published_scores")).version() == before
    report = DeltaTable(str(warehouse / "report" / "run_report")).to_pandas()
    refused = report[(report["section"] == "publish") & (report["name"] == "refused")]
    assert len(refused) == 1 and "share moved" in refused["metrics"].iloc[0]
    this_run = report[report["run_id"] == refused["run_id"].iloc[0]]
    assert set(this_run[this_run["section"] == "scheme"]["name"]) == schemes   # drift reported


# ---- citycredit_evaluate: the monthly evaluation of every adopted scheme (policy tools) -------
EVALUATE_DAG_ID = "citycredit_evaluate"


def test_evaluate_dag_follows_the_publication_and_maps_adopted_schemes(dagbag):
    from citycredit.config import load_settings
    from citycredit.rules import available_schemes

    dag = dagbag.dags[EVALUATE_DAG_ID]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assets = list(dag.timetable.asset_condition.objects)     # schedule=[the Asset]
    assert [a.name for a in assets] == ["citycredit_published_scores"]
    assert assets[0].uri == dagbag.dags[DAG_ID].task_dict["publish"].outlets[0].uri
    task = dag.task_dict["evaluate_scheme"]
    assert task.is_mapped and task.retries >= 1 and task.max_active_tis_per_dagrun == 1
    schemes = list(available_schemes(load_settings().rules))
    assert task.op_kwargs_expand_input.value == {"scheme": schemes}
    assert not any(s.startswith("haibei-") for s in schemes)      # never a draft
    assert dag.params.get_param("month").resolve() is None


def test_evaluate_dag_evaluates_the_latest_published_month(airflow_home, tmp_path, monkeypatch,
                                                           spark):
    import json
    import shutil

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState
    from deltalake import DeltaTable

    from citycredit import pipeline
    from citycredit.config import load_settings
    from citycredit.synth import generate_city

    landing, warehouse, rules = tmp_path / "landing", tmp_path / "warehouse", tmp_path / "rules"
    generate_city(landing, adults=300, months=2, end="2026-02", seed=5)
    rules.mkdir()
    for name in ("catalogue.yaml", "haibei.yaml"):       # one adopted scheme keeps this short
        shutil.copy(PROJECT / "rules" / name, rules / name)
    shutil.copytree(PROJECT / "rules" / "drafts", rules / "drafts")
    for var in [k for k in os.environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    for var, value in (("CITYCREDIT_LANDING", landing), ("CITYCREDIT_WAREHOUSE", warehouse),
                       ("CITYCREDIT_RULES", rules)):
        monkeypatch.setenv(var, str(value))
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    for month in ("2026-01", "2026-02"):
        pipeline.run_month(month, settings=settings, accept_drift=True)

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags[EVALUATE_DAG_ID]
    for task in dag.tasks:
        task.retries = 0
    run = dag.test()                               # no month param: the latest published month
    assert run.state == DagRunState.SUCCESS
    assert [ti.rendered_map_index for ti in run.get_task_instances()] == ["haibei"]
    evaluations = DeltaTable(str(warehouse / "sandbox" / "evaluations")).to_pandas()
    assert list(zip(evaluations["scheme"], evaluations["score_month"], evaluations["variant"])) \
        == [("haibei", "2026-02", "adopted")]
    metrics = json.loads(evaluations["metrics"].iloc[0])
    assert metrics["outcome_months"] == 0 and metrics["auc"] is None     # nothing after 2026-02
    # stability is measured between the two published months, as a reader of gold would count
    from citycredit.policy import measures
    from citycredit.rules import load_schemes

    published = DeltaTable(str(warehouse / "gold" / "published_scores")).to_pandas()
    counts = {m: published[(published["scheme"] == "haibei") & (published["score_month"] == m)]
              ["grade"].value_counts().to_dict() for m in ("2026-01", "2026-02")}
    assert {m: {g: n for g, n in metrics["grade_counts"][m].items() if n} for m in counts} \
        == counts
    grades = [g.grade for g in load_schemes(rules, ["haibei"])["haibei"].grades]
    assert metrics["psi"]["previous_month"] == pytest.approx(
        measures.psi(counts["2026-01"], counts["2026-02"], grades))
    assert metrics["subjects"] > 250
    assert (tmp_path / "reports" / "evaluate-haibei-2026-02.html").is_file()
