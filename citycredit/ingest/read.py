"""Reading a delivery's files into one RawBatch (csv in the source's encoding, jsonl, parquet),
keeping file and line of every row (see ingest.contracts for the RawBatch columns).

Problems with a whole file are batch-level and raise DeliveryError naming source, month and file:
an unreadable file, a csv/parquet file with a forbidden column, a column outside the contract or
without a required column, a manifest row count that differs from the rows read.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import forbidden_columns as configured_forbidden_columns
from .contracts import Contract, FileStat, RawBatch, contract_for
from .delivery import MANIFEST_FILE, Delivery, DeliveryError


def read_delivery(delivery: Delivery, source_conf: dict, *,
                  forbidden_columns: Iterable[str] | None = None) -> RawBatch:
    """Read every data file of the delivery into one RawBatch (rows in file-name, line order).

    `source_conf` is the source's conf/sources.yaml entry (`kind`, optional `encoding`).
    `forbidden_columns` defaults to `validation.forbidden_columns` of the conf in force.
    """
    contract = contract_for(source_conf)
    forbidden = frozenset(c.lower() for c in (forbidden_columns if forbidden_columns is not None
                                              else configured_forbidden_columns()))
    encoding = (source_conf or {}).get("encoding") or "utf-8"
    ctx = _ReadContext(delivery.source_id, delivery.month, contract, forbidden)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DeliveryError(delivery.source_id, delivery.month, None,
                            f"unknown encoding {encoding!r} in conf/sources.yaml") from None
    tables, stats = [], []
    for name in delivery.files:
        path = delivery.path / name
        suffix = path.suffix.lower()
        if suffix == ".csv":
            with _gc_paused():
                frame = _read_csv(ctx, path, encoding)
        elif suffix == ".jsonl":
            with _gc_paused():
                frame = _read_jsonl(ctx, path)
        else:
            frame = _read_parquet(ctx, path, (source_conf or {}).get("date_format") or "%Y-%m-%d")
        tables.append(frame)
        stats.append(FileStat(name, suffix[1:], frame.num_rows))
    rows = sum(s.rows for s in stats)
    if delivery.manifest is not None and delivery.manifest["row_count"] != rows:
        detail = ", ".join(f"{s.name}: {s.rows}" for s in stats) or "no data files"
        raise DeliveryError(delivery.source_id, delivery.month, MANIFEST_FILE,
                            f"manifest row_count {delivery.manifest['row_count']} ≠ {rows} rows "
                            f"read ({detail})")
    data = _to_frame(tables, contract)
    return RawBatch(delivery.source_id, delivery.month, contract.kind, contract, data, stats,
                    delivery)


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


@dataclass(frozen=True)
class _ReadContext:
    source_id: str
    month: str
    contract: Contract
    forbidden: frozenset

    def error(self, file: str, reason: str) -> DeliveryError:
        return DeliveryError(self.source_id, self.month, file, reason)

    def check_columns(self, file: str, columns: list[str]) -> None:
        """Batch-level checks of a csv header / parquet schema (already lower-cased)."""
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
            raise self.error(file, f"column(s) {', '.join(unknown)} are not in the "
                                   f"{self.contract.kind} contract "
                                   f"({', '.join(self.contract.columns)})")


def _text_array(values) -> pa.Array:
    """Strings (or None) → arrow string array, surrounding whitespace stripped, '' → null."""
    arr = (values if isinstance(values, (pa.Array, pa.ChunkedArray))
           else pa.array(values, pa.string()))
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def _table(contract: Contract, columns: dict, file: str, lines, raw, error, extra) -> pa.Table:
    """A file's rows as an arrow table: contract columns (text) + META_COLUMNS."""
    n = len(lines)
    data = {}
    for col in contract.columns:
        values = columns.get(col)
        data[col] = _text_array(values) if values is not None else pa.nulls(n, pa.string())
    data["_file"] = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                                   pa.array([file], pa.string()))
    data["_line"] = pa.array(np.asarray(lines, dtype=np.int64))
    for name, values in (("_raw", raw), ("_error", error), ("_extra", extra)):
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


_UTF8 = {"utf-8", "utf8", "utf-8-sig"}
_BOMS = {"utf-8": codecs.BOM_UTF8, "gb18030": b"\x84\x31\x95\x33"}


def _decode_lines(data: bytes, encoding: str) -> tuple[list[str], set[int]]:
    """Physical lines (with their line endings) and the 0-based indexes of undecodable ones.

    The whole file is decoded at once when it can be (the usual case); otherwise line by line,
    splitting the bytes on LF — safe for UTF-8 and GB 18030, where 0x0A never occurs inside a
    multi-byte character — so that one bad row cannot sink the file.
    """
    norm = codecs.lookup(encoding).name
    bom = _BOMS.get("utf-8" if norm in _UTF8 else norm)
    if bom and data.startswith(bom):
        data = data[len(bom):]
    codec = "utf-8" if norm in _UTF8 else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        pass
    else:
        return io.StringIO(text, newline="").readlines(), set()
    lines, bad = [], set()
    pieces = data.split(b"\n")
    for i, piece in enumerate(pieces):
        if i < len(pieces) - 1:
            piece += b"\n"
        elif not piece:
            break
        try:
            lines.append(piece.decode(codec))
        except UnicodeDecodeError:
            lines.append(piece.decode(codec, errors="backslashreplace"))
            bad.add(i)
    return lines, bad


