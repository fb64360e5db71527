"""Reading a delivery's files into one RawBatch (csv in the source's encoding, jsonl, parquet),
keeping file and line of every row (see ingest.contracts for the RawBatch columns).

Problems with a whole file are batch-level and raise one DeliveryError naming source, month,
file and the problem — never a pile of row errors:

* the file's shape: an empty file (0 bytes or blank lines only, whatever the format; a month
  with nothing to deliver is a folder with `_READY` and no data file), an extension that does
  not match the content (a Parquet file named .csv, an Excel workbook, JSON in a .csv, a csv in
  a .jsonl), a JSON array or one pretty-printed JSON document in a .jsonl, fields not separated
  by commas, a csv without its header row, columns without a name, a header row repeated
  further down (files joined together);
* the encoding (ingest.encodings): a csv that is UTF-8 where the source declares another
  encoding (GB 18030 would decode it into garbled text without an error), or that is not UTF-8
  where the source declares UTF-8 (or a jsonl, which is UTF-8 by RFC 8259) — both encodings
  named. Single undecodable rows in an otherwise right file are quarantined `encoding` instead,
  their identity numbers masked and names removed;
* the columns: a forbidden column, a column outside the contract, a missing required column;
* a Parquet column whose type cannot hold the contract column's meaning (ingest.typed);
* a manifest row count that differs from the rows read.

Typed values are read by meaning (ingest.typed): a Parquet timestamp becomes the date in
Asia/Shanghai, decimals and floats their exact plain decimal text, integers their digits; a
JSON quantity its plain decimal text.

Identity numbers get their one normal form here (`identity.normalise_id_numbers`), for every
source kind and format, so the duplicate check, the key, birth date and sex all see it.

Where the parts live: ingest.shapes (empty files, extension against content, blocks of lines),
ingest.columns (header and schema against the contract), ingest.csvfile and ingest.jsonlfile
(the text formats), ingest.rawtable (a file's rows as an Arrow table); Parquet, the delivery
stream and the manifest check are here.
"""
from __future__ import annotations

import codecs
import contextlib
import gc
import threading
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import forbidden_columns as configured_forbidden_columns
from .columns import ReadContext, check_repeated_header
from .contracts import FileStat, RawBatch, contract_for
from .csvfile import read_csv_file
from .delivery import MANIFEST_FILE, Delivery, DeliveryError
from .jsonlfile import read_jsonl_file
from .rawtable import file_table, recovered_id_numbers, to_frame
from .shapes import check_content
from .typed import column_as_text, column_role

__all__ = ["CHUNK_ROWS", "DeliveryStream", "iter_delivery", "read_delivery",
           "recovered_id_numbers"]


#: rows per chunk when a delivery is read in chunks (iter_delivery): ~100-200 MB per chunk in
#: pandas, whatever the delivery's size
CHUNK_ROWS = 500_000


def read_delivery(delivery: Delivery, source_conf: dict, *,
                  forbidden_columns: Iterable[str] | None = None) -> RawBatch:
    """Read every data file of the delivery into one RawBatch (rows in file-name, line order).

    `source_conf` is the source's conf/sources.yaml entry (`kind`, optional `encoding`,
    `date_format`). `forbidden_columns` defaults to `validation.forbidden_columns` of the conf
    in force. Raises DeliveryError for a problem with a whole file (module docstring). For a
    delivery of any size, iter_delivery reads the same rows in chunks of bounded size.
    """
    stream = DeliveryStream(delivery, source_conf, forbidden_columns=forbidden_columns,
                            chunk_rows=None)
    tables = list(stream.tables())
    return RawBatch(delivery.source_id, delivery.month, stream.contract.kind, stream.contract,
                    to_frame(tables, stream.contract), stream.files, delivery)


