"""The monthly pipeline's task functions (docs/contracts.md, "The monthly pipeline").

The Airflow DAG and `citycredit run` call these same functions in the same order. Arguments and
results are JSON-able (they travel through XCom); each function loads settings and, when it needs
one, a Spark session itself, so each can run in its own worker process or all in one.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa

from . import tables
from .config import Settings, load_settings
from .identity import subject_key
from .landing import find_delivery, read_delivery

FINDINGS_KEY = ["source_id", "record_id"]


class DeliveryMissing(RuntimeError):
    """A required source has no complete delivery for the month."""


class BatchRejected(RuntimeError):
    """A delivery failed a batch-level check; nothing of the month reaches silver."""


class PublishRefused(RuntimeError):
    """A publication check failed; the previous publication stays."""


def _month_before(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def resolve_month(logical_date, param_month: str | None = None) -> str:
    """The score month of a run: the `month` param, else the month before the logical date."""
    if param_month:
        return param_month
    if isinstance(logical_date, str):
        logical_date = dt.date.fromisoformat(logical_date[:10])
    return _month_before(f"{logical_date.year}-{logical_date.month:02d}")


def _settings(settings: Settings | None) -> Settings:
    return settings or load_settings()


# ---------------------------------------------------------------------------------------------
def check_deliveries(month: str, settings: Settings | None = None) -> dict:
    """Which sources delivered the month; a required source without `_READY` stops the run."""
    settings = _settings(settings)
    ready, missing_required, missing_optional = [], [], []
    for source_id, conf in settings.sources.items():
        if find_delivery(settings.landing, source_id, month) is not None:
            ready.append(source_id)
        elif conf["required"]:
            missing_required.append(source_id)
        else:
            missing_optional.append(source_id)
    if missing_required:
        where = ", ".join(f"{s} (expected {settings.landing / s / month / '_READY'})"
                          for s in missing_required)
        raise DeliveryMissing(f"month {month}: no complete delivery from required source(s) {where}")
    return {"month": month, "ready": ready, "missing_optional": missing_optional}


# ---------------------------------------------------------------------------------------------
def land_source(source_id: str, month: str, run_id: str, settings: Settings | None = None) -> dict:
    """Landing → bronze → GX validation → quarantine, and the accepted rows (pseudonymised)
    into staging for silver. A re-delivery replaces the month's partitions atomically."""
    from .rules import load_catalogue
    from .validation import validate_batch

    settings = _settings(settings)
    started = time.perf_counter()
    conf = settings.sources[source_id]
    delivery = find_delivery(settings.landing, source_id, month)
    if delivery is None:
        if conf["required"]:
            raise DeliveryMissing(f"month {month}: no complete delivery from required source "
                                  f"{source_id}")
        return {"source_id": source_id, "month": month, "status": "missing", "landed": 0,
                "accepted": 0, "quarantined": 0, "by_reason": {}, "seconds": 0.0,
                "note": "no delivery this month (required: false); earlier deliveries stand"}
    raw = read_delivery(delivery, conf, forbidden_columns=settings.validation["forbidden_columns"])
    _write_bronze(settings, raw, source_id, month, run_id)
    catalogue = load_catalogue(settings.rules)
    items = {c: (set(i.levels) if i.levels else None) for c, i in catalogue.items.items()}
    result = validate_batch(raw, source_id, conf, month, items,
                            {**settings.validation, "sources": settings.sources,
                             "expectations_dir": settings.expectations})
    _write_quarantine(settings, result.quarantined, source_id, month, run_id)
    problems = list(result.batch_errors)
    problems += _volume_drop(settings, source_id, month, raw.landed)
    if not result.gx_success and not problems:
        problems.append("the Great Expectations suite failed at batch level")
    _keep_gx_results(settings, source_id, month, run_id, result.gx_results)
    if problems:
        raise BatchRejected(f"{source_id} {month}: delivery rejected, nothing reaches silver: "
                            + "; ".join(problems))
    _write_staging(settings, result.accepted, conf["kind"], source_id, month, run_id)
    counts = dict(result.counts)
    assert counts["landed"] == counts["accepted"] + counts["quarantined"], counts
    return {"source_id": source_id, "month": month, "status": "landed", "kind": conf["kind"],
            **counts, "files": [f.name for f in raw.files],
            "seconds": round(time.perf_counter() - started, 2)}


