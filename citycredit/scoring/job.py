"""The scoring job's edges: silver as known at the month in, gold out (atomic partition
replace per scheme, month and run: a run's rows stay unseen until publication promotes them,
citycredit.publish.published). `jobs/score.py` (spark-submit), the month's score step
(scoring.task.score) and the policy tools (policy.job.ScoredTogether) all score through
`MonthScan`: the month's findings are read once, repartitioned by subject_key and held, and
every scheme is evaluated inside that partitioning (no second scan or shuffle of the findings).

While gold is written, the job records what the publication checks need (ScoringResult):
adults expected, score rows, and checksums of subject keys and of points per subject on both
sides (scores and explanation lines), taken with Spark observations of the writes themselves.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from functools import reduce
from typing import Iterable

from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from .. import catalog
from ..config import Settings
from ..io import tables
from ..months import last_day
from ..publish.published import keep_gold_layout
from ..rules import Scheme
from ..rules.reading import _display
from ..silver.adults import scored_subjects
from ..silver.residence import state_month
from ..silver.versions import as_known_at
from .decimals import as_units
from .steps import (FINDING_COLUMNS, appeal_flags, current_findings_per_item, evaluate_month,
                    month_appeal_cutoff, of_scored_subjects, summarise_month)

# Held frames are local checkpoints on local disk: rows computed once, stored as serialised rows
# (read back through the page cache), not in the heap — at 2× the full city (30.9 M finding
# versions) a memory-first cache ran the 4 GiB heap out of memory — and not as Spark's columnar
# cache, whose compression analysis made holding a scheme's evaluated findings cost ~10 s more
# than computing them at full scale (docs/performance.md, seventh sitting).
_KEEP = StorageLevel.DISK_ONLY


class PointsOutOfRange(RuntimeError):
    """A month whose points leave their exact types for some subject (decimals.cast_or_stop:
    a rule's, a dimension's points beyond decimal(18,8), a score beyond int; or a sum beyond a
    long). The message names the month, the rule file and the rule or dimension — never a
    subject. The same on every try: a refusal (pipeline.REFUSALS)."""


def out_of_range_error(error: BaseException | None, month: str,
                       schemes: Iterable[Scheme]) -> PointsOutOfRange | None:
    """Spark's error of a total beyond its type (raised in a task, maybe wrapped by a write)
    said for people, without Spark's hint to turn ANSI mode off; None for any other error."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, PySparkException):
            condition = (error.getCondition() or "").split(".")[0]
            if condition == "USER_RAISED_EXCEPTION":        # cast_or_stop's own message
                said = (error.getMessageParameters() or {}).get("errorMessage", "")
                return PointsOutOfRange(f"{month} cannot be scored: {said}")
            if condition in ("ARITHMETIC_OVERFLOW", "NUMERIC_VALUE_OUT_OF_RANGE",
                             "CAST_OVERFLOW"):                # a sum of longs beyond 2^63
                files = [_display(s.path) for s in schemes]     # Spark does not say which
                files = files[0] if len(files) == 1 else "one of " + ", ".join(files)
                return PointsOutOfRange(
                    f"{month} cannot be scored: {files}: a subject's points (or a tiers rule's "
                    "quantities) add up beyond what exact sums hold (about 9.2·10^10 points, "
                    "9.2·10^14 of a quantity): lower the points")
        error = error.__cause__ or error.__context__
    return None


#: the modulus of the checksums (a prime below 2³¹: products of two residues fit a long)
CHECK_MODULUS = 2_147_483_647


@dataclass
class ScoringResult:
    """What one scheme's scoring wrote and what publication checks (publish.checks).

    adults: rows of the month's scored subjects (whom scoring was given); adults_distinct: their
    distinct subject keys; adult_keys: Σ key_weight over them. subjects: gold/scores rows written;
    subject_keys: Σ key_weight over them. points_scored / points_explained: Σ over subjects of
    key_weight × (points_positive + points_negative) and × Σ explanation-line points, each in
    units of 10⁻⁸ points, modulo CHECK_MODULUS — equal when every subject's lines sum to its
    score (a difference cancels only by chance, about 1 in 2³¹)."""

    scheme: str
    month: str
    run_id: str
    subjects: int          # rows written to gold/scores
    lines: int             # rows written to gold/score_lines
    seconds: float
    adults: int = 0
    adults_distinct: int = 0
    adult_keys: int = 0
    subject_keys: int = 0
    points_scored: int = 0
    points_explained: int = 0
    grades: dict[str, int] = field(default_factory=dict)    # grade → subjects, highest first
    unmatched: dict[str, int] = field(default_factory=dict)  # item_code → no_rule findings


