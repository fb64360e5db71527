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
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import forbidden_columns as configured_forbidden_columns
from ..identity import (ID_NUMBER_LIKE, id_number_tokens, is_valid_id_number,
                        mask_id_numbers_in, normalise_id_numbers)
from .contracts import Contract, FileStat, RawBatch, contract_for
from .delivery import MANIFEST_FILE, Delivery, DeliveryError
from .encodings import decode_lines, redacted_csv_row, redacted_json_row
from .typed import column_as_text, column_role, plain_decimal


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
                    _to_frame(tables, stream.contract), stream.files, delivery)


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
        self.ctx = _ReadContext(delivery.source_id, delivery.month, self.contract,
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
            _check_content(ctx, path, suffix[1:])
            read = (_read_parquet(ctx, path, self.chunk_rows) if suffix == ".parquet"
                    else _read_csv(ctx, path, self.encoding, self.chunk_rows)
                    if suffix == ".csv" else _read_jsonl(ctx, path, self.chunk_rows))
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
                        self.contract, _to_frame([table] if table is not None else [],
                                                 self.contract), [], self.delivery)


@contextlib.contextmanager
def _gc_paused():
    """Reading keeps ~one list per row alive; the cyclic GC would rescan them all again and
    again (it doubles the cost of a 500 k-row csv). Nothing here makes reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------------------------------
# column names
# ------------------------------------------------------------------------------------------------

#: names tools give a column that had none: pandas' `Unnamed: 3` (a csv column without a header,
#: or an index written with the data) and `__index_level_0__` (an index written to Parquet)
_UNNAMED = re.compile(r"^(?:unnamed: ?\d+|__index_level_\d+__)$")


def _shown(name: str) -> str:
    """A delivered column name as a message may show it: identity-number-like runs masked,
    long names cut."""
    text = mask_id_numbers_in(name)
    return repr(text if len(text) <= 40 else text[:37] + "…")


@dataclass(frozen=True)
class _ReadContext:
    source_id: str
    month: str
    contract: Contract
    forbidden: frozenset
    date_format: str

    def error(self, file: str, reason: str) -> DeliveryError:
        return DeliveryError(self.source_id, self.month, file, reason)

    def check_columns(self, file: str, columns: list[str]) -> None:
        """Batch-level checks of a csv header or a parquet schema (names lower-cased): no
        header at all, columns without a name, repeated, forbidden, missing, unknown ones."""
        known = [c for c in columns if c in self.contract.columns or c in self.forbidden]
        if columns and not known:
            if any(ID_NUMBER_LIKE.search(c) or re.fullmatch(r"[0-9./-]{6,}", c) for c in columns):
                raise self.error(file, "no header row: the first line holds data (a csv starts "
                                       "with a header row naming its columns: "
                                       f"{', '.join(self.contract.columns)})")
            named = [_shown(c) for c in columns if c] or ["no names"]
            raise self.error(file, f"the header names none of the {self.contract.kind} "
                                   f"contract's columns (found {', '.join(named)}; "
                                   f"expected {', '.join(self.contract.columns)})")
        unnamed = [f"column {i + 1}" + (f" ({c!r})" if c else "")
                   for i, c in enumerate(columns) if not c or _UNNAMED.match(c)]
        if unnamed:
            raise self.error(file, f"{', '.join(unnamed)} of {len(columns)} ha"
                                   f"{'s' if len(unnamed) == 1 else 've'} no name (every column "
                                   f"needs one of the {self.contract.kind} contract's names; an "
                                   f"index or an empty trailing column written with the data?)")
        seen = set()
        repeated = sorted({c for c in columns if c in seen or seen.add(c)})
        if repeated:
            raise self.error(file, f"column(s) {', '.join(repeated)} appear more than once")
        forbidden = [c for c in columns if c in self.forbidden]
        if forbidden:
            raise self.error(file, f"forbidden column(s) {', '.join(forbidden)} (SPEC §7: "
                                   f"such data is rejected at landing)")
        missing = [c for c in self.contract.required if c not in seen]
        if missing:
            raise self.error(file, f"missing required column(s) {', '.join(missing)} of the "
                                   f"{self.contract.kind} contract")
        unknown = [c for c in columns if c not in self.contract.columns]
        if unknown:
            raise self.error(file, f"column(s) {', '.join(map(_shown, unknown))} are not in the "
                                   f"{self.contract.kind} contract "
                                   f"({', '.join(self.contract.columns)})")


# ------------------------------------------------------------------------------------------------
# file shape: empty, extension against content
# ------------------------------------------------------------------------------------------------

_EMPTY_HINT = ("a failed export or copy? A month with nothing to deliver is a folder with "
               "_READY and no data file")
_BINARY_KINDS = (
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"%PDF", "a PDF document"),
)
_FORMAT_NAMES = {"csv": "csv", "jsonl": "JSON Lines", "parquet": "Parquet"}


def _content_kind(head: bytes) -> str | None:
    """What the first bytes of a file say it is, for the binary kinds; None for text."""
    for magic, what in _BINARY_KINDS:
        if head.startswith(magic):
            return what
    return None


def _check_content(ctx: _ReadContext, path: Path, fmt: str) -> None:
    """One rule for every format: an empty file is refused, and so is a file whose content is
    not what its extension says."""
    file = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise ctx.error(file, f"unreadable file: {exc.strerror or exc}") from None
    if size == 0:
        raise ctx.error(file, f"empty file (0 bytes): nothing to read — {_EMPTY_HINT}")
    kind = _content_kind(head)
    if fmt == "parquet":
        if kind == "a Parquet file":
            return
        if kind is None:
            text = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
            kind = ("JSON text" if text[:1] in (b"{", b"[") else "text (a csv?)")
        raise ctx.error(file, f"the extension says Parquet but the content is {kind}")
    if kind is None and fmt == "csv" and head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:1] in (
            b"{", b"["):
        kind = "JSON text"      # no csv header starts with a brace or a bracket
    if kind is not None:
        raise ctx.error(file, f"the extension says {_FORMAT_NAMES[fmt]} but the content is "
                              f"{kind}")


def _blank(lines: list[str]) -> bool:
    return not any(line.strip() for line in lines)


# ------------------------------------------------------------------------------------------------
# text, tables
# ------------------------------------------------------------------------------------------------

def _text_array(values) -> pa.Array:
    """Strings (or None) → arrow string array, surrounding whitespace stripped, '' → null."""
    arr = (values if isinstance(values, (pa.Array, pa.ChunkedArray))
           else pa.array(values, pa.string()))
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def recovered_id_numbers(texts: dict[int, str]) -> dict[int, str]:
    """Rows that could not be read into fields (position → delivered text): the first valid
    identity number in each text, taken before the text is masked. It becomes the row's
    `id_number` (kept in bronze, the one table with clear numbers), so suppression and the
    quarantine's subject_key know whose row it is."""
    out = {}
    for pos, text in texts.items():
        for token in id_number_tokens(text):
            if is_valid_id_number(token):
                out[pos] = token
                break
    return out


