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
* the encoding: a csv that is UTF-8 where the source declares another encoding (GB 18030 would
  decode it into garbled text without an error), or that is not UTF-8 where the source declares
  UTF-8 (or a jsonl, which is UTF-8 by RFC 8259) — both encodings named. Single undecodable
  rows in an otherwise right file are quarantined `encoding` instead;
* the columns: a forbidden column, a column outside the contract, a missing required column;
* a Parquet column whose type cannot hold the contract column's meaning (`_parquet_text`);
* a manifest row count that differs from the rows read.

Typed values are read by meaning (Parquet and JSON): a timestamp becomes the date in
Asia/Shanghai, decimals and floats their exact plain decimal text, integers their digits.

Identity numbers get their one normal form here (`identity.normalise_id_numbers`), for every
source kind and format, so the duplicate check, the key, birth date and sex all see it.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import gc
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import forbidden_columns as configured_forbidden_columns
from ..identity import mask_id_number, normalise_id_numbers
from .contracts import Contract, FileStat, RawBatch, contract_for
from .delivery import MANIFEST_FILE, Delivery, DeliveryError

#: the zone a timestamp's date is taken in (the cities' own; SPEC §2 dates are local dates)
LOCAL_ZONE = "Asia/Shanghai"


def read_delivery(delivery: Delivery, source_conf: dict, *,
                  forbidden_columns: Iterable[str] | None = None) -> RawBatch:
    """Read every data file of the delivery into one RawBatch (rows in file-name, line order).

    `source_conf` is the source's conf/sources.yaml entry (`kind`, optional `encoding`,
    `date_format`). `forbidden_columns` defaults to `validation.forbidden_columns` of the conf
    in force. Raises DeliveryError for a problem with a whole file (module docstring).
    """
    contract = contract_for(source_conf)
    forbidden = frozenset(c.lower() for c in (forbidden_columns if forbidden_columns is not None
                                              else configured_forbidden_columns()))
    encoding = (source_conf or {}).get("encoding") or "utf-8"
    ctx = _ReadContext(delivery.source_id, delivery.month, contract, forbidden,
                       (source_conf or {}).get("date_format") or "%Y-%m-%d")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DeliveryError(delivery.source_id, delivery.month, None,
                            f"unknown encoding {encoding!r} in conf/sources.yaml") from None
    tables, stats = [], []
    for name in delivery.files:
        path = delivery.path / name
        suffix = path.suffix.lower()
        _check_content(ctx, path, suffix[1:])
        if suffix == ".csv":
            with _gc_paused():
                frame = _read_csv(ctx, path, encoding)
        elif suffix == ".jsonl":
            with _gc_paused():
                frame = _read_jsonl(ctx, path)
        else:
            frame = _read_parquet(ctx, path)
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


# ------------------------------------------------------------------------------------------------
# column names
# ------------------------------------------------------------------------------------------------

#: names tools give a column that had none: pandas' `Unnamed: 3` (a csv column without a header,
#: or an index written with the data) and `__index_level_0__` (an index written to Parquet)
_UNNAMED = re.compile(r"^(?:unnamed: ?\d+|__index_level_\d+__)$")
#: a run of digits that may be an identity number: never echoed in a message
_ID_LIKE = re.compile(r"[0-9０-９]{15,17}[0-9０-９Xx]?")


def _shown(name: str) -> str:
    """A delivered column name as a message may show it: identity-number-like runs masked,
    long names cut."""
    text = _ID_LIKE.sub(lambda m: mask_id_number(m.group()), name)
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
        """Batch-level checks of a csv header / parquet schema / jsonl keys (lower-cased)."""
        known = [c for c in columns if c in self.contract.columns or c in self.forbidden]
        if columns and not known:
            if any(_ID_LIKE.search(c) or re.fullmatch(r"[0-9./-]{6,}", c) for c in columns):
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
_TEXT_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
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


