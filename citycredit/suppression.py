"""The suppression list and the erasure log (tables privacy/suppression_list and
privacy/erasure_log): the only places an erased person's subject key remains (never their
identity number), so landing can drop their rows in any later delivery (SPEC §7); and the
suppressed findings (privacy/suppressed_findings: keyed references of an erased person's
findings, nothing else), so landing drops appeals about them — an appeal names a finding, not
a person."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from . import catalog
from .identity import finding_keys
from .io import tables


#: the erasure-log place of the row that closes a person's erasure
COMPLETE = "complete"


def suppression_list(warehouse) -> list[dict]:
    """The suppression list's rows (empty when there is none yet)."""
    location = catalog.SUPPRESSION_LIST.at(warehouse)
    if not tables.exists(location):
        return []
    return tables.read_arrow(location).to_pylist()


def suppressed_keys(warehouse) -> set[str]:
    """The subject keys on the suppression list."""
    return {row["subject_key"] for row in suppression_list(warehouse)}


def add_to_suppression_list(warehouse, persons: dict[str, dt.date], month: str,
                            erased_at: dt.datetime) -> int:
    """Put `persons` (subject_key → requested_on) on the list, those not on it yet, in one
    commit. Returns how many were added."""
    new = {k: v for k, v in persons.items() if k not in suppressed_keys(warehouse)}
    if not new:
        return 0
    keys = sorted(new)
    data = pa.table({"subject_key": keys, "requested_on": [new[k] for k in keys],
                     "erased_month": [month] * len(keys), "erased_at": [erased_at] * len(keys)},
                    schema=catalog.SUPPRESSION_LIST.schema)
    tables.write_arrow(data, catalog.SUPPRESSION_LIST.at(warehouse), mode="append")
    return len(keys)


def log_erasure(warehouse, rows: list[dict]) -> None:
    """Append erasure-log rows (catalog.ERASURE_LOG columns) in one commit."""
    if rows:
        tables.write_arrow(pa.Table.from_pylist(rows, schema=catalog.ERASURE_LOG.schema),
                           catalog.ERASURE_LOG.at(warehouse), mode="append")


def erasure_log(warehouse) -> pa.Table:
    """The whole erasure log (an empty table when there is none yet)."""
    location = catalog.ERASURE_LOG.at(warehouse)
    if not tables.exists(location):
        return catalog.ERASURE_LOG.schema.empty_table()
    return tables.read_arrow(location)


def unfinished_erasures(warehouse) -> dict[str, dt.date]:
    """subject_key → requested_on of persons on the suppression list whose erasure has no
    closing row (place COMPLETE) in the erasure log: an erasure that was interrupted. Their
    opt-out may no longer be in silver (a re-landing suppresses it), so the list drives it."""
    listed = suppression_list(warehouse)
    if not listed:
        return {}
    log = erasure_log(warehouse)
    done = {r["subject_key"] for r in log.select(["subject_key", "place"]).to_pylist()
            if r["place"] == COMPLETE}
    return {r["subject_key"]: r["requested_on"] for r in listed if r["subject_key"] not in done}


def suppressed_finding_keys(warehouse) -> set[str]:
    """The keyed references (identity.finding_keys) of erased persons' findings."""
    location = catalog.SUPPRESSED_FINDINGS.at(warehouse)
    if not tables.exists(location):
        return set()
    return set(tables.read_arrow(location, columns=["finding_key"]).column(0).to_pylist())


def add_suppressed_findings(warehouse, refs, key: str, month: str,
                            erased_at: dt.datetime) -> int:
    """Record findings (source_id, record_id) of erased persons, keyed with `key` (the subject
    key's HMAC key), those not recorded yet, in one commit. Returns how many were added."""
    new = sorted(set(finding_keys(sorted(set(refs)), key)) - suppressed_finding_keys(warehouse))
    if not new:
        return 0
    data = pa.table({"finding_key": new, "erased_month": [month] * len(new),
                     "erased_at": [erased_at] * len(new)},
                    schema=catalog.SUPPRESSED_FINDINGS.schema)
    tables.write_arrow(data, catalog.SUPPRESSED_FINDINGS.at(warehouse), mode="append")
    return len(new)
