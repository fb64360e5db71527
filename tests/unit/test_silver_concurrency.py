"""Silver's monthly merge commits against the version it read (issue 24 item 3): an erasure's
delete committed between the merge's read and its commit refuses the merge (the erased rows do
not come back), a commit elsewhere does not. Real Delta tables (delta-rs), no Spark; the
interleaved commit is made by the real erasure delete, between merge_month's reads and its
commit."""
from __future__ import annotations

import pyarrow as pa
import pytest

from citycredit import catalog
from citycredit.io import tables
from citycredit.silver.versions import merge_month
from test_silver_versions import delivery, finding, in_table


def interleave(monkeypatch, concurrent):
    """Run `concurrent()` once, just before merge_month's commit (after every read)."""
    commit = tables.replace_files
    pending = [concurrent]

    def commit_after_another(*args, **kwargs):
        while pending:
            pending.pop()()
        return commit(*args, **kwargs)
    monkeypatch.setattr(tables, "replace_files", commit_after_another)


def january(location, *sources):
    merge_month(location, delivery([finding(s, f"{s}-{i}", "2026-01") for s in sources
                                    for i in (1, 2)]), "2026-01",
                [{"source_id": s} for s in sources])


def test_a_delete_between_the_merges_read_and_commit_refuses_the_merge(tmp_path, monkeypatch):
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    january(location, "a")                               # one file: a-1, a-2
    read = tables.version(location)
    # February corrects a-1: the merge rewrites January's file (a-1's known_until); meanwhile
    # an erasure deletes a-2's person from that same file
    interleave(monkeypatch, lambda: tables.delete_where(location, "subject_key = 'k-a-2'"))
    with pytest.raises(tables.ConcurrentWriteError) as refused:
        merge_month(location, delivery([finding("a", "a-1", "2026-02", quantity="5")]),
                    "2026-02", [{"source_id": "a"}])
    message = str(refused.value)
    assert f"version {read + 1} (DELETE)" in message and "removed a file this write replaces" \
        in message and "k-a-2" not in message
    assert tables.version(location) == read + 1           # the delete stands, nothing else
    assert in_table(location) == [("a", "a-1", "2026-01", None, "active", 1)]
    # the rerun reads the table again: February merged, the erased row still gone
    merge_month(location, delivery([finding("a", "a-1", "2026-02", quantity="5")]),
                "2026-02", [{"source_id": "a"}])
    assert in_table(location) == [("a", "a-1", "2026-01", "2026-02", "active", 1),
                                  ("a", "a-1", "2026-02", None, "active", 5)]


def test_a_delete_in_files_the_merge_does_not_replace_is_kept(tmp_path, monkeypatch):
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    january(location, "a", "b")                           # a file per source
    interleave(monkeypatch, lambda: tables.delete_where(location, "subject_key = 'k-b-2'"))
    merge_month(location, delivery([finding("a", "a-1", "2026-02", quantity="5")]),
                "2026-02", [{"source_id": "a"}])
    assert in_table(location) == [("a", "a-1", "2026-01", "2026-02", "active", 1),
                                  ("a", "a-1", "2026-02", None, "active", 5),
                                  ("a", "a-2", "2026-01", None, "active", 1),
                                  ("b", "b-1", "2026-01", None, "active", 1)]


def rows_of(month, source, records):
    data = delivery([finding(source, r, month) for r in records])
    return data.append_column("known_until", pa.nulls(data.num_rows, pa.string())).select(
        catalog.SILVER_FINDINGS.columns)


def test_a_partition_changed_since_the_read_refuses_its_replace(tmp_path):
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    february = {"source_id": "a", "known_from": "2026-02"}
    tables.replace_files(rows_of("2026-02", "a", ["1"]), location, partitions=[february])
    read = tables.snapshot(location).version
    # another writer adds a file to the partition, and one to another partition
    tables.write_arrow(rows_of("2026-02", "a", ["2"]), location, mode="append")
    tables.write_arrow(rows_of("2026-03", "a", ["3"]), location, mode="append")
    with pytest.raises(tables.ConcurrentWriteError,
                       match=rf"version {read + 1} \(WRITE\).*added a file in a partition this "
                             r"write replaces \({'source_id': 'a', 'known_from': '2026-02'}\)"):
        tables.replace_files(rows_of("2026-02", "a", ["9"]), location, partitions=[february],
                             read_version=read)
    assert sorted(r[1] for r in in_table(location)) == ["1", "2", "3"]
    # read again after them: the replace goes through, the other partition untouched
    again = tables.snapshot(location).version
    tables.write_arrow(rows_of("2026-03", "a", ["4"]), location, mode="append")
    tables.replace_files(rows_of("2026-02", "a", ["9"]), location, partitions=[february],
                         read_version=again)
    assert sorted(r[1] for r in in_table(location)) == ["3", "4", "9"]


def test_a_history_purged_since_the_read_refuses_the_replace(tmp_path):
    """An erasure deletes, vacuums and purges the log: the commits since the read cannot be
    inspected any more, so the replace is refused rather than trusted."""
    location = catalog.SILVER_FINDINGS.at(tmp_path)
    tables.replace_files(rows_of("2026-01", "a", ["1", "2"]), location,
                         partitions=[{"source_id": "a", "known_from": "2026-01"}])
    read = tables.snapshot(location)
    tables.delete_where(location, "subject_key = 'k-2'")
    tables.vacuum(location, retention_hours=0)
    tables.purge_history(location)
    with pytest.raises(tables.ConcurrentWriteError, match="gone \\(history purged"):
        tables.replace_files(rows_of("2026-01", "a", ["1", "2"]), location,
                             files=read.files, read_version=read.version)
    assert [r[1] for r in in_table(location)] == ["1"]
