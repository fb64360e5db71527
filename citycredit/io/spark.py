"""The SparkSession: embedded `local[*]` by default, any cluster via CITYCREDIT_SPARK_MASTER.

Sized from the machine unless set (`spark.driver_memory` / `spark.shuffle_partitions: auto` in
conf, the default): the driver's heap is 2 GiB per core Spark runs on, at most a quarter of the
memory this process may use (cgroup limits count), at least 1 GiB; shuffles get 8 partitions per
core Spark has (adaptive execution coalesces small ones). On this project's 2-core, 23 GiB machine
that is 4g and 16: a local JVM's resident size follows its heap more than the data (measured
here, scoring a 20 k-adult month: 2.3–4.7 GB with a 4–8 GiB heap, 10 GB at 2× its findings with
8 GiB), the whole run — JVM plus the Python steps' Arrow data — is to stay within 6 GiB, and a
full-scale shuffle needs partitions more than heap (spills are exact). A value in conf or a CITYCREDIT_SPARK_* variable wins.

Delta tables are read and written by delta-spark (conf `spark.delta`: auto — the default — when
`make install` fetched its jars into jars/lib/, `on` to require them, `off` for the old Parquet +
delta-rs bridge of citycredit.io.bridge). Its jars, extension, catalog and the table properties
every table Spark creates gets are set here and nowhere else (`delta_conf`, `spark_submit_args`).
"""
from __future__ import annotations

import logging
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil
from pyspark.sql import SparkSession

from ..config import AUTO, Settings

log = logging.getLogger(__name__)
GIB = 2**30
HEAP_PER_CORE = 2 * GIB
HEAP_SHARE_OF_MEMORY = 0.25
PARTITIONS_PER_CORE = 8

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
#: where `make jars` puts the jars jars/pom.xml pins; CITYCREDIT_DELTA_JARS names another folder
PROJECT_JARS = Path(__file__).resolve().parents[2] / "jars" / "lib"
#: the protocol delta-rs shares (reader 1 / writer 2; ARCHITECTURE "delta-spark with delta-rs"):
#: table properties every Delta table a session creates gets (Delta's session defaults)
DELTA_TABLE_PROPERTIES = {
    "delta.minReaderVersion": "1",
    "delta.minWriterVersion": "2",
    "delta.enableDeletionVectors": "false",
    "delta.columnMapping.mode": "none",
    "delta.checkpointPolicy": "classic",
    "delta.enableRowTracking": "false",
    "delta.enableInCommitTimestamps": "false",
    "delta.enableTypeWidening": "false",
    "delta.enableChangeDataFeed": "false",
}
DELTA_SETTINGS = ("auto", "on", "off")


class JavaMissingError(RuntimeError):
    pass


class DeltaJarsMissingError(RuntimeError):
    """spark.delta is 'on' and the session has no delta-spark."""


#: Delta's setting of how many tasks rebuild a table's state from its log
SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"


def delta_jars() -> list[Path]:
    """The delta-spark jars installed for this project (jars/lib/, or the folder named by
    CITYCREDIT_DELTA_JARS); empty when `make jars` has not run."""
    folder = Path(os.environ.get("CITYCREDIT_DELTA_JARS") or PROJECT_JARS)
    jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    return jars if any(j.name.startswith("delta-spark_") for j in jars) else []


def delta_conf(jars: list[Path]) -> dict[str, str]:
    """The Spark settings of a session with delta-spark: the jars, its extension and catalog,
    and the protocol pinned for every table it creates."""
    conf = {"spark.jars": ",".join(str(j) for j in jars),
            "spark.sql.extensions": DELTA_EXTENSION,
            "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
            # no <version>.crc beside each commit: it can list the version's files with their
            # statistics, which an erasure's history purge must not leave behind
            "spark.databricks.delta.writeChecksumFile.enabled": "false"}
    conf.update({f"spark.databricks.delta.properties.defaults.{key[len('delta.'):]}": value
                 for key, value in DELTA_TABLE_PROPERTIES.items()})
    return conf


