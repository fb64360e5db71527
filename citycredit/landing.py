"""Landing: find a month's delivery of a source and read it into a RawBatch (SPEC §2).

A delivery is `<landing>/<source_id>/<YYYY-MM>/` with data files (`*.csv` with a header row,
`*.jsonl`, `*.parquet`), `_READY` (the delivery is complete) and an optional `manifest.json`
(`{"row_count": N}`, data rows over all files).

Reading keeps every delivered row — nothing is dropped here. Every row carries
  `_file`   the data file's name,
  `_line`   its 1-based data line (csv: the header line is not counted, so data line n is file
            line n + 1; a record spanning several lines gets the number of its first line; blank
            lines are skipped but still counted, so the number always points into the file;
            parquet: the row number in the file),
  `_raw`    the delivered text (csv record / jsonl line; None for parquet, where validation
            renders a quarantined row from its fields),
  `_error`  a landing-level reason code when the row could not be read into fields at all
            (`encoding`: bytes not decodable in the source's encoding; `unparseable_row`: not a
            JSON object, wrong number of csv fields, broken csv quoting), else None,
  `_extra`  jsonl keys beyond the contract, ';'-joined (validation flags them as
            `forbidden_field` / `unknown_column`), else None.
Contract columns are strings, surrounding whitespace stripped, None for empty or absent.

Problems with a whole file are batch-level and raise DeliveryError naming source, month and file:
an unreadable file, a csv/parquet file with a forbidden column, a column outside the contract or
without a required column, a manifest row count that differs from the rows read.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

__all__ = [
    "Contract", "CONTRACTS", "Delivery", "DeliveryError", "FileStat", "RawBatch", "READY_FILE",
    "MANIFEST_FILE", "META_COLUMNS", "contract_for", "default_forbidden_columns", "find_delivery",
    "read_delivery",
]

READY_FILE = "_READY"
MANIFEST_FILE = "manifest.json"
DATA_SUFFIXES = (".csv", ".jsonl", ".parquet")
META_COLUMNS = ("_file", "_line", "_raw", "_error", "_extra")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# Contracts (SPEC §2.1–2.3)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Contract:
    """The columns of one extract kind: all of them in order, the required ones, the dates."""

    kind: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    dates: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    key: str | None = None  # unique within one delivery (second and later copies are errors)


CONTRACTS: dict[str, Contract] = {
    "findings": Contract(
        kind="findings",
        columns=("record_id", "id_number", "name", "item_code", "level", "quantity",
                 "occurred_on", "valid_until", "status", "case_ref"),
        required=("record_id", "id_number", "item_code", "occurred_on", "status"),
        dates=("occurred_on", "valid_until"),
        decimals=("quantity",),
        key="record_id",
    ),
    "population": Contract(
        kind="population",
        columns=("id_number", "district", "residency", "status"),
        required=("id_number", "district", "residency", "status"),
        key="id_number",
    ),
    "appeals": Contract(
        kind="appeals",
        columns=("appeal_id", "source_id", "record_id", "filed_on", "resolved_on", "outcome"),
        required=("appeal_id", "source_id", "record_id", "filed_on"),
        dates=("filed_on", "resolved_on"),
        key="appeal_id",
    ),
    "optouts": Contract(
        kind="optouts",
        columns=("id_number", "requested_on"),
        required=("id_number", "requested_on"),
        dates=("requested_on",),
    ),
}


def contract_for(source_conf: dict) -> Contract:
    kind = (source_conf or {}).get("kind")
    try:
        return CONTRACTS[kind]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r} (known: {', '.join(CONTRACTS)})") from None


def default_forbidden_columns() -> tuple[str, ...]:
    """`validation.forbidden_columns` of conf/base.yaml (the list the product ships with)."""
    try:
        conf = yaml.safe_load((_PROJECT_ROOT / "conf" / "base.yaml").read_text(encoding="utf-8"))
        return tuple(str(c).lower() for c in conf["validation"]["forbidden_columns"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return ("religion", "ethnicity", "political_affiliation", "biometrics", "fingerprint",
                "face_image", "iris", "dna", "health_condition", "sexual_orientation")


# ------------------------------------------------------------------------------------------------
# Types
# ------------------------------------------------------------------------------------------------

class DeliveryError(Exception):
    """A delivery (or one of its files) cannot be landed at all; the month of this source stops.

    The message names source, month, file and reason; the parts are kept as attributes too.
    """

    def __init__(self, source_id: str, month: str, file: str | None, reason: str):
        self.source_id, self.month, self.file, self.reason = source_id, month, file, reason
        where = f"{source_id} {month}" + (f" {file}" if file else "")
        super().__init__(f"delivery {where}: {reason}")


@dataclass(frozen=True)
class Delivery:
    """One complete delivery folder."""

    source_id: str
    month: str
    path: Path
    files: tuple[str, ...]          # data files, sorted by name
    manifest: dict | None = None    # parsed manifest.json, if any
    ignored: tuple[str, ...] = ()   # _READY, manifest.json, dotfiles, other _-files

    @property
    def fingerprint(self) -> str:
        """sha256 over the data files' names, sizes and modification times (cheap change check)."""
        h = hashlib.sha256()
        for name in self.files:
            st = (self.path / name).stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class FileStat:
    name: str
    format: str   # csv | jsonl | parquet
    rows: int


