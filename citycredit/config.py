"""Settings: conf/base.yaml, then conf/<env>.yaml laid over it, then CITYCREDIT_* variables.

Every value remembers which file (or variable) it came from, so a bad or missing setting fails at
start with a message naming that file and key rather than deep inside a Spark job, and
`citycredit config` shows each resolved setting with its origin (`describe`).

The conf folder may live anywhere (CITYCREDIT_CONF, e.g. /etc/citycredit, so that keys never sit
in a git checkout). Paths in it resolve the same wherever it is: data (`paths.landing`,
`paths.warehouse`, `policy.reports`) against the working directory, what ships with the code
(`paths.rules`, `paths.expectations`) against the project (PROJECT_ROOT); an absolute path is
taken as it is (docs/configuration.md).
"""
from __future__ import annotations

import codecs
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SOURCE_KINDS = ("findings", "population", "appeals", "optouts", "consents")

# CITYCREDIT_* variable → dotted setting it overrides (SPEC §6). One list, so a typo is caught.
ENV_OVERRIDES = {
    "CITYCREDIT_LANDING": "paths.landing",
    "CITYCREDIT_WAREHOUSE": "paths.warehouse",
    "CITYCREDIT_RULES": "paths.rules",
    "CITYCREDIT_EXPECTATIONS": "paths.expectations",
    "CITYCREDIT_SUBJECT_KEY": "subject_key",
    "CITYCREDIT_AUDIT_KEY": "lookup.audit_key",
    "CITYCREDIT_SPARK_MASTER": "spark.master",
    "CITYCREDIT_SPARK_DRIVER_MEMORY": "spark.driver_memory",
    "CITYCREDIT_SPARK_SHUFFLE_PARTITIONS": "spark.shuffle_partitions",
    "CITYCREDIT_SPARK_DELTA": "spark.delta",
    "CITYCREDIT_SPARK_SUBMIT_CONN_ID": "spark.submit.conn_id",
    "CITYCREDIT_LOOKUP_INDEX_URL": "lookup.index_url",
    "CITYCREDIT_LOOKUP_AUDIT_URL": "lookup.audit_url",
    "CITYCREDIT_LOOKUP_REFRESH_SECONDS": "lookup.refresh_seconds",
    "CITYCREDIT_REPORTS": "policy.reports",
}
# Variables that choose *which* configuration is read rather than a value in it.
ENV_SELECTORS = ("CITYCREDIT_ENV", "CITYCREDIT_CONF")
#: where this installation keeps a part (not a setting: citycredit.io.spark reads it)
ENV_INSTALL = ("CITYCREDIT_DELTA_JARS",)

#: a Spark size left to the machine (citycredit.io.spark.size_from_machine)
AUTO = "auto"

#: The only environment in which the public development keys of conf/local.yaml may be used.
#: Identity numbers are few enough to enumerate, so a pseudonym made with a known key is no
#: pseudonym (issue 24 item 5): any other CITYCREDIT_ENV must bring its own keys.
DEVELOPMENT_ENV = "local"
#: the shortest subject or audit key accepted outside the development environment (a
#: token_urlsafe(32) has 43 characters, 256 bits)
MIN_KEY_CHARS = 32
#: the public development keys (conf/local.yaml); refused outside DEVELOPMENT_ENV
DEVELOPMENT_KEYS = {"subject_key": "citycredit-development-key-not-for-production",
                    "lookup.audit_key": "citycredit-development-audit-key-not-for-production"}


class _IntOrAuto:
    """Schema marker: a whole number, or 'auto'."""


