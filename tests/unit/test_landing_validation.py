"""Landing (citycredit.ingest.delivery, .read) and validation (citycredit.ingest.validate): real files, real GX.

Every delivery here is written by hand into a temp landing zone: csv in utf-8 and gb18030, jsonl,
parquet; each holds good rows and one bad row per reason class, and the tests check that each bad
row is quarantined with the right reason(s), file and line, the good ones are accepted with proper
types and without names, and landed = accepted + quarantined.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citycredit.config import load_sources
from citycredit.identity import is_valid_id_number, valid_id_numbers
from citycredit.ingest.delivery import DeliveryError, find_delivery
from citycredit.ingest.read import read_delivery
from citycredit.ingest.validate import (SuiteError, data_docs_pages, duplicated_later,
                                        load_suite, validate_batch)
from citycredit.rules import load_catalogue

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = load_sources(PROJECT / "conf" / "sources.yaml")
CATALOGUE = {code: (set(item.levels) if item.levels else None)
             for code, item in load_catalogue(PROJECT / "rules").items.items()}
FORBIDDEN = ["religion", "ethnicity", "political_affiliation", "biometrics"]
LENIENT = {"max_bad_share": 1.0, "forbidden_columns": FORBIDDEN}   # row checks, not batch verdict
MONTH = "2026-01"
CHECK = "10X98765432"
W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def idn(birth: str = "19900115", seq: int = 123, region: str = "371002", good: bool = True) -> str:
    """A resident identity number with a right (or deliberately wrong) check character."""
    body = f"{region}{birth}{seq:03d}"
    check = CHECK[sum(int(c) * w for c, w in zip(body, W)) % 11]
    if not good:
        check = CHECK[(CHECK.index(check) + 1) % 11]
    return body + check


def id_with_x() -> str:
    seq = next(s for s in range(1000) if idn(seq=s).endswith("X"))
    return idn(seq=seq)


def deliver(landing: Path, source_id: str, files: dict, month: str = MONTH, manifest=None,
            ready: bool = True) -> Path:
    folder = landing / source_id / month
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, pa.Table):
            pq.write_table(content, folder / name)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest))
    if ready:
        (folder / "_READY").touch()
    return folder


def land_and_validate(landing: Path, source_id: str, settings=LENIENT, month: str = MONTH):
    delivery = find_delivery(landing, source_id, month)
    assert delivery is not None
    raw = read_delivery(delivery, SOURCES[source_id], forbidden_columns=FORBIDDEN)
    result = validate_batch(raw, source_id, SOURCES[source_id], month, CATALOGUE, settings)
    c = result.counts
    assert c["landed"] == raw.landed == c["accepted"] + c["quarantined"]
    assert len(result.accepted) == c["accepted"] and len(result.quarantined) == c["quarantined"]
    json.dumps(result.gx_results)                     # kept per run: must be JSON
    return raw, result


def reasons_by_line(result, file: str | None = None) -> dict[int, set[str]]:
    q = result.quarantined
    if file is not None:
        q = q[q["file"] == file]
    return {int(line): set(reasons.split(";")) for line, reasons in zip(q["line"], q["reasons"])}


FINDINGS_HEADER = "record_id,id_number,name,item_code,level,quantity,occurred_on,valid_until,status,case_ref"


# ------------------------------------------------------------------------------------------------
# findings: csv utf-8 with one bad row per reason class
# ------------------------------------------------------------------------------------------------

def test_findings_csv_utf8_each_reason_on_its_line(tmp_path):
    good = idn()
    rows = [
        f"T1,{good},张三,ADMIN_PENALTY,minor,,2026-01-05,,active,JJ-2026-1",               # 1 good
        f"T2,{id_with_x()},李四,ADMIN_PENALTY,serious,12.5,2026-01-31,2027-01-30,revoked,",  # 2 good
        f"T3,{idn(good=False)},王五,ADMIN_PENALTY,minor,,2026-01-05,,active,",             # 3
        f"T4,{good},赵六,ADMIN_PENALTY,minor,,2026-01-05,,,",                               # 4
        f"T5,{good},钱七,NOT_AN_ITEM,,,2026-01-05,,active,",                                # 5
        f"T6,{good},孙八,COMMENDATION,national,,2026-01-05,,active,",                       # 6
        f"T7,{good},周九,ADMIN_PENALTY,huge,,2026-01-05,,active,",                          # 7
        f"T8,{good},吴十,ADMIN_PENALTY,minor,,2026-02-30,,active,",                         # 8
        f"T9,{good},郑一,ADMIN_PENALTY,minor,,2026-02-01,,active,",                         # 9
        f"T10,{good},冯二,ADMIN_PENALTY,minor,-5,2026-01-05,,active,",                      # 10
        f"T11,{good},陈三,ADMIN_PENALTY,minor,\"12,5\",2026-01-05,,active,",                # 11
        f"T12,{good},褚四,ADMIN_PENALTY,minor,,2026-01-05,,deleted,",                       # 12
        f"T1,{good},卫五,ADMIN_PENALTY,general,,2026-01-06,,active,",                       # 13
        f"T14,{good},蒋六,ADMIN_PENALTY,minor",                                             # 14
        f"T15,{idn(good=False)},沈七,ADMIN_PENALTY,minor,,2026-01-05,,gone,",               # 15
        f"T16,{good},\"韩, 八\",ADMIN_PENALTY,general,  7 ,2026-01-10,,active,\"A, B\"",    # 16 good
    ]
    data = (FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8")
    data += f"T17,{good},".encode() + b"\xff\xfe" + b",ADMIN_PENALTY,minor,,2026-01-05,,active,\n"
    deliver(tmp_path, "traffic_police", {"tp.csv": data})

    raw, result = land_and_validate(tmp_path, "traffic_police")
    assert reasons_by_line(result) == {
        3: {"bad_id_number"}, 4: {"missing_required"}, 5: {"unknown_item"},
        6: {"item_not_allowed"}, 7: {"unknown_level"}, 8: {"bad_date"},
        9: {"date_after_month"}, 10: {"negative_quantity"}, 11: {"bad_quantity"},
        12: {"bad_status"}, 13: {"duplicate_record_id"}, 14: {"unparseable_row"},
        15: {"bad_id_number", "bad_status"}, 17: {"encoding"},
    }
    q = result.quarantined
    assert set(q.columns) >= {"source_id", "month", "file", "line", "reasons", "raw"}
    assert set(q["source_id"]) == {"traffic_police"} and set(q["month"]) == {MONTH}
    assert set(q["file"]) == {"tp.csv"}
    # the raw text is kept for the operator, but not the person's name (SPEC §7)
    raw3 = q.loc[q["line"] == 3, "raw"].item()
    assert raw3.startswith("T3,") and "王五" not in raw3 and "***" in raw3
    # an undecodable row keeps its fields, but the identity number masked and the name removed
    assert q.loc[q["line"] == 17, "raw"].item() == (
        f"T17,{good[:6]}********{good[-4:]},,ADMIN_PENALTY,minor,,2026-01-05,,active,")

    acc = result.accepted
    assert list(acc["record_id"]) == ["T1", "T2", "T16"]
    assert list(acc["_line"]) == [1, 2, 16] and set(acc["_file"]) == {"tp.csv"}
    assert "name" not in acc.columns
    assert acc["occurred_on"].iloc[0] == dt.date(2026, 1, 5)
    assert acc["valid_until"].iloc[1] == dt.date(2027, 1, 30)
    assert pd.isna(acc["valid_until"].iloc[0])
    assert acc["quantity"].iloc[1] == Decimal("12.5") and pd.isna(acc["quantity"].iloc[0])
    assert acc["quantity"].iloc[2] == Decimal("7")            # surrounding blanks stripped
    assert acc["case_ref"].iloc[2] == "A, B" and acc["case_ref"].iloc[1] is None
    assert acc["id_number"].iloc[1].endswith("X")
    assert result.counts["by_reason"]["bad_id_number"] == 2
    assert result.counts == {"landed": 17, "accepted": 3, "quarantined": 14,
                             "by_reason": result.counts["by_reason"]}
    assert sum(result.counts["by_reason"].values()) == 15    # line 15 has two reasons
    assert result.gx_success and result.batch_errors == []   # max_bad_share 1.0 here


def test_gb18030_csv_with_chinese_names_multiline_quotes_and_a_bad_byte(tmp_path):
    good = idn(birth="19951231", seq=7)
    text = (FINDINGS_HEADER + "\n"
            + f"G1,{good},欧阳娜娜,ADMIN_PENALTY,general,,2026-01-03,,active,（2026）鲁1002行罚1号\n"
            + f"G2,{good},\"司马\n相如\",UNCIVIL_CONDUCT,,,2026-01-04,,active,\n"     # lines 2-3
            + f"G3,{good},诸葛亮,ADMIN_PENALTY,serious,,2026-01-05,,active,\n")       # line 4
    data = text.encode("gb18030")
    data += f"G4,{good},".encode("gb18030") + b"\x81\x7f" + ",ADMIN_PENALTY,minor,,2026-01-05,,active,\n".encode()
    data += f"G5,{good},上官婉儿,ADMIN_PENALTY,minor,,2026-01-06,,active,\n".encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")                                    # really not utf-8
    deliver(tmp_path, "public_security", {"ga.csv": data})

    raw, result = land_and_validate(tmp_path, "public_security")
    assert raw.data.loc[0, "name"] == "欧阳娜娜"
    assert raw.data.loc[1, "name"] == "司马\n相如"
    assert reasons_by_line(result) == {5: {"encoding"}}
    acc = result.accepted
    assert list(acc["record_id"]) == ["G1", "G2", "G3", "G5"]
    assert list(acc["_line"]) == [1, 2, 4, 6]
    assert acc["case_ref"].iloc[0] == "（2026）鲁1002行罚1号"
    assert "name" not in acc.columns


def test_stray_quote_costs_only_its_own_line(tmp_path):
    good = idn()
    text = (FINDINGS_HEADER + "\n"
            + f"S1,{good},\"张三,ADMIN_PENALTY,minor,,2026-01-05,,active,\n"    # unclosed quote
            + f"S2,{good},李四,ADMIN_PENALTY,minor,,2026-01-05,,active,\n"
            + "\n"                                                                # blank line
            + f"S3,{good},王五,ADMIN_PENALTY,minor,,2026-01-05,,active,\n")
    deliver(tmp_path, "traffic_police", {"q.csv": text})
    raw, result = land_and_validate(tmp_path, "traffic_police")
    assert raw.landed == 3                                        # the blank line is no row
    assert reasons_by_line(result) == {1: {"unparseable_row"}}
    assert list(result.accepted["_line"]) == [2, 4]


def test_source_date_format_applies(tmp_path):
    good = idn()
    text = (FINDINGS_HEADER + "\n"
            + f"U1,{good},张三,UNCIVIL_CONDUCT,,,20260105,20261231,active,\n"
            + f"U2,{good},李四,UNCIVIL_CONDUCT,,,2026-01-05,,active,\n"             # ISO: wrong here
            + f"U3,{good},王五,UNCIVIL_CONDUCT,,,20260132,,active,\n"
            + f"U4,{good},赵六,UNCIVIL_CONDUCT,,,20260105,2026-12-31,active,\n")
    deliver(tmp_path, "urban_management", {"cg.csv": text})
    _, result = land_and_validate(tmp_path, "urban_management")
    assert reasons_by_line(result) == {2: {"bad_date"}, 3: {"bad_date"}, 4: {"bad_date"}}
    acc = result.accepted
    assert acc["occurred_on"].iloc[0] == dt.date(2026, 1, 5)
    assert acc["valid_until"].iloc[0] == dt.date(2026, 12, 31)   # may lie after the month


# ------------------------------------------------------------------------------------------------
# findings: jsonl and parquet
# ------------------------------------------------------------------------------------------------

def test_findings_jsonl_keys_beyond_the_contract_and_broken_lines(tmp_path):
    good = idn(birth="20000229", seq=11)

    def rec(rid, **kw):
        base = {"record_id": rid, "id_number": good, "name": "张三", "item_code": "COMMITMENT_SIGNED",
                "level": None, "quantity": None, "occurred_on": "2026-01-10", "valid_until": None,
                "status": "active", "case_ref": f"CN-{rid}"}
        base.update(kw)
        return json.dumps(base, ensure_ascii=False)

    lines = [
        rec("J1"),                                                   # 1 good
        rec("J2", religion="佛教"),                                   # 2 forbidden_field
        rec("J3", phone="13800000000"),                              # 3 unknown_column
        '{"record_id": "J4", "id_number": ',                         # 4 unparseable_row
        '["J5"]',                                                    # 5 unparseable_row
        "",                                                          # 6 blank: no row
        rec("J7", item_code="COMMITMENT_BREACH", quantity=3),        # 7 good, number → "3"
        json.dumps({"record_id": "J8", "id_number": int(idn(seq=8)), "item_code": "COMMITMENT_SIGNED",
                    "occurred_on": "2026-01-11", "status": "active"}),   # 8 good, no name key
        rec("J9", ethnicity="汉族", status="unknown"),               # 9 forbidden + bad_status
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data += b'{"record_id": "J10", "name": "\xe5\xbc\xa0\xff"}\n'     # 10 not utf-8
    deliver(tmp_path, "commitments", {"cm.jsonl": data}, manifest={"row_count": 9})

    raw, result = land_and_validate(tmp_path, "commitments")
    assert reasons_by_line(result) == {
        2: {"forbidden_field"}, 3: {"unknown_column"}, 4: {"unparseable_row"},
        5: {"unparseable_row"}, 9: {"forbidden_field", "bad_status"}, 10: {"encoding"},
    }
    q = result.quarantined
    raw2 = q.loc[q["line"] == 2, "raw"].item()
    assert json.loads(raw2)["religion"] == "***" and "佛教" not in raw2 and "张三" not in raw2
    acc = result.accepted
    assert list(acc["record_id"]) == ["J1", "J7", "J8"]
    assert acc["quantity"].iloc[1] == Decimal("3")
    assert acc["id_number"].iloc[2] == idn(seq=8)
    assert acc["occurred_on"].iloc[2] == dt.date(2026, 1, 11)


def test_findings_parquet_typed_columns(tmp_path):
    good = idn(birth="19880808", seq=88)
    table = pa.table({
        "record_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
        "id_number": [good, idn(good=False), good, good, good, good],
        "name": ["张三", "李四", "王五", "赵六", "钱七", None],
        "item_code": ["ADMIN_PENALTY"] * 6,
        "level": ["minor", "minor", "minor", "general", "serious", "minor"],
        "quantity": pa.array([Decimal("1.5"), None, None, Decimal("-2"), None, None],
                             pa.decimal128(18, 4)),
        "occurred_on": pa.array([dt.date(2026, 1, 2), dt.date(2026, 1, 2), dt.date(2026, 2, 1),
                                 dt.date(2026, 1, 2), dt.date(2026, 1, 2), None], pa.date32()),
        "status": ["active", "active", "active", "active", None, "active"],
    })
    deliver(tmp_path, "market_regulation", {"sj.parquet": table})
    raw, result = land_and_validate(tmp_path, "market_regulation")
    assert raw.data["_raw"].isna().all()              # parquet: no text per row
    assert reasons_by_line(result) == {2: {"bad_id_number"}, 3: {"date_after_month"},
                                       4: {"negative_quantity"}, 5: {"missing_required"},
                                       6: {"missing_required"}}
    q = result.quarantined
    rendered = json.loads(q.loc[q["line"] == 2, "raw"].item())
    assert rendered["record_id"] == "P2" and rendered["name"] == "***"
    acc = result.accepted
    assert list(acc["record_id"]) == ["P1"] and acc["quantity"].iloc[0] == Decimal("1.5")
    assert acc["occurred_on"].iloc[0] == dt.date(2026, 1, 2) and "name" not in acc.columns


def test_source_override_suite_adds_the_provincial_score_range(tmp_path):
    good = idn()
    text = (FINDINGS_HEADER + "\n"
            + f"PC1,{good},,PROVINCIAL_CREDIT_SCORE,,812,2026-01-01,,active,\n"
            + f"PC2,{good},,PROVINCIAL_CREDIT_SCORE,,1200,2026-01-01,,active,\n"
            + f"PC3,{good},,LOAN_ARREARS,,1200,2026-01-01,,active,\n"
            + f"PC4,{good},,PROVINCIAL_CREDIT_SCORE,,-1,2026-01-01,,active,\n")
    deliver(tmp_path, "provincial_credit", {"pc.csv": text})
    _, result = land_and_validate(tmp_path, "provincial_credit")
    assert reasons_by_line(result) == {2: {"bad_quantity"}, 4: {"negative_quantity"}}
    assert load_suite("provincial_credit", "findings")["meta"]["citycredit"]["files"] == [
        "kind.findings.json", "provincial_credit.json"]


def test_several_files_keep_their_own_file_and_line(tmp_path):
    good = idn()
    a = FINDINGS_HEADER + "\n" + f"M1,{good},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,\n"
    b = (FINDINGS_HEADER + "\n" + f"M2,{good},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,\n"
         + f"M1,{good},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,revoked,\n")
    c = json.dumps({"record_id": "M3", "id_number": good, "item_code": "DEBT_PERFORMED",
                    "occurred_on": "2026-01-09", "status": "active"}) + "\n"
    deliver(tmp_path, "court", {"a.csv": a, "b.csv": b, "c.jsonl": c}, manifest={"row_count": 4})
    raw, result = land_and_validate(tmp_path, "court")
    assert [(f.name, f.rows) for f in raw.files] == [("a.csv", 1), ("b.csv", 2), ("c.jsonl", 1)]
    assert reasons_by_line(result, "b.csv") == {2: {"duplicate_record_id"}}   # M1 came first in a.csv
    assert list(zip(result.accepted["_file"], result.accepted["_line"])) == [
        ("a.csv", 1), ("b.csv", 1), ("c.jsonl", 1)]


# ------------------------------------------------------------------------------------------------
# population, appeals, optouts
# ------------------------------------------------------------------------------------------------

def test_population_parquet(tmp_path):
    ids = [idn(seq=s) for s in range(6)]
    table = pa.table({
        "id_number": [ids[0], ids[1], idn(seq=50, good=False), ids[3], ids[4], ids[0], ids[5],
                      "37100219500101123"],
        "district": ["371002", "371082", "371002", "37100", "371002", "371002", "371083", "371002"],
        "residency": ["hukou", "permit", "hukou", "hukou", "tourist", "hukou", "hukou", "hukou"],
        "status": ["active", "deceased", "active", "active", "active", "active", "alive", "active"],
    })
    deliver(tmp_path, "population", {"pop.parquet": table})
    _, result = land_and_validate(tmp_path, "population")
    assert reasons_by_line(result) == {3: {"bad_id_number"}, 4: {"bad_district"},
                                       5: {"bad_residency"}, 6: {"duplicate_id_number"},
                                       7: {"bad_status"}, 8: {"bad_id_number"}}
    acc = result.accepted
    assert list(acc.columns) == ["id_number", "district", "residency", "status", "_file", "_line"]
    assert list(acc["id_number"]) == [ids[0], ids[1]]


def test_empty_population_snapshot_stops_the_month(tmp_path):
    deliver(tmp_path, "population", {"pop.csv": "id_number,district,residency,status\n"})
    _, result = land_and_validate(tmp_path, "population")
    assert result.counts["landed"] == 0 and not result.gx_success
    assert any("snapshot_not_empty" in e for e in result.batch_errors)


def test_appeals_csv(tmp_path):
    text = ("appeal_id,source_id,record_id,filed_on,resolved_on,outcome\n"
            "A1,court,FY1,2026-01-10,,\n"                       # 1 open appeal
            "A2,court,FY2,2026-01-03,2026-01-20,upheld\n"       # 2 resolved
            "A3,court,FY3,2026-01-03,2026-01-20,maybe\n"        # 3 bad_outcome
            "A4,zoo,FY4,2026-01-03,,\n"                         # 4 unknown_source
            "A5,court,FY5,2026-02-03,,\n"                       # 5 date_after_month
            "A1,court,FY1,2026-01-10,2026-01-11,rejected\n"     # 6 duplicate_appeal_id
            "A7,court,,2026-01-03,,\n"                          # 7 missing_required
            "A8,court,FY8,2026-01-03,2026-13-01,\n")            # 8 bad_date
    deliver(tmp_path, "appeals", {"ap.csv": text})
    _, result = land_and_validate(tmp_path, "appeals")
    assert reasons_by_line(result) == {3: {"bad_outcome"}, 4: {"unknown_source"},
                                       5: {"date_after_month"}, 6: {"duplicate_appeal_id"},
                                       7: {"missing_required"}, 8: {"bad_date"}}
    acc = result.accepted
    assert list(acc["appeal_id"]) == ["A1", "A2"]
    assert pd.isna(acc["resolved_on"].iloc[0]) and acc["outcome"].iloc[0] is None
    assert acc["resolved_on"].iloc[1] == dt.date(2026, 1, 20)


def test_optouts_csv(tmp_path):
    text = ("id_number,requested_on\n"
            f"{idn()},2026-01-15\n"
            f"{idn(good=False)},2026-01-15\n"
            f"{idn(seq=9)},15/01/2026\n"
            f"{idn(seq=10)},\n")
    deliver(tmp_path, "optouts", {"oo.csv": text})
    _, result = land_and_validate(tmp_path, "optouts")
    assert reasons_by_line(result) == {2: {"bad_id_number"}, 3: {"bad_date"},
                                       4: {"missing_required"}}
    assert result.accepted["requested_on"].iloc[0] == dt.date(2026, 1, 15)


# ------------------------------------------------------------------------------------------------
# batch level
# ------------------------------------------------------------------------------------------------

def test_find_delivery_needs_folder_and_ready(tmp_path):
    assert find_delivery(tmp_path, "court", MONTH) is None
    deliver(tmp_path, "court", {"a.csv": FINDINGS_HEADER + "\n"}, ready=False)
    assert find_delivery(tmp_path, "court", MONTH) is None
    (tmp_path / "court" / MONTH / "_READY").touch()
    (tmp_path / "court" / MONTH / ".hidden").write_text("x")
    d = find_delivery(tmp_path, "court", MONTH)
    assert d.files == ("a.csv",) and d.manifest is None
    (tmp_path / "court" / MONTH / "notes.txt").write_text("x")
    with pytest.raises(DeliveryError, match="court 2026-01 notes.txt"):
        find_delivery(tmp_path, "court", MONTH)


def test_manifest_mismatch_names_both_counts(tmp_path):
    text = FINDINGS_HEADER + "\n" + f"R1,{idn()},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,\n"
    deliver(tmp_path, "court", {"fy.csv": text}, manifest={"row_count": 3})
    with pytest.raises(DeliveryError) as err:
        read_delivery(find_delivery(tmp_path, "court", MONTH), SOURCES["court"])
    message = str(err.value)
    assert "court" in message and MONTH in message and "manifest.json" in message
    assert "3" in message and "1 rows read" in message and "fy.csv" in message


@pytest.mark.parametrize("header, what", [
    (FINDINGS_HEADER + ",religion", "religion"),                    # forbidden column
    (FINDINGS_HEADER.replace(",status", ""), "status"),             # required column missing
    (FINDINGS_HEADER + ",phone", "phone"),                          # not in the contract
])
def test_csv_file_level_problems_stop_the_delivery(tmp_path, header, what):
    deliver(tmp_path, "court", {"fy.csv": header + "\n"})
    with pytest.raises(DeliveryError) as err:
        read_delivery(find_delivery(tmp_path, "court", MONTH), SOURCES["court"],
                      forbidden_columns=FORBIDDEN)
    message = str(err.value)
    assert "court" in message and MONTH in message and "fy.csv" in message and what in message
    assert err.value.source_id == "court" and err.value.file == "fy.csv"


def test_a_misspelt_required_column_is_named_with_the_name_the_file_has(tmp_path):
    deliver(tmp_path, "court", {"fy.csv": FINDINGS_HEADER.replace("occurred_on", "occured_on")
                                + "\n"})
    with pytest.raises(DeliveryError, match=r"missing required column\(s\) occurred_on of the "
                                            r"findings contract; the file has 'occured_on', which "
                                            r"the contract does not name \(misspelt\?\)"):
        read_delivery(find_delivery(tmp_path, "court", MONTH), SOURCES["court"])


def test_parquet_forbidden_column_and_unreadable_file(tmp_path):
    table = pa.table({"id_number": [idn()], "district": ["371002"], "residency": ["hukou"],
                      "status": ["active"], "fingerprint": ["0xdead"]})
    deliver(tmp_path, "population", {"p.parquet": table})
    with pytest.raises(DeliveryError, match=r"population 2026-01 p\.parquet.*fingerprint"):
        read_delivery(find_delivery(tmp_path, "population", MONTH), SOURCES["population"])

    deliver(tmp_path, "population", {"p.parquet": b"PAR1 this is not parquet at all"},
            month="2026-02")
    with pytest.raises(DeliveryError, match=r"population 2026-02 p\.parquet: unreadable parquet"):
        read_delivery(find_delivery(tmp_path, "population", "2026-02"), SOURCES["population"])


def test_bad_share_decides_the_batch(tmp_path):
    rows = [f"B{i},{idn(seq=i)},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active," for i in range(8)]
    rows += [f"B8,{idn(good=False)},,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,",
             "B9,,,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,"]
    deliver(tmp_path, "court", {"fy.csv": FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"})
    _, strict = land_and_validate(tmp_path, "court", {"max_bad_share": 0.05,
                                                      "forbidden_columns": FORBIDDEN})
    assert not strict.gx_success
    # the refusal says what to fix: files, reason codes with counts, an example line each
    assert strict.batch_errors == [
        "court 2026-01: 2 of 10 rows quarantined, bad share 20.00% > max_bad_share 5.00%. "
        "Bad rows by file: fy.csv 2 of 10. By reason: "
        "bad_id_number 1 (e.g. fy.csv line 9: id_number: wrong check character (GB 11643): "
        "mistyped, or digits lost to a spreadsheet); "
        "missing_required 1 (e.g. fy.csv line 10: id_number is missing)."]
    assert strict.gx_results["batch"]["success"] is False
    _, lenient = land_and_validate(tmp_path, "court", {"validation": {
        "max_bad_share": 0.2, "forbidden_columns": FORBIDDEN}})           # exactly at the limit
    assert lenient.gx_success and lenient.batch_errors == []
    assert lenient.counts["quarantined"] == 2


def test_kept_gx_results_hold_no_row_values(tmp_path):
    secret = idn(good=False, seq=777)
    text = FINDINGS_HEADER + "\n" + f"X1,{secret},张三,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,\n"
    deliver(tmp_path, "court", {"fy.csv": text})
    _, result = land_and_validate(tmp_path, "court")
    kept = json.dumps(result.gx_results, ensure_ascii=False)
    assert secret not in kept and "张三" not in kept
    rows = {r["expectation_config"]["meta"]["check"]: r for r in result.gx_results["rows"]["results"]}
    assert rows["id_number_gb11643"]["result"]["unexpected_count"] == 1
    # the Data Docs pages kept beside the JSON: the suite's checks and outcome, still no values
    pages = data_docs_pages(result.gx_results)
    assert set(pages) == {"rows", "batch"}
    assert "Expectation Suite" in pages["rows"] and "Unsuccessful Expectations" in pages["rows"]
    assert all(secret not in html and "张三" not in html for html in pages.values())


# ------------------------------------------------------------------------------------------------
# suites and helpers
# ------------------------------------------------------------------------------------------------

def test_every_suite_file_loads_in_gx():
    import great_expectations as gx

    files = sorted((PROJECT / "expectations").glob("*.json"))
    assert {f.name for f in files} >= {"kind.findings.json", "kind.population.json",
                                       "kind.appeals.json", "kind.optouts.json"}
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(**doc)
        assert len(suite.expectations) == len(doc["expectations"]), path.name
        for exp in doc["expectations"]:
            assert exp["meta"].get("reason") or exp["meta"].get("level") == "batch"


def test_a_broken_suite_is_refused_by_name(tmp_path):
    doc = json.loads((PROJECT / "expectations" / "kind.optouts.json").read_text(encoding="utf-8"))
    doc["expectations"].append({"type": "expect_column_values_to_be_typo",
                                "kwargs": {"column": "id_number"},
                                "meta": {"check": "typo", "reason": "bad_id_number"}})
    (tmp_path / "kind.optouts.json").write_text(json.dumps(doc), encoding="utf-8")
    deliver(tmp_path / "landing", "optouts", {"oo.csv": f"id_number,requested_on\n{idn()},2026-01-02\n"})
    raw = read_delivery(find_delivery(tmp_path / "landing", "optouts", MONTH), SOURCES["optouts"])
    with pytest.raises(SuiteError, match="kind.optouts.json.*typo"):
        validate_batch(raw, "optouts", SOURCES["optouts"], MONTH, CATALOGUE, LENIENT,
                       expectations_dir=tmp_path)


def test_id_check_agrees_with_the_identity_module():
    rng = random.Random(5)
    regions = ["371002", "371003", "371082", "371083", "371081", "110105", "999999"]
    values = []
    for _ in range(20_000):
        birth = f"{rng.randint(1900, 2025):04d}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
        number = idn(birth=birth, seq=rng.randint(0, 999), region=rng.choice(regions),
                     good=rng.random() < 0.8)
        r = rng.random()
        values.append(number.lower() if r < 0.05 else number[:-1] if r < 0.07
                      else " " + number if r < 0.08 else None if r < 0.1 else number)
    got = valid_id_numbers(pd.Series(values, dtype=object))
    for value, ok in zip(values, got):
        if value is None:
            assert ok is pd.NA
        else:
            assert bool(ok) == is_valid_id_number(value), value


def test_duplicates_are_second_and_later_occurrences_only():
    s = pd.Series(["a", "b", "a", None, "c", "a", None, "b"], dtype=object)
    assert duplicated_later(s).tolist() == [False, False, True, False, False, True, False, True]


# ------------------------------------------------------------------------------------------------
# a generated city against its ground truth
# ------------------------------------------------------------------------------------------------

def test_generated_city_quarantine_matches_the_truth_file(tmp_path):
    from citycredit.synth import generate_city     # an import error fails here, not a skip

    landing = tmp_path / "city"
    generate_city(landing, 1500, 1, "2024-03", seed=3, bad_share=0.03)
    legacy = {"unparseable_date": "bad_date", "future_date": "date_after_month",
              "bad_encoding": "encoding"}
    with open(landing / "_truth" / "bad_rows.csv", encoding="utf-8") as fh:
        truth = {(r["source_id"], r["month"], r["file"], int(r["line"])):
                 legacy.get(r["reason"], r["reason"]) for r in csv.DictReader(fh)}
    assert truth
    found = {}
    for source_id, conf in SOURCES.items():
        delivery = find_delivery(landing, source_id, "2024-03")
        if delivery is None:
            assert not conf["required"], source_id
            continue
        raw = read_delivery(delivery, conf)
        result = validate_batch(raw, source_id, conf, "2024-03", CATALOGUE,
                                {"max_bad_share": 0.05})
        assert result.counts["landed"] == result.counts["accepted"] + result.counts["quarantined"]
        for row in result.quarantined.itertuples():
            found[(row.source_id, row.month, row.file, row.line)] = set(row.reasons.split(";"))
        share = result.counts["quarantined"] / max(result.counts["landed"], 1)
        assert result.gx_success == (share <= 0.05), (source_id, share)
    assert set(found) == set(truth)                      # no bad row missed, no good row lost
    wrong = {k: (truth[k], found[k]) for k in truth if truth[k] not in found[k]}
    assert not wrong


def test_crlf_bom_and_the_line_by_line_fallback_agree(tmp_path):
    rows = [f"C{i},{idn(seq=i)},张{i},COURT_DISHONEST_DEBTOR,,,2026-01-05,,active," for i in range(3)]
    clean = ("\ufeff" + FINDINGS_HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8")
    broken = clean + b"C9,\xff,,COURT_DISHONEST_DEBTOR,,,2026-01-05,,active,\r\n"
    deliver(tmp_path, "court", {"a.csv": clean})
    deliver(tmp_path, "court", {"a.csv": broken}, month="2026-02")
    raw1, r1 = land_and_validate(tmp_path, "court")
    raw2, r2 = land_and_validate(tmp_path, "court", month="2026-02")
    assert list(r1.accepted["record_id"]) == list(r2.accepted["record_id"]) == ["C0", "C1", "C2"]
    assert list(raw1.data["_raw"]) == list(raw2.data["_raw"])[:3] == rows   # no \r, no BOM
    assert reasons_by_line(r2) == {4: {"encoding"}}


def test_credit_services_deliver_the_rule_format_v2_items(tmp_path):
    """The catalogue's new items pass the findings suite from the source that may deliver them;
    the source's own suite checks the days overdue."""
    good = idn()
    lines = [
        {"record_id": "X1", "id_number": good, "item_code": "CREDIT_SERVICE_SETTLED",
         "occurred_on": "2026-01-05", "status": "active", "case_ref": "XYFW-1"},
        {"record_id": "X2", "id_number": good, "item_code": "CREDIT_SERVICE_OVERDUE",
         "quantity": 12, "occurred_on": "2026-01-06", "status": "active"},
        {"record_id": "X3", "id_number": good, "item_code": "CREDIT_REPAIR_COMPLETED",
         "occurred_on": "2026-01-07", "status": "active", "case_ref": "(2025)鲁10执1号"},
        {"record_id": "X4", "id_number": good, "item_code": "CREDIT_SERVICE_OVERDUE",
         "quantity": 0, "occurred_on": "2026-01-08", "status": "active"},
        {"record_id": "X5", "id_number": good, "item_code": "COMMENDATION", "level": "county",
         "occurred_on": "2026-01-08", "status": "active"},
    ]
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    deliver(tmp_path, "credit_services", {"cs.jsonl": text})
    _, result = land_and_validate(tmp_path, "credit_services")
    assert reasons_by_line(result) == {4: {"bad_quantity"}, 5: {"item_not_allowed"}}
    assert sorted(result.accepted["item_code"]) == [
        "CREDIT_REPAIR_COMPLETED", "CREDIT_SERVICE_OVERDUE", "CREDIT_SERVICE_SETTLED"]
    # in the development conf a month goes on without this department's delivery
    assert SOURCES["credit_services"]["required"] is False
