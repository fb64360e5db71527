"""What dags/citycredit_monthly.py needs: one Airflow task per step of pipeline.STEPS, and which
month / run id a DAG run stands for. Light imports only: the DAG processor imports this."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import catalog
from .config import Settings


def published_uri(settings: Settings) -> str:
    """`file://` URI of gold/published_scores, the table the DAG's Asset stands for."""
    return Path(catalog.PUBLISHED_SCORES.at(settings).path).resolve().as_uri()


def run_month(logical_date: datetime | None, run_after: datetime, param_month: str | None,
              timezone: str) -> str:
    """The score month of a DAG run: the `month` param, else the month before the logical date
    read in the schedule's time zone (Airflow 3 runs may have no logical date: then run_after)."""
    from .months import score_month_of_run

    when = (logical_date or run_after).astimezone(ZoneInfo(timezone))
    return score_month_of_run(when, param_month or None)


def pipeline_run_id(airflow_run_id: str) -> str:
    """A path- and Spark-safe run id from Airflow's (`manual__2026-03-05T03:00:00+00:00` →
    `manual__2026-03-05T030000Z`); one per DAG run, stable across task retries."""
    rid = re.sub(r"\+00:?00$", "Z", airflow_run_id).replace(":", "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", rid)


def month_and_run_id(context, timezone: str) -> tuple[str, str]:
    """The score month and pipeline run id of the running task's DAG run (its context)."""
    return (run_month(context.get("logical_date"), context["dag_run"].run_after,
                      context["params"].get("month"), timezone),
            pipeline_run_id(context["run_id"]))


#: a task waits this long for an operator's erase or cleanup to finish (then fails, and
#: Airflow's retries try again)
_LOCK_WAIT_SECONDS = 600.0


def _run_task(step_name: str, timezone: str, item: str | None, inputs: dict):
    """The body of every task: the step's function through pipeline.run_step, with the month
    and run id of the running DAG run. A refusal fails the task at once (retrying gives the
    same answer); an optional source that did not deliver is skipped."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from . import pipeline

    context = get_current_context()
    month, run_id = month_and_run_id(context, timezone)
    step = pipeline.STEP_BY_NAME[step_name]
    # results of mapped steps arrive as lazy XCom sequences (skipped items are left out): one
    # slice reads them all at once
    results = {source: (None if inputs.get(keyword) is None
                        else list(inputs[keyword][:]) if pipeline.STEP_BY_NAME[source].each
                        else inputs[keyword])
               for keyword, source in step.inputs.items()}
    options = {"accept_drift": bool(context["params"].get("accept_drift")),
               "rescore_with_current_rules":
                   bool(context["params"].get("rescore_with_current_rules")),
               "progress": lambda stage, detail="": print(f"{stage} {detail}", flush=True)}
    try:
        outcome = pipeline.run_step(step, month, run_id, None,
                                    results, item, options, lock_wait_seconds=_LOCK_WAIT_SECONDS)
    except pipeline.SourceSkipped as exc:
        raise AirflowSkipException(str(exc)) from exc
    except pipeline.REFUSALS as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
    if step_name == "report":
        print(outcome)
    return outcome


def _task_body(step_name: str, timezone: str):
    """The function TaskFlow wraps for one step: every keyword any step takes (its inputs and
    the item of a mapped step) is a parameter, so mapping and XCom arguments bind by name."""
    def run_step_task(source_id=None, deliveries=None, landed=None, silver=None,
                      erased=None, scored=None, published=None):
        return _run_task(step_name, timezone, source_id,
                         {"deliveries": deliveries, "landed": landed, "silver": silver,
                          "erased": erased, "scored": scored, "published": published})
    return run_step_task


def wire_steps(settings: Settings, timezone: str, outlets: dict | None = None,
               max_active_per_run: dict | None = None) -> dict:
    """Inside a @dag function: one task per pipeline step, in the declared order. A step run
    per item is mapped over its items; a step's inputs become XCom arguments; an `always` step
    is a teardown: it runs whatever happened upstream (the erasure and the report of a refused
    month). With `spark.submit.conn_id` in conf the score step is a spark-submit of
    jobs/score.py to that cluster (airflow_submit.ScoreSubmitOperator; same result)."""
    from airflow.sdk import BaseOperator, TriggerRule, task

    from . import pipeline

    made: dict = {}
    for step in pipeline.STEPS:
        options = {"task_id": step.name, "outlets": (outlets or {}).get(step.name, []),
                   "doc_md": step.function.__doc__}
        if any(pipeline.STEP_BY_NAME[s].each for s in (*step.inputs.values(), *step.after)):
            # a skipped optional source must not skip what comes after it
            options["trigger_rule"] = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
        if step.each:
            options["map_index_template"] = "{{ task.op_kwargs['" + step.each + "'] }}"
            if step.name in (max_active_per_run or {}):
                options["max_active_tis_per_dagrun"] = max_active_per_run[step.name]
        # a classic operator's (the spark-submit score step's) result is its .output
        inputs = {keyword: made[source].output if isinstance(made[source], BaseOperator)
                  else made[source] for keyword, source in step.inputs.items()}
        if step.name == "score" and settings.spark_submit_conn_id:
            # on a cluster: spark-submit of jobs/score.py through the Spark provider
            from .airflow_submit import ScoreSubmitOperator

            made[step.name] = ScoreSubmitOperator(
                conn_id=settings.spark_submit_conn_id, timezone=timezone,
                lock_wait_seconds=_LOCK_WAIT_SECONDS, **options)
        elif step.each:
            made[step.name] = task(**options)(_task_body(step.name, timezone)).partial(
                **inputs).expand(**{step.each: pipeline.items_of(step, settings)})
        else:
            made[step.name] = task(**options)(_task_body(step.name, timezone))(**inputs)
        if step.always:
            # a teardown runs whatever happened upstream, and the run's state is still decided
            # by the other tasks: a refused month is reported (and its erasure carried out),
            # and its run stays failed. (on_failure_fail_dagrun would make the erase teardown
            # the run's only leaf: a refused publication's run would then end 'success'.) A
            # failed erasure is a failed, retried task; the next run's erase completes it.
            made[step.name].as_teardown()
        for earlier in step.after:
            made[earlier] >> made[step.name]
    return made


# ---------------------------------------------------------------------------------------------
# dags/citycredit_evaluate.py: the monthly evaluation of every adopted scheme (policy tools)
def _evaluate_task(scheme: str) -> dict:
    """The body of evaluate_scheme: policy.task.monthly_evaluation for the run's `month` param,
    or the scheme's latest published month. Nothing published yet: skipped."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from .policy.job import PolicyDataMissing
    from .policy.task import monthly_evaluation

    month = get_current_context()["params"].get("month") or None
    try:
        return monthly_evaluation(scheme, month)
    except PolicyDataMissing as exc:
        raise AirflowSkipException(str(exc)) from exc


def wire_evaluation(settings: Settings) -> object:
    """Inside a @dag function: evaluate_scheme mapped over the adopted schemes of rules/ (read
    at parse time; drafts/ is never among them)."""
    from airflow.sdk import task

    from .rules import available_schemes

    # one scheme at a time: each task runs its own Spark session and appends to one table
    @task(task_id="evaluate_scheme", map_index_template="{{ task.op_kwargs['scheme'] }}",
          max_active_tis_per_dagrun=1, doc_md=_evaluate_task.__doc__)
    def evaluate_scheme(scheme: str) -> dict:
        return _evaluate_task(scheme)

    return evaluate_scheme.expand(scheme=list(available_schemes(settings.rules)))
