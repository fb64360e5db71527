"""The Delta seam's driver-side scans on tables that an erasure rewrote: delta-rs writes the
rewritten files with string_view columns beside the older files' strings."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from citycredit.io import tables


def test_scan_batches_filters_a_table_whose_files_an_erasure_rewrote(tmp_path):
    path = tmp_path / "lines"
    write_deltalake(str(path), pa.table({
        "scheme": ["haibei"] * 4 + ["bailu"], "subject_key": ["k1", "k2", "k3", "k4", "k6"],
        "status": ["counted", "counted", "expired", "masked", "counted"],
        "line_type": ["finding", "finding", "finding", "tier", "finding"]}),
        partition_by=["scheme"])
    write_deltalake(str(path), pa.table({"scheme": ["haibei"], "subject_key": ["k5"],
                                         "status": ["counted"], "line_type": ["finding"]}),
                    mode="append", partition_by=["scheme"])
    DeltaTable(str(path)).delete("subject_key = 'k2'")         # the erasure's delete
    wanted = (pc.field("scheme") == "haibei") & (pc.field("status").isin(["counted"])
                                                 | pc.field("line_type").isin(["tier"]))
    rows = [r for b in tables.scan_batches(path, ["subject_key", "status"], wanted)
            for r in b.to_pylist()]
    # the lookup index reads score lines with this kind of filter: the erased person is gone,
    # every other matching line is there, text comes back as plain strings
    assert sorted(r["subject_key"] for r in rows) == ["k1", "k4", "k5"]
    assert all(isinstance(r["status"], str) for r in rows)
