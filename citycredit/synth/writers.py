"""Delivery files: `<landing>/<source_id>/<YYYY-MM>/<source_id>_<YYYY-MM>_<NN>.<format>`, then
`manifest.json` ({"row_count": n}) for most deliveries and an empty `_READY` last
(docs/contracts.md).

csv: pyarrow's writer (header, every value quoted), then re-encoded to the source's encoding;
jsonl: one object per line, keys in column order, quantity a bare number (a month without
records: no data file, only `_READY`); parquet: snappy.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from citycredit.months import month_of_index

from .arrow_strings import lookup_strings, string_bytes
from .faults import FORBIDDEN_FIELDS

ROWS_PER_FILE = 1_000_000
MANIFEST_SHARE = 0.92          # "most deliveries" carry a manifest.json


def is_utf8(encoding: str) -> bool:
    return encoding.replace("_", "-") in ("utf-8", "utf8")


class Written(NamedTuple):
    """What one delivery wrote: file names, the row offset where each file starts (plus the
    total at the end), bytes of data files, and whether it has a manifest.json."""
    files: list
    row_offsets: list
    total_bytes: int
    manifest: bool


class DeliveryWriter:
    """Writes deliveries below `landing` and counts rows and bytes per source and month."""

    def __init__(self, landing: Path):
        self.landing = Path(landing)
        self.rows: dict = {}         # source_id → month → rows
        self.bytes: dict = {}        # source_id → month → bytes of data files

    def write(self, source, month_index: int, table: pa.Table, rng, files: int = 1,
              gb18030_rows=None, forbidden_fields=None) -> Written:
        """Replace the source's delivery of the month with `table`, split into at least `files`
        files (and at most ROWS_PER_FILE rows a file).

        gb18030_rows: boolean per row of a utf-8 csv, rows whose bytes are written in gb18030
        instead (the `encoding` fault). forbidden_fields: per row of a jsonl delivery, an
        index into faults.FORBIDDEN_FIELDS of a key to add, or -1.
        """
        month = month_of_index(month_index)
        folder = self.landing / source.source_id / month
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        n = table.num_rows
        files = max(files, -(-n // ROWS_PER_FILE))
        files = max(1, min(files, n)) if n else 1
        if not n and source.format == "jsonl":
            files = 0   # JSON Lines with no records would be an empty file, which landing refuses
        offsets = [n * i // files for i in range(files + 1)] if files else [0]
        names, total = [], 0
        for i in range(files):
            start, stop = offsets[i], offsets[i + 1]
            name = f"{source.source_id}_{month}_{i + 1:02d}.{source.format}"
            path = folder / name
            part = table.slice(start, stop - start)
            if source.format == "parquet":
                pq.write_table(part, path, compression="snappy")
            elif source.format == "jsonl":
                path.write_bytes(jsonl_bytes(part, None if forbidden_fields is None
                                             else forbidden_fields[start:stop]))
            else:
                path.write_bytes(csv_bytes(part, source.encoding, None if gb18030_rows is None
                                           else gb18030_rows[start:stop]))
            total += path.stat().st_size
            names.append(name)
        manifest = bool(rng.random() < MANIFEST_SHARE)
        if manifest:
            (folder / "manifest.json").write_text(json.dumps({"row_count": n}) + "\n")
        (folder / "_READY").touch()
        self.rows.setdefault(source.source_id, {})[month] = n
        self.bytes.setdefault(source.source_id, {})[month] = total
        return Written(names, offsets, total, manifest)


def csv_bytes(table: pa.Table, encoding: str, gb18030_rows=None) -> bytes:
    """The table as csv in `encoding`; rows marked in gb18030_rows (utf-8 files only) are
    written in gb18030, which must make them undecodable as utf-8."""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    data = buffer.getvalue()
    if gb18030_rows is not None and gb18030_rows.any():
        lines = data.split(b"\n")
        for row in np.flatnonzero(gb18030_rows):
            raw = lines[row + 1].decode("utf-8").encode("gb18030")      # line 0 is the header
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise RuntimeError("bad-encoding row still decodes as utf-8")
            lines[row + 1] = raw
        data = b"\n".join(lines)
    if not is_utf8(encoding):
        data = data.decode("utf-8").encode(encoding.replace("_", "-"))
    return data


def jsonl_bytes(table: pa.Table, forbidden_fields=None) -> bytes:
    """The table as json lines; null → null, quantity unquoted, every other value a string.
    Values are not escaped: the generator writes none with quotes or backslashes."""
    if table.num_rows == 0:
        return b""
    pieces = []
    for i, column in enumerate(table.column_names):
        values = table.column(column).combine_chunks()
        pieces.append(pa.scalar(("{" if i == 0 else ",") + json.dumps(column) + ":"))
        text = values if column == "quantity" else pc.binary_join_element_wise(
            '"', values, '"', "")
        pieces.append(pc.if_else(pc.is_null(values), "null", text))
    if forbidden_fields is not None and (forbidden_fields >= 0).any():
        extra = [""] + ["," + json.dumps(key) + ":" + json.dumps(value, ensure_ascii=False)
                        for key, value in FORBIDDEN_FIELDS]
        pieces.append(lookup_strings(extra, forbidden_fields + 1))
    pieces.append(pa.scalar("}\n"))
    return string_bytes(pc.binary_join_element_wise(*pieces, ""))
