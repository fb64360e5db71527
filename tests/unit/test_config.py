"""Configuration: defaults, CITYCREDIT_* overrides, and errors that name the file and key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citycredit import catalog
from citycredit.config import ConfigError, load_settings

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture
def conf(tmp_path):
    """A copy of the shipped conf/ to break, beside a rules folder."""
    shutil.copytree(CONF, tmp_path / "conf")
    (tmp_path / "rules").mkdir()
    return tmp_path / "conf"


def test_local_defaults_put_data_under_the_working_directory(conf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(conf, environ={})
    assert s.landing == tmp_path / "landing" and s.warehouse == tmp_path / "warehouse"
    assert s.spark_master == "local[*]" and s.subject_key
    assert catalog.SCORES.at(s).path == str(tmp_path / "warehouse" / "gold" / "scores")
    assert set(s.sources) >= {"population", "court", "public_security", "traffic_police",
                              "market_regulation", "urban_management", "civilization_office",
                              "volunteer_federation", "blood_center", "charity_federation",
                              "commitments", "provincial_credit", "appeals", "optouts"}
    assert s.sources["public_security"]["encoding"] == "gb18030"
    assert s.sources["optouts"]["required"] is False and s.sources["court"]["required"] is True


def test_environment_overrides(conf, tmp_path):
    s = load_settings(conf, environ={
        "CITYCREDIT_LANDING": "/data/landing", "CITYCREDIT_WAREHOUSE": "/data/wh",
        "CITYCREDIT_SUBJECT_KEY": "prod-key", "CITYCREDIT_SPARK_MASTER": "spark://m:7077",
        "CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "64", "CITYCREDIT_RULES": str(tmp_path / "rules")})
    assert (s.landing, s.warehouse) == (Path("/data/landing"), Path("/data/wh"))
    assert (s.subject_key, s.spark_master, s.spark_shuffle_partitions) == \
        ("prod-key", "spark://m:7077", 64)


def test_unknown_variable_is_named(conf):
    with pytest.raises(ConfigError, match="CITYCREDIT_WAREHOUS is not a citycredit setting"):
        load_settings(conf, environ={"CITYCREDIT_WAREHOUS": "/x"})


def test_a_conf_variable_naming_no_folder_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"CITYCREDIT_CONF names .*nowhere, which is not a folder"):
        load_settings(environ={"CITYCREDIT_CONF": str(tmp_path / "nowhere")})


def test_the_jars_folder_variable_is_not_refused(conf, tmp_path):
    # io/spark.py reads CITYCREDIT_DELTA_JARS (docs/cluster.md): every command must still start
    s = load_settings(conf, environ={"CITYCREDIT_DELTA_JARS": str(tmp_path)})
    assert s.warehouse


@pytest.mark.parametrize("file,text,message", [
    ("local.yaml", "spark:\n  shuffle_partitons: 4\n", r"local.yaml: unknown key 'spark.shuffle_partitons'"),
    ("local.yaml", "spark:\n  shuffle_partitions: many\n", r"local.yaml: key 'spark.shuffle_partitions' must be int"),
    ("local.yaml", "spark:\n  driver_memory: lots\n", r"local.yaml: key 'spark.driver_memory' must look like"),
    ("local.yaml", "validation:\n  max_bad_share: 3\n", r"local.yaml: key 'validation.max_bad_share' must be between 0 and 1"),
    ("local.yaml", "subject_key: ''\n", r"no subject key: set CITYCREDIT_SUBJECT_KEY"),
    ("local.yaml", "paths: [1, 2]\n", r"local.yaml: key 'paths' must be a mapping"),
    ("local.yaml", "subject_key: k\npaths:\n  rules: nowhere\n", r"local.yaml: key 'paths.rules': no rules folder"),
    ("sources.yaml", "sources:\n  court:\n    kind: finding\n", r"sources.yaml: source 'court': key 'kind' must be one of"),
    ("sources.yaml", "sources:\n  court:\n    kind: findings\n    items: [ADMIN_PENALTY]\n    encoding: gbk2\n", r"source 'court': key 'encoding': unknown encoding 'gbk2'"),
    ("sources.yaml", "sources:\n  court:\n    kind: findings\n", r"source 'court': key 'items' must list"),
    ("sources.yaml", "sources:\n  court:\n    kind: findings\n    items: [X]\n    requried: false\n", r"source 'court': unknown key 'requried'"),
])
def test_bad_settings_fail_naming_file_and_key(conf, file, text, message):
    (conf / file).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, environ={})


def test_missing_file_is_named(conf):
    (conf / "local.yaml").unlink()
    with pytest.raises(ConfigError, match=r"local.yaml: configuration file not found"):
        load_settings(conf, environ={})


def test_bad_value_from_environment_names_the_variable(conf):
    with pytest.raises(ConfigError, match=r"environment variable CITYCREDIT_SPARK_SHUFFLE_PARTITIONS: "
                                          r"key 'spark.shuffle_partitions' must be int"):
        load_settings(conf, environ={"CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "lots"})


def test_a_negative_number_from_environment_is_refused_by_its_range_not_its_type(conf):
    """CITYCREDIT_LOOKUP_REFRESH_SECONDS=-5 is an integer: the message says what is wrong
    with it (was: "must be int, got '-5'")."""
    with pytest.raises(ConfigError) as refused:
        load_settings(conf, environ={"CITYCREDIT_LOOKUP_REFRESH_SECONDS": "-5"})
    assert str(refused.value) == ("environment variable CITYCREDIT_LOOKUP_REFRESH_SECONDS: key "
                                  "'lookup.refresh_seconds' must be at least 1, got -5")
    with pytest.raises(ConfigError, match="'spark.shuffle_partitions' must be at least 1"):
        load_settings(conf, environ={"CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "-2"})


def test_a_bad_driver_memory_from_environment_quotes_value_and_variable(conf):
    """CITYCREDIT_SPARK_DRIVER_MEMORY=lots: the message names the variable and quotes the value."""
    with pytest.raises(ConfigError) as refused:
        load_settings(conf, environ={"CITYCREDIT_SPARK_DRIVER_MEMORY": "lots"})
    assert str(refused.value) == ("environment variable CITYCREDIT_SPARK_DRIVER_MEMORY: key "
                                  "'spark.driver_memory' must look like 4g or 8192m, or be "
                                  "'auto', got 'lots'")


def test_spark_is_sized_from_the_machine_unless_set(conf):
    from citycredit.io.spark import Machine, driver_memory_for, local_cores, shuffle_partitions_for

    s = load_settings(conf, environ={})
    assert (s.spark_driver_memory, s.spark_shuffle_partitions) == ("auto", "auto")
    box = Machine(cores=2, memory=23 * 2**30)          # this project's machine
    assert driver_memory_for(local_cores("local[*]", box), box) == "4096m"
    assert shuffle_partitions_for(2) == 16
    laptop = Machine(cores=8, memory=16 * 2**30)       # memory binds before cores
    assert driver_memory_for(local_cores("local[*]", laptop), laptop) == "4096m"
    assert driver_memory_for(local_cores("local[1]", laptop), laptop) == "2048m"
    server = Machine(cores=16, memory=128 * 2**30)     # cores bind before memory
    assert driver_memory_for(local_cores("local[*]", server), server) == "32768m"
    small = Machine(cores=1, memory=2 * 2**30)
    assert driver_memory_for(local_cores("local", small), small) == "1024m"
    explicit = load_settings(conf, environ={"CITYCREDIT_SPARK_DRIVER_MEMORY": "3g",
                                            "CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "6"})
    assert (explicit.spark_driver_memory, explicit.spark_shuffle_partitions) == ("3g", 6)
    with pytest.raises(ConfigError, match=r"CITYCREDIT_SPARK_SHUFFLE_PARTITIONS: key "
                                          r"'spark.shuffle_partitions' must be int or 'auto'"):
        load_settings(conf, environ={"CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "automatic"})
