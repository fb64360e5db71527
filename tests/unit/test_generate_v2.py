"""The synthetic city's rule-format-v2 content (citycredit/synth: volumes, repairs, history):
credit services, completed credit repairs of listed and penalised cases, repair activities after
breaches, breaches from the first month on. Read back with the project's landing reader."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from citycredit import synth
from citycredit.ingest.delivery import find_delivery
from citycredit.ingest.read import read_delivery

REPO = Path(__file__).resolve().parents[2]
CONF = yaml.safe_load((REPO / "conf" / "sources.yaml").read_text(encoding="utf-8"))["sources"]
MONTHS = [f"2026-{m:02d}" for m in range(1, 10)]
ENERGY = {"VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION"}


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    """source → month → rows (dicts of text), of a 40,000-adult city over nine months without
    bad rows."""
    landing = tmp_path_factory.mktemp("city")
    synth.generate_city(landing, 40_000, len(MONTHS), MONTHS[-1], seed=8, bad_share=0.0)
    out = defaultdict(dict)
    for source_id, conf in CONF.items():
        if conf["kind"] != "findings":
            continue
        for month in MONTHS:
            delivery = find_delivery(landing, source_id, month)
            assert delivery is not None, (source_id, month)
            frame = read_delivery(delivery, conf, forbidden_columns=[]).data
            fmt = conf.get("date_format") or "%Y-%m-%d"
            rows = frame.to_dict("records")
            for r in rows:
                r["occurred_on"] = dt.datetime.strptime(r["occurred_on"], fmt).date()
            out[source_id][month] = rows
    return out


def all_rows(findings):
    return [(s, m, r) for s, months in findings.items() for m, rows in months.items() for r in rows]


def test_credit_services_deliver_the_new_items_every_month(findings):
    assert CONF["credit_services"]["required"] is False
    per_month = {m: Counter(r["item_code"] for r in rows)
                 for m, rows in findings["credit_services"].items()}
    assert all(c["CREDIT_SERVICE_SETTLED"] > c["CREDIT_SERVICE_OVERDUE"] > 0
               for c in per_month.values())
    items = {r["item_code"] for rows in findings["credit_services"].values() for r in rows}
    assert items == set(CONF["credit_services"]["items"])
    days = [r["quantity"] for rows in findings["credit_services"].values() for r in rows
            if r["item_code"] == "CREDIT_SERVICE_OVERDUE"]
    assert all(q is not None and q.isdigit() and 1 <= int(q) <= 180 for q in days)
    settled = [r for rows in findings["credit_services"].values() for r in rows
               if r["item_code"] == "CREDIT_SERVICE_SETTLED"]
    assert all(r["quantity"] is None and r["case_ref"].startswith("XYFW") for r in settled)


def test_completed_repairs_name_a_listed_or_penalised_case(findings):
    cases = {}
    for source_id, _, r in all_rows(findings):
        if r["item_code"] in ("COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY") and r["case_ref"]:
            cases.setdefault((r["id_number"], r["case_ref"]), r["occurred_on"])
    repairs = [r for _, _, r in all_rows(findings) if r["item_code"] == "CREDIT_REPAIR_COMPLETED"]
    assert len(repairs) >= 10
    matched = [r for r in repairs if (r["id_number"], r["case_ref"]) in cases]
    assert 0 < len(repairs) - len(matched) < len(matched)        # a few of another city's cases
    assert all(cases[r["id_number"], r["case_ref"]] < r["occurred_on"] for r in matched)
    kinds = {"court" if r["case_ref"].startswith("(") else "penalty" for r in matched}
    assert kinds == {"court", "penalty"}


def test_breaches_from_the_first_month_and_repair_activities_after_them(findings):
    breaches = defaultdict(list)
    for _, month, r in all_rows(findings):
        if r["item_code"] == "COMMITMENT_BREACH":
            breaches[month].append(r)
    assert all(breaches[m] for m in MONTHS[:3])       # earlier commitments breached from the start
    first = {}
    for rows in breaches.values():
        for r in rows:
            first[r["id_number"]] = min(first.get(r["id_number"], r["occurred_on"]), r["occurred_on"])
    after = Counter()
    for _, _, r in all_rows(findings):
        if r["item_code"] in ENERGY and r["id_number"] in first \
                and r["occurred_on"] >= first[r["id_number"]]:
            after[r["item_code"]] += 1
    assert set(after) == ENERGY and sum(after.values()) >= 15