def iter_delivery(delivery: Delivery, source_conf: dict, *,
                  forbidden_columns: Iterable[str] | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> "DeliveryStream":
    """The delivery's rows as RawBatch chunks of at most `chunk_rows` rows, in delivery order
    (`for chunk in stream.chunks()`); afterwards `stream.files` holds the FileStats. Parquet
    files are read record batch by record batch, csv and jsonl files block by block of
    physical lines (a csv block is cut only between records). A DeliveryError
    (module docstring) can come from any chunk, the manifest's row count after the last."""
    return DeliveryStream(delivery, source_conf, forbidden_columns=forbidden_columns,
                          chunk_rows=chunk_rows)


class DeliveryStream:
    """A delivery read file by file, in chunks (read_delivery, iter_delivery)."""

    def __init__(self, delivery: Delivery, source_conf: dict, *,
                 forbidden_columns: Iterable[str] | None, chunk_rows: int | None):
        self.delivery = delivery
        self.contract = contract_for(source_conf)
        self.forbidden = frozenset(c.lower() for c in (
            forbidden_columns if forbidden_columns is not None
            else configured_forbidden_columns()))
        self.encoding = (source_conf or {}).get("encoding") or "utf-8"
        self.ctx = ReadContext(delivery.source_id, delivery.month, self.contract,
                                self.forbidden,
                                (source_conf or {}).get("date_format") or "%Y-%m-%d")
        self.chunk_rows = chunk_rows
        self.files: list[FileStat] = []
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise DeliveryError(delivery.source_id, delivery.month, None,
                                f"unknown encoding {self.encoding!r} in conf/sources.yaml"
                                ) from None

    def tables(self):
        """Arrow tables (contract columns + META_COLUMNS) of at most chunk_rows rows; the
        manifest's row count is checked after the last file."""
        ctx, delivery = self.ctx, self.delivery
        for name in delivery.files:
            path = delivery.path / name
            suffix = path.suffix.lower()
            check_content(ctx, path, suffix[1:])
            read = (read_parquet_file(ctx, path, self.chunk_rows) if suffix == ".parquet"
                    else read_csv_file(ctx, path, self.encoding, self.chunk_rows)
                    if suffix == ".csv" else read_jsonl_file(ctx, path, self.chunk_rows))
            rows = 0
            while True:
                with _gc_paused():
                    table = next(read, None)
                if table is None:
                    break
                rows += table.num_rows
                yield table
            self.files.append(FileStat(name, suffix[1:], rows))
        rows = sum(s.rows for s in self.files)
        if delivery.manifest is not None and delivery.manifest["row_count"] != rows:
            detail = ", ".join(f"{s.name}: {s.rows}" for s in self.files) or "no data files"
            raise DeliveryError(delivery.source_id, delivery.month, MANIFEST_FILE,
                                f"manifest row_count {delivery.manifest['row_count']} ≠ {rows} "
                                f"rows read ({detail})")

    def chunks(self):
        """RawBatch chunks (their `data` as RawBatch.data) with rows; one empty chunk for a
        delivery without any."""
        empty = True
        for table in self.tables():
            if table.num_rows:
                empty = False
                yield self._batch(table)
        if empty:
            yield self._batch(None)

    def _batch(self, table: pa.Table | None) -> RawBatch:
        return RawBatch(self.delivery.source_id, self.delivery.month, self.contract.kind,
                        self.contract, to_frame([table] if table is not None else [],
                                                 self.contract), [], self.delivery)


_gc_lock = threading.Lock()
_gc_pausing = {"readers": 0, "was_enabled": False}


@contextlib.contextmanager
def _gc_paused():
    """Reading keeps ~one list per row alive; the cyclic GC would rescan them all again and
    again (it doubles the cost of a 500 k-row csv). Nothing here makes reference cycles.
    Readers in several threads (erasure's landing rewrite): the last one out enables it again."""
    with _gc_lock:
        if _gc_pausing["readers"] == 0:
            _gc_pausing["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pausing["readers"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausing["readers"] -= 1
            if _gc_pausing["readers"] == 0 and _gc_pausing["was_enabled"]:
                gc.enable()


def read_parquet_file(ctx: ReadContext, path: Path, chunk_rows: int | None):
    """Column-wise with pyarrow, record batch by record batch (at most chunk_rows rows each;
    None: the whole file as one table): no per-row Python."""
    file = path.name
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ctx.error(file, f"unreadable parquet file: {exc}") from None
    names = [n.strip().lower() for n in schema.names]
    ctx.check_columns(file, names)
    total = parquet.metadata.num_rows
    batches = (parquet.iter_batches(batch_size=chunk_rows) if chunk_rows
               else [parquet.read()])
    offset = 0
    try:
        for batch in batches:
            yield _parquet_table(ctx, file, names, batch, offset)
            offset += batch.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ctx.error(file, f"unreadable parquet file: {exc}") from None
    if offset == 0 and not total and chunk_rows:
        yield _parquet_table(ctx, file, names, schema.empty_table(), 0)


def _parquet_table(ctx: ReadContext, file: str, names: list[str], batch, offset: int
                   ) -> pa.Table:
    """One record batch (or table) of a Parquet file, rows offset+1… → a file table (file_table)."""
    by_name = dict(zip(names, batch.columns))
    columns = {}
    for col in ctx.contract.columns:
        if col in by_name:
            values = by_name[col]
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            try:
                columns[col] = column_as_text(
                    values, col, column_role(ctx.contract, col),
                    ctx.date_format, lambda reason: ctx.error(file, reason))
            except pa.ArrowException as exc:
                raise ctx.error(file, f"column {col}: cannot read as text: {exc}") from None
    lines = np.arange(offset + 1, offset + batch.num_rows + 1, dtype=np.int64)
    check_repeated_header(ctx, file, names, columns, lines)
    return file_table(ctx.contract, columns, file, lines, None, None, None)
