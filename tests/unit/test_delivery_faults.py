"""Real-world delivery faults (issue 10), one test per kind, on real files and real GX.

Every kind is tried with more than its example: identity numbers in every normalisation case
and every source kind; encodings both ways and for jsonl; every Parquet type a writer may choose
for a contract column; every file-shape mistake; refusal messages that say what to fix — and
never carry an identity number or a name.
"""
from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import re
import zipfile
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citycredit import catalog
from citycredit.identity import (birth_date, id_number_problem, is_valid_id_number,
                                 mask_id_number, normalise_id_number, sex, subject_key)
from citycredit.ingest.delivery import DeliveryError, find_delivery
from citycredit.ingest.read import read_delivery
from citycredit.ingest.staging import outside_population, write_staging
from citycredit.ingest.validate import validate_batch
from citycredit.io import tables
from test_landing_validation import (CATALOGUE, FINDINGS_HEADER, FORBIDDEN, LENIENT, MONTH,
                                     SOURCES, deliver, id_with_x, idn, land_and_validate,
                                     reasons_by_line)

KEY = "test-key"
POP_HEADER = "id_number,district,residency,status"


def refused(landing, source_id, month=MONTH, conf=None) -> DeliveryError:
    with pytest.raises(DeliveryError) as err:
        read_delivery(find_delivery(landing, source_id, month), conf or SOURCES[source_id],
                      forbidden_columns=FORBIDDEN)
    return err.value


def no_personal_data(text: str, *values: str) -> None:
    for value in values:
        assert value not in text, f"{value!r} in {text!r}"
    assert not re.search(r"[0-9]{17}[0-9Xx]", text), text


def finding(rid, id_number, name="张三", item="ADMIN_PENALTY", level="minor", quantity="",
            occurred="2026-01-05", status="active", case_ref=""):
    return f"{rid},{id_number},{name},{item},{level},{quantity},{occurred},,{status},{case_ref}"


# ------------------------------------------------------------------------------------------------
# 1. one normalisation of identity numbers, used by every check and key
# ------------------------------------------------------------------------------------------------

SPACES = ["\u3000", "\u00a0", "\u2003", "\t", "\u200b", "\ufeff", " \u3000 "]


def test_identity_numbers_have_one_normal_form():
    number = id_with_x()
    lower = number[:-1] + "x"
    assert normalise_id_number(lower) == number
    for space in SPACES:
        assert normalise_id_number(space + lower + space) == number, repr(space)
        assert is_valid_id_number(space + lower + space)
        assert subject_key(space + lower + space, KEY) == subject_key(number, KEY)
        assert birth_date(space + lower) == birth_date(number) == dt.date(1990, 1, 15)
        assert sex(lower + space) == sex(number)
        assert mask_id_number(space + lower) == number[:6] + "********" + number[-4:]
    # what is refused, not guessed: full-width digits, inner blanks, Excel's scientific form
    full_width = number[:-1].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + "X"
    for wrong in (full_width, number[:6] + " " + number[6:], "3.71002E+17"):
        assert normalise_id_number(wrong) != number and not is_valid_id_number(wrong)
    assert id_number_problem(full_width) == "full-width digits (use ASCII 0-9)"
    assert "scientific notation" in id_number_problem("3.71002E+17")
    assert "check character" in id_number_problem(idn(good=False))
    assert id_number_problem(number[:17]) == "17 characters, not 18"
    with pytest.raises(ValueError) as err:
        birth_date(idn(good=False))
    no_personal_data(str(err.value), idn(good=False))


def test_a_person_in_two_files_with_x_and_x_is_one_duplicate_naming_the_first(tmp_path):
    number = id_with_x()
    others = [idn(seq=s) for s in (1, 2, 3)]
    a = POP_HEADER + "\n" + "\n".join(f"{i},371002,hukou,active" for i in [others[0], number]) + "\n"
    b = (POP_HEADER + "\n" + f"{others[1]},371002,hukou,active\n"
         + f"\u3000{number[:-1]}x ,371002,hukou,active\n" + f"{others[2]},371002,permit,active\n")
    deliver(tmp_path, "population", {"pop_a.csv": a, "pop_b.csv": b})
    _, result = land_and_validate(tmp_path, "population")
    assert reasons_by_line(result, "pop_b.csv") == {2: {"duplicate_id_number"}}
    assert reasons_by_line(result, "pop_a.csv") == {}
    q = result.quarantined
    detail = q.loc[q["file"] == "pop_b.csv", "detail"].item()
    assert detail == "the same id_number as pop_a.csv line 2"
    no_personal_data(detail, number)
    assert sorted(result.accepted["id_number"]) == sorted([*others, number])


