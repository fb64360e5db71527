"""The Delta and Spark versions are pinned in one place (jars/pom.xml) and everything installed
agrees with it: Delta binaries break across Spark releases (delta-io/delta#6867), so a drift must
fail here, loudly, rather than as a NoSuchMethodError in the middle of a month's scoring."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib.metadata import version as installed
from pathlib import Path

import pyspark
import pytest

from citycredit.io.spark import DELTA_TABLE_PROPERTIES, delta_conf, delta_jars, spark_submit_args

PROJECT = Path(__file__).resolve().parents[2]
POM = PROJECT / "jars" / "pom.xml"


def pinned() -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ET.parse(POM).getroot().find("m:properties", ns)
    return {child.tag.split("}")[1]: child.text for child in properties}


def test_pyspark_and_the_delta_jars_are_pinned_to_one_spark_release():
    pins = pinned()
    setup = (PROJECT / "setup.py").read_text()
    assert f'"pyspark=={pins["spark.version"]}"' in setup, \
        f"setup.py's pyspark pin differs from jars/pom.xml's spark.version {pins['spark.version']}"
    assert f'"delta-spark=={pins["delta.version"]}"' in setup, \
        f"setup.py's delta-spark pin differs from jars/pom.xml's delta.version {pins['delta.version']}"
    assert pyspark.__version__ == pins["spark.version"], \
        f"pyspark {pyspark.__version__} is installed, the Delta jars are for Spark {pins['spark.version']}"
    assert pins["spark.version"].startswith(pins["spark.line"] + ".")
    assert installed("delta-spark") == pins["delta.version"]
    constraints = (PROJECT / "constraints.txt").read_text()
    assert re.search(rf"^delta[-_]spark=={re.escape(pins['delta.version'])}$", constraints, re.M)
    assert re.search(rf"^pyspark=={re.escape(pins['spark.version'])}$", constraints, re.M)


def test_the_installed_jars_are_the_pinned_ones():
    jars = delta_jars()
    if not jars:
        pytest.skip("the delta-spark jars are not installed (make jars)")
    pins = pinned()
    names = {j.name for j in jars}
    want = f"delta-spark_{pins['spark.line']}_{pins['scala.binary']}-{pins['delta.version']}.jar"
    assert want in names, f"jars/lib holds {sorted(names)}, not {want}: run `make jars`"
    assert f"delta-storage-{pins['delta.version']}.jar" in names
    stale = [n for n in names if n.startswith("delta-") and pins["delta.version"] not in n]
    assert not stale, f"jars of another Delta release in jars/lib: {stale} (make clean jars)"
    # what Spark itself carries is not duplicated (two Hadoop or Scala versions on one classpath)
    assert not [n for n in names if n.startswith(("hadoop-", "parquet-", "scala-library"))]


def test_spark_submit_gets_the_same_jars_and_settings_as_the_embedded_session(tmp_path):
    jar = tmp_path / "delta-spark_4.2_2.13-4.4.0.jar"
    jar.write_bytes(b"")
    args = spark_submit_args([jar])
    assert args[:2] == ["--jars", str(jar)]
    conf = dict(a.split("=", 1) for a in args[3::2])
    assert conf == {k: v for k, v in delta_conf([jar]).items() if k != "spark.jars"}
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.databricks.delta.properties.defaults.minWriterVersion"] == "2"
    assert DELTA_TABLE_PROPERTIES["delta.enableDeletionVectors"] == "false"


def test_spark_delta_setting_chooses_the_engine_and_on_requires_the_jars(settings, monkeypatch,
                                                                        tmp_path):
    from dataclasses import replace

    from citycredit.config import ConfigError, load_settings
    from citycredit.io.spark import DeltaJarsMissingError, wants_delta

    assert settings.spark_delta == "auto"
    monkeypatch.setenv("CITYCREDIT_DELTA_JARS", str(tmp_path))        # a site without the jars
    assert wants_delta(settings) == []                                # auto: the bridge
    with pytest.raises(DeltaJarsMissingError, match="make jars.*spark.delta: off"):
        wants_delta(replace(settings, spark_delta="on"))
    (tmp_path / "delta-spark_4.2_2.13-4.4.0.jar").write_bytes(b"")
    assert [j.name for j in wants_delta(settings)] == ["delta-spark_4.2_2.13-4.4.0.jar"]
    assert wants_delta(replace(settings, spark_delta="off")) == []
    with pytest.raises(ConfigError, match="spark.delta"):
        load_settings(PROJECT / "conf", env="local", environ={"CITYCREDIT_SPARK_DELTA": "yes"})
