"""Several files of one folder replaced together, so that a process killed half-way leaves them
all old or, on the next look, all new (issue 24 item 6: an erasure rewrites a delivery's data
files and lowers its manifest.json; a kill between the two left a count no re-landing could
meet).

The new versions are written into `<folder>/.replacing/` (a dot folder: a delivery ignores
it), then a journal naming them is put there in one rename — the commit — and the files are
renamed over the old ones, the journal last to go. Whoever looks at the folder next
(`finish_interrupted`: the next erasure, the next landing of the month) completes a committed
replacement and discards an uncommitted one, where the old files are still whole:

    killed before the journal  → old files everywhere; the staged copies are removed
    killed after the journal   → the remaining staged files are renamed over the old ones

Renames within one folder of one file system are atomic; the journal is flushed to disk before
the first rename.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..crash import crash_point

__all__ = ["STAGE", "Replacement", "finish_interrupted"]

STAGE = ".replacing"
_JOURNAL = "_journal.json"


class Replacement:
    """New versions of files of `folder`, staged with `path(name)` and committed together by
    `commit()`; leaving the `with` block without committing discards them."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.stage = self.folder / STAGE
        finish_interrupted(self.folder)
        self.names: list[str] = []

    def __enter__(self) -> "Replacement":
        return self

    def __exit__(self, *_exc) -> None:
        if self.stage.is_dir() and not (self.stage / _JOURNAL).is_file():
            shutil.rmtree(self.stage, ignore_errors=True)     # not committed: old files stand

    def path(self, name: str) -> Path:
        """Where to write the new version of `folder/name` (renamed over it in this order)."""
        if os.sep in name or name in ("", ".", "..", _JOURNAL):
            raise ValueError(f"not a file name of the folder: {name!r}")
        self.stage.mkdir(exist_ok=True)
        if name not in self.names:
            self.names.append(name)
        return self.stage / name

    def commit(self) -> None:
        """Replace every staged file at once (as far as anyone looking later can tell)."""
        if not self.names:
            return
        temporary = self.stage / f"{_JOURNAL}.tmp"
        with open(temporary, "w", encoding="utf-8") as journal:
            json.dump({"files": self.names}, journal)
            journal.flush()
            os.fsync(journal.fileno())
        crash_point("replace_together.staged")
        os.replace(temporary, self.stage / _JOURNAL)       # the commit
        _roll_forward(self.folder)


def finish_interrupted(folder: Path, *, undo: bool = True) -> str | None:
    """Complete a replacement of `folder` whose process was killed after its commit
    ('completed'), or discard one killed before it ('undone'; only with `undo`: a reader that
    may run beside a live replacer passes undo=False). None when there was none."""
    stage = Path(folder) / STAGE
    if not stage.is_dir():
        return None
    if (stage / _JOURNAL).is_file():
        _roll_forward(Path(folder))
        return "completed"
    if not undo:
        return None
    shutil.rmtree(stage, ignore_errors=True)
    return "undone"


def _roll_forward(folder: Path) -> None:
    """Rename the journal's staged files over the old ones (a file renamed already is skipped:
    safe to repeat, and to run beside another process doing the same), then drop the stage."""
    stage = folder / STAGE
    try:
        names = json.loads((stage / _JOURNAL).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return                                    # finished by another process meanwhile
    for done, name in enumerate(names, 1):
        try:
            os.replace(stage / name, folder / name)
        except FileNotFoundError:
            pass
        if done == 1 and len(names) > 1:
            crash_point("replace_together.half_renamed")
    try:
        (stage / _JOURNAL).unlink()
    except FileNotFoundError:
        pass
    shutil.rmtree(stage, ignore_errors=True)
