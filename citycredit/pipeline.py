"""The month: one declared order of steps, followed by `citycredit run` (run_month below) and by
the Airflow DAG (dags/citycredit_monthly.py builds one task per step from STEPS).

    check_deliveries → land_source[per source] → build_silver → score → publish
                     → erase → report (erase and report also after a refusal)

Erasure runs after publication (issue 20): persons who opted out by the end of the month are
left out of scoring already (silver.adults.scored_subjects), so the portals get the month without
waiting for the rewrites. It is `always`: a refusal does not suspend the legal obligation to
erase (SPEC §7) — what silver/optouts holds by then is carried out, the rest by the next run.

`score` is one step for every scheme of the month (not one task per scheme): its job reads and
shuffles the month's findings once and evaluates each scheme inside that partitioning
(scoring.job.MonthScan). Per-scheme tasks could not share that: each task is its own process,
and a persisted Spark frame lives only as long as the session that made it.

A step is a task function of a stage (ingest, citycredit.landing above ingest and privacy, silver,
privacy, scoring, publish) taking the score month, the run id, settings, the results of the
earlier steps it names and — run per source — that item. Results are JSON-able TypedDicts (they travel through XCom). Each function
loads settings and Spark itself, so each can run in its own process.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import Settings, landing_folder, load_settings
from .io.lock import EXCLUSIVE, SHARED, WarehouseBusy, warehouse_lock
from .io.memory import give_back_memory
from .io.spark import spark_running, stop_spark, this_machine
from .ingest.delivery import DeliveryError, DeliveryMissing, find_delivery
from .ingest.task import BatchRejected, check_deliveries
from .landing import land_source
from .months import score_month_of_run as resolve_month
from .privacy.task import erase
from .publish.task import PublishRefused, publish, report
from .rules import UnknownSchemeError
from .scoring.rules_in_force import RulesChangedSincePublication, rules_for_month
from .scoring.job import PointsOutOfRange
from .scoring.task import score
from .silver.task import build_silver

log = logging.getLogger(__name__)

__all__ = ["STEPS", "Step", "REFUSALS", "SourceSkipped", "run_month", "run_step", "resolve_month",
           "DeliveryError", "DeliveryMissing", "BatchRejected", "PublishRefused", "WarehouseBusy",
           "check_deliveries", "land_source", "build_silver", "score", "publish", "erase", "report"]

#: a refusal gives the same answer on every try (missing or unreadable delivery, rejected batch,
#: refused publication): the DAG fails such a task at once instead of retrying it
#: a month the warehouse refuses (not an error to retry): the DAG fails the task without retries,
#: the run report records why. RulesChangedSincePublication: re-scoring a published month under
#: other rules than it was published with (scoring.rules_in_force), until asked for explicitly;
#: PointsOutOfRange: a subject's points beyond their exact types (scoring.job)
REFUSALS = (DeliveryMissing, DeliveryError, BatchRejected, PublishRefused,
            RulesChangedSincePublication, PointsOutOfRange)


class SourceSkipped(Exception):
    """An optional source did not deliver this month: its step is skipped, the month goes on."""


@dataclass(frozen=True)
class Step:
    """One step of the month.

    `inputs` maps a keyword of `function` to the earlier step whose result it takes; `each`
    names the keyword that receives the item when the step runs once per source ("source_id");
    `after` orders the step after steps it takes nothing from; `options` are run options passed
    through when given (accept_drift; the schemes chosen; progress, the run's progress callback);
    `always` runs the step even when an earlier step refused (inputs of such steps are then
    None or partial; in the DAG a teardown: the run's state stays the other tasks'); `lock` is the warehouse lock the step holds while it runs
    (citycredit.io.lock: SHARED for steps that write, EXCLUSIVE for erasure, None for steps that
    only read); `spark`: the step runs Spark jobs (the run stops the Spark it started after the
    last such step, so that the steps after it do not share the machine with an idle JVM)."""

    name: str
    function: Callable[..., Any]
    inputs: dict[str, str] = field(default_factory=dict)
    each: str | None = None
    after: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    always: bool = False
    takes_run_id: bool = True
    stage: str = ""            # the name its time is reported under
    lock: str | None = SHARED
    spark: bool = False


STEPS: tuple[Step, ...] = (
    Step("check_deliveries", check_deliveries, takes_run_id=False, stage="check", lock=None),
    Step("land_source", land_source, each="source_id", after=("check_deliveries",),
         stage="land+validate"),
    Step("build_silver", build_silver, inputs={"landed": "land_source"}, stage="silver"),
    Step("score", score, after=("build_silver",),
         options=("schemes", "progress", "rescore_with_current_rules"), stage="score",
         spark=True),
    Step("publish", publish, inputs={"scored": "score"}, options=("accept_drift",),
         stage="publish", spark=True),
    Step("erase", erase, after=("publish",), always=True, stage="erase", lock=EXCLUSIVE),
    Step("report", report, always=True, stage="report",
         inputs={"deliveries": "check_deliveries", "landed": "land_source",
                 "silver": "build_silver", "erased": "erase", "scored": "score",
                 "published": "publish"}),
)
STEP_BY_NAME = {step.name: step for step in STEPS}


def items_of(step: Step, settings: Settings) -> list[str]:
    """What a per-item step runs over: the sources of conf/sources.yaml."""
    return list(settings.sources) if step.each == "source_id" else []


def run_step(step: Step, month: str, run_id: str, settings: Settings | None,
             results: dict[str, Any], item: str | None = None,
             options: dict[str, Any] | None = None, lock_wait_seconds: float = 0.0) -> Any:
    """Call one step's function with what it takes, holding the warehouse lock the step
    declares. `results` holds earlier steps' results by step name (a list for per-item steps).
    An optional source without a delivery raises SourceSkipped (carrying its 'missing' result);
    WarehouseBusy when an erasure or cleanup holds the warehouse past `lock_wait_seconds`."""
    if step.lock is not None:
        warehouse = (settings or load_settings()).warehouse
        what = f"run {run_id} ({month}) step {step.name}" + (f" {item}" if item else "")
        with warehouse_lock(warehouse, what, step.lock, lock_wait_seconds):
            return _call_step(step, month, run_id, settings, results, item, options)
    return _call_step(step, month, run_id, settings, results, item, options)


def _call_step(step: Step, month: str, run_id: str, settings: Settings | None,
               results: dict[str, Any], item: str | None,
               options: dict[str, Any] | None) -> Any:
    kwargs: dict[str, Any] = {"month": month, "settings": settings}
    if step.takes_run_id:
        kwargs["run_id"] = run_id
    kwargs.update({keyword: results.get(source) for keyword, source in step.inputs.items()})
    kwargs.update({name: (options or {}).get(name) for name in step.options
                   if (options or {}).get(name) is not None})
    if step.each:
        kwargs[step.each] = item
    try:
        result = step.function(**kwargs)
    except REFUSALS as exc:     # kept in run_report at once: the report step says why
        from .publish.report import record_refusal

        record_refusal(settings or load_settings(), month, run_id, [str(exc)])
        raise
    if step.name == "land_source" and result.get("status") == "missing":
        error = SourceSkipped(f"{item}: no delivery this month (optional source)")
        error.result = result
        raise error
    return result


def new_run_id(prefix: str = "") -> str:
    """A run's id: its UTC start to the second and 6 random hex digits, so that two runs
    started in the same second (a retry, a second operator) never share their report rows or
    gold partitions; `prefix` names the kind (`erase-`)."""
    import uuid

    return (prefix + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-"
            + uuid.uuid4().hex[:6])


def run_month(month: str, schemes: list[str] | None = None, accept_drift: bool = False,
              run_id: str | None = None, progress=None, settings: Settings | None = None,
              rescore_with_current_rules: bool = False) -> dict:
    """The whole month without a scheduler: STEPS in order, in this process.

    `progress(stage, detail)` is called as each step starts (the CLI shows it). A refusal is
    raised after the report step ran (PublishRefused carries the printed summary). The run
    holds the warehouse lock exclusively throughout (no erase or cleanup meanwhile); raises
    WarehouseBusy at once when another run, an erasure or a cleanup holds it; raises
    UnknownSchemeError for a scheme `schemes` names that rules/ lacks, and RuleFileError for a
    broken rule file among the schemes to score (all of them when `schemes` is None), and
    RulesChangedSincePublication for a published month whose rules in force changed (unless
    `rescore_with_current_rules`), and ConfigError when paths.landing is not a folder, before
    anything is landed, erased or written (not even the lock file)."""
    settings = settings or load_settings()
    if not any(rules_for_month(settings, month, schemes, rescore_with_current_rules)):
        # a mis-set CITYCREDIT_RULES: nothing to publish
        raise UnknownSchemeError(f"{settings.rules}: no scheme file (<scheme>.yaml) to score")
    # before the lock: a run refused for a mistyped landing path leaves nothing in the warehouse
    landing_folder(settings)
    run_id = run_id or new_run_id()
    with warehouse_lock(settings.warehouse, f"citycredit run {month} (run {run_id})", EXCLUSIVE):
        return _run_month(month, schemes, accept_drift, run_id, progress, settings,
                          rescore_with_current_rules)


def _run_month(month: str, schemes: list[str] | None, accept_drift: bool, run_id: str,
               progress, settings: Settings, rescore_with_current_rules: bool = False) -> dict:
    say = progress or (lambda stage, detail="": None)
    options = {"accept_drift": accept_drift, "schemes": schemes, "progress": say,
               "rescore_with_current_rules": rescore_with_current_rules}
    results: dict[str, Any] = {}
    stages: dict[str, float] = {}
    stopped: BaseException | None = None
    # a session the caller runs (a notebook's, a test's) is left running; one this run started
    # ends with its last Spark step: erasure after publication needs no JVM (4 GiB resident)
    spark_is_ours = not spark_running()

    for position, step in enumerate(STEPS):
        if spark_is_ours and not any(later.spark and (stopped is None or later.always)
                                     for later in STEPS[position:]):
            try:
                stop_spark()
            except Exception:   # noqa: BLE001 — a JVM already gone must not skip erase/report
                log.warning("could not stop the Spark session cleanly", exc_info=True)
        if stopped is not None and not step.always:
            continue
        if step.name == "report":       # the report also gets the stage times
            results["report"] = report(
                month, run_id, settings=settings, stages=stages,
                **{keyword: results.get(source) for keyword, source in step.inputs.items()})
            continue
        items = items_of(step, settings) if step.each else [None]
        started = time.perf_counter()
        try:
            outputs, refused = _run_items(step, items, month, run_id, settings, results,
                                          options, say)
            stopped = refused or stopped
        finally:
            stages[step.stage] = round(stages.get(step.stage, 0.0)
                                       + time.perf_counter() - started, 2)
        results[step.name] = outputs if step.each else (outputs[0] if outputs else None)
    if stopped is not None:
        stopped.summary = results.get("report", "")
        raise stopped
    return {"run_id": run_id, "month": month, "deliveries": results["check_deliveries"],
            "landed": results["land_source"], "silver": results["build_silver"],
            "scored": results["score"], "published": results["publish"],
            "erased": results["erase"], "summary": results["report"], "stages": stages}


# ---------------------------------------------------------------------------------------------
# a per-source step on two cores
#: a month whose deliveries hold at least this many bytes lands them on two cores: the largest
#: deliveries in the run's process, the others meanwhile in a second one (_run_items).
#: Landing a source is one core's work (Python, pandas, Arrow): at full scale the population's
#: 2.4 M rows (28 MB of Parquet) take ~35 s and the other 15 sources ~9 s one after another
#: (issue 20); a small month is not worth a second process's start (~3 s)
PARALLEL_LANDING_BYTES = 16 * 2**20


def _run_items(step: Step, items: list, month: str, run_id: str, settings: Settings,
               results: dict[str, Any], options: dict[str, Any], say
               ) -> tuple[list, BaseException | None]:
    """Run `step` for each of `items` (one None for a step run once): its outputs in the order
    of `items`, and the refusal that stops the month (None). One after another — or, for a
    month of large deliveries (_split_by_size), the items of a second share at once in a
    process of its own (ItemsElsewhere), under the run's lock, as the DAG lands up to four
    sources at once in separate tasks. A refusal there stops the month as one here does,
    after both shares ended."""
    here, there = _split_by_size(step, items, month, settings)
    outcome: dict[Any, tuple[str, Any]] = {}
    stage, elsewhere = step.stage.split("+")[0], None
    if there:
        say(stage, f"{', '.join(there)} (a second process)")
        elsewhere = ItemsElsewhere(step.name, there, month, run_id, settings)

    def here_now(item):
        say(stage, item or step.name)
        return run_step(step, month, run_id, settings, results, item, options)
    try:
        outcome.update(_one_after_another(here, here_now))
    except BaseException:
        if elsewhere is not None:
            elsewhere.wait()        # its share ends before this error leaves the run
        raise
    if elsewhere is not None:
        outcome.update(elsewhere.result())          # an error there is raised here
    outputs = [outcome[i][1] for i in items if i in outcome and outcome[i][0] == "done"]
    refused = [outcome[i][1] for i in items if i in outcome and outcome[i][0] == "refused"]
    return outputs, (refused[0] if refused else None)


def _one_after_another(items: list, call: Callable[[Any], Any]) -> dict[Any, tuple[str, Any]]:
    """item → ("done", call(item)) — an optional source's SourceSkipped gives its result — or
    ("refused", the refusal), in order until a refusal."""
    outcome: dict[Any, tuple[str, Any]] = {}
    for item in items:
        try:
            outcome[item] = ("done", call(item))
        except SourceSkipped as skipped:
            outcome[item] = ("done", skipped.result)
        except REFUSALS as exc:
            outcome[item] = ("refused", exc)
            break
        finally:
            give_back_memory()
    return outcome


class ItemsElsewhere:
    """A per-item step's `items` run one after another in a second Python process (`python -m
    citycredit.pipeline`, not multiprocessing: that re-imports the caller's main module — a
    notebook's, pytest's, a script on stdin — and a fork would inherit delta-rs' runtime
    without its threads). The request (pickled, settings and their keys included) goes
    through the child's standard input and the outcome comes back through a pipe of its own,
    never through a file; the child's output and logs are the run's. It runs under the lock
    the run's process holds, so it takes none itself."""

    def __init__(self, name: str, items: list, month: str, run_id: str, settings: Settings):
        self._read, write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "citycredit.pipeline", "--items-elsewhere", str(write)],
            stdin=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        with self._process.stdin as request:
            request.write(pickle.dumps((name, items, month, run_id, settings)))

    def wait(self) -> tuple[bytes, int]:
        """The pickled reply (empty if the process died first) and the exit code, once the
        process ended."""
        with os.fdopen(self._read, "rb") as reply:
            data = reply.read()
        return data, self._process.wait()

    def result(self) -> dict[Any, tuple[str, Any]]:
        """item → ("done", output) or ("refused", the refusal), once the process ended; its
        error (any other exception) is raised here."""
        data, code = self.wait()
        if not data:
            raise RuntimeError(f"a second landing process ended with exit code {code} "
                               "and no result")
        kind, value = pickle.loads(data)
        if kind == "error":
            raise value
        return value


def _items_elsewhere_main(reply_fd: int) -> None:
    """The child of ItemsElsewhere: `items` one after another, until a refusal."""
    name, items, month, run_id, settings = pickle.loads(sys.stdin.buffer.read())
    step = STEP_BY_NAME[name]
    try:
        reply = ("done", _one_after_another(items, lambda item: _call_step(
            step, month, run_id, settings, {}, item, None)))
    except Exception as error:          # noqa: BLE001 — raised again in the run's process
        log.exception("%s in a second process", name)
        try:
            pickle.dumps(error)
        except Exception:               # noqa: BLE001 — an error that does not pickle
            error = RuntimeError(f"{type(error).__name__}: {error}")
        reply = ("error", error)
    with os.fdopen(reply_fd, "wb") as out:
        out.write(pickle.dumps(reply))


def _split_by_size(step: Step, items: list, month: str, settings: Settings
                   ) -> tuple[list, list]:
    """(items for this process, items for a second one): all here unless `step` is the
    landing, the machine has two cores and the month's deliveries hold PARALLEL_LANDING_BYTES;
    then the largest deliveries first, each to the share with fewer bytes so far (the
    population alone against every other source, at full scale), each share in `items`' order."""
    if step.name != "land_source" or len(items) < 2 or this_machine().cores < 2:
        return items, []
    size = {item: _delivery_bytes(settings, item, month) for item in items}
    if sum(size.values()) < PARALLEL_LANDING_BYTES:
        return items, []
    shares: tuple[list, list] = ([], [])
    load = [0, 0]
    for item in sorted(items, key=lambda i: -size[i]):
        smaller = 0 if load[0] <= load[1] else 1
        shares[smaller].append(item)
        load[smaller] += size[item]
    here, there = ([i for i in items if i in share] for share in shares)
    return here, there


def _delivery_bytes(settings: Settings, source_id: str, month: str) -> int:
    """Bytes of the source's complete delivery of `month` (0: none, or one its landing will
    refuse with the reason)."""
    try:
        delivery = find_delivery(settings.landing, source_id, month)
        return sum((delivery.path / name).stat().st_size
                   for name in delivery.files) if delivery else 0
    except (DeliveryError, OSError):
        return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--items-elsewhere"]:
    _items_elsewhere_main(int(sys.argv[2]))
