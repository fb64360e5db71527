"""The privacy scan (issue "Privacy" item 5): where, anywhere on disk, is a person still held?

Every file under the warehouse and the landing zone is read — not only the tables' current
snapshots: old Parquet files left behind, `_staging-*` folders, the Delta logs and checkpoints,
the GX results and Data Docs pages — and every place holding the person's identity number or
subject key is listed (table, file, column). Parquet files are read column by column, every
string leaf (nested ones too: checkpoint statistics); any other file is searched as bytes (logs,
JSON, HTML, csv in utf-8 or gb18030 alike: the numbers and keys are ASCII).

A value matches when it equals one of the searched strings, or contains one (raw text, JSON
statistics): an identity number in upper or lower case (`x` check character), a subject key in
lower or upper case. Many persons are searched in one pass (needles_for_many): every file is
read once, every text column searched once for all of them. Statistics and bloom filters are
not used to skip files: they can tell that a key is not *equal* to a value, not that it is not
*inside* one. Files of the erasure record (privacy/suppression_list, privacy/erasure_log)
and the lookup audit log (`lookup/audit.sqlite`: the legal trace of who looked a person up, kept
by erasure — README "Lookups") are reported apart as allowed places: the key belongs there.
The policy reports folder (`policy.reports`) is searched too.
"""
from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..identity import normalise_id_number

__all__ = ["Place", "ScanResult", "scan_for", "needles_for"]

_CHUNK = 64 << 20          # bytes of a non-Parquet file searched at a time
_PARQUET_MAGIC = b"PAR1"
_DICTIONARY_BYTES = 4      # below this many bytes a value, a text column is read as a dictionary


@dataclass(frozen=True)
class Place:
    """One place holding a person: an area (warehouse | landing | reports), the table (or
    folder), the file (relative to the area), the column ('-' for a file searched as bytes),
    what was found (identity number | subject key), how many values (or occurrences), whether
    it is an allowed place (erasure record, audit log), and which person searched for."""

    area: str
    table: str
    file: str
    column: str
    found: str
    count: int
    erasure_record: bool
    person: int = 1            # which of the persons searched (their order in the input)


@dataclass
class ScanResult:
    places: list[Place] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def outside_record(self) -> list[Place]:
        return [p for p in self.places if not p.erasure_record]

    @property
    def clean(self) -> bool:
        """Nothing found outside the suppression list and the erasure log."""
        return not self.outside_record

    def as_dict(self) -> dict:
        return {"clean": self.clean, "files": self.files, "bytes": self.bytes,
                "seconds": self.seconds, "places": [asdict(p) for p in self.places]}


def needles_for_many(persons: list[tuple[str | None, str | None]]
                     ) -> dict[str, tuple[str, int]]:
    """The strings searched for → (what they are, person number 1…) for many persons at once:
    `persons` is a list of (identity number, subject key), either may be None."""
    needles: dict[str, tuple[str, int]] = {}
    for number, (id_number, subject_key) in enumerate(persons, start=1):
        for needle, kind in needles_for(id_number, subject_key).items():
            needles.setdefault(needle, (kind, number))
    return needles


def needles_for(id_number: str | None, subject_key: str | None) -> dict[str, str]:
    """The strings searched for → what they are."""
    needles = {}
    if id_number:
        # identity's one normal form (invisible characters a list saved by Notepad or Excel
        # carries — a BOM, a zero-width space — trimmed): a stray one would match nothing
        number = normalise_id_number(id_number)
        for variant in {number.upper(), number.lower()}:
            needles[variant] = "identity number"
    if subject_key:
        key = subject_key.strip()
        for variant in {key.lower(), key.upper()}:
            needles[variant] = "subject key"
    return needles


#: up to this many needles (a few persons: 4 strings each) a column is searched with RE2
#: expressions (~450 MB per CPU-second here); more would blow up RE2's DFA, so many persons are
#: searched with one Aho-Corasick automaton over the column's bytes instead (~100–300 MB per
#: CPU-second whatever the number of needles: ahocorasick-rs)
_REGEX_NEEDLES = 32