def _table(contract: Contract, columns: dict, file: str, lines, raw, error, extra,
           detail=None) -> pa.Table:
    """A file's rows as an arrow table: contract columns (text) + META_COLUMNS."""
    n = len(lines)
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
# encodings
# ------------------------------------------------------------------------------------------------

_UTF8 = {"utf-8", "utf8", "utf-8-sig"}
_BOMS = {"utf-8": codecs.BOM_UTF8, "gb18030": b"\x84\x31\x95\x33"}
#: a character outside U+0000–U+07FF: UTF-8 writes it in three or four bytes. Text in another
#: encoding (GB 18030) that happens to be valid UTF-8 almost never forms such sequences, real
#: UTF-8 Chinese text always does — so it is the evidence that a file is UTF-8.
_WIDE_CHAR = re.compile("[^\x00-\u07ff]")


def _is_utf8(norm: str) -> bool:
    return norm in _UTF8


def _utf8_evidence(data: bytes) -> tuple[int, int, int | None]:
    """Over the lines with non-ASCII bytes: (lines that are UTF-8 with a character beyond
    U+07FF, lines that are not UTF-8, 1-based number of the first such line)."""
    text = data.decode("utf-8", errors="replace")
    utf8 = not_utf8 = 0
    first = None
    for i, line in enumerate(text.split("\n")):
        if line.isascii():
            continue
        if "\ufffd" in line:
            not_utf8 += 1
            first = first or i + 1
        elif _WIDE_CHAR.search(line):
            utf8 += 1
    return utf8, not_utf8, first


def _decode_lines(ctx: _ReadContext, file: str, data: bytes, encoding: str,
                  declared: str) -> tuple[list[str], set[int]]:
    """Physical lines (with their line endings) and the 0-based indexes of undecodable ones.

    A file in another encoding than the one declared is refused with both named: a file that is
    UTF-8 where another encoding is declared (decoding it as GB 18030 would not fail — it would
    garble it), or one whose lines with non-ASCII text are mostly not UTF-8 where UTF-8 is
    declared; UTF-16/32 text too. Otherwise the whole file is decoded at once when it can be
    (the usual case), else line by line, splitting the bytes on LF — safe for UTF-8 and
    GB 18030, where 0x0A never occurs inside a multi-byte character — so that one bad row
    cannot sink the file. `declared` says who declares the encoding, for the message
    ("conf/sources.yaml declares gb18030 for public_security").
    """
    for bom, name in _TEXT_BOMS:
        if data.startswith(bom):
            raise ctx.error(file, f"the file is {name} text (a spreadsheet's 'Unicode text' "
                                  f"export?), but {declared}")
    norm = codecs.lookup(encoding).name
    bom = _BOMS.get("utf-8" if _is_utf8(norm) else norm)
    if bom and data.startswith(bom):
        data = data[len(bom):]
    codec = "utf-8" if _is_utf8(norm) else encoding
    if data.isascii():
        return io.StringIO(data.decode("ascii"), newline="").readlines(), set()
    if not _is_utf8(norm):
        utf8, not_utf8, _ = _utf8_evidence(data)
        if utf8 > not_utf8 or data.startswith(codecs.BOM_UTF8):
            raise ctx.error(file, f"the file is UTF-8, but {declared}: read as {encoding} its "
                                  f"text would be garbled — deliver {encoding}, or declare "
                                  "utf-8 in conf/sources.yaml")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        pass
    else:
        return io.StringIO(text, newline="").readlines(), set()
    if _is_utf8(norm):
        utf8, not_utf8, first = _utf8_evidence(data)
        if not_utf8 > utf8:
            gb = _decodes(data, "gb18030")
            raise ctx.error(file, f"the file is {'GB 18030 text' if gb else 'not UTF-8'}, but "
                                  f"{declared} ({not_utf8} of {not_utf8 + utf8} lines with "
                                  f"non-ASCII text are not UTF-8, the first on line {first}) — "
                                  "deliver UTF-8"
                                  + (", or declare gb18030 in conf/sources.yaml"
                                     if gb and "conf/sources.yaml" in declared else ""))
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
            lines.append(piece.decode(codec, errors="replace"))
            bad.add(i)
    return lines, bad


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


