"""Extract contracts (SPEC §2.1–2.3): the columns of each extract kind, and the RawBatch a
delivery is read into.

A RawBatch keeps every delivered row — nothing is dropped when reading. Every row carries
  `_file`   the data file's name,
  `_line`   its 1-based data line (csv: the header line is not counted, so data line n is file
            line n + 1; a record spanning several lines gets the number of its first line; blank
            lines are skipped but still counted, so the number always points into the file;
            parquet: the row number in the file),
  `_raw`    the delivered text (csv record / jsonl line; None for parquet, where validation
            renders a quarantined row from its fields),
  `_error`  a landing-level reason code when the row could not be read into fields at all
            (`encoding`: bytes not decodable in the source's encoding; `unparseable_row`: not a
            JSON object, wrong number of csv fields, broken csv quoting), else None,
  `_extra`  jsonl keys beyond the contract, ';'-joined (validation flags them as
            `forbidden_field` / `unknown_column`), else None,
  `_detail` for a row with an `_error`: what is wrong, without personal data ("7 fields, the
            header has 10", "bytes that are not valid gb18030"); for a row without: a note
            of what reading removed (control-character padding of the identity number,
            ingest.controls), else None.
A row with an `_error` keeps no fields; its `_raw` keeps the identity number masked and no name.
Contract columns are strings, surrounding whitespace stripped, None for empty or absent;
`id_number` is in its normal form (citycredit.identity.normalise_id_number).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from .delivery import Delivery

META_COLUMNS = ("_file", "_line", "_raw", "_error", "_extra", "_detail")



@dataclass(frozen=True)
class Contract:
    """The columns of one extract kind: all of them in order, the required ones, the dates."""

    kind: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    dates: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    key: str | None = None  # unique within one delivery (second and later copies are errors)


CONTRACTS: dict[str, Contract] = {
    "findings": Contract(
        kind="findings",
        columns=("record_id", "id_number", "name", "item_code", "level", "quantity",
                 "occurred_on", "valid_until", "status", "case_ref"),
        required=("record_id", "id_number", "item_code", "occurred_on", "status"),
        dates=("occurred_on", "valid_until"),
        decimals=("quantity",),
        key="record_id",
    ),
    "population": Contract(
        kind="population",
        columns=("id_number", "district", "residency", "status"),
        required=("id_number", "district", "residency", "status"),
        key="id_number",
    ),
    "appeals": Contract(
        kind="appeals",
        columns=("appeal_id", "source_id", "record_id", "filed_on", "resolved_on", "outcome"),
        required=("appeal_id", "source_id", "record_id", "filed_on"),
        dates=("filed_on", "resolved_on"),
        key="appeal_id",
    ),
    "optouts": Contract(
        kind="optouts",
        columns=("id_number", "requested_on"),
        required=("id_number", "requested_on"),
        dates=("requested_on",),
    ),
    # a person's authorisation of a grantee to look their score up for a purpose (issue
    # "Lookups"); a consent_id sent again is a correction (e.g. the revocation)
    "consents": Contract(
        kind="consents",
        columns=("consent_id", "id_number", "grantee", "purpose", "granted_on", "expires_on",
                 "revoked_on"),
        required=("consent_id", "id_number", "grantee", "purpose", "granted_on"),
        dates=("granted_on", "expires_on", "revoked_on"),
        key="consent_id",
    ),
}


def raw_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema of RawBatch.data (contract columns and META_COLUMNS)."""
    return pa.schema([(c, pa.string()) for c in contract.columns]
                     + [("_file", pa.string()), ("_line", pa.int64())]
                     + [(c, pa.string()) for c in META_COLUMNS[2:]])


def contract_for(source_conf: dict) -> Contract:
    kind = (source_conf or {}).get("kind")
    try:
        return CONTRACTS[kind]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r} (known: {', '.join(CONTRACTS)})") from None


@dataclass(frozen=True)
class FileStat:
    name: str
    format: str   # csv | jsonl | parquet
    rows: int


@dataclass
class RawBatch:
    """Every row of a delivery as delivered: contract columns as strings + META_COLUMNS."""

    source_id: str
    month: str
    kind: str
    contract: Contract
    data: pd.DataFrame
    files: list[FileStat] = field(default_factory=list)
    delivery: "Delivery | None" = None

    @property
    def landed(self) -> int:
        return len(self.data)
