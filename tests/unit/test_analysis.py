"""Reading the warehouse by catalogue name for the notebooks (citycredit/analysis.py)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from citycredit import analysis, catalog
from citycredit.months import MonthError
from citycredit.io import tables


NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def scores(rows, run_id="r"):
    return pa.Table.from_pylist([
        {"subject_key": k, "scheme": s, "score_month": m, "score": v, "grade": g,
         "grade_label": "良好", "base_score": Decimal("1000"), "points_positive": Decimal("0.5"),
         "points_negative": Decimal("0"), "dimension_points": [], "finding_count": 0,
         "rules_version": "1", "run_id": run_id, "computed_at": NOW}
        for k, s, m, v, g in rows], schema=catalog.SCORES.schema)


def publish(data: pa.Table, settings) -> None:
    """gold/published_scores as a publication of these gold rows (their run) would write."""
    rows = data.select([c for c in catalog.PUBLISHED_SCORES.columns if c != "published_at"])
    rows = rows.add_column(6, "published_at", pa.array([NOW] * len(rows), catalog.TIMESTAMP))
    tables.write_arrow(rows, catalog.PUBLISHED_SCORES.at(settings), mode="overwrite")


def test_read_table_by_name_filters_partitions_and_other_columns(settings):
    data = scores([("a", "haibei", "2026-09", 1000, "A"), ("b", "haibei", "2026-10", 990, "B"),
                   ("c", "haibei", "2026-10", 1100, "AA"), ("a", "bailu", "2026-10", 600, "A")])
    tables.write_arrow(data, catalog.SCORES.at(settings), mode="overwrite")
    publish(data, settings)
    # a later run of 2026-10 (and of 2026-11) whose publication was refused: not the month's
    refused = scores([("b", "haibei", "2026-10", 1, "D"), ("c", "haibei", "2026-11", 2, "D")],
                     run_id="refused")
    tables.write_arrow(refused, catalog.SCORES.at(settings), mode="append")
    frame = analysis.read_table("gold.scores", where={"scheme": "haibei",
                                                      "score_month": ["2026-10"]},
                                columns=["subject_key", "score", "points_positive"],
                                settings=settings)
    assert sorted(frame.subject_key) == ["b", "c"]
    assert list(frame.columns) == ["subject_key", "score", "points_positive"]
    assert frame.points_positive.dtype == "float64" and frame.points_positive.iloc[0] == 0.5
    one = analysis.read_table("gold/scores", where={"subject_key": "c", "scheme": "haibei"},
                              settings=settings)
    assert one.grade.tolist() == ["AA"]
    assert sorted(analysis.read_table("gold.scores", where={"scheme": "haibei"},
                                      settings=settings).score) == [990, 1000, 1100]
    named = analysis.read_table("gold.scores", where={"run_id": "refused"}, settings=settings)
    assert sorted(named.score) == [1, 2]
    assert analysis.scored_months(settings, "haibei") == ["2026-09", "2026-10"]
    assert analysis.latest_month(settings, "haibei") == "2026-10"


def test_identity_numbers_are_withheld_unless_named_and_unknown_names_refused(settings):
    source = next(s for s, c in settings.sources.items() if c["kind"] == "findings")
    entry = catalog.bronze(source, "findings")
    row = {c: "x" for c in entry.columns}
    row.update(line=1, id_number="371002199001150011", month="2026-10")
    tables.write_arrow(pa.Table.from_pylist([row], schema=entry.schema), entry.at(settings),
                       mode="overwrite")
    frame = analysis.read_table(f"bronze.{source}", settings=settings)
    assert "id_number" not in frame.columns and len(frame) == 1
    assert analysis.read_table("gold.score_lines", settings=settings).empty   # not written yet
    with pytest.raises(analysis.UnknownTable, match="gold.scores"):
        analysis.read_table("gold.score", settings=settings)


def test_a_folder_without_a_warehouse_and_a_malformed_month_are_refused_not_read_as_empty(
        tmp_path, settings):
    """A notebook pointed at a mistyped folder, or filtering on a month typed wrongly, got empty
    tables and no word why (found by the newcomer try-out)."""
    (tmp_path / "demo" / "warehouse" / "gold").mkdir(parents=True)
    opened = analysis.open_warehouse(tmp_path / "demo" / "warehouse")
    assert opened.warehouse == tmp_path / "demo" / "warehouse"
    with pytest.raises(catalog.NoWarehouse, match=(
            rf"no warehouse at {tmp_path / 'demo'} \(no bronze, silver, gold folder\); "
            rf"{tmp_path / 'demo' / 'warehouse'} holds one")):
        analysis.open_warehouse(tmp_path / "demo")
    with pytest.raises(catalog.NoWarehouse, match=(
            rf"no warehouse at {tmp_path / 'demo' / 'warehose'} .*: open_warehouse takes the "
            "folder a run writes")):
        analysis.open_warehouse(tmp_path / "demo" / "warehose")

    data = scores([("a", "haibei", "2026-10", 1000, "A")])
    tables.write_arrow(data, catalog.SCORES.at(settings), mode="overwrite")
    publish(data, settings)
    for month in ("2026-1", ["2026-10", "2026/09"], "Oct 2026"):
        bad = month[-1] if isinstance(month, list) else month
        with pytest.raises(MonthError, match=rf"where\['score_month'\] '{bad}' is not a month: "
                                             "use YYYY-MM"):
            analysis.read_table("gold.scores", where={"score_month": month}, settings=settings)
    with pytest.raises(MonthError, match=r"where\['snapshot_month'\] '202610' is not a month"):
        analysis.read_table("silver.population", where={"snapshot_month": "202610"},
                            settings=settings)
    assert len(analysis.read_table("gold.scores", where={"score_month": "2026-10"},
                                   settings=settings)) == 1


def test_decimals_read_as_the_double_nearest_their_value_without_float_noise(settings):
    """Arrow's decimal→float64 cast read 288.4 points as 288.40000000000003."""
    data = scores([("a", "haibei", "2026-10", 1288, "AA")])
    values = {"points_positive": [Decimal("288.4")], "base_score": [Decimal("1.3")],
              "points_negative": [Decimal("-1234567.89012345")]}
    for name, value in values.items():
        data = data.set_column(data.schema.get_field_index(name), name,
                               pa.array(value, data.schema.field(name).type))
    tables.write_arrow(data, catalog.SCORES.at(settings), mode="overwrite")
    publish(data, settings)
    row = analysis.read_table("gold.scores", settings=settings).iloc[0]
    assert [repr(float(row[name])) for name in values] == ["288.4", "1.3", "-1234567.89012345"]


def test_a_misspelt_column_is_named_with_the_columns_there_are(settings):
    """`columns=["scor"]` or `where={"schema": …}` gave Arrow's "No match for FieldRef" listing
    its internal fields (a newcomer's try-out): UnknownColumn names it and the table's columns."""
    data = scores([("a", "haibei", "2026-10", 1000, "A")])
    tables.write_arrow(data, catalog.SCORES.at(settings), mode="overwrite")
    publish(data, settings)
    for kwargs, named in (({"columns": ["scor"]}, "'scor'"), ({"where": {"schema": "haibei"}},
                                                               "'schema'")):
        with pytest.raises(analysis.UnknownColumn) as refused:
            analysis.read_table("gold.scores", settings=settings, **kwargs)
        said = str(refused.value)
        assert said.startswith(f"gold.scores has no column {named}; its columns are: ")
        assert "score" in said and "__fragment_index" not in said
    shown = analysis.read_table("gold.scores", columns=(c for c in ["score", "grade"]),
                                settings=settings)
    assert list(shown.columns) == ["score", "grade"] and shown["score"].tolist() == [1000]
