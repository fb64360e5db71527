"""The landing zone's part of erasure, and landing retention (SPEC §2, §7).

Landing keeps each month's delivery (a rerun or backfill re-lands it), so erasure rewrites the
delivery files that still hold an erased person's rows:

* csv and jsonl: each of the person's records is replaced by an empty line — every other row
  keeps its line number, so bronze, quarantine and the department still agree on file + line,
  and the reader skips empty lines;
* parquet: the person's rows are left out of a rewritten file (rows after them move up one);
* manifest.json: `row_count` lowered by the rows removed, counted by the reader itself
  (citycredit.ingest.read), so a re-landing of the month still reconciles.

A folder's rewritten files and its manifest are replaced together (io.replace_together: staged
in a dot folder a delivery ignores, committed by a journal, then renamed): a process killed at
any moment leaves the delivery as it was or, once the next erasure or landing of the month has
looked at it, as erased — never files without their manifest. A row is the person's when its text holds one of their identity numbers
(an `x` check character matches too), or when it is about one of their findings
(appeals: `source_id` + `record_id`).
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..ingest.delivery import DATA_SUFFIXES, MANIFEST_FILE, Delivery, DeliveryError
from ..io.replace_together import Replacement
from ..months import is_month

__all__ = ["Targets", "FileErased", "erase_from_landing", "erase_from_delivery",
           "old_deliveries", "remove_deliveries"]


@dataclass
class Targets:
    """Whose rows to remove: identity numbers (upper case) → subject_key, and findings
    (source_id, record_id) → subject_key of the person they are about."""

    ids: dict[str, str] = field(default_factory=dict)
    findings: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self):
        self.variants = {v: k for number, k in self.ids.items() for v in (number, number.lower())}
        self._pattern = (re.compile("|".join(map(re.escape, sorted(self.variants))))
                         if self.variants else None)
        self.record_ids = {r for _s, r in self.findings}

    def __bool__(self) -> bool:
        return bool(self.ids or self.findings)

    def needles(self, encoding: str) -> list[bytes]:
        """The identity numbers (both cases of x) and record ids as bytes of `encoding`: a row
        about the targets holds one of them."""
        return sorted({n.encode(encoding, errors="ignore")
                       for n in list(self.variants) + list(self.record_ids)})

    def may_hold(self, data: bytes, encoding: str) -> bool:
        """A cheap first look at a file's bytes: could any row be about the targets?"""
        return any(n in data for n in self.needles(encoding))

    def owner(self, text: str | None, fields: dict | None = None) -> str | None:
        """The subject_key of the person a row is about, or None: an identity number in its
        text, or (fields parsed) the finding it names."""
        if text and self._pattern is not None:
            found = self._pattern.search(text)
            if found:
                return self.variants[found.group(0)]
        if fields and self.findings:
            ref = (str(fields.get("source_id") or "").strip(),
                   str(fields.get("record_id") or "").strip())
            return self.findings.get(ref)
        return None


@dataclass
class FileErased:
    """One delivery file rewritten by an erasure."""

    source_id: str
    month: str
    file: str
    rows_removed: int                       # as the reader counts rows
    owners: Counter                         # subject_key → rows of theirs removed
    manifest: tuple[int, int] | None = None  # row_count before → after, when there is one

    @property
    def place(self) -> str:
        return f"landing/{self.source_id}/{self.month}/{self.file}"


