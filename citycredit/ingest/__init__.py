"""Ingest: find a delivery, read it, keep it in bronze, validate it (GX), quarantine bad rows,
stage the accepted rows for silver. Task functions in ingest.task; a department's check of a
delivery before sending it: `citycredit.ingest.check_delivery(source_id, files, settings)`
(ingest.check)."""


def __getattr__(name):
    # check_delivery without importing pandas/pyarrow for every `import citycredit.ingest…`
    if name in ("check_delivery", "DeliveryVerdict"):
        from . import check

        return getattr(check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