# The shape of base.yaml: every key a conf file may set, and how to check it.
_SCHEMA: dict[str, Any] = {
    "paths": {"landing": str, "warehouse": str, "rules": str, "expectations": str},
    "subject_key": (str, type(None)),
    "spark": {"master": str, "driver_memory": str, "shuffle_partitions": _IntOrAuto,
              "delta": str, "conf": dict, "submit": {"conn_id": (str, type(None))}},
    "validation": {"max_bad_share": float, "min_bad_rows": int, "min_volume_ratio": float,
                   "min_volume_rows": int, "forbidden_columns": list},
    "scoring": {"appeal_mask_working_days": int},
    "publish": {"max_grade_share_change": float},
    "lookup": {"index_url": (str, type(None)), "audit_url": (str, type(None)),
               "audit_key": (str, type(None)), "refresh_seconds": int, "timezone": str},
    "policy": {"outcome_items": list, "outcome_months": int, "fairness_min_ratio": float,
               "incentive_grades": dict, "explanation_sample": int, "reports": str},
    "landing": {"retention_months": int},
    "cleanup": {"retention_days": int, "staging_min_age_hours": float},
}
_SOURCE_KEYS = {"kind", "title", "format", "items", "encoding", "date_format", "required",
                "min_volume_ratio"}
SOURCE_FORMATS = ("csv", "jsonl", "parquet")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the file (or variable) and the key."""


@dataclass(frozen=True)
class Settings:
    env: str
    conf_dir: Path
    landing: Path
    warehouse: Path
    rules: Path
    expectations: Path
    subject_key: str
    spark_master: str
    spark_driver_memory: str               # '4g', '8192m', or 'auto' (sized from the machine)
    spark_shuffle_partitions: int | str    # a number, or 'auto' (sized from the cores)
    spark_conf: dict
    validation: dict
    scoring: dict
    publish: dict
    sources: dict = field(default_factory=dict)
    lookup: dict = field(default_factory=dict)
    policy: dict = field(default_factory=dict)     # policy.reports is a resolved Path
    landing_retention_months: int = 12     # `citycredit cleanup` deletes older deliveries
    cleanup: dict = field(default_factory=lambda: {"retention_days": 7,
                                                   "staging_min_age_hours": 1.0})
    spark_delta: str = AUTO                # delta-spark on the session: auto | on | off
    #: the Airflow connection (a Spark cluster) the DAG's score step spark-submits jobs/score.py
    #: to; None: the step scores in its own task process (citycredit.cluster)
    spark_submit_conn_id: str | None = None
    #: where each setting came from: dotted key → a conf file's path, "environment variable X"
    #: or "default"; also "conf" (the folder) and "env" (the overlay's name)
    origins: dict = field(default_factory=dict)
    #: load_settings(keys_required=False) only: why a run would not start for its keys (else None)
    key_problem: str | None = None


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _overlay(values: dict, origins: dict, data: Mapping, schema: Mapping, origin: str, prefix=""):
    """Lay `data` over `values`, checking keys against `schema` and recording each key's origin."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"{origin}: unknown key '{dotted}' (known: {', '.join(schema)})")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: key '{dotted}' must be a mapping")
            _overlay(values.setdefault(key, {}), origins, value, expected, origin, dotted + ".")
        else:
            values[key] = value
            origins[dotted] = origin


def _get(values: dict, dotted: str):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def _set(values: dict, dotted: str, value):
    *parents, last = dotted.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _integer_text(value) -> bool:
    """A string an environment variable gives for an integer setting ('8', '-5')."""
    return isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value) is not None


def _check_types(values: dict, origins: dict, schema: Mapping, prefix=""):
    for key, expected in schema.items():
        dotted = f"{prefix}{key}"
        if key not in values:
            raise ConfigError(f"conf/base.yaml: missing key '{dotted}'")
        value = values[key]
        if isinstance(expected, dict):
            _check_types(value, origins, expected, dotted + ".")
            continue
        where = origins.get(dotted, "conf")
        if expected is _IntOrAuto:
            if _integer_text(value):
                values[key] = int(value)   # from an environment variable
            elif not (value == AUTO or isinstance(value, int) and not isinstance(value, bool)):
                raise ConfigError(f"{where}: key '{dotted}' must be int or '{AUTO}', got {value!r}")
            continue
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = value = float(value)
        if expected is int and _integer_text(value):
            # from an environment variable; a negative one is then refused by its range check
            values[key] = value = int(value)
        if not isinstance(value, expected) or isinstance(value, bool) and expected in (int, float):
            want = expected.__name__ if isinstance(expected, type) else "string or empty"
            raise ConfigError(f"{where}: key '{dotted}' must be {want}, got {value!r}")