# ---------------------------------------------------------------------------------------------
# rewriting one file
def _byte_lines(data: bytes) -> list[bytes]:
    """Physical lines with their endings (split on LF, as the reader does)."""
    lines = [piece + b"\n" for piece in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _blank(line: bytes) -> bytes:
    return b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""


def _decode(line: bytes, encoding: str) -> str:
    return line.decode(encoding, errors="replace")


def _lines_holding(data: bytes, needles: list[bytes]) -> list[int]:
    """0-based indexes of the physical lines (split on LF) whose bytes hold one of `needles`,
    in order: a search in C over the file, no decoding."""
    hits = set()
    for needle in needles:
        at = data.find(needle) if needle else -1
        while at != -1:
            hits.add(at)
            at = data.find(needle, at + 1)
    indexes, line, counted_to = [], 0, 0
    for at in sorted(hits):
        line += data.count(b"\n", counted_to, at)
        counted_to = at
        if not indexes or indexes[-1] != line:
            indexes.append(line)
    return indexes


def _rewrite_unquoted_csv(data: bytes, encoding: str, targets: Targets
                          ) -> tuple[bytes, Counter]:
    """_rewrite_csv of a file without a quote character or a lone CR, where every physical
    line is one record (the usual delivery, 2.4 M lines for a month's population): only the
    lines holding a target's identity number or record id are decoded and judged, as the
    reader would read each of them."""
    lines = _byte_lines(data)

    def text(k: int) -> str:        # as _rewrite_csv_records and the reader: a BOM is no text
        decoded = _decode(lines[k], encoding)
        return decoded.lstrip("\ufeff") if k == 0 else decoded

    h = 0
    while h < len(lines) and not text(h).strip():
        h += 1
    if h == len(lines):
        return data, Counter()
    try:
        header = [c.strip().lower() for c in next(csv.reader([text(h)]))]
    except csv.Error:
        return data, Counter()
    out, owners = None, Counter()
    for k in _lines_holding(data, targets.needles(encoding)):
        if k <= h or k >= len(lines):
            continue
        record = _decode(lines[k], encoding)
        if not record.strip():
            continue
        try:
            fields = next(csv.reader([record]), None)
        except csv.Error:           # e.g. a field over csv's size limit: judged by its text
            fields = None
        named = dict(zip(header, fields)) if fields is not None and len(fields) == len(header) \
            else None
        who = targets.owner(record, named)
        if who:
            owners[who] += 1
            out = out if out is not None else list(lines)
            out[k] = _blank(lines[k])
    return (b"".join(out) if out is not None else data), owners


def _unquoted(data: bytes) -> bool:
    """No quote character and no CR outside a CRLF: each physical line is one csv record."""
    return b'"' not in data and _no_lone_cr(data)


def _no_lone_cr(data: bytes) -> bool:
    """No CR outside a CRLF: the reader's lines (universal newlines) are the LF-split lines."""
    return data.count(b"\r") == data.count(b"\r\n")


def _rewrite_csv(data: bytes, encoding: str, targets: Targets) -> tuple[bytes, Counter]:
    """The csv without the targets' records (their lines blanked), and whose they were. Records
    are found as the reader finds them: a quoted value may span lines; a record that does not
    parse to the header's width is judged line by line."""
    if _unquoted(data):
        return _rewrite_unquoted_csv(data, encoding, targets)
    return _rewrite_csv_records(data, encoding, targets)


def _rewrite_csv_records(data: bytes, encoding: str, targets: Targets
                         ) -> tuple[bytes, Counter]:
    """_rewrite_csv of any csv: every record read and judged."""
    lines = _byte_lines(data)
    text = [_decode(line, encoding) for line in lines]
    if text:
        text[0] = text[0].lstrip("\ufeff")
    h = 0
    while h < len(text) and not text[h].strip():
        h += 1
    if h == len(text):
        return data, Counter()
    try:
        header = [c.strip().lower() for c in next(csv.reader([text[h]]))]
    except csv.Error:
        return data, Counter()
    body = text[h + 1:]
    out = list(lines)
    owners: Counter = Counter()

    def judge(first: int, last: int, fields: list | None) -> None:
        record = "".join(body[first:last])
        if not record.strip():
            return
        named = dict(zip(header, fields)) if fields is not None and len(fields) == len(header) \
            else None
        who = targets.owner(record, named)
        if who:
            owners[who] += 1
            for k in range(first, last):
                out[h + 1 + k] = _blank(lines[h + 1 + k])

    def single(k: int) -> None:
        try:
            fields = next(csv.reader([body[k]]), None)
        except csv.Error:
            fields = None
        judge(k, k + 1, fields)

    reader = csv.reader(body, strict=False)
    previous = 0
    while True:
        try:
            fields, error = next(reader), False
        except StopIteration:
            break
        except csv.Error:
            fields, error = None, True
        first, previous = previous, reader.line_num
        if previous - first <= 0:
            break
        if previous - first == 1 or (not error and len(fields) == len(header)):
            judge(first, previous, None if error else fields)
        else:                       # a broken multi-line record: the reader takes it line by line
            for k in range(first, previous):
                single(k)
    return b"".join(out), owners


def _rewrite_jsonl(data: bytes, targets: Targets) -> tuple[bytes, Counter]:
    """The JSON Lines file without the targets' records (their lines blanked), and whose they
    were. Only the lines whose bytes hold a target's identity number or record id can be about
    one (Targets.owner), so only they are parsed and judged."""
    lines = _byte_lines(data)
    out, owners = None, Counter()
    for k in _lines_holding(data, targets.needles("utf-8")):
        if k >= len(lines):
            continue
        text = _decode(lines[k], "utf-8").strip()
        if not text:
            continue
        fields = None
        try:
            obj = json.loads(text)
            if isinstance(obj, dict):
                fields = {str(key).strip().lower(): v for key, v in obj.items()}
        except ValueError:
            pass
        who = targets.owner(text, fields)
        if who:
            owners[who] += 1
            out = out if out is not None else list(lines)
            out[k] = _blank(lines[k])
    return (b"".join(out) if out is not None else data), owners


def _text_columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    out = {}
    for name, column in zip(table.column_names, table.columns):
        t = column.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            out[name.strip().lower()] = column
    return out


def _values_holding(column: pa.ChunkedArray, needles: list[bytes]) -> pa.ChunkedArray:
    """Which values of a string column hold one of `needles` (pc.match_substring for many
    needles at once; null → False). Each chunk's UTF-8 data is searched as one byte string
    (bytes.find, C speed: a regex per value was half of landing erasure's time at full scale)
    and each occurrence mapped to its row by the offsets; one that spans two values is none."""
    out = []
    for chunk in column.chunks:
        hit = np.zeros(len(chunk), dtype=bool)
        data = chunk.buffers()[2] if len(chunk) else None
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[
            chunk.offset:chunk.offset + len(chunk) + 1] if data is not None else None
        # no value long enough to hold a needle (dates, codes): nothing to search
        if data is not None and np.diff(offsets).max() >= min(map(len, needles)):
            text, start, end = data.to_pybytes(), int(offsets[0]), int(offsets[-1])
            for needle in needles:
                at = text.find(needle, start, end)
                while at != -1:
                    row = int(np.searchsorted(offsets, at, side="right")) - 1
                    row_end = int(offsets[row + 1])
                    if at + len(needle) <= row_end:
                        hit[row] = True
                        at = text.find(needle, row_end, end)
                    else:
                        at = text.find(needle, at + 1, end)
            if chunk.null_count:
                hit &= np.asarray(chunk.is_valid())
        out.append(pa.array(hit, pa.bool_()))
    return pa.chunked_array(out, pa.bool_())


def _rewrite_parquet(path: Path, targets: Targets) -> tuple[pa.Table | None, Counter]:
    """The file's rows less the targets' (None when there is none of theirs)."""
    table = pq.read_table(path)
    if not table.num_rows:
        return None, Counter()
    texts = _text_columns(table)
    hit = pa.chunked_array([pa.array([False] * table.num_rows)])
    if targets.variants:
        needles = sorted(v.encode("utf-8") for v in targets.variants)
        for column in texts.values():
            hit = pc.or_(hit, _values_holding(column, needles))
    if targets.findings and "record_id" in texts and "source_id" in texts:
        refs = pc.binary_join_element_wise(pc.utf8_trim_whitespace(texts["source_id"]),
                                           pc.utf8_trim_whitespace(texts["record_id"]), "\x1f")
        wanted = pa.array(sorted(f"{s}\x1f{r}" for s, r in targets.findings), pa.string())
        hit = pc.or_(hit, pc.fill_null(pc.is_in(refs, value_set=wanted), False))
    if not pc.any(hit).as_py():
        return None, Counter()
    owners: Counter = Counter()
    for row in table.filter(hit).to_pylist():
        named = {str(k).strip().lower(): v for k, v in row.items()}
        text = "\x1f".join(str(v) for v in named.values() if isinstance(v, str))
        owners[targets.owner(text, named) or "?"] += 1
    return table.filter(pc.invert(hit)), owners


def _count_rows(folder: Path, name: str, source_id: str, month: str, conf: dict) -> int | None:
    """Rows of one file as landing counts them (None when the file cannot be landed at all)."""
    from ..ingest.read import read_delivery

    try:
        batch = read_delivery(Delivery(source_id, month, folder, (name,)), conf)
    except DeliveryError:
        return None
    return batch.landed


def _erase_file(folder: Path, name: str, source_id: str, month: str, conf: dict,
                targets: Targets, replacement: Replacement) -> FileErased | None:
    """The file without the targets' rows, staged in `replacement` (None: none of theirs)."""
    path = folder / name
    suffix = path.suffix.lower()
    encoding = (conf.get("encoding") or "utf-8") if suffix == ".csv" else "utf-8"
    if suffix in (".csv", ".jsonl"):
        data = path.read_bytes()
        if not targets.may_hold(data, encoding):
            return None
        new, owners = (_rewrite_csv(data, encoding, targets) if suffix == ".csv"
                       else _rewrite_jsonl(data, targets))
        if not owners:
            return None
        replacement.path(name).write_bytes(new)
        if _unquoted(data) if suffix == ".csv" else _no_lone_cr(data):
            # one record a line, each blanked line a non-blank record: the reader counts one
            # row fewer for each (reading a month's population twice cost ~1 s a file)
            removed = sum(owners.values())
        else:
            # a text file's rows as landing counts them (blank lines, quoted line breaks) are
            # what its manifest counted: read before and after
            before = _count_rows(folder, name, source_id, month, conf)
            after = _count_rows(replacement.stage, name, source_id, month, conf)
            removed = (before - after) if before is not None and after is not None \
                else sum(owners.values())
    else:
        try:
            kept, owners = _rewrite_parquet(path, targets)
        except (pa.ArrowException, OSError):
            return None       # not a readable parquet file: landing refuses it anyway
        if kept is None:
            return None
        # a Parquet row is a landed row: the rows filtered out are the rows removed
        removed = sum(owners.values())
        pq.write_table(kept, replacement.path(name))
    return FileErased(source_id, month, name, removed, owners)


def _adjust_manifest(folder: Path, removed: int,
                     replacement: Replacement) -> tuple[int, int] | None:
    """The manifest's row_count lowered by `removed`, staged in `replacement`."""
    path = folder / MANIFEST_FILE
    if not removed or not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        before = int(manifest["row_count"])
    except (ValueError, KeyError, TypeError, OSError):
        return None          # an unreadable manifest is refused at landing anyway
    manifest["row_count"] = max(0, before - removed)
    replacement.path(MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    return before, manifest["row_count"]


def erase_from_landing(landing: Path, sources: dict[str, dict], targets: Targets,
                       kinds_with_people: set[str]) -> list[FileErased]:
    """Rewrite every delivery file under `landing` (all months) of the sources whose kind holds
    identity numbers or rows about findings (`kinds_with_people`, from the catalogue) without
    the targets' rows; adjust each manifest. Returns the files rewritten."""
    if not targets:
        return []
    folders = []
    for source_id, conf in sources.items():
        if conf["kind"] not in kinds_with_people:
            continue
        root = Path(landing) / source_id
        if root.is_dir():
            folders += [(folder, source_id, conf) for folder in sorted(
                p for p in root.iterdir() if p.is_dir() and is_month(p.name))]
    # a folder at a time on each core: Arrow's Parquet reads, filters and writes and bytes.find
    # let go of the GIL (36 months of a 2.4 M-person population are ~100 files of 0.6 s each)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        erased = list(pool.map(lambda job: erase_from_delivery(*job, targets), folders))
    return [result for results in erased for result in results]


def erase_from_delivery(folder: Path, source_id: str, conf: dict, targets: Targets
                        ) -> list[FileErased]:
    """Rewrite one delivery folder's data files without the targets' rows; adjust its
    manifest; files and manifest replaced together (module docstring). An earlier erasure of
    the folder that was killed is completed or undone first. Returns the files rewritten."""
    erased, removed = [], 0
    with Replacement(folder) as replacement:
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and not entry.name.startswith((".", "_")) \
                    and entry.name.lower().endswith(DATA_SUFFIXES):
                result = _erase_file(folder, entry.name, source_id, folder.name, conf, targets,
                                     replacement)
                if result is not None:
                    erased.append(result)
                    removed += result.rows_removed
        manifest = _adjust_manifest(folder, removed, replacement)   # renamed last
        replacement.commit()
    for result in erased:
        result.manifest = manifest
    return erased


# ---------------------------------------------------------------------------------------------
# retention
def old_deliveries(landing: Path, sources: dict[str, dict], before_month: str) -> list[Path]:
    """Delivery folders `<landing>/<source>/<YYYY-MM>` of configured sources older than
    `before_month`."""
    found = []
    for source_id in sources:
        root = Path(landing) / source_id
        if root.is_dir():
            found += sorted(p for p in root.iterdir()
                            if p.is_dir() and is_month(p.name) and p.name < before_month)
    return found


def remove_deliveries(folders: list[Path]) -> list[Path]:
    """Delete delivery folders (landing retention: privacy.task.cleanup chooses those whose
    files were all landed; bronze, quarantine and staging keep what a rerun or backfill of
    those months needs)."""
    for folder in folders:
        shutil.rmtree(folder)
    return folders
