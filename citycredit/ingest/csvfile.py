"""Reading a csv file (ingest.read): decoded in the source's declared encoding
(ingest.encodings), the header judged (ingest.columns), records read with Python's csv module;
a record that cannot be read into the header's fields becomes a row with an `_error`
(`encoding`, `unparseable_row`) instead of being lost.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columns import ReadContext, check_repeated_header
from .encodings import decode_lines, redacted_csv_row
from .rawtable import file_table, recovered_id_numbers, sparse
from .shapes import EMPTY_HINT, blank, byte_blocks


_OTHER_SEPARATORS = (("\t", "tabs"), (";", "semicolons"), ("|", "vertical bars"))

#: the longest value with line breaks a csv record may hold: no contract column takes free text
#: longer than this (case_ref, the one free-text column, names a case); a quoted value that runs
#: longer over several lines is a quote that was never closed, swallowing the lines after it
LONGEST_MULTILINE_VALUE = 2_000


#: one physical line whose quoting is intact (the usual line: matched in C, no Python per
#: character): fields unquoted (not starting with a quote) or quoted with `""` inside
_FIELD = r'(?:[^",\r\n][^,\r\n]*|"(?:[^"]|"")*"|)'
_WELL_QUOTED = re.compile(_FIELD + r"(?:," + _FIELD + r")*\r?\n?")


def line_quote_problem(line: str, header: list[str]) -> str | None:
    """quote_problem of one physical line, with a fast look first."""
    if '"' not in line or _WELL_QUOTED.fullmatch(line):
        return None
    return quote_problem(line, header)


def quote_problem(text: str, header: list[str]) -> str | None:
    """What is wrong with the quoting of one csv record's text (one or more physical lines),
    read as RFC 4180 writes it: a quote opens a value only as its first character, `""` is a
    quote inside a quoted value, and a closing quote is followed by a comma or the end of the
    record. None when the quoting is intact. Names the column, never the value."""
    col, i, n = 0, 0, len(text)

    def name(k: int) -> str:
        return header[k] if k < len(header) else f"column {k + 1}"

    while i < n:
        if text[i] != '"':                         # an unquoted value: up to the next comma
            j = text.find(",", i)
            if j < 0:
                return None
            col, i = col + 1, j + 1
            continue
        j = i + 1
        while True:
            j = text.find('"', j)
            if j < 0:
                typo = any(c in text[i:] for c in "\u201c\u201d\uff02")
                return (f"a quote (\") opens the value of {name(col)} and is never closed"
                        + (" — it ends with a typographic quote (” or “) instead of \""
                           if typo else ""))
            if text[j + 1:j + 2] == '"':           # "" inside a quoted value
                j += 2
                continue
            break
        after = text[j + 1:j + 2]
        if after in ("", "\r", "\n"):
            return None
        if after != ",":
            return (f"the value of {name(col)} is quoted but goes on after its closing quote "
                    "(a quote inside a quoted value is written \"\")")
        col, i = col + 1, j + 2
    return None


def _joined_lines(record: list[str], fields: list[str], header: list[str]) -> str | None:
    """Why a record read over several physical lines is not a quoted value with legitimate
    line breaks, or None when it is: its quoting is broken (quote_problem), a line inside it
    reads as a whole row of its own, or its multi-line value is longer than any contract column
    allows (LONGEST_MULTILINE_VALUE)."""
    problem = quote_problem("".join(record), header)
    if problem:
        return problem
    width = len(header)
    for line in record[1:-1]:
        try:
            inner = next(csv.reader([line], strict=False), None)
        except csv.Error:
            inner = None
        if inner is not None and len(inner) == width:
            return "a quoted value runs over lines that read as rows of their own"
    for col, value in zip(header, fields):
        if "\n" in value and len(value) > LONGEST_MULTILINE_VALUE:
            return (f"the quoted value of {col} runs over {value.count(chr(10)) + 1} lines and "
                    f"{len(value)} characters, more than any contract column allows "
                    f"({LONGEST_MULTILINE_VALUE})")
    return None


def read_csv_file(ctx: ReadContext, path: Path, encoding: str, chunk_rows: int | None):
    """The file's rows as tables of about chunk_rows rows (None: one table), read block by
    block (byte_blocks): the header is judged in the first block, the encoding by the file's
    head (encodings.decode_lines)."""
    file = path.name
    declared = f"conf/sources.yaml declares {encoding} for {ctx.source_id}"
    header = None
    before = 0            # physical lines of the file before the block
    for block in byte_blocks(ctx, path, chunk_rows):
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


def _csv_header(ctx: ReadContext, file: str, encoding: str, lines: list[str], bad: set[int]
                ) -> tuple[list[str], int]:
    """The header (names lower-cased, checked) and its index: the first non-blank line."""
    if blank(lines):
        raise ctx.error(file, f"empty file (blank lines only): no header row — {EMPTY_HINT}")
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


def _csv_table(ctx: ReadContext, file: str, encoding: str, header: list[str], data: list[str],
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
                and (not rows or min(map(len, rows)) == max(map(len, rows)) == width)
                and not any(line_quote_problem(line, header) for line in data)):
            columns = {col: [r[j] for r in rows] for j, col in enumerate(header)}
            check_repeated_header(ctx, file, header, columns,
                                   np.arange(shift, shift + len(rows), dtype=np.int64))
            raw = pc.utf8_rtrim(pa.array(data, pa.string()), characters="\r\n")
            lines_no = np.arange(shift, shift + len(rows), dtype=np.int64)
            return file_table(ctx.contract, columns, file, lines_no, raw, None, None)
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
        fields = problem = None
        if err is None:
            try:
                fields = next(csv.reader([line]), None)
            except csv.Error:
                fields = None
            problem = line_quote_problem(line, header)
            if problem or fields is None or len(fields) != width:
                err = "unparseable_row"
        if err:
            errors[len(records)] = err
            details[len(records)] = problem or broken(fields, err)
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
            problem = None
            if bad_data and first in bad_data:
                err = "encoding"
            else:
                problem = line_quote_problem(data[first], header)
                if problem or err is not None or len(fields) != width:
                    err = "unparseable_row"
            if err:
                errors[len(records)] = err
                details[len(records)] = problem or broken(fields, err)
                records.append(none_row)
            else:
                records.append(fields)
            out_lines.append(first + shift)
            raws.append(data[first])
            continue
        if span <= 0:
            break
        is_broken = err is not None or len(fields) != width or (
            bad_data and any(k in bad_data for k in range(first, cur))) or (
            _joined_lines(data[first:cur], fields, header) is not None)
        if is_broken:
            # a stray quote swallowed the following lines (or a bad byte sits inside): judge
            # each line on its own, so good rows after it are not lost inside one broken record
            # and the line with the damaged quote is quarantined naming it (issue 23)
            for k in range(first, cur):
                single(k)
            continue
        records.append(fields)          # a quoted value with line breaks
        out_lines.append(first + shift)
        raws.append("".join(data[first:cur]))

    columns = {col: [r[j] for r in records] for j, col in enumerate(header)}
    check_repeated_header(ctx, file, header, columns, out_lines)
    recovered = recovered_id_numbers({pos: raws[pos] for pos in errors})
    for pos in errors:      # rows that could not be read into fields (SPEC §7)
        raws[pos] = redacted_csv_row(raws[pos], header)
    raw = pc.utf8_rtrim(pa.array(raws, pa.string()), characters="\r\n")
    return file_table(ctx.contract, columns, file, out_lines, raw, sparse(errors, len(records)),
                      None, sparse(details, len(records)), recovered)