@dataclass
class MonthInputs:
    """Silver as known at the score month: only deliveries of months <= month count (SPEC §2)."""

    findings: DataFrame    # silver/findings, current versions
    subjects: DataFrame    # every subject scored, with its attributes (silver.adults.scored_subjects)
    appeals: DataFrame     # silver/appeals, current versions


def load_inputs(spark: SparkSession, settings: Settings, month: str,
                with_months_resident: bool = False) -> MonthInputs:
    """Silver as known at `month`; with_months_resident: the subjects carry months_resident
    (only for schemes whose subject rules test it, see needs_months_resident): from
    silver/residence when it is as of the month (the month just delivered), else counted from
    every population snapshot up to the month (an earlier month rerun: silver.residence)."""
    def silver(table: catalog.Table, where=None):
        return tables.read(spark, table.at(settings), where=where)

    optouts = silver(catalog.SILVER_OPTOUTS).where(f"known_from <= '{month}'")
    kept = with_months_resident and state_month(settings) == month
    population = (silver(catalog.SILVER_POPULATION) if with_months_resident and not kept
                  else silver(catalog.SILVER_POPULATION, where={"snapshot_month": month}))
    subjects = scored_subjects(population, optouts, month, with_months_resident and not kept)
    if kept:
        state = silver(catalog.SILVER_RESIDENCE, where={"as_of": month})
        subjects = subjects.join(state.select("subject_key", (
            F.col("months_before") + F.col("active").cast("int")).alias("months_resident")),
            "subject_key", "left")
    return MonthInputs(
        findings=as_known_at(silver(catalog.SILVER_FINDINGS), month),
        subjects=subjects,
        appeals=as_known_at(silver(catalog.SILVER_APPEALS), month),
    )


def needs_months_resident(scheme: Scheme) -> bool:
    """Does a subject rule of the scheme test months_resident (SPEC §4.1)?"""
    return "months_resident" in scheme.subject_attributes


# ---------------------------------------------------------------------------------------------
@dataclass
class SchemeScores:
    """One scheme scored from a MonthScan: its evaluated findings (held until the scan
    ends or release()), gold/scores rows and gold/score_lines rows (catalog columns)."""

    scheme: Scheme
    evaluated: DataFrame
    scores: DataFrame
    lines: DataFrame
    held: list[DataFrame] = field(default_factory=list)   # to release after the writes


