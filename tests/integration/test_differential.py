"""Differential test: the Spark scorer and the independent DuckDB reference (bench/) must agree on
every subject's score and grade, for every shipped scheme, on a random silver city that exercises
versions (corrections, revocations), multi-department overlaps, tiers, caps, appeals, opt-outs,
minors and the deceased."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from reference.duckdb_scorer import score_reference
from citycredit import scoring
from citycredit.silver.adults import adults_of
from citycredit.silver.versions import as_known_at
from citycredit.rules import load_catalogue, load_schemes

RULES = Path(__file__).resolve().parents[2] / "rules"
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]


def random_city(adults=3000, findings=24000, seed=7):
    rng = np.random.default_rng(seed)
    catalogue = load_catalogue(RULES)
    items = sorted(catalogue.items)
    keys = [f"s{i:05d}" for i in range(adults)]
    birth = [dt.date(1950, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365 * 58, adults)]
    status = rng.choice(["active", "active", "active", "active", "deceased", "moved_out"], adults)
    population = pa.table({
        "subject_key": keys * len(MONTHS), "birth_date": birth * len(MONTHS),
        "sex": ["M"] * adults * len(MONTHS), "district": ["371002"] * adults * len(MONTHS),
        "residency": ["hukou"] * adults * len(MONTHS), "status": list(status) * len(MONTHS),
        "snapshot_month": [m for m in MONTHS for _ in range(adults)]})

    sources = ["court", "provincial_credit", "civilization_office", "volunteer_federation",
               "public_security", "commitments"]
    rows = []
    for i in range(findings):
        item = items[int(rng.integers(len(items)))]
        entry = catalogue[item]
        level = str(rng.choice(entry.levels)) if entry.levels else None
        quantity = None
        if entry.quantity:
            quantity = Decimal(int(rng.integers(0, 4000))) / Decimal(int(rng.choice([1, 4, 10])))
        occurred = dt.date(2021, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 5 + 120)))
        valid_until = occurred + dt.timedelta(days=int(rng.integers(0, 900))) \
            if rng.random() < 0.15 else None
        case_ref = f"case{int(rng.integers(0, findings // 3))}" if rng.random() < 0.5 else None
        subject = keys[int(rng.integers(adults))]
        known_from = MONTHS[int(rng.integers(len(MONTHS)))]
        rows.append(dict(source_id=str(rng.choice(sources)), record_id=f"r{i}",
                         subject_key=subject, item_code=item, level=level, quantity=quantity,
                         occurred_on=occurred, valid_until=valid_until,
                         status="revoked" if rng.random() < 0.03 else "active",
                         case_ref=case_ref, known_from=known_from, known_until=None, load_id="t"))
        if rng.random() < 0.3:   # the same behaviour from a second department
            twin = dict(rows[-1], source_id=str(rng.choice(sources)), record_id=f"r{i}b")
            if entry.levels:
                twin["level"] = str(rng.choice(entry.levels))
            if rng.random() < 0.5:
                twin["case_ref"] = None
                rows[-1]["case_ref"] = None
            rows.append(twin)
    # corrections: a later version replaces the earlier one from its delivery month on
    for row in list(rows[: len(rows) // 10]):
        first = MONTHS.index(row["known_from"])
        if first + 1 < len(MONTHS):
            later = MONTHS[first + 1 + int(rng.integers(len(MONTHS) - first - 1))]
            row["known_until"] = later
            rows.append(dict(row, known_from=later, known_until=None,
                             status="revoked" if rng.random() < 0.3 else "active",
                             occurred_on=row["occurred_on"] - dt.timedelta(days=30)))
    findings_t = pa.Table.from_pylist(rows, schema=pa.schema([
        ("source_id", pa.string()), ("record_id", pa.string()), ("subject_key", pa.string()),
        ("item_code", pa.string()), ("level", pa.string()), ("quantity", pa.decimal128(18, 4)),
        ("occurred_on", pa.date32()), ("valid_until", pa.date32()), ("status", pa.string()),
        ("case_ref", pa.string()), ("known_from", pa.string()), ("known_until", pa.string()),
        ("load_id", pa.string())]))
    appealed = rng.choice(len(rows), 400, replace=False)
    appeals = []
    for n, idx in enumerate(appealed):
        r = rows[int(idx)]
        filed = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 115)))
        resolved = filed + dt.timedelta(days=int(rng.integers(5, 60))) if rng.random() < 0.6 else None
        appeals.append(dict(appeal_id=f"a{n}", source_id=r["source_id"], record_id=r["record_id"],
                            filed_on=filed, resolved_on=resolved,
                            outcome=(str(rng.choice(["upheld", "rejected"])) if resolved else None),
                            known_from="2026-01", known_until=None))
    appeals_t = pa.Table.from_pylist(appeals, schema=pa.schema([
        ("appeal_id", pa.string()), ("source_id", pa.string()), ("record_id", pa.string()),
        ("filed_on", pa.date32()), ("resolved_on", pa.date32()), ("outcome", pa.string()),
        ("known_from", pa.string()), ("known_until", pa.string())]))
    opted = rng.choice(adults, 30, replace=False)
    optouts_t = pa.table({"subject_key": [keys[int(i)] for i in opted],
                          "requested_on": [dt.date(2026, 1, 1) + dt.timedelta(days=int(d))
                                           for d in rng.integers(0, 110, 30)],
                          "known_from": ["2026-01"] * 30})
    return {"findings": findings_t, "population": population, "appeals": appeals_t,
            "optouts": optouts_t}


@pytest.fixture(scope="module")
def city():
    return random_city()


@pytest.mark.parametrize("scheme_name", ["haibei", "dazixiang", "huzhou"])
@pytest.mark.parametrize("month", ["2026-02", "2026-04"])
def test_spark_agrees_with_the_reference_on_every_subject(spark, city, scheme_name, month):
    scheme = load_schemes(RULES, [scheme_name])[scheme_name]
    df = {name: spark.createDataFrame(t) for name, t in city.items()}
    scores, lines = scoring.score_month(
        as_known_at(df["findings"], month), adults_of(df["population"], month),
        as_known_at(df["appeals"], month),
        df["optouts"].where(f"known_from <= '{month}'"), scheme, month, "diff")
    spark_rows = {r.subject_key: (r.score, r.grade) for r in scores.select(
        "subject_key", "score", "grade").collect()}
    ref = score_reference(city, RULES / f"{scheme_name}.yaml", month)
    ref_rows = dict(zip(ref.column("subject_key").to_pylist(),
                        zip(ref.column("score").to_pylist(), ref.column("grade").to_pylist())))
    assert len(spark_rows) > 1500                                   # adults, not everyone
    assert set(spark_rows) == set(ref_rows)
    differing = {k: (spark_rows[k], ref_rows[k]) for k in spark_rows if spark_rows[k] != ref_rows[k]}
    assert not differing, f"{len(differing)} subjects differ, e.g. {list(differing.items())[:5]}"
    # the scores are not all the base: the city really exercises the rules
    assert len({s for s, _ in spark_rows.values()}) > 20
    # explanation lines reproduce each raw score: base + Σ points
    raw = dict(zip(ref.column("subject_key").to_pylist(), ref.column("raw_score").to_pylist()))
    sums = {r.subject_key: r["sum(points)"] for r in lines.groupBy("subject_key").sum("points").collect()}
    wrong = {k: (scheme.base_score + v, raw[k]) for k, v in sums.items()
             if scheme.base_score + v != raw[k]}
    assert not wrong, f"explanations do not sum for {len(wrong)} subjects: {list(wrong.items())[:3]}"
