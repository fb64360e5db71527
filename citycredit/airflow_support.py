"""The few helpers dags/citycredit_monthly.py needs: what to map over at parse time, and which
month / run id a DAG run stands for. Light imports only: the DAG processor imports this."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import Settings
from .rules import available_schemes

PUBLISHED_TABLE = ("gold", "published_scores")


def source_ids(settings: Settings) -> list[str]:
    """Every source of conf/sources.yaml, in catalogue order (one land_source task each)."""
    return list(settings.sources)


def scheme_names(settings: Settings) -> list[str]:
    """Every rules/<scheme>.yaml except the catalogue (one score_scheme task each)."""
    return list(available_schemes(settings.rules))


def published_uri(settings: Settings) -> str:
    """`file://` URI of gold/published_scores, the table the DAG's Asset stands for."""
    return Path(settings.table_path(*PUBLISHED_TABLE)).resolve().as_uri()


def run_month(logical_date: datetime | None, run_after: datetime, param_month: str | None,
              timezone: str) -> str:
    """The score month of a DAG run: the `month` param, else the month before the logical date
    read in the schedule's time zone (Airflow 3 runs may have no logical date: then run_after)."""
    from .pipeline import resolve_month

    when = (logical_date or run_after).astimezone(ZoneInfo(timezone))
    return resolve_month(when, param_month or None)


def pipeline_run_id(airflow_run_id: str) -> str:
    """A path- and Spark-safe run id from Airflow's (`manual__2026-03-05T03:00:00+00:00` →
    `manual__2026-03-05T030000Z`); one per DAG run, stable across task retries."""
    rid = re.sub(r"\+00:?00$", "Z", airflow_run_id).replace(":", "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", rid)


@contextmanager
def refusals_fail_fast():
    """A pipeline refusal (missing or unreadable delivery, rejected batch, refused publication) gives the same
    answer on every try: fail the task at once instead of retrying it. Other errors retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from . import pipeline
    from .landing import DeliveryError

    refusals = (pipeline.DeliveryMissing, pipeline.BatchRejected, pipeline.PublishRefused,
                DeliveryError)
    try:
        yield
    except refusals as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
