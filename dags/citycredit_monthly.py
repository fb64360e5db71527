"""citycredit_monthly: one run per score month (SPEC §6, ARCHITECTURE stack decision 3).

Wiring only: every step is a call into citycredit.pipeline, the same functions `citycredit run`
calls. What is mapped over (the sources of conf/sources.yaml, the schemes of rules/) is read when
the file is parsed; the month itself is decided per run. Heavy imports (pandas, pyspark, GX) stay
inside the task functions so that parsing this file stays fast.

    check_deliveries → land_source[source …] → build_silver → score_scheme[scheme …]
                     → publish (Asset citycredit_published_scores) → report

The run at 03:00 (Asia/Shanghai) on the 5th of a month scores the month before; the `month` param
(YYYY-MM) scores any month instead, e.g. `airflow dags test citycredit_monthly -c '{"month":
"2026-02"}'`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import (Asset, CronTriggerTimetable, Param, TriggerRule, dag, get_current_context,
                         task)
from airflow.sdk.exceptions import AirflowSkipException

from citycredit import airflow_support as support
from citycredit.config import load_settings

TIMEZONE = "Asia/Shanghai"
SETTINGS = load_settings()                      # conf/ + CITYCREDIT_* of the DAG processor
SOURCES = support.source_ids(SETTINGS)
SCHEMES = support.scheme_names(SETTINGS)
PUBLISHED_SCORES = Asset(name="citycredit_published_scores", uri=support.published_uri(SETTINGS))
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


def _run() -> tuple[str, str]:
    """(score month, pipeline run id) of the running DAG run."""
    context = get_current_context()
    month = support.run_month(context.get("logical_date"), context["dag_run"].run_after,
                              context["params"].get("month"), TIMEZONE)
    return month, support.pipeline_run_id(context["run_id"])


@dag(
    dag_id="citycredit_monthly",
    description="Monthly city credit scores: land → validate → silver → score → publish → report",
    schedule=CronTriggerTimetable("0 3 5 * *", timezone=TIMEZONE),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "citycredit", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "month": Param(None, type=["null", "string"], pattern=MONTH_PATTERN,
                       description="Score month YYYY-MM; empty: the month before the run's date"),
        "accept_drift": Param(False, type="boolean",
                              description="Publish even though grade shares moved more than "
                                          "publish.max_grade_share_change (after review)"),
    },
    tags=["citycredit"],
    doc_md=__doc__,
)
def citycredit_monthly():

    @task
    def check_deliveries() -> dict:
        from citycredit import pipeline

        month, _ = _run()
        with support.refusals_fail_fast():
            return pipeline.check_deliveries(month)

    @task(map_index_template="{{ task.op_kwargs['source_id'] }}", max_active_tis_per_dagrun=4)
    def land_source(source_id: str, deliveries: dict) -> dict:
        if source_id in deliveries["missing_optional"]:
            raise AirflowSkipException(f"{source_id}: no delivery this month (optional source)")
        from citycredit import pipeline

        month, run_id = _run()
        with support.refusals_fail_fast():
            return pipeline.land_source(source_id, month, run_id)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)   # skipped sources are fine
    def build_silver(landed: list[dict]) -> dict:
        from citycredit import pipeline

        month, run_id = _run()
        with support.refusals_fail_fast():
            return pipeline.build_silver(month, run_id, list(landed))

    @task(map_index_template="{{ task.op_kwargs['scheme'] }}", max_active_tis_per_dagrun=2)
    def score_scheme(scheme: str) -> dict:
        from citycredit import pipeline

        month, run_id = _run()
        with support.refusals_fail_fast():
            return pipeline.score_scheme(scheme, month, run_id)

    @task(outlets=[PUBLISHED_SCORES])
    def publish(scored: list[dict]) -> dict:
        from citycredit import pipeline

        month, run_id = _run()
        accept_drift = bool(get_current_context()["params"].get("accept_drift"))
        with support.refusals_fail_fast():
            return pipeline.publish(month, run_id, list(scored), accept_drift=accept_drift)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)   # takes land_source's results
    def report(landed: list[dict], silver: dict, scored: list[dict], published: dict) -> str:
        from citycredit import pipeline

        month, run_id = _run()
        summary = pipeline.write_report(month, run_id, list(landed), silver, list(scored),
                                        published)
        print(summary)
        return summary

    deliveries = check_deliveries()
    landed = land_source.partial(deliveries=deliveries).expand(source_id=SOURCES)
    silver = build_silver(landed)
    scored = score_scheme.expand(scheme=SCHEMES)
    silver >> scored
    published = publish(scored)
    report(landed, silver, scored, published)


citycredit_monthly()
