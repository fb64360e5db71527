"""Ingest: find a delivery, read it, keep it in bronze, validate it (GX), quarantine bad rows,
stage the accepted rows for silver. Task functions in ingest.task."""
