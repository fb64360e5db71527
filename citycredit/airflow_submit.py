"""The DAG's score step on a cluster: the Apache Spark provider's SparkSubmitOperator submitting
jobs/score.py (citycredit.cluster.score_submission) through the Airflow connection conf names
(`spark.submit.conn_id`; the connection holds the master — spark://host:7077, yarn, k8s://… — and
its deploy mode, queue, namespace). Imported by airflow_support only when a cluster is configured.

The task's result (XCom) is the embedded step's: the job's driver writes the `Scored` list under
the warehouse (cluster.result_path) and the task returns it, so publish and report read the
same either way. The month, run id and options come from the DAG run, as for every other task.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from . import cluster
from .config import Settings, load_settings


class ScoreSubmitOperator(SparkSubmitOperator):
    """spark-submit of jobs/score.py for the DAG run's month; returns the step's Scored list.

    `py_files`, `jars`, `conf`, `driver_memory` and `application_args` are set from conf and
    the run when the task runs (`prepare`), not when the DAG file is parsed."""

    def __init__(self, *, conn_id: str, timezone: str, lock_wait_seconds: float, **kwargs):
        super().__init__(conn_id=conn_id, application=str(cluster.SCORE_JOB),
                         name="citycredit-score", **kwargs)
        self.timezone = timezone
        self.lock_wait_seconds = lock_wait_seconds

    def prepare(self, settings: Settings, month: str, run_id: str, folder: Path,
                rescore_with_current_rules: bool = False) -> Path:
        """Fill in the submission of `month` (the package zipped into `folder`); returns where
        the job writes its result."""
        result = cluster.result_path(settings, month, run_id)
        submission = cluster.score_submission(
            settings, month, run_id, cluster.package_zip(folder), result,
            rescore_with_current_rules, self.lock_wait_seconds)
        self.application = submission.application
        self.application_args = submission.application_args
        self.py_files = submission.py_files
        self.jars = submission.jars
        self.conf = dict(submission.conf)
        self._driver_memory = submission.driver_memory
        self._hook = None            # built from these by execute (or command_line)
        return result

    def command_line(self) -> list[str]:
        """The spark-submit command the provider's hook runs for what `prepare` set."""
        return self._get_hook()._build_spark_submit_command(self.application)

    def execute(self, context):
        from .airflow_support import month_and_run_id

        from airflow.sdk import BaseHook

        # the provider would fall back to YARN for a connection it cannot find
        BaseHook.get_connection(self._conn_id)
        month, run_id = month_and_run_id(context, self.timezone)
        rescore = bool(context["params"].get("rescore_with_current_rules"))
        with tempfile.TemporaryDirectory(prefix="citycredit-submit-") as folder:
            result = self.prepare(load_settings(), month, run_id, Path(folder), rescore)
            result.unlink(missing_ok=True)          # a retry reads only its own try's result
            super().execute(context)
        try:
            return cluster.read_result(result)
        except FileNotFoundError:
            raise RuntimeError(f"jobs/score.py finished without writing its result {result} "
                               f"(is the warehouse on a file system the driver shares?)") from None
