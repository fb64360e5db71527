"""The month's landing step (pipeline.STEPS "land_source"), above ingest and privacy: ingest lands
a source's delivery (citycredit.ingest.task.land_source) and, when the delivery held rows of
persons erased earlier (a late delivery, a re-delivery: SPEC §7), privacy rewrites its files
without them and logs it (citycredit.privacy.erasure.erase_late_delivery).

Ingest never imports privacy; what both need lies below them (the suppression
list: citycredit.suppression; spools and their leftovers: citycredit.io.spool). Privacy reads
delivery files with ingest's reader (ingest.delivery, ingest.read) — the one edge between them,
downward (tests/unit/test_layers.py keeps it so).
"""
from __future__ import annotations

from .config import Settings, load_settings
from .ingest.read import CHUNK_ROWS
from .ingest.task import Landed, land_source as land_delivery
from .privacy.erasure import erase_late_delivery

__all__ = ["land_source"]


def land_source(source_id: str, month: str, run_id: str, settings: Settings | None = None, *,
                chunk_rows: int = CHUNK_ROWS) -> Landed:
    """Land `source_id`'s delivery of `month` (ingest.task.land_source: Landed counts, the
    same refusals) with a late delivery's files rewritten without the erased persons' rows —
    whatever the verdict: a rejected delivery loses them too."""
    settings = settings or load_settings()

    def rewrite(delivery, numbers: dict[str, str], appealed: set) -> None:
        erase_late_delivery(settings, delivery, numbers, month, run_id, appealed)
    return land_delivery(source_id, month, run_id, settings, chunk_rows=chunk_rows,
                         late_delivery=rewrite)