def _check_values(values: dict, origins: dict, env: str = DEVELOPMENT_ENV,
                  keys_required: bool = True) -> str | None:
    def fail(dotted, message):      # the value quoted: no secret is checked here
        raise ConfigError(f"{origins.get(dotted, 'conf')}: key '{dotted}' {message}, got "
                          f"{_get(values, dotted)!r}")

    memory = values["spark"]["driver_memory"]
    if memory != AUTO and not re.fullmatch(r"\d+[kmgt]?", memory, re.I):
        fail("spark.driver_memory", f"must look like 4g or 8192m, or be '{AUTO}'")
    if values["spark"]["shuffle_partitions"] != AUTO and values["spark"]["shuffle_partitions"] < 1:
        fail("spark.shuffle_partitions", "must be at least 1")
    if values["spark"]["delta"] not in (AUTO, "on", "off"):
        fail("spark.delta", f"must be '{AUTO}', 'on' or 'off'")
    for dotted in ("validation.max_bad_share", "publish.max_grade_share_change",
                   "validation.min_volume_ratio"):
        if not 0 <= _get(values, dotted) <= 1:
            fail(dotted, "must be between 0 and 1")
    if not 0 < values["policy"]["fairness_min_ratio"] <= 1:
        fail("policy.fairness_min_ratio", "must be above 0 and at most 1")
    if not 1 <= values["policy"]["outcome_months"] <= 36:
        fail("policy.outcome_months", "must be between 1 and 36")
    if values["policy"]["explanation_sample"] < 0:
        fail("policy.explanation_sample", "must not be negative")
    if values["scoring"]["appeal_mask_working_days"] < 0:
        fail("scoring.appeal_mask_working_days", "must not be negative")
    if values["lookup"]["refresh_seconds"] < 1:
        fail("lookup.refresh_seconds", "must be at least 1")
    try:
        zoneinfo.ZoneInfo(values["lookup"]["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail("lookup.timezone", "must be a time zone name such as Asia/Shanghai")
    if values["landing"]["retention_months"] < 1:
        fail("landing.retention_months", "must be at least 1")
    for dotted in ("cleanup.retention_days", "cleanup.staging_min_age_hours"):
        if _get(values, dotted) < 0:
            fail(dotted, "must not be negative")
    try:
        _check_keys(values, origins, env)
    except ConfigError as exc:
        if keys_required:
            raise
        return str(exc)
    return None


def _check_keys(values: dict, origins: dict, env: str) -> None:
    """The subject key (and the audit key, when set) of `env`: a subject key is required, and
    the public development keys are refused outside CITYCREDIT_ENV=local (issue 24 item 5)."""
    if not values.get("subject_key"):
        raise ConfigError(
            "no subject key: set CITYCREDIT_SUBJECT_KEY"
            + (" (or subject_key in conf/local.yaml for development)" if env == DEVELOPMENT_ENV
               else f" (CITYCREDIT_ENV={env} has none)")
            + "; identity numbers cannot be pseudonymised without it")
    for dotted, public in DEVELOPMENT_KEYS.items():
        variable = next(v for v, d in ENV_OVERRIDES.items() if d == dotted)
        if env != DEVELOPMENT_ENV and _get(values, dotted) == public:
            raise ConfigError(
                f"{origins.get(dotted, 'conf')}: key '{dotted}' is the public development key, "
                f"used only with CITYCREDIT_ENV={DEVELOPMENT_ENV}; environment '{env}' must set "
                f"its own ({variable})")
        key = _get(values, dotted)
        if env != DEVELOPMENT_ENV and key and len(str(key)) < MIN_KEY_CHARS:
            # identity numbers are few enough to enumerate: a guessable key is no pseudonym
            raise ConfigError(
                f"{origins.get(dotted, 'conf')}: key '{dotted}' ({variable}) has "
                f"{len(str(key))} characters; outside CITYCREDIT_ENV={DEVELOPMENT_ENV} a key "
                f"has at least {MIN_KEY_CHARS} random ones — make one with: python -c "
                f"'import secrets; print(secrets.token_urlsafe(32))'")


def load_sources(path: Path) -> dict[str, dict]:
    """conf/sources.yaml → {source_id: normalised entry}; errors name the file, source and key."""
    data = _read_yaml(path)
    sources = data.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise ConfigError(f"{path}: key 'sources' must map source ids to their settings")
    result = {}
    for source_id, entry in sources.items():
        where = f"{path}: source '{source_id}'"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(source_id)):
            raise ConfigError(f"{where}: source ids are lowercase letters, digits and _")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(entry) - _SOURCE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}' "
                              f"(known: {', '.join(sorted(_SOURCE_KEYS))})")
        kind = entry.get("kind")
        if kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: key 'kind' must be one of {', '.join(SOURCE_KINDS)}")
        encoding = entry.get("encoding", "utf-8")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"{where}: key 'encoding': unknown encoding '{encoding}'") from None
        items = entry.get("items", [])
        if kind == "findings" and not (isinstance(items, list) and items):
            raise ConfigError(f"{where}: key 'items' must list the catalogue items it delivers")
        fmt = entry.get("format", "csv")
        if fmt not in SOURCE_FORMATS:
            raise ConfigError(f"{where}: key 'format' must be one of {', '.join(SOURCE_FORMATS)}")
        required = entry.get("required", True)
        if not isinstance(required, bool):
            raise ConfigError(f"{where}: key 'required' must be true or false")
        ratio = entry.get("min_volume_ratio")
        if ratio is not None and not (isinstance(ratio, (int, float)) and 0 <= ratio <= 1):
            raise ConfigError(f"{where}: key 'min_volume_ratio' must be between 0 and 1")
        result[source_id] = {
            "min_volume_ratio": ratio,
            "kind": kind,
            "title": entry.get("title", source_id),
            "format": fmt,
            "items": list(items),
            "encoding": encoding,
            "date_format": entry.get("date_format", "%Y-%m-%d"),
            "required": required,
        }
    return result