def _table(contract: Contract, columns: dict, file: str, lines, raw, error, extra,
           detail=None, recovered: dict[int, str] | None = None) -> pa.Table:
    """A file's rows as an arrow table: contract columns (text) + META_COLUMNS; `recovered`:
    identity numbers of unreadable rows (recovered_id_numbers)."""
    n = len(lines)
    if recovered and "id_number" in contract.columns:
        ids = list(columns.get("id_number") or [None] * n)
        for pos, number in recovered.items():
            ids[pos] = number
        columns = {**columns, "id_number": ids}
    data = {}
    for col in contract.columns:
        values = columns.get(col)
        data[col] = _text_array(values) if values is not None else pa.nulls(n, pa.string())
    if "id_number" in data:
        data["id_number"] = normalise_id_numbers(data["id_number"])
    data["_file"] = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                                   pa.array([file], pa.string()))
    data["_line"] = pa.array(np.asarray(lines, dtype=np.int64))
    for name, values in (("_raw", raw), ("_error", error), ("_extra", extra),
                         ("_detail", detail)):
        data[name] = (pa.nulls(n, pa.string()) if values is None
                      else values if isinstance(values, pa.Array) else pa.array(values, pa.string()))
    return pa.table(data)


def _to_frame(tables: list[pa.Table], contract: Contract) -> pd.DataFrame:
    """One pandas frame for the delivery: text as Python str / None (object columns), built by
    arrow in one go (no per-row Python)."""
    if not tables:
        tables = [_table(contract, {}, "", [], [], [], [])]
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.set_column(table.schema.get_field_index("_file"), "_file",
                             table["_file"].cast(pa.string()))
    return table.to_pandas()


