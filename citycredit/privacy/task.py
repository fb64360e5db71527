"""The privacy steps and commands (thin): the month's `erase` step (pipeline.STEPS, after
publish and before report — the month's opt-outs are left out of scoring already;
`citycredit erase`), `citycredit cleanup` and
`citycredit privacy-scan`. Results are JSON-able TypedDicts (they travel through XCom)."""
from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import TypedDict

from .. import catalog
from ..catalog import NoWarehouse
from ..config import Settings, landing_folder, load_settings
from ..ingest.delivery import READY_FILE, never_landed, report_landings
from ..io.lock import EXCLUSIVE, SHARED, warehouse_lock
from ..months import is_month, month_of, shift_month
from .erasure import ErasureError, erase_due, warehouse_tables
from .landing import old_deliveries, remove_deliveries
from .scan import ScanResult, needles_for_many, scan_for

log = logging.getLogger(__name__)

__all__ = ["Erased", "Cleaned", "ErasureError", "erase", "cleanup", "privacy_scan"]


class Erased(TypedDict):
    month: str
    persons: int                   # opt-outs carried out
    rows: dict[str, int]           # table id → rows removed
    landing_files: int             # delivery files rewritten
    landing_rows: int              # rows removed from them
    files_vacuumed: int            # files physically removed (zero retention)
    tables_purged: int             # tables whose log was purged (checkpoint + cleanup)
    seconds: float


class Cleaned(TypedDict):
    staging_removed: list[str]     # `_staging-*` / `_landing-spool-*` folders of killed runs
    files_vacuumed: int
    tables: int
    deliveries_removed: list[str]  # landing folders older than landing.retention_months
    deliveries_kept: list[str]     # … of those, the ones holding a file never landed here
    landing_before: str            # the first month kept in landing
    seconds: float


def erase(month: str, run_id: str, settings: Settings | None = None) -> Erased:
    """Carry out every opt-out requested on or before the last day of `month` (SPEC §7): the
    persons' rows go from every table, its Delta history and the landing zone, and they go on
    the suppression list. Raises ErasureError when a table could not be completed (a rerun
    finishes it), WarehouseBusy when a run or a cleanup holds the warehouse (the month's own
    run holds it already: this step takes nothing more)."""
    from ..io.spark import get_spark, on_a_cluster
    from ..key_record import check_subject_key

    settings = settings or load_settings()
    check_subject_key(settings)     # another key would make keys that match no one here
    landing_folder(settings)        # a mistyped path would leave the delivery files as they are
    started = time.perf_counter()
    # on a cluster its executors delete from the big Spark-written tables (gold), the session
    # started only if one of them holds rows to delete; embedded, delta-rs does it all here
    cluster = (lambda: get_spark(settings, "citycredit-erase")) if on_a_cluster(settings) \
        else None
    with warehouse_lock(settings.warehouse, f"erase {month} (run {run_id})", EXCLUSIVE):
        done = erase_due(settings, month, run_id, cluster)
    return {"month": month, "persons": len(done.persons), "rows": dict(sorted(done.rows.items())),
            "landing_files": len(done.landing),
            "landing_rows": sum(f.rows_removed for f in done.landing),
            "files_vacuumed": done.files_vacuumed, "tables_purged": done.tables_purged,
            "seconds": round(time.perf_counter() - started, 2)}


def optouts_not_landed(settings: Settings, month: str) -> list[Path]:
    """The complete opt-out deliveries (`_READY`) of months up to `month` holding a file no run
    has landed here that still holds rows. `erase` does not see them: it carries out the
    opt-outs silver holds, which landing (validated, pseudonymised) puts there — their month's
    run lands them and erases. (A landed file whose every row was erased has left bronze too,
    but holds no row any more: not listed.)"""
    from .landing import _count_rows

    landings, unseen = report_landings(settings), []
    for source_id, conf in settings.sources.items():
        if conf["kind"] != "optouts" or not (settings.landing / source_id).is_dir():
            continue
        for folder in sorted((settings.landing / source_id).iterdir()):
            if not (is_month(folder.name) and folder.name <= month
                    and (folder / READY_FILE).is_file()):
                continue
            if any(_count_rows(folder, name, source_id, folder.name, conf) != 0
                   for name in sorted(never_landed(settings, folder, landings))):
                unseen.append(folder)
    return unseen


