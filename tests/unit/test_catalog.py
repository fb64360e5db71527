"""The table catalogue: the one list of tables, kept in step with docs/contracts.md."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from citycredit import catalog
from citycredit.config import load_sources
from citycredit.io import tables

PROJECT = Path(__file__).resolve().parents[2]


def test_docs_contracts_carry_the_generated_table_list():
    doc = (PROJECT / "docs" / "contracts.md").read_text(encoding="utf-8")
    assert catalog.markdown() in doc, "docs/contracts.md is stale: paste `python -m citycredit.catalog`"


def test_every_table_says_where_personal_data_is():
    sources = load_sources(PROJECT / "conf" / "sources.yaml")
    every = list(catalog.all_tables(sources))
    assert len({t.id for t in every}) == len(every)
    for table in every:
        assert set(table.personal) <= set(table.columns), table.id
        assert set(table.partitions) <= set(table.columns), table.id
        assert set(table.key) <= set(table.columns), table.id
        assert set(table.personal.values()) <= {catalog.ID_NUMBER, catalog.SUBJECT_KEY,
                                                catalog.RAW_CONTENT}, table.id
    # identity numbers in clear: bronze only (SPEC §7)
    clear = {t.id for t in every if catalog.ID_NUMBER in t.personal.values()}
    assert clear == {f"bronze/{s}" for s, c in sources.items() if c["kind"] != "appeals"}


def test_a_write_through_the_catalogue_must_match_its_schema(tmp_path):
    location = catalog.RUN_REPORT.at(tmp_path)
    assert location.path == str(tmp_path / "report" / "run_report")
    wrong = pa.table({"run_id": ["r"], "score_month": ["2026-01"]})
    with pytest.raises(tables.TableError, match="columns differ from catalogue table report/run_report"):
        tables.write_arrow(wrong, location)
    assert not tables.exists(location)
