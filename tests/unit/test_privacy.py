"""Privacy on real files, no Spark: masked quarantine content with subject keys, suppression at
landing, landing files rewritten without a person (and still landable: manifests, line numbers),
and the scan over Parquet (nested, string views), logs, JSON, HTML and gb18030 csv."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from citycredit.config import load_sources
from citycredit.identity import (mask_id_number, mask_id_numbers_in, subject_key,
                                 subject_keys)
from citycredit.ingest.contracts import contract_for
from citycredit.ingest.delivery import find_delivery
from citycredit.ingest.quarantine import quarantine_raw, quarantine_subject_keys
from citycredit.ingest.read import read_delivery
from citycredit.ingest.suppress import (drop_appeals_of_erased, drop_suppressed,
                                        dropped_finding_refs)
from citycredit.privacy.landing import Targets, erase_from_landing, old_deliveries
from citycredit.privacy.scan import needles_for, scan_for

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = load_sources(PROJECT / "conf" / "sources.yaml")
KEY = "test-key"
P = "37100219900115000X"          # the person (valid: check character X)
Q = "371002199001150026"          # someone else
HEADER = '"record_id","id_number","name","item_code","level","quantity","occurred_on",' \
         '"valid_until","status","case_ref"'


def row(record_id, number, name="王某", item="ADMIN_PENALTY", level="minor", case="c"):
    return (f'"{record_id}","{number}","{name}","{item}","{level}",,"2026-01-05",,'
            f'"active","{case}"')


def test_ids_are_valid():
    from citycredit.identity import is_valid_id_number
    assert is_valid_id_number(P) and is_valid_id_number(Q)


def test_subject_keys_equal_subject_key_value_for_value():
    values = [P, P.lower(), Q, None]
    assert subject_keys(values, KEY) == [subject_key(P, KEY), subject_key(P, KEY),
                                         subject_key(Q, KEY), None]
    long_key = "k" * 100                       # longer than a SHA-256 block
    assert subject_keys([Q], long_key) == [subject_key(Q, long_key)]


def test_identity_numbers_in_text_are_masked_in_the_display_form():
    text = f"{P},{Q.lower()},WM0000000001,2026-01-05,123456789012345,12345678901234567890"
    masked = mask_id_numbers_in(text)
    assert P not in masked and Q not in masked
    assert mask_id_number(P) == "371002********000X" and mask_id_number(P) in masked
    assert "WM0000000001" in masked and "12345678901234567890" in masked
    assert "*" * 15 in masked                   # an old 15-digit card number


def delivery(tmp_path, source_id, files: dict, manifest=None, month="2026-01"):
    folder = tmp_path / "landing" / source_id / month
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, pa.Table):
            pq.write_table(content, folder / name)
        else:
            (folder / name).write_bytes(content)
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps({"row_count": manifest}))
    (folder / "_READY").write_text("")
    return find_delivery(tmp_path / "landing", source_id, month)


def test_quarantine_masks_numbers_and_keeps_the_subject_key(tmp_path):
    lines = [HEADER, row("R1", P, item="NOT_AN_ITEM"), row("R2", Q[:-1] + "9"),
             f'"R3","{P}",broken"quote', row("R4", Q)]
    d = delivery(tmp_path, "court", {"c.csv": ("\n".join(lines) + "\n").encode()})
    raw = read_delivery(d, SOURCES["court"])
    bad = raw.data.iloc[[0, 1, 2]]
    texts = quarantine_raw(bad, contract_for(SOURCES["court"]), frozenset())
    assert all(P not in t and Q[:-1] not in t for t in texts), texts
    assert mask_id_number(P) in texts[0] and "王某" not in texts[0]
    quarantined = bad.rename(columns={"_file": "file", "_line": "line"})[["file", "line"]]
    keys = quarantine_subject_keys(raw.data, quarantined, KEY)
    # a valid number (also inside a row that could not be read) gives its key; a bad one none
    assert keys == [subject_key(P, KEY), None, subject_key(P, KEY)]


def test_quarantine_masks_jsonl_and_parquet_rows(tmp_path):
    jsonl = json.dumps({"record_id": "T1", "id_number": P.lower(), "name": "李某",
                        "item_code": "X", "occurred_on": "2026-01-02", "status": "active"})
    d = delivery(tmp_path, "traffic_police", {"t.jsonl": (jsonl + "\n").encode()})
    raw = read_delivery(d, SOURCES["traffic_police"])
    text = quarantine_raw(raw.data, contract_for(SOURCES["traffic_police"]), frozenset())[0]
    assert P.lower() not in text and "李某" not in text
    assert json.loads(text)["id_number"] == mask_id_number(P.lower())
    table = pa.table({"record_id": ["M1"], "id_number": [P], "item_code": ["X"],
                      "occurred_on": ["2026-01-02"], "status": ["active"]})
    d = delivery(tmp_path, "market_regulation", {"m.parquet": table})
    raw = read_delivery(d, SOURCES["market_regulation"])
    text = quarantine_raw(raw.data, contract_for(SOURCES["market_regulation"]), frozenset())[0]
    assert P not in text and json.loads(text)["id_number"] == mask_id_number(P)


def test_suppressed_persons_are_dropped_at_landing_and_counted(tmp_path):
    lines = [HEADER, row("R1", P), row("R2", Q), row("R3", P.lower()), f'"R4","{P}",oops"']
    d = delivery(tmp_path, "court", {"c.csv": ("\n".join(lines) + "\n").encode()})
    raw = read_delivery(d, SOURCES["court"])
    kept, dropped, numbers = drop_suppressed(raw, {subject_key(P, KEY)}, KEY)
    assert dropped == 3 and kept.landed == 1
    assert numbers == {P: subject_key(P, KEY)}          # what the delivery files must lose
    assert kept.data["id_number"].tolist() == [Q]
    assert kept.data["_line"].tolist() == [2]          # file and line as delivered
    unchanged, none, _ = drop_suppressed(raw, set(), KEY)
    assert none == 0 and unchanged.landed == 4


def test_appeals_about_an_erased_persons_findings_are_dropped_at_landing(tmp_path):
    from citycredit.identity import finding_keys

    court = delivery(tmp_path / "c", "court", {"c.csv": ("\n".join(
        [HEADER, row("R1", P), row("R2", Q)]) + "\n").encode()})
    raw = read_delivery(court, SOURCES["court"])
    _kept, _n, numbers = drop_suppressed(raw, {subject_key(P, KEY)}, KEY)
    late = dropped_finding_refs(raw, "court", numbers)      # P's late finding: recorded too
    assert late == {("court", "R1")}
    erased = set(finding_keys([("court", "R1"), ("tax", "T7")], KEY))
    lines = ['"appeal_id","source_id","record_id","filed_on","resolved_on","outcome"',
             '"A1","court","R1","2026-01-20",,', '"A2","court","R2","2026-01-21",,',
             '"A3","tax"," T7 ","2026-01-22",,', '"A4","tax","R1","2026-01-23",,']
    appeals = delivery(tmp_path / "a", "appeals",
                       {"a.csv": ("\n".join(lines) + "\n").encode()})
    raw = read_delivery(appeals, SOURCES["appeals"])
    kept, dropped, named = drop_appeals_of_erased(raw, erased, KEY)
    assert dropped == 2 and named == {("court", "R1"), ("tax", "T7")}
    assert kept.data["appeal_id"].tolist() == ["A2", "A4"]   # R1 of tax is another finding
    assert drop_appeals_of_erased(raw, erased, "another-key")[1] == 0


def test_landing_files_are_rewritten_without_the_person_and_still_land(tmp_path):
    csv_lines = [HEADER, row("R1", Q), row("R2", P, name="张\n三"),        # a record over 2 lines
                 row("R3", Q, case="案\n号"), row("R4", P.lower())]
    gb = ("\r\n".join(csv_lines) + "\r\n").encode("gb18030")
    jsonl = "".join(json.dumps({"record_id": r, "id_number": n, "item_code": "ADMIN_PENALTY",
                                "level": "minor", "occurred_on": "2026-01-03",
                                "status": "active"}, ensure_ascii=False) + "\n"
                    for r, n in (("J1", P), ("J2", Q)))
    delivery(tmp_path, "public_security", {"a.csv": gb}, manifest=4)
    delivery(tmp_path, "traffic_police", {"b.jsonl": jsonl.encode()}, manifest=2)
    population = pa.table({"id_number": [Q, P], "district": ["371002"] * 2,
                           "residency": ["hukou"] * 2, "status": ["active"] * 2})
    delivery(tmp_path, "population", {"p.parquet": population}, manifest=2)
    appeals = ('"appeal_id","source_id","record_id","filed_on","resolved_on","outcome"\n'
               '"A1","court","C-P","2026-01-04",,\n"A2","court","C-Q","2026-01-04",,\n')
    delivery(tmp_path, "appeals", {"ap.csv": appeals.encode()}, manifest=2)
    before = read_delivery(find_delivery(tmp_path / "landing", "public_security", "2026-01"),
                           SOURCES["public_security"]).data

    key = subject_key(P, KEY)
    done = erase_from_landing(tmp_path / "landing", SOURCES,
                              Targets({P: key}, {("court", "C-P"): key}),
                              {"findings", "population", "optouts", "appeals"})
    assert {(f.source_id, f.rows_removed, f.manifest) for f in done} == {
        ("public_security", 2, (4, 2)), ("traffic_police", 1, (2, 1)),
        ("population", 1, (2, 1)), ("appeals", 1, (2, 1))}
    assert all(f.owners == {key: f.rows_removed} for f in done)
    for source_id in ("public_security", "traffic_police", "population", "appeals"):
        d = find_delivery(tmp_path / "landing", source_id, "2026-01")
        raw = read_delivery(d, SOURCES[source_id])         # manifest matches: no DeliveryError
        for path in d.path.iterdir():
            assert P.encode() not in path.read_bytes().upper(), path
        if source_id == "public_security":
            after = raw.data
            assert after["record_id"].tolist() == ["R1", "R3"]
            # the other rows keep their line numbers: bronze, quarantine and the department agree
            assert after["_line"].tolist() == \
                before[before["record_id"].isin(["R1", "R3"])]["_line"].tolist()
    assert read_delivery(find_delivery(tmp_path / "landing", "appeals", "2026-01"),
                         SOURCES["appeals"]).data["appeal_id"].tolist() == ["A2"]
    assert not list((tmp_path / "landing").rglob(".*"))            # no temporary files left


def test_an_unquoted_csv_is_rewritten_as_a_reader_of_every_record_would(tmp_path):
    """The usual delivery (no quotes, one record a line) takes the fast path: only the lines
    holding a target are judged, and the result is byte for byte the reader-of-every-record's —
    CRLF, gb18030 names, a lower-case x, a number in the wrong column, a row too short, blank
    lines, a last line without its line break; the rows removed are what the reader counts."""
    from citycredit.privacy.landing import _rewrite_csv, _rewrite_csv_records

    lines = ["\r\n", "record_id,id_number,name,item_code,level,quantity,occurred_on,valid_until,"
             "status,case_ref", f"R1,{Q},李四,ADMIN_PENALTY,minor,,2026-01-05,,active,c",
             f"R2,{P},张三,ADMIN_PENALTY,minor,,2026-01-05,,active,c", "",
             f"R3,{P.lower()},张三,ADMIN_PENALTY,minor,,2026-01-05,,active,c",
             f"R4,{Q},李四,ADMIN_PENALTY,minor,,2026-01-05,,active,see {P}",
             f"R5,{P}", f"R6,{Q},王五,ADMIN_PENALTY,minor,,2026-01-05,,active,c",
             f"R7,{P},张三,ADMIN_PENALTY,minor,,2026-01-05,,active,last"]
    data = "\r\n".join(lines).encode("gb18030")
    key = subject_key(P, KEY)
    targets = Targets({P: key})
    fast, fast_owners = _rewrite_csv(data, "gb18030", targets)
    full, full_owners = _rewrite_csv_records(data, "gb18030", targets)
    assert (fast, fast_owners) == (full, full_owners)
    assert fast_owners == {key: 5} and P.encode() not in fast.upper()
    assert fast.count(b"\n") == data.count(b"\n")          # every other row keeps its line

    delivery(tmp_path, "public_security", {"a.csv": data}, manifest=7)
    before = read_delivery(find_delivery(tmp_path / "landing", "public_security", "2026-01"),
                           SOURCES["public_security"])
    done = erase_from_landing(tmp_path / "landing", SOURCES, targets, {"findings"})
    assert [(f.rows_removed, f.manifest) for f in done] == [(5, (7, 2))]
    after = read_delivery(find_delivery(tmp_path / "landing", "public_security", "2026-01"),
                          SOURCES["public_security"])           # the manifest still matches
    assert after.data["record_id"].tolist() == ["R1", "R6"]
    assert before.landed - after.landed == 5

    # appeals name a finding by record id: matched on its fields, without any identity number
    appeals = b"appeal_id,source_id,record_id,filed_on,resolved_on,outcome\n" \
              b"A1,court,C-P,2026-01-04,,\nA2,court,C-Q,2026-01-04,,\nA3,other,C-P,2026-01-04,,\n"
    by_finding = Targets({}, {("court", "C-P"): key})
    assert _rewrite_csv(appeals, "utf-8", by_finding) == \
        _rewrite_csv_records(appeals, "utf-8", by_finding)
    assert _rewrite_csv(appeals, "utf-8", by_finding)[1] == {key: 1}
    # a BOM alone on the first line is no header; a field beyond csv's size limit is no stop
    with_bom = "\ufeff\r\n".encode() + appeals.replace(b"\n", b"\r\n")
    assert _rewrite_csv(with_bom, "utf-8", by_finding) == \
        _rewrite_csv_records(with_bom, "utf-8", by_finding)
    assert _rewrite_csv(with_bom, "utf-8", by_finding)[1] == {key: 1}
    huge = b"record_id,id_number,case_ref\nR1," + P.encode() + b"," + b"a" * 200_000 + b"\n"
    assert _rewrite_csv(huge, "utf-8", targets)[1] == \
        _rewrite_csv_records(huge, "utf-8", targets)[1] == {key: 1}


def test_a_jsonl_file_loses_exactly_the_records_the_reader_counts(tmp_path):
    """JSON Lines: only the lines holding a target are parsed; each removed record is a row
    fewer for the reader (blank lines, CRLF, a line that is not JSON, a number inside a text
    field, an appeal's finding named by record id), and the manifest still matches."""
    import json

    def rec(record_id, number, **more):
        return json.dumps({"record_id": record_id, "id_number": number, "name": "张三",
                           "item_code": "ADMIN_PENALTY", "level": "minor",
                           "occurred_on": "2026-01-05", "status": "active", **more},
                          ensure_ascii=False)
    key = subject_key(P, KEY)
    lines = [rec("T1", Q), rec("T2", P), "", rec("T3", P.lower()), f"not json {P}",
             rec("T4", Q, case_ref=f"see {P}"), rec("T5", Q), rec("T6", P)]
    data = "\r\n".join(lines).encode()
    delivery(tmp_path, "traffic_police", {"t.jsonl": data}, manifest=7)
    before = read_delivery(find_delivery(tmp_path / "landing", "traffic_police", "2026-01"),
                           SOURCES["traffic_police"])
    done = erase_from_landing(tmp_path / "landing", SOURCES, Targets({P: key}), {"findings"})
    assert [(f.rows_removed, dict(f.owners), f.manifest) for f in done] == \
        [(5, {key: 5}, (7, 2))]
    after = read_delivery(find_delivery(tmp_path / "landing", "traffic_police", "2026-01"),
                          SOURCES["traffic_police"])
    assert before.landed - after.landed == 5
    assert after.data["record_id"].tolist() == ["T1", "T5"]
    written = next((tmp_path / "landing").rglob("t.jsonl")).read_bytes()
    assert P.encode() not in written.upper() and written.count(b"\n") == data.count(b"\n")


def test_landing_retention_takes_only_older_delivery_folders(tmp_path):
    for month in ("2025-11", "2025-12", "2026-01"):
        delivery(tmp_path, "court", {"c.csv": (HEADER + "\n").encode()}, month=month)
    old = old_deliveries(tmp_path / "landing", SOURCES, "2025-12")
    assert [p.name for p in old] == ["2025-11"]


def test_the_scan_reads_every_kind_of_file(tmp_path):
    key = subject_key(P, KEY)
    warehouse, landing = tmp_path / "warehouse", tmp_path / "landing"
    table = warehouse / "gold" / "scores"
    (table / "_delta_log").mkdir(parents=True)
    (table / "_delta_log" / "00000000000000000000.json").write_text(
        json.dumps({"add": {"stats": json.dumps({"minValues": {"subject_key": key}})}}))
    nested = pa.table({"add": [{"path": "a", "stats": json.dumps({"maxValues": {"k": key}}),
                                "tags": [("k", "v")]}]})
    pq.write_table(nested, table / "_delta_log" / "00000000000000000001.checkpoint.parquet")
    views = pa.table({"subject_key": pa.array(["a" * 64, key], pa.string_view()),
                      "n": [1, 2]})
    pq.write_table(views, table / "part-0.parquet")
    (table / "_staging-x").mkdir()
    pq.write_table(pa.table({"m": pa.array([[("x", P)]], pa.map_(pa.string(), pa.string()))}),
                   table / "_staging-x" / "part-1.parquet")
    pq.write_table(pa.table({"subject_key": ["b" * 64]}), table / "part-2.parquet")
    (warehouse / "validation_results").mkdir()
    (warehouse / "validation_results" / "court.rows.html").write_text(f"<td>{P.lower()}</td>")
    record = warehouse / "privacy" / "suppression_list"
    record.mkdir(parents=True)
    pq.write_table(pa.table({"subject_key": [key]}), record / "part-0.parquet")
    (landing / "court" / "2026-01").mkdir(parents=True)
    (landing / "court" / "2026-01" / "c.csv").write_bytes(f"张三,{P}\n".encode("gb18030"))

    result = scan_for(needles_for(P, key), warehouse, landing, ["privacy/suppression_list"])
    places = {(p.area, p.table, p.file, p.column, p.found, p.erasure_record)
              for p in result.places}
    assert places == {
        ("warehouse", "gold/scores", "gold/scores/_delta_log/00000000000000000000.json", "-",
         "subject key", False),
        ("warehouse", "gold/scores",
         "gold/scores/_delta_log/00000000000000000001.checkpoint.parquet", "add.stats",
         "subject key", False),
        ("warehouse", "gold/scores", "gold/scores/part-0.parquet", "subject_key",
         "subject key", False),
        ("warehouse", "gold/scores", "gold/scores/_staging-x/part-1.parquet", "m.value",
         "identity number", False),
        ("warehouse", "validation_results", "validation_results/court.rows.html", "-",
         "identity number", False),
        ("warehouse", "privacy", "privacy/suppression_list/part-0.parquet",
         "subject_key", "subject key", True),
        ("landing", "court/2026-01", "court/2026-01/c.csv", "-", "identity number", False)}
    assert not result.clean and result.files == 8
    only_record = scan_for(needles_for(None, key), record, tmp_path / "none",
                           ["suppression_list"])
    assert only_record.places and only_record.places[0].count == 1


def test_many_persons_are_found_in_one_pass_and_named_by_their_place_in_the_list(tmp_path):
    """Twelve persons (48 strings: the Aho-Corasick path) against one file set: each place
    names the person found; a needle spread over two adjacent values is no match; the same
    files give the same places as a scan for one person (the RE2 path)."""
    from citycredit.privacy.scan import needles_for_many

    others = [f"3710021990011{i:04d}" for i in range(11)]
    others = [o + "0" for o in others]                   # not valid numbers: needles all the same
    persons = [(n, subject_key(n, KEY)) for n in others[:4]] + [(P, subject_key(P, KEY))] + \
              [(n, subject_key(n, KEY)) for n in others[4:]]
    key, third = subject_key(P, KEY), persons[2][1]
    warehouse = tmp_path / "warehouse"
    table = warehouse / "gold" / "score_lines"
    table.mkdir(parents=True)
    pq.write_table(pa.table({
        "subject_key": pa.array(["c" * 64, key, "d" * 64], pa.string_view()),
        "note": [None, f"see {third}!", "x"],
        "split": [third[:30], third[30:], "y"]}),              # across two values: no match
        table / "part-0.parquet")
    pq.write_table(pa.table({"raw": pa.array([f"王,{P.lower()}"] * 3).dictionary_encode()}),
                   table / "part-1.parquet")
    (warehouse / "log.json").write_text(json.dumps({"min": others[9]}))
    many = scan_for(needles_for_many(persons), warehouse, tmp_path / "landing", [])
    found = {(p.person, p.file, p.column, p.found, p.count) for p in many.places}
    assert found == {
        (5, "gold/score_lines/part-0.parquet", "subject_key", "subject key", 1),
        (3, "gold/score_lines/part-0.parquet", "note", "subject key", 1),
        (5, "gold/score_lines/part-1.parquet", "raw", "identity number", 3),
        (11, "log.json", "-", "identity number", 1)}
    one = scan_for(needles_for(P, key), warehouse, tmp_path / "landing", [])
    assert {(p.file, p.column, p.found, p.count) for p in one.places} == {
        (f, c, what, n) for person, f, c, what, n in found if person == 5}


def test_a_number_with_a_bom_or_zero_width_space_is_searched_in_its_normal_form():
    # a list saved by Notepad starts with a BOM: validation trims it, so must the search,
    # or every clear copy of the number is missed and the scan says "clean"
    for given in ("\ufeff" + P.lower(), "\u200b" + P + " "):
        needles = needles_for(given, None)
        assert needles == {P: "identity number", P.lower(): "identity number"}