def conf_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The conf folder in force: CITYCREDIT_CONF, else the project's conf/."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("CITYCREDIT_CONF") or PROJECT_ROOT / "conf")


def configured_sources(environ: Mapping[str, str] | None = None) -> dict[str, dict]:
    """conf/sources.yaml of the conf folder in force (for tools that need no other setting)."""
    return load_sources(conf_dir(environ) / "sources.yaml")


def forbidden_columns(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """`validation.forbidden_columns` of the conf folder in force (base.yaml, then the env's
    overlay), lower-cased: the fields SPEC §7 rejects at landing."""
    environ = os.environ if environ is None else environ
    folder = conf_dir(environ)
    values: dict = {}
    for path in (folder / "base.yaml", folder / f"{environ.get('CITYCREDIT_ENV') or 'local'}.yaml"):
        if path.is_file():
            values.update((_read_yaml(path).get("validation") or {}))
    columns = values.get("forbidden_columns")
    if not isinstance(columns, list):
        raise ConfigError(f"{folder / 'base.yaml'}: key 'validation.forbidden_columns' must be a list")
    return tuple(str(c).lower() for c in columns)


def load_settings(folder: Path | str | None = None, env: str | None = None,
                  environ: Mapping[str, str] | None = None, keys_required: bool = True) -> Settings:
    """Read the configuration; raise ConfigError naming the file and key on any problem.
    `keys_required=False` (`citycredit config` only): a missing or development key is kept in
    Settings.key_problem instead, so that the settings can be looked over before keys are set."""
    environ = os.environ if environ is None else environ
    unknown = sorted(k for k in environ if k.startswith("CITYCREDIT_")
                     and k not in (*ENV_OVERRIDES, *ENV_SELECTORS, *ENV_INSTALL))
    if unknown:
        known = sorted([*ENV_OVERRIDES, *ENV_SELECTORS, *ENV_INSTALL])
        raise ConfigError(f"environment: {unknown[0]} is not a citycredit setting "
                          f"(known: {', '.join(known)})")
    conf = Path(folder) if folder else conf_dir(environ)
    if not conf.is_dir():
        named = ("CITYCREDIT_CONF names" if not folder and environ.get("CITYCREDIT_CONF")
                 else "the conf folder")
        raise ConfigError(f"{named} {conf}, which is not a folder: point it at a conf folder "
                          "holding base.yaml, sources.yaml and <env>.yaml (the project's "
                          "conf/ is one)")
    env_given = bool(env)
    env = env or environ.get("CITYCREDIT_ENV") or "local"

    values: dict = {}
    origins: dict = {}
    base = conf / "base.yaml"
    _overlay(values, origins, _read_yaml(base), _SCHEMA, str(base))
    overlay = conf / f"{env}.yaml"
    _overlay(values, origins, _read_yaml(overlay), _SCHEMA, str(overlay))
    # added after conf folders outside the checkout were written: absent means embedded
    values.setdefault("spark", {}).setdefault("submit", {}).setdefault("conn_id", None)
    for var, dotted in ENV_OVERRIDES.items():
        if var in environ:
            _set(values, dotted, environ[var])
            origins[dotted] = f"environment variable {var}"
    _check_types(values, origins, _SCHEMA)
    key_problem = _check_values(values, origins, env, keys_required)

    cwd = Path.cwd()

    def data_path(dotted):   # data lives where the operator runs it
        return (cwd / _get(values, dotted)).resolve()

    def code_path(dotted):   # rules and suites ship with the project, wherever the conf folder is
        return (PROJECT_ROOT / _get(values, dotted)).resolve()

    sources = load_sources(conf / "sources.yaml")
    rules = code_path("paths.rules")
    if not rules.is_dir():
        raise ConfigError(_missing(values, origins, "paths.rules", f"no rules folder at {rules}"))
    expectations = code_path("paths.expectations")
    _check_suites(values, origins, expectations, sources)
    origins = {**origins, "conf": ("environment variable CITYCREDIT_CONF"
                                   if not folder and environ.get("CITYCREDIT_CONF") else
                                   "argument" if folder else "default"),
               "env": ("argument" if env_given else "environment variable CITYCREDIT_ENV"
                       if environ.get("CITYCREDIT_ENV") else "default")}
    return Settings(
        key_problem=key_problem,
        env=env,
        conf_dir=conf,
        landing=data_path("paths.landing"),
        warehouse=data_path("paths.warehouse"),
        rules=rules,
        expectations=expectations,
        subject_key=values["subject_key"],
        spark_master=values["spark"]["master"],
        spark_driver_memory=values["spark"]["driver_memory"],
        spark_shuffle_partitions=values["spark"]["shuffle_partitions"],
        spark_conf=dict(values["spark"]["conf"]),
        spark_delta=values["spark"]["delta"],
        spark_submit_conn_id=values["spark"]["submit"]["conn_id"] or None,
        validation=dict(values["validation"]),
        scoring=dict(values["scoring"]),
        publish=dict(values["publish"]),
        sources=sources,
        lookup=dict(values["lookup"]),
        policy={**values["policy"], "reports": data_path("policy.reports")},
        landing_retention_months=values["landing"]["retention_months"],
        cleanup=dict(values["cleanup"]),
        origins=origins,
    )


def _missing(values: dict, origins: dict, dotted: str, problem: str) -> str:
    """One line: the setting, its value and where it came from, then what is wrong."""
    value = _get(values, dotted)
    relative = "" if Path(value).is_absolute() else f"; relative to the project {PROJECT_ROOT}"
    return f"{origins[dotted]}: key '{dotted}': {problem} (value '{value}'{relative})"


def _check_suites(values: dict, origins: dict, folder: Path, sources: dict) -> None:
    """Every configured source's kind has its GX suite (expectations/kind.<kind>.json), so a
    mis-set paths.expectations stops at start, before anything is landed."""
    if not folder.is_dir():
        raise ConfigError(_missing(values, origins, "paths.expectations",
                                   f"no expectations folder at {folder}"))
    for source_id, entry in sources.items():
        suite = folder / f"kind.{entry['kind']}.json"
        if not suite.is_file():
            raise ConfigError(_missing(values, origins, "paths.expectations",
                                       f"no expectation suite {suite.name} in {folder} "
                                       f"(source '{source_id}')"))


# ---------------------------------------------------------------------------------------------
# `citycredit config`: the resolved settings, each with its origin, secrets masked
_SECRET_NAME = re.compile(r"(key|password|passwd|secret|token|credentials?)$", re.I)
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")
MASK = "********"


def shown(dotted: str, value) -> str:
    """A setting's value fit to print: a secret (subject_key, any *key / *password / *secret /
    *token) masked, a URL's password masked, None as null."""
    if value is None:
        return "null"
    if _SECRET_NAME.search(dotted):
        return f"{MASK} (set)" if value else "(empty)"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    text = str(value)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)


