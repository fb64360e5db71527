"""Delivery faults II (issue 23): quote damage never joins rows, control characters never reach
silver, and a department's `check-delivery` gives the verdict landing gives, fault kind by fault
kind (issue 10's kinds and this issue's). Real files, real GX, real Delta tables (no Spark).
"""
from __future__ import annotations

import dataclasses
import json
import re

import pyarrow as pa
import pytest

from citycredit import catalog
from citycredit.ingest.task import land_source
from citycredit.io import tables
from test_landing_validation import (FINDINGS_HEADER, MONTH, deliver, idn, land_and_validate,
                                     reasons_by_line)

COURT = "COURT_DISHONEST_DEBTOR"


def row(rid, id_number=None, case_ref="", name="张三", occurred="2026-01-05", item=COURT):
    return f"{rid},{id_number or idn(seq=int(rid[1:]))},{name},{item},,,{occurred},,active,{case_ref}"


def csv_of(*rows) -> str:
    return FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"


def no_personal_data(text: str, *values: str) -> None:
    for value in values:
        assert value not in text, f"{value!r} in {text!r}"
    assert not re.search(r"[0-9]{17}[0-9Xx]", text), text


# ------------------------------------------------------------------------------------------------
# 1. no silent joins
# ------------------------------------------------------------------------------------------------

def test_a_typographic_closing_quote_costs_only_its_own_line(tmp_path):
    """The reproduction: minimal quoting, a value opened with " and closed with ”; the month
    published with the case_ref holding the next lines and two findings missing."""
    deliver(tmp_path, "court", {"fy.csv": csv_of(
        row("T1", case_ref="JJ-1"), row("T2", case_ref='"沪(2026)第12号”'),
        row("T3", case_ref="JJ-3"), row("T4", case_ref="JJ-4"), row("T5", case_ref='"JJ-5"'))})
    raw, result = land_and_validate(tmp_path, "court")
    assert raw.landed == 5
    assert result.accepted["record_id"].tolist() == ["T1", "T3", "T4", "T5"]
    assert result.accepted["case_ref"].tolist() == ["JJ-1", "JJ-3", "JJ-4", "JJ-5"]
    assert reasons_by_line(result) == {2: {"unparseable_row"}}
    detail = result.quarantined["detail"].item()
    assert "opens the value of case_ref and is never closed" in detail and "”" in detail


@pytest.mark.parametrize("rows, quarantined, problem", [
    # a quote opened and never closed, last line of the file
    ([row("T1"), row("T2"), row("T3", case_ref='"JJ-3')], {3}, "case_ref and is never closed"),
    # a stray quote opening an unquoted value in the middle of the row swallows the rest
    ([row("T1", name='"张三'), row("T2"), row("T3"), row("T4", case_ref='"JJ-4"')], {1},
     "opens the value of name"),
    # a quoted value that goes on after its closing quote
    ([row("T1", case_ref='"沪"第12号'), row("T2")], {1}, "goes on after its closing quote"),
    # a quoted value with the wrong closing quote in front of more quoted rows
    ([row("T1", case_ref='"JJ-1”'), row("T2", case_ref='"JJ-2"'), row("T3", case_ref='"JJ-3"')],
     {1}, "never closed"),
])
def test_quote_damage_quarantines_the_damaged_line_and_lands_the_rest(tmp_path, rows,
                                                                      quarantined, problem):
    deliver(tmp_path, "court", {"fy.csv": csv_of(*rows)})
    raw, result = land_and_validate(tmp_path, "court")
    assert raw.landed == len(rows)
    assert set(reasons_by_line(result)) == quarantined
    assert all(r == {"unparseable_row"} for r in reasons_by_line(result).values())
    assert all(problem in d for d in result.quarantined["detail"])
    for value in result.accepted["case_ref"].dropna():
        assert "\n" not in value and "COURT" not in value
    no_personal_data(" ".join(result.quarantined["detail"]), "张三")


def test_a_quoted_value_with_line_breaks_is_still_one_row(tmp_path):
    deliver(tmp_path, "court", {"fy.csv": csv_of(row("T1", case_ref='"JJ-2026\n第1号"'),
                                                 row("T2", case_ref='"a ""quoted"" word"'))})
    raw, result = land_and_validate(tmp_path, "court")
    assert raw.landed == 2 and result.counts["quarantined"] == 0
    assert result.accepted["case_ref"].tolist() == ["JJ-2026\n第1号", 'a "quoted" word']


def test_a_multi_line_value_longer_than_any_column_is_a_quote_never_closed(tmp_path):
    filler = [f"备注第{i}行" + "x" * 60 for i in range(40)]       # 40 lines, ~2,700 characters
    text = csv_of(row("T1", case_ref='"JJ-1'), *filler[:-1], filler[-1] + '"', row("T2"))
    deliver(tmp_path, "court", {"fy.csv": text})
    raw, result = land_and_validate(tmp_path, "court")
    assert result.accepted["record_id"].tolist() == ["T2"]
    assert "never closed" in result.quarantined.set_index("line").loc[1, "detail"]
    assert raw.landed == 42          # every physical line is a row: nothing is joined


