"""citycredit_evaluate: keeps a monthly evaluation of every adopted scheme (policy tools).

Wiring only. Runs whenever citycredit_monthly publishes (the Asset citycredit_published_scores),
one task per adopted scheme (rules/<scheme>.yaml; never a draft), each calling
`citycredit.policy.task.monthly_evaluation`: the latest published month (stability, fairness)
and the month `policy.outcome_months` before it, whose outcome window is complete (validity,
discrimination). Results: sandbox/evaluations and the HTML reports in conf policy.reports.
A separate DAG rather than a step of the monthly run: an evaluation never holds up a
publication, and a failed one is retried on its own. The `month` param evaluates any month,
e.g. `airflow dags test citycredit_evaluate -c '{"month": "2025-10"}'`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag

from citycredit import airflow_support as support
from citycredit.config import load_settings
from citycredit.months import MONTH_PATTERN

SETTINGS = load_settings()
PUBLISHED_SCORES = Asset(name="citycredit_published_scores", uri=support.published_uri(SETTINGS))


@dag(
    dag_id="citycredit_evaluate",
    description="Monthly evaluation of every adopted scheme: validity, discrimination, "
                "stability, fairness",
    schedule=[PUBLISHED_SCORES],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "citycredit", "retries": 1, "retry_delay": timedelta(minutes=10)},
    params={"month": Param(None, type=["null", "string"], pattern=MONTH_PATTERN,
                           description="Score month YYYY-MM; empty: the latest published month")},
    tags=["citycredit"],
    doc_md=__doc__,
)
def citycredit_evaluate():
    support.wire_evaluation(SETTINGS)


citycredit_evaluate()
