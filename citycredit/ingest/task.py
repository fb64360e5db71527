"""The ingest steps of the month (thin: settings in, typed results out; the work is in the
modules beside this one). Results are JSON-able TypedDicts: they travel through Airflow's XCom.

    find delivery → read in chunks → suppress (erased persons) → validate (GX) → bronze,
                  quarantine → staging (pseudonymised)
"""
from __future__ import annotations

import json
import time
from typing import Callable, TypedDict

from ..config import Settings, landing_folder, load_settings
from ..crash import crash_point
from ..io.spool import spools
from ..suppression import suppressed_finding_keys, suppressed_keys
from .bronze import bronze_rows, volume_drop, write_bronze
from .contracts import raw_schema
from .delivery import (READY_FILE, Delivery, DeliveryError, DeliveryMissing,
                       deliveries_of_month, delivered_months_before, find_delivery, in_bronze,
                       landed_months, latest_landed_month)
from .quarantine import quarantine_rows, quarantine_subject_keys, write_quarantine
from .read import CHUNK_ROWS, iter_delivery
from .staging import staging_rows, write_staging
from .suppress import drop_appeals_of_erased, drop_suppressed, dropped_finding_refs

__all__ = ["BatchRejected", "DeliveryError", "DeliveryMissing", "Deliveries", "Landed",
           "LateDelivery", "check_deliveries", "land_source"]


class BatchRejected(RuntimeError):
    """A delivery failed a batch-level check; nothing of the month reaches silver."""


class Deliveries(TypedDict, total=False):
    month: str
    ready: list[str]               # sources with a complete delivery
    missing_optional: list[str]    # `required: false` sources without one (earlier stand)
    kept: list[str]                # delivery folder gone (landing retention), month in bronze


class Landed(TypedDict, total=False):
    source_id: str
    month: str
    status: str                    # landed | missing | kept (from the warehouse)
    kind: str
    landed: int                    # rows delivered = accepted + quarantined + suppressed
    accepted: int
    quarantined: int
    suppressed: int                # rows of erased persons dropped at landing (SPEC §7)
    by_reason: dict[str, int]      # quarantine reason code → rows
    files: list[str]
    seconds: float
    note: str


def check_deliveries(month: str, settings: Settings | None = None) -> Deliveries:
    """Which sources delivered the month; a required source without `_READY` raises
    DeliveryMissing naming it. A source whose delivery folder is gone (landing retention,
    `citycredit cleanup`) but whose month is in bronze is `kept`: the month is rerun from what
    the warehouse holds. First of all the subject key in force must be the warehouse's
    (key_record: KeyMismatch before anything is landed; the first run records it)."""
    from ..key_record import record_subject_key

    settings = settings or load_settings()
    landing_folder(settings)        # missing: a setting's mistake, not every folder retired
    record_subject_key(settings)    # (after: a refused month leaves no key record behind)
    kept = [s for s in settings.sources if _kept_in_warehouse(settings, s, month)]
    try:
        found = deliveries_of_month(settings.landing, {s: c for s, c in settings.sources.items()
                                                       if s not in kept}, month)
    except DeliveryMissing as missing:
        raise _in_order(settings, month, missing) from None
    _none_skipped(settings, month)
    return {"month": month, **found, "kept": kept}


def _none_skipped(settings: Settings, month: str) -> None:
    """Months run in order: a month whose every required source delivered completely, after
    the latest month landed here and before `month`, was never run — scoring `month` now would
    publish it without that month's findings (SPEC §2: month M counts every delivery of months
    ≤ M), silently. Raises DeliveryMissing naming the month to run first. A new warehouse (no
    month landed before `month`) starts where it is told to (the --new-warehouse guard)."""
    required = {s: c for s, c in settings.sources.items() if c["required"]}
    delivered = [m for m in delivered_months_before(settings.landing, required, month)
                 if all((settings.landing / s / m / READY_FILE).is_file() for s in required)]
    if not delivered:
        return
    latest = latest_landed_month(settings, before=month, sources=list(required))
    skipped = [m for m in delivered if latest is not None and m > latest]
    if skipped:
        first = skipped[0]
        ready = settings.landing / next(iter(required)) / first / READY_FILE
        raise DeliveryMissing(
            f"month {month}: " + _run_first(f"{first} was delivered ({ready}) but", latest, first)
            + f", or {month} would be scored without {first}'s deliveries",
            short=f"month {month}: " + _run_first(f"{first} was delivered but", latest, first))