def test_quote_damage_is_the_same_read_in_chunks(settings):
    deliver(settings.landing, "court", {"fy.csv": csv_of(
        row("T1"), row("T2", case_ref='"沪(2026)第12号”'), row("T3"), row("T4"),
        row("T5", case_ref='"JJ-5"'), row("T6"))})
    lenient = dataclasses.replace(settings, validation={**settings.validation,
                                                        "max_bad_share": 1.0})
    landed = land_source("court", MONTH, "r1", lenient, chunk_rows=1)
    assert (landed["landed"], landed["accepted"], landed["by_reason"]) == (
        6, 5, {"unparseable_row": 1})


# ------------------------------------------------------------------------------------------------
# 2. control characters
# ------------------------------------------------------------------------------------------------

def _control_findings(item=COURT, level=None):
    """(csv text, jsonl text, parquet table) with the same four rows: NUL padding after a
    case_ref, NULs around an identity number, a control inside a case_ref, a clean row."""
    recs = [dict(record_id="C1", id_number=idn(seq=1), case_ref="JJ-1\x00\x00\x00"),
            dict(record_id="C2", id_number="\x00" + idn(seq=2) + "\x00\x00", case_ref="JJ-2"),
            dict(record_id="C3", id_number=idn(seq=3), case_ref="J\x01J-3"),
            dict(record_id="C4", id_number=idn(seq=4), case_ref="JJ-4")]
    for r in recs:
        r.update(item_code=item, level=level, occurred_on="2026-01-05", status="active")
    text = csv_of(*(f"{r['record_id']},{r['id_number']},,{item},{level or ''},,2026-01-05,,active,"
                    f"{r['case_ref']}" for r in recs))
    jsonl = "\n".join(json.dumps(r) for r in recs) + "\n"
    return text, jsonl, pa.Table.from_pylist(recs)


@pytest.mark.parametrize("source_id, name, index", [
    ("court", "cc.csv", 0), ("traffic_police", "cc.jsonl", 1), ("provincial_credit",
                                                                 "cc.parquet", 2)])
def test_control_characters_never_reach_the_accepted_rows(tmp_path, source_id, name, index):
    content = (_control_findings("ADMIN_PENALTY", "minor") if source_id == "traffic_police"
               else _control_findings())[index]
    deliver(tmp_path, source_id, {name: content})
    _, result = land_and_validate(tmp_path, source_id)
    accepted = result.accepted.set_index("record_id")
    assert accepted.loc["C1", "case_ref"] == "JJ-1"
    assert accepted.loc["C2", "id_number"] == idn(seq=2)
    assert reasons_by_line(result) == {3: {"control_character"}}
    assert result.quarantined["detail"].item() == (
        "case_ref: control character U+0001 at character 2 of 5 (inside the value; only tab "
        "and line breaks are text)")
    for col in ("record_id", "id_number", "case_ref"):
        assert not accepted.reset_index()[col].astype(str).str.contains(r"[\x00-\x08]").any()


def test_padding_removed_is_said_in_the_detail_of_a_quarantined_row(tmp_path):
    deliver(tmp_path, "court", {"cc.csv": csv_of(
        row("C1", id_number=idn(seq=1, good=False), case_ref="JJ-1\x00\x00"),
        row("C2", id_number=idn(seq=2) + "\x00"))})
    _, result = land_and_validate(tmp_path, "court")
    q = result.quarantined.set_index("line")
    assert q.loc[1, "reasons"] == "bad_id_number"
    assert "case_ref: trailing control character(s) U+0000 removed" in q.loc[1, "detail"]
    assert result.accepted["id_number"].tolist() == [idn(seq=2)]


def test_bronze_keeps_the_delivery_staging_gets_no_control(settings):
    text, _, _ = _control_findings()
    deliver(settings.landing, "court", {"cc.csv": text})
    lenient = dataclasses.replace(settings, validation={**settings.validation,
                                                        "max_bad_share": 1.0})
    landed = land_source("court", MONTH, "r1", lenient)
    assert (landed["accepted"], landed["by_reason"]) == (3, {"control_character": 1})
    bronze = tables.read_arrow(catalog.bronze("court", "findings").at(settings)).to_pylist()
    assert sorted(r["case_ref"] for r in bronze)[:2] == ["J\x01J-3", "JJ-1\x00\x00\x00"]
    staged = tables.read_arrow(catalog.staging("findings").at(settings)).to_pylist()
    assert sorted(r["case_ref"] for r in staged) == ["JJ-1", "JJ-2", "JJ-4"]
