"""Finding a month's delivery of a source (SPEC §2): `<landing>/<source_id>/<YYYY-MM>/` with data
files (`*.csv` with a header row, `*.jsonl`, `*.parquet`), `_READY` (the delivery is complete)
and an optional `manifest.json` (`{"row_count": N}`, data rows over all files).

Problems with a whole delivery raise DeliveryError naming source, month and file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..months import check_month, is_month

READY_FILE = "_READY"
MANIFEST_FILE = "manifest.json"
DATA_SUFFIXES = (".csv", ".jsonl", ".parquet")


class DeliveryMissing(RuntimeError):
    """A required source has no complete delivery for the month. `.short`: the same without
    the expected paths (the STOPPED line when the run report lists them already)."""

    def __init__(self, message: str, short: str | None = None):
        super().__init__(message)
        self.short = short or message

    def __reduce__(self):       # whole across processes (a run lands sources in two)
        return type(self), (self.args[0], self.short)


class DeliveryError(Exception):
    """A delivery (or one of its files) cannot be landed at all; the month of this source stops.

    The message names source, month, file and reason; the parts are kept as attributes too.
    """

    def __init__(self, source_id: str, month: str, file: str | None, reason: str):
        self.source_id, self.month, self.file, self.reason = source_id, month, file, reason
        where = f"{source_id} {month}" + (f" {file}" if file else "")
        super().__init__(f"delivery {where}: {reason}")

    def __reduce__(self):       # whole across processes (a run lands sources in two)
        return type(self), (self.source_id, self.month, self.file, self.reason)


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



def find_delivery(landing: Path, source_id: str, month: str) -> Delivery | None:
    """The complete delivery of `source_id` for `month`, or None (no folder, or no `_READY`).

    Raises DeliveryError if the folder holds something that is neither a data file nor one of
    the known control files (nothing in a delivery is silently ignored), or a bad manifest.
    An erasure of the folder killed after its commit is completed first, so the files read and
    their manifest agree (io.replace_together; one killed before it left the old files whole).
    """
    from ..io.replace_together import finish_interrupted

    check_month(month)
    folder = Path(landing) / source_id / month
    if not folder.is_dir() or not (folder / READY_FILE).is_file():
        return None
    finish_interrupted(folder, undo=False)
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


def deliveries_of_month(landing: Path, sources: dict[str, dict], month: str) -> dict:
    """Which sources delivered `month` (a `_READY` folder): {"ready": [...], "missing_optional":
    [...]}. A required source without one raises DeliveryMissing naming it and the file expected."""
    ready, missing_required, missing_optional = [], [], []
    for source_id, conf in sources.items():
        if find_delivery(landing, source_id, month) is not None:
            ready.append(source_id)
        elif conf["required"]:
            missing_required.append(source_id)
        else:
            missing_optional.append(source_id)
    if missing_required:
        where = ", ".join(f"{s} (expected {Path(landing) / s / month / READY_FILE})"
                          for s in missing_required)
        raise DeliveryMissing(
            f"month {month}: no complete delivery from required source(s) {where}",
            short=f"month {month}: no complete delivery from required source(s) "
                  f"{', '.join(missing_required)}")
    return {"ready": ready, "missing_optional": missing_optional}


def delivered_months_before(landing: Path, sources: dict[str, dict], month: str) -> list[str]:
    """The months before `month` that some source of `sources` delivered completely (a
    `<landing>/<source>/<YYYY-MM>/_READY`), in order: what a new warehouse starting at `month`
    would score without."""
    months = set()
    for source_id in sources:
        folder = Path(landing) / source_id
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if is_month(entry.name) and entry.name < month and (entry / READY_FILE).is_file():
                months.add(entry.name)
    return sorted(months)


def report_landings(settings) -> dict[tuple[str, str], set[str]]:
    """(source, month) → the files landed, as the run report (report/run_report, section
    source) records each landing (status landed or kept)."""
    from .. import catalog
    from ..io import tables

    report = catalog.RUN_REPORT.at(settings)
    landings: dict[tuple[str, str], set[str]] = {}
    if tables.exists(report):
        rows = tables.read_arrow(report, columns=["score_month", "section", "name", "metrics"])
        for r in rows.to_pylist():
            metrics = json.loads(r["metrics"]) if r["section"] == "source" else {}
            if metrics.get("status") in ("landed", "kept"):
                landings.setdefault((r["name"], r["score_month"]), set()).update(
                    metrics.get("files") or [])
    return landings


def landed_months(settings, sources: list[str] | None = None) -> dict[str, set[str]]:
    """source (of `sources`, default every configured one) → the months landed into this
    warehouse: those the run report records (report_landings) and those bronze holds (the
    bulk-loaded history of the demo and the benchmarks has no run report). Either alone would
    miss some: a month whose rows were all erased, or an empty delivery, leaves no bronze
    partition."""
    from ..io import tables

    sources = list(settings.sources) if sources is None else sources
    months: dict[str, set[str]] = {source_id: set() for source_id in sources}
    for source_id, month in report_landings(settings):
        if source_id in months:
            months[source_id].add(month)
    for source_id in sources:
        bronze = bronze_of(settings, source_id)
        months[source_id] |= {p["month"] for p in tables.partitions(bronze)}
    return months


def latest_landed_month(settings, before: str | None = None,
                        sources: list[str] | None = None) -> str | None:
    """The latest month landed into this warehouse (landed_months) of `sources` (default every
    configured one), of those before `before` when given; None when there is none."""
    return max((m for months in landed_months(settings, sources).values() for m in months
                if before is None or m < before), default=None)


def landed_files(settings, source_id: str, month: str,
                 landings: dict[tuple[str, str], set[str]]) -> set[str]:
    """The data files of the source's month landed into this warehouse: those the run report
    lists (`landings`: report_landings) and those bronze holds rows of."""
    import pyarrow.compute as pc

    from ..io import tables

    files = set(landings.get((source_id, month), ()))
    if in_bronze(settings, source_id, month):
        rows = tables.read_arrow(bronze_of(settings, source_id), where={"month": month},
                                 columns=["file"])
        files |= set(pc.unique(rows["file"]).to_pylist())
    return files


def never_landed(settings, folder: Path, landings: dict[tuple[str, str], set[str]]) -> set[str]:
    """The data files of a delivery folder (`<landing>/<source>/<month>`) never landed into this
    warehouse (landed_files): of a month never run, or arrived after the month was landed.
    `landings`: report_landings."""
    folder = Path(folder)
    return data_files_in(folder) - landed_files(settings, folder.parent.name, folder.name,
                                                landings)


def bronze_of(settings, source_id: str):
    """The source's bronze table in this warehouse (catalog.bronze, by the source's kind)."""
    from .. import catalog

    return catalog.bronze(source_id, settings.sources[source_id]["kind"]).at(settings)


def in_bronze(settings, source_id: str, month: str) -> bool:
    """Whether bronze holds the source's month (landed before)."""
    from ..io import tables

    location = bronze_of(settings, source_id)
    return tables.exists(location) and any(p.get("month") == month
                                           for p in tables.partitions(location))


def data_files_in(folder: Path) -> set[str]:
    """The data files of a delivery folder (control files and hidden files left out)."""
    return {p.name for p in Path(folder).iterdir()
            if p.is_file() and not p.name.startswith((".", "_")) and p.name != MANIFEST_FILE
            and p.name.lower().endswith(DATA_SUFFIXES)}
