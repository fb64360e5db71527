"""Staging: a month's accepted rows of one source, typed and pseudonymised, which silver is built
from (the next step). A re-delivery replaces its (source, month) partition atomically."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog
from ..io import tables
from ..silver.pseudonymise import pseudonymise


def staging_rows(accepted: pd.DataFrame, kind: str, source_id: str, month: str, run_id: str,
                 key: str, table: catalog.Table) -> pa.Table:
    """Accepted rows (validate.ValidationResult.accepted, or a chunk of them) → rows of
    staging/<kind>: pseudonymised (silver.pseudonymise), source_id, month, load_id."""
    frame = pseudonymise(accepted, kind, key)
    if kind == "appeals":          # an appeal's source_id is the appealed finding's source
        frame = frame.rename(columns={"source_id": "appeal_source_id"})
    frame = frame.assign(source_id=source_id, month=month, load_id=run_id)
    return pa.Table.from_pandas(frame[table.columns], schema=table.schema, preserve_index=False)


def write_staging(warehouse, accepted: pd.DataFrame | pa.RecordBatchReader, kind: str,
                  source_id: str, month: str, run_id: str, key: str) -> None:
    """Accepted rows (validate.ValidationResult.accepted), or staging_rows streamed as a
    RecordBatchReader → staging/<kind> (source_id, month), one atomic replace."""
    location = catalog.staging(kind).at(warehouse)
    data = (accepted if isinstance(accepted, pa.RecordBatchReader) else
            staging_rows(accepted, kind, source_id, month, run_id, key, location.table))
    tables.write_arrow(data, location, mode="overwrite",
                       replace={"source_id": source_id, "month": month})


#: the extract kinds whose rows name a person (by subject_key) other than the population
_KINDS_OF_PERSONS = ("findings", "optouts")


def outside_population(warehouse, month: str, source_ids) -> dict[str, int]:
    """Per source of `source_ids` (those landed in this run), how many of its accepted rows of
    `month` name a person who is not in the month's population snapshot (any status) — an
    identity number that passes the GB 11643 check yet is nobody here (a spreadsheet that
    zeroed the last digits and hit a valid check character by chance, a typo, someone never
    registered). They stay in the warehouse but are never scored: the run report counts them
    (SPEC §5: nothing silently ignored). {} when the month has no population snapshot."""
    population = catalog.staging("population").at(warehouse)
    if not tables.exists(population):
        return {}
    people = tables.read_arrow(population, where={"month": month},
                               columns=["subject_key"]).column("subject_key")
    if not len(people):
        return {}
    wanted = set(source_ids)
    out: dict[str, int] = {}
    for kind in _KINDS_OF_PERSONS:
        location = catalog.staging(kind).at(warehouse)
        if not tables.exists(location):
            continue
        rows = tables.read_arrow(location, where={"month": month},
                                 columns=["source_id", "subject_key"])
        outside = pc.invert(pc.is_in(rows.column("subject_key"), value_set=people))
        counts = pa.table({"source_id": rows.column("source_id"),
                           "outside": pc.cast(outside, pa.int64())}) \
            .group_by("source_id").aggregate([("outside", "sum")])
        for source_id, n in zip(counts.column("source_id").to_pylist(),
                                counts.column("outside_sum").to_pylist()):
            if source_id in wanted:
                out[source_id] = int(n or 0)
    return out