def spark_submit_args(jars: list[Path] | None = None) -> list[str]:
    """`spark-submit` arguments giving a job (jobs/*.py) the same delta-spark as the embedded
    session: --jars and the --conf settings of `delta_conf`."""
    jars = delta_jars() if jars is None else jars
    if not jars:
        raise DeltaJarsMissingError(_NO_JARS)
    conf = delta_conf(jars)
    args = ["--jars", conf.pop("spark.jars")]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args


_NO_JARS = ("spark.delta is 'on' but the delta-spark jars are not installed: run `make jars` "
            "(fetches jars/pom.xml's jars from Maven Central into jars/lib/), or name their folder "
            "in CITYCREDIT_DELTA_JARS, or set spark.delta: off (docs/cluster.md)")


def wants_delta(settings: Settings) -> list[Path]:
    """The jars to put on a session this process builds: none for spark.delta 'off' or 'auto'
    without installed jars; 'on' without them is an error."""
    mode = getattr(settings, "spark_delta", "auto")
    if mode == "off":
        return []
    jars = delta_jars()
    if mode == "on" and not jars:
        raise DeltaJarsMissingError(_NO_JARS)
    return jars


def require_java() -> None:
    """Spark needs a JVM; say so plainly instead of py4j's 'Java gateway process exited'."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise JavaMissingError(
        "Java 17 is required by Spark and was not found (no JAVA_HOME, no `java` on PATH). "
        "Install it, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu) or "
        "`brew install openjdk@17` (macOS), then run the command again.")


@dataclass(frozen=True)
class Machine:
    cores: int      # CPUs this process may run on (affinity and cgroup quota count)
    memory: int     # bytes this process may use (physical memory, or a lower cgroup limit)


def this_machine() -> Machine:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (psutil.cpu_count() or 1)
    quota = _read_first(["/sys/fs/cgroup/cpu.max"])               # cgroup v2: "200000 100000"
    if quota and quota.split()[0] != "max":
        limit, period = (int(x) for x in quota.split()[:2])
        cores = min(cores, max(1, math.ceil(limit / period)))
    memory = psutil.virtual_memory().total
    for limit in (_read_first(["/sys/fs/cgroup/memory.max"]),
                  _read_first(["/sys/fs/cgroup/memory/memory.limit_in_bytes"])):
        if limit and limit.isdigit():
            memory = min(memory, int(limit))
    return Machine(cores=max(1, cores), memory=memory)


def _read_first(paths: list[str]) -> str | None:
    for path in paths:
        try:
            return Path(path).read_text().strip()
        except OSError:
            continue
    return None


def local_cores(master: str, machine: Machine) -> int:
    """Cores a local master runs on: local → 1, local[4] → 4, local[*] → the machine's; a
    cluster master → the machine's (the driver runs here)."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if not found:
        return machine.cores
    if found.group(1) is None:
        return 1
    return machine.cores if found.group(1) == "*" else int(found.group(1))


def driver_memory_for(cores: int, machine: Machine) -> str:
    """Heap for a driver running `cores` local cores on `machine`, as a JVM size ('8192m')."""
    heap = min(HEAP_PER_CORE * cores, HEAP_SHARE_OF_MEMORY * machine.memory)
    return f"{max(2, int(heap // (512 * 2**20))) * 512}m"


def shuffle_partitions_for(parallelism: int) -> int:
    return PARTITIONS_PER_CORE * max(1, parallelism)


