"""Population deliveries built into silver by the real silver step, and months_resident counted
the obvious way — shared by tests/unit/test_silver_residence.py and
tests/integration/test_scoring_job.py."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from citycredit import catalog
from citycredit.io import tables
from citycredit.silver.task import build_silver


def deliver(settings, month: str, statuses: dict[str, str]) -> dict:
    """The population delivery of `month` ({subject_key: status}) staged and built into silver."""
    location = catalog.staging("population").at(settings)
    rows = [{"source_id": "population", "subject_key": key, "birth_date": dt.date(1980, 1, 1),
             "sex": "F", "district": "371002", "residency": "hukou", "status": status,
             "month": month, "load_id": "t"} for key, status in sorted(statuses.items())]
    tables.write_arrow(pa.Table.from_pylist(rows, schema=location.table.schema), location,
                       mode="overwrite", replace={"source_id": "population", "month": month})
    return build_silver(month, "run", [{"source_id": "population", "status": "landed",
                                        "kind": "population"}], settings)


def counted(standing: dict[str, dict[str, str]]) -> dict[str, int]:
    """The obvious way: every person active in some snapshot → active snapshots up to the latest."""
    out: dict[str, int] = {}
    for month in sorted(standing):
        for key, status in standing[month].items():
            if status == "active":
                out[key] = out.get(key, 0) + 1
    return out
