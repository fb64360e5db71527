"""A file's rows as an Arrow table of the RawBatch columns (contract columns as text +
META_COLUMNS, ingest.contracts), and the delivery's pandas frame built from those tables.
Identity numbers get their one normal form here (`identity.normalise_id_numbers`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..identity import id_number_tokens, is_valid_id_number, normalise_id_numbers
from .contracts import Contract
from .controls import has_controls, id_padding_note


def text_array(values) -> pa.Array:
    """Strings (or None) → arrow string array, surrounding whitespace stripped, '' → null."""
    arr = (values if isinstance(values, (pa.Array, pa.ChunkedArray))
           else pa.array(values, pa.string()))
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def recovered_id_numbers(texts: dict[int, str]) -> dict[int, str]:
    """Rows that could not be read into fields (position → delivered text): the first valid
    identity number in each text, taken before the text is masked. It becomes the row's
    `id_number` (kept in bronze, the one table with clear numbers), so suppression and the
    quarantine's subject_key know whose row it is."""
    out = {}
    for pos, text in texts.items():
        for token in id_number_tokens(text):
            if is_valid_id_number(token):
                out[pos] = token
                break
    return out


def file_table(contract: Contract, columns: dict, file: str, lines, raw, error, extra,
           detail=None, recovered: dict[int, str] | None = None) -> pa.Table:
    """A file's rows as an arrow table: contract columns (text) + META_COLUMNS; `recovered`:
    identity numbers of unreadable rows (recovered_id_numbers)."""
    n = len(lines)
    if recovered and "id_number" in contract.columns:
        ids = list(columns.get("id_number") or [None] * n)
        for pos, number in recovered.items():
            ids[pos] = number
        columns = {**columns, "id_number": ids}
    data = {}
    for col in contract.columns:
        values = columns.get(col)
        data[col] = text_array(values) if values is not None else pa.nulls(n, pa.string())
    if "id_number" in data:
        delivered = data["id_number"]
        data["id_number"] = normalise_id_numbers(delivered)
        detail = _id_padding_notes(delivered, data["id_number"], error, detail)
    data["_file"] = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                                   pa.array([file], pa.string()))
    data["_line"] = pa.array(np.asarray(lines, dtype=np.int64))
    for name, values in (("_raw", raw), ("_error", error), ("_extra", extra),
                         ("_detail", detail)):
        data[name] = (pa.nulls(n, pa.string()) if values is None
                      else values if isinstance(values, pa.Array) else pa.array(values, pa.string()))
    return pa.table(data)


def _id_padding_notes(delivered: pa.Array, normal: pa.Array, error, detail):
    """`detail` with a note on the rows whose identity number lost control characters to its
    normal form (ingest.controls), where the row has no `_error`."""
    padded = has_controls(delivered) & ~has_controls(normal)
    if not padded.any():
        return detail
    n = len(delivered)
    detail = ([None] * n if detail is None else
              detail.to_pylist() if isinstance(detail, pa.Array) else list(detail))
    errors = ([None] * n if error is None else
              error.to_pylist() if isinstance(error, pa.Array) else error)
    for pos in np.flatnonzero(padded).tolist():
        if errors[pos] is None:
            note = id_padding_note("id_number", delivered[pos].as_py())
            detail[pos] = note if detail[pos] is None else f"{detail[pos]}; {note}"
    return detail


def to_frame(tables: list[pa.Table], contract: Contract) -> pd.DataFrame:
    """One pandas frame for the delivery: text as Python str / None (object columns), built by
    arrow in one go (no per-row Python)."""
    if not tables:
        tables = [file_table(contract, {}, "", [], [], [], [])]
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.set_column(table.schema.get_field_index("_file"), "_file",
                             table["_file"].cast(pa.string()))
    return table.to_pandas()


def sparse(values: dict, n: int) -> list | None:
    """{position: value} → a list of n values (None elsewhere), or None when there are none."""
    if not values:
        return None
    out = [None] * n
    for pos, v in values.items():
        out[pos] = v
    return out