def _run_first(never_run: str, latest: str, first: str) -> str:
    """The words of both refusals for months not run in order (`never_run`: what was never
    run, e.g. "2026-10 was")."""
    return (f"months run in order, and {never_run} never run here (the latest month run is "
            f"{latest}): run {first} first (citycredit run --month {first})")


def _in_order(settings: Settings, month: str, missing: DeliveryMissing) -> DeliveryMissing:
    """The refusal of a month with deliveries missing, saying too that months run in order when
    months between the latest one landed here and this one were never run: most likely the
    month meant was the earliest of those (its deliveries may be all there)."""
    from ..months import shift_month

    latest = latest_landed_month(settings, before=month)
    if latest is None or shift_month(latest, 1) == month:
        return missing
    first, last = shift_month(latest, 1), shift_month(month, -1)
    never = f"{first} was" if first == last else f"{first} … {last} were"
    hint = "; " + _run_first(never, latest, first)
    return DeliveryMissing(str(missing) + hint, short=missing.short + hint)


def _kept_in_warehouse(settings: Settings, source_id: str, month: str) -> bool:
    """No delivery folder at all in landing, but the month of the source was landed before
    (landed_months)."""
    if (settings.landing / source_id / month).exists():
        return False
    return month in landed_months(settings, [source_id])[source_id]


def _landed_earlier(settings: Settings, source_id: str, month: str) -> Landed:
    """The counts of a month landed earlier whose delivery folder is gone: bronze, quarantine
    and staging stand as they are (erasures included)."""
    from collections import Counter

    from .. import catalog
    from ..io import tables

    kind = settings.sources[source_id]["kind"]
    location = catalog.bronze(source_id, kind).at(settings)
    bronze = (tables.read_arrow(location, where={"month": month}, columns=["line"]).num_rows
              if tables.exists(location) else 0)
    where = {"source_id": source_id, "month": month}
    staging, quarantine = catalog.staging(kind).at(settings), catalog.QUARANTINE.at(settings)
    accepted = (tables.read_arrow(staging, where=where, columns=["month"]).num_rows
                if tables.exists(staging) else 0)
    reasons = (tables.read_arrow(quarantine, where=where, columns=["reasons"]).column(0)
               .to_pylist() if tables.exists(quarantine) else [])
    by_reason = Counter(r for joined in reasons for r in (joined or "").split(";") if r)
    return {"source_id": source_id, "month": month, "status": "kept", "kind": kind,
            "landed": bronze, "accepted": accepted, "quarantined": len(reasons),
            "suppressed": 0, "by_reason": dict(sorted(by_reason.items())), "files": [],
            "seconds": 0.0, "note": "delivery folder gone (landing retention): bronze, "
                                    "quarantine and staging of the month stand"}


def _drop_erased(settings: Settings, raw, erased: set[str], erased_findings: set[str],
                 source_id: str):
    """One chunk less the rows of erased persons (SPEC §7) and the appeals about their
    findings: (chunk, rows dropped, identity number → subject_key of the dropped persons,
    (source_id, record_id) the dropped appeals named, the dropped persons' findings)."""
    before = raw
    raw, suppressed, numbers = drop_suppressed(raw, erased, settings.subject_key)
    raw, appeals, appealed = drop_appeals_of_erased(raw, erased_findings, settings.subject_key)
    return (raw, suppressed + appeals, numbers, appealed,
            dropped_finding_refs(before, source_id, numbers))


