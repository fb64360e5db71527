"""Spools: a landing's tables (bronze, quarantine, staging rows and the delivery as read) kept
chunk by chunk on local disk until the delivery's verdict, then committed to Delta in one
atomic partition replace each, streamed back batch by batch (issue 15: memory bounded by a
chunk, not by the delivery).

The folder is created inside the warehouse, readable by the pipeline's account only (it holds
identity numbers in clear, like bronze: SPEC §7), and removed when the landing ends, whatever
the outcome; its name starts with `_`, which Delta and Spark readers ignore.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

SPOOL_PREFIX = "_landing-spool-"


class Spool:
    """One Arrow IPC file (lz4): tables of one schema appended, read back as record batches."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self._writer = pa.ipc.new_file(str(path), schema, options=pa.ipc.IpcWriteOptions(
            compression="lz4"))

    def append(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def append_frame(self, frame: pd.DataFrame) -> None:
        self.append(pa.Table.from_pandas(frame[self.schema.names], schema=self.schema,
                                         preserve_index=False))

    def reader(self) -> pa.RecordBatchReader:
        """Everything appended, batch by batch (the file is closed for writing first)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        def batches():
            # plain reads, not a memory map: mapped pages of a file read once would stay in
            # the process's resident set, which would then grow with the delivery
            with pa.OSFile(str(self.path)) as handle:
                source = pa.ipc.open_file(handle)
                for i in range(source.num_record_batches):
                    yield source.get_batch(i)
            pa.default_memory_pool().release_unused()
        return pa.RecordBatchReader.from_batches(self.schema, batches())

    def frames(self):
        """Everything appended as pandas frames, one per appended batch."""
        for batch in self.reader():
            yield batch.to_pandas()


@contextlib.contextmanager
def spools(warehouse: Path):
    """A folder for a landing's spools → a function name, schema → Spool; removed at exit."""
    Path(warehouse).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX, dir=warehouse))   # mode 0o700
    made: list[Spool] = []

    def new(name: str, schema: pa.Schema) -> Spool:
        made.append(Spool(folder / f"{name}.arrow", schema))
        return made[-1]
    try:
        yield new
    finally:
        for spool in made:
            if spool._writer is not None:
                spool._writer.close()
        shutil.rmtree(folder, ignore_errors=True)


def remove_spool_leftovers(warehouse: Path, min_age_seconds: float = 0.0) -> list[str]:
    """Spool folders a killed landing left in the warehouse (they hold delivered rows, clear
    identity numbers among them), untouched for `min_age_seconds`, removed; their names. Call
    it only while holding the warehouse lock exclusively (citycredit.io.lock): then no landing
    is using a spool."""
    from .tables import remove_leftover_folders

    return remove_leftover_folders(warehouse, SPOOL_PREFIX, min_age_seconds)
