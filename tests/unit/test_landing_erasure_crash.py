"""An erasure of the landing zone killed at its worst moments (issue 24 item 6): a real process
ends at a marked crash point (citycredit/crash.py, as SIGKILL would: no finally), and the next
landing or erasure finds the delivery's files and its manifest.json agreeing — all erased or all
as delivered — with the person's rows nowhere once the erasure has run again."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citycredit.crash import CRASH_VARIABLE
from citycredit.identity import subject_key
from citycredit.ingest.delivery import find_delivery
from citycredit.ingest.read import read_delivery
from citycredit.privacy.landing import Targets, erase_from_landing
from test_privacy import HEADER, KEY, P, Q, SOURCES, delivery, row

PROJECT = Path(__file__).resolve().parents[2]
ERASE = """import sys
from pathlib import Path
from citycredit.config import load_sources
from citycredit.privacy.landing import Targets, erase_from_landing
erase_from_landing(Path(sys.argv[1]), load_sources(Path(sys.argv[2])),
                   Targets({sys.argv[3]: sys.argv[4]}), {"findings"})
"""


def two_files_and_a_manifest(tmp_path):
    """public_security 2026-01: a.csv and b.csv, each with one of P's rows and one of Q's."""
    files = {name: ("\n".join([HEADER, row(f"{name}-1", P), row(f"{name}-2", Q)]) + "\n")
             .encode("gb18030") for name in ("a.csv", "b.csv")}
    return delivery(tmp_path, "public_security", files, manifest=4).path


def killed_erasure(tmp_path, point):
    done = subprocess.run(
        [sys.executable, "-c", ERASE, str(tmp_path / "landing"),
         str(PROJECT / "conf" / "sources.yaml"), P, subject_key(P, KEY)],
        env={**os.environ, CRASH_VARIABLE: point, "PYTHONPATH": str(PROJECT)},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, done.stderr


def landed_rows(tmp_path):
    """What landing reads (its manifest check included: a mismatch raises DeliveryError)."""
    found = find_delivery(tmp_path / "landing", "public_security", "2026-01")
    return sorted(read_delivery(found, SOURCES["public_security"]).data["record_id"])


def holds_p(folder: Path) -> bool:
    return any(P.encode() in f.read_bytes() for f in folder.rglob("*") if f.is_file())


def test_killed_between_the_files_renames_the_next_landing_completes_it(tmp_path):
    folder = two_files_and_a_manifest(tmp_path)
    killed_erasure(tmp_path, "replace_together.half_renamed")
    # a.csv renamed, b.csv and the manifest not yet: as the kill left it, the count cannot meet
    assert P.encode() not in (folder / "a.csv").read_bytes()
    assert P.encode() in (folder / "b.csv").read_bytes()
    assert '"row_count": 4' in (folder / "manifest.json").read_text()
    # the next landing of the month completes the erasure before it reads
    assert landed_rows(tmp_path) == ["a.csv-2", "b.csv-2"]
    assert '"row_count": 2' in (folder / "manifest.json").read_text()
    assert not holds_p(folder) and not (folder / ".replacing").exists()
    # and the next erasure has nothing left to do
    assert erase_from_landing(tmp_path / "landing", SOURCES,
                              Targets({P: subject_key(P, KEY)}), {"findings"}) == []


def test_killed_before_the_commit_the_delivery_stands_and_the_next_erasure_redoes_it(tmp_path):
    folder = two_files_and_a_manifest(tmp_path)
    killed_erasure(tmp_path, "replace_together.staged")
    assert (folder / ".replacing").is_dir()               # staged copies, not committed
    assert landed_rows(tmp_path) == ["a.csv-1", "a.csv-2", "b.csv-1", "b.csv-2"]  # as delivered
    done = erase_from_landing(tmp_path / "landing", SOURCES,
                              Targets({P: subject_key(P, KEY)}), {"findings"})
    assert sorted((f.file, f.rows_removed, f.manifest) for f in done) == [
        ("a.csv", 1, (4, 2)), ("b.csv", 1, (4, 2))]
    assert landed_rows(tmp_path) == ["a.csv-2", "b.csv-2"]
    assert not holds_p(folder) and not (folder / ".replacing").exists()


@pytest.mark.parametrize("point", ["replace_together.staged", "replace_together.half_renamed"])
def test_a_killed_erasure_leaves_no_staged_copy_of_the_person_once_repaired(tmp_path, point):
    folder = two_files_and_a_manifest(tmp_path)
    killed_erasure(tmp_path, point)
    erase_from_landing(tmp_path / "landing", SOURCES, Targets({P: subject_key(P, KEY)}),
                       {"findings"})
    assert not holds_p(tmp_path / "landing")
    assert sorted(p.name for p in folder.iterdir()) == ["_READY", "a.csv", "b.csv",
                                                       "manifest.json"]
