"""A findings batch rendered as the findings extract's columns (docs/contracts.md)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_strings import fixed_width_strings, int_strings, lookup_strings, null_where
from .batches import NO_DAY, NO_QUANTITY, batch_size
from .catalogue import CASE_KINDS, LEVELS, STATUSES
from .faults import FAULT_CODE, junk_dates, wrong_check_characters

FINDINGS_COLUMNS = ["record_id", "id_number", "name", "item_code", "level", "quantity",
                    "occurred_on", "valid_until", "status", "case_ref"]
# "" or the decimal fraction of n hundredths, without trailing zeros: 0 → "", 50 → ".5"
_HUNDREDTHS = ["" if f == 0 else ("." + f"{f:02d}".rstrip("0")) for f in range(100)]


def finding_table(plan, population, source, rows: dict, month_index: int) -> pa.Table:
    """FINDINGS_COLUMNS of the rows, in the source's format: parquet gets date32 dates and a
    decimal(18, 4) quantity, csv and jsonl get strings (dates in the source's date format).
    Rows with a fault are rendered wrong accordingly."""
    occurred = pa.array(rows["occurred"], type=pa.date32(), mask=rows["occurred"] == NO_DAY)
    valid_until = pa.array(rows["valid_until"], type=pa.date32(),
                           mask=rows["valid_until"] == NO_DAY)
    quantity = _quantities(rows["quantity"])
    if source.format == "parquet":
        quantity = quantity.cast(pa.decimal128(18, 4))
    else:
        occurred = pc.strftime(occurred, format=source.date_format)
        valid_until = pc.strftime(valid_until, format=source.date_format)
        occurred = _with_junk_dates(occurred, rows, source.date_format, month_index)
    person = rows["person"]
    no_person = person < 0
    names = population.names.take(pa.array(np.where(no_person, 0, person).astype(np.int32),
                                           mask=no_person))
    return pa.table([source.record_ids(rows["serial"]), _id_numbers(population, rows), names,
                     lookup_strings(plan.item_codes, rows["item"]),
                     lookup_strings(LEVELS, rows["level"]), quantity, occurred, valid_until,
                     lookup_strings(STATUSES, rows["status"]), _case_refs(rows)],
                    names=FINDINGS_COLUMNS)


def _id_numbers(population, rows: dict) -> pa.Array:
    """The persons' identity numbers; a wrong check character on bad_id_number rows."""
    person = rows["person"]
    id_bytes = population.id_bytes[np.maximum(person, 0)]
    spoiled = np.flatnonzero(rows["fault"] == FAULT_CODE["bad_id_number"])
    if len(spoiled):
        id_bytes[spoiled, 17] = wrong_check_characters(id_bytes[spoiled, 17],
                                                       rows["fault_variant"][spoiled])
    return fixed_width_strings(id_bytes, person < 0)


def _quantities(quantity: np.ndarray) -> pa.Array:
    """Hundredths → decimal strings ("12", "-0.5", "3.25"); null for NO_QUANTITY."""
    missing = quantity == NO_QUANTITY
    magnitude = np.where(missing, 0, np.abs(quantity))
    text = pc.binary_join_element_wise(
        lookup_strings(["", "-"], (quantity < 0).astype(np.int64)),
        int_strings(magnitude // 100), lookup_strings(_HUNDREDTHS, magnitude % 100), "")
    return null_where(text, missing)


def _case_refs(rows: dict) -> pa.Array:
    kind = rows["case_kind"]
    case_refs = pa.nulls(batch_size(rows), pa.string())
    for k in np.unique(kind[kind >= 0]):
        of_kind = kind == k
        case_kind = CASE_KINDS[k]
        number = int_strings(rows["case_number"][of_kind])
        if case_kind.pad:
            number = pc.utf8_lpad(number, width=case_kind.pad, padding="0")
        year = int_strings(rows["case_year"][of_kind])
        text = pc.binary_join_element_wise(case_kind.prefix, year, case_kind.middle, number,
                                           case_kind.suffix, "")
        case_refs = pc.replace_with_mask(case_refs, pa.array(of_kind), text)
    return case_refs


def _with_junk_dates(occurred: pa.Array, rows: dict, date_format: str,
                     month_index: int) -> pa.Array:
    """occurred_on strings with unparseable dates on the bad_date rows."""
    junk = np.flatnonzero(rows["fault"] == FAULT_CODE["bad_date"])
    if not len(junk):
        return occurred
    dates = junk_dates(date_format, month_index)
    mask = np.zeros(batch_size(rows), bool)
    mask[junk] = True
    return pc.replace_with_mask(occurred, pa.array(mask),
                                pa.array([dates[v] for v in rows["fault_variant"][junk]],
                                         pa.string()))
