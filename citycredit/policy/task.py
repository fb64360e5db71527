"""The policy tools' entry points (thin): `simulate` and `evaluate` as the CLI, the spark-submit
jobs and the citycredit_evaluate DAG call them. Each loads settings and Spark itself, writes only
to the sandbox (catalog layer `sandbox`) and the reports folder (conf policy.reports), and
returns the JSON-able summary.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import time
from pathlib import Path
from typing import Callable

from pyspark.sql import DataFrame

from .. import catalog
from ..config import Settings, load_settings, reports_folder
from ..io import tables
from ..io.lock import SHARED, warehouse_lock
from ..io.spark import get_spark
from ..months import month_before, shift_month
from ..pipeline import new_run_id
from ..rules import RuleFileError, Scheme, load_catalogue, load_draft, load_schemes
from . import evaluate as ev
from . import measures
from . import simulate as sim
from .job import (PolicyDataMissing, ScoredTogether, gold_scores, population_months,
                  read_simulation, record_evaluation, require_month, silver, subject_frame,
                  write_simulation)
from .report import evaluation_html, simulation_html

Progress = Callable[..., None]
ADOPTED = "adopted"


def _quiet(stage, detail=""):
    return None


def _load(settings: Settings, scheme: str, draft: str | Path | None) -> tuple[Scheme, Scheme | None, str | None]:
    adopted = load_schemes(settings.rules, [scheme])[scheme]
    if draft is None:
        return adopted, None, None
    draft_scheme = load_draft(Path(draft), settings.rules)
    if draft_scheme.scheme != scheme:
        raise RuleFileError(f"{draft}: is a draft of {draft_scheme.scheme!r}, not of {scheme!r}")
    return adopted, draft_scheme, Path(draft).stem


def _write_outputs(summary: dict, page: str, report_path: Path, json_path: Path | None) -> None:
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(page, encoding="utf-8")
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(to_json(summary), encoding="utf-8")


def public(summary: dict) -> dict:
    """The summary without the keys kept for the plots only (those starting with '_')."""
    return {k: (public(v) if isinstance(v, dict) else v) for k, v in summary.items()
            if not str(k).startswith("_")}


def to_json(summary: dict) -> str:
    return json.dumps(public(summary), ensure_ascii=False, indent=2, default=str)


# ---------------------------------------------------------------------------------------------
def _under_the_lock(command: str):
    """The policy tool holds the warehouse lock (shared) while it reads and writes: no erasure
    or cleanup meanwhile (citycredit.io.lock). WarehouseBusy when one holds the warehouse; its
    scheme and draft are checked first (a missing or broken draft is said as such, not as a
    busy warehouse)."""
    def wrap(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(scheme, *args, settings: Settings | None = None, **kwargs):
            settings = settings or load_settings()
            given = signature.bind(scheme, *args, settings=settings, **kwargs).arguments
            _load(settings, scheme, given.get("draft"))     # RuleFileError before the lock
            what = f"citycredit {command} {scheme} " + " ".join(map(str, args))
            if not catalog.holds_warehouse(settings.warehouse):
                # no warehouse: nothing to protect, and a lock would leave a folder that passes
                # for one; the tool refuses (require_month)
                return function(scheme, *args, settings=settings, **kwargs)
            with warehouse_lock(settings.warehouse, what.strip(), SHARED):
                return function(scheme, *args, settings=settings, **kwargs)
        return locked
    return wrap


@_under_the_lock("simulate")
def simulate(scheme: str, draft: str | Path, month: str, *, settings: Settings | None = None,
             run_id: str | None = None, json_path: Path | None = None,
             report_path: Path | None = None, progress: Progress | None = None) -> dict:
    """Score `month` under the adopted scheme and the draft in one job, write the side-by-side
    rows to sandbox/simulated_scores, the HTML report (default <policy.reports>/simulate-<draft>-
    <month>.html) and, with json_path, the JSON summary. Returns the summary; a draft that
    predates the adopted version (simulate.draft_predates) is said first, as progress stage
    "warning", and kept in the summary's `warnings`.

    Raises RuleFileError (a refused draft, or one of another scheme), UnknownSchemeError,
    PolicyDataMissing (silver lacks the month), ConfigError (policy.reports is no folder)."""
    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or _quiet
    adopted, draft_scheme, draft_name = _load(settings, scheme, draft)
    if report_path is None:
        reports_folder(settings)            # a file there: said now, not after the scoring
    predates = sim.draft_predates(adopted, draft_scheme, draft_name)
    if predates:                            # said first: the run may take minutes
        say("warning", predates)
    require_month(settings, month)          # refuse before Spark starts
    run_id = run_id or new_run_id()
    spark = get_spark(settings, "citycredit-simulate")
    size = settings.policy["explanation_sample"]
    with ScoredTogether(spark, settings, {ADOPTED: adopted, draft_name: draft_scheme}, month,
                        run_id, progress=say) as scored:
        a, d = scored[ADOPTED], scored[draft_name]
        say("write", "sandbox/simulated_scores")
        rows = sim.side_by_side(a.scores, d.scores, draft_name, run_id,
                                dt.datetime.now(dt.timezone.utc))
        write_simulation(rows, settings, scheme, draft_name, month)
        say("summarise", "migration, score change, rules, sample")
        simulated = read_simulation(spark, settings, scheme, draft_name, month)
        counts = sim.movement_counts(simulated)
        effects = {ADOPTED: sim.rule_effects(a.lines), draft_name: sim.rule_effects(d.lines)}
        sample = sim.sample_moved(simulated, size)
        sample_lines = {ADOPTED: sim.explanation_lines_of(a.lines, sample),
                        draft_name: sim.explanation_lines_of(d.lines, sample)}
        sample_scores = {r.subject_key: {"adopted_score": r.adopted_score,
                                         "adopted_grade": r.adopted_grade,
                                         "draft_score": r.draft_score,
                                         "draft_grade": r.draft_grade}
                         for r in simulated.where(simulated.subject_key.isin(sample or [""]))
                         .collect()}
    summary = sim.summarise(counts, adopted, draft_scheme, draft_name, month)
    summary["rules"] = sim.rule_table(effects[ADOPTED], effects[draft_name], adopted,
                                      draft_scheme)
    summary["explanation_sample"] = sim.explanation_differences(
        sample_lines[ADOPTED], sample_lines[draft_name], sample, sample_scores)
    report_path = Path(report_path) if report_path else \
        Path(settings.policy["reports"]) / f"simulate-{draft_name}-{month}.html"
    summary.update({"warnings": [predates] if predates else [], "run_id": run_id,
                    "seconds": round(time.perf_counter() - started, 2),
                    "sandbox_table": catalog.SIMULATED_SCORES.at(settings).path,
                    "report": str(report_path), "json": str(json_path) if json_path else None})
    say("report", str(report_path))
    _write_outputs(summary, simulation_html(summary, adopted, draft_scheme), report_path,
                   json_path)
    return summary


# ---------------------------------------------------------------------------------------------
class _Scores:
    """Per (label, month): subject_key, score, grade — from gold/scores for the adopted scheme
    when the monthly run wrote that month, else scored in memory (all labels missing a month
    from one scan); persisted until release()."""

    def __init__(self, spark, settings: Settings, schemes: dict[str, Scheme], run_id: str,
                 say: Progress):
        self.spark, self.settings, self.schemes, self.run_id, self.say = \
            spark, settings, schemes, run_id, say
        self.held: dict[tuple[str, str], DataFrame | None] = {}
        self.origin: dict[str, dict[str, str]] = {label: {} for label in schemes}
        self.months = population_months(settings)

    def month(self, month: str) -> dict[str, DataFrame | None]:
        need = {}
        for label, scheme in self.schemes.items():
            if (label, month) in self.held:
                continue
            gold = gold_scores(self.spark, self.settings, scheme.scheme, month) \
                if label == ADOPTED else None
            if gold is not None:
                self.held[(label, month)] = self._keep(subject_frame(gold))
                self.origin[label][month] = "gold/scores"
            elif month in self.months:
                need[label] = scheme
            else:
                self.held[(label, month)] = None
                self.origin[label][month] = (f"no scores for {month}: gold/scores has none and "
                                             "silver has no population snapshot of that month")
        if need:
            with ScoredTogether(self.spark, self.settings, need, month, self.run_id,
                                progress=self.say) as scored:
                for label in need:
                    self.held[(label, month)] = self._keep(subject_frame(scored[label].scores))
                    self.origin[label][month] = "scored in memory (silver as known then)"
        return {label: self.held[(label, month)] for label in self.schemes}

    def _keep(self, df: DataFrame) -> DataFrame:
        df = df.persist()
        df.count()
        return df

    def release(self) -> None:
        for df in self.held.values():
            if df is not None:
                df.unpersist()


@_under_the_lock("evaluate")
def evaluate(scheme: str, month: str, *, draft: str | Path | None = None,
             settings: Settings | None = None, run_id: str | None = None,
             json_path: Path | None = None, report_path: Path | None = None,
             progress: Progress | None = None, record: bool = True) -> dict:
    """Validity and discrimination, stability and fairness of `scheme` at `month` (and of a
    draft beside it): the HTML report (default <policy.reports>/evaluate-<scheme>-<month>.html),
    with json_path the JSON, one row per variant in sandbox/evaluations (record=True).
    Returns the adopted scheme's result with the draft's under "draft".

    Raises RuleFileError, UnknownSchemeError, PolicyDataMissing (silver lacks the month),
    evaluate.OutcomeItemError (conf policy.outcome_items names an unknown item), ConfigError
    (policy.reports is no folder)."""
    started = time.perf_counter()
    settings = settings or load_settings()
    say = progress or _quiet
    policy = settings.policy
    adopted, draft_scheme, draft_name = _load(settings, scheme, draft)
    schemes = {ADOPTED: adopted, **({draft_name: draft_scheme} if draft_scheme else {})}
    if report_path is None:
        reports_folder(settings)
    items = ev.parse_outcome_items(policy["outcome_items"], load_catalogue(settings.rules))
    require_month(settings, month)
    run_id = run_id or new_run_id()
    spark = get_spark(settings, "citycredit-evaluate")
    held_months = population_months(settings)
    window = 0
    while window < policy["outcome_months"] and shift_month(month, window + 1) in held_months:
        window += 1
    known_at = shift_month(month, window) if window else None
    previous, year_before = month_before(month), shift_month(month, -12)

    scores = _Scores(spark, settings, schemes, run_id, say)
    try:
        say("scores", month)
        now = scores.month(month)
        say("scores", f"{previous} and {year_before} (stability)")
        before = {previous: scores.month(previous), year_before: scores.month(year_before)}
        bad = None
        if window:
            say("outcome", f"{', '.join(policy['outcome_items'])} after {month}, "
                           f"as known at {known_at}")
            bad = ev.outcome_subjects(silver(spark, settings, catalog.SILVER_FINDINGS),
                                      silver(spark, settings, catalog.SILVER_APPEALS),
                                      month, known_at, items).persist()
        groups = ev.attributes(silver(spark, settings, catalog.SILVER_POPULATION,
                                      where={"snapshot_month": month}), month)
        results = {}
        for label, s in schemes.items():
            say("measures", label)
            results[label] = _measures(label, s, month, now[label], before, bad, groups, window,
                                       known_at, previous, year_before, policy, scores.origin)
        if bad is not None:
            bad.unpersist()
    finally:
        scores.release()
    result = results[ADOPTED]
    if draft_scheme is not None:
        result["draft"] = {**results[draft_name], "draft": draft_name,
                           "draft_version": draft_scheme.version}
    report_path = Path(report_path) if report_path else Path(policy["reports"]) / (
        f"evaluate-{scheme}-{month}" + (f"-{draft_name}" if draft_name else "") + ".html")
    result.update({"run_id": run_id, "seconds": round(time.perf_counter() - started, 2),
                   "report": str(report_path), "json": str(json_path) if json_path else None})
    say("report", str(report_path))
    _write_outputs(result, evaluation_html(result, schemes), report_path, json_path)
    if record:
        for label, r in results.items():
            own = {k: v for k, v in r.items() if k != "draft"} if label == ADOPTED \
                else result["draft"]
            record_evaluation(settings, scheme, month, label, schemes[label].rules_version,
                              to_json(own), run_id)
    return result


def _measures(label, scheme: Scheme, month, scores, before, bad, groups, window, known_at,
              previous, year_before, policy, origin) -> dict:
    """One variant's figures (see evaluate)."""
    reasons: dict[str, str] = {}
    out = {"scheme": scheme.scheme, "variant": label, "rules_version": scheme.rules_version,
           "month": month, "outcome_months": window, "outcome_items": list(policy["outcome_items"]),
           "outcome_known_at": known_at,
           "scores_from": "; ".join(f"{m}: {o}" for m, o in sorted(origin[label].items()))}
    wanted = policy["outcome_months"]
    first, full = shift_month(month, 1), shift_month(month, wanted)
    whole = first if wanted == 1 else f"{first} … {full}"
    if not window:      # the months it takes: stability and fairness stand without them
        reasons["outcome_months"] = (
            f"no month after {month} delivered yet (silver holds no later population "
            f"snapshot): validity and discrimination need {first} at least, {whole} for the "
            f"full window (policy.outcome_months: {wanted}) — evaluate an earlier month, or "
            "run those months first")
    elif window < wanted:
        reasons["outcome_months"] = (
            f"only {window} month(s) after {month} delivered so far "
            f"({first if window == 1 else f'{first} … {known_at}'}, of {whole}): the outcome "
            "window is shortened")
    freq = ev.frequency_table(scores, bad, groups)
    figures, why = ev.validity(freq, scheme)
    if not window:
        figures.update({"auc": None, "gini": None, "ks": None, "ks_score": None, "roc": None,
                        "monotone": None, "not_falling": [], "bad_rate": None,
                        "bad_rate_by_grade": {g: None for g in figures["bad_rate_by_grade"]}})
        why = {k: reasons["outcome_months"] for k in ("auc", "gini", "ks", "monotone",
                                                       "bad_rate")}
    reasons.update(why)
    roc = figures.pop("roc")
    out.update(figures)
    out["_roc"] = roc

    counts_now = ev.grade_counts(scores)
    grades = [g.grade for g in scheme.grades]
    out["psi"], out["psi_band"], out["grade_counts"] = {}, {}, {month: counts_now}
    for key, other in (("previous_month", previous), ("twelve_months_before", year_before)):
        frame = before[other][label]
        if frame is None:
            out["psi"][key] = None
            reasons[f"psi.{key}"] = origin[label][other]
            continue
        counts = ev.grade_counts(frame)
        out["grade_counts"][other] = counts
        try:
            out["psi"][key] = measures.psi(counts, counts_now, grades)
        except measures.Unavailable as exc:
            out["psi"][key] = None
            reasons[f"psi.{key}"] = str(exc)
        out["psi_band"][key] = measures.psi_band(out["psi"][key])
    prev_frame = before[previous][label]
    out["migration_previous_month"] = None if prev_frame is None else measures.migration_matrix(
        ev.migration_counts(prev_frame, scores), grades, grades)

    bound = policy["fairness_min_ratio"]
    out["fairness_min_ratio"] = bound
    try:
        out["incentive_grade"] = ev.incentive_grade(scheme, policy["incentive_grades"])
        fair = ev.fairness_of(freq, scheme, out["incentive_grade"], bound)
        out["fairness"] = fair["ratios"]
        out["fairness_flags"] = fair["flagged"]
        out["fairness_detail"] = fair
        if fair["reference_share"] == 0:
            reasons["fairness"] = (f"nobody is at or above {out['incentive_grade']}: no ratio "
                                   "can be formed")
    except measures.Unavailable as exc:
        out.update({"incentive_grade": None, "fairness": None, "fairness_flags": [],
                    "fairness_detail": None})
        reasons["fairness"] = str(exc)
    out["reasons"] = reasons
    return out


