"""Consents as a source (issue "Lookups" item 1): landed and validated by GX like the others —
real files, the shipped suite expectations/kind.consents.json, the grantees of conf/grantees.yaml."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from citycredit.config import ConfigError, load_grantees, load_sources
from citycredit.identity import check_char
from citycredit.ingest.delivery import find_delivery
from citycredit.ingest.read import read_delivery
from citycredit.ingest.validate import REASON_CODES, load_suite, validate_batch
from citycredit.rules import load_catalogue

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = load_sources(PROJECT / "conf" / "sources.yaml")
CATALOGUE = load_catalogue(PROJECT / "rules")
LENIENT = {"max_bad_share": 1.0, "forbidden_columns": ["religion"]}
MONTH = "2026-01"


def idn(seq: int = 123, birth: str = "19900115") -> str:
    body = f"371002{birth}{seq:03d}"
    return body + check_char(body)


def validate(tmp_path, text: str):
    folder = tmp_path / "consents" / MONTH
    folder.mkdir(parents=True)
    (folder / "c.csv").write_text(text, encoding="utf-8")
    (folder / "_READY").touch()
    raw = read_delivery(find_delivery(tmp_path, "consents", MONTH), SOURCES["consents"])
    result = validate_batch(raw, "consents", SOURCES["consents"], MONTH, CATALOGUE, LENIENT)
    assert result.counts["landed"] == result.counts["accepted"] + result.counts["quarantined"]
    return result


def test_consents_source_is_configured_optional_csv():
    conf = SOURCES["consents"]
    assert (conf["kind"], conf["format"], conf["required"]) == ("consents", "csv", False)
    assert load_suite("consents", "consents")["name"] == "kind.consents"


def test_each_bad_consent_row_is_quarantined_with_its_reason(tmp_path):
    bad_id = idn(7)[:-1] + ("0" if idn(7)[-1] != "0" else "1")
    text = ("consent_id,id_number,grantee,purpose,granted_on,expires_on,revoked_on\n"
            f"C1,{idn(1)},BANK01,loan,2026-01-05,2027-01-04,\n"          # 1 good, open
            f"C2,{idn(2)},PORTAL,self,2026-01-06,,2026-01-20\n"          # 2 good, revoked
            f"C3,{bad_id},BANK01,loan,2026-01-05,,\n"                    # 3 bad_id_number
            f"C4,{idn(4)},NOBANK,loan,2026-01-05,,\n"                    # 4 unknown_grantee
            f"C5,{idn(5)},BANK01,Loan Application,2026-01-05,,\n"       # 5 bad_purpose
            f"C6,{idn(6)},BANK01,loan,2026-02-01,,\n"                    # 6 date_after_month
            f"C7,{idn(8)},BANK01,loan,2026-01-10,2026-01-09,\n"          # 7 bad_date_order
            f"C8,{idn(9)},BANK01,loan,2026-01-10,,2026-01-09\n"          # 8 bad_date_order
            f"C1,{idn(1)},BANK01,loan,2026-01-05,2027-01-04,\n"          # 9 duplicate_consent_id
            f"C9,{idn(10)},BANK01,,2026-01-05,,\n"                       # 10 missing_required
            f"C10,{idn(11)},BANK01,loan,2026-01-32,,\n"                  # 11 bad_date
            f"C11,{idn(12)},BANK01,loan,2026-01-05,2030-12-31,\n")       # 12 good, far expiry
    result = validate(tmp_path, text)
    got = {int(r.line): set(r.reasons.split(";")) for r in result.quarantined.itertuples()}
    assert got == {3: {"bad_id_number"}, 4: {"unknown_grantee"}, 5: {"bad_purpose"},
                   6: {"date_after_month"}, 7: {"bad_date_order"}, 8: {"bad_date_order"},
                   9: {"duplicate_consent_id"}, 10: {"missing_required"}, 11: {"bad_date"}}
    assert {r for reasons in got.values() for r in reasons} <= set(REASON_CODES)
    acc = result.accepted
    assert list(acc["consent_id"]) == ["C1", "C2", "C11"]
    assert acc["granted_on"].iloc[0] == dt.date(2026, 1, 5)
    assert acc["expires_on"].iloc[2] == dt.date(2030, 12, 31)     # expiry may lie in the future
    assert acc["revoked_on"].iloc[1] == dt.date(2026, 1, 20)
    # no identity number in the kept GX results
    assert idn(1) not in str(result.gx_results) and bad_id not in str(result.gx_results)


def test_shipped_grantees_have_the_issue_shape():
    grantees = load_grantees(PROJECT / "conf")
    assert set(grantees) >= {"BANK01", "PORTAL"}
    assert grantees["BANK01"]["purposes"] == ["loan"] and grantees["BANK01"]["schemes"] == ["haibei"]
    assert "self" in grantees["PORTAL"]["purposes"]


@pytest.mark.parametrize("text,message", [
    ("grantees:\n  B: {name: x, key_sha256: abc, purposes: [loan], schemes: [haibei]}\n",
     r"grantee 'B': key 'key_sha256' must be the 64 lowercase hex"),
    ("grantees:\n  B: {name: x, key: k, purposes: [loan], schemes: [haibei]}\n",
     r"grantee 'B': needs exactly the keys .*unknown: key"),
    ("grantees:\n  B: {name: x, key_sha256: " + "a" * 64 + ", purposes: loan, schemes: [haibei]}\n",
     r"grantee 'B': key 'purposes' must list"),
    ("grantees:\n  A: {name: x, key_sha256: " + "a" * 64 + ", purposes: [loan], schemes: [haibei]}\n"
     "  B: {name: y, key_sha256: " + "a" * 64 + ", purposes: [loan], schemes: [haibei]}\n",
     r"grantee 'B': key 'key_sha256' is the same as grantee 'A'"),
    ("grantee: {}\n", r"grantees.yaml: expected one key 'grantees'"),
])
def test_bad_grantees_file_names_file_grantee_and_key(tmp_path, text, message):
    (tmp_path / "grantees.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_grantees(tmp_path)