def cleanup(settings: Settings | None = None, today: dt.date | None = None,
            dry_run: bool = False) -> Cleaned:
    """Housekeeping: `_staging-*` and `_landing-spool-*` folders of killed runs (older than
    cleanup.staging_min_age_hours) removed, every table vacuumed with cleanup.retention_days,
    delivery folders older than landing.retention_months (counted back from `today`'s month)
    deleted. `dry_run` only lists the landing folders it would delete and keep (no staging
    folder is removed and nothing vacuumed).
    A delivery folder holding a data file never landed here (the run report and bronze name
    the files landed: ingest.delivery.landed_files) is kept and listed: the only copy of its
    rows. Raises NoWarehouse when the warehouse folder holds no warehouse (a mistyped
    path: nothing is deleted), WarehouseBusy when a run or an erasure holds the warehouse
    (citycredit.io.lock)."""
    settings = settings or load_settings()
    if not catalog.holds_warehouse(settings.warehouse):
        origin = settings.origins.get("paths.warehouse", "conf")
        raise NoWarehouse(f"no warehouse at {settings.warehouse} (no "
                          f"{', '.join(catalog.WAREHOUSE_LAYERS)} folder; paths.warehouse, from "
                          f"{origin}): nothing was cleaned and no delivery deleted (check "
                          "CITYCREDIT_WAREHOUSE)")
    if not dry_run:
        with warehouse_lock(settings.warehouse, "citycredit cleanup", EXCLUSIVE):
            return _cleanup(settings, today, dry_run)
    return _cleanup(settings, today, dry_run)


def _cleanup(settings: Settings, today: dt.date | None, dry_run: bool) -> Cleaned:
    started = time.perf_counter()
    today = today or dt.date.today()
    before = shift_month(month_of(today), -settings.landing_retention_months)
    hours = float(settings.cleanup["retention_days"]) * 24
    staging_age = float(settings.cleanup["staging_min_age_hours"]) * 3600
    from ..io import tables

    staging, vacuumed, count = [], 0, 0
    for location in warehouse_tables(settings):
        if not tables.exists(location):
            continue
        count += 1
        if dry_run:
            continue
        staging += tables.remove_staging_leftovers(location, staging_age)
        vacuumed += len(tables.vacuum(location, retention_hours=hours))
    if not dry_run:     # spools of killed landings (the lock says no landing is running)
        from ..io.spool import remove_spool_leftovers

        staging += remove_spool_leftovers(settings.warehouse, staging_age)
    old = old_deliveries(settings.landing, settings.sources, before)
    # a folder goes only when every data file in it was landed here: one never landed (or a
    # file that arrived after its month was landed) is the only copy of its rows
    landings = report_landings(settings)
    never = [f for f in old if never_landed(settings, f, landings)]
    folders = [f for f in old if f not in never]
    if not dry_run:
        remove_deliveries(folders)
    return {"staging_removed": staging, "files_vacuumed": vacuumed, "tables": count,
            "deliveries_removed": [str(f) for f in folders],
            "deliveries_kept": [str(f) for f in never], "landing_before": before,
            "seconds": round(time.perf_counter() - started, 2)}


class NotAPerson(ValueError):
    """A value given to privacy_scan that is no identity number or subject key; names its
    position among the persons (1…), never the value."""

    def __init__(self, position: int, problem: str):
        super().__init__(f"person {position} {problem}")
        self.position, self.problem = position, problem