def _value_of(settings: Settings, dotted: str):
    section, _, name = dotted.partition(".")
    if not name:
        return getattr(settings, section, None)
    if section == "paths":
        return getattr(settings, name, None)
    holder = getattr(settings, section, None)
    if isinstance(holder, dict) and name in holder:
        return holder[name]
    return getattr(settings, dotted.replace(".", "_"), None)


def _origin(origins: Mapping[str, str], dotted: str) -> str:
    """Where a setting came from, as `citycredit config` shows it: "<conf file>: <key>",
    "environment variable CITYCREDIT_…", or "default"."""
    where = origins.get(dotted)
    if where is None:
        return "default"
    return where if where.startswith("environment variable") else f"{where}: {dotted}"


def landing_folder(settings: Settings) -> Path:
    """settings.landing, which must be a folder: a month's check and an erasure refuse a landing
    zone that is not there (a mistyped path would otherwise read as every delivery folder gone
    by retention, and leave the delivery files of erased persons untouched). Raises
    ConfigError naming the setting and where it came from."""
    if not settings.landing.is_dir():
        raise ConfigError(f"paths.landing: no landing folder at {settings.landing} (from "
                          f"{_origin(settings.origins, 'paths.landing')}): point it at the "
                          "landing zone the departments deliver to")
    return settings.landing


