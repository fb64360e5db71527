"""The run report (SPEC §5): per source landed / accepted / quarantined by reason / suppressed
(erased persons' rows dropped at landing), corrections, revocations, accepted rows of persons not
in the month's population (`not_in_population`); the month's erasures; per scheme subjects scored,
grade distribution and its change against the previous publication; per stage seconds; and
whether the month was published — or why not."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from .. import catalog
from ..config import Settings
from ..io import tables
from ..ingest.staging import outside_population
from .checks import grade_drift, previous_publication


def _row(run_id: str, month: str, section: str, name: str, metrics: dict, now) -> dict:
    return {"run_id": run_id, "score_month": month, "section": section, "name": name,
            "metrics": json.dumps(metrics, default=str, ensure_ascii=False), "created_at": now}


def record_refusal(settings: Settings, month: str, run_id: str, problems: list[str]) -> None:
    """A refusal (a missing or rejected delivery, a refused publication), kept in run_report at
    once (section publish, name refused), so the report step can say why even when it runs in
    another process."""
    now = dt.datetime.now(dt.timezone.utc)
    table = pa.Table.from_pylist([_row(run_id, month, "publish", "refused",
                                       {"problems": problems}, now)],
                                 schema=catalog.RUN_REPORT.schema)
    tables.write_arrow(table, catalog.RUN_REPORT.at(settings), mode="append")


def record_not_scored(settings: Settings, month: str, run_id: str, reasons: dict[str, str]) -> None:
    """Schemes the score step left out of the month (scheme → why: no version in force),
    kept in run_report (section not_scored) for the report step."""
    now = dt.datetime.now(dt.timezone.utc)
    table = pa.Table.from_pylist([_row(run_id, month, "not_scored", name, {"reason": reason}, now)
                                  for name, reason in reasons.items()],
                                 schema=catalog.RUN_REPORT.schema)
    tables.write_arrow(table, catalog.RUN_REPORT.at(settings), mode="append")


def recorded_not_scored(settings: Settings, run_id: str) -> dict[str, str]:
    """scheme → why this run did not score it (record_not_scored)."""
    location = catalog.RUN_REPORT.at(settings)
    if not tables.exists(location):
        return {}
    rows = tables.read_arrow(location, columns=["run_id", "section", "name", "metrics"]).to_pylist()
    return {r["name"]: json.loads(r["metrics"])["reason"] for r in rows
            if r["run_id"] == run_id and r["section"] == "not_scored"}


def recorded_refusal(settings: Settings, run_id: str) -> list[str] | None:
    """The problems of this run's refusal, or None."""
    location = catalog.RUN_REPORT.at(settings)
    if not tables.exists(location):
        return None
    rows = tables.read_arrow(location, columns=["run_id", "section", "name", "metrics"]).to_pylist()
    refused = [r for r in rows if r["run_id"] == run_id and r["section"] == "publish"
               and r["name"] == "refused"]
    return json.loads(refused[-1]["metrics"])["problems"] if refused else None


