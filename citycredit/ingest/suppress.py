"""Suppression at landing (SPEC §7, issue "Privacy"): the rows of persons on the suppression
list (erased after opting out) are dropped before bronze, so a re-landed month, a backfill, a
rerun or a late delivery cannot bring them back. Reconciliation per source and month:
landed = accepted + quarantined + suppressed.

A row is suppressed when the subject_key of its identity number (upper case, as silver keys
it), or of a number-like token in its delivered text (a row that could not be read into
fields), is on the list. The list holds subject keys only, so every row's number is keyed.
An appeal names a finding, not a person: it is suppressed when the finding it is about
(source_id, record_id) was an erased person's — recorded by the erasure, and by landing for
findings of erased persons dropped later, as keyed references (identity.finding_keys).
The delivery files then lose those rows too (citycredit.privacy.erasure.erase_late_delivery,
called by the landing step above both: citycredit.landing), so the landing zone does not keep
what the warehouse refused.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..identity import finding_keys, id_number_tokens, subject_keys
from .contracts import RawBatch


def drop_suppressed(raw: RawBatch, suppressed: set[str], key: str
                    ) -> tuple[RawBatch, int, dict[str, str]]:
    """`raw` less the rows of suppressed persons, how many rows were dropped, and the identity
    numbers found in them (upper case → subject_key: what the delivery files must lose too).
    Extract kinds without identity numbers (appeals) pass unchanged."""
    data = raw.data
    if not suppressed or data.empty or "id_number" not in data.columns:
        return raw, 0, {}
    numbers = data["id_number"].to_numpy(dtype=object)
    keys = subject_keys(numbers, key)
    hit = np.fromiter((k in suppressed for k in keys), dtype=bool, count=len(numbers))
    found = {str(numbers[i]).upper(): keys[i] for i in np.flatnonzero(hit)}
    if "_raw" in data.columns:      # rows whose number is not in its field: look in the text
        texts = data["_raw"].to_numpy(dtype=object)
        for pos in np.flatnonzero(~hit & (data["_error"].notna().to_numpy()
                                          | data["id_number"].isna().to_numpy())):
            tokens = id_number_tokens(texts[pos]) if isinstance(texts[pos], str) else []
            for token, token_key in zip(tokens, subject_keys(tokens, key)):
                if token_key in suppressed:
                    hit[pos] = True
                    found[token.upper()] = token_key
    dropped = int(hit.sum())
    if not dropped:
        return raw, 0, {}
    return replace(raw, data=data[~hit].reset_index(drop=True)), dropped, found


def drop_appeals_of_erased(raw: RawBatch, erased_findings: set[str], key: str
                           ) -> tuple[RawBatch, int, set[tuple[str, str]]]:
    """`raw` (an appeals delivery: `source_id` and `record_id` of the appealed finding) less the
    appeals about erased persons' findings (`erased_findings`: their keyed references), how
    many were dropped, and the (source_id, record_id) they named (what the delivery files must
    lose too). Other kinds pass unchanged."""
    data = raw.data
    if not erased_findings or data.empty or not {"source_id", "record_id"} <= set(data.columns) \
            or "id_number" in data.columns:
        return raw, 0, set()
    refs = list(zip(data["source_id"].fillna("").astype(str).str.strip(),
                    data["record_id"].fillna("").astype(str).str.strip()))
    hit = np.fromiter((k in erased_findings for k in finding_keys(refs, key)), dtype=bool,
                      count=len(refs))
    dropped = int(hit.sum())
    if not dropped:
        return raw, 0, set()
    named = {refs[i] for i in np.flatnonzero(hit)}
    return replace(raw, data=data[~hit].reset_index(drop=True)), dropped, named


def dropped_finding_refs(raw: RawBatch, source_id: str, numbers: dict[str, str]
                         ) -> set[tuple[str, str]]:
    """(source_id, record_id) of the findings in `raw` (before suppression) whose identity
    number is one of `numbers` (upper case → subject_key: the suppressed ones): the findings of
    erased persons that arrived late, so appeals about them are dropped too."""
    data = raw.data
    if not numbers or data.empty or not {"record_id", "id_number"} <= set(data.columns):
        return set()
    return {(source_id, str(record).strip())
            for number, record in zip(data["id_number"], data["record_id"])
            if isinstance(number, str) and number.strip().upper() in numbers
            and isinstance(record, str) and record.strip()}
