"""Staging: a month's accepted rows of one source, typed and pseudonymised, which silver is built
from (the next step). A re-delivery replaces its (source, month) partition atomically."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from .. import catalog
from ..io import tables
from ..silver.pseudonymise import pseudonymise


def write_staging(warehouse, accepted: pd.DataFrame, kind: str, source_id: str, month: str,
                  run_id: str, key: str) -> None:
    """Accepted rows (validate.ValidationResult.accepted) → staging/<kind> (source_id, month)."""
    location = catalog.staging(kind).at(warehouse)
    frame = pseudonymise(accepted, kind, key)
    if kind == "appeals":          # an appeal's source_id is the appealed finding's source
        frame = frame.rename(columns={"source_id": "appeal_source_id"})
    frame = frame.assign(source_id=source_id, month=month, load_id=run_id)
    data = pa.Table.from_pandas(frame[location.table.columns], schema=location.table.schema,
                                preserve_index=False)
    tables.write_arrow(data, location, mode="overwrite",
                       replace={"source_id": source_id, "month": month})
