"""Differential test: the Spark scorer and the independent DuckDB reference (bench/) must agree on
every subject's score and grade, for every shipped scheme, on a random silver city that exercises
versions (corrections, revocations), multi-department overlaps, tiers, caps, appeals, opt-outs,
minors and the deceased; and, for rule format v2, on a city made by the generator
(citycredit.synth) with repair and growth cases and credit-service findings.

The reference also writes the explanation lines of the month (SPEC §5 as amended: findings in
force or changed since the previous month, tier / growth / subject / cap lines); they must be
the Spark scorer's lines exactly: per scheme and subject the same multiset of lines, each line
compared on (line_type, status, rule_id, dimension, points) and, what identifies it, the
finding (source_id, record_id), its repaired_on, and for tier and growth lines the quantity and
the day growth counts from (occurred_on). Every line kind can match exactly: both scorers apply
the same contract to the same findings, so no line is compared only by counts."""
from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from reference.duckdb_scorer import score_reference
from citycredit import scoring
from citycredit.config import load_settings
from citycredit.ingest.delivery import find_delivery
from citycredit.ingest.read import read_delivery
from citycredit.silver.adults import adults_of, scored_subjects
from citycredit.silver.pseudonymise import pseudonymise
from citycredit.silver.versions import as_known_at
from citycredit.rules import load_catalogue, load_schemes
from citycredit.synth import generate_city

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from v2_cases import SCHEME as V2_SCHEME  # noqa: E402

RULES = Path(__file__).resolve().parents[2] / "rules"
#: what a line is compared on (see the module docstring)
LINE_FIELDS = ("line_type", "status", "rule_id", "dimension", "points", "source_id", "record_id",
               "repaired_on", "quantity", "occurred_on")


def per_subject_lines(rows) -> dict[str, Counter]:
    """subject_key → multiset of lines (LINE_FIELDS; a finding line's quantity and occurred_on are
    the finding's own, compared too). Decimals compare by value (1.0 == 1.00000000)."""
    out: dict[str, Counter] = {}
    for row in rows:
        out.setdefault(row["subject_key"], Counter())[tuple(row[f] for f in LINE_FIELDS)] += 1
    return out


@pytest.fixture(autouse=True)
def _release_spark_memory(spark):
    """Each case builds 35 k-adult cities as DataFrames from Arrow and persists frames; release
    them after the case (passed or failed) so that nine cases in one session do not pile up
    (seen: AGGREGATE_OUT_OF_MEMORY in the ninth case of a full run, not when run alone)."""
    yield
    import gc

    spark.catalog.clearCache()
    gc.collect()


def assert_lines_agree(spark_lines, reference_lines: pa.Table) -> Counter:
    """The Spark lines (a DataFrame) and the reference's (pyarrow) are the same per subject;
    returns the number of lines per (line_type, status)."""
    spark = per_subject_lines(r.asDict() for r in spark_lines.select("subject_key", *LINE_FIELDS)
                              .toLocalIterator())
    ref = per_subject_lines(reference_lines.select(["subject_key", *LINE_FIELDS]).to_pylist())
    differing = [k for k in set(spark) | set(ref) if spark.get(k, Counter()) != ref.get(k, Counter())]
    if differing:
        only_spark, only_ref = Counter(), Counter()
        for k in differing:
            only_spark.update(spark.get(k, Counter()) - ref.get(k, Counter()))
            only_ref.update(ref.get(k, Counter()) - spark.get(k, Counter()))
        raise AssertionError(
            f"explanation lines differ for {len(differing)} subjects; only Spark: "
            f"{only_spark.most_common(4)}; only the reference: {only_ref.most_common(4)}")
    kinds = Counter()
    for lines in spark.values():
        for line, n in lines.items():
            kinds[line[0], line[1]] += n
    return kinds
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
    ref, ref_lines = score_reference(city, RULES / f"{scheme_name}.yaml", month, lines=True)
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
    # the reference writes the same lines; the city has every kind the month explains
    kinds = assert_lines_agree(lines, ref_lines)
    for kind in [("finding", "counted"), ("finding", "expired"), ("finding", "deduplicated"),
                 ("finding", "masked"), ("finding", "appeal_upheld"), ("tier", "counted")]:
        assert kinds[kind] > 0, kind
    assert kinds["rule_cap", "counted"] + kinds["dimension_cap", "counted"] > 0
    if month == "2026-02":                       # findings dated after the month's end
        assert kinds["finding", "not_yet_valid"] > 0
    if month == "2026-04":                       # revocations delivered in the month
        assert kinds["finding", "revoked"] > 0
    assert kinds["finding", "no_rule"] == 0


