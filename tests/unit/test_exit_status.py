"""Every process ends with its own exit status (issue 22 item 3; citycredit/shutdown.py).

delta-rs' default pyarrow dataset reads through a Python file system; Arrow's threads releasing
its files during interpreter exit abort the process (134) or hang it. The seam and the notebooks'
reader use Arrow's own file system instead — checked here by making the Python one unusable —
and the `citycredit` command ends through `exit_now`, which keeps what a normal exit does."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs
import pytest
from deltalake import DeltaTable, write_deltalake

from citycredit import analysis, catalog
from citycredit.io import tables

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def no_python_filesystem(monkeypatch):
    """delta-rs' default file system (pyarrow.fs.PyFileSystem over DeltaStorageHandler) refused."""
    def refused(*_args, **_kwargs):
        raise AssertionError("a Python file system was handed to Arrow")
    monkeypatch.setattr(pyarrow.fs, "PyFileSystem", refused)


def checkpointed(path, months=("2026-09", "2026-10", "2026-11"), commits=4):
    """A partitioned table of a few commits with a checkpoint (what delta-spark leaves)."""
    for i in range(commits):
        write_deltalake(str(path), pa.table({"month": list(months), "n": [i] * len(months),
                                             "who": [f"k{i}{m}" for m in months]}),
                        mode="append", partition_by=["month"])
    DeltaTable(str(path)).create_checkpoint()
    assert any(p.name.endswith(".checkpoint.parquet") for p in (path / "_delta_log").iterdir())
    return path


def test_the_seam_reads_without_a_python_filesystem(tmp_path, no_python_filesystem):
    table = checkpointed(tmp_path / "t")
    with pytest.raises(AssertionError, match="Python file system"):   # the default would use it
        DeltaTable(str(table)).to_pyarrow_table()
    assert tables.read_arrow(table).num_rows == 12
    assert sorted(tables.read_arrow(table, where={"month": "2026-10"}, columns=["n"])
                  .column("n").to_pylist()) == [0, 1, 2, 3]
    assert tables.read_arrow(table, as_of_version=0).num_rows == 3
    batches = list(tables.scan_batches(table, ["who"], filter=pc.field("n") == 2))
    assert sorted(w for b in batches for w in b.column("who").to_pylist()) == \
        ["k22026-09", "k22026-10", "k22026-11"]


def test_partition_values_that_need_quoting_read_the_same(tmp_path, no_python_filesystem):
    values = ["a b", "公安:1", "x%y", "z=w"]
    write_deltalake(str(tmp_path / "q"), pa.table({"k": values, "v": [1, 2, 3, 4]}),
                    partition_by=["k"])
    assert sorted(tables.read_arrow(tmp_path / "q").to_pylist(), key=lambda r: r["v"]) == \
        [{"k": k, "v": v} for k, v in zip(values, [1, 2, 3, 4])]


def test_the_notebooks_reader_reads_without_a_python_filesystem(settings, no_python_filesystem):
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    rows = pa.Table.from_pylist([
        {"subject_key": k, "scheme": "haibei", "score_month": "2026-10", "score": 1000,
         "grade": "A", "grade_label": "良好", "base_score": Decimal("1000"),
         "points_positive": Decimal("0"), "points_negative": Decimal("0"), "dimension_points": [],
         "finding_count": 0, "rules_version": "1", "run_id": "r", "computed_at": now}
        for k in ("a", "b")], schema=catalog.SCORES.schema)
    tables.write_arrow(rows, catalog.SCORES.at(settings), mode="overwrite")
    DeltaTable(catalog.SCORES.at(settings).path).create_checkpoint()
    published = rows.select(["subject_key", "scheme", "score_month", "score", "grade",
                             "grade_label", "computed_at", "run_id"])      # run "r" published
    tables.write_arrow(published.rename_columns([*published.column_names[:6], "published_at",
                                                 "run_id"]),
                       catalog.PUBLISHED_SCORES.at(settings), mode="overwrite")
    assert sorted(analysis.read_table("gold.scores", settings=settings).subject_key) == ["a", "b"]


def test_exit_now_keeps_what_a_normal_exit_does_and_the_status(tmp_path):
    """Threads joined, atexit handlers run, buffered output flushed, the status given."""
    script = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from pathlib import Path
        from citycredit.shutdown import exit_now, status_of
        out = Path({str(tmp_path)!r})
        def late():
            time.sleep(0.3)
            (out / "thread").write_text("done")
        threading.Thread(target=late).start()
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        sys.stdout.write("no newline, still buffered")
        try:
            sys.exit("a message")
        except SystemExit as exc:
            status = status_of(exc)
        exit_now(status + 6)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PROJECT}, timeout=120)
    assert done.returncode == 7, done.stderr
    assert done.stdout == "no newline, still buffered" and done.stderr.strip() == "a message"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
