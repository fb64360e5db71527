"""Which scoring run's rows are a month's results (issue 24, item 4; SPEC §5).

A scoring run writes gold/scores and gold/score_lines under its own `run_id` partition
(scheme, score_month, run_id): nothing a reader sees changes. Publication checks exactly that
run's rows and promotes them — every scheme of the month in one commit — into
gold/published_scores, whose `run_id` column names the run. The month's results are then:

    runs = published_runs(settings)            # (scheme, month) → run_id
    where = published_where(settings, "haibei", "2026-10")
    # {'scheme': 'haibei', 'score_month': '2026-10', 'run_id': '20261101T020000'}, or None

Every reader that shows "the month's" scores or explanation lines (the lookup index,
citycredit.analysis and the notebooks, the policy tools, the rules in force, the run report)
reads through here; erasure and the privacy scan keep covering every run's rows. A refused or
crashed run's rows are never read; the next successful publication of the month deletes them
(`drop_other_runs`, a commit after the promotion: a crash between leaves rows nobody reads).

A publication made before runs were recorded has no run_id (None): its month's gold rows are
all of one run (gold was replaced per scheme and month then), so readers take them all.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings
from ..io import tables

#: the per-run gold tables (partitioned by scheme, score_month, run_id)
RUN_TABLES = (catalog.SCORES, catalog.SCORE_LINES)

_UNPUBLISHED = object()


def published_runs(settings: Settings, version: int | None = None
                   ) -> dict[tuple[str, str], str | None]:
    """(scheme, score_month) → the run_id gold/published_scores holds (at its `version`, default
    the current one); None for a publication made before runs were recorded. Read from the
    data files' statistics (no data scan); a file without them has its partition's run_id
    column read."""
    location = catalog.PUBLISHED_SCORES.at(settings)
    if not tables.exists(location) or (version is not None and version < 0):
        return {}
    table = DeltaTable(location.path, version=version)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    has_column = "run_id" in table.schema().to_arrow().names
    by_part: dict[tuple[str, str], set] = defaultdict(set)
    for action in actions:
        part = (action["partition.scheme"], action["partition.score_month"])
        low, high = action.get("min.run_id"), action.get("max.run_id")
        nulls = action.get("null_count.run_id")
        rows = action.get("num_records")
        if not has_column or (nulls is not None and rows is not None and nulls == rows):
            by_part[part].add(None)
        elif low is not None and low == high and not nulls:
            by_part[part].add(low)
        else:
            by_part[part].add(_UNPUBLISHED)          # no statistics: read below
    runs: dict[tuple[str, str], str | None] = {}
    for (scheme, month), found in sorted(by_part.items()):
        if _UNPUBLISHED in found:
            column = tables.read_arrow(location, where={"scheme": scheme, "score_month": month},
                                       as_of_version=version, columns=["run_id"])["run_id"]
            found = set(column.unique().to_pylist())
        named = sorted(r for r in found if r is not None)
        runs[(scheme, month)] = named[-1] if len(named) == 1 else None
    return runs


def published_where(settings: Settings, scheme: str, month: str,
                    runs: Mapping[tuple[str, str], str | None] | None = None) -> dict | None:
    """The `where` of the published run's rows of (scheme, month) in gold/scores and
    gold/score_lines (a publication without a run_id: the whole partition), or None when the
    month is not published for the scheme. `runs`: published_runs() already read."""
    runs = published_runs(settings) if runs is None else runs
    if (scheme, month) not in runs:
        return None
    where = {"scheme": scheme, "score_month": month}
    if runs[(scheme, month)] is not None:
        where["run_id"] = runs[(scheme, month)]
    return where


def published_mask(data: pa.Table, runs: Mapping[tuple[str, str], str | None]
                   ) -> pa.ChunkedArray:
    """A boolean mask of the rows of `data` (with scheme, score_month, run_id) that are of the
    published run of their (scheme, month); `runs`: published_runs()."""
    scheme, month, run = (data.column(c).cast(pa.string())
                          for c in ("scheme", "score_month", "run_id"))
    named = pa.array([f"{s}\x1f{m}\x1f{r}" for (s, m), r in runs.items() if r is not None],
                     pa.string())
    whole = pa.array([f"{s}\x1f{m}" for (s, m), r in runs.items() if r is None], pa.string())
    of_run = pc.is_in(pc.binary_join_element_wise(scheme, month, run, "\x1f"), value_set=named)
    of_part = pc.is_in(pc.binary_join_element_wise(scheme, month, "\x1f"), value_set=whole)
    return pc.or_(pc.fill_null(of_run, False), pc.fill_null(of_part, False))


def keep_gold_layout(spark, settings: Settings) -> None:
    """Bring a warehouse written by an earlier citycredit into this layout (once, under the
    warehouse lock): gold/scores and gold/score_lines rewritten partitioned by run too, and
    with points as decimal(18,8) (they were decimal(28,8): scoring.decimals) — same rows and
    values, one commit each, after the one that gives an old table the catalogue's statistics
    columns (io.tables.write); gold/published_scores given its run_id column (null for the
    months published before). A value that does not fit the new type (none can: every sum of
    points was bounded by 10^10 already) stops it with Spark's cast error, the table as it was."""
    for table in RUN_TABLES:
        location = table.at(settings)
        if tables.exists(location) and (
                tables.partition_columns(location) != list(table.partitions)
                or _decimal_types(tables.arrow_schema(location)) !=
                _decimal_types(table.schema)):
            if tables.has_delta_spark(spark):
                from pyspark.sql.pandas.types import from_arrow_type
                tables.write(tables.read(spark, location).select(*[
                    F.col(f.name).cast(from_arrow_type(f.type)).alias(f.name)
                    for f in table.schema]), location, mode="overwrite")
            else:
                tables.relayout_arrow(tables.read_arrow(location).select(table.columns),
                                      location)
    location = catalog.PUBLISHED_SCORES.at(settings)
    if tables.exists(location):
        table = DeltaTable(location.path)
        if "run_id" not in table.schema().to_arrow().names:
            from deltalake import Field
            table.alter.add_columns([Field("run_id", "string", nullable=True)])


def _decimal_types(schema: pa.Schema) -> dict[str, str]:
    """column → its decimal type, of the columns holding decimals (a map's values too)."""
    values = {f.name: f.type.item_type if pa.types.is_map(f.type) else f.type for f in schema}
    return {name: str(t) for name, t in values.items() if pa.types.is_decimal(t)}


def drop_other_runs(settings: Settings, month: str, runs: Mapping[str, str]) -> None:
    """After `runs` (scheme → run_id) were published for `month`: delete the month's rows of
    every other run of those schemes from gold/scores and gold/score_lines (one commit per
    table; whole files of the run partitions, nothing rewritten)."""
    if not runs:
        return
    literal = tables.sql_literal
    predicate = f"score_month = {literal(month)} AND (" + " OR ".join(
        f"(scheme = {literal(scheme)} AND run_id <> {literal(run_id)})"
        for scheme, run_id in sorted(runs.items())) + ")"
    for table in RUN_TABLES:
        location = table.at(settings)
        if tables.exists(location) and any(
                p["score_month"] == month and p["scheme"] in runs
                and p.get("run_id") != runs[p["scheme"]] for p in tables.partitions(location)):
            tables.delete_where(location, predicate)