def reports_folder(settings: Settings) -> Path:
    """settings.policy["reports"], where the policy tools write their reports: a folder, or
    one they can make (the first part of the path that exists is a folder this user may
    write to, and the folder can be made). Checked before anything runs — a file there made
    `simulate` fail at its end, after minutes of Spark. Raises ConfigError naming the setting and where it came from."""
    folder = Path(settings.policy["reports"])
    there = next(p for p in (folder, *folder.parents) if p.exists())
    if not there.is_dir():
        problem = "is a file, not a folder" if there == folder else \
            f"cannot be made: {there} is a file"
    elif not os.access(there, os.W_OK):
        problem = "is not writable by this user" if there == folder else \
            f"cannot be made: {there} is not writable by this user"
    else:
        try:        # made and taken back, as the report would make it: root passes os.access
            folder.mkdir(parents=True, exist_ok=True)       # on /proc and a missing mount too
            for made in [folder, *folder.parents][:len(folder.relative_to(there).parts)]:
                made.rmdir()            # a refused tool leaves no folder behind
            return folder
        except OSError as exc:
            problem = f"cannot be made: {exc.strerror or exc}"
    raise ConfigError(f"policy.reports: {folder} {problem} (from "
                      f"{_origin(settings.origins, 'policy.reports')}): point it at a folder for "
                      "the reports")


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """[(setting, value as shown, origin)] for every setting of conf/base.yaml's shape, resolved:
    paths absolute, secrets masked (`shown`); the origin is "<conf file>: <key>", "environment
    variable CITYCREDIT_…", or "default" (not in any file: the Settings default)."""
    def origin(dotted: str) -> str:
        return _origin(settings.origins, dotted)

    rows = []

    def walk(schema: Mapping, prefix: str = ""):
        for key, expected in schema.items():
            dotted = f"{prefix}{key}"
            if isinstance(expected, dict):
                walk(expected, dotted + ".")
                continue
            value = _value_of(settings, dotted)
            if isinstance(value, dict) and value:      # spark.conf: one line per entry
                rows.extend((f"{dotted}.{k}", shown(f"{dotted}.{k}", v), origin(dotted))
                            for k, v in sorted(value.items()))
                continue
            rows.append((dotted, shown(dotted, value), origin(dotted)))
    walk(_SCHEMA)
    return rows