# ------------------------------------------------------------------------------------------
# Rule format v2 on a generated city (citycredit.synth): credit services, completed repairs of
# listings and penalties, repair activities after breaches, months of signed commitments.
PROJECT = Path(__file__).resolve().parents[2]
CITY_MONTHS = [f"2026-{m:02d}" for m in range(1, 10)]
TEXT_DATES = {"findings": ("occurred_on", "valid_until"), "appeals": ("filed_on", "resolved_on"),
              "optouts": ("requested_on",)}


def _silver_of_landing(landing: Path) -> dict[str, pa.Table]:
    """The silver tables a run of every month would build from a landing without bad rows:
    every delivered version (known_from/known_until), population snapshots, opt-outs. Read with
    the project's reader and pseudonymised like staging; no validation is needed (bad_share 0)."""
    settings = load_settings(PROJECT / "conf", env="local",
                             environ={"CITYCREDIT_LANDING": str(landing)})
    versions: dict[str, list[dict]] = {"findings": [], "appeals": []}
    population, optouts = [], []
    known: dict[str, dict] = {}    # id_number → subject_key, birth_date, sex
    for month in CITY_MONTHS:
        for source_id, conf in settings.sources.items():
            delivery = find_delivery(landing, source_id, month)
            if delivery is None:
                continue
            frame = read_delivery(delivery, conf, forbidden_columns=[]).data
            frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")] + ["name"],
                               errors="ignore")
            kind = conf["kind"]
            fmt = conf.get("date_format") or "%Y-%m-%d"
            for column in TEXT_DATES.get(kind, ()):
                frame[column] = [None if v is None else dt.datetime.strptime(v, fmt).date()
                                 for v in frame[column]]
            if kind == "population":      # pseudonymise each person once, not once a month
                people = frame[~frame["id_number"].isin(known)].drop_duplicates("id_number")
                known.update(zip(people["id_number"], pseudonymise(
                    people, kind, settings.subject_key)[["subject_key", "birth_date", "sex"]]
                    .to_dict("records")))
                rows = [dict(r, **known[r.pop("id_number")]) for r in frame.to_dict("records")]
            else:
                rows = pseudonymise(frame, kind, settings.subject_key).to_dict("records")
            if kind == "findings":
                for r in rows:
                    r.update(source_id=source_id, known_from=month,
                             quantity=None if r["quantity"] is None else Decimal(r["quantity"]))
                versions["findings"] += rows
            elif kind == "appeals":
                versions["appeals"] += [dict(r, known_from=month) for r in rows]
            elif kind == "population":
                population += [dict(r, snapshot_month=month) for r in rows]
            elif kind == "optouts":
                optouts += [dict(r, known_from=month) for r in rows]
    for kind, key in (("findings", ("source_id", "record_id")), ("appeals", ("appeal_id",))):
        rows = sorted(versions[kind], key=lambda r: ([r[k] for k in key], r["known_from"]))
        for this, after in zip(rows, rows[1:] + [None]):
            same = after is not None and all(this[k] == after[k] for k in key)
            this["known_until"] = after["known_from"] if same else None
        versions[kind] = rows
    date, text = pa.date32(), pa.string()
    return {
        "findings": pa.Table.from_pylist(versions["findings"], schema=pa.schema([
            ("source_id", text), ("record_id", text), ("subject_key", text), ("item_code", text),
            ("level", text), ("quantity", pa.decimal128(18, 4)), ("occurred_on", date),
            ("valid_until", date), ("status", text), ("case_ref", text), ("known_from", text),
            ("known_until", text)])),
        "appeals": pa.Table.from_pylist(versions["appeals"], schema=pa.schema([
            ("appeal_id", text), ("source_id", text), ("record_id", text), ("filed_on", date),
            ("resolved_on", date), ("outcome", text), ("known_from", text), ("known_until", text)])),
        "population": pa.Table.from_pylist(population, schema=pa.schema([
            ("subject_key", text), ("birth_date", date), ("sex", text), ("district", text),
            ("residency", text), ("status", text), ("snapshot_month", text)])),
        "optouts": pa.Table.from_pylist(optouts, schema=pa.schema([
            ("subject_key", text), ("requested_on", date), ("known_from", text)])),
    }