#: what is left of an undecodable row in quarantine: identity numbers masked, the name
#: removed, undecodable bytes and any other non-ASCII text (where a name may hide) as '?'
_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")


def _redacted_text(text: str) -> str:
    text = _ID_LIKE.sub(lambda m: mask_id_number(m.group()), text)
    return _NOT_ASCII.sub("?", text.rstrip("\r\n"))


def _redacted_fields(fields: dict) -> dict:
    out = {}
    for key, value in fields.items():
        name = str(key).strip().lower()
        if name == "name":
            continue
        if name == "id_number" and isinstance(value, str):
            value = mask_id_number(_NOT_ASCII.sub("?", value))
        elif isinstance(value, str):
            value = _NOT_ASCII.sub("?", value)
        out[key] = value
    return out


def _redacted_csv_row(line: str, header: list[str]) -> str:
    """An undecodable csv row as quarantine keeps it (SPEC §7): its fields with the identity
    number masked and the name removed; a row that does not split into the header's fields
    keeps only its ASCII text, identity-number-like runs masked."""
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:
        fields = []
    if len(fields) != len(header):
        return _redacted_text(line)
    kept = _redacted_fields(dict(zip(header, fields)))
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(
        [kept.get(col, "") for col in header])
    return out.getvalue()


def _redacted_json_row(line: str) -> str:
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return _redacted_text(line)
    return json.dumps(_redacted_fields(obj), ensure_ascii=False)


# ------------------------------------------------------------------------------------------------
# csv
# ------------------------------------------------------------------------------------------------

_OTHER_SEPARATORS = (("\t", "tabs"), (";", "semicolons"), ("|", "vertical bars"))


def _read_csv(ctx: _ReadContext, path: Path, encoding: str) -> pa.Table:
    file = path.name
    lines, bad = _decode_lines(ctx, file, _read_bytes(ctx, path), encoding,
                               f"conf/sources.yaml declares {encoding} for {ctx.source_id}")
    if _blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no header row — {_EMPTY_HINT}")
    # header: the first non-blank line
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
    for pos, err in errors.items():
        if err == "encoding":
            raws[pos] = _redacted_csv_row(raws[pos], header)
    raw = pc.utf8_rtrim(pa.array(raws, pa.string()), characters="\r\n")
    return _table(ctx.contract, columns, file, out_lines, raw, _sparse(errors, len(records)),
                  None, _sparse(details, len(records)))


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


def _read_jsonl(ctx: _ReadContext, path: Path) -> pa.Table:
    """JSON Lines are UTF-8 (RFC 8259), one JSON object per line; numbers are kept as their
    literal text, except a quantity's, which becomes its plain decimal text (`12.50`, `1.25e1`
    → `12.5`)."""
    file = path.name
    lines, bad = _decode_lines(ctx, file, _read_bytes(ctx, path), "utf-8",
                               "JSON Lines are UTF-8 (RFC 8259)")
    if _blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no records — {_EMPTY_HINT}")
    start = next(i for i, line in enumerate(lines) if line.strip())
    head = lines[start].lstrip("\ufeff \t")
    if start not in bad and not head.startswith("{"):
        whole = "".join(lines).strip().lstrip("\ufeff")
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
    cols = ctx.contract.columns
    colset = frozenset(cols)
    decode = json.JSONDecoder(parse_float=_JsonFloat, parse_int=str,
                              parse_constant=_no_constants).raw_decode
    records: list[dict] = []
    out_lines: list[int] = []
    raws: list[str] = []
    errors: dict[int, str] = {}
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
                    _refuse_json_document(ctx, file, lines)
                obj = None
            elif not obj.keys() <= colset:
                # keys beyond the contract (or spelt with other case / blanks): normalise, and
                # record the extra ones for validation (forbidden_field / unknown_column)
                norm = {str(k).strip().lower(): v for k, v in obj.items()}
                if "" in norm:
                    raise ctx.error(file, f"line {i + 1} has a key without a name (\"\"): every "
                                          f"value needs one of the {ctx.contract.kind} "
                                          "contract's names")
                beyond = sorted(k for k in norm if k not in colset)
                if beyond:
                    extras[len(records)] = ";".join(beyond)
                obj = {k: v for k, v in norm.items() if k in colset}
            if obj is not None and isinstance(obj.get("quantity"), _JsonFloat):
                obj["quantity"] = _plain_decimal(obj["quantity"])
        records.append(obj if obj is not None else {})
        out_lines.append(i + 1)
        raws.append(line.rstrip("\r\n") if errors.get(len(records) - 1) != "encoding"
                    else _redacted_json_row(line))
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
                  _sparse(extras, n), _sparse(details, n))


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