GRANTEES_FILE = "grantees.yaml"
_GRANTEE_KEYS = {"name", "key_sha256", "purposes", "schemes"}
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")


def load_grantees(folder: Path | str | None = None) -> dict[str, dict]:
    """conf/grantees.yaml of `folder` (default: the conf folder in force, CITYCREDIT_CONF) →
    {grantee id: {name, key_sha256, purposes, schemes}} (issue "Lookups").

    Exactly this shape: `grantees: {<ID>: {name, key_sha256: <64 hex, sha256 of the API key>,
    purposes: [...], schemes: [...]}}`; the key itself is never stored. Errors name the file,
    the grantee and the key."""
    path = Path(folder or conf_dir()) / GRANTEES_FILE
    data = _read_yaml(path)
    grantees = data.get("grantees")
    if set(data) - {"grantees"} or not isinstance(grantees, dict) or not grantees:
        raise ConfigError(f"{path}: expected one key 'grantees' mapping grantee ids to "
                          f"{{name, key_sha256, purposes, schemes}}")
    result, hashes = {}, {}
    for grantee_id, entry in grantees.items():
        where = f"{path}: grantee '{grantee_id}'"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", str(grantee_id)):
            raise ConfigError(f"{where}: grantee ids are letters, digits, _ and - (at most 32)")
        if not isinstance(entry, dict) or set(entry) != _GRANTEE_KEYS:
            have = set(entry) if isinstance(entry, dict) else set()
            wrong = sorted(have - _GRANTEE_KEYS) or sorted(_GRANTEE_KEYS - have)
            raise ConfigError(f"{where}: needs exactly the keys {', '.join(sorted(_GRANTEE_KEYS))}"
                              f" ({'unknown' if have - _GRANTEE_KEYS else 'missing'}: "
                              f"{', '.join(wrong)})")
        key_hash = entry["key_sha256"]
        if not (isinstance(key_hash, str) and re.fullmatch(r"[0-9a-f]{64}", key_hash)):
            raise ConfigError(f"{where}: key 'key_sha256' must be the 64 lowercase hex digits of "
                              f"sha256(API key)")
        if key_hash in hashes:
            raise ConfigError(f"{where}: key 'key_sha256' is the same as grantee "
                              f"'{hashes[key_hash]}'s (one key per grantee)")
        hashes[key_hash] = str(grantee_id)
        for key in ("purposes", "schemes"):
            values = entry[key]
            if not (isinstance(values, list) and values
                    and all(isinstance(v, str) and _WORD.fullmatch(v) for v in values)):
                raise ConfigError(f"{where}: key '{key}' must list lowercase names "
                                  f"(e.g. [loan] / [haibei])")
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            raise ConfigError(f"{where}: key 'name' must be the grantee's name")
        result[str(grantee_id)] = {"name": entry["name"], "key_sha256": key_hash,
                                   "purposes": list(entry["purposes"]),
                                   "schemes": list(entry["schemes"])}
    return result