@pytest.mark.parametrize("source_id", ["traffic_police", "commitments", "market_regulation",
                                       "optouts"])
def test_every_source_kind_and_format_keys_the_normal_form(tmp_path, source_id):
    """csv, jsonl and parquet; findings and opt-outs: the key, the duplicate check and the
    accepted number are those of the normal form."""
    number = id_with_x()
    delivered = ["\u3000" + number[:-1] + "x", number + "\u200b", " " + number]
    fmt = SOURCES[source_id].get("format")
    if source_id == "optouts":
        rows = [{"id_number": v, "requested_on": "2026-01-0" + str(i + 1)}
                for i, v in enumerate(delivered)]
    else:
        item = SOURCES[source_id]["items"][0]
        rows = [{"record_id": f"R{i}", "id_number": v, "item_code": item,
                 "occurred_on": "2026-01-05", "status": "active"} for i, v in enumerate(delivered)]
    if fmt == "parquet":
        files = {"f.parquet": pa.Table.from_pylist(rows)}
    elif fmt == "jsonl":
        files = {"f.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)}
    else:
        header = list(rows[0])
        files = {"f.csv": ",".join(header) + "\n"
                 + "".join(",".join(r[h] for h in header) + "\n" for r in rows)}
    deliver(tmp_path, source_id, files)
    _, result = land_and_validate(tmp_path, source_id)
    assert set(result.accepted["id_number"]) == {number}
    if source_id == "optouts":        # no uniqueness rule for opt-outs: all three accepted
        assert result.counts["accepted"] == 3
    keys = {subject_key(v, KEY) for v in result.accepted["id_number"]}
    assert keys == {subject_key(number, KEY)}


def test_findings_of_persons_not_in_the_population_are_counted(tmp_path):
    """An Excel-truncated number that still passes the check digit is accepted — and counted."""
    people = [idn(seq=s) for s in range(3)]
    excel = next(n for n in (idn(birth="19900115", seq=s)[:15] + "000" for s in range(100, 999))
                 if is_valid_id_number(n))                         # trailing digits zeroed
    assert excel not in people
    population = pd.DataFrame({"id_number": people, "district": "371002", "residency": "hukou",
                               "status": "active", "_file": "p.csv", "_line": [1, 2, 3]})
    findings = pd.DataFrame({
        "record_id": ["F1", "F2", "F3"], "id_number": [people[0], excel, people[1][:-1] + "x"
                                                       if people[1].endswith("X") else people[1]],
        "item_code": "ADMIN_PENALTY", "level": "minor",
        "quantity": pd.array([None] * 3, dtype=pd.ArrowDtype(catalog.QUANTITY)),
        "occurred_on": pd.array([dt.date(2026, 1, 5)] * 3, dtype=pd.ArrowDtype(pa.date32())),
        "valid_until": pd.array([None] * 3, dtype=pd.ArrowDtype(pa.date32())),
        "status": "active", "case_ref": None, "_file": "f.csv", "_line": [1, 2, 3]})
    write_staging(tmp_path, population, "population", "population", MONTH, "r1", KEY)
    write_staging(tmp_path, findings, "findings", "court", MONTH, "r1", KEY)
    write_staging(tmp_path, findings.iloc[:1], "findings", "blood_center", MONTH, "r1", KEY)
    assert outside_population(tmp_path, MONTH, ["court", "blood_center"]) == {
        "court": 1, "blood_center": 0}
    assert outside_population(tmp_path, "2026-02", ["court"]) == {}   # no snapshot that month


# ------------------------------------------------------------------------------------------------
# 2. encodings detected, never guessed into garbled text
# ------------------------------------------------------------------------------------------------

def test_utf8_file_in_a_gb18030_source_is_refused_naming_both(tmp_path):
    text = FINDINGS_HEADER + "\n" + finding("G1", idn(), "欧阳娜娜", case_ref="公安行罚2026001") + "\n"
    deliver(tmp_path, "public_security", {"ga.csv": text.encode("utf-8")})
    err = refused(tmp_path, "public_security")
    message = str(err)
    assert err.source_id == "public_security" and err.month == MONTH and err.file == "ga.csv"
    assert "public_security 2026-01 ga.csv" in message
    assert "the file is UTF-8" in message and "declares gb18030" in message
    no_personal_data(message, "欧阳娜娜")


def test_gb18030_file_in_a_utf8_source_and_in_jsonl_are_refused(tmp_path):
    rows = [finding(f"C{i}", idn(seq=i), name) for i, name in enumerate(["张伟", "王芳", "李娜"])]
    deliver(tmp_path, "court", {"fy.csv": (FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n")
                                .encode("gb18030")})
    message = str(refused(tmp_path, "court"))
    assert "court 2026-01 fy.csv" in message and "GB 18030" in message
    assert "declares utf-8 for court" in message and "3 of 3 lines" in message
    record = {"record_id": "J1", "id_number": idn(), "name": "张伟",
              "item_code": "COMMITMENT_SIGNED", "occurred_on": "2026-01-10", "status": "active"}
    deliver(tmp_path, "commitments", {"cm.jsonl": (json.dumps(record, ensure_ascii=False)
                                                   + "\n").encode("gb18030")})
    message = str(refused(tmp_path, "commitments"))
    assert "GB 18030" in message and "JSON Lines are UTF-8" in message
    deliver(tmp_path, "court", {"fy.csv": codecs.BOM_UTF16_LE + FINDINGS_HEADER.encode("utf-16-le")},
            month="2026-02")
    assert "UTF-16" in str(refused(tmp_path, "court", "2026-02"))


def test_real_gb18030_is_read_even_where_it_looks_like_utf8(tmp_path):
    """陆露 in GB 18030 is C2 BD C2 B6 — valid UTF-8 (`½¶`). Only UTF-8's 3-byte characters are
    evidence of UTF-8, so this file is read as the GB 18030 it is."""
    name = "陆露"
    assert name.encode("gb18030").decode("utf-8") == "½¶"
    text = FINDINGS_HEADER + "\n" + finding("G1", idn(), name, case_ref="X-1") + "\n"
    deliver(tmp_path, "public_security", {"ga.csv": text.encode("gb18030")})
    raw, result = land_and_validate(tmp_path, "public_security")
    assert raw.data.loc[0, "name"] == name and result.counts["accepted"] == 1


def test_case_ref_in_the_declared_encoding_lands_unchanged(tmp_path):
    text = FINDINGS_HEADER + "\n" + finding("G1", idn(), case_ref="公安行罚2026001") + "\n"
    deliver(tmp_path, "public_security", {"ga.csv": text.encode("gb18030")})
    _, result = land_and_validate(tmp_path, "public_security")
    assert result.accepted["case_ref"].tolist() == ["公安行罚2026001"]


def test_undecodable_rows_are_quarantined_masked_and_without_names(tmp_path):
    good = idn(seq=5)
    rows = [finding("U1", good, "张伟"), finding("U2", good, "王芳")]
    data = (FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8")
    data += finding("U3", good, "李娜", case_ref="案2026").encode("gb18030") + b"\n"
    data += b"U4," + good.encode() + b",\xff\xfe\xfd,broken\n"          # wrong width too
    deliver(tmp_path, "traffic_police", {"fy.csv": data})
    _, result = land_and_validate(tmp_path, "traffic_police")
    assert reasons_by_line(result) == {3: {"encoding"}, 4: {"encoding"}}
    q = result.quarantined.set_index("line")
    masked = good[:6] + "********" + good[-4:]
    assert q.loc[3, "raw"] == f"U3,{masked},,ADMIN_PENALTY,minor,,2026-01-05,,active,?2026"
    assert q.loc[4, "raw"] == f"U4,{masked},?,broken"
    assert q.loc[3, "detail"] == "bytes that are not valid utf-8"
    for raw in q["raw"]:
        no_personal_data(raw, good, "李娜")
    line = json.dumps({"record_id": "J1", "id_number": good, "name": "李娜", "item_code":
                       "COMMITMENT_SIGNED", "occurred_on": "2026-01-10", "status": "active"},
                      ensure_ascii=False)
    ok = line.replace("J1", "J0").replace("李娜", "张伟")
    deliver(tmp_path, "commitments", {"cm.jsonl": (ok + "\n").encode() + line.encode("gb18030")
                                      + b"\n"})
    _, result = land_and_validate(tmp_path, "commitments")
    assert reasons_by_line(result) == {2: {"encoding"}}
    kept = json.loads(result.quarantined["raw"].item())
    assert kept["id_number"] == masked and "name" not in kept and kept["record_id"] == "J1"


# ------------------------------------------------------------------------------------------------
# 3. typed columns read by meaning
# ------------------------------------------------------------------------------------------------

def _findings_table(n: int, **columns) -> pa.Table:
    base = {"record_id": [f"P{i}" for i in range(n)], "id_number": [idn(seq=i) for i in range(n)],
            "item_code": ["ADMIN_PENALTY"] * n, "level": ["minor"] * n,
            "occurred_on": pa.array([dt.date(2026, 1, 5)] * n, pa.date32()),
            "status": ["active"] * n}
    base.update(columns)
    return pa.table(base)


def test_utc_timestamps_are_dates_in_shanghai(tmp_path):
    month = "2026-10"
    utc = pa.array([dt.datetime(2026, 10, 4, 16, tzinfo=dt.timezone.utc),
                    dt.datetime(2026, 10, 31, 16, tzinfo=dt.timezone.utc)],
                   pa.timestamp("us", tz="UTC"))
    deliver(tmp_path, "market_regulation", {"sj.parquet": _findings_table(2, occurred_on=utc)},
            month=month)
    _, result = land_and_validate(tmp_path, "market_regulation", month=month)
    assert result.accepted["occurred_on"].tolist() == [dt.date(2026, 10, 5)]
    assert reasons_by_line(result) == {2: {"date_after_month"}}
    assert result.quarantined["detail"].item() == (
        "occurred_on '2026-11-01' is after the month's last day 2026-10-31")


@pytest.mark.parametrize("values, arrow_type, want", [
    ([dt.datetime(2026, 1, 5, 0, 30)], pa.timestamp("ns", tz="Asia/Shanghai"), dt.date(2026, 1, 5)),
    ([dt.datetime(2026, 1, 4, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))],
     pa.timestamp("ms", tz="-05:00"), dt.date(2026, 1, 5)),                # 12:30 in Shanghai
    ([dt.datetime(2026, 1, 5)], pa.timestamp("ms"), dt.date(2026, 1, 5)),  # a date as midnight
    ([dt.datetime(2026, 1, 5)], pa.timestamp("s"), dt.date(2026, 1, 5)),
    ([dt.date(2026, 1, 5)], pa.date64(), dt.date(2026, 1, 5)),
    ([dt.date(2026, 1, 5)], pa.date32(), dt.date(2026, 1, 5)),
    (["2026-01-05"], pa.large_string(), dt.date(2026, 1, 5)),
])
def test_every_date_type_lands_as_its_date(tmp_path, values, arrow_type, want):
    arr = pa.array(values, pa.timestamp("us", tz=arrow_type.tz)
                   if pa.types.is_timestamp(arrow_type) and arrow_type.tz else None).cast(arrow_type)
    deliver(tmp_path, "market_regulation", {"sj.parquet": _findings_table(1, occurred_on=arr)})
    _, result = land_and_validate(tmp_path, "market_regulation")
    assert result.accepted["occurred_on"].tolist() == [want], arrow_type


def test_integer_dates_follow_the_declared_pattern(tmp_path):
    conf = {**SOURCES["urban_management"], "format": "parquet"}
    deliver(tmp_path, "urban_management",
            {"cg.parquet": _findings_table(1, item_code=["UNCIVIL_CONDUCT"], level=[None],
                                           occurred_on=pa.array([20260105], pa.int64()))})
    raw = read_delivery(find_delivery(tmp_path, "urban_management", MONTH), conf)
    result = validate_batch(raw, "urban_management", conf, MONTH, CATALOGUE, LENIENT)
    assert result.accepted["occurred_on"].tolist() == [dt.date(2026, 1, 5)]
    deliver(tmp_path, "market_regulation",                             # ISO source: no meaning
            {"sj.parquet": _findings_table(1, occurred_on=pa.array([20260105], pa.int64()))})
    message = str(refused(tmp_path, "market_regulation"))
    assert "column occurred_on has type int64" in message and "sj.parquet" in message


@pytest.mark.parametrize("column, arr, words", [
    ("occurred_on", pa.array([dt.datetime(2026, 1, 4, 16)], pa.timestamp("us")),
     "timestamp[us] without a time zone and holds times of day (first on line 1)"),
    ("occurred_on", pa.array([3600], pa.time32("s")), "type time32[ms], which cannot hold a date"),
    ("occurred_on", pa.array([46027.0]), "type double, which cannot hold a date"),
    ("id_number", pa.array([3.710021990011512e17]), "type double, which cannot hold an identity"),
    ("quantity", pa.array([True]), "type bool, which cannot hold a decimal quantity"),
    ("quantity", pa.array([dt.date(2026, 1, 1)], pa.date32()), "type date32[day], which cannot"),
    ("case_ref", pa.array([[1, 2]]), "type list<element: int64>, which cannot hold text"),
    ("record_id", pa.array([2.0 ** 60]), "values from 2^53 on are rounded, line 1"),
])
def test_types_that_cannot_hold_the_meaning_are_refused_by_column(tmp_path, column, arr, words):
    deliver(tmp_path, "market_regulation", {"sj.parquet": _findings_table(1, **{column: arr})})
    message = str(refused(tmp_path, "market_regulation"))
    assert "market_regulation 2026-01 sj.parquet" in message and f"column {column}" in message
    assert words in message


@pytest.mark.parametrize("arr, want", [
    (pa.array([Decimal("12.5")], pa.decimal128(38, 10)), Decimal("12.5")),
    (pa.array([Decimal("12.5")], pa.decimal256(60, 20)), Decimal("12.5")),
    (pa.array([Decimal("1200")], pa.decimal128(6, 0)), Decimal("1200")),
    (pa.array([Decimal("0.0001")], pa.decimal128(9, 8)), Decimal("0.0001")),
    (pa.array([2.5]), Decimal("2.5")),
    (pa.array([0.1], pa.float32()), Decimal("0.1")),
    (pa.array([1e13]), Decimal("10000000000000")),
    (pa.array([3], pa.int8()), Decimal("3")),
    (pa.array([400], pa.uint64()), Decimal("400")),
    (pa.array(["7.50"]), Decimal("7.5")),
])
def test_quantities_of_any_numeric_type_land_exactly(tmp_path, arr, want):
    table = _findings_table(1, item_code=["BLOOD_DONATION"], level=[None], quantity=arr)
    deliver(tmp_path, "blood_center", {"xz.parquet": table})
    _, result = land_and_validate(tmp_path, "blood_center")
    assert result.accepted["quantity"].tolist() == [want]


def test_quantities_that_need_rounding_are_quarantined_not_rounded(tmp_path):
    table = _findings_table(3, item_code=["BLOOD_DONATION"] * 3, level=[None] * 3,
                            quantity=pa.array([Decimal("12.34567"), Decimal("1E+15"),
                                               Decimal("2.5")], pa.decimal128(38, 10)))
    deliver(tmp_path, "blood_center", {"xz.parquet": table})
    _, result = land_and_validate(tmp_path, "blood_center")
    assert reasons_by_line(result) == {1: {"bad_quantity"}, 2: {"bad_quantity"}}
    assert result.quarantined["detail"].tolist()[0] == (
        "quantity '12.34567': expected quantity is a decimal that fits decimal(18,4)")
    assert result.accepted["quantity"].tolist() == [Decimal("2.5")]


def test_identity_numbers_as_integers_and_decimals_land_exactly(tmp_path):
    numbers = [idn(seq=s) for s in range(20) if not idn(seq=s).endswith("X")][:2]
    for name, arr in (("int", pa.array([int(n) for n in numbers], pa.int64())),
                      ("dec", pa.array([Decimal(n) for n in numbers], pa.decimal128(18, 0)))):
        table = _findings_table(2, id_number=arr)
        deliver(tmp_path, "market_regulation", {"sj.parquet": table}, month="2026-01")
        _, result = land_and_validate(tmp_path, "market_regulation")
        assert result.accepted["id_number"].tolist() == numbers, name


def test_json_numbers_are_read_by_meaning(tmp_path):
    good = idn(seq=3)
    lines = [{"record_id": "V1", "id_number": good, "item_code": "VOLUNTEER_SERVICE",
              "quantity": q, "occurred_on": "2026-01-05", "status": "active"}
             for q in ("12.50", "1.25e1", "3", "0.10000", "12.34567")]
    text = "".join(json.dumps(line).replace(f'"{line["quantity"]}"', line["quantity"])
                   .replace('"V1"', f'"V{i}"') + "\n" for i, line in enumerate(lines))
    text += json.dumps({"record_id": "V9", "id_number": int(idn(seq=8)),
                        "item_code": "VOLUNTEER_SERVICE", "quantity": 2,
                        "occurred_on": "2026-01-05", "status": "active"}) + "\n"
    deliver(tmp_path, "volunteer_federation", {"zy.jsonl": text})
    _, result = land_and_validate(tmp_path, "volunteer_federation")
    assert result.accepted["quantity"].tolist() == [Decimal("12.5"), Decimal("12.5"),
                                                    Decimal("3"), Decimal("0.1"), Decimal("2")]
    assert reasons_by_line(result) == {5: {"bad_quantity"}}
    assert result.accepted["id_number"].tolist()[-1] == idn(seq=8)


# ------------------------------------------------------------------------------------------------
# 4. file-shape mistakes stop with one clear file-level message
# ------------------------------------------------------------------------------------------------

def _records(n=3):
    return [{"record_id": f"A{i}", "id_number": idn(seq=i), "name": "张三",
             "item_code": "COMMITMENT_SIGNED", "occurred_on": "2026-01-10", "status": "active"}
            for i in range(n)]


@pytest.mark.parametrize("text, words", [
    (json.dumps(_records(), ensure_ascii=False) + "\n\n", "a JSON array (3 records), not JSON Lines"),
    (json.dumps(_records(), ensure_ascii=False, indent=2) + "\n",
     "a JSON array (3 records), not JSON Lines"),
    (json.dumps(_records(1)[0], ensure_ascii=False, indent=2) + "\n",
     "a JSON object spread over 8 lines (pretty-printed), not JSON Lines"),
    ('[{"record_id": "A1",\n', "starts a JSON array ('['), not JSON Lines"),
    ("record_id,id_number\nA1,x\n", "the first line is not a JSON object (a csv?)"),
])
def test_json_shapes_that_are_not_json_lines(tmp_path, text, words):
    deliver(tmp_path, "commitments", {"cm.jsonl": text})
    err = refused(tmp_path, "commitments")
    assert err.file == "cm.jsonl" and words in str(err)
    no_personal_data(str(err), "张三")


@pytest.mark.parametrize("name, content", [
    ("a.csv", b""), ("a.jsonl", b""), ("a.parquet", b""), ("a.jsonl", b"\n\n  \n"),
    ("a.csv", b"\xef\xbb\xbf\r\n\r\n"),
])
def test_an_empty_file_is_one_rule_for_every_format(tmp_path, name, content):
    deliver(tmp_path, "court", {name: content})
    err = refused(tmp_path, "court")
    assert err.file == name and "empty file" in str(err)
    assert "_READY and no data file" in str(err)


def test_a_month_without_rows_is_a_folder_without_data_files(tmp_path):
    deliver(tmp_path, "commitments", {})
    raw, result = land_and_validate(tmp_path, "commitments")
    assert raw.landed == 0 and result.gx_success


@pytest.mark.parametrize("header, words", [
    (FINDINGS_HEADER + ",", "column 11 of 11 has no name"),
    ("," + FINDINGS_HEADER, "column 1 of 11 has no name"),
    ("Unnamed: 0," + FINDINGS_HEADER, "column 1 ('unnamed: 0') of 11 has no name"),
    (FINDINGS_HEADER.replace(",", "\t"), "separated by tabs, not commas"),
    (FINDINGS_HEADER.replace(",", ";"), "separated by semicolons, not commas"),
])
def test_csv_columns_without_a_name(tmp_path, header, words):
    sep = "\t" if "\t" in header else ";" if ";" in header else ","
    row = finding("R1", idn()).replace(",", sep)
    deliver(tmp_path, "court", {"fy.csv": header + "\n" + row + ("," if header.endswith(",")
                                                                 else "") + "\n"})
    message = str(refused(tmp_path, "court"))
    assert "court 2026-01 fy.csv" in message and words in message
    assert "()" not in message and ", ," not in message and "column(s)  " not in message


def test_parquet_columns_without_a_name(tmp_path):
    for name in ("", "__index_level_0__", "Unnamed: 3"):
        table = _findings_table(1).append_column(name, pa.array([0]))
        deliver(tmp_path, "market_regulation", {"sj.parquet": table})
        message = str(refused(tmp_path, "market_regulation"))
        assert "column 7" in message and "has no name" in message, name


def test_a_header_without_names_from_the_contract_is_no_header(tmp_path):
    number = idn()
    deliver(tmp_path, "court", {"fy.csv": finding("R1", number) + "\n" + finding("R2", number)})
    message = str(refused(tmp_path, "court"))
    assert "no header row: the first line holds data" in message
    no_personal_data(message, number, "张三")


def test_a_repeated_header_stops_the_file(tmp_path):
    rows = [finding(f"R{i}", idn(seq=i)) for i in range(4)]
    text = "\n".join([FINDINGS_HEADER, rows[0], rows[1], FINDINGS_HEADER.upper(), rows[2],
                      rows[3]]) + "\n"
    deliver(tmp_path, "court", {"fy.csv": text})
    message = str(refused(tmp_path, "court"))
    assert "header row is repeated on data line(s) 3" in message and "fy.csv" in message
    table = _findings_table(2, record_id=["record_id", "P1"], id_number=["id_number", idn()],
                            item_code=["item_code", "ADMIN_PENALTY"], level=["level", "minor"],
                            occurred_on=["occurred_on", "2026-01-05"], status=["status", "active"])
    deliver(tmp_path, "market_regulation", {"sj.parquet": table})
    assert "repeated on data line(s) 1" in str(refused(tmp_path, "market_regulation"))


def _xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    return out.getvalue()


def _parquet_bytes() -> bytes:
    out = io.BytesIO()
    pq.write_table(_findings_table(1), out)
    return out.getvalue()


@pytest.mark.parametrize("name, content, words", [
    ("fy.csv", _parquet_bytes(), "the extension says csv but the content is a Parquet file"),
    ("fy.csv", _xlsx(), "the content is a zip archive (an Excel .xlsx workbook?)"),
    ("fy.jsonl", _parquet_bytes(), "says JSON Lines but the content is a Parquet file"),
    ("fy.parquet", (FINDINGS_HEADER + "\n").encode(), "says Parquet but the content is text"),
    ("fy.parquet", b'{"record_id": "A"}\n', "says Parquet but the content is JSON text"),
    ("fy.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Excel 97-2003 workbook"),
])
def test_an_extension_that_does_not_match_the_content(tmp_path, name, content, words):
    deliver(tmp_path, "court", {name: content})
    err = refused(tmp_path, "court")
    assert err.file == name and words in str(err)


def test_a_csv_with_a_json_body_is_one_message(tmp_path):
    deliver(tmp_path, "court", {"fy.csv": "\n".join(json.dumps(r, ensure_ascii=False)
                                                    for r in _records()) + "\n"})
    message = str(refused(tmp_path, "court"))
    assert "fy.csv: the extension says csv but the content is JSON text" in message
    no_personal_data(message, "张三")
    deliver(tmp_path, "court", {"fy.csv": "身份证号,姓名\n"}, month="2026-02")
    message = str(refused(tmp_path, "court", "2026-02"))
    assert "the header names none of the findings contract's columns (found '身份证号', '姓名'" \
        in message


# ------------------------------------------------------------------------------------------------
# 5. refusals that tell the department what to fix
# ------------------------------------------------------------------------------------------------

def test_a_bad_share_refusal_names_files_reasons_examples_and_the_date_pattern(tmp_path):
    rows = [finding(f"U{i}", idn(seq=i), item="UNCIVIL_CONDUCT", level="",
                    occurred=f"2026-09-{i % 28 + 1:02d}") for i in range(100)]
    deliver(tmp_path, "urban_management", {"cg.csv": FINDINGS_HEADER + "\n" + "\n".join(rows)},
            month="2026-10")
    strict = {"max_bad_share": 0.05, "min_bad_rows": 20, "forbidden_columns": FORBIDDEN}
    _, result = land_and_validate(tmp_path, "urban_management", strict, month="2026-10")
    assert not result.ok
    assert result.batch_errors == [
        "urban_management 2026-10: 100 of 100 rows quarantined, bad share 100.00% > "
        "max_bad_share 5.00%. Bad rows by file: cg.csv 100 of 100. By reason: bad_date 100 "
        "(e.g. cg.csv line 1: occurred_on '2026-09-01' is not a date in %Y%m%d, the date_format "
        "conf/sources.yaml declares for urban_management)."]
    assert result.quarantined["detail"].iloc[1] == (
        "occurred_on '2026-09-02' is not a date in %Y%m%d, the date_format conf/sources.yaml "
        "declares for urban_management")


def test_quarantine_details_carry_no_personal_data(tmp_path):
    number = idn(seq=9)
    rows = [finding("D1", number, "王五"), finding("D1", number, "王五"),
            finding("D3", idn(good=False), "赵六", status="gone"),
            finding("D4", number + "1", "钱七"), finding("D5", number, "孙八", item="NOPE")]
    deliver(tmp_path, "traffic_police", {"fy.csv": FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"})
    _, result = land_and_validate(tmp_path, "traffic_police")
    details = dict(zip(result.quarantined["line"], result.quarantined["detail"]))
    assert details == {
        2: "record_id 'D1' repeats fy.csv line 1",
        3: "id_number: wrong check character (GB 11643): mistyped, or digits lost to a "
           "spreadsheet; status 'gone' is not one of active, revoked",
        4: "id_number: 19 characters, not 18",
        5: "item_code 'NOPE' is not in the catalogue (rules/catalogue.yaml)",
    }
    for text in details.values():
        no_personal_data(text, number, "王五", "赵六", "钱七", "孙八")


def test_rows_that_cannot_be_parsed_keep_no_name_and_no_clear_number(tmp_path):
    good = idn(seq=6)
    rows = [finding("P1", good, "张伟"), f"P2,{good},王芳,ADMIN_PENALTY,minor",
            f'P3,{good},"李娜,ADMIN_PENALTY,minor,,2026-01-05,,active,']
    deliver(tmp_path, "traffic_police", {"fy.csv": FINDINGS_HEADER + "\n" + "\n".join(rows) + "\n"})
    _, result = land_and_validate(tmp_path, "traffic_police")
    q = result.quarantined.set_index("line")
    assert reasons_by_line(result) == {2: {"unparseable_row"}, 3: {"unparseable_row"}}
    assert q.loc[2, "raw"] == f"P2,{good[:6]}********{good[-4:]},?,ADMIN_PENALTY,minor"
    assert q.loc[2, "detail"] == "5 fields, the header has 10"
    for raw in q["raw"]:
        no_personal_data(raw, good, "王芳", "李娜")
    lines = ['{"record_id": "J1", "id_number": "%s", "name": "王芳"} trailing' % good,
             '["%s", "李娜"]' % good]
    deliver(tmp_path, "commitments", {"cm.jsonl": json.dumps(_records(1)[0]) + "\n"
                                      + "\n".join(lines) + "\n"})
    _, result = land_and_validate(tmp_path, "commitments")
    assert reasons_by_line(result) == {2: {"unparseable_row"}, 3: {"unparseable_row"}}
    assert result.quarantined["detail"].tolist() == ["more than one JSON value on the line",
                                                    "a JSON array, not a JSON object"]
    for raw in result.quarantined["raw"]:
        no_personal_data(raw, good, "王芳", "李娜")


def test_json_keys_beyond_the_contract_are_named_by_kind(tmp_path):
    record = {**_records(1)[0], "religion": "佛教", "phone": "13800000000"}
    deliver(tmp_path, "commitments", {"cm.jsonl": json.dumps(record, ensure_ascii=False) + "\n"})
    _, result = land_and_validate(tmp_path, "commitments")
    assert result.quarantined["detail"].item() == (
        "key(s) religion: forbidden (SPEC §7); key(s) phone: not in the findings contract")
