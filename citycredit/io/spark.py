"""The SparkSession: embedded `local[*]` by default, any cluster via CITYCREDIT_SPARK_MASTER."""
from __future__ import annotations

import os
import shutil

from pyspark.sql import SparkSession

from ..config import Settings

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"


class JavaMissingError(RuntimeError):
    pass


def require_java() -> None:
    """Spark needs a JVM; say so plainly instead of py4j's 'Java gateway process exited'."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise JavaMissingError(
        "Java 17 is required by Spark and was not found (no JAVA_HOME, no `java` on PATH). "
        "Install it, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu) or "
        "`brew install openjdk@17` (macOS), then run the command again.")


def get_spark(settings: Settings, app_name: str = "citycredit") -> SparkSession:
    """Build (or return the running) session with the settings ARCHITECTURE measured as needed."""
    require_java()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        # Delta wants timestamps as TIMESTAMP_MICROS (INT96 reaches Delta timezone-less)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.session.timeZone", "UTC")
        # partition values such as score_month=2026-01 stay strings; the table schema types them
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.sql.adaptive.enabled", "true")
    )
    for key, value in settings.spark_conf.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def has_delta_spark(spark: SparkSession) -> bool:
    """True on a cluster whose Spark carries delta-spark: the seam then uses format('delta')."""
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")
