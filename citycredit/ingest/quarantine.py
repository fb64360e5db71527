"""Quarantine: rejected rows with source, month, file, line, reason codes and the delivered
content (SPEC §2, §5), so the department can find and repair each row.

Names and forbidden fields are masked in the kept content (SPEC §7).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import catalog
from ..io import tables
from .contracts import Contract


def _redact(raw: Any, error: Any, file: str, name: Any, forbidden: frozenset) -> str:
    """Quarantine keeps the delivered text, but not a name or a forbidden field (SPEC §7)."""
    if error is not None:
        return raw    # could not be read into fields: kept as delivered
    if str(file).lower().endswith(".jsonl"):
        masked = {"name"} | set(forbidden)
        try:
            obj = json.loads(raw)
            return json.dumps({k: ("***" if str(k).strip().lower() in masked and v is not None
                                   else v) for k, v in obj.items()}, ensure_ascii=False)
        except (ValueError, AttributeError):
            return raw
    return raw.replace(name, "***") if isinstance(name, str) and name else raw


def quarantine_raw(qdf: pd.DataFrame, contract: Contract, forbidden: frozenset) -> list:
    """The `raw` of quarantined rows: the delivered text (csv record, jsonl line), or for parquet
    rows (no text) the row's fields as one JSON object; names and forbidden fields masked."""
    out = list(qdf["_raw"].to_numpy(dtype=object))
    has_text = qdf["_raw"].notna().to_numpy()
    rendered = np.flatnonzero(~has_text)
    if len(rendered):
        fields = qdf.iloc[rendered][list(contract.columns)].copy()
        if "name" in fields.columns:
            fields["name"] = fields["name"].where(fields["name"].isna(), "***")
        lines = fields.to_json(orient="records", lines=True, force_ascii=False).splitlines()
        for pos, line in zip(rendered, lines):
            out[pos] = line
    names = qdf["name"].to_numpy(dtype=object) if "name" in qdf.columns else None
    errors, files = qdf["_error"].to_numpy(dtype=object), qdf["_file"].to_numpy(dtype=object)
    for pos in np.flatnonzero(has_text):
        out[pos] = _redact(out[pos], errors[pos], files[pos],
                           names[pos] if names is not None else None, forbidden)
    return out


def write_quarantine(warehouse, quarantined: pd.DataFrame, source_id: str, month: str,
                     run_id: str) -> None:
    """Replace quarantine/rows of (source_id, month) with `quarantined` (columns file, line,
    reasons, detail, raw — see validate._quarantined_rows) in one atomic commit."""
    frame = quarantined.reindex(columns=["file", "line", "reasons", "detail", "raw"]).copy()
    frame.insert(0, "source_id", source_id)
    frame.insert(1, "month", month)
    frame["line"] = frame["line"].astype("int64")
    frame["raw"] = frame["raw"].map(lambda v: v if v is None or isinstance(v, str)
                                    else json.dumps(v, ensure_ascii=False, default=str))
    frame["load_id"] = run_id
    location = catalog.QUARANTINE.at(warehouse)
    data = pa.Table.from_pandas(frame[location.table.columns], schema=location.table.schema,
                                preserve_index=False)
    tables.write_arrow(data, location, mode="overwrite",
                       replace={"source_id": source_id, "month": month})
