"""Tests of the synthetic city (citycredit/synth/) and identity numbers (identity.py).

The landing zone is read back with an independent mini-validator (csv / json / pyarrow.parquet /
python-stdnum), not with generator code, so the ground truth in _truth/ is reconciled for real.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from stdnum.cn import ric

from citycredit import synth
from citycredit.identity import (birth_date, make_id_numbers, sex, subject_key,
                                 is_valid_id_number)

REPO = Path(__file__).resolve().parents[2]
CONF = yaml.safe_load((REPO / "conf" / "sources.yaml").read_text(encoding="utf-8"))["sources"]
CATALOGUE = {"COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "ADMIN_PENALTY", "UNCIVIL_CONDUCT",
             "LOAN_ARREARS", "COMMITMENT_SIGNED", "COMMITMENT_BREACH", "COMMENDATION",
             "BRAVERY", "VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION",
             "PROVINCIAL_CREDIT_SCORE",
             # rule format v2 (issue 14)
             "CREDIT_SERVICE_SETTLED", "CREDIT_SERVICE_OVERDUE", "CREDIT_REPAIR_COMPLETED"}
NEGATIVE = {"COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY", "UNCIVIL_CONDUCT", "LOAN_ARREARS",
            "COMMITMENT_BREACH"}
COLUMNS = ["record_id", "id_number", "name", "item_code", "level", "quantity", "occurred_on",
           "valid_until", "status", "case_ref"]
FORBIDDEN = {"religion", "ethnicity", "political_affiliation", "biometrics", "fingerprint"}
LEVELS = {"minor", "general", "serious", "international", "national", "provincial", "municipal",
          "county"}
REF_ADULTS, REF_MONTHS = 2_250_000, 36

ADULTS, MONTHS, END, SEED = 100_000, 6, "2025-06", 11
MONTH_LIST = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]


def _month_end(month: str) -> dt.date:
    y, m = map(int, month.split("-"))
    return (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1))


def _month_start(month: str) -> dt.date:
    y, m = map(int, month.split("-"))
    return dt.date(y, m, 1)


def _months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _stdnum_valid(s) -> bool:
    """Bulk check: citycredit.identity.is_valid_id_number, which the identity tests prove to
    agree with stdnum.cn.ric.is_valid (stdnum itself takes ~0.25 ms a number; the tiny-city test
    below runs stdnum proper over every identity number)."""
    return is_valid_id_number(s)


def _birth(s: str) -> dt.date:
    return dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


# ----------------------------------------------------------------------------- reading back
def read_delivery(folder: Path, encoding: str = "utf-8"):
    """Rows of one findings delivery as dicts with raw values plus _file/_line/_decode_error."""
    rows = []
    for f in sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".jsonl", ".parquet")):
        if f.suffix == ".csv":
            enc = encoding
            lines = f.read_bytes().split(b"\n")
            assert lines[-1] == b""
            header = next(csv.reader([lines[0].decode(enc)]))
            for i, raw in enumerate(lines[1:-1], start=1):
                try:
                    text = raw.decode(enc)
                    bad_enc = False
                except UnicodeDecodeError:
                    text = raw.decode(enc, errors="replace")
                    bad_enc = True
                vals = next(csv.reader([text]))
                r = dict(zip(header, vals))
                r = {k: (v if v != "" else None) for k, v in r.items()}
                r.update(_file=f.name, _line=i, _decode_error=bad_enc, _extra=set())
                rows.append(r)
        elif f.suffix == ".jsonl":
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
                obj = json.loads(line)
                r = {k: obj.get(k) for k in COLUMNS}
                r.update(_file=f.name, _line=i, _decode_error=False,
                         _extra=set(obj) - set(COLUMNS))
                rows.append(r)
        else:
            for i, obj in enumerate(pq.read_table(f).to_pylist(), start=1):
                obj.update(_file=f.name, _line=i, _decode_error=False, _extra=set())
                rows.append(obj)
    return rows


def _parse_date(v, fmt):
    if v is None or isinstance(v, dt.date):
        return v
    return dt.datetime.strptime(v, fmt).date()


def classify(row, sid: str, month: str, seen: set) -> list:
    """Independent validation: the reasons why a row is bad (empty list = clean)."""
    fmt = CONF[sid].get("date_format", "%Y-%m-%d")
    reasons = []
    if row["_decode_error"]:
        reasons.append("encoding")
    if row["_extra"] & FORBIDDEN:
        reasons.append("forbidden_field")
    if any(row[k] in (None, "") for k in ("record_id", "id_number", "item_code", "occurred_on",
                                          "status")):
        reasons.append("missing_required")
    elif row["status"] not in ("active", "revoked"):
        reasons.append("bad_status")
    if row["id_number"] and not row["_decode_error"] and not _stdnum_valid(row["id_number"]):
        reasons.append("bad_id_number")
    if row["item_code"] and row["item_code"] not in CATALOGUE:
        reasons.append("unknown_item")
    try:
        occ = _parse_date(row["occurred_on"], fmt)
        valid = _parse_date(row["valid_until"], fmt)
    except ValueError:
        reasons.append("bad_date")
    else:
        if occ is not None and occ > _month_end(month):
            reasons.append("date_after_month")
        if occ is not None and valid is not None and valid < occ:
            reasons.append("valid_before_occurred")
    q = row["quantity"]
    if q is not None:
        try:
            if Decimal(str(q)) < 0:
                reasons.append("negative_quantity")
        except InvalidOperation:
            reasons.append("bad_quantity")
    rid = row["record_id"]
    if rid:
        if rid in seen:
            reasons.append("duplicate_record_id")
        seen.add(rid)
    return reasons


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def city(tmp_path_factory):
    landing = tmp_path_factory.mktemp("city")
    summary = synth.generate_city(landing, ADULTS, MONTHS, END, seed=SEED)
    return landing, summary


@pytest.fixture(scope="module")
def findings(city):
    """{(sid, month): rows} with each row classified, plus the truth file."""
    landing, _ = city
    out = {}
    for sid, cfg in CONF.items():
        if cfg["kind"] != "findings":
            continue
        for month in MONTH_LIST:
            rows = read_delivery(landing / sid / month, cfg.get("encoding", "utf-8"))
            seen: set = set()
            for r in rows:
                r["_reasons"] = classify(r, sid, month, seen)
            out[sid, month] = rows
    return out


@pytest.fixture(scope="module")
def truth(city):
    landing, _ = city
    with open(landing / "_truth" / "bad_rows.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def population(city):
    landing, _ = city
    return {m: [r for f in sorted((landing / "population" / m).glob("*.parquet"))
                for r in pq.read_table(f).to_pylist()] for m in MONTH_LIST}


def _clean(findings):
    for (sid, month), rows in findings.items():
        for r in rows:
            if not r["_reasons"]:
                yield sid, month, r


# ----------------------------------------------------------------------------- identity
def test_make_id_numbers_matches_stdnum_on_thousands():
    rng = np.random.default_rng(5)
    n = 5000
    regions = rng.choice([110105, 370100, 370200, 410300, 320100, 371002, 371082], n)
    births = (np.datetime64("1993-01-01") + rng.integers(0, 365 * 30, n)).astype("datetime64[D]")
    seqs = rng.integers(0, 1000, n)
    ids = make_id_numbers(regions, births, seqs)
    assert ids.dtype.kind == "U" and ids.shape == (n,)
    for s, b, q in zip(ids.tolist(), births.tolist(), seqs.tolist()):
        assert len(s) == 18
        assert ric.calc_check_digit(s) == s[-1]
        assert ric.is_valid(s) and is_valid_id_number(s)
        assert birth_date(s) == b
        assert sex(s) == ("M" if q % 2 else "F")
    # any other check character is rejected, by stdnum and by us
    for s in ids[:500].tolist():
        for c in "0123456789X":
            if c != s[-1]:
                t = s[:-1] + c
                assert not ric.is_valid(t) and not is_valid_id_number(t)


def _valid_but_for_region_year(s):
    from stdnum import numdb
    try:
        born = ric.get_birth_date(s)
    except Exception:
        return False
    return (s[:17].isdigit() and s[17].upper() == ric.calc_check_digit(s)
            and any("county" in p for _, p in numdb.get("cn/loc").info(s[:6])))


def test_is_valid_id_number_agrees_with_stdnum_on_random_strings():
    rng = np.random.default_rng(9)
    regions = rng.choice([371003, 371081, 372102, 370620, 999999, 110101, 110103], 3000)
    years = rng.integers(1900, 2030, 3000)
    samples = []
    for reg, y in zip(regions.tolist(), years.tolist()):
        body = f"{reg}{y:04d}{rng.integers(1, 13):02d}{rng.integers(1, 32):02d}" \
               f"{rng.integers(0, 1000):03d}"
        samples.append(body + ric.calc_check_digit(body + "0"))
        samples.append(body + "X")
    samples += ["", "12345", "37100219931122358", "3710021993112235855", "37100219931122358a",
                "371002199311223585 ", "371002199302303585"]
    agree = 0
    for s in samples:
        # stdnum's verdict, except that a region code counts if it existed in any year: cards
        # carry the code of where they were issued, which may be created after the birth year;
        # surrounding blanks are trimmed first (identity.normalise_id_number)
        t = s.strip()
        expected = (len(t) == 18 and (ric.is_valid(t) or _valid_but_for_region_year(t))
                    and ric.get_birth_date(t) <= dt.date.today())
        assert is_valid_id_number(s) == expected, s
        agree += expected
    assert agree > 500       # the sample holds plenty of valid numbers too
    # 环翠区 got code 371002 in 1987: an older resident's card issued there carries it
    assert not ric.is_valid("371002197001010016") and is_valid_id_number("371002197001010016")
    assert is_valid_id_number("11010519491231002x")   # lowercase check character
    assert not is_valid_id_number(None)
    with pytest.raises(ValueError):
        birth_date("371002199311223584")


def test_weihai_region_eras_are_valid_in_every_birth_year():
    for district, eras in synth.WEIHAI_ERAS.items():
        years = set()
        for first, last, code in eras:
            for y in range(max(first, 1915), min(last, 2015) + 1):
                years.add(y)
                s = make_id_numbers([code], [np.datetime64(f"{y}-07-01")], [17])[0]
                assert ric.is_valid(s), (district, y, code)
        assert years == set(range(1915, 2016)), district
    for code in synth.MIGRANT_CODES.tolist():
        for y in range(1915, 2016, 3):
            assert ric.is_valid(make_id_numbers([code], [np.datetime64(f"{y}-03-09")], [1])[0])


def test_subject_key_is_hmac_sha256_of_upper_id():
    key = "citycredit-development-key-not-for-production"
    s = "11010519491231002X"
    expected = hmac.new(key.encode(), s.encode(), hashlib.sha256).hexdigest()
    assert subject_key(s, key) == expected
    assert subject_key(s.lower(), key) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert subject_key(s, "another-key") != expected


# ----------------------------------------------------------------------------- layout
def test_layout_ready_manifest_and_formats(city):
    landing, summary = city
    top = {p.name for p in landing.iterdir()}
    assert top == set(CONF) | {"_truth"}
    manifests = deliveries = 0
    for sid, cfg in CONF.items():
        months = sorted(p.name for p in (landing / sid).iterdir())
        assert months == MONTH_LIST
        for month in months:
            folder = landing / sid / month
            ready = folder / "_READY"
            assert ready.is_file() and ready.stat().st_size == 0
            data = [p for p in folder.iterdir() if p.name not in ("_READY", "manifest.json")]
            assert data, (sid, month)
            assert {p.suffix for p in data} == {"." + cfg["format"]}, (sid, month)
            n = 0
            for p in data:
                if p.suffix == ".parquet":
                    n += pq.ParquetFile(p).metadata.num_rows
                elif p.suffix == ".csv":
                    n += p.read_bytes().count(b"\n") - 1
                else:
                    n += p.read_bytes().count(b"\n")
            assert summary["rows"][sid][month] == n
            deliveries += 1
            if (folder / "manifest.json").exists():
                manifests += 1
                assert json.loads((folder / "manifest.json").read_text()) == {"row_count": n}
    assert manifests >= 0.75 * deliveries            # most deliveries carry one
    assert len(list((landing / "traffic_police" / "2025-03").glob("*.jsonl"))) == 2


def test_encodings_and_date_formats(city):
    landing, _ = city
    for sid in ("public_security", "civilization_office"):
        assert CONF[sid]["encoding"] == "gb18030"
        for f in landing.glob(f"{sid}/*/*.csv"):
            raw = f.read_bytes()
            text = raw.decode("gb18030")
            assert text.startswith('"record_id","id_number"')
            if re.search(r"[\u4e00-\u9fff]", text):
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")          # really gb18030, not utf-8
    text = next(landing.glob("court/*/*.csv")).read_text(encoding="utf-8")
    assert re.search(r'"\d{4}-\d{2}-\d{2}"', text)


def test_urban_management_dates_are_yyyymmdd(findings):
    assert CONF["urban_management"]["date_format"] == "%Y%m%d"
    dates = 0
    for month in MONTH_LIST:
        for r in findings["urban_management", month]:
            if r["_reasons"]:
                continue
            for col in ("occurred_on", "valid_until"):
                if r[col] is not None:
                    assert re.fullmatch(r"\d{8}", r[col])
                    dt.datetime.strptime(r[col], "%Y%m%d")
                    dates += 1
    assert dates > 100


def test_parquet_and_jsonl_schemas(city):
    landing, _ = city
    import pyarrow as pa
    for sid in ("market_regulation", "provincial_credit"):
        schema = pq.read_schema(next(landing.glob(f"{sid}/2025-01/*.parquet")))
        assert schema.names == COLUMNS
        assert schema.field("occurred_on").type == pa.date32()
        assert pa.types.is_decimal(schema.field("quantity").type)
    pop = pq.read_schema(next(landing.glob("population/2025-01/*.parquet")))
    assert pop.names == ["id_number", "district", "residency", "status"]
    line = next(landing.glob("volunteer_federation/2025-02/*.jsonl")).read_text(
        encoding="utf-8").splitlines()[0]
    assert list(json.loads(line))[:10] == COLUMNS
    head = (landing / "appeals" / "2025-03").glob("*.csv")
    assert next(head).read_text().splitlines()[0].replace('"', "") == \
        "appeal_id,source_id,record_id,filed_on,resolved_on,outcome"
    head = next((landing / "optouts" / "2025-03").glob("*.csv")).read_text().splitlines()[0]
    assert head.replace('"', "") == "id_number,requested_on"


# ----------------------------------------------------------------------------- bad rows
def test_truth_reconciles_with_an_independent_validator(findings, truth):
    found = set()
    for (sid, month), rows in findings.items():
        for r in rows:
            assert len(r["_reasons"]) <= 1, (sid, month, r)
            if r["_reasons"]:
                found.add((sid, month, r["_file"], r["_line"], r["_reasons"][0]))
    expected = {(t["source_id"], t["month"], t["file"], int(t["line"]), t["reason"])
                for t in truth}
    assert len(expected) == len(truth)
    assert found == expected
    assert {t["reason"] for t in truth} == set(synth.BAD_REASONS)


def test_bad_share_is_respected(findings, truth):
    rows = sum(len(v) for v in findings.values())
    assert 0.0012 * rows < len(truth) < 0.003 * rows


def test_every_reason_even_in_a_tiny_city_and_stdnum_on_every_id(tmp_path):
    synth.generate_city(tmp_path, 2_000, 3, "2024-03", seed=3)
    with open(tmp_path / "_truth" / "bad_rows.csv", encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert {r["reason"] for r in truth} == set(synth.BAD_REASONS)
    bad_lines = {(t["source_id"], t["month"], t["file"], int(t["line"])) for t in truth
                 if t["reason"] in ("bad_id_number", "missing_required")}
    population = set()
    for f in tmp_path.glob("population/*/*.parquet"):
        population |= set(pq.read_table(f, columns=["id_number"]).column(0).to_pylist())
    assert len(population) > 2_000
    assert all(ric.is_valid(s) for s in population)           # stdnum proper, every number
    checked = 0
    for sid, cfg in CONF.items():
        if cfg["kind"] != "findings":
            continue
        for month in ("2024-01", "2024-02", "2024-03"):
            for r in read_delivery(tmp_path / sid / month, cfg.get("encoding", "utf-8")):
                if (sid, month, r["_file"], r["_line"]) in bad_lines:
                    continue
                assert ric.is_valid(r["id_number"]) and r["id_number"] in population
                checked += 1
    assert checked > 2_000


def test_no_bad_rows_when_share_is_zero(tmp_path):
    s = synth.generate_city(tmp_path, 2_000, 2, "2024-03", seed=3, bad_share=0.0)
    assert sum(s["bad_rows"].values()) == 0
    assert (tmp_path / "_truth" / "bad_rows.csv").read_text().strip().count("\n") == 0


# ----------------------------------------------------------------------------- content
def test_sources_deliver_only_their_items(findings):
    per_source = defaultdict(set)
    for sid, _, r in _clean(findings):
        per_source[sid].add(r["item_code"])
        if r["level"] is not None:
            assert r["level"] in LEVELS
    for sid, items in per_source.items():
        assert items <= set(CONF[sid]["items"]), sid
    assert per_source["provincial_credit"] == set(CONF["provincial_credit"]["items"])
    assert per_source["court"] == {"COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED"}


def test_items_levels_and_quantities(findings):
    levels = defaultdict(Counter)
    qty = defaultdict(list)
    for sid, _, r in _clean(findings):
        levels[r["item_code"]][r["level"]] += 1
        if r["quantity"] is not None:
            qty[r["item_code"]].append(Decimal(str(r["quantity"])))
    assert set(levels["ADMIN_PENALTY"]) == {"minor", "general", "serious"}
    assert levels["ADMIN_PENALTY"]["minor"] > levels["ADMIN_PENALTY"]["general"] \
        > levels["ADMIN_PENALTY"]["serious"] > 0
    assert set(levels["COMMENDATION"]) <= {"international", "national", "provincial",
                                           "municipal", "county"}
    assert levels["COMMENDATION"]["county"] > levels["COMMENDATION"]["municipal"] \
        > levels["COMMENDATION"]["provincial"] > 0
    assert set(qty["BLOOD_DONATION"]) == {Decimal(200), Decimal(300), Decimal(400)}
    assert {int(q) for q in qty["LOAN_ARREARS"]} == set(range(1, 7))
    assert all(0 <= q <= 1000 for q in qty["PROVINCIAL_CREDIT_SCORE"])
    assert all(q > 0 for q in qty["VOLUNTEER_SERVICE"] + qty["CHARITY_DONATION"])
    for item in ("COURT_DISHONEST_DEBTOR", "UNCIVIL_CONDUCT", "BRAVERY", "COMMITMENT_SIGNED"):
        assert not qty[item]
        assert set(levels[item]) <= {None}


def test_findings_concern_people_of_the_population(findings, population):
    ids = {m: {r["id_number"] for r in population[m]} for m in MONTH_LIST}
    n = 0
    for sid, month, r in _clean(findings):
        assert r["id_number"] in ids[month], (sid, month, r["id_number"])
        n += 1
    assert n > 10_000


def test_delivery_lag_and_dates(findings):
    seen = set()
    lag = Counter()
    primary = ("volunteer_federation", "blood_center", "traffic_police", "commitments")
    for (sid, month), rows in sorted(findings.items(), key=lambda kv: kv[0][1]):
        fmt = CONF[sid].get("date_format", "%Y-%m-%d")
        for r in rows:
            if r["_reasons"]:
                continue
            occ = _parse_date(r["occurred_on"], fmt)
            valid = _parse_date(r["valid_until"], fmt)
            assert occ <= _month_end(month)
            assert valid is None or valid >= occ
            key = (sid, r["record_id"])
            if sid in primary and key not in seen and r["item_code"] != "COMMITMENT_BREACH":
                lag[_months_between(occ, _month_start(month))] += 1     # first delivery
            seen.add(key)
    assert set(lag) == {0, 1, 2, 3}
    share0 = lag[0] / sum(lag.values())
    assert 0.45 < share0 < 0.65


def test_corrections_and_revocations(findings):
    versions = defaultdict(list)
    for (sid, month), rows in sorted(findings.items(), key=lambda kv: kv[0][1]):
        for r in rows:
            if not r["_reasons"]:
                versions[sid, r["record_id"]].append((month, r))
    changed = Counter()
    revoked = Counter()
    first = sum(1 for (sid, _), v in versions.items() if sid != "provincial_credit"
                or not v[0][1]["item_code"] == "PROVINCIAL_CREDIT_SCORE")
    for (sid, rid), vs in versions.items():
        months = [m for m, _ in vs]
        assert len(months) == len(set(months)), (sid, rid)    # never twice in one delivery
        for (m0, a), (m1, b) in zip(vs, vs[1:]):
            assert m1 > m0
            if b["status"] == "revoked":
                revoked[sid] += 1
                continue
            diff = {k for k in ("level", "quantity", "valid_until") if a[k] != b[k]}
            assert diff, (sid, rid, a, b)
            assert a["item_code"] == b["item_code"] and a["id_number"] == b["id_number"]
            changed[sid] += 1
    n_changed = sum(changed.values())
    n_revoked = sum(revoked.values())
    assert n_changed > 0.003 * first and n_revoked > 0.0015 * first
    assert len(changed) >= 6 and len(revoked) >= 6
    # court listings of performed debts get their valid_until shortened
    assert changed["court"] > 0


def test_shared_case_refs_across_departments(findings):
    cases = defaultdict(lambda: defaultdict(list))
    for sid, month, r in _clean(findings):
        if r["case_ref"]:
            cases[r["item_code"]][r["case_ref"]].append((sid, r))
    court = {c: v for c, v in cases["COURT_DISHONEST_DEBTOR"].items()
             if any(s == "court" for s, _ in v)}
    shared = [c for c, v in court.items() if any(s == "provincial_credit" for s, _ in v)]
    assert 0.25 < len(shared) / len(court) < 0.6
    for c in shared:
        assert len({r["id_number"] for _, r in court[c]}) == 1
        assert len({str(r["occurred_on"]) for _, r in court[c]}) == 1
    deeds = cases["COMMENDATION"]
    both = [v for v in deeds.values()
            if {"civilization_office"} < {s for s, _ in v}
            and {s for s, _ in v} & {"volunteer_federation", "charity_federation"}]
    assert len(both) >= 5
    assert any(len({r["level"] for _, r in v}) > 1 for v in both)      # different levels
    assert any(len({r["level"] for _, r in v}) == 1 for v in both)
    performed = {c for c, v in cases["DEBT_PERFORMED"].items()}
    assert performed and performed <= set(court)


def test_population_snapshots(population):
    first, last = population[MONTH_LIST[0]], population[MONTH_LIST[-1]]
    ids = [r["id_number"] for r in first]
    assert len(ids) == len(set(ids))
    assert all(_stdnum_valid(s) for s in ids)
    assert {r["district"] for r in first} == {"371002", "371003", "371082", "371083"}
    assert {r["residency"] for r in first} == {"hukou", "permit"}
    assert {r["status"] for r in first} == {"active"}
    assert {r["status"] for r in last} == {"active", "deceased", "moved_out"}
    end0 = _month_end(MONTH_LIST[0])

    def age(s, on):
        b = _birth(s)
        return on.year - b.year - ((on.month, on.day) < (b.month, b.day))

    ages = [age(s, end0) for s in ids]
    minors = sum(1 for a in ages if a < 18)
    assert min(ages) == 15 and max(ages) >= 85
    assert 0.025 < minors / len(ids) < 0.035
    assert abs((len(ids) - minors) - ADULTS) < 0.001 * ADULTS
    # growth: 15-year-olds and move-ins appear, nobody disappears
    last_ids = {r["id_number"] for r in last}
    assert set(ids) < last_ids
    # new adults appear each month
    end_last = _month_end(MONTH_LIST[-1])
    new_adults = [s for s in ids if age(s, end0) == 17 and age(s, end_last) == 18]
    assert len(new_adults) > 0.003 * ADULTS
    churn = sum(1 for r in last if r["status"] != "active") / len(last)
    assert 0.002 < churn < 0.012        # ~1 %/yr over 5 months


def test_provincial_credit_score_once_per_adult(findings, population):
    rows = [r for r in findings["provincial_credit", "2025-01"]
            if not r["_reasons"] and r["item_code"] == "PROVINCIAL_CREDIT_SCORE"]
    ids = [r["id_number"] for r in rows]
    assert len(ids) == len(set(ids))
    adults = [r["id_number"] for r in population["2025-01"] if r["status"] == "active"
              and _birth(r["id_number"]) <= dt.date(2025 - 18, 1, 31)]
    assert set(ids) == set(adults)
    later = {r["record_id"] for r in findings["provincial_credit", "2025-03"]
             if not r["_reasons"] and r["item_code"] == "PROVINCIAL_CREDIT_SCORE"}
    assert later and not later & {r["record_id"] for r in rows}   # only new adults


def test_scores_are_resent_once_a_year(tmp_path):
    synth.generate_city(tmp_path, 3_000, 14, "2025-02", seed=4, bad_share=0.0)
    def scores(month):
        t = pq.read_table(next((tmp_path / "provincial_credit" / month).glob("*.parquet")))
        return {r["record_id"]: r for r in t.to_pylist()
                if r["item_code"] == "PROVINCIAL_CREDIT_SCORE"}
    m0, m1, m12 = scores("2024-01"), scores("2024-02"), scores("2025-01")
    assert len(m0) > 2_900 and len(m1) < 50
    resent = set(m0) & set(m12)
    assert len(resent) > 0.97 * len(m0)
    assert all(m12[k]["occurred_on"] == dt.date(2025, 1, 1) for k in resent)
    assert all(m12[k]["id_number"] == m0[k]["id_number"] for k in resent)
    assert sum(m12[k]["quantity"] != m0[k]["quantity"] for k in resent) > 0.9 * len(resent)
    m13 = scores("2025-02")
    assert len(set(m1) & set(m13)) >= 0.8 * len(m1) > 0      # new adults' anniversary
    assert not set(m1) & set(m12)


def test_appeals_reference_negative_findings(city, findings):
    landing, _ = city
    by_rid = {}
    for (sid, month), rows in findings.items():
        for r in rows:
            if not r["_reasons"]:
                by_rid.setdefault((sid, r["record_id"]), (month, r))
    appeals = defaultdict(list)
    for month in MONTH_LIST:
        f = next((landing / "appeals" / month).glob("*.csv"))
        for r in csv.DictReader(io.StringIO(f.read_text(encoding="utf-8"))):
            appeals[r["appeal_id"]].append((month, r))
    assert appeals
    resolved = 0
    for aid, versions in appeals.items():
        month0, a = versions[0]
        delivered, finding = by_rid[a["source_id"], a["record_id"]]
        assert finding["item_code"] in NEGATIVE
        filed = dt.date.fromisoformat(a["filed_on"])
        assert 5 <= (filed - _month_end(delivered)).days <= 40
        assert filed <= _month_end(month0)
        assert len(versions) <= 2
        for month, r in versions:
            if r["resolved_on"]:
                res = dt.date.fromisoformat(r["resolved_on"])
                assert 10 <= (res - filed).days <= 90 and res <= _month_end(month)
                assert r["outcome"] in ("upheld", "rejected")
                resolved += 1
            else:
                assert r["outcome"] == ""
    assert resolved > 0


def test_optouts_each_month(city, population):
    landing, _ = city
    seen = set()
    for month in MONTH_LIST:
        f = next((landing / "optouts" / month).glob("*.csv"))
        rows = list(csv.DictReader(io.StringIO(f.read_text(encoding="utf-8"))))
        assert 1 <= len(rows) <= 20
        pop = {r["id_number"] for r in population[month]}
        for r in rows:
            assert r["id_number"] in pop and r["id_number"] not in seen
            d = dt.date.fromisoformat(r["requested_on"])
            assert _month_start(month) <= d <= _month_end(month)
            seen.add(r["id_number"])


# ----------------------------------------------------------------------------- volumes
def test_volumes_scale_with_adults_and_months(city, findings):
    landing, _ = city
    scale = ADULTS / REF_ADULTS * MONTHS / REF_MONTHS
    count = Counter()
    persons = defaultdict(set)
    for sid, month, r in _clean(findings):
        if sid == "provincial_credit" and r["item_code"] == "COURT_DISHONEST_DEBTOR":
            continue
        count[r["item_code"], r["level"]] += 1
        persons[r["item_code"]].add(r["id_number"])

    def items(item):
        return sum(v for (i, _), v in count.items() if i == item)

    assert items("VOLUNTEER_SERVICE") == pytest.approx(478_000 * scale, rel=0.12)
    assert items("BLOOD_DONATION") == pytest.approx(238_000 * scale, rel=0.12)
    assert items("CHARITY_DONATION") == pytest.approx(201_000 * scale, rel=0.12)
    assert items("COMMITMENT_SIGNED") == pytest.approx(600_000 * scale, rel=0.12)
    assert count["ADMIN_PENALTY", "minor"] == pytest.approx(150_000 * scale, rel=0.15)
    assert count["ADMIN_PENALTY", "general"] == pytest.approx(60_000 * scale, rel=0.2)
    assert len(persons["COURT_DISHONEST_DEBTOR"]) == pytest.approx(
        0.01 * ADULTS * MONTHS / REF_MONTHS, rel=0.3)


def test_volume_doubles_with_adults(tmp_path):
    a = synth.generate_city(tmp_path / "a", 10_000, 3, "2024-06", seed=1, bad_share=0.0)
    b = synth.generate_city(tmp_path / "b", 20_000, 3, "2024-06", seed=1, bad_share=0.0)
    for sid in ("volunteer_federation", "commitments", "blood_center"):
        ratio = b["rows_by_source"][sid] / a["rows_by_source"][sid]
        assert 1.7 < ratio < 2.3, sid
    c = synth.generate_city(tmp_path / "c", 10_000, 6, "2024-06", seed=1, bad_share=0.0)
    vol = "volunteer_federation"
    ratio = c["rows_by_source"][vol] / a["rows_by_source"][vol]
    assert 1.7 < ratio < 2.3


# ----------------------------------------------------------------------------- determinism
def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    synth.generate_city(tmp_path / "a", 2_000, 3, "2024-03", seed=21)
    synth.generate_city(tmp_path / "b", 2_000, 3, "2024-03", seed=21)
    synth.generate_city(tmp_path / "c", 2_000, 3, "2024-03", seed=22)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) > 50 and a == b
    data = [k for k in set(a) & set(c) if k.rsplit(".", 1)[-1] in ("csv", "jsonl", "parquet")
            and not k.startswith("_")]
    differing = [k for k in data if a[k] != c[k]]
    assert len(differing) > 0.8 * len(data)
    assert all(a[k] != c[k] for k in data if k.startswith(("population/", "provincial_credit/")))
    # regenerating into a used landing replaces deliveries, leaving the same bytes
    synth.generate_city(tmp_path / "a", 2_000, 3, "2024-03", seed=21)
    assert _tree(tmp_path / "a") == b


def test_custom_catalogue_onboards_a_department(tmp_path):
    sources = {
        "population": {"kind": "population"},
        "traffic_police": CONF["traffic_police"],
        "tax_bureau": {"kind": "findings", "title": "税务局", "items": ["ADMIN_PENALTY"],
                       "required": False},
        "optouts": {"kind": "optouts"},
    }
    s = synth.generate_city(tmp_path, 20_000, 2, "2024-02", seed=2, sources=sources)
    assert {p.name for p in tmp_path.iterdir()} == set(sources) | {"_truth"}
    rows = read_delivery(tmp_path / "tax_bureau" / "2024-02")
    assert rows and {r["item_code"] for r in rows if r["item_code"] in CATALOGUE} \
        == {"ADMIN_PENALTY"}
    assert list((tmp_path / "tax_bureau" / "2024-02").glob("*.csv"))     # csv, utf-8 default
    assert (tmp_path / "tax_bureau" / "2024-02" / "_READY").exists()
    assert s["rows_by_source"]["tax_bureau"] > 0
