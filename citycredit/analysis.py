"""Reading the warehouse for analysis (the notebooks in notebooks/): tables by catalogue name,
no Spark session, no path typed by hand.

    settings = open_warehouse("demo/warehouse")
    scores = read_table("gold.scores", where={"scheme": "haibei", "score_month": "2026-10"},
                        columns=["subject_key", "score", "grade"], settings=settings)

Tables are read through delta-rs (the `deltalake` package the pipeline already uses) into pandas.
Decimal columns (points, quantities) arrive as float64: analysis plots and sums them, and the
exact decimals stay in the warehouse. Each is the double nearest its decimal (288.4 reads as
288.4, not 288.40000000000003 as Arrow's own cast gives). Identity numbers (bronze) and raw
delivered text (quarantine) are never returned unless a column list names them.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from . import catalog
from .config import Settings, load_settings
from .months import check_month
from .io.filesystem import native_filesystem
from .publish.published import RUN_TABLES, published_mask, published_runs
from .rules import Scheme, load_schemes

#: personal-data kinds left out of a read unless named in `columns`
WITHHELD = (catalog.ID_NUMBER, catalog.RAW_CONTENT)


class UnknownTable(LookupError):
    """A name that is not a table of the catalogue (or not one this warehouse has yet)."""


class UnknownColumn(LookupError):
    """A column asked for (in `columns` or `where`) that the table does not have."""


def open_warehouse(warehouse: str | Path, landing: str | Path | None = None,
                   reports: str | Path | None = None) -> Settings:
    """The settings of a warehouse folder (conf/ as in force, CITYCREDIT_* overridden): the
    landing zone defaults to the folder beside it (`<warehouse>/../landing`), the policy tools'
    reports to `<warehouse>/../reports`. Raises catalog.NoWarehouse for a folder that holds
    no warehouse: a mistyped path would read as empty tables."""
    warehouse = Path(warehouse).resolve()
    if not catalog.holds_warehouse(warehouse):
        inside = warehouse / "warehouse"
        raise catalog.NoWarehouse(
            f"no warehouse at {warehouse} (no {', '.join(catalog.WAREHOUSE_LAYERS)} folder)"
            + (f"; {inside} holds one" if catalog.holds_warehouse(inside) else
               ": open_warehouse takes the folder a run writes, e.g. demo/warehouse"))
    environ = {**os.environ, "CITYCREDIT_WAREHOUSE": str(warehouse),
               "CITYCREDIT_LANDING": str(Path(landing or warehouse.parent / "landing").resolve()),
               "CITYCREDIT_REPORTS": str(Path(reports or warehouse.parent / "reports").resolve())}
    return load_settings(environ=environ)


def table(name: str, settings: Settings) -> catalog.Table:
    """The catalogue entry of `layer.name` (or `layer/name`), e.g. gold.scores, bronze.court,
    staging.findings. Raises UnknownTable naming the tables there are."""
    wanted = name.replace("/", ".")
    known = {f"{t.layer}.{t.name}": t for t in catalog.all_tables(settings.sources)}
    if wanted not in known:
        raise UnknownTable(f"no table {name!r} in the catalogue; there are: "
                           f"{', '.join(sorted(known))}")
    return known[wanted]


def _values(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple, set, frozenset)) \
        else [str(value)]


def _partition_filters(where: Mapping[str, object], partitions) -> list | None:
    """delta-rs filters on partition columns (they prune files)."""
    return [(c, "in", _values(v)) for c, v in where.items() if c in partitions] or None


def read_table(name: str, where: Mapping[str, object] | None = None,
               columns: Iterable[str] | None = None, *, settings: Settings) -> pd.DataFrame:
    """A table of the catalogue as a pandas DataFrame.

    where: column → value (or a list of values: any of them), e.g. {"scheme": "haibei",
    "score_month": ["2026-09", "2026-10"]}; partition columns prune files. gold.scores and
    gold.score_lines give the PUBLISHED run's rows of each month (a refused or unpublished
    run's rows are not the month's results: citycredit.publish.published) unless `where` names
    a run_id. columns: the columns
    wanted (default all but identity numbers and raw delivered text). Decimals become float64,
    dates datetime64. A table not written yet reads as an empty frame with the catalogue's
    columns. Raises UnknownTable for a name the catalogue does not have, UnknownColumn for a
    column it does not have (in `columns` or `where`), MonthError for a
    month column (catalog.MONTH_COLUMNS) filtered on something that is no `YYYY-MM` month
    (it would match no row)."""
    entry = table(name, settings)
    columns = None if columns is None else list(columns)
    unknown = [c for c in [*(columns or ()), *(where or {})] if c not in entry.columns]
    if unknown:     # Arrow would say "No match for FieldRef" and list its internal fields
        raise UnknownColumn(f"{name} has no column {', '.join(map(repr, unknown))}; its columns "
                            f"are: {', '.join(entry.columns)}")
    for column in catalog.MONTH_COLUMNS.intersection(where or {}):
        for value in _values(where[column]):
            check_month(value, f"where[{column!r}]")
    if columns is None:
        columns = [c for c in entry.columns if entry.personal.get(c) not in WITHHELD]
    columns = list(columns)
    where = dict(where or {})
    location = entry.at(settings)
    others = [c for c in where if c not in entry.partitions]
    per_run = entry in RUN_TABLES and "run_id" not in where
    read = columns + [c for c in others if c not in columns]
    read += [c for c in ("scheme", "score_month", "run_id") if per_run and c not in read]
    if not (Path(location.path) / "_delta_log").is_dir():
        data = entry.schema.empty_table().select(read)
    else:
        data = DeltaTable(location.path).to_pyarrow_table(      # Arrow's own file system:
            filters=_partition_filters(where, entry.partitions), columns=read,  # no crash at exit
            filesystem=native_filesystem(location.path))
    for column in others:     # other columns filtered after the read (Parquet string views)
        values = pa.array(_values(where[column]), pa.string())
        data = data.filter(pc.is_in(data.column(column).cast(pa.string()), value_set=values))
    if per_run:               # the month's results: the published run's rows only
        data = data.filter(published_mask(data, published_runs(settings)))
    data = data.select(columns)
    decimal = [i for i, f in enumerate(data.schema) if pa.types.is_decimal(f.type)]
    for i in decimal:      # via the text: Arrow's decimal→float64 cast is off by an ulp or so
        data = data.set_column(i, data.schema.field(i).name,
                               data.column(i).cast(pa.string()).cast(pa.float64()))
    return data.to_pandas()


def scheme(scheme_id: str, settings: Settings) -> Scheme:
    """An adopted scheme (rules/<scheme>.yaml): its title, grades (best first) and rules."""
    return load_schemes(settings.rules, [scheme_id])[scheme_id]


def schemes(settings: Settings) -> dict[str, Scheme]:
    """Every adopted scheme (rules/*.yaml), by id."""
    return load_schemes(settings.rules)


def scored_months(settings: Settings, scheme_id: str) -> list[str]:
    """The months published for a scheme (gold/scores holds their published run's rows), in
    order."""
    location = catalog.SCORES.at(settings)
    if not (Path(location.path) / "_delta_log").is_dir():
        return []
    held = {p["score_month"] for p in DeltaTable(location.path).partitions()
            if p["scheme"] == scheme_id}
    return sorted(month for scheme, month in published_runs(settings)
                  if scheme == scheme_id and month in held)


def latest_month(settings: Settings, scheme_id: str) -> str:
    """The latest month published for a scheme; LookupError when none was."""
    months = scored_months(settings, scheme_id)
    if not months:
        raise LookupError(f"gold/scores holds no published month of {scheme_id} in "
                          f"{settings.warehouse}")
    return months[-1]