@dataclass
class RawBatch:
    """Every row of a delivery as delivered: contract columns as strings + META_COLUMNS."""

    source_id: str
    month: str
    kind: str
    contract: Contract
    data: pd.DataFrame
    files: list[FileStat] = field(default_factory=list)
    delivery: Delivery | None = None

    @property
    def landed(self) -> int:
        return len(self.data)


# ------------------------------------------------------------------------------------------------
# Finding a delivery
# ------------------------------------------------------------------------------------------------

def _check_month(month: str) -> None:
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise ValueError(f"month must look like YYYY-MM, got {month!r}")


def find_delivery(landing: Path, source_id: str, month: str) -> Delivery | None:
    """The complete delivery of `source_id` for `month`, or None (no folder, or no `_READY`).

    Raises DeliveryError if the folder holds something that is neither a data file nor one of
    the known control files (nothing in a delivery is silently ignored), or a bad manifest.
    """
    _check_month(month)
    folder = Path(landing) / source_id / month
    if not folder.is_dir() or not (folder / READY_FILE).is_file():
        return None
    files, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith((".", "_")) or name == MANIFEST_FILE:
            ignored.append(name)
        elif entry.is_file() and name.lower().endswith(DATA_SUFFIXES):
            files.append(name)
        else:
            what = "folder" if entry.is_dir() else "file"
            raise DeliveryError(source_id, month, name,
                                f"unexpected {what} in the delivery (data files are "
                                f"{', '.join('*' + s for s in DATA_SUFFIXES)})")
    manifest = None
    if (folder / MANIFEST_FILE).is_file():
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DeliveryError(source_id, month, MANIFEST_FILE, f"unreadable manifest: {exc}") \
                from None
        count = manifest.get("row_count") if isinstance(manifest, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DeliveryError(source_id, month, MANIFEST_FILE,
                                f"manifest must be {{\"row_count\": N}} with N ≥ 0, got "
                                f"{json.dumps(manifest, ensure_ascii=False)[:200]}")
    return Delivery(source_id, month, folder, tuple(files), manifest, tuple(ignored))


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------

def read_delivery(delivery: Delivery, source_conf: dict, *,
                  forbidden_columns: Iterable[str] | None = None) -> RawBatch:
    """Read every data file of the delivery into one RawBatch (rows in file-name, line order).

    `source_conf` is the source's conf/sources.yaml entry (`kind`, optional `encoding`).
    `forbidden_columns` defaults to `validation.forbidden_columns` of conf/base.yaml.
    """
    contract = contract_for(source_conf)
    forbidden = frozenset(c.lower() for c in (forbidden_columns if forbidden_columns is not None
                                              else default_forbidden_columns()))
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
