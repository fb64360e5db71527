"""A delivered file's shape, before any of its rows are read (ingest.read): an empty file, an
extension that does not match the content (a Parquet file named .csv, an Excel workbook, JSON in
a .csv), and the file's bytes in blocks of physical lines for reading in chunks.
"""
from __future__ import annotations

import codecs
from pathlib import Path

from .columns import ReadContext

EMPTY_HINT = ("a failed export or copy? A month with nothing to deliver is a folder with "
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


def check_content(ctx: ReadContext, path: Path, fmt: str) -> None:
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
        raise ctx.error(file, f"empty file (0 bytes): nothing to read — {EMPTY_HINT}")
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


def blank(lines: list[str]) -> bool:
    return not any(line.strip() for line in lines)


def byte_blocks(ctx: ReadContext, path: Path, chunk_rows: int | None, quoted: bool = True):
    """The file's bytes in blocks of about chunk_rows physical lines (None: the whole file),
    cut after a LF once a non-blank line was seen (the first block holds the header or first
    record) and, for `quoted` (csv), only where the file's count of '"' so far is even (a
    quoted value with line breaks stays in one block; `""` inside quotes counts twice)."""
    if not chunk_rows:
        yield read_bytes(ctx, path)
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


def read_bytes(ctx: ReadContext, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ctx.error(path.name, f"unreadable file: {exc.strerror or exc}") from None