def _sparse(values: dict, n: int) -> list | None:
    """{position: value} → a list of n values (None elsewhere), or None when there are none."""
    if not values:
        return None
    out = [None] * n
    for pos, v in values.items():
        out[pos] = v
    return out


# ------------------------------------------------------------------------------------------------
# csv
# ------------------------------------------------------------------------------------------------

_OTHER_SEPARATORS = (("\t", "tabs"), (";", "semicolons"), ("|", "vertical bars"))


def _read_csv(ctx: _ReadContext, path: Path, encoding: str, chunk_rows: int | None):
    """The file's rows as tables of about chunk_rows rows (None: one table), read block by
    block (_byte_blocks): the header is judged in the first block, the encoding by the file's
    head (encodings.decode_lines)."""
    file = path.name
    declared = f"conf/sources.yaml declares {encoding} for {ctx.source_id}"
    header = None
    before = 0            # physical lines of the file before the block
    for block in _byte_blocks(ctx, path, chunk_rows):
        lines, bad = decode_lines(block, encoding, declared, lambda reason: ctx.error(file, reason),
                                  head=header is None)
        if header is not None:   # data line of lines[k] is its 0-based line in the file
            yield _csv_table(ctx, file, encoding, header, lines, before, bad)
            before += len(lines)
            continue
        header, h = _csv_header(ctx, file, encoding, lines, bad)
        # data[k] = lines[h + 1 + k] is data line h + 1 + k (header excluded)
        yield _csv_table(ctx, file, encoding, header, lines[h + 1:], h + 1,
                         {i - (h + 1) for i in bad if i > h})
        before = len(lines)


def _byte_blocks(ctx: _ReadContext, path: Path, chunk_rows: int | None, quoted: bool = True):
    """The file's bytes in blocks of about chunk_rows physical lines (None: the whole file),
    cut after a LF once a non-blank line was seen (the first block holds the header or first
    record) and, for `quoted` (csv), only where the file's count of '"' so far is even (a
    quoted value with line breaks stays in one block; `""` inside quotes counts twice)."""
    if not chunk_rows:
        yield _read_bytes(ctx, path)
        return
    try:
        with open(path, "rb") as fh:
            block: list[bytes] = []
            quotes = 0
            text = False
            for line in fh:
                block.append(line)
                if quoted:
                    quotes += line.count(b'"')
                text = text or bool(line.strip())
                if len(block) >= chunk_rows and quotes % 2 == 0 and text:
                    yield b"".join(block)
                    block = []
            if block:
                yield b"".join(block)
    except OSError as exc:
        raise ctx.error(path.name, f"unreadable file: {exc.strerror or exc}") from None


def _csv_header(ctx: _ReadContext, file: str, encoding: str, lines: list[str], bad: set[int]
                ) -> tuple[list[str], int]:
    """The header (names lower-cased, checked) and its index: the first non-blank line."""
    if _blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no header row — {_EMPTY_HINT}")
    h = 0
    while not lines[h].strip():
        h += 1
    if h in bad:
        raise ctx.error(file, f"header row is not valid {encoding}")
    try:
        header = next(csv.reader([lines[h]]))
    except csv.Error as exc:
        raise ctx.error(file, f"unreadable csv header: {exc}") from None
    header = [c.strip().lstrip("\ufeff").lower() for c in header]
    if len(header) == 1:
        for sep, name in _OTHER_SEPARATORS:
            if sep in header[0]:
                raise ctx.error(file, f"the header's fields are separated by {name}, not "
                                      "commas: a csv separates fields with ','")
    ctx.check_columns(file, header)
    return header, h


