"""Suppression at landing (SPEC §7, issue "Privacy"): the rows of persons on the suppression
list (erased after opting out) are dropped before bronze, so a re-landed month, a backfill, a
rerun or a late delivery cannot bring them back. Reconciliation per source and month:
landed = accepted + quarantined + suppressed.

A row is suppressed when the subject_key of its identity number (upper case, as silver keys
it), or of a number-like token in its delivered text (a row that could not be read into
fields), is on the list. The list holds subject keys only, so every row's number is keyed.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..identity import id_number_tokens, subject_keys
from .contracts import RawBatch


def drop_suppressed(raw: RawBatch, suppressed: set[str], key: str) -> tuple[RawBatch, int]:
    """`raw` less the rows of suppressed persons, and how many rows were dropped. Extract kinds
    without identity numbers (appeals) pass unchanged."""
    data = raw.data
    if not suppressed or data.empty or "id_number" not in data.columns:
        return raw, 0
    numbers = data["id_number"].to_numpy(dtype=object)
    hit = np.fromiter((k in suppressed for k in subject_keys(numbers, key)), dtype=bool,
                      count=len(numbers))
    if "_raw" in data.columns:      # rows whose number is not in its field: look in the text
        texts = data["_raw"].to_numpy(dtype=object)
        for pos in np.flatnonzero(~hit & (data["_error"].notna().to_numpy()
                                          | data["id_number"].isna().to_numpy())):
            tokens = id_number_tokens(texts[pos]) if isinstance(texts[pos], str) else []
            hit[pos] = any(k in suppressed for k in subject_keys(tokens, key))
    dropped = int(hit.sum())
    if not dropped:
        return raw, 0
    return replace(raw, data=data[~hit].reset_index(drop=True)), dropped