class _Matcher:
    """Finds the needles in string arrays and byte files. `needles`: string → kind (one person)
    or string → (kind, person number) (many persons, see needles_for_many)."""

    def __init__(self, needles: dict):
        self.needles = {n: (v, 1) if isinstance(v, str) else tuple(v) for n, v in needles.items()}
        self.ordered = sorted(self.needles, key=len, reverse=True)
        self.longest = max(map(len, self.needles))
        if len(self.ordered) <= _REGEX_NEEDLES:
            self.pattern = "|".join(re.escape(n) for n in self.ordered)
            self.bytes_regex = re.compile(self.pattern.encode())
            self.automaton = None
        else:
            import ahocorasick_rs

            self.pattern = self.bytes_regex = None
            self.automaton = ahocorasick_rs.BytesAhoCorasick(
                [n.encode() for n in self.ordered],
                implementation=ahocorasick_rs.Implementation.DFA)

    def in_column(self, array: pa.Array) -> dict[tuple[str, int], int]:
        """Values of one string array that equal or contain a needle → values per (kind found,
        person). One pass over the column (equality is containment too); only the few values
        that match are looked at in Python."""
        if len(array) == 0 or array.null_count == len(array):
            return {}
        if pa.types.is_dictionary(array.type):   # look at the values once; rows only if needed
            return (self.in_column(array.dictionary_decode())
                    if self.in_column(array.dictionary) else {})
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            # binary, and the string views delta-rs writes: compared as plain UTF-8 text
            array = _as_text(array)
        if self.automaton is not None:
            return self._in_bytes_of(array)
        found = pc.fill_null(pc.match_substring_regex(array, self.pattern), False)
        if not pc.any(found).as_py():
            return {}
        return self._count(array.filter(found).to_pylist())

    def _count(self, values) -> dict[tuple[str, int], int]:
        counts: dict[tuple[str, int], int] = {}
        for value in values:
            for what in self.what(value):
                counts[what] = counts.get(what, 0) + 1
        return counts

    def _in_bytes_of(self, array: pa.Array) -> dict[tuple[str, int], int]:
        """The automaton over the column's value bytes at once; a match is a value's when it
        lies within one value (not across two)."""
        width = np.int64 if pa.types.is_large_string(array.type) else np.int32
        buffers = array.buffers()
        offsets = np.frombuffer(buffers[1], dtype=width)[array.offset:array.offset + len(array) + 1]
        start, end = int(offsets[0]), int(offsets[-1])
        data = buffers[2]
        if data is None or end <= start:
            return {}
        haystack = memoryview(data).cast("B")[start:end]     # bytes, as the automaton wants
        matches = self.automaton.find_matches_as_indexes(haystack, overlapping=True)
        if not matches:
            return {}
        rows = set()
        for _needle, begin, finish in matches:
            row = int(np.searchsorted(offsets, begin + start, side="right")) - 1
            if finish + start <= offsets[row + 1]:
                rows.add(row)
        if not rows:
            return {}
        return self._count(array.take(pa.array(sorted(rows), pa.int64())).to_pylist())

    def what(self, text) -> set[tuple[str, int]]:
        """(kind, person) of every needle in `text` (overlapping ones too)."""
        text = str(text)
        return {self.needles[n] for n in self.needles if n in text}

    def in_bytes(self, path: Path) -> dict[tuple[str, int], int]:
        counts: dict[tuple[str, int], int] = {}
        overlap = self.longest - 1
        with open(path, "rb") as handle:
            tail = b""
            while True:
                block = handle.read(_CHUNK)
                if not block:
                    break
                data = tail + block
                if self.automaton is not None:
                    found = [(data[b:e], e) for _i, b, e in
                             self.automaton.find_matches_as_indexes(data, overlapping=True)]
                else:
                    found = [(m.group(0), m.end()) for m in self.bytes_regex.finditer(data)]
                for needle, finish in found:
                    if finish > len(tail):       # not already counted in the previous block
                        what = self.needles[needle.decode()]
                        counts[what] = counts.get(what, 0) + 1
                tail = data[-overlap:] if overlap else b""
        return counts


def _as_text(array: pa.Array) -> pa.Array:
    t = array.type
    if pa.types.is_string_view(t):
        return array.cast(pa.string())
    if pa.types.is_binary_view(t):
        array = array.cast(pa.binary())
    large = pa.types.is_large_binary(array.type)
    return array.view(pa.large_string() if large else pa.string())


_TEXT_TESTS = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
               pa.types.is_large_binary, pa.types.is_string_view, pa.types.is_binary_view)


def _is_text(t: pa.DataType) -> bool:
    return any(test(t) for test in _TEXT_TESTS)


