"""Reading a JSON Lines file (ingest.read): UTF-8 (RFC 8259), one JSON object per line; a
JSON array or one pretty-printed document is refused as a whole, a line that is not an object
becomes a row with an `_error`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from .columns import ReadContext
from .encodings import decode_lines, redacted_json_row
from .rawtable import file_table, recovered_id_numbers, sparse
from .shapes import EMPTY_HINT, blank, byte_blocks, read_bytes
from .typed import plain_decimal


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


def read_jsonl_file(ctx: ReadContext, path: Path, chunk_rows: int | None):
    """JSON Lines are UTF-8 (RFC 8259), one JSON object per line; numbers are kept as their
    literal text, except a quantity's, which becomes its plain decimal text (`12.50`, `1.25e1`
    → `12.5`). Tables of about chunk_rows rows (None: one table), read block by block."""
    file = path.name
    declared = "JSON Lines are UTF-8 (RFC 8259)"

    def refuse(reason):
        return ctx.error(file, reason)

    def whole_file() -> list[str]:      # only for the message of a file that is not JSON Lines
        return decode_lines(read_bytes(ctx, path), "utf-8", declared, refuse)[0]

    before = None         # physical lines of the file before the block
    for block in byte_blocks(ctx, path, chunk_rows, quoted=False):
        lines, bad = decode_lines(block, "utf-8", declared, refuse, head=before is None)
        start = None
        if before is None:
            start = _jsonl_head(ctx, file, lines, bad, whole_file)
            before = 0
        yield _jsonl_table(ctx, file, lines, bad, before, start, whole_file)
        before += len(lines)


def _jsonl_head(ctx: ReadContext, file: str, lines: list[str], bad: set[int],
                whole_file) -> int:
    """The index of the file's first non-blank line, which must start a JSON object; a file
    that is blank, a JSON array or another JSON document is refused as a whole."""
    if blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no records — {EMPTY_HINT}")
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


def _jsonl_table(ctx: ReadContext, file: str, lines: list[str], bad: set[int], before: int,
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
    return file_table(ctx.contract, columns, file, out_lines, raws, sparse(errors, n),
                  sparse(extras, n), sparse(details, n), recovered_id_numbers(unreadable))


def _refuse_json_document(ctx: ReadContext, file: str, lines: list[str]) -> None:
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
