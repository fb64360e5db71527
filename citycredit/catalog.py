"""The catalogue of tables: every Delta table of the warehouse, once (SPEC §5).

Each entry says where the table lives (`<warehouse>/<layer>/<name>`), how it is partitioned, its
schema (Arrow types), its key, and which columns hold personal data — identity numbers in clear,
subject keys (HMAC pseudonyms), or raw delivered content that may contain either. Erasure, the
privacy scan and the README's table list are driven from here; no other module types a table path
or a table schema. `docs/contracts.md` carries the generated table list (`python -m
citycredit.catalog` prints it; a test keeps the two in step).

Tables whose name depends on the source or the extract kind (bronze per source, staging per kind)
come from `bronze(source_id, kind)` and `staging(kind)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa

_S, _D, _I64, _I32 = pa.string(), pa.date32(), pa.int64(), pa.int32()
QUANTITY = pa.decimal128(18, 4)
POINTS = pa.decimal128(18, 8)
RULE_VALUE = pa.decimal128(18, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")

#: what a personal-data column holds (the privacy scan and erasure read this)
ID_NUMBER = "id_number"        # an identity number in clear (bronze only)
SUBJECT_KEY = "subject_key"    # the HMAC pseudonym of an identity number
RAW_CONTENT = "raw_content"    # delivered text that may contain identity numbers


@dataclass(frozen=True)
class Table:
    """One table of the warehouse. `schema` is the exact Arrow schema of its Delta log."""

    layer: str
    name: str
    schema: pa.Schema
    partitions: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    personal: dict[str, str] = field(default_factory=dict)   # column → ID_NUMBER | SUBJECT_KEY | RAW_CONTENT
    description: str = ""
    #: (source column, record_id column) naming a finding this row is about (appeals): erasure
    #: removes the rows about an erased person's findings too
    finding_ref: tuple[str, str] = ()
    #: the record of erasures (suppression list, erasure log): keeps erased subject keys on
    #: purpose, so erasure leaves it alone and the privacy scan reports it apart
    erasure_record: bool = False
    #: rows per data file when the table is written sorted by its key (io.tables.replace_files;
    #: None: tables.FILE_ROWS; a Spark write, io.tables.write, then ranges and sorts by the key
    #: too). Small files for the big per-person tables: an erasure's delete rewrites only the
    #: few files whose key range holds the person (issue 20)
    file_rows: int | None = None
    #: written by the Spark stages (delta-spark): gold and the policy sandbox, the big per-run
    #: tables. With a cluster configured, erasure deletes their rows on the cluster too
    #: (citycredit.privacy.erasure); every other table is written on the Arrow side (delta-rs)
    spark_written: bool = False
    #: the columns Delta keeps per-file statistics of (table property
    #: delta.dataSkippingStatsColumns; empty: Delta's default, the first 32 columns). The big
    #: gold tables keep the key only: what erasure's deletes skip files by; statistics of every
    #: column cost their Spark writes 40 % more (docs/performance.md, 2026-12-06 third sitting)
    stats_columns: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def at(self, warehouse) -> "Location":
        """This table in a warehouse folder (a Path, or anything with `.warehouse`: Settings)."""
        root = getattr(warehouse, "warehouse", warehouse)
        return Location(self, str(Path(root) / self.layer / self.name))


@dataclass(frozen=True)
class Location:
    """A catalogue table at a concrete path; what the table seam (citycredit.io.tables) takes."""

    table: Table
    path: str

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


# ---------------------------------------------------------------------------------------------
# extract kinds: what landing keeps (bronze, all text) and what the silver boundary writes
# (staging, typed and pseudonymised) — SPEC §2.1–2.3
_BRONZE_COLUMNS = {
    "findings": ["record_id", "id_number", "item_code", "level", "quantity", "occurred_on",
                 "valid_until", "status", "case_ref"],
    "population": ["id_number", "district", "residency", "status"],
    # an appeal names the source of the finding it is about: kept as appeal_source_id, since
    # source_id is the delivering source in every table
    "appeals": ["appeal_id", "appeal_source_id", "record_id", "filed_on", "resolved_on",
                "outcome"],
    "optouts": ["id_number", "requested_on"],
    "consents": ["consent_id", "id_number", "grantee", "purpose", "granted_on", "expires_on",
                 "revoked_on"],
}
_STAGING_COLUMNS = {
    "findings": [("record_id", _S), ("subject_key", _S), ("item_code", _S), ("level", _S),
                 ("quantity", QUANTITY), ("occurred_on", _D), ("valid_until", _D),
                 ("status", _S), ("case_ref", _S)],
    "population": [("subject_key", _S), ("birth_date", _D), ("sex", _S), ("district", _S),
                   ("residency", _S), ("status", _S)],
    "appeals": [("appeal_id", _S), ("appeal_source_id", _S), ("record_id", _S),
                ("filed_on", _D), ("resolved_on", _D), ("outcome", _S)],
    "optouts": [("subject_key", _S), ("requested_on", _D)],
    "consents": [("consent_id", _S), ("subject_key", _S), ("grantee", _S), ("purpose", _S),
                 ("granted_on", _D), ("expires_on", _D), ("revoked_on", _D)],
}
#: the staging key after source_id and month, where it is not the subject
_STAGING_KEYS = {"findings": "record_id", "appeals": "appeal_id", "consents": "consent_id"}
EXTRACT_KINDS = tuple(_BRONZE_COLUMNS)


#: the layer folders a warehouse holds (staging and the privacy tables come with them)
WAREHOUSE_LAYERS = ("bronze", "silver", "gold")


def holds_warehouse(folder) -> bool:
    """Does `folder` hold a warehouse (a bronze, silver or gold folder)? A command pointed at a
    mistyped path (a folder not there, or only a lock's) must not take it for an empty one."""
    return any((Path(folder) / layer).is_dir() for layer in WAREHOUSE_LAYERS)


class NoWarehouse(ValueError):
    """A command that reads or deletes was pointed at a folder that holds no warehouse."""


#: the columns that hold a `YYYY-MM` month (citycredit.months), in every table that has them
MONTH_COLUMNS = frozenset({"month", "score_month", "snapshot_month", "erased_month",
                           "known_from", "known_until", "as_of"})


def bronze(source_id: str, kind: str) -> Table:
    """bronze/<source_id>: a source's deliveries as delivered (text), file + line, by month.
    The only table with identity numbers in clear (access-restricted, SPEC §7)."""
    columns = _BRONZE_COLUMNS[kind]
    return Table(
        "bronze", source_id,
        _schema(("source_id", _S), *[(c, _S) for c in columns], ("file", _S), ("line", _I64),
                ("month", _S), ("load_id", _S)),
        partitions=("month",), key=("month", "file", "line"),
        personal={ID_NUMBER: ID_NUMBER} if ID_NUMBER in columns else {},
        finding_ref=("appeal_source_id", "record_id") if kind == "appeals" else (),
        description=f"{kind} deliveries of {source_id} as delivered (names never stored)")


def staging(kind: str) -> Table:
    """staging/<kind>: a month's accepted rows, typed, identity numbers replaced by subject_key
    (the silver boundary); silver is built from it."""
    columns = _STAGING_COLUMNS[kind]
    return Table(
        "staging", kind,
        _schema(("source_id", _S), *columns, ("month", _S), ("load_id", _S)),
        partitions=("source_id", "month"),
        key=("source_id", "month", _STAGING_KEYS.get(kind, "subject_key")),
        personal={SUBJECT_KEY: SUBJECT_KEY} if kind != "appeals" else {},
        finding_ref=("appeal_source_id", "record_id") if kind == "appeals" else (),
        description=f"accepted {kind} rows of a month, pseudonymised")


QUARANTINE = Table(
    "quarantine", "rows",
    _schema(("source_id", _S), ("month", _S), ("file", _S), ("line", _I64), ("reasons", _S),
            ("detail", _S), ("raw", _S), ("subject_key", _S), ("load_id", _S)),
    partitions=("source_id", "month"), key=("source_id", "month", "file", "line"),
    personal={"raw": RAW_CONTENT, "subject_key": SUBJECT_KEY},
    description="rejected rows with reason codes (';'-joined), what is wrong (detail, no "
                "personal data) and the delivered content, identity numbers masked "
                "(`371002********123X`); subject_key where the number was valid")

SILVER_FINDINGS = Table(
    "silver", "findings",
    _schema(("source_id", _S), ("record_id", _S), ("subject_key", _S), ("item_code", _S),
            ("level", _S), ("quantity", QUANTITY), ("occurred_on", _D), ("valid_until", _D),
            ("status", _S), ("case_ref", _S), ("known_from", _S), ("known_until", _S),
            ("load_id", _S)),
    # by delivery month too: a month's versions are partitions of their own (silver.versions)
    partitions=("source_id", "known_from"), key=("source_id", "record_id", "known_from"),
    personal={"subject_key": SUBJECT_KEY},
    # written by delta-rs (silver.versions.merge_month's file replace): 0.4-1 s a month, against
    # 10-19 s for a delta-spark MERGE doing the same (docs/performance.md, 2026-12-06)
    spark_written=False,
    description="every delivered version of every finding (known_from … known_until)")

SILVER_APPEALS = Table(
    "silver", "appeals",
    _schema(("appeal_id", _S), ("source_id", _S), ("record_id", _S), ("filed_on", _D),
            ("resolved_on", _D), ("outcome", _S), ("known_from", _S), ("known_until", _S),
            ("load_id", _S)),
    partitions=("known_from",), key=("appeal_id", "known_from"),
    finding_ref=("source_id", "record_id"),
    description="every delivered version of every appeal; source_id is the appealed finding's")

SILVER_POPULATION = Table(
    "silver", "population",
    _schema(("subject_key", _S), ("birth_date", _D), ("sex", _S), ("district", _S),
            ("residency", _S), ("status", _S), ("snapshot_month", _S)),
    partitions=("snapshot_month",), key=("snapshot_month", "subject_key"),
    personal={"subject_key": SUBJECT_KEY}, file_rows=1 << 16,
    description="the monthly population snapshots (birth date and sex from the identity number)")

SILVER_RESIDENCE = Table(
    "silver", "residence",
    _schema(("subject_key", _S), ("months_before", _I32), ("active", pa.bool_()), ("as_of", _S)),
    partitions=("as_of",), key=("as_of", "subject_key"),
    personal={"subject_key": SUBJECT_KEY}, file_rows=1 << 16,
    description="months_resident as of the latest population snapshot (as_of, one partition): "
                "per person ever active, the snapshots before it in which they were active "
                "(months_before) and whether active in it; silver.residence keeps it, scoring "
                "reads it instead of every snapshot")

SILVER_OPTOUTS = Table(
    "silver", "optouts",
    _schema(("subject_key", _S), ("requested_on", _D), ("known_from", _S)),
    partitions=("known_from",), key=("known_from", "subject_key"),
    personal={"subject_key": SUBJECT_KEY},
    description="opt-out (注销) requests by delivery month")

SCORES = Table(
    "gold", "scores",
    _schema(("subject_key", _S), ("scheme", _S), ("score_month", _S), ("score", _I32),
            ("grade", _S), ("grade_label", _S), ("base_score", POINTS),
            ("points_positive", POINTS), ("points_negative", POINTS),
            ("dimension_points", pa.map_(_S, POINTS)), ("finding_count", _I32),
            ("rules_version", _S), ("run_id", _S), ("computed_at", TIMESTAMP)),
    # by run too: a run writes only its own rows, and readers take the published run's
    # (citycredit.publish.published); other runs' rows go once a run of the month is published
    partitions=("scheme", "score_month", "run_id"),
    key=("scheme", "score_month", "run_id", "subject_key"),
    personal={"subject_key": SUBJECT_KEY},
    spark_written=True, stats_columns=("subject_key",),
    description="one row per scheme, month, scoring run and scored adult (restricted); the "
                "month's results are the rows of the run gold/published_scores names")

SCORE_LINES = Table(
    "gold", "score_lines",
    _schema(("scheme", _S), ("score_month", _S), ("subject_key", _S), ("line_type", _S),
            ("source_id", _S), ("record_id", _S), ("item_code", _S), ("level", _S),
            ("quantity", QUANTITY), ("occurred_on", _D), ("valid_until", _D), ("rule_id", _S),
            ("dimension", _S), ("last_valid_day", _D), ("finding_points", POINTS),
            ("points", POINTS), ("status", _S), ("deduplicated_by", _S), ("repaired_on", _D),
            ("rules_version", _S), ("run_id", _S)),
    partitions=("scheme", "score_month", "run_id"),
    key=("scheme", "score_month", "run_id", "subject_key", "line_type", "source_id",
         "record_id", "rule_id", "dimension"),
    personal={"subject_key": SUBJECT_KEY},
    spark_written=True, stats_columns=("subject_key",),
    description="why each score is what it is and why it changed: the findings in force or "
                "changed since the previous month, tier, growth, subject-rule (that apply) "
                "and cap rows, per scoring run (readers take the published run's)")

PUBLISHED_SCORES = Table(
    "gold", "published_scores",
    _schema(("subject_key", _S), ("scheme", _S), ("score_month", _S), ("score", _I32),
            ("grade", _S), ("grade_label", _S), ("published_at", TIMESTAMP), ("run_id", _S)),
    partitions=("scheme", "score_month"), key=("scheme", "score_month", "subject_key"),
    personal={"subject_key": SUBJECT_KEY}, file_rows=1 << 16,
    spark_written=True, stats_columns=("subject_key",),
    description="the portals' query table: score and grade only, and the scoring run they "
                "come from (its gold/scores and gold/score_lines rows are the month's); all "
                "schemes of a month are published in one commit")

SILVER_CONSENTS = Table(
    "silver", "consents",
    _schema(("consent_id", _S), ("source_id", _S), ("subject_key", _S), ("grantee", _S),
            ("purpose", _S), ("granted_on", _D), ("expires_on", _D), ("revoked_on", _D),
            ("known_from", _S), ("known_until", _S), ("load_id", _S)),
    partitions=("known_from",), key=("consent_id", "known_from"),
    personal={"subject_key": SUBJECT_KEY},
    description="every delivered version of every consent (a re-sent consent_id corrects it; "
                "source_id is the delivering source)")

RUN_REPORT = Table(
    "report", "run_report",
    _schema(("run_id", _S), ("score_month", _S), ("section", _S), ("name", _S),
            ("metrics", _S), ("created_at", TIMESTAMP)),
    key=("run_id", "section", "name"),
    description="per run: sources (reconciliation), schemes (distribution, drift), stages")

# ---------------------------------------------------------------------------------------------
# sandbox: what the policy tools write (citycredit/policy). Nothing in the monthly run, the
# publication or the run report reads these tables; a draft scheme writes nowhere else.
SIMULATED_SCORES = Table(
    "sandbox", "simulated_scores",
    _schema(("subject_key", _S), ("scheme", _S), ("draft", _S), ("score_month", _S),
            ("adopted_score", _I32), ("adopted_grade", _S), ("draft_score", _I32),
            ("draft_grade", _S), ("score_change", _I32), ("adopted_rules_version", _S),
            ("draft_rules_version", _S), ("run_id", _S), ("computed_at", TIMESTAMP)),
    partitions=("scheme", "draft", "score_month"),
    key=("scheme", "draft", "score_month", "subject_key"),
    personal={"subject_key": SUBJECT_KEY},
    spark_written=True,
    description="a draft scheme beside the adopted one, per scored adult (citycredit simulate; "
                "draft = the draft file's name)")

EVALUATIONS = Table(
    "sandbox", "evaluations",
    _schema(("scheme", _S), ("score_month", _S), ("variant", _S), ("rules_version", _S),
            ("metrics", _S), ("run_id", _S), ("created_at", TIMESTAMP)),
    partitions=("scheme",), key=("scheme", "score_month", "variant", "run_id"),
    description="validity, discrimination, stability and fairness measures of a scheme "
                "(citycredit evaluate; variant `adopted` or a draft's name; metrics: the JSON)")

SUPPRESSION_LIST = Table(
    "privacy", "suppression_list",
    _schema(("subject_key", _S), ("requested_on", _D), ("erased_month", _S),
            ("erased_at", TIMESTAMP)),
    key=("subject_key",), personal={"subject_key": SUBJECT_KEY}, erasure_record=True,
    description="erased persons (subject_key only, never an identity number): their rows are "
                "dropped at landing, so a re-landing, backfill or late delivery cannot bring them back")

ERASURE_LOG = Table(
    "privacy", "erasure_log",
    _schema(("subject_key", _S), ("requested_on", _D), ("erased_at", TIMESTAMP),
            ("erased_month", _S), ("run_id", _S), ("place", _S), ("rows_removed", _I64),
            ("detail", _S)),
    key=("subject_key", "erased_at", "place"), personal={"subject_key": SUBJECT_KEY},
    erasure_record=True,
    description="what each erasure removed: one row per person and place (a table, or a landing "
                "file rewritten), no other personal data")

SUPPRESSED_FINDINGS = Table(
    "privacy", "suppressed_findings",
    _schema(("finding_key", _S), ("erased_month", _S), ("erased_at", TIMESTAMP)),
    key=("finding_key",),
    description="the findings of erased persons as keyed references (HMAC of source_id and "
                "record_id: no record id, no subject key): appeals about them are dropped at "
                "landing")

#: the versioned silver tables and the key whose versions they keep
VERSIONED = {"findings": SILVER_FINDINGS, "appeals": SILVER_APPEALS,
             "consents": SILVER_CONSENTS}


def fixed_tables() -> list[Table]:
    """The tables whose names do not depend on conf (bronze and staging do)."""
    return [QUARANTINE, SILVER_FINDINGS, SILVER_APPEALS, SILVER_POPULATION, SILVER_RESIDENCE,
            SILVER_OPTOUTS, SILVER_CONSENTS, SCORES, SCORE_LINES, PUBLISHED_SCORES, RUN_REPORT,
            SIMULATED_SCORES, EVALUATIONS, SUPPRESSION_LIST, ERASURE_LOG, SUPPRESSED_FINDINGS]


def all_tables(sources: dict[str, dict]) -> Iterator[Table]:
    """Every table of a warehouse fed by `sources` (conf/sources.yaml): bronze per source,
    staging per kind, then the fixed tables."""
    for source_id, conf in sources.items():
        yield bronze(source_id, conf["kind"])
    for kind in sorted({conf["kind"] for conf in sources.values()}):
        yield staging(kind)
    yield from fixed_tables()


def markdown() -> str:
    """The table list of docs/contracts.md, generated from this catalogue."""
    def block(table: Table, title: str) -> list[str]:
        personal = ", ".join(f"`{c}` ({what})" for c, what in table.personal.items()) or "none"
        notes = ""
        if table.finding_ref:
            notes += (f" · about a finding: `{table.finding_ref[0]}`, `{table.finding_ref[1]}` "
                      f"(erased with the person's findings)")
        if table.erasure_record:
            notes += " · erasure record: keeps erased subject keys on purpose"
        lines = [f"### {title}", table.description + ".", "",
                 f"partitions: {', '.join(f'`{p}`' for p in table.partitions) or 'none'} · "
                 f"key: {', '.join(f'`{k}`' for k in table.key)} · personal data: {personal}"
                 + notes, "",
                 "| column | type |", "|---|---|"]
        lines += [f"| {f.name} | {f.type} |" for f in table.schema]
        return lines + [""]

    out = ["<!-- generated by `python -m citycredit.catalog`; edit citycredit/catalog.py -->", ""]
    for kind in EXTRACT_KINDS:
        out += block(bronze("<source_id>", kind), f"bronze/<source_id> (kind {kind})")
    for kind in EXTRACT_KINDS:
        out += block(staging(kind), f"staging/{kind}")
    for table in fixed_tables():
        out += block(table, table.id)
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
