"""delta-spark and delta-rs on one table (ARCHITECTURE "delta-spark with delta-rs"): each engine
writes, appends, deletes and checkpoints, and the other reads every version, checkpoint included;
the protocol pinned at creation is reader 1 / writer 2; a table that gained a feature both do not
write is refused, not rewritten."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from citycredit.io import tables
from citycredit.io.spark import has_delta_spark

SCHEMA = "subject_key string, score int, scheme string, score_month string"
PARTS = ["scheme", "score_month"]


@pytest.fixture
def delta_spark(spark):
    if not has_delta_spark(spark):
        pytest.fail("the test session has no delta-spark: run `make jars` (spark.delta: auto)",
                    pytrace=False)
    return spark


def rows(prefix, n, month="2026-01", scheme="haibei", score=600):
    return [(f"{prefix}{i:03d}", score + i, scheme, month) for i in range(n)]


def arrow(prefix, n, month="2026-01", scheme="haibei", score=600):
    return pa.table({"subject_key": [f"{prefix}{i:03d}" for i in range(n)],
                     "score": pa.array([score + i for i in range(n)], pa.int32()),
                     "scheme": [scheme] * n, "score_month": [month] * n})


def engine_of(path: Path, version: int) -> str:
    """'spark' or 'delta-rs': who committed `version` (its commitInfo)."""
    for line in (path / "_delta_log" / f"{version:020d}.json").read_text().splitlines():
        info = json.loads(line).get("commitInfo")
        if info is not None:
            return "spark" if "Apache-Spark" in (info.get("engineInfo") or "") else "delta-rs"
    raise AssertionError(f"no commitInfo in version {version}")


def checkpoints(path: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (path / "_delta_log").glob("*.checkpoint.parquet"))


def from_checkpoint_only(path: Path, checkpoint: int, folder: Path) -> str:
    """A copy of the table whose log starts at `checkpoint` (the commits before it gone; Delta
    keeps the checkpoint's own commit file): a reader must use the checkpoint."""
    copy = folder / f"from-{checkpoint}"
    shutil.copytree(path, copy)
    for entry in (copy / "_delta_log").glob("*.json"):
        if entry.name[0].isdigit() and int(entry.name.split(".")[0]) < checkpoint:
            entry.unlink()
    return str(copy)


def keys_spark(spark, path, **kw) -> list[str]:
    return sorted(r.subject_key for r in tables.read(spark, path, **kw).select("subject_key").collect())


def keys_rs(path, **kw) -> list[str]:
    return sorted(tables.read_arrow(path, columns=["subject_key"], **kw)["subject_key"].to_pylist())


def test_a_table_delta_spark_created_is_shared_with_delta_rs(delta_spark, tmp_path):
    spark, path = delta_spark, tmp_path / "scores"
    # v0 delta-spark creates it: the pinned protocol, nothing delta-rs cannot write
    assert tables.write(spark.createDataFrame(rows("a", 5), SCHEMA), path, partition_by=PARTS) == 0
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]
    assert (detail.minReaderVersion, detail.minWriterVersion) == (1, 2)
    assert detail.properties["delta.enableDeletionVectors"] == "false"
    assert detail.properties["delta.checkpointPolicy"] == "classic"
    assert detail.properties["delta.columnMapping.mode"] == "none"
    assert not set(detail.tableFeatures or []) - {"appendOnly", "invariants"}
    DeltaTable(str(path)).alter.set_table_properties({"delta.checkpointInterval": "4"})   # v1
    # v2..v6 delta-rs appends and deletes (a checkpoint of its own at v6)
    for i in range(4):
        tables.write_arrow(arrow(f"r{i}", 3, month=f"2026-0{2 + i % 2}"), path, partition_by=PARTS)
    tables.delete_where(path, "subject_key = 'a001'")                                     # v6
    DeltaTable(str(path)).create_checkpoint()
    assert engine_of(path, 6) == "delta-rs" and 6 in checkpoints(path)
    want = sorted([f"a{i:03d}" for i in range(5) if i != 1] + [f"r{i}{j:03d}" for i in range(4) for j in range(3)])
    # delta-spark reads delta-rs' versions: from its checkpoint alone, and back in time
    assert keys_spark(spark, from_checkpoint_only(path, 6, tmp_path)) == want
    assert keys_spark(spark, path, as_of_version=2) == sorted([f"a{i:03d}" for i in range(5)] + ["r0000", "r0001", "r0002"])
    # v7 delta-spark replaces a partition delta-rs wrote, v8 appends: its checkpoint at v8
    assert tables.write(spark.createDataFrame(rows("s", 2, month="2026-02"), SCHEMA), path,
                        mode="overwrite", replace={"scheme": "haibei", "score_month": "2026-02"},
                        partition_by=PARTS) == 7
    assert tables.write(spark.createDataFrame(rows("t", 2, month="2026-04"), SCHEMA), path,
                        partition_by=PARTS) == 8
    assert engine_of(path, 8) == "spark" and 8 in checkpoints(path)
    want = sorted([k for k in want if not k.startswith(("r0", "r2"))] + ["s000", "s001", "t000", "t001"])
    # delta-rs reads delta-spark's checkpoint and its versions, appends and deletes on top
    assert keys_rs(from_checkpoint_only(path, 8, tmp_path)) == want
    assert keys_rs(path, as_of_version=7) == sorted(set(want) - {"t000", "t001"})
    tables.write_arrow(arrow("u", 2, month="2026-04"), path, partition_by=PARTS)          # v9
    tables.delete_where(path, "subject_key = 's000'")                                     # v10
    tables.write_arrow(arrow("v", 1, month="2026-05"), path, partition_by=PARTS)          # v11
    want = sorted(set(want) - {"s000"} | {"u000", "u001", "v000"})
    assert DeltaTable(str(path)).version() == 11
    assert keys_spark(spark, path) == keys_rs(path) == want
    assert DeltaTable(str(path)).protocol().min_writer_version == 2