def _stamp_columns(frame: pd.DataFrame, source_id: str, month: str, run_id: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(0, "source_id", source_id)
    frame["month"] = month
    frame["load_id"] = run_id
    return frame


def _write_bronze(settings, raw, source_id, month, run_id):
    """As delivered (all values as text, file + line), less the name column and forbidden
    fields, which are never stored (SPEC §7)."""
    keep = [c for c in raw.contract.columns if c != "name"]
    frame = raw.data[keep].astype(object).where(raw.data[keep].notna(), None)
    frame = frame.assign(file=raw.data["_file"].values, line=raw.data["_line"].astype("int64").values)
    frame = frame.rename(columns={"source_id": "appeal_source_id"})   # appeals name a source
    data = pa.Table.from_pandas(_stamp_columns(frame, source_id, month, run_id),
                                preserve_index=False,
                                schema=pa.schema([("source_id", pa.string()),
                                                  *[(c, pa.string()) for c in frame.columns
                                                    if c not in ("file", "line")],
                                                  ("file", pa.string()), ("line", pa.int64()),
                                                  ("month", pa.string()), ("load_id", pa.string())]))
    tables.write_arrow(data, settings.table_path("bronze", source_id), mode="overwrite",
                       partition_by=["month"], replace={"month": month})


QUARANTINE_SCHEMA = pa.schema([("source_id", pa.string()), ("month", pa.string()),
                               ("file", pa.string()), ("line", pa.int64()),
                               ("reasons", pa.string()), ("raw", pa.string()),
                               ("load_id", pa.string())])


def _write_quarantine(settings, quarantined: pd.DataFrame, source_id, month, run_id):
    frame = quarantined.reindex(columns=["file", "line", "reasons", "raw"])
    frame = _stamp_columns(frame, source_id, month, run_id)[QUARANTINE_SCHEMA.names]
    frame["line"] = frame["line"].astype("int64")
    frame["raw"] = frame["raw"].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
    data = pa.Table.from_pandas(frame, schema=QUARANTINE_SCHEMA, preserve_index=False)
    tables.write_arrow(data, settings.table_path("quarantine", "rows"), mode="overwrite",
                       partition_by=["source_id", "month"],
                       replace={"source_id": source_id, "month": month})


def _volume_drop(settings, source_id, month, landed) -> list[str]:
    """A sudden drop against the source's recent months (bronze) stops the delivery."""
    path = settings.table_path("bronze", source_id)
    if not tables.exists(path):
        return []
    earlier = sorted({p["month"] for p in tables.partitions(path) if p["month"] < month})[-3:]
    if not earlier:
        return []
    counts = [tables.read_arrow(path, where={"month": m}, columns=["line"]).num_rows for m in earlier]
    average = sum(counts) / len(counts)
    ratio = settings.sources[source_id]["min_volume_ratio"]
    if ratio is None:
        ratio = settings.validation["min_volume_ratio"]
    if average >= settings.validation["min_volume_rows"] and landed < ratio * average:
        return [f"volume drop: {landed} rows against an average of {average:.0f} over "
                f"{', '.join(earlier)} (below {ratio:.0%})"]
    return []


def _keep_gx_results(settings, source_id, month, run_id, results: dict):
    """validation_results/<month>/<run_id>/<source>.json, plus GX Data Docs pages
    <source>.rows.html and <source>.batch.html (open them in a browser)."""
    from .validation import data_docs_pages

    folder = settings.warehouse / "validation_results" / month / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{source_id}.json").write_text(json.dumps(results, ensure_ascii=False, indent=1,
                                                         default=str), encoding="utf-8")
    for part, html in data_docs_pages(results).items():
        (folder / f"{source_id}.{part}.html").write_text(html, encoding="utf-8")