def _plain_decimal(literal: str) -> str:
    """The exact value of a number's text in plain notation, without trailing fractional
    zeros (`12.50` → `12.5`, `1.5E1` → `15`, `-0.0` → `0`); the text itself if it is not a
    finite number (validation then names it)."""
    try:
        value = Decimal(literal)
    except InvalidOperation:
        return literal
    if not value.is_finite():
        return literal
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ------------------------------------------------------------------------------------------------
# Parquet: typed columns read by meaning
# ------------------------------------------------------------------------------------------------

def _column_role(contract: Contract, name: str) -> str:
    if name in contract.dates:
        return "date"
    if name in contract.decimals:
        return "decimal"
    if name == "id_number":
        return "identity number"
    return "text"


def _first_line(mask) -> int:
    """1-based row number of the first true value of a boolean array."""
    return int(np.flatnonzero(np.asarray(pc.fill_null(mask, False)))[0]) + 1


def _plain_numbers(arr: pa.Array) -> pa.Array:
    """Decimal or float values → their exact plain decimal text (`_plain_decimal`): arrow
    casts in bulk, Python only for the few it writes with an exponent."""
    text = arr.cast(pa.string())
    text = pc.replace_substring_regex(text, r"^(-?[0-9]+\.[0-9]*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    text = pc.if_else(pc.equal(text, "-0"), "0", text)
    exp = pc.fill_null(pc.match_substring(text, "e", ignore_case=True), False)
    if pc.any(exp).as_py():
        values = text.to_pylist()
        for i in np.flatnonzero(np.asarray(exp)):
            values[i] = _plain_decimal(values[i])
        text = pa.array(values, pa.string())
    return text


def _timestamps_as_dates(ctx: _ReadContext, file: str, name: str, arr: pa.Array) -> pa.Array:
    """A timestamp column → the dates it means: with a zone, the date in Asia/Shanghai at that
    instant; without one, the date of a midnight (a date written as a timestamp). A zoneless
    timestamp with a time of day is refused: its date depends on a zone it does not name."""
    t = arr.type
    if t.tz is None:
        day = arr.cast(pa.date32())
        off = pc.not_equal(day.cast(t), arr)
        if pc.any(off).as_py():
            raise ctx.error(file, f"column {name} is {t} without a time zone and holds times of "
                                  f"day (first on line {_first_line(off)}): which day it is "
                                  "depends on a zone it does not name — deliver dates, or "
                                  "timestamps with their zone")
        return day
    local = arr.cast(pa.timestamp(t.unit, tz=LOCAL_ZONE))
    try:
        return pc.local_timestamp(local).cast(pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # no time-zone database for arrow: Python's zoneinfo (the tzdata package) per value
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(LOCAL_ZONE)
        return pa.array([None if v is None else v.astimezone(zone).date()
                         for v in arr.to_pylist()], pa.date32())


def _refuse_type(ctx: _ReadContext, file: str, name: str, t: pa.DataType, role: str,
                 why: str = "") -> DeliveryError:
    what = {"date": "a date", "decimal": "a decimal quantity",
            "identity number": "an identity number", "text": "text"}[role]
    return ctx.error(file, f"column {name} has type {t}, which cannot hold {what} exactly"
                           + (f" ({why})" if why else "")
                           + (" — deliver identity numbers as text" if role == "identity number"
                              else ""))


def _parquet_text(ctx: _ReadContext, file: str, name: str, arr: pa.Array) -> pa.Array:
    """A Parquet column → text the contract's checks read, by the column's meaning:

    * dates: date32/date64 and timestamps (`_timestamps_as_dates`) are written in the source's
      date pattern, so one date check fits every format; integers only where that pattern is
      all digits (`%Y%m%d`); anything else is refused;
    * the decimal quantity: integers, decimals of any precision and scale and floats become
      their exact plain text (`12.5000000000` → `12.5`; a float by its shortest text, 0.1 →
      `0.1`); validation then checks the value fits;
    * identity numbers: text, or integers (their digits; decimals with scale 0 alike) — never
      floats, which cannot hold 18 digits;
    * other text: strings, integers, decimals, booleans (`true`/`false`), and floats below
      2^53 (integral ones without `.0`).
    Binary columns must be UTF-8 text. Time-of-day, duration, nested and other types are
    refused, naming file, column and type.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    role = _column_role(ctx.contract, name)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        try:
            return arr.cast(pa.string())
        except pa.ArrowInvalid:
            raise ctx.error(file, f"column {name} has type {t} and holds bytes that are not "
                                  "UTF-8 text") from None
    if role == "date":
        if pa.types.is_date(t):
            return pc.strftime(arr.cast(pa.date32()).cast(pa.timestamp("s")),
                               format=ctx.date_format)
        if pa.types.is_timestamp(t):
            days = _timestamps_as_dates(ctx, file, name, arr)
            return pc.strftime(days.cast(pa.timestamp("s")), format=ctx.date_format)
        if pa.types.is_integer(t) and dt.date(2026, 1, 2).strftime(ctx.date_format).isdigit():
            return arr.cast(pa.string())
        raise _refuse_type(ctx, file, name, t, role,
                           f"dates are date32/date64, timestamps, or text in "
                           f"{ctx.date_format}")
    if pa.types.is_integer(t):
        return arr.cast(pa.string())
    if pa.types.is_decimal(t):
        text = _plain_numbers(arr)
        if role == "identity number" and pc.any(
                pc.fill_null(pc.match_substring(text, "."), False)).as_py():
            raise _refuse_type(ctx, file, name, t, role, "values with a fraction")
        return text
    if pa.types.is_floating(t):
        if role == "identity number":
            raise _refuse_type(ctx, file, name, t, role,
                               "floating point keeps 15-17 significant digits")
        if role == "text":
            big = pc.greater_equal(pc.abs(arr), 2.0 ** 53)
            if pc.any(pc.fill_null(big, False)).as_py():
                raise _refuse_type(ctx, file, name, t, role,
                                   f"values from 2^53 on are rounded, line {_first_line(big)}")
        return _plain_numbers(arr)
    if pa.types.is_boolean(t) and role == "text":
        return arr.cast(pa.string())
    raise _refuse_type(ctx, file, name, t, role)


def _read_parquet(ctx: _ReadContext, path: Path) -> pa.Table:
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
                columns[col] = _parquet_text(ctx, file, col, by_name[col].combine_chunks())
            except pa.ArrowException as exc:
                raise ctx.error(file, f"column {col}: cannot read as text: {exc}") from None
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    _check_repeated_header(ctx, file, names, columns, lines)
    return _table(ctx.contract, columns, file, lines, None, None, None)
