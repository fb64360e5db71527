"""The encoding of a delivered text file: decoded as declared, or refused when it is in another
encoding (never guessed into garbled text, SPEC §2), and what quarantine keeps of a row that
cannot be decoded (SPEC §7).

Why refuse rather than detect: a detector (charset-normalizer, chardet) guesses from statistics,
and on the short texts of an extract — a name, a case reference — a guess is often wrong, which
is exactly the garbling this prevents. Whether a file is UTF-8 is not a guess: UTF-8 is
self-synchronising, and real UTF-8 Chinese text is made of three-byte sequences that text in
GB 18030 almost never forms by chance. So the declared encoding stays the contract, and a file
that contradicts it stops with both encodings named; the department re-exports, or the
credit centre corrects conf/sources.yaml.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from typing import Callable

from ..identity import mask_id_number, mask_id_numbers_in


_UTF8 = {"utf-8", "utf8", "utf-8-sig"}
_TEXT_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_BOMS = {"utf-8": codecs.BOM_UTF8, "gb18030": b"\x84\x31\x95\x33"}
#: a character outside U+0000–U+07FF: UTF-8 writes it in three or four bytes. Text in another
#: encoding (GB 18030) that happens to be valid UTF-8 almost never forms such sequences, real
#: UTF-8 Chinese text always does — so it is the evidence that a file is UTF-8.
_WIDE_CHAR = re.compile("[^\x00-\u07ff]")


def _is_utf8(norm: str) -> bool:
    return norm in _UTF8


#: how much of a file the UTF-8 evidence reads: enough lines to judge, bounded time
_EVIDENCE_BYTES = 4 << 20
_EVIDENCE_LINES = 5000


def _utf8_evidence(data: bytes) -> tuple[int, int, int | None]:
    """Over the lines with non-ASCII bytes (the first _EVIDENCE_LINES of them, in the first
    _EVIDENCE_BYTES): (lines that are UTF-8 with a character beyond U+07FF, lines that are not
    UTF-8, 1-based number of the first such line)."""
    head = data[:_EVIDENCE_BYTES]
    if len(data) > len(head):
        head = head[:head.rfind(b"\n") + 1] or head
    utf8 = not_utf8 = seen = 0
    first = None
    for i, line in enumerate(head.decode("utf-8", errors="replace").split("\n")):
        if line.isascii():
            continue
        seen += 1
        if "\ufffd" in line:
            not_utf8 += 1
            first = first or i + 1
        elif _WIDE_CHAR.search(line):
            utf8 += 1
        if seen == _EVIDENCE_LINES:
            break
    return utf8, not_utf8, first


def decode_lines(data: bytes, encoding: str, declared: str,
                 refuse: Callable[[str], Exception], *, head: bool = True
                 ) -> tuple[list[str], set[int]]:
    """Physical lines (with their line endings) and the 0-based indexes of undecodable ones.

    A file in another encoding than the one declared is refused with both named: a file that is
    UTF-8 where another encoding is declared (decoding it as GB 18030 would not fail — it would
    garble it), or one whose lines with non-ASCII text are mostly not UTF-8 where UTF-8 is
    declared; UTF-16/32 text too. Otherwise the whole file is decoded at once when it can be
    (the usual case), else line by line, splitting the bytes on LF — safe for UTF-8 and
    GB 18030, where 0x0A never occurs inside a multi-byte character — so that one bad row
    cannot sink the file. `declared` says who declares the encoding, for the message
    ("conf/sources.yaml declares gb18030 for public_security"); `refuse(reason)` makes the
    file-level error that is raised. `head=False`: `data` is a later block of a file read in
    blocks (cut after a LF), whose head was judged already: it is only decoded.
    """
    if not head:
        return _decoded_lines(data, "utf-8" if _is_utf8(codecs.lookup(encoding).name)
                              else encoding)
    for bom, name in _TEXT_BOMS:
        if data.startswith(bom):
            raise refuse(f"the file is {name} text (a spreadsheet's 'Unicode text' "
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
            raise refuse(f"the file is UTF-8, but {declared}: read as {encoding} its "
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
            raise refuse(f"the file is not UTF-8{' (it reads as GB 18030)' if gb else ''}, but "
                         f"{declared} ({not_utf8} of {not_utf8 + utf8} lines with "
                         f"non-ASCII text read are not UTF-8, the first on physical line {first}, "
                         "counting a csv header) — "
                         "deliver UTF-8"
                         + (", or declare gb18030 in conf/sources.yaml"
                            if gb and "conf/sources.yaml" in declared else ""))
    return _lines_one_by_one(data, codec)


def _decoded_lines(data: bytes, codec: str) -> tuple[list[str], set[int]]:
    """decode_lines after the file-level checks: at once when the bytes decode, else line by
    line (split on LF), undecodable lines replaced and their indexes returned."""
    if data.isascii():
        return io.StringIO(data.decode("ascii"), newline="").readlines(), set()
    try:
        return io.StringIO(data.decode(codec), newline="").readlines(), set()
    except UnicodeDecodeError:
        return _lines_one_by_one(data, codec)


def _lines_one_by_one(data: bytes, codec: str) -> tuple[list[str], set[int]]:
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


#: what is left of a row that could not be read into fields (undecodable, unparseable) in
#: quarantine: identity numbers masked, the name removed, undecodable bytes and — where the
#: fields cannot be told apart — any other non-ASCII text (where a name may hide) as '?'
_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")
_UNDECODED = re.compile("\ufffd+")


def _redacted_text(text: str) -> str:
    text = mask_id_numbers_in(text)
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
            value = _UNDECODED.sub("?", value)
        out[key] = value
    return out


def redacted_csv_row(line: str, header: list[str]) -> str:
    """A csv row that could not be read into fields, as quarantine keeps it (SPEC §7): its
    fields with the identity number masked and the name removed; a row that does not split
    into the header's fields keeps only its ASCII text, identity-number-like runs masked."""
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


def redacted_json_row(line: str) -> str:
    """A jsonl line that could not be read into fields, as quarantine keeps it: the object's
    keys with the identity number masked and no name, or (not an object) `redacted_csv_row`'s
    fallback."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return _redacted_text(line)
    return json.dumps(_redacted_fields(obj), ensure_ascii=False)