#: what is done with the files of a late delivery about erased persons, called as
#: `late_delivery(delivery, numbers, appealed)`: numbers, upper-case identity number →
#: subject_key of the rows landing dropped; appealed, the (source_id, record_id) the dropped
#: appeals named. The landing step above ingest and privacy (citycredit.landing) passes the
#: privacy rewrite of the delivery files; ingest itself never imports privacy.
LateDelivery = Callable[[Delivery, dict, set], None]


def _record_late_delivery(settings: Settings, delivery: Delivery, month: str,
                          numbers: dict[str, str], appealed: set, late_findings: set,
                          late_delivery: LateDelivery | None) -> None:
    """A late delivery about erased persons: their late findings are recorded as suppressed
    findings (so appeals about them are dropped too), and `late_delivery` is given the rows
    landing dropped (the delivery files lose them too)."""
    import datetime as dt

    from ..suppression import add_suppressed_findings

    if late_findings:
        add_suppressed_findings(settings, late_findings, settings.subject_key, month,
                                dt.datetime.now(dt.timezone.utc))
    if (numbers or appealed) and late_delivery is not None:
        late_delivery(delivery, numbers, appealed)


def land_source(source_id: str, month: str, run_id: str,
                settings: Settings | None = None, *, chunk_rows: int = CHUNK_ROWS,
                late_delivery: LateDelivery | None = None) -> Landed:
    """Landing → bronze → GX validation → quarantine, and the accepted rows (pseudonymised)
    into staging for silver. A re-delivery replaces the month's partitions atomically.
    `late_delivery` (LateDelivery) is called after the first pass when the delivery held rows
    of erased persons, whatever the verdict; the month's step is citycredit.landing's, which
    rewrites the delivery files without them.

    The delivery is read and checked in chunks of `chunk_rows` rows (memory bounded by a
    chunk and a few bytes per row for the checks, not by the delivery: issue 15); the rows of
    bronze, quarantine and staging wait in spools on local disk (io.spool) until the
    verdict, and each table's month is then replaced in one commit streamed from its spool.

    Raises DeliveryMissing (a required source without a delivery), DeliveryError (a file that
    cannot be landed) or BatchRejected (a batch check failed: nothing reaches staging)."""
    from .. import catalog
    from ..rules import load_catalogue
    from .validate import DeliveryChecks, data_docs_pages

    settings = settings or load_settings()
    started = time.perf_counter()
    conf = settings.sources[source_id]
    delivery = find_delivery(settings.landing, source_id, month)
    if delivery is None and _kept_in_warehouse(settings, source_id, month):
        return _landed_earlier(settings, source_id, month)
    if delivery is None:
        if conf["required"]:
            raise DeliveryMissing(f"month {month}: no complete delivery from required source "
                                  f"{source_id}")
        return {"source_id": source_id, "month": month, "status": "missing", "landed": 0,
                "accepted": 0, "quarantined": 0, "suppressed": 0, "by_reason": {},
                "seconds": 0.0,
                "note": "no delivery this month (required: false); earlier deliveries stand"}
    kind = conf["kind"]
    catalogue = load_catalogue(settings.rules)
    items = {code: (set(item.levels) if item.levels else None)
             for code, item in catalogue.items.items()}
    checks = DeliveryChecks(source_id, conf, month, items,
                            {**settings.validation, "sources": settings.sources,
                             "expectations_dir": settings.expectations}, kind=kind)
    stream = iter_delivery(delivery, conf, chunk_rows=chunk_rows,
                           forbidden_columns=settings.validation["forbidden_columns"])
    erased, erased_findings = suppressed_keys(settings), suppressed_finding_keys(settings)
    delivered = suppressed = 0
    numbers: dict[str, str] = {}
    appealed: set = set()
    late_findings: set = set()
    bronze = catalog.bronze(source_id, kind)
    with spools(settings.warehouse) as spool:
        # pass 1: read chunk by chunk; bronze rows and the rows as read are spooled, the
        # validation keeps only its check columns
        rows_read = spool("delivery", raw_schema(checks.contract))
        bronze_spool = spool("bronze", bronze.schema)
        for raw in stream.chunks():
            delivered += raw.landed
            raw, dropped, found, named, late = _drop_erased(settings, raw, erased,
                                                            erased_findings, source_id)
            suppressed += dropped
            numbers.update(found)
            appealed |= named
            late_findings |= late
            bronze_spool.append(bronze_rows(raw, source_id, month, run_id, bronze))
            rows_read.append_frame(raw.data)
            checks.add(raw.data)
        _record_late_delivery(settings, delivery, month, numbers, appealed, late_findings,
                              late_delivery)
        checks.run_row_checks()
        # pass 2: the same rows again, split into quarantined and accepted
        quarantine_spool = spool("quarantine", catalog.QUARANTINE.schema)
        staging = catalog.staging(kind)
        staging_spool = spool("staging", staging.schema)
        for data in rows_read.frames():
            quarantined, accepted = checks.split(data)
            quarantined = quarantined.assign(subject_key=quarantine_subject_keys(
                data, quarantined, settings.subject_key))
            quarantine_spool.append(quarantine_rows(quarantined, source_id, month, run_id))
            staging_spool.append(staging_rows(accepted, kind, source_id, month, run_id,
                                              settings.subject_key, staging))
        verdict = checks.finish()
        ratio = conf["min_volume_ratio"]
        problems = list(verdict.batch_errors) + volume_drop(
            settings, source_id, kind, month, delivered,
            settings.validation["min_volume_ratio"] if ratio is None else ratio,
            settings.validation["min_volume_rows"])
        if not verdict.gx_success and not problems:
            problems.append("the Great Expectations suite failed at batch level")
        _keep_gx_results(settings, source_id, month, run_id, verdict.gx_results,
                         data_docs_pages)
        # a rejected re-delivery leaves the month as it was landed before (bronze, quarantine,
        # staging); a rejected first delivery is kept in bronze and quarantine to be looked at
        kept = bool(problems) and in_bronze(settings, source_id, month)
        if not kept:    # the month's partitions, each replaced in one commit, from the spools
            write_bronze(settings, bronze_spool.reader(), source_id, month, run_id, kind)
            # killed here, bronze holds the new delivery and staging the old: the month's
            # step failed, and its rerun lands the delivery again into all three
            crash_point("land_source.bronze_written")
            write_quarantine(settings, quarantine_spool.reader(), source_id, month, run_id)
        if problems:
            raise BatchRejected(f"{source_id} {month}: delivery rejected, nothing reaches "
                                "silver: " + "; ".join(problems)
                                + ("; the month as landed before stands (bronze, quarantine, "
                                   "staging)" if kept else ""))
        write_staging(settings, staging_spool.reader(), kind, source_id, month, run_id,
                      settings.subject_key)
    counts = dict(verdict.counts)
    if counts["landed"] != counts["accepted"] + counts["quarantined"]:   # not `assert`: kept
        raise RuntimeError(                                              # under python -O
            f"{source_id} {month}: {counts['landed']} rows landed but {counts['accepted']} "
            f"accepted + {counts['quarantined']} quarantined: a row was lost or counted twice")
    counts.update(landed=delivered, suppressed=suppressed)
    return {"source_id": source_id, "month": month, "status": "landed", "kind": kind,
            **counts, "files": [f.name for f in stream.files],
            "seconds": round(time.perf_counter() - started, 2)}


def _keep_gx_results(settings: Settings, source_id: str, month: str, run_id: str,
                     results: dict, render) -> None:
    """validation_results/<month>/<run_id>/<source>.json, plus GX Data Docs pages
    <source>.rows.html and <source>.batch.html (open them in a browser)."""
    from ..identity import mask_id_numbers_in

    # GX keeps no row values (validate's result format); anything number-like that still got
    # in is masked, so results and Data Docs never hold an identity number (SPEC §7)
    folder = settings.warehouse / "validation_results" / month / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{source_id}.json").write_text(mask_id_numbers_in(json.dumps(
        results, ensure_ascii=False, indent=1, default=str)), encoding="utf-8")
    for part, html in render(results).items():
        (folder / f"{source_id}.{part}.html").write_text(mask_id_numbers_in(html),
                                                         encoding="utf-8")