def write_report(month: str, run_id: str, landed: list[dict] | None, silver: dict | None,
                 scored: list[dict] | None, published: dict | None, stages: dict | None,
                 settings: Settings, missing_optional: list[str] | None = None,
                 erased: dict | None = None) -> str:
    """Append the run's rows to run_report and return the summary to print. Any input may be
    None or partial when an earlier step stopped: the report says what there is."""
    now = dt.datetime.now(dt.timezone.utc)
    landed = [d for d in (landed or []) if d]
    seen = {d["source_id"] for d in landed}
    landed += [{"source_id": s, "month": month, "status": "missing", "landed": 0, "accepted": 0,
                "quarantined": 0, "suppressed": 0, "by_reason": {},
                "note": "no delivery this month (required: false); earlier deliveries stand"}
               for s in (missing_optional or []) if s not in seen]
    changes = (silver or {}).get("sources", {})
    outside = outside_population(settings, month, [d["source_id"] for d in landed
                                                   if d.get("status") == "landed"])
    rows, lines = [], [f"citycredit run {run_id} — score month {month}", ""]
    lines.append(f"{'source':22} {'landed':>9} {'accepted':>9} {'quarant.':>9} {'suppr.':>6} "
                 f"{'corr.':>6} {'revoked':>7}  quarantine reasons")
    for d in sorted(landed, key=lambda d: d["source_id"]):
        c = changes.get(d["source_id"], {})
        metrics = {**d, "corrections": c.get("corrections", 0),
                   "revocations": c.get("revocations", 0),
                   "not_in_population": outside.get(d["source_id"])}
        rows.append(_row(run_id, month, "source", d["source_id"], metrics, now))
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d.get("by_reason", {}).items()))
        if d.get("status") in ("missing", "kept"):
            reasons = d.get("note", d.get("status"))
        if outside.get(d["source_id"]):
            reasons += (", " if reasons else "") + (f"accepted but not in the {month} "
                                                    f"population {outside[d['source_id']]}")
        lines.append(f"{d['source_id']:22} {d['landed']:>9} {d['accepted']:>9} "
                     f"{d['quarantined']:>9} {d.get('suppressed', 0):>6} "
                     f"{metrics['corrections']:>6} {metrics['revocations']:>7}  {reasons}")
    lines.append("")
    if erased and erased.get("persons"):
        rows.append(_row(run_id, month, "privacy", "erasure", erased, now))
        lines.append(f"erased: {erased['persons']} person(s) who opted out by the end of {month}: "
                     f"{sum(erased['rows'].values())} rows from {len(erased['rows'])} tables, "
                     f"{erased['landing_rows']} rows from {erased['landing_files']} landing files; "
                     f"history purged in {erased['tables_purged']} tables")
        lines.append("")
    for s in [s for s in (scored or []) if s]:
        previous, before = previous_publication(settings, s["scheme"], month)
        drift = grade_drift(s["grades"], before) if previous else {}
        change = {g: round(drift.get(g, 0.0), 4) for g in s["grades"]} if previous else {}
        metrics = {**s, "previous_month": previous, "grade_share_change": change}
        rows.append(_row(run_id, month, "scheme", s["scheme"], metrics, now))
        dist = "  ".join(f"{g} {n}" + (f" ({change[g]:+.1%})" if previous else "")
                         for g, n in s["grades"].items())
        lines.append(f"{s['scheme']:10} {s['subjects']:>9} scored · {dist} · rules "
                     f"{s['rules_version']}")
        if s.get("unmatched"):
            lines.append(f"{'':10} findings matching no rule: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(s["unmatched"].items())))
    for name, reason in recorded_not_scored(settings, run_id).items():
        lines.append(f"{name:10} {reason}")
    for stage, seconds in (stages or {}).items():
        rows.append(_row(run_id, month, "stage", stage, {"seconds": seconds}, now))
    lines.append("")
    if published:
        rows.append(_row(run_id, month, "publish", "published_scores", published, now))
        lines.append(f"published: {', '.join(f'{k} {v}' for k, v in published['published'].items())} "
                     f"rows → {catalog.PUBLISHED_SCORES.at(settings)}" if published["published"]
                     else f"published: nothing (no scheme in force in {month})")
    else:
        refusal = recorded_refusal(settings, run_id)
        published_before = tables.exists(catalog.PUBLISHED_SCORES.at(settings))
        kept = ("the previous publication stays" if published_before
                else "nothing is published yet")        # a refused first month
        lines.append(f"NOT PUBLISHED ({kept}): "
                     + ("; ".join(refusal) if refusal else "an earlier step stopped the month"))
    if stages:
        lines.append("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    table = pa.Table.from_pylist(rows, schema=catalog.RUN_REPORT.schema)
    tables.write_arrow(table, catalog.RUN_REPORT.at(settings), mode="append")
    return "\n".join(lines)