class MonthScan:
    """Context manager: the month's inputs for `schemes`, read once and held.

    On entering, the scored subjects are repartitioned by subject_key and held (a local
    checkpoint that keeps their partitioning known to the planner; with months_resident when a
    scheme needs it), and the findings as known at the month of those subjects repartitioned
    alike and held.
    `score(scheme)` then evaluates a scheme from them: steps.evaluate_findings asks for the
    same partitioning, which the held findings already have, so no scheme adds a scan or an
    exchange of the findings (tests/integration/test_policy.py checks the plans). Leaving
    releases everything held."""

    def __init__(self, spark: SparkSession, settings: Settings, month: str,
                 schemes: Iterable[Scheme], inputs: MonthInputs | None = None, progress=None):
        self.spark, self.settings, self.month = spark, settings, month
        self.schemes = list(schemes)
        self.with_months_resident = any(needs_months_resident(s) for s in self.schemes)
        self.inputs = inputs
        self.say = progress or (lambda stage, detail="": None)
        self.findings: DataFrame | None = None
        self.subjects: DataFrame | None = None
        self._held: list[DataFrame] = []

    def __enter__(self) -> "MonthScan":
        inputs = self.inputs or load_inputs(self.spark, self.settings, self.month,
                                            self.with_months_resident)
        self.say("scan", f"findings as known at {self.month}, by subject")
        _describe(self.spark, f"scoring {self.month}: findings by subject")
        # partitioned as the findings are: each scheme's joins with its subjects (the scores'
        # left join, the subject rules) then exchange neither side
        self.subjects = self._keep(inputs.subjects.repartition("subject_key"))
        # the scored subjects' findings only, filtered once here: no scheme's evaluation then
        # joins the adults again (evaluate_month with subjects None)
        self.findings = self._keep(of_scored_subjects(
            inputs.findings.select(*[c for c in FINDING_COLUMNS if c in inputs.findings.columns])
            .repartition("subject_key"), self.subjects))
        self.appeals = inputs.appeals
        # the same for every scheme: read, versioned and grouped once (a few seconds a scheme)
        self.appeal_flags = self._keep(appeal_flags(
            inputs.appeals, last_day(self.month),
            month_appeal_cutoff(self.month, self.settings.scoring["appeal_mask_working_days"])))
        _describe(self.spark, None)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for df in self._held:
            _unhold(df)
        self._held.clear()
        said = out_of_range_error(exc, self.month, self.schemes)
        if said is not None:
            raise said from None

    def score(self, scheme: Scheme, run_id: str, computed_at: dt.datetime) -> SchemeScores:
        """Steps 1–7 and the explanation of `scheme` from the held inputs.

        The evaluated findings, the per-rule totals, the subject rules' flags and the
        per-dimension totals are computed now and held (both outputs read them: the findings
        are evaluated — the windows' sorts — once, and the totals aggregated once) until
        release() or the scan ends. Only the findings a later step reads are evaluated
        (steps.findings_the_month_reads: about half of them at full scale are long expired or
        match no rule; unmatched_items counts the latter)."""
        mask_days = self.settings.scoring["appeal_mask_working_days"]
        _describe(self.spark, f"scoring {self.month}: {scheme.scheme} evaluated and totalled")
        evaluated = self._keep(evaluate_month(self.findings, None, self.appeals, scheme,
                                              self.month, mask_working_days=mask_days,
                                              flags=self.appeal_flags))
        held = [evaluated]

        def keep_totals(totals: DataFrame) -> DataFrame:     # per rule, flags, per dimension
            held.append(self._keep(totals))
            return held[-1]

        try:
            scores, lines = summarise_month(evaluated, self.subjects, scheme, self.month, run_id,
                                            computed_at=computed_at, keep=keep_totals)
        finally:
            _describe(self.spark, None)
        return SchemeScores(scheme, evaluated, scores, lines, held)

    def unmatched_items(self, schemes: list[Scheme]) -> list[dict[str, int]]:
        """Per scheme, in order: item_code → findings of scored subjects that match no rule of
        it (status no_rule, SPEC §4 step 2; the run report lists them), from one count of the
        held findings per item and level (steps.current_findings_per_item)."""
        _describe(self.spark, f"scoring {self.month}: unmatched items")
        try:
            counts = current_findings_per_item(self.findings, self.appeal_flags).collect()
        finally:
            _describe(self.spark, None)
        unmatched = []
        for scheme in schemes:
            left: dict[str, int] = {}
            for row in counts:
                if scheme.rule_for(row["item_code"], row["level"]) is None:
                    left[row["item_code"]] = left.get(row["item_code"], 0) + int(row["findings"])
            unmatched.append(dict(sorted(left.items())))
        return unmatched

    def release(self, df: DataFrame) -> None:
        """Let go of one held frame now (the findings once every scheme is evaluated, or a
        scheme's evaluated findings once its gold is written)."""
        _unhold(df)
        self._held = [d for d in self._held if d is not df]

    def adults(self) -> dict[str, int]:
        """adults, adults_distinct, adult_keys of the scored subjects (see ScoringResult)."""
        row = self.subjects.agg(F.count(F.lit(1)).alias("adults"),
                                F.countDistinct("subject_key").alias("adults_distinct"),
                                F.sum(key_weight()).alias("adult_keys")).first()
        return {k: int(row[k] or 0) for k in ("adults", "adults_distinct", "adult_keys")}

    def _keep(self, df: DataFrame) -> DataFrame:
        df = hold(df)
        self._held.append(df)
        return df


def hold(df: DataFrame) -> DataFrame:
    """`df` computed now and held on local disk as rows (an eager local checkpoint), with its
    partitioning known to the planner: a frame repartitioned by subject_key, or computed from
    such frames without an exchange, is read back so partitioned, and what groups or joins it
    by subject_key adds no exchange. Adaptive execution is off while it is computed — its
    final plan reports no partitioning — which costs these plans nothing: they have no exchange
    to re-plan but the one a repartition asks for. Release with _unhold."""
    spark = df.sparkSession
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        return df.localCheckpoint(eager=True, storageLevel=_KEEP)
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)


def _unhold(df: DataFrame) -> None:
    """Drop the stored rows of a frame hold() made (DataFrame.unpersist does not reach a local
    checkpoint's rows: they belong to the RDD the checkpoint scans)."""
    df._jdf.queryExecution().analyzed().rdd().unpersist(False)


def _describe(spark: SparkSession, what: str | None) -> None:
    """Name the Spark jobs that follow (Spark UI, event log, bench.profile_scoring)."""
    spark.sparkContext.setJobDescription(what)


# ---------------------------------------------------------------------------------------------
# checksums (publish.checks compares them)
def key_weight() -> Column:
    """A subject's weight in the checksums: 1 … CHECK_MODULUS from a hash of subject_key."""
    return F.pmod(F.xxhash64("subject_key"), F.lit(CHECK_MODULUS)) + F.lit(1)


