"""The silver step of the month (thin): the month's staging rows of every landed source into
silver — findings, appeals and consents versioned incrementally (silver.versions.merge_month), the
population snapshot and the months_resident kept from it (silver.residence), opt-outs. One
writer, one commit per table; Arrow and delta-rs on the driver (no Spark): the month's delivery
is all it reads besides the files it changes (and every snapshot when months_resident must be
counted again: silver.residence)."""
from __future__ import annotations

import time
from typing import TypedDict

import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog
from ..config import Settings, load_settings
from ..io import tables
from . import residence
from .versions import MonthMerge, merge_month

#: staging columns renamed on the way into silver: an appeal's delivering source is dropped and
#: the appealed finding's source becomes source_id (the key appeals are matched on)
_RENAMES = {"findings": {}, "appeals": {"source_id": "delivered_by", "appeal_source_id": "source_id"},
            "consents": {}}


class SilverResult(TypedDict):
    month: str
    tables: dict[str, int]                 # silver table → rows of the month
    sources: dict[str, dict[str, int]]     # source → versions, corrections, revocations
    rewritten: dict[str, dict[str, int]]   # versioned table → earlier files and rows rewritten
    residence: str                          # silver/residence: advanced, recounted, unchanged
    seconds: float


def build_silver(month: str, run_id: str, landed: list[dict],
                 settings: Settings | None = None) -> SilverResult:
    """Staging rows of the month's landed sources (`landed`: ingest.task.Landed results) →
    silver. A re-delivered month replaces that month's versions of the sources landed again
    (findings: per source; appeals: the month's appeals as a whole, from every appeals source)."""
    settings = settings or load_settings()
    started = time.perf_counter()
    landed_sources = {kind: sorted(d["source_id"] for d in landed
                                   if d.get("status") in ("landed", "kept") and d.get("kind") == kind)
                      for kind in catalog.EXTRACT_KINDS}
    out: SilverResult = {"month": month, "tables": {}, "sources": {}, "rewritten": {},
                         "residence": "", "seconds": 0.0}
    if landed_sources["findings"]:
        merged, out["sources"] = _merge_findings(settings, month, landed_sources["findings"])
        out["tables"]["findings"] = merged.versions
        out["rewritten"]["findings"] = {"files": merged.files_rewritten,
                                        "rows": merged.rows_rewritten}
    if landed_sources["appeals"]:
        merged = _merge_appeals(settings, month)
        out["tables"]["appeals"] = merged.versions
        out["rewritten"]["appeals"] = {"files": merged.files_rewritten,
                                       "rows": merged.rows_rewritten}
    if landed_sources.get("consents"):
        merged = _merge_whole_month(settings, "consents", month)
        out["tables"]["consents"] = merged.versions
        out["rewritten"]["consents"] = {"files": merged.files_rewritten,
                                        "rows": merged.rows_rewritten}
    if landed_sources["population"]:
        population = catalog.SILVER_POPULATION.at(settings)
        read_version = tables.snapshot(population).version    # before staging is read
        snapshot = tables.read_arrow(catalog.staging("population").at(settings),
                                     where={"month": month})
        snapshot = snapshot.rename_columns(
            [("snapshot_month" if c == "month" else c) for c in snapshot.column_names])
        before = residence.active_before_replacing(settings, month)
        # sorted by subject_key in files of key ranges: an erasure rewrites the one file of a
        # snapshot that holds the person, not the month's whole snapshot (issue 20)
        tables.replace_files(snapshot.select(catalog.SILVER_POPULATION.columns),
                             population, partitions=[{"snapshot_month": month}],
                             read_version=read_version)
        out["tables"]["population"] = snapshot.num_rows
        out["residence"] = residence.keep_residence(settings, month, before)
    if landed_sources["optouts"]:
        optouts = tables.read_arrow(catalog.staging("optouts").at(settings), where={"month": month})
        optouts = optouts.select(["subject_key", "requested_on", "month"]).rename_columns(
            ["subject_key", "requested_on", "known_from"])
        tables.write_arrow(optouts, catalog.SILVER_OPTOUTS.at(settings), mode="overwrite",
                           replace={"known_from": month})
        out["tables"]["optouts"] = optouts.num_rows
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def _delivered(settings: Settings, kind: str, month: str, sources: list[str] | None) -> pa.Table:
    """The month's staging rows of `kind` (of `sources`, or all), as silver columns less
    known_until."""
    location = catalog.staging(kind).at(settings)
    if tables.exists(location):
        rows = tables.read_arrow(location, where={"month": month}).cast(location.table.schema)
    else:
        rows = location.table.schema.empty_table()
    if sources is not None:
        rows = rows.filter(pc.is_in(rows["source_id"], pa.array(sources, pa.string())))
    rows = rows.rename_columns([_RENAMES[kind].get(c, c) for c in rows.column_names])
    columns = [c for c in catalog.VERSIONED[kind].columns if c not in ("known_from", "known_until")]
    rows = rows.select(columns)
    return rows.append_column("known_from", pa.array([month] * rows.num_rows, pa.string()))


def _merge_findings(settings: Settings, month: str,
                    sources: list[str]) -> tuple[MonthMerge, dict[str, dict[str, int]]]:
    """The landed sources' month into silver/findings; per source: versions, corrections (a key
    with an earlier version), revocations."""
    location = catalog.SILVER_FINDINGS.at(settings)
    _keep_layout(location)
    delivered = _delivered(settings, "findings", month, sources)
    merged = merge_month(location, delivered, month, [{"source_id": s} for s in sources])
    corrected = merged.earlier.group_by("source_id").aggregate([([], "count_all")])
    corrections = dict(zip(corrected["source_id"].to_pylist(),
                           corrected["count_all"].to_pylist()))
    revoked = pc.equal(delivered["status"], "revoked")
    by_source = pa.table({"source_id": delivered["source_id"],
                          "revoked": pc.cast(revoked, pa.int64())}).group_by("source_id").aggregate(
        [([], "count_all"), ("revoked", "sum")]).to_pylist()
    changes = {s: {"versions": 0, "corrections": 0, "revocations": 0} for s in sources}
    for row in by_source:
        changes[row["source_id"]] = {"versions": row["count_all"],
                                     "corrections": corrections.get(row["source_id"], 0),
                                     "revocations": row["revoked_sum"] or 0}
    return merged, changes


def _merge_appeals(settings: Settings, month: str) -> MonthMerge:
    """Appeals in silver carry the appealed finding's source, not the delivering one, so a
    month's appeals are replaced as a whole: by the month's staging rows of every appeals source."""
    return _merge_whole_month(settings, "appeals", month)


def _merge_whole_month(settings: Settings, kind: str, month: str) -> MonthMerge:
    """A versioned table whose month is replaced as a whole (appeals, consents): by the month's
    staging rows of every source of the kind."""
    location = catalog.VERSIONED[kind].at(settings)
    _keep_layout(location)
    return merge_month(location, _delivered(settings, kind, month, None), month, [{}])


def _keep_layout(location: catalog.Location) -> None:
    """A table written before silver was partitioned by delivery month is rewritten once in the
    catalogue's layout (same rows), so that later months touch only their own files."""
    if tables.exists(location) and \
            tables.partition_columns(location) != list(location.table.partitions):
        rows = tables.read_arrow(location).select(location.table.columns)
        tables.relayout_arrow(rows, location)
