"""Marked crash points (issue 24 item 6): the worst moments of erasure, re-delivery and history
purging, named, so that a test can kill a real process exactly there and show that the next run
repairs or refuses cleanly.

`crash_point("purge_history.retention_zero")` does nothing unless the environment variable
_CITYCREDIT_CRASH_AT names that point; then the process ends at once with os._exit(137), as if
killed (no finally blocks, no atexit, no flush). The variable does not start with CITYCREDIT_, so
the configuration does not take it for a setting."""
from __future__ import annotations

import os

__all__ = ["CRASH_VARIABLE", "crash_point"]

CRASH_VARIABLE = "_CITYCREDIT_CRASH_AT"


def crash_point(name: str) -> None:
    """End the process here, abruptly, when _CITYCREDIT_CRASH_AT is `name`."""
    if os.environ.get(CRASH_VARIABLE) == name:
        os._exit(137)
