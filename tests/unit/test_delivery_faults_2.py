"""Delivery faults II (issue 23): quote damage never joins rows, control characters never reach
silver, and a department's `check-delivery` gives the verdict landing gives, fault kind by fault
kind (issue 10's kinds and this issue's). Real files, real GX, real Delta tables (no Spark).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from click.testing import CliRunner

from citycredit import catalog
from citycredit.cli import cli
from citycredit.ingest import check_delivery
from citycredit.ingest.check import EXIT_CLEAN, EXIT_QUARANTINE, EXIT_STOP
from citycredit.ingest.delivery import DeliveryError
from citycredit.ingest.task import BatchRejected, land_source
from citycredit.io import tables
from test_delivery_faults import _findings_table, _xlsx, no_personal_data
from test_landing_validation import (FINDINGS_HEADER, MONTH, deliver, id_with_x, idn,
                                     land_and_validate, reasons_by_line)

COURT = "COURT_DISHONEST_DEBTOR"


def row(rid, id_number=None, case_ref="", name="张三", occurred="2026-01-05", item=COURT):
    return f"{rid},{id_number or idn(seq=int(rid[1:]))},{name},{item},,,{occurred},,active,{case_ref}"


def csv_of(*rows) -> str:
    return FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"


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


def test_a_nul_inside_a_value_is_one_reason_not_two(settings):
    """A NUL byte inside an identity number or a date is a control character — not also a bad
    identity number or a bad date: the row, its detail and the rejection name one reason."""
    number = idn(seq=2)
    deliver(settings.landing, "court", {"fy.csv": csv_of(
        row("T1"), row("T2", id_number=number[:6] + "\x00" + number[6:]),
        row("T3", occurred="2026-01\x00-05"), row("T4"))})
    _, result = land_and_validate(settings.landing, "court")
    assert reasons_by_line(result) == {2: {"control_character"}, 3: {"control_character"}}
    details = result.quarantined.set_index("line")["detail"]
    assert details[2] == ("id_number: control character U+0000 at character 7 of 19 (inside "
                          "the value; only tab and line breaks are text)")
    assert details[3].startswith("occurred_on: control character U+0000 at character 8 of 11")
    with pytest.raises(BatchRejected) as rejected:     # 2 of 4 bad: over max_bad_share
        land_source("court", MONTH, "r1", dataclasses.replace(
            settings, validation={**settings.validation, "max_bad_share": 0.1,
                                  "min_bad_rows": 1}))
    said = str(rejected.value)
    assert "By reason: control_character 2 (e.g. fy.csv line 2: id_number: control" in said
    assert "bad_id_number" not in said and "bad_date" not in said and number not in said


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


# ------------------------------------------------------------------------------------------------
# 3. check-delivery gives landing's verdict, fault kind by fault kind
# ------------------------------------------------------------------------------------------------

def _json(rid, **extra) -> str:
    r = {"record_id": rid, "id_number": idn(seq=int(rid[1:])), "item_code": "ADMIN_PENALTY",
         "level": "minor", "occurred_on": "2026-01-05", "status": "active", **extra}
    return json.dumps(r, ensure_ascii=False)


GOOD = [row(f"T{i}") for i in range(1, 5)]
#: fault kind → (source, files, manifest row count or None)
FAULTS = {
    "clean": ("court", {"fy.csv": csv_of(*GOOD)}, 4),
    # issue 10: identity numbers, encodings, file shapes, columns, typed values, manifest
    "id_normal_forms": ("court", {"fy.csv": csv_of(
        row("T1", id_number=id_with_x().lower()), row("T2", id_number="\u3000" + idn(seq=2)),
        row("T3", id_number=idn(seq=3, good=False)))}, None),
    "utf8_in_gb18030_source": ("public_security", {"fy.csv": csv_of(
        row("T1", item="ADMIN_PENALTY").replace(",,,", ",minor,,"))}, None),
    "gb18030_in_jsonl": ("traffic_police", {"fy.jsonl": (_json("J1", case_ref="案件") + "\n")
                                            .encode("gb18030")}, None),
    "undecodable_rows": ("court", {"fy.csv": csv_of(*GOOD).encode()
                                   + row("T5", case_ref="案2026").encode("gb18030") + b"\n"},
                         None),
    "cr_only_line_ends": ("court", {"fy.csv": csv_of(*GOOD).replace("\n", "\r")}, None),
    "utc_timestamps": ("market_regulation", {"sj.parquet": _findings_table(
        2, occurred_on=pa.array([dt.datetime(2026, 1, 4, 16), dt.datetime(2026, 1, 5, 1)],
                                pa.timestamp("us", tz="UTC")))}, None),
    "type_cannot_hold_meaning": ("market_regulation", {"sj.parquet": _findings_table(
        1, occurred_on=pa.array([46027.0]))}, None),
    "quantity_needs_rounding": ("blood_center", {"xz.parquet": _findings_table(
        2, item_code=["BLOOD_DONATION"] * 2, level=[None] * 2,
        quantity=pa.array([Decimal("12.34567"), Decimal("2.5")], pa.decimal128(38, 10)))}, None),
    "json_array": ("traffic_police", {"fy.jsonl": "[" + _json("J1") + "]\n"}, None),
    "json_not_an_object": ("traffic_police", {"fy.jsonl": _json("J1") + "\n[1, 2]\n"}, None),
    "json_extra_keys": ("traffic_police", {"fy.jsonl": _json("J1", religion="x") + "\n"
                                           + _json("J2", remark="y") + "\n"}, None),
    "empty_file": ("court", {"fy.csv": b""}, None),
    "unnamed_column": ("court", {"fy.csv": FINDINGS_HEADER + ",\n" + GOOD[0] + ",\n"}, None),
    "repeated_header": ("court", {"fy.csv": csv_of(GOOD[0], FINDINGS_HEADER, GOOD[1])}, None),
    "workbook_named_csv": ("court", {"fy.csv": _xlsx()}, None),
    "semicolons": ("court", {"fy.csv": FINDINGS_HEADER.replace(",", ";") + "\n"}, None),
    "manifest_mismatch": ("court", {"fy.csv": csv_of(*GOOD)}, 5),
    "wrong_field_count": ("court", {"fy.csv": csv_of(*GOOD, "T9,broken")}, None),
    "bad_share": ("court", {"fy.csv": csv_of(*(row(f"T{i}", occurred="2026-13-01")
                                               for i in range(1, 26)))}, None),
    # issue 23
    "typographic_quote": ("court", {"fy.csv": csv_of(
        GOOD[0], row("T2", case_ref='"沪(2026)第12号”'), *GOOD[2:])}, None),
    "nul_padding": ("court", {"fy.csv": csv_of(row("T1", case_ref="JJ\x00\x00"), *GOOD[1:])},
                    4),
    "control_in_jsonl": ("traffic_police", {"fy.jsonl": _json("J1", case_ref="a\u0007b")
                                            + "\n" + _json("J2") + "\n"}, None),
    "control_in_parquet": ("market_regulation", {"sj.parquet": _findings_table(
        2, case_ref=["x\x02y", "ok\x00"])}, None),
}


#: what landing does with each fault kind (so that the comparison cannot pass by both failing)
EXPECTED = {
    "bad_share": "stop",
    "clean": "land",
    "control_in_jsonl": "quarantine",
    "control_in_parquet": "quarantine",
    "cr_only_line_ends": "land",
    "empty_file": "stop",
    "gb18030_in_jsonl": "stop",
    "id_normal_forms": "quarantine",
    "json_array": "stop",
    "json_extra_keys": "quarantine",
    "json_not_an_object": "quarantine",
    "manifest_mismatch": "stop",
    "nul_padding": "land",
    "quantity_needs_rounding": "quarantine",
    "repeated_header": "stop",
    "semicolons": "stop",
    "type_cannot_hold_meaning": "stop",
    "typographic_quote": "quarantine",
    "undecodable_rows": "quarantine",
    "unnamed_column": "stop",
    "utc_timestamps": "land",
    "utf8_in_gb18030_source": "stop",
    "workbook_named_csv": "stop",
    "wrong_field_count": "quarantine",
}


def _landing_verdict(settings, source_id):
    try:
        landed = land_source(source_id, MONTH, "r1", settings)
    except (DeliveryError, BatchRejected) as exc:
        return "stop", str(exc), {}
    return ("quarantine" if landed["quarantined"] else "land"), None, landed["by_reason"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_check_delivery_gives_the_verdict_landing_gives(settings, fault):
    source_id, files, count = FAULTS[fault]
    folder = deliver(settings.landing, source_id, files,
                     manifest=None if count is None else {"row_count": count})
    paths = sorted(p for p in folder.iterdir() if p.name != "_READY")
    checked = check_delivery(source_id, paths, settings, month=MONTH)
    outcome, message, by_reason = _landing_verdict(settings, source_id)
    assert outcome == EXPECTED[fault], message
    assert checked.outcome == outcome, (checked.stop, message)
    assert checked.by_reason == by_reason or outcome == "stop"
    if outcome == "stop":
        assert checked.stop == message
    assert checked.exit_status == {"land": EXIT_CLEAN, "quarantine": EXIT_QUARANTINE,
                                   "stop": EXIT_STOP}[outcome]


def test_check_delivery_writes_nothing_and_reports_in_both_languages(settings, tmp_path):
    bad = idn(seq=7, good=False)
    folder = deliver(tmp_path / "dept", "court", {"fy.csv": csv_of(
        GOOD[0], row("T2", case_ref='"沪(2026)第12号”', name="李娜"),
        row("T3", id_number=bad, name="王芳"), GOOD[3])})
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court", str(folder)])
    assert result.exit_code == EXIT_QUARANTINE, result.output
    out = result.output
    assert "court 2026-01" in out and "would land; 2 row(s) would be quarantined" in out
    assert "可以入库，但有 2 行将被隔离" in out
    assert "[bad_id_number] 身份证号码无效 / identity number not valid: 1" in out
    assert "fy.csv 第 2 行 line 2: a quote (\") opens the value of case_ref" in out
    assert "fy.csv 第 3 行 line 3: id_number: wrong check character" in out
    no_personal_data(out, "李娜", "王芳", bad)
    assert not settings.warehouse.exists() or not any(settings.warehouse.iterdir())
    clean = deliver(tmp_path / "clean", "court", {"fy.csv": csv_of(*GOOD)})
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court", "--json",
                                      str(clean / "fy.csv")])
    assert result.exit_code == EXIT_CLEAN and json.loads(result.output)["outcome"] == "land"
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court",
                                      str(tmp_path / "nothing.csv")])
    assert result.exit_code == 2


def test_check_delivery_takes_the_month_from_the_file_names_outside_a_month_folder(settings,
                                                                                    tmp_path):
    """A department checks its export where it is: no <YYYY-MM>/ folder, but every file named
    for the month (docs/departments.md): that month, not last month."""
    import datetime as dt

    from citycredit.ingest.check import delivery_month

    folder = tmp_path / "export"
    folder.mkdir()
    first, second = folder / "court_2026-10_01.csv", folder / "court_2026-10_02.csv"
    for f in (first, second):
        f.write_text("x")
    today = dt.date(2026, 12, 6)
    assert delivery_month([first, second], today) == "2026-10"
    assert delivery_month([folder], today) == "2026-10"
    (folder / "court_2026-09_03.csv").write_text("x")      # two months named: no guess
    assert delivery_month([folder], today) == "2026-11"
    month_folder = tmp_path / "2026-08"
    month_folder.mkdir()
    (month_folder / "court_2026-10_01.csv").write_text("x")
    assert delivery_month([month_folder / "court_2026-10_01.csv"], today) == "2026-08"
    # neither folder nor names give the month: the report says it assumed last month
    plain = tmp_path / "plain" / "court.csv"
    plain.parent.mkdir()
    plain.write_text(csv_of(*GOOD), "utf-8")
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court", str(plain)])
    assert "(月份按上月推定 / month assumed: last month; give --month YYYY-MM)" in result.output
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court", "--month",
                                      "2026-10", str(plain)])
    assert "court 2026-10 — court.csv" in result.output and "assumed" not in result.output
    named = tmp_path / "plain" / "court_2026-10_01.csv"         # the month from the file name
    plain.rename(named)
    result = CliRunner().invoke(cli, ["check-delivery", "--source", "court", str(named)])
    assert "court 2026-10 (月份取自文件名 / month from the file names)" in result.output
    assert "assumed" not in result.output
