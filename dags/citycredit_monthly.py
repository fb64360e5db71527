"""citycredit_monthly: one run per score month (SPEC §6, ARCHITECTURE stack decision 3).

Wiring only: one task per step of `citycredit.pipeline.STEPS` — the order `citycredit run`
follows — each calling `pipeline.run_step`. The per-source step is mapped over the sources of
conf/sources.yaml, read when this file is parsed; `score` scores every scheme of rules/ in one
job (one scan of the findings); the month itself is decided per run. Heavy imports (pandas, pyspark, GX) stay inside the tasks so that
parsing this file stays fast.

    check_deliveries → land_source[source …] → build_silver → score
                     → publish (Asset citycredit_published_scores) → erase → report
                       (erase and report also after a refusal)

The run at 03:00 (Asia/Shanghai) on the 5th of a month scores the month before; the `month` param
(YYYY-MM) scores any month instead, e.g. `airflow dags test citycredit_monthly -c '{"month":
"2026-02"}'`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, CronTriggerTimetable, Param, dag

from citycredit import airflow_support as support
from citycredit.config import load_settings
from citycredit.months import MONTH_PATTERN

TIMEZONE = "Asia/Shanghai"
SETTINGS = load_settings()                      # conf/ + CITYCREDIT_* of the DAG processor
PUBLISHED_SCORES = Asset(name="citycredit_published_scores", uri=support.published_uri(SETTINGS))


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
        "rescore_with_current_rules": Param(
            False, type="boolean", description="Re-publish a month already published under "
                                               "other rules with the rules in force now"),
    },
    tags=["citycredit"],
    doc_md=__doc__,
)
def citycredit_monthly():
    support.wire_steps(SETTINGS, TIMEZONE, outlets={"publish": [PUBLISHED_SCORES]},
                       max_active_per_run={"land_source": 4})


citycredit_monthly()