def test_a_table_delta_rs_created_is_shared_with_delta_spark(delta_spark, tmp_path):
    spark, path = delta_spark, tmp_path / "bronze"
    tables.write_arrow(arrow("a", 4), path, partition_by=PARTS)                          # v0
    DeltaTable(str(path)).alter.set_table_properties({"delta.checkpointInterval": "3"})  # v1
    # v2, v3 delta-spark appends (its checkpoint at v3) and deletes (SQL DELETE: files rewritten)
    assert tables.write(spark.createDataFrame(rows("s", 2), SCHEMA), path, partition_by=PARTS) == 2
    spark.sql(f"DELETE FROM delta.`{path}` WHERE subject_key = 'a000'")                  # v3
    assert engine_of(path, 3) == "spark" and 3 in checkpoints(path)
    assert not list(path.rglob("*.bin")), "delta-spark wrote deletion vectors"
    want = ["a001", "a002", "a003", "s000", "s001"]
    assert keys_rs(from_checkpoint_only(path, 3, tmp_path)) == want
    assert keys_rs(path, as_of_version=2) == ["a000"] + want
    # v4..v6 delta-rs, a checkpoint of its own at v6
    for i in range(3):
        tables.write_arrow(arrow(f"r{i}", 1, month="2026-02"), path, partition_by=PARTS)
    DeltaTable(str(path)).create_checkpoint()
    assert engine_of(path, 6) == "delta-rs"
    want += ["r0000", "r1000", "r2000"]
    assert keys_spark(spark, from_checkpoint_only(path, 6, tmp_path)) == sorted(want)
    assert keys_spark(spark, path, as_of_version=0) == ["a000", "a001", "a002", "a003"]
    # and on, past ten commits, each engine in turn
    for i in range(2):
        tables.write(spark.createDataFrame(rows(f"x{i}", 1, month="2026-03"), SCHEMA), path,
                     partition_by=PARTS)
        tables.write_arrow(arrow(f"y{i}", 1, month="2026-03"), path, partition_by=PARTS)
    tables.delete_where(path, "subject_key = 'x0000'")                                   # v11
    want = sorted(want + ["x1000", "y0000", "y1000"])
    assert DeltaTable(str(path)).version() == 11
    assert keys_spark(spark, path) == keys_rs(path) == want


def test_a_table_with_a_feature_both_engines_do_not_write_is_refused(delta_spark, tmp_path):
    spark, path = delta_spark, tmp_path / "scores"
    tables.write(spark.createDataFrame(rows("a", 3), SCHEMA), path, partition_by=PARTS)
    # someone's Spark turned deletion vectors on (protocol reader 3 / writer 7)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
    before = DeltaTable(str(path)).version()
    with pytest.raises(tables.TableError, match=r"deletionVectors.*reader 1 / writer 2"):
        tables.write(spark.createDataFrame(rows("b", 1), SCHEMA), path, partition_by=PARTS)
    with pytest.raises(tables.TableError, match="deletionVectors"):
        tables.write_arrow(arrow("c", 1), path, partition_by=PARTS)
    with pytest.raises(tables.TableError, match="deletionVectors"):
        tables.delete_where(path, "subject_key = 'a000'")
    assert DeltaTable(str(path)).version() == before
    # never rewritten; Spark still reads it (delta-rs 1.6 refuses to read deletion vectors)
    assert keys_spark(spark, path) == ["a000", "a001", "a002"]