_S, _D = pa.string(), pa.date32()
STAGING_SCHEMAS = {
    "findings": [("record_id", _S), ("subject_key", _S), ("item_code", _S), ("level", _S),
                 ("quantity", pa.decimal128(18, 4)), ("occurred_on", _D), ("valid_until", _D),
                 ("status", _S), ("case_ref", _S)],
    "population": [("subject_key", _S), ("birth_date", _D), ("sex", _S), ("district", _S),
                   ("residency", _S), ("status", _S)],
    "appeals": [("appeal_id", _S), ("appeal_source_id", _S), ("record_id", _S),
                ("filed_on", _D), ("resolved_on", _D), ("outcome", _S)],
    "optouts": [("subject_key", _S), ("requested_on", _D)],
}


def _write_staging(settings, accepted: pd.DataFrame, kind, source_id, month, run_id):
    """Accepted rows with identity numbers replaced by subject_key (the silver boundary)."""
    from .identity import birth_date, sex

    frame = accepted.copy()
    if "id_number" in frame:
        ids = frame["id_number"].astype(str)
        key = settings.subject_key
        frame["subject_key"] = [subject_key(i, key) for i in ids]
        if kind == "population":
            frame["birth_date"] = pd.array([birth_date(i) for i in ids], dtype="date32[pyarrow]")
            frame["sex"] = [sex(i) for i in ids]
        frame = frame.drop(columns=["id_number"])
    if kind == "appeals":
        frame = frame.rename(columns={"source_id": "appeal_source_id"})
    columns = STAGING_SCHEMAS[kind]
    frame = _stamp_columns(frame[[c for c, _ in columns]], source_id, month, run_id)
    schema = pa.schema([("source_id", _S), *columns, ("month", _S), ("load_id", _S)])
    data = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    tables.write_arrow(data, settings.table_path("staging", kind), mode="overwrite",
                       partition_by=["source_id", "month"],
                       replace={"source_id": source_id, "month": month})


