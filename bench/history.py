"""The bulk fast path behind `bench_month --steady`: a generated city's earlier months loaded
into bronze and silver at once (citycredit/synth/bulk_history.py, shared with `citycredit demo`),
plus the previous month's publication, so the measured month meets a drift check.

The opt-outs of the history months are then carried out (the erase step a run of the last
history month would have taken), so the measured month erases only its own new opt-outs, as in
steady state; the landing zone's files are rewritten without those persons, as a real run does.

The last history month is scored by the independent reference (reference/duckdb_scorer.py) and
published: its scores equal the Spark job's (the differential test), so the drift check of the
measured month compares against what a real run would have published.
"""
from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from citycredit import catalog
from citycredit.config import Settings
from citycredit.io import tables
from citycredit.synth.bulk_history import load_history as load_bronze_and_silver


def load_history(settings: Settings, months: list[str], say=print) -> dict:
    """Bronze and silver of `months` (the generated city's first months, in order), their
    opt-outs erased, and the last one's publication. Returns row counts."""
    from citycredit.privacy.erasure import erase_due

    counts = load_bronze_and_silver(settings, months, say=say)
    started = time.perf_counter()
    erased = erase_due(settings, months[-1], run_id=RUN_ID)
    counts["erased persons"] = len(erased.persons)
    say(f"  history: {len(erased.persons)} opted-out person(s) erased "
        f"({time.perf_counter() - started:.0f} s)")
    counts["published"] = publish_reference(settings, months[-1])
    return counts


#: the run the history's publication names (it has no gold/scores rows: nothing reads them)
RUN_ID = "bulk-history"


def publish_reference(settings: Settings, month: str) -> int:
    """gold/published_scores of `month` for every scheme, scored by the DuckDB reference, as
    published by the run RUN_ID."""
    from reference.duckdb_scorer import score_reference
    from citycredit.rules import load_schemes

    silver = {name: [u.removeprefix("file://") for u in
                     DeltaTable(table.at(settings).path).file_uris()]
              for name, table in (("findings", catalog.SILVER_FINDINGS),
                                  ("population", catalog.SILVER_POPULATION),
                                  ("appeals", catalog.SILVER_APPEALS),
                                  ("optouts", catalog.SILVER_OPTOUTS))
              if tables.exists(table.at(settings))}
    now = dt.datetime.now(dt.timezone.utc)
    written = 0
    for scheme_id, scheme in load_schemes(settings.rules).items():
        scored = score_reference(silver, settings.rules / f"{scheme_id}.yaml", month,
                                 mask_working_days=settings.scoring["appeal_mask_working_days"])
        labels = {g.grade: g.label for g in scheme.grades}
        n = scored.num_rows
        rows = pa.table({
            "subject_key": scored["subject_key"],
            "scheme": pa.array([scheme_id] * n, pa.string()),
            "score_month": pa.array([month] * n, pa.string()),
            "score": pc.cast(scored["score"], pa.int32()),
            "grade": scored["grade"],
            "grade_label": pa.array([labels[g] for g in scored["grade"].to_pylist()], pa.string()),
            "published_at": pa.array([now] * n, catalog.TIMESTAMP),
            "run_id": pa.array([RUN_ID] * n, pa.string())})
        tables.write_arrow(rows, catalog.PUBLISHED_SCORES.at(settings), mode="overwrite",
                           replace={"scheme": scheme_id, "score_month": month})
        written += n
    return written