@pytest.fixture(scope="module")
def generated_city(tmp_path_factory):
    """40,000 adults over nine months: enough breaches, repairs and half-years of commitments."""
    root = tmp_path_factory.mktemp("generated")
    generate_city(root / "landing", adults=40_000, months=len(CITY_MONTHS), end=CITY_MONTHS[-1],
                  seed=14, bad_share=0.0)
    rules = root / "rules"
    rules.mkdir()
    for name in ("catalogue", "bailu", "huzhou"):
        (rules / f"{name}.yaml").write_text((RULES / f"{name}.yaml").read_text("utf-8"), "utf-8")
    (rules / "v2test.yaml").write_text(V2_SCHEME, "utf-8")
    return {"silver": _silver_of_landing(root / "landing"), "rules": rules}


@pytest.mark.parametrize("scheme_name", ["bailu", "huzhou", "v2test"])
def test_spark_agrees_with_the_reference_on_rule_format_v2(spark, generated_city, scheme_name):
    month = CITY_MONTHS[-1]
    silver, rules = generated_city["silver"], generated_city["rules"]
    scheme = load_schemes(rules, [scheme_name])[scheme_name]
    df = {name: spark.createDataFrame(t) for name, t in silver.items()}
    optouts = df["optouts"].where(f"known_from <= '{month}'")
    # as the job does it (scoring.job.run_scoring): the subjects and evaluated findings computed
    # once, then every output read from them
    subjects = scored_subjects(df["population"], optouts, month,
                               with_months_resident=True).persist()
    evaluated = scoring.evaluate_month(as_known_at(df["findings"], month), subjects,
                                       as_known_at(df["appeals"], month), scheme, month).persist()
    scores, lines = scoring.summarise_month(evaluated, subjects, scheme, month, "diff-v2")
    lines = lines.persist()
    spark_rows = {r.subject_key: (r.score, r.grade) for r in scores.select(
        "subject_key", "score", "grade").collect()}
    ref, ref_lines = score_reference(silver, rules / f"{scheme_name}.yaml", month, lines=True)
    ref_rows = dict(zip(ref.column("subject_key").to_pylist(),
                        zip(ref.column("score").to_pylist(), ref.column("grade").to_pylist())))
    assert len(spark_rows) > 35_000 and set(spark_rows) == set(ref_rows)
    differing = {k: (spark_rows[k], ref_rows[k]) for k in spark_rows if spark_rows[k] != ref_rows[k]}
    assert not differing, f"{len(differing)} subjects differ, e.g. {list(differing.items())[:5]}"
    # the city really exercises the additions
    summary = lines.groupBy("line_type", "status", "rule_id").agg(
        F.count(F.lit(1)).alias("n"), F.max("quantity").alias("most")).collect()
    seen = Counter()
    for r in summary:
        seen[r.line_type, r.status] += r.n
        if r.line_type == "growth":
            seen["growth periods"] = max(seen["growth periods"], int(r.most))
    if scheme_name in ("huzhou", "v2test"):                      # repair energy
        assert seen["finding", "repaired"] >= 3
    if scheme_name in ("bailu", "v2test"):                      # subject rules
        assert seen["subject", "counted"] > 35_000 and seen["subject", "not_applicable"] == 0
    if scheme_name == "v2test":     # `requires` a listing: the repairs of penalties are unmet
        assert seen["finding", "requirement_unmet"] >= 1
    if scheme_name in ("huzhou", "v2test"):
        assert seen["growth", "counted"] > 100 and seen["growth periods"] >= 1
    if scheme_name == "bailu":
        counted = {r.rule_id for r in summary if r.status == "counted"}
        assert {"credit-settled", "credit-overdue", "repaired", "hukou", "permit"} <= counted
    # explanation lines reproduce each raw score: base + Σ points
    raw = dict(zip(ref.column("subject_key").to_pylist(), ref.column("raw_score").to_pylist()))
    sums = {r.subject_key: r["sum(points)"] for r in lines.groupBy("subject_key").sum("points").collect()}
    wrong = {k: (scheme.base_score + v, raw[k]) for k, v in sums.items()
             if scheme.base_score + v != raw[k]}
    assert not wrong, f"explanations do not sum for {len(wrong)} subjects: {list(wrong.items())[:3]}"
    # the reference writes the same lines (repaired, unmet, growth and subject lines included)
    assert_lines_agree(lines, ref_lines)
    for frame in (lines, evaluated, subjects):
        frame.unpersist()