class NothingToScan(NoWarehouse):
    """privacy_scan was pointed at a warehouse that does not exist or holds no warehouse: a
    mistyped path would otherwise read as proof that a person's data is gone ("clean")."""


def privacy_scan(id_number: str | None = None, subject_key: str | None = None,
                 settings: Settings | None = None, workers: int | None = None,
                 id_numbers: list[str] | None = None,
                 subject_keys: list[str] | None = None) -> ScanResult:
    """Every file under the warehouse, the landing zone and the policy reports folder searched
    for persons, in one pass over the files: identity numbers (each with its subject key,
    computed with the configured key) and/or subject keys alone. Places name the person by
    their position: id_number / id_numbers first, then subject_key / subject_keys (1…).
    `workers`: files read at a time (default: the machine's cores). Raises NotAPerson for a
    value that is not a valid identity number or subject key: a fragment would match as a
    substring almost anywhere (a false "found"). Raises NothingToScan when the warehouse does
    not exist or holds no warehouse (a missing landing zone is a warning), WarehouseBusy while a
    run, an erasure or a cleanup holds the warehouse."""
    import os
    import re

    from ..identity import id_number_problem
    from ..identity import subject_key as key_of

    settings = settings or load_settings()
    numbers = [n.strip() for n in ([id_number] if id_number else []) + list(id_numbers or [])
               if n and n.strip()]
    keys = [k.strip() for k in ([subject_key] if subject_key else []) + list(subject_keys or [])
            if k and k.strip()]
    for position, number in enumerate(numbers, 1):
        problem = id_number_problem(number)
        if problem:
            raise NotAPerson(position, f"is not a valid resident identity number ({problem})")
    for position, key in enumerate(keys, len(numbers) + 1):
        if not re.fullmatch(r"[0-9a-f]{64}", key.lower()):
            raise NotAPerson(position, "is not a subject key (64 hexadecimal characters)")
    if not Path(settings.warehouse).is_dir():
        raise NothingToScan(f"the warehouse {settings.warehouse} does not exist: nothing was "
                            "scanned (check CITYCREDIT_WAREHOUSE)")
    if not catalog.holds_warehouse(settings.warehouse):
        raise NothingToScan(f"{settings.warehouse} holds no warehouse (no "
                            f"{', '.join(catalog.WAREHOUSE_LAYERS)} folder): nothing was scanned "
                            "(check CITYCREDIT_WAREHOUSE)")
    if not Path(settings.landing).is_dir():     # a landing zone may be gone; say it was not seen
        log.warning("the landing zone %s does not exist: only the warehouse and the reports "
                    "were scanned (check CITYCREDIT_LANDING)", settings.landing)
    persons = [(n, key_of(n, settings.subject_key)) for n in numbers] + [(None, k) for k in keys]
    # shared: beside lookups and other scans, never during a run, an erasure or a cleanup
    # (their staging files come and go under the scan)
    with warehouse_lock(settings.warehouse, "citycredit privacy-scan", SHARED):
        return scan_for(needles_for_many(persons), settings.warehouse, settings.landing,
                        allowed_places(settings), workers or os.cpu_count() or 2,
                        reports=settings.policy.get("reports"))


def allowed_places(settings: Settings) -> list[str]:
    """Where an erased person's subject key may stay (paths under the warehouse): the erasure
    record tables (suppression list, erasure log) and the lookup audit log when it is the
    embedded SQLite file under the warehouse — erasure keeps it on purpose, the centre's legal
    trace of who looked a person up (issue "Lookups" item 4; README "Lookups")."""
    import os

    from sqlalchemy.engine import make_url

    from ..lookup.store import audit_url

    places = [table.id for table in catalog.fixed_tables() if table.erasure_record]
    url = make_url(audit_url(settings))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        rel = os.path.relpath(os.path.abspath(url.database), os.path.abspath(settings.warehouse))
        if not rel.startswith(".."):
            places.append(rel.replace(os.sep, "/"))
    return places