# ---------------------------------------------------------------------------------------------
def merge_versions(old, new, key: list[str], month: str):
    """Bitemporal MERGE: the month's delivery replaces any earlier landing of the same month,
    and every version's known_until becomes the delivery month of the next version of its key,
    so 'as known at M' is a filter (docs/contracts.md). Pure: DataFrame → DataFrame."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    landed_sources = [r.source_id for r in new.select("source_id").distinct().collect()]
    if old is not None:
        old = old.where(~((F.col("known_from") == month) & F.col("source_id").isin(landed_sources)))
        merged = old.drop("known_until").unionByName(new)
    else:
        merged = new
    w = Window.partitionBy(*key).orderBy("known_from")
    return merged.withColumn("known_until", F.lead("known_from").over(w))


VERSIONED = {  # silver table → (staging kind, key, columns renamed from staging)
    "findings": ("findings", ["source_id", "record_id"], {}),
    "appeals": ("appeals", ["appeal_id"], {"source_id": "delivered_by", "appeal_source_id": "source_id"}),
}


def build_silver(month: str, run_id: str, landed: list[dict],
                 settings: Settings | None = None) -> dict:
    """Staging rows of the month's landed sources → silver (findings and appeals versioned,
    population snapshot, opt-outs). One writer, one commit per table."""
    from pyspark.sql import functions as F

    from .spark import get_spark

    settings = _settings(settings)
    started = time.perf_counter()
    spark = get_spark(settings)
    kinds = {d["kind"] for d in landed if d.get("status") == "landed"}
    out: dict = {"month": month, "tables": {}, "sources": {}}
    for table, (kind, key, renames) in VERSIONED.items():
        if kind not in kinds:
            continue
        new = tables.read(spark, settings.table_path("staging", kind), where={"month": month})
        for before, after in renames.items():
            new = new.withColumnRenamed(before, after)
        new = new.drop("month", "delivered_by").withColumn("known_from", F.lit(month))
        path = settings.table_path("silver", table)
        old = tables.read(spark, path) if tables.exists(path) else None
        merged = merge_versions(old, new, key, month)
        columns = [c for c in new.columns if c != "load_id"] + ["known_until", "load_id"]
        tables.write(merged.select(*columns), path, mode="overwrite",
                     partition_by=["source_id"] if table == "findings" else None)
        if table == "findings":
            out["sources"] = _findings_changes(spark, path, month)
        out["tables"][table] = tables.read(spark, path).where(F.col("known_from") == month).count()
    if "population" in kinds:
        snapshot = tables.read_arrow(settings.table_path("staging", "population"),
                                     where={"month": month})
        snapshot = snapshot.drop_columns(["source_id", "load_id"])
        snapshot = snapshot.rename_columns(
            [("snapshot_month" if c == "month" else c) for c in snapshot.column_names])
        tables.write_arrow(snapshot, settings.table_path("silver", "population"), mode="overwrite",
                           partition_by=["snapshot_month"], replace={"snapshot_month": month})
        out["tables"]["population"] = snapshot.num_rows
    if "optouts" in kinds:
        optouts = tables.read_arrow(settings.table_path("staging", "optouts"), where={"month": month})
        optouts = optouts.select(["subject_key", "requested_on", "month"]).rename_columns(
            ["subject_key", "requested_on", "known_from"])
        tables.write_arrow(optouts, settings.table_path("silver", "optouts"), mode="overwrite",
                           partition_by=["known_from"], replace={"known_from": month})
        out["tables"]["optouts"] = optouts.num_rows
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def _findings_changes(spark, path, month) -> dict:
    """Per source, of the month's versions: corrections (a key seen in an earlier month) and
    revocations."""
    from pyspark.sql import functions as F

    versions = tables.read(spark, path)
    this = versions.where(F.col("known_from") == month)
    earlier = versions.where(F.col("known_from") < month).select("source_id", "record_id").distinct()
    corrected = this.join(earlier, ["source_id", "record_id"], "left_semi")
    result: dict = {}
    for row in this.groupBy("source_id").agg(
            F.count(F.lit(1)).alias("versions"),
            F.sum(F.when(F.col("status") == "revoked", 1).otherwise(0)).alias("revocations")).collect():
        result[row.source_id] = {"versions": row.versions, "revocations": row.revocations,
                                 "corrections": 0}
    for row in corrected.groupBy("source_id").count().collect():
        result[row.source_id]["corrections"] = row["count"]
    return result


# ---------------------------------------------------------------------------------------------
def score_scheme(scheme: str, month: str, run_id: str, settings: Settings | None = None) -> dict:
    """gold/scores and gold/score_lines for one scheme and month; what the report needs."""
    from pyspark.sql import functions as F

    from .rules import load_schemes
    from .score_job import run_scoring
    from .spark import get_spark

    settings = _settings(settings)
    spark = get_spark(settings)
    loaded = load_schemes(settings.rules, [scheme])[scheme]
    result = run_scoring(spark, settings, loaded, month, run_id)
    where = {"scheme": scheme, "score_month": month}
    grades = {r.grade: r["count"] for r in tables.read(
        spark, settings.table_path("gold", "scores"), where=where).groupBy("grade").count().collect()}
    lines = tables.read(spark, settings.table_path("gold", "score_lines"), where=where)
    unmatched = {r.item_code: r["count"] for r in lines.where(F.col("status") == "no_rule")
                 .groupBy("item_code").count().collect()}
    order = [g.grade for g in loaded.grades]
    return {"scheme": scheme, "month": month, "subjects": result.subjects, "lines": result.lines,
            "rules_version": loaded.rules_version,
            "grades": {g: grades.get(g, 0) for g in order}, "unmatched": unmatched,
            "seconds": round(result.seconds, 2)}


# ---------------------------------------------------------------------------------------------
PUBLISHED_COLUMNS = ["subject_key", "scheme", "score_month", "score", "grade", "grade_label"]


def _previous_published(settings, scheme, month) -> tuple[str | None, dict]:
    path = settings.table_path("gold", "published_scores")
    if not tables.exists(path):
        return None, {}
    months = sorted(p["score_month"] for p in tables.partitions(path)
                    if p["scheme"] == scheme and p["score_month"] < month)
    if not months:
        return None, {}
    grades = tables.read_arrow(path, where={"scheme": scheme, "score_month": months[-1]},
                               columns=["grade"]).column("grade").to_pylist()
    return months[-1], dict(Counter(grades))


def _shares(counts: dict) -> dict:
    total = sum(counts.values()) or 1
    return {g: n / total for g, n in counts.items()}


def publication_checks(spark, settings, scheme: str, month: str, grades: dict,
                       accept_drift: bool) -> list[str]:
    """Every adult scored exactly once; explanations sum to scores; the grade distribution
    moved within the configured bound against the previous publication (or accepted)."""
    from pyspark.sql import functions as F

    from .score_job import load_inputs
    from .scoring import exclude_opted_out
    from .workdays import last_day

    problems = []
    where = {"scheme": scheme, "score_month": month}
    scores = tables.read(spark, settings.table_path("gold", "scores"), where=where)
    inputs = load_inputs(spark, settings, month)      # the adults scoring was given
    adults = exclude_opted_out(inputs["adults"], inputs["optouts"], last_day(month))
    stats = scores.agg(F.count(F.lit(1)).alias("rows"),
                       F.countDistinct("subject_key").alias("subjects")).first()
    expected = adults.count()
    if not stats.rows == stats.subjects == expected:
        problems.append(f"{scheme}: {stats.rows} score rows for {stats.subjects} subjects, "
                        f"expected each of {expected} adults exactly once")
    missing = adults.join(scores, "subject_key", "left_anti").count()
    if missing:
        problems.append(f"{scheme}: {missing} adults have no score")
    lines = tables.read(spark, settings.table_path("gold", "score_lines"), where=where) \
        .groupBy("subject_key").agg(F.sum("points").alias("explained"))
    bad = (scores.join(lines, "subject_key", "left")
           .where(F.col("points_positive") + F.col("points_negative")
                  != F.coalesce(F.col("explained"), F.lit(0))).count())
    if bad:
        problems.append(f"{scheme}: explanation lines do not sum to the score for {bad} subjects")
    previous, before = _previous_published(settings, scheme, month)
    if previous:
        bound = settings.publish["max_grade_share_change"]
        now, then = _shares(grades), _shares(before)
        moved = {g: now.get(g, 0) - then.get(g, 0) for g in set(now) | set(then)}
        worst = max(moved, key=lambda g: abs(moved[g]))
        if abs(moved[worst]) > bound and not accept_drift:
            problems.append(f"{scheme}: grade {worst} share moved {moved[worst]:+.1%} against "
                            f"{previous} (bound ±{bound:.0%}); rerun with --accept-drift once "
                            "reviewed")
    return problems


def publish(month: str, run_id: str, scored: list[dict], accept_drift: bool = False,
            settings: Settings | None = None) -> dict:
    """Checks first; only when all pass does gold/published_scores get the month (one atomic
    partition replace per scheme). A refusal leaves the previous publication as it was."""
    from pyspark.sql import functions as F

    from .spark import get_spark

    settings = _settings(settings)
    started = time.perf_counter()
    spark = get_spark(settings)
    problems = []
    for result in scored:
        problems += publication_checks(spark, settings, result["scheme"], month,
                                       result["grades"], accept_drift)
    if problems:
        raise PublishRefused(f"month {month} not published (the previous publication stays): "
                             + "; ".join(problems))
    published_at = dt.datetime.now(dt.timezone.utc)
    rows = {}
    for result in scored:
        where = {"scheme": result["scheme"], "score_month": month}
        scores = tables.read(spark, settings.table_path("gold", "scores"), where=where)
        out = scores.select(*PUBLISHED_COLUMNS,
                            F.lit(published_at).cast("timestamp").alias("published_at"))
        tables.write(out, settings.table_path("gold", "published_scores"), mode="overwrite",
                     partition_by=["scheme", "score_month"], replace=where)
        rows[result["scheme"]] = result["subjects"]
    return {"month": month, "published": rows, "published_at": published_at.isoformat(),
            "seconds": round(time.perf_counter() - started, 2)}


# ---------------------------------------------------------------------------------------------
REPORT_SCHEMA = pa.schema([("run_id", pa.string()), ("score_month", pa.string()),
                           ("section", pa.string()), ("name", pa.string()),
                           ("metrics", pa.string()), ("created_at", pa.timestamp("us", tz="UTC"))])


def write_report(month: str, run_id: str, landed: list[dict], silver: dict, scored: list[dict],
                 published: dict | None, stages: dict | None = None,
                 settings: Settings | None = None) -> str:
    """The run_report rows (per source, per scheme, per stage) and a short summary to print."""
    settings = _settings(settings)
    now = dt.datetime.now(dt.timezone.utc)
    changes = (silver or {}).get("sources", {})
    rows, lines = [], [f"citycredit run {run_id} — score month {month}", ""]
    lines.append(f"{'source':22} {'landed':>9} {'accepted':>9} {'quarant.':>9} {'corr.':>6} "
                 f"{'revoked':>7}  quarantine reasons")
    for d in sorted(landed, key=lambda d: d["source_id"]):
        c = changes.get(d["source_id"], {})
        metrics = {**d, "corrections": c.get("corrections", 0), "revocations": c.get("revocations", 0)}
        rows.append((run_id, month, "source", d["source_id"], json.dumps(metrics, default=str), now))
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d.get("by_reason", {}).items()))
        if d.get("status") == "missing":
            reasons = d.get("note", "missing")
        lines.append(f"{d['source_id']:22} {d['landed']:>9} {d['accepted']:>9} "
                     f"{d['quarantined']:>9} {metrics['corrections']:>6} "
                     f"{metrics['revocations']:>7}  {reasons}")
    lines.append("")
    for s in scored:
        previous, before = _previous_published(settings, s["scheme"], month)
        now_shares, then = _shares(s["grades"]), _shares(before)
        change = {g: round(now_shares.get(g, 0) - then.get(g, 0), 4) for g in s["grades"]} \
            if previous else {}
        metrics = {**s, "previous_month": previous, "grade_share_change": change}
        rows.append((run_id, month, "scheme", s["scheme"], json.dumps(metrics, default=str), now))
        dist = "  ".join(f"{g} {n}" + (f" ({change[g]:+.1%})" if previous else "")
                         for g, n in s["grades"].items())
        lines.append(f"{s['scheme']:10} {s['subjects']:>9} scored · {dist}")
        if s.get("unmatched"):
            lines.append(f"{'':10} findings matching no rule: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(s["unmatched"].items())))
    for stage, seconds in (stages or {}).items():
        rows.append((run_id, month, "stage", stage, json.dumps({"seconds": seconds}), now))
    lines.append("")
    if published:
        rows.append((run_id, month, "publish", "published_scores", json.dumps(published), now))
        lines.append(f"published: {', '.join(f'{k} {v}' for k, v in published['published'].items())} "
                     f"rows → {settings.table_path('gold', 'published_scores')}")
    if stages:
        lines.append("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    table = pa.Table.from_pylist([dict(zip(REPORT_SCHEMA.names, r)) for r in rows], schema=REPORT_SCHEMA)
    tables.write_arrow(table, settings.table_path("report", "run_report"), mode="append")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def run_month(month: str, schemes: list[str] | None = None, accept_drift: bool = False,
              run_id: str | None = None, progress=None, settings: Settings | None = None) -> dict:
    """The whole month without a scheduler — the DAG's task functions, in the DAG's order.

    `progress(stage, detail)` is called as each step starts (the CLI shows it)."""
    from .rules import available_schemes

    settings = _settings(settings)
    run_id = run_id or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    say = progress or (lambda stage, detail="": None)
    stages: dict = {}

    def timed(stage, fn, *args, **kw):
        t = time.perf_counter()
        result = fn(*args, **kw)
        stages[stage] = stages.get(stage, 0.0) + round(time.perf_counter() - t, 2)
        return result

    say("check", "deliveries")
    deliveries = timed("check", check_deliveries, month, settings)
    landed = []
    for source_id in settings.sources:
        say("land", source_id)
        landed.append(timed("land+validate", land_source, source_id, month, run_id, settings))
    say("silver", "findings, population, appeals, opt-outs")
    silver = timed("silver", build_silver, month, run_id, landed, settings)
    names = schemes or sorted(available_schemes(settings.rules))
    scored = []
    for name in names:
        say("score", name)
        scored.append(timed(f"score {name}", score_scheme, name, month, run_id, settings))
    say("publish", "checks")
    try:
        published = timed("publish", publish, month, run_id, scored, accept_drift, settings)
    except PublishRefused as exc:
        exc.summary = write_report(month, run_id, landed, silver, scored, None, stages, settings)
        raise
    summary = write_report(month, run_id, landed, silver, scored, published, stages, settings)
    return {"run_id": run_id, "month": month, "deliveries": deliveries, "landed": landed,
            "silver": silver, "scored": scored, "published": published, "summary": summary,
            "stages": stages}