def _read_bytes(ctx: _ReadContext, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ctx.error(path.name, f"unreadable file: {exc.strerror or exc}") from None


def _read_csv(ctx: _ReadContext, path: Path, encoding: str) -> pa.Table:
    file = path.name
    lines, bad = _decode_lines(_read_bytes(ctx, path), encoding)
    # header: the first non-blank line
    h = 0
    while h < len(lines) and not lines[h].strip():
        h += 1
    if h == len(lines):
        raise ctx.error(file, "empty csv file (no header row)")
    if h in bad:
        raise ctx.error(file, f"header row is not valid {encoding}")
    try:
        header = next(csv.reader([lines[h]]))
    except csv.Error as exc:
        raise ctx.error(file, f"unreadable csv header: {exc}") from None
    header = [c.strip().lstrip("\ufeff").lower() for c in header]
    ctx.check_columns(file, header)
    width = len(header)
    data = lines[h + 1:]     # data[k] is file line h + 2 + k, i.e. data line h + 1 + k
    shift = h + 1            # data line of data[k] = k + 1 + h  (header excluded)
    bad_data = {i - (h + 1) for i in bad if i > h}

    # fast path: every record is one line with the header's width (the usual file)
    if not bad_data:
        try:
            rows = list(csv.reader(data, strict=False))
        except csv.Error:
            rows = None
        if (rows is not None and len(rows) == len(data)
                and (not rows or min(map(len, rows)) == max(map(len, rows)) == width)):
            columns = {col: [r[j] for r in rows] for j, col in enumerate(header)}
            raw = pc.utf8_rtrim(pa.array(data, pa.string()), characters="\r\n")
            lines_no = np.arange(shift, shift + len(rows), dtype=np.int64)
            return _table(ctx.contract, columns, file, lines_no, raw, None, None)
        del rows

    records: list = []
    out_lines: list[int] = []
    raws: list[str] = []
    errors: dict[int, str] = {}    # position in records → landing reason
    none_row = (None,) * width

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
                err, fields = "unparseable_row", None
        if err:
            errors[len(records)] = err
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
                records.append(none_row)
            else:
                records.append(fields)
            out_lines.append(first + shift)
            raws.append(data[first])
            continue
        if span <= 0:
            break
        broken = err is not None or len(fields) != width or (
            bad_data and any(k in bad_data for k in range(first, cur)))
        if broken:
            # a stray quote swallowed the following lines (or a bad byte sits inside): judge
            # each line on its own, so good rows after it are not lost inside one broken record
            for k in range(first, cur):
                single(k)
            continue
        records.append(fields)          # a quoted value with line breaks
        out_lines.append(first + shift)
        raws.append("".join(data[first:cur]))

    columns = {col: [r[j] for r in records] for j, col in enumerate(header)}
    error_col = None
    if errors:
        error_col = [None] * len(records)
        for pos, err in errors.items():
            error_col[pos] = err
    raw = pc.utf8_rtrim(pa.array(raws, pa.string()), characters="\r\n")
    return _table(ctx.contract, columns, file, out_lines, raw, error_col, None)


def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _read_jsonl(ctx: _ReadContext, path: Path) -> pa.Table:
    """JSON Lines are UTF-8 (RFC 8259); numbers are kept as their literal text."""
    file = path.name
    lines, bad = _decode_lines(_read_bytes(ctx, path), "utf-8")
    cols = ctx.contract.columns
    colset = frozenset(cols)
    decode = json.JSONDecoder(parse_float=str, parse_int=str,
                              parse_constant=_no_constants).raw_decode
    records: list[dict] = []
    out_lines: list[int] = []
    raws: list[str] = []
    errors: dict[int, str] = {}
    extras: dict[int, str] = {}
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        obj = None
        if i in bad:
            errors[len(records)] = "encoding"
        else:
            try:
                obj, end = decode(text)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or end != len(text):
                obj = None
                errors[len(records)] = "unparseable_row"
            elif not obj.keys() <= colset:
                # keys beyond the contract (or spelt with other case / blanks): normalise, and
                # record the extra ones for validation (forbidden_field / unknown_column)
                norm = {str(k).strip().lower(): v for k, v in obj.items()}
                beyond = sorted(k for k in norm if k not in colset)
                if beyond:
                    extras[len(records)] = ";".join(beyond)
                obj = {k: v for k, v in norm.items() if k in colset}
        records.append(obj if obj is not None else {})
        out_lines.append(i + 1)
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

    def sparse(values: dict) -> list | None:
        if not values:
            return None
        out = [None] * len(records)
        for pos, v in values.items():
            out[pos] = v
        return out

    return _table(ctx.contract, columns, file, out_lines, raws, sparse(errors), sparse(extras))


def _parquet_column_as_text(ctx: _ReadContext, file: str, name: str, arr: pa.ChunkedArray,
                            date_format: str) -> pa.ChunkedArray:
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        # typed dates are written back in the source's pattern, so one date check fits all files
        out = pc.strftime(arr.cast(pa.timestamp("s")) if pa.types.is_date(t) else arr,
                          format=date_format)
    elif (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
          or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)
          or pa.types.is_null(t)):
        out = arr.cast(pa.string())
    else:
        raise ctx.error(file, f"column {name} has type {t}, which the contract cannot hold")
    return _text_array(out)


def _read_parquet(ctx: _ReadContext, path: Path, date_format: str) -> pa.Table:
    """Column-wise with pyarrow: no per-row Python."""
    file = path.name
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ctx.error(file, f"unreadable parquet file: {exc}") from None
    names = [n.strip().lower() for n in table.column_names]
    ctx.check_columns(file, names)
    by_name = dict(zip(names, table.columns))
    columns = {}
    for col in ctx.contract.columns:
        if col in by_name:
            try:
                columns[col] = _parquet_column_as_text(ctx, file, col, by_name[col], date_format)
            except pa.ArrowException as exc:
                raise ctx.error(file, f"column {col}: cannot read as text: {exc}") from None
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return _table(ctx.contract, columns, file, lines, None, None, None)
