"""Quarantine: rejected rows with source, month, file, line, reason codes and the delivered
content (SPEC §2, §5), so the department can find and repair each row.

Names and forbidden fields are masked in the kept content, and identity numbers are kept only in
their display form `371002********123X` (SPEC §7: clear numbers in bronze only); the row's
subject_key, where its number was valid, lets erasure find it (issue "Privacy").
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import catalog
from ..identity import (id_number_tokens, is_valid_id_number, mask_id_number,
                        mask_id_numbers_in, subject_keys)
from ..io import tables
from .contracts import Contract


def _redact(raw: Any, error: Any, file: str, name: Any, id_number: Any,
            forbidden: frozenset) -> str:
    """Quarantine keeps the delivered text, but not a name or a forbidden field, and identity
    numbers only masked (SPEC §7); anything in the text that looks like an identity number is
    masked too (a row that could not be read into fields still holds one)."""
    if error is not None:
        return mask_id_numbers_in(raw)    # could not be read into fields: kept, numbers masked
    if str(file).lower().endswith(".jsonl"):
        masked = {"name"} | set(forbidden)

        def redacted(key, value):
            key = str(key).strip().lower()
            if value is None:
                return value
            if key == "id_number":
                return mask_id_number(value)
            return "***" if key in masked else value
        try:
            obj = json.loads(raw)
            return mask_id_numbers_in(json.dumps({k: redacted(k, v) for k, v in obj.items()},
                                                 ensure_ascii=False))
        except (ValueError, AttributeError):
            return mask_id_numbers_in(raw)
    if isinstance(name, str) and name:
        raw = raw.replace(name, "***")
    if isinstance(id_number, str) and id_number:
        raw = raw.replace(id_number, mask_id_number(id_number))
    return mask_id_numbers_in(raw)


def quarantine_raw(qdf: pd.DataFrame, contract: Contract, forbidden: frozenset) -> list:
    """The `raw` of quarantined rows: the delivered text (csv record, jsonl line), or for parquet
    rows (no text) the row's fields as one JSON object; names and forbidden fields masked,
    identity numbers in their display form (`371002********123X`)."""
    out = list(qdf["_raw"].to_numpy(dtype=object))
    has_text = qdf["_raw"].notna().to_numpy()
    rendered = np.flatnonzero(~has_text)
    if len(rendered):
        fields = qdf.iloc[rendered][list(contract.columns)].copy()
        if "name" in fields.columns:
            fields["name"] = fields["name"].where(fields["name"].isna(), "***")
        if "id_number" in fields.columns:
            fields["id_number"] = fields["id_number"].map(mask_id_number, na_action="ignore")
        lines = fields.to_json(orient="records", lines=True, force_ascii=False).splitlines()
        for pos, line in zip(rendered, lines):
            out[pos] = mask_id_numbers_in(line)
    names = qdf["name"].to_numpy(dtype=object) if "name" in qdf.columns else None
    ids = qdf["id_number"].to_numpy(dtype=object) if "id_number" in qdf.columns else None
    errors, files = qdf["_error"].to_numpy(dtype=object), qdf["_file"].to_numpy(dtype=object)
    for pos in np.flatnonzero(has_text):
        out[pos] = _redact(out[pos], errors[pos], files[pos],
                           names[pos] if names is not None else None,
                           ids[pos] if ids is not None else None, forbidden)
    return out


def quarantine_subject_keys(data: pd.DataFrame, quarantined: pd.DataFrame, key: str) -> list:
    """The subject_key of each quarantined row (in its order), None where the row holds no valid
    identity number: its `id_number` field, else the first valid number-like token of the
    delivered text. `data` is the delivery as read (RawBatch.data: `_file`, `_line`,
    `id_number`, `_raw`), `quarantined` has `file` and `line`."""
    if quarantined.empty:
        return []
    wanted = ["_file", "_line"] + [c for c in ("id_number", "_raw") if c in data.columns]
    rows = quarantined[["file", "line"]].merge(
        data[wanted], how="left", left_on=["file", "line"], right_on=["_file", "_line"])
    numbers = []
    for field_value, text in zip(
            rows["id_number"] if "id_number" in rows else [None] * len(rows),
            rows["_raw"] if "_raw" in rows else [None] * len(rows)):
        candidates = ([field_value] if isinstance(field_value, str) else []) + \
            (id_number_tokens(text) if isinstance(text, str) else [])
        numbers.append(next((c for c in candidates if is_valid_id_number(c)), None))
    return subject_keys(numbers, key)


def quarantine_rows(quarantined: pd.DataFrame, source_id: str, month: str, run_id: str
                    ) -> pa.Table:
    """Quarantined rows (columns file, line, reasons, detail, raw — see
    verdicts.quarantined_rows — and subject_key, see quarantine_subject_keys) → rows of
    quarantine/rows."""
    frame = quarantined.reindex(
        columns=["file", "line", "reasons", "detail", "raw", "subject_key"]).copy()
    frame["subject_key"] = frame["subject_key"].astype(object).where(
        frame["subject_key"].notna(), None)
    frame.insert(0, "source_id", source_id)
    frame.insert(1, "month", month)
    frame["line"] = frame["line"].astype("int64")
    frame["raw"] = frame["raw"].map(lambda v: v if v is None or isinstance(v, str)
                                    else json.dumps(v, ensure_ascii=False, default=str))
    frame["load_id"] = run_id
    table = catalog.QUARANTINE
    return pa.Table.from_pandas(frame[table.columns], schema=table.schema, preserve_index=False)


def write_quarantine(warehouse, quarantined: pd.DataFrame | pa.RecordBatchReader,
                     source_id: str, month: str, run_id: str) -> None:
    """Replace quarantine/rows of (source_id, month) with `quarantined` (a frame as
    quarantine_rows takes, or quarantine_rows streamed as a RecordBatchReader) in one atomic
    commit."""
    data = (quarantined if isinstance(quarantined, pa.RecordBatchReader)
            else quarantine_rows(quarantined, source_id, month, run_id))
    tables.write_arrow(data, catalog.QUARANTINE.at(warehouse), mode="overwrite",
                       replace={"source_id": source_id, "month": month})
