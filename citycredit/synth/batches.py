"""Columnar batches of finding rows: a dict of equally long numpy arrays, one per field.

Fields (BATCH_FIELDS: name, dtype, value when not given):

* serial: record serial, rendered `<source prefix><10 digits>`; -1 = record_id missing
* person: index into the Population; -1 = id_number missing
* item: index into CityPlan.item_codes; -1 = item_code missing
* level: index into catalogue.LEVELS; -1 = no level
* quantity: hundredths of the item's unit (hours, ml, yuan, months, points); NO_QUANTITY = none
* occurred, valid_until: day numbers (days since 1970-01-01); NO_DAY = none
* status: index into catalogue.STATUSES; -1 = status missing
* case_kind, case_year, case_number: the case reference (case_kind -1 = none)
* row_kind: ROW_NEW, ROW_CORRECTION or ROW_REVOCATION
* locked: a follow-up (performance, mirror correction) is already scheduled for this row, so
  random corrections and revocations leave it alone
* fault, fault_variant: 0 for a clean row, else 1 + index into faults.BAD_REASONS, and which
  variant of that fault
"""
from __future__ import annotations

import numpy as np

NO_QUANTITY = np.iinfo(np.int64).min
NO_DAY = np.iinfo(np.int32).min
ROW_NEW, ROW_CORRECTION, ROW_REVOCATION = 0, 1, 2

BATCH_FIELDS = [("serial", np.int64, -1), ("person", np.int32, -1), ("item", np.int16, -1),
                ("level", np.int8, -1), ("quantity", np.int64, NO_QUANTITY),
                ("occurred", np.int32, NO_DAY), ("valid_until", np.int32, NO_DAY),
                ("status", np.int8, 0), ("case_kind", np.int8, -1), ("case_year", np.int16, 0),
                ("case_number", np.int64, 0), ("row_kind", np.int8, ROW_NEW),
                ("locked", np.bool_, False), ("fault", np.int8, 0),
                ("fault_variant", np.int8, 0)]


def new_batch(n: int = 0, **columns) -> dict:
    """A batch of n rows: given columns (a scalar fills the column; an array is used as is,
    not copied, when its dtype is already right), the other fields at their defaults."""
    batch = {}
    for name, dtype, default in BATCH_FIELDS:
        if name in columns:
            value = np.asarray(columns[name])
            batch[name] = (np.full(n, value, dtype=dtype) if value.ndim == 0
                           else value.astype(dtype, copy=False))
        else:
            batch[name] = np.full(n, default, dtype=dtype)
    return batch


def batch_size(batch: dict) -> int:
    return len(batch["serial"])


def concat_batches(parts: list) -> dict:
    """One batch of the non-empty parts in order (the part itself when only one is non-empty)."""
    parts = [p for p in parts if p is not None and batch_size(p)]
    if not parts:
        return new_batch(0)
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name, _, _ in BATCH_FIELDS}


def take_rows(batch: dict, rows) -> dict:
    """A new batch of the given rows (an index array or a boolean mask)."""
    return {name: column[rows] for name, column in batch.items()}


def by_due_month(due: np.ndarray, selected: np.ndarray):
    """(due month, rows) for each distinct due month of the selected rows, in month order."""
    for month in np.unique(due[selected]):
        yield month, np.flatnonzero(selected & (due == month))
