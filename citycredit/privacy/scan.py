"""The privacy scan (issue "Privacy" item 5): where, anywhere on disk, is a person still held?

Every file under the warehouse and the landing zone is read — not only the tables' current
snapshots: old Parquet files left behind, `_staging-*` folders, the Delta logs and checkpoints,
the GX results and Data Docs pages — and every place holding the person's identity number or
subject key is listed (table, file, column). Parquet files are read column by column, every
string leaf (nested ones too: checkpoint statistics); any other file is searched as bytes (logs,
JSON, HTML, csv in utf-8 or gb18030 alike: the numbers and keys are ASCII).

A value matches when it equals one of the searched strings, or contains one (raw text, JSON
statistics): an identity number in upper or lower case (`x` check character), a subject key in
lower or upper case. Files of the erasure record (privacy/suppression_list, privacy/erasure_log)
are reported apart: the key belongs there.
"""
from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["Place", "ScanResult", "scan_for", "needles_for"]

_CHUNK = 64 << 20          # bytes of a non-Parquet file searched at a time
_PARQUET_MAGIC = b"PAR1"
_DICTIONARY_BYTES = 4      # below this many bytes a value, a text column is read as a dictionary


@dataclass(frozen=True)
class Place:
    """One place holding the person: an area (warehouse | landing), the table (or folder), the
    file (relative to the area), the column ('-' for a file searched as bytes), what was found
    (identity number | subject key), how many values (or occurrences) and whether it is the
    erasure record."""

    area: str
    table: str
    file: str
    column: str
    found: str
    count: int
    erasure_record: bool


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


def needles_for(id_number: str | None, subject_key: str | None) -> dict[str, str]:
    """The strings searched for → what they are."""
    needles = {}
    if id_number:
        number = id_number.strip()
        for variant in {number.upper(), number.lower()}:
            needles[variant] = "identity number"
    if subject_key:
        key = subject_key.strip()
        for variant in {key.lower(), key.upper()}:
            needles[variant] = "subject key"
    return needles


class _Matcher:
    def __init__(self, needles: dict[str, str]):
        self.needles = needles
        self.values = pa.array(sorted(needles), pa.string())
        self.shortest = min(map(len, needles))
        self.pattern = "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
        self.regex = re.compile(self.pattern)
        self.bytes_regex = re.compile(self.pattern.encode())

    def in_column(self, array: pa.Array) -> dict[str, int]:
        """Values of one string array that equal or contain a needle → count per kind found."""
        if len(array) == 0 or array.null_count == len(array):
            return {}
        if pa.types.is_dictionary(array.type):   # look at the values once; rows only if needed
            return (self.in_column(array.dictionary_decode())
                    if self.in_column(array.dictionary) else {})
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            # binary, and the string views delta-rs writes: compared as plain UTF-8 text
            array = _as_text(array)
        exact = pc.is_in(array, value_set=self.values)
        longer = pc.greater(pc.binary_length(array), self.shortest)
        found = pc.fill_null(exact, False)
        if pc.any(longer).as_py():
            # only values longer than a needle can contain it (raw text, JSON statistics)
            contains = pc.if_else(longer, pc.match_substring_regex(array, self.pattern), False)
            found = pc.or_(found, pc.fill_null(contains, False))
        count = pc.sum(found).as_py() or 0
        if not count:
            return {}
        sample = array.filter(found)[0].as_py()
        return {self.what(sample): count}

    def what(self, text) -> str:
        found = self.regex.search(str(text))
        return self.needles[found.group(0)] if found else "identity number"

    def in_bytes(self, path: Path) -> dict[str, int]:
        counts: dict[str, int] = {}
        overlap = max(map(len, self.needles)) - 1
        with open(path, "rb") as handle:
            tail = b""
            while True:
                block = handle.read(_CHUNK)
                if not block:
                    break
                data = tail + block
                for m in self.bytes_regex.finditer(data):
                    if m.end() > len(tail):       # not already counted in the previous block
                        kind = self.needles[m.group(0).decode()]
                        counts[kind] = counts.get(kind, 0) + 1
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


def _in_parquet(path: Path, matcher: _Matcher) -> dict[tuple[str, str], int] | None:
    """(column, kind) → values found, row group by row group; None if not readable Parquet."""
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
             erasure_record: list[str], workers: int = 2) -> ScanResult:
    """Search every file under `warehouse` and `landing` for `needles` (see needles_for).
    `erasure_record`: the table ids (layer/name, i.e. folders under the warehouse) whose files
    may hold the key — told apart by their path."""
    if not needles:
        raise ValueError("nothing to search for: give an identity number or a subject key")
    started = time.perf_counter()
    matcher = _Matcher(needles)
    result = ScanResult()
    jobs = []
    for area, root in (("warehouse", Path(warehouse)), ("landing", Path(landing))):
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                jobs.append((area, root, Path(dirpath) / name))

    def look(job):
        area, root, path = job
        size = path.stat().st_size if path.exists() else 0
        places = []
        columns = _in_parquet(path, matcher) if _is_parquet(path) else None
        if columns is None:
            columns = {("-", kind): n for kind, n in matcher.in_bytes(path).items()}
        if columns:
            table = (_table_of(path, root) if area == "warehouse"
                     else "/".join(path.relative_to(root).parts[:2]))
            rel = path.relative_to(root).as_posix()
            record = area == "warehouse" and any(rel.startswith(r.rstrip("/") + "/")
                                                 for r in erasure_record)
            for (column, kind), count in sorted(columns.items()):
                places.append(Place(area, table, rel, column, kind, count, record))
        return size, places

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for size, places in pool.map(look, jobs):
            result.files += 1
            result.bytes += size
            result.places += places
    result.places.sort(key=lambda p: (p.erasure_record, p.area, p.table, p.file, p.column))
    result.seconds = round(time.perf_counter() - started, 2)
    return result
