"""The silver boundary: identity numbers become subject keys (SPEC §5, ARCHITECTURE decision 6).

subject_key = lowercase hex HMAC-SHA256(key, upper(id_number)); for the population, birth date
and sex are read from the identity number (GB 11643) before it is dropped.
"""
from __future__ import annotations

import pandas as pd

from ..identity import birth_dates_and_sexes, subject_keys


def pseudonymise(accepted: pd.DataFrame, kind: str, key: str) -> pd.DataFrame:
    """Accepted rows (validated, so every id_number is valid) → the same rows with `id_number`
    replaced by `subject_key`; population rows gain `birth_date` (date32) and `sex` ('M'|'F')."""
    frame = accepted.copy()
    if "id_number" not in frame:
        return frame
    ids = frame["id_number"].astype(str)
    frame["subject_key"] = subject_keys(ids, key)
    if kind == "population":
        births, sexes = birth_dates_and_sexes(ids)
        frame["birth_date"] = pd.array(births, dtype="date32[pyarrow]")
        frame["sex"] = sexes.to_numpy(zero_copy_only=False)
    return frame.drop(columns=["id_number"])
