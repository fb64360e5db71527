"""Bronze: each landed delivery as delivered (SPEC §5) — all values as text, with file and line,
less the name column and forbidden fields, which are never stored (SPEC §7). A re-delivery
replaces the month's partition atomically."""
from __future__ import annotations

import os

import pyarrow as pa

from .. import catalog
from ..io import tables
from .contracts import RawBatch


def bronze_rows(raw: RawBatch, source_id: str, month: str, run_id: str,
                table: catalog.Table) -> pa.Table:
    """RawBatch → rows of bronze/<source_id>: source_id, the contract's columns as text (name
    dropped; appeals' source_id as appeal_source_id), file, line, month, load_id."""
    data = raw.data
    columns = {"source_id": pa.array([source_id] * len(data), pa.string())}
    for name in table.columns[1:-4]:
        delivered = "source_id" if name == "appeal_source_id" else name
        values = data[delivered].astype(object).where(data[delivered].notna(), None)
        columns[name] = pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)
    columns["file"] = pa.array(data["_file"].to_numpy(dtype=object), pa.string())
    columns["line"] = pa.array(data["_line"].astype("int64").to_numpy(), pa.int64())
    columns["month"] = pa.array([month] * len(data), pa.string())
    columns["load_id"] = pa.array([run_id] * len(data), pa.string())
    return pa.table(columns, schema=table.schema)


#: bronze data files of about 1 MiB (tens of thousands of rows), cut in delivery order: an
#: erasure's delete (by file and line) rewrites only the files whose line range holds the
#: person's rows, not the month's whole delivery (issue 20)
BRONZE_FILE_BYTES = 1 << 20


def write_bronze(warehouse, raw: RawBatch | pa.RecordBatchReader, source_id: str, month: str,
                 run_id: str, kind: str | None = None) -> None:
    """Replace bronze/<source_id> month `month` with the delivery (a RawBatch, or bronze_rows
    streamed as a RecordBatchReader of a `kind` source), in files of about BRONZE_FILE_BYTES.
    The bronze folder is made readable by the pipeline's account only: it holds identity
    numbers in clear (SPEC §7)."""
    location = catalog.bronze(source_id, kind or raw.kind).at(warehouse)
    data = (raw if isinstance(raw, pa.RecordBatchReader)
            else bronze_rows(raw, source_id, month, run_id, location.table))
    tables.keep_files_small(location, BRONZE_FILE_BYTES, location.table.schema)
    tables.write_arrow(data, location, mode="overwrite", replace={"month": month})
    os.chmod(os.path.dirname(location.path), 0o700)


def volume_drop(warehouse, source_id: str, kind: str, month: str, landed: int,
                min_ratio: float, min_rows: int) -> list[str]:
    """A sudden drop against the source's last three earlier months in bronze: a problem text
    when `landed` < min_ratio × their average and that average is at least `min_rows` rows."""
    location = catalog.bronze(source_id, kind).at(warehouse)
    if not tables.exists(location):
        return []
    earlier = sorted({p["month"] for p in tables.partitions(location) if p["month"] < month})[-3:]
    if not earlier:
        return []
    counts = [tables.read_arrow(location, where={"month": m}, columns=["line"]).num_rows
              for m in earlier]
    average = sum(counts) / len(counts)
    if average >= min_rows and landed < min_ratio * average:
        return [f"volume drop: {landed} rows against an average of {average:.0f} over "
                f"{', '.join(earlier)} (below {min_ratio:.0%})"]
    return []


def where_delivered(settings, month: str, kind: str, keys: set[str]) -> dict[str, list[str]]:
    """Where the month's accepted rows of `kind` sources name these subject keys: subject_key →
    ["<source> <file> line <n>", …] (quarantined rows left out), so that a refusal can name
    the delivered rows of a person instead of the person. Reads bronze (the only place that
    still knows file and line) and keys every row again with the one normalisation
    (identity.subject_key) — meant for the few keys of a refusal, not for every run."""
    from ..identity import subject_key

    out: dict[str, list[str]] = {}
    quarantine = catalog.QUARANTINE.at(settings)
    for source_id, conf in settings.sources.items():
        location = catalog.bronze(source_id, conf["kind"]).at(settings)
        if conf["kind"] != kind or not tables.exists(location):
            continue
        rows = tables.read_arrow(location, where={"month": month},
                                 columns=["id_number", "file", "line"]).to_pylist()
        rejected = set()
        if tables.exists(quarantine):
            rejected = {(r["file"], r["line"]) for r in tables.read_arrow(
                quarantine, where={"source_id": source_id, "month": month},
                columns=["file", "line"]).to_pylist()}
        for row in rows:
            if row["id_number"] is None or (row["file"], row["line"]) in rejected:
                continue
            k = subject_key(row["id_number"], settings.subject_key)
            if k in keys:
                out.setdefault(k, []).append(f"{source_id} {row['file']} line {row['line']}")
    return out