def _csv_table(ctx: _ReadContext, file: str, encoding: str, header: list[str], data: list[str],
               shift: int, bad_data: set[int]) -> pa.Table:
    """Data lines of a csv file → its table: data[k] is data line k + shift; bad_data: the
    indexes in data of undecodable lines."""
    width = len(header)

    # fast path: every record is one line with the header's width (the usual file)
    if not bad_data:
        try:
            rows = list(csv.reader(data, strict=False))
        except csv.Error:
            rows = None
        if (rows is not None and len(rows) == len(data)
                and (not rows or min(map(len, rows)) == max(map(len, rows)) == width)):
            columns = {col: [r[j] for r in rows] for j, col in enumerate(header)}
            _check_repeated_header(ctx, file, header, columns,
                                   np.arange(shift, shift + len(rows), dtype=np.int64))
            raw = pc.utf8_rtrim(pa.array(data, pa.string()), characters="\r\n")
            lines_no = np.arange(shift, shift + len(rows), dtype=np.int64)
            return _table(ctx.contract, columns, file, lines_no, raw, None, None)
        del rows

    records: list = []
    out_lines: list[int] = []
    raws: list[str] = []
    errors: dict[int, str] = {}    # position in records → landing reason
    details: dict[int, str] = {}   # position in records → what is wrong, no personal data
    none_row = (None,) * width

    def broken(fields, err) -> str:
        if err == "encoding":
            return f"bytes that are not valid {encoding}"
        if fields is None:
            return "broken csv quoting"
        return f"{len(fields)} fields, the header has {width}"

    def single(k: int) -> None:
        """data[k] judged on its own (a multi-line record that turned out broken)."""
        line = data[k]
        if not line.strip():
            return
        err = "encoding" if k in bad_data else None
        fields = None
        if err is None:
            try:
                fields = next(csv.reader([line]), None)
            except csv.Error:
                fields = None
            if fields is None or len(fields) != width:
                err = "unparseable_row"
        if err:
            errors[len(records)] = err
            details[len(records)] = broken(fields, err)
            fields = None
        records.append(fields or none_row)
        out_lines.append(k + shift)
        raws.append(line)

    reader = csv.reader(data, strict=False)
    prev = 0
    while True:
        try:
            fields = next(reader)
            err = None
        except StopIteration:
            break
        except csv.Error:
            fields, err = None, "unparseable_row"
        cur = reader.line_num
        first, prev = prev, cur
        span = cur - first
        if span == 1:
            if err is None and (not fields or (len(fields) == 1 and not fields[0].strip())):
                continue    # blank line
            if bad_data and first in bad_data:
                err = "encoding"
            elif err is None and len(fields) != width:
                err = "unparseable_row"
            if err:
                errors[len(records)] = err
                details[len(records)] = broken(fields, err)
                records.append(none_row)
            else:
                records.append(fields)
            out_lines.append(first + shift)
            raws.append(data[first])
            continue
        if span <= 0:
            break
        is_broken = err is not None or len(fields) != width or (
            bad_data and any(k in bad_data for k in range(first, cur)))
        if is_broken:
            # a stray quote swallowed the following lines (or a bad byte sits inside): judge
            # each line on its own, so good rows after it are not lost inside one broken record
            for k in range(first, cur):
                single(k)
            continue
        records.append(fields)          # a quoted value with line breaks
        out_lines.append(first + shift)
        raws.append("".join(data[first:cur]))

    columns = {col: [r[j] for r in records] for j, col in enumerate(header)}
    _check_repeated_header(ctx, file, header, columns, out_lines)
    recovered = recovered_id_numbers({pos: raws[pos] for pos in errors})
    for pos in errors:      # rows that could not be read into fields (SPEC §7)
        raws[pos] = redacted_csv_row(raws[pos], header)
    raw = pc.utf8_rtrim(pa.array(raws, pa.string()), characters="\r\n")
    return _table(ctx.contract, columns, file, out_lines, raw, _sparse(errors, len(records)),
                  None, _sparse(details, len(records)), recovered)