def _leaves(array: pa.Array, name: str):
    """(column path, string-ish leaf array) of a possibly nested array."""
    t = array.type
    if isinstance(array, pa.ChunkedArray):
        for chunk in array.chunks:
            yield from _leaves(chunk, name)
        return
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _leaves(array.field(i), f"{name}.{t.field(i).name}")
    elif pa.types.is_map(t):
        yield from _leaves(array.keys, f"{name}.key")
        yield from _leaves(array.items, f"{name}.value")
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _leaves(array.flatten(), name)
    elif _is_text(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type)):
        yield name, array


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _has_text(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _has_text(t.key_type) or _has_text(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_text(t.value_type)
    return _is_text(t)


def _in_parquet(path: Path, matcher: _Matcher) -> dict[tuple[str, tuple], int] | None:
    """(column, (kind, person)) → values found, row group by row group, only the columns that
    hold text (nested ones too); None if not readable Parquet."""
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        columns = [f.name for f in schema if _has_text(f.type)]
        if parquet.metadata.num_row_groups:
            # low-cardinality text (a few bytes a value: dictionary-encoded) is read as a
            # dictionary and searched once per distinct value, not once per row
            first = parquet.metadata.row_group(0)
            small = [first.column(i).path_in_schema for i in range(first.num_columns)
                     if first.column(i).path_in_schema in columns
                     and first.column(i).total_uncompressed_size
                     < _DICTIONARY_BYTES * max(1, first.column(i).num_values)]
            if small:
                parquet = pq.ParquetFile(path, read_dictionary=small)
    except (pa.ArrowException, OSError):
        return None
    found: dict[tuple[str, str], int] = {}
    if not columns:
        return found
    for group in range(parquet.num_row_groups):
        data = parquet.read_row_group(group, columns=columns)
        for name, column in zip(data.column_names, data.columns):
            for leaf, array in _leaves(column, name):
                for kind, count in matcher.in_column(array).items():
                    found[(leaf, kind)] = found.get((leaf, kind), 0) + count
    return found


def _is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if head != _PARQUET_MAGIC:
                return False
            handle.seek(-4, os.SEEK_END)
            return handle.read(4) == _PARQUET_MAGIC
    except OSError:
        return False


def _table_of(path: Path, root: Path) -> str:
    """The Delta table (layer/name) a warehouse file belongs to, else its top folder."""
    rel = path.relative_to(root)
    for depth in range(len(rel.parts) - 1, 0, -1):
        if (root.joinpath(*rel.parts[:depth]) / "_delta_log").is_dir():
            return "/".join(rel.parts[:depth])
    return rel.parts[0] if len(rel.parts) > 1 else "-"


def scan_for(needles: dict[str, str], warehouse: Path, landing: Path,
             erasure_record: list[str], workers: int = 2,
             reports: Path | None = None) -> ScanResult:
    """Search every file under `warehouse`, `landing` and `reports` (the policy reports folder)
    for `needles` (see needles_for). `erasure_record`: the paths under the warehouse (table
    folders layer/name, or files) that may hold the key — told apart by their path."""
    if not needles:
        raise ValueError("nothing to search for: give an identity number or a subject key")
    started = time.perf_counter()
    matcher = _Matcher(needles)
    result = ScanResult()
    jobs = []
    areas = [("warehouse", Path(warehouse)), ("landing", Path(landing))]
    if reports is not None:
        areas.append(("reports", Path(reports)))
    seen: set[Path] = set()
    for area, root in areas:
        if not root.is_dir() or root.resolve() in seen:
            continue
        seen.add(root.resolve())
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                jobs.append((area, root, Path(dirpath) / name))

    def look(job):
        area, root, path = job
        size = path.stat().st_size if path.exists() else 0
        places = []
        columns = _in_parquet(path, matcher) if _is_parquet(path) else None
        if columns is None:
            columns = {("-", what): n for what, n in matcher.in_bytes(path).items()}
        if columns:
            table = (_table_of(path, root) if area == "warehouse"
                     else "/".join(path.relative_to(root).parts[:2]))
            rel = path.relative_to(root).as_posix()
            allowed = next((r for r in erasure_record if area == "warehouse" and (
                rel.startswith(r.rstrip("/") + "/") or rel == r
                or rel.startswith(r + "-"))), None)      # SQLite's -wal, -shm, -journal
            record = allowed is not None
            if record and not rel.startswith(allowed.rstrip("/") + "/"):
                table = allowed                          # a database file, not a table
            for (column, (kind, person)), count in sorted(columns.items()):
                places.append(Place(area, table, rel, column, kind, count, record, person))
        return size, places

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for size, places in pool.map(look, jobs):
            result.files += 1
            result.bytes += size
            result.places += places
    result.places.sort(key=lambda p: (p.erasure_record, p.person, p.area, p.table, p.file,
                                      p.column))
    result.seconds = round(time.perf_counter() - started, 2)
    return result