# ---------------------------------------------------------------------------------------------
def latest_published_month(settings: Settings, scheme: str) -> str | None:
    location = catalog.PUBLISHED_SCORES.at(settings)
    months = [p["score_month"] for p in tables.partitions(location) if p["scheme"] == scheme]
    return max(months) if months else None


@_under_the_lock("evaluate (DAG)")
def monthly_evaluation(scheme: str, month: str | None = None,
                       settings: Settings | None = None) -> dict:
    """What the citycredit_evaluate DAG keeps for an adopted scheme: the evaluation of the
    month (stability, fairness; default the latest published month) and of the month
    `policy.outcome_months` earlier, whose outcome window is complete (validity,
    discrimination). Returns {month: headline figures} for the months evaluated."""
    settings = settings or load_settings()
    month = month or latest_published_month(settings, scheme)
    if month is None:
        raise PolicyDataMissing(f"{scheme}: nothing published yet: no month to evaluate")
    out = {}
    for m in dict.fromkeys([month, shift_month(month, -settings.policy["outcome_months"])]):
        if m not in population_months(settings):
            continue
        r = evaluate(scheme, m, settings=settings)
        out[m] = {k: r[k] for k in ("outcome_months", "auc", "gini", "ks", "monotone", "psi",
                                    "report")}
        out[m]["fairness_flags"] = len(r["fairness_flags"])
    return out