def _check_repeated_header(ctx: _ReadContext, file: str, header: list[str], columns: dict,
                           lines) -> None:
    """A data row that repeats the header (csv files joined together, or a Parquet file made
    from such a csv) stops the file. Column by column, leaving at the first without a match."""
    mask = None
    for col in header:
        values = columns.get(col)
        if values is None:
            return
        arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        same = pc.fill_null(pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(arr)), col), False)
        mask = same if mask is None else pc.and_(mask, same)
        if not pc.any(mask).as_py():
            return
    if mask is None:
        return
    repeats = np.asarray(lines)[np.flatnonzero(np.asarray(mask))]
    where = ", ".join(map(str, repeats[:5])) + (" …" if len(repeats) > 5 else "")
    raise ctx.error(file, f"the header row is repeated on data line(s) {where} (files "
                          "joined together?): one header row, at the top")


def _read_bytes(ctx: _ReadContext, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ctx.error(path.name, f"unreadable file: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------------------------
# JSON Lines
# ------------------------------------------------------------------------------------------------

class _JsonFloat(str):
    """The literal text of a JSON number with a fraction or an exponent."""


def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(text: str) -> str:
    return {"[": "a JSON array", "{": "a JSON object"}.get(text[:1], "a JSON value")


def _read_jsonl(ctx: _ReadContext, path: Path, chunk_rows: int | None):
    """JSON Lines are UTF-8 (RFC 8259), one JSON object per line; numbers are kept as their
    literal text, except a quantity's, which becomes its plain decimal text (`12.50`, `1.25e1`
    → `12.5`). Tables of about chunk_rows rows (None: one table), read block by block."""
    file = path.name
    declared = "JSON Lines are UTF-8 (RFC 8259)"

    def refuse(reason):
        return ctx.error(file, reason)

    def whole_file() -> list[str]:      # only for the message of a file that is not JSON Lines
        return decode_lines(_read_bytes(ctx, path), "utf-8", declared, refuse)[0]

    before = None         # physical lines of the file before the block
    for block in _byte_blocks(ctx, path, chunk_rows, quoted=False):
        lines, bad = decode_lines(block, "utf-8", declared, refuse, head=before is None)
        start = None
        if before is None:
            start = _jsonl_head(ctx, file, lines, bad, whole_file)
            before = 0
        yield _jsonl_table(ctx, file, lines, bad, before, start, whole_file)
        before += len(lines)


def _jsonl_head(ctx: _ReadContext, file: str, lines: list[str], bad: set[int],
                whole_file) -> int:
    """The index of the file's first non-blank line, which must start a JSON object; a file
    that is blank, a JSON array or another JSON document is refused as a whole."""
    if _blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no records — {_EMPTY_HINT}")
    start = next(i for i, line in enumerate(lines) if line.strip())
    head = lines[start].lstrip("\ufeff \t")
    if start not in bad and not head.startswith("{"):
        whole = "".join(whole_file()).strip().lstrip("\ufeff")
        try:
            doc = json.loads(whole)
        except ValueError:
            doc = None
        if isinstance(doc, list):
            raise ctx.error(file, f"the file holds a JSON array ({len(doc)} records), not JSON "
                                  "Lines: write one JSON object per line, without [ ] and commas "
                                  "between them")
        if head.startswith("["):
            raise ctx.error(file, "the file starts a JSON array ('['), not JSON Lines: write "
                                  "one JSON object per line")
        raise ctx.error(file, "the extension says JSON Lines but the first line is not a JSON "
                              "object (a csv?): write one JSON object per line")
    return start


def _jsonl_table(ctx: _ReadContext, file: str, lines: list[str], bad: set[int], before: int,
                 start: int | None, whole_file) -> pa.Table:
    """A block of a JSON Lines file → its table: lines[i] is file line before + i + 1; `start`:
    the index of the file's first non-blank line when it is in this block."""
    cols = ctx.contract.columns
    colset = frozenset(cols)
    decode = json.JSONDecoder(parse_float=_JsonFloat, parse_int=str,
                              parse_constant=_no_constants).raw_decode
    records: list[dict] = []
    out_lines: list[int] = []
    raws: list[str] = []
    errors: dict[int, str] = {}
    unreadable: dict[int, str] = {}   # position → the line as delivered
    details: dict[int, str] = {}
    extras: dict[int, str] = {}
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        obj = None
        if i in bad:
            errors[len(records)] = "encoding"
            details[len(records)] = "bytes that are not valid UTF-8"
        else:
            try:
                obj, end = decode(text)
            except ValueError:
                obj, end = None, 0
            if not isinstance(obj, dict) or end != len(text):
                errors[len(records)] = "unparseable_row"
                details[len(records)] = ("not valid JSON" if obj is None else
                                         "more than one JSON value on the line"
                                         if end != len(text) else
                                         f"{_json_kind(text)}, not a JSON object")
                if i == start:
                    _refuse_json_document(ctx, file, whole_file())
                obj = None
            elif not obj.keys() <= colset:
                # keys beyond the contract (or spelt with other case / blanks): normalise, and
                # record the extra ones for validation (forbidden_field / unknown_column)
                norm = {str(k).strip().lower(): v for k, v in obj.items()}
                if "" in norm:
                    raise ctx.error(file, f"line {before + i + 1} has a key without a name (\"\"): every "
                                          f"value needs one of the {ctx.contract.kind} "
                                          "contract's names")
                beyond = sorted(k for k in norm if k not in colset)
                if beyond:
                    extras[len(records)] = ";".join(beyond)
                obj = {k: v for k, v in norm.items() if k in colset}
            if obj is not None and isinstance(obj.get("quantity"), _JsonFloat):
                obj["quantity"] = plain_decimal(obj["quantity"])
        records.append(obj if obj is not None else {})
        out_lines.append(before + i + 1)
        if len(records) - 1 in errors:
            unreadable[len(records) - 1] = line
            raws.append(redacted_json_row(line))
        else:
            raws.append(line.rstrip("\r\n"))
    schema = pa.schema([(c, pa.string()) for c in cols])
    try:
        table = pa.Table.from_pylist(records, schema=schema)
        columns = {c: table.column(c) for c in cols}
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # some values are true/false, objects or arrays: their JSON text, column by column
        columns = {c: [_json_text(r.get(c)) for r in records] for c in cols}
    columns = {c: (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v)
               for c, v in columns.items()}
    n = len(records)
    return _table(ctx.contract, columns, file, out_lines, raws, _sparse(errors, n),
                  _sparse(extras, n), _sparse(details, n), recovered_id_numbers(unreadable))


def _refuse_json_document(ctx: _ReadContext, file: str, lines: list[str]) -> None:
    """The first line is not a JSON object: if the whole file is one JSON document spread over
    lines (pretty-printed), that is the file's shape, not a problem of each line."""
    try:
        doc = json.loads("".join(lines).strip().lstrip("\ufeff"))
    except ValueError:
        return
    if isinstance(doc, list):
        raise ctx.error(file, f"the file holds a JSON array ({len(doc)} records), not JSON "
                              "Lines: write one JSON object per line")
    raise ctx.error(file, f"the file is {_json_kind(json.dumps(doc)[:1])} spread over "
                          f"{sum(1 for line in lines if line.strip())} lines (pretty-printed), "
                          "not JSON Lines: write one JSON object per line")


def _read_parquet(ctx: _ReadContext, path: Path, chunk_rows: int | None):
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


def _parquet_table(ctx: _ReadContext, file: str, names: list[str], batch, offset: int
                   ) -> pa.Table:
    """One record batch (or table) of a Parquet file, rows offset+1… → a file table (_table)."""
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
    _check_repeated_header(ctx, file, names, columns, lines)
    return _table(ctx.contract, columns, file, lines, None, None, None)