def get_spark(settings: Settings, app_name: str = "citycredit") -> SparkSession:
    """Build (or return the running) session with the settings ARCHITECTURE measured as needed,
    sized from the machine where conf says `auto`."""
    require_java()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    machine = this_machine()
    memory = settings.spark_driver_memory
    if memory == AUTO:
        memory = driver_memory_for(local_cores(settings.spark_master, machine), machine)
    builder = SparkSession.builder.appName(app_name)
    if not launched_by_spark_submit():
        # under spark-submit its --master and --driver-memory rule (the driver JVM is running),
        # and its --jars / --conf carry delta-spark (spark_submit_args)
        builder = builder.master(settings.spark_master).config("spark.driver.memory", memory)
        jars = wants_delta(settings)
        for key, value in (delta_conf(jars).items() if jars else ()):
            builder = builder.config(key, value)
    builder = (
        builder
        # Delta wants timestamps as TIMESTAMP_MICROS (INT96 reaches Delta timezone-less)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.session.timeZone", "UTC")
        # partition values such as score_month=2026-01 stay strings; the table schema types them
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.sql.adaptive.enabled", "true")
        # a write of one partition (a scheme's run partition of gold) is not sorted by its
        # constant partition columns first: a task keeps a writer open per partition value
        # instead (up to 4, then it sorts). The sort was 30 % of writing gold's explanation
        # lines (docs/performance.md, 2026-12-06 third sitting)
        .config("spark.sql.optimizer.plannedWrite.enabled", "false")
        .config("spark.sql.maxConcurrentOutputFileWriters", "4")
    )
    if settings.spark_shuffle_partitions != AUTO:
        builder = builder.config("spark.sql.shuffle.partitions",
                                 str(settings.spark_shuffle_partitions))
    for key, value in settings.spark_conf.items():     # any spark.* setting of conf wins
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if getattr(settings, "spark_delta", "auto") == "on" and not has_delta_spark(spark):
        raise DeltaJarsMissingError("spark.delta is 'on' but this Spark session has no delta-spark "
                                    "(spark-submit it with citycredit.io.spark.spark_submit_args)")
    if has_delta_spark(spark):
        # runtime settings: also under spark-submit, whose --conf may not carry them
        for key, value in delta_conf([]).items():
            if key.startswith("spark.databricks.delta."):
                spark.conf.set(key, value)
        if SNAPSHOT_PARTITIONS not in settings.spark_conf:
            # a table's state (its log: a few hundred file actions here) is rebuilt in this many
            # tasks before every write and the first read; Delta's default of 50 tasks made
            # that ~3 s a write on 2 cores (docs/performance.md, 2026-12-06 fourth sitting)
            spark.conf.set(SNAPSHOT_PARTITIONS,
                           str(max(2, spark.sparkContext.defaultParallelism)))
    if settings.spark_shuffle_partitions == AUTO and \
            "spark.sql.shuffle.partitions" not in settings.spark_conf:
        # a runtime setting: known only now on a cluster (the executors' cores)
        spark.conf.set("spark.sql.shuffle.partitions",
                       str(shuffle_partitions_for(spark.sparkContext.defaultParallelism)))
    log.info("Spark %s: driver memory %s, shuffle partitions %s, Delta by %s (machine: %d cores, "
             "%.1f GiB)", settings.spark_master, spark.conf.get("spark.driver.memory", memory),
             spark.conf.get("spark.sql.shuffle.partitions"),
             "delta-spark" if has_delta_spark(spark) else "the Parquet + delta-rs bridge",
             machine.cores, machine.memory / GIB)
    return spark


def on_a_cluster(settings: Settings) -> bool:
    """True when conf names a cluster master (`spark.master` other than local[…]): the steps
    then send their Spark work there, erasure's deletes on the Spark-written tables included."""
    return not str(settings.spark_master).startswith("local")


def launched_by_spark_submit() -> bool:
    """True in a Python driver started by spark-submit (its JVM hands pyspark a gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def has_delta_spark(spark: SparkSession) -> bool:
    """True when the session carries delta-spark: the seam then uses format('delta')."""
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")


def spark_running() -> bool:
    """True when this process already has a SparkContext (a caller's session, e.g. a notebook's
    or a test's, which a run must leave running)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def stop_spark() -> None:
    """Stop this process's Spark session and end its JVM (the embedded driver): `stop()` alone
    leaves the JVM resident with its heap (4 GiB at full scale), beside the steps after scoring
    that need no Spark (erasure's Arrow rewrites). A later get_spark starts a new JVM. Nothing to
    do under spark-submit (its JVM owns this process) or when no session runs."""
    from pyspark import SparkContext

    if launched_by_spark_submit():
        return
    session = SparkSession._instantiatedSession
    if session is not None:
        session.stop()              # also forgets it: the next getOrCreate builds a new one
    elif SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if gateway is None or process is None:
        return
    gateway.shutdown()
    process.stdin.close()           # the JVM pyspark launched exits at the end of its stdin
    try:
        process.wait(timeout=60)
    except Exception:               # noqa: BLE001 — a JVM that does not leave is killed
        process.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None