def weighted_points(points: Column) -> Column:
    """key_weight × points (in 10⁻⁸ units) mod CHECK_MODULUS, per row (sum, then mod again):
    both factors are below 2³¹, so the product and a sum of 2³¹ rows fit a long."""
    modulus = F.lit(CHECK_MODULUS)
    return F.pmod(F.pmod(as_units(points), modulus) * key_weight(), modulus)


def _observed_scores(scores: DataFrame, scheme: Scheme) -> tuple[DataFrame, Observation]:
    seen = Observation(f"scores-{uuid.uuid4().hex[:8]}")
    by_grade = [F.sum(F.when(F.col("grade") == g.grade, 1).otherwise(0)).alias(f"grade_{i}")
                for i, g in enumerate(scheme.grades)]
    return scores.observe(
        seen, F.count(F.lit(1)).alias("rows"), F.sum(key_weight()).alias("keys"),
        F.sum(weighted_points(F.col("points_positive") + F.col("points_negative"))).alias("points"),
        *by_grade), seen


def _observed_lines(lines: DataFrame) -> tuple[DataFrame, Observation]:
    seen = Observation(f"lines-{uuid.uuid4().hex[:8]}")
    return lines.observe(seen, F.count(F.lit(1)).alias("rows"),
                         F.sum(weighted_points(F.coalesce(F.col("points"), F.lit(0))))
                         .alias("points")), seen


# ---------------------------------------------------------------------------------------------
def run_scoring(spark: SparkSession, settings: Settings, schemes: Scheme | Iterable[Scheme],
                month: str, run_id: str | None = None, inputs: MonthInputs | None = None,
                progress=None) -> list[ScoringResult]:
    """Score `schemes` for one month from one scan (MonthScan) and write every scheme's gold
    rows under this run's own partitions (scheme, score_month, run_id of gold/scores and
    gold/score_lines) in one atomic commit per table: the schemes' explanation lines in one
    write, then their scores in one (a Spark job each: the schemes' stages share the cores, and
    the table's state is read once, not once per scheme). Readers do not see them until
    publication promotes the run (citycredit.publish.published); a run_id scored again
    replaces only its own rows. Returns one ScoringResult per scheme, in the order given; each
    result's `seconds` is the job's time split evenly among the schemes (written together)."""
    schemes = [schemes] if isinstance(schemes, Scheme) else list(schemes)
    run_id = run_id or uuid.uuid4().hex[:12]
    say = progress or (lambda stage, detail="": None)
    computed_at = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    keep_gold_layout(spark, settings)
    names = [scheme.scheme for scheme in schemes]
    partition = {"scheme": names if len(names) > 1 else names[0], "score_month": month,
                 "run_id": run_id}
    with MonthScan(spark, settings, month, schemes, inputs, progress=say) as scan:
        adults = scan.adults()
        scored, observed = [], []
        for scheme in schemes:
            say("score", scheme.scheme)
            scored.append(scan.score(scheme, run_id, computed_at))
            observed.append((_observed_scores(scored[-1].scores, scheme),
                             _observed_lines(scored[-1].lines)))
        unmatched = scan.unmatched_items(schemes)
        scan.release(scan.findings)       # every scheme evaluated: the writes read what it held
        say("write", f"gold of {', '.join(names)}")
        try:
            _describe(spark, f"scoring {month}: gold/score_lines")
            tables.write(reduce(DataFrame.unionByName, [lines for _, (lines, _) in observed]),
                         catalog.SCORE_LINES.at(settings), mode="overwrite", replace=partition)
            _describe(spark, f"scoring {month}: gold/scores")
            tables.write(reduce(DataFrame.unionByName, [scores for (scores, _), _ in observed]),
                         catalog.SCORES.at(settings), mode="overwrite", replace=partition)
        finally:
            _describe(spark, None)
            for one in scored:
                for frame in one.held:
                    scan.release(frame)
        seconds = round((time.perf_counter() - started) / len(schemes), 2)
        results = []
        for scheme, left, ((_, score_stats), (_, line_stats)) in zip(schemes, unmatched,
                                                                      observed):
            s, ln = score_stats.get, line_stats.get
            results.append(ScoringResult(
                scheme.scheme, month, run_id, subjects=int(s["rows"]), lines=int(ln["rows"]),
                seconds=seconds, subject_keys=int(s["keys"] or 0),
                points_scored=int(s["points"] or 0) % CHECK_MODULUS,
                points_explained=int(ln["points"] or 0) % CHECK_MODULUS,
                grades={g.grade: int(s[f"grade_{i}"] or 0) for i, g in enumerate(scheme.grades)},
                unmatched=left, **adults))
    return results

