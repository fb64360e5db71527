"""A generated city's earlier months bulk-loaded into bronze and silver at once, as month-by-month
runs would have left them, in seconds to minutes instead of one `citycredit run` per month. Used
by `citycredit demo` (34 months bulk-loaded, the last two run for real) and by the steady-state
benchmark (`bench/history.py`, which adds the previous month's publication).

Per source and month the delivery is read by the real reader (`ingest.read.read_delivery`) and
written to bronze by the real writer; the rows validation accepts are the delivered rows less the
generator's ground-truth bad rows (`_truth/bad_rows.csv`; the e2e test checks that validation
quarantines exactly those), typed as staging types them (`ingest.validate.parse_dates`, decimals
as decimal(18,4)) and pseudonymised once per distinct identity number. Finding, appeal and
consent versions get their known_until from `silver.versions.next_known_from` over all months of
a source at once (what merging them month by month gives: tests/unit/test_silver_versions.py).

Not written for the bulk months: quarantine rows, staging, run reports and gold — the months run
for real afterwards write those.
"""
from __future__ import annotations

import csv
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog
from ..config import Settings
from ..identity import birth_date, sex, subject_key
from ..ingest.bronze import write_bronze
from ..ingest.delivery import find_delivery
from ..ingest.read import read_delivery
from ..ingest.validate import parse_dates
from ..io import tables
from ..silver.residence import recount_residence
from ..silver.versions import next_known_from

LOAD_ID = "bulk-history"


class Pseudonyms:
    """subject_key (and birth date, sex) per distinct identity number, computed once."""

    def __init__(self, key: str):
        self.key = key
        self.known: dict[str, tuple[str, dt.date, str]] = {}

    def columns(self, ids: pd.Series, population: bool) -> dict[str, pa.Array]:
        codes, uniques = pd.factorize(ids.astype(str))
        for value in uniques:
            if value not in self.known:
                self.known[value] = (subject_key(value, self.key), birth_date(value), sex(value))
        found = [self.known[v] for v in uniques]
        take = pa.array(codes)
        out = {"subject_key": pa.array([f[0] for f in found], pa.string()).take(take)}
        if population:
            out["birth_date"] = pa.array([f[1] for f in found], pa.date32()).take(take)
            out["sex"] = pa.array([f[2] for f in found], pa.string()).take(take)
        return out


def bad_rows(landing: Path) -> dict[tuple[str, str], set[tuple[str, int]]]:
    """(source, month) → {(file, line)} the generator made bad."""
    out: dict = defaultdict(set)
    truth = landing / "_truth" / "bad_rows.csv"
    if truth.is_file():
        with open(truth, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out[(row["source_id"], row["month"])].add((row["file"], int(row["line"])))
    return out


def staging_rows(raw, conf: dict, source_id: str, month: str, bad: set,
                 pseudonyms: Pseudonyms) -> pa.Table:
    """The rows validation accepts, as staging/<kind> holds them."""
    data = raw.data
    if bad:
        keep = [(f, int(l)) not in bad for f, l in zip(data["_file"], data["_line"])]
        data = data[np.array(keep, dtype=bool)].reset_index(drop=True)
    contract, kind = raw.contract, raw.kind
    columns: dict[str, pa.Array] = {}
    for name in contract.columns:
        if name in ("name", "id_number"):
            continue
        values = data[name]
        if name in contract.dates:
            columns[name] = pa.array(parse_dates(values, conf["date_format"])[0])
        elif name in contract.decimals:
            text = pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)
            columns[name] = pc.cast(text, pa.decimal128(18, 4))
        else:
            columns[name] = pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)
    if "id_number" in contract.columns:
        columns.update(pseudonyms.columns(data["id_number"], kind == "population"))
    if kind == "appeals":
        columns["appeal_source_id"] = columns.pop("source_id")
    n = len(data)
    columns.update(source_id=pa.array([source_id] * n, pa.string()),
                   month=pa.array([month] * n, pa.string()),
                   load_id=pa.array([LOAD_ID] * n, pa.string()))
    schema = catalog.staging(kind).schema
    return pa.table({c: columns[c] for c in schema.names}).cast(schema)


def versions(rows: list[pa.Table], kind: str) -> pa.Table:
    """Staging rows of every month → silver versions with known_until."""
    table = catalog.VERSIONED[kind]
    data = pa.concat_tables(rows)
    if kind == "appeals":     # silver keeps the appealed finding's source, not the delivering one
        data = data.drop(["source_id"])
        data = data.rename_columns([("source_id" if c == "appeal_source_id" else c)
                                    for c in data.column_names])
    data = data.rename_columns([("known_from" if c == "month" else c) for c in data.column_names])
    key = [c for c in table.key if c != "known_from"]
    data = data.append_column("known_until", next_known_from(data, key))
    return data.select(table.columns).cast(table.schema)


def _replace_versions(data: pa.Table, table: catalog.Table, settings: Settings) -> None:
    tables.replace_files(data, table.at(settings), partitions=data.group_by(
        list(table.partitions)).aggregate([]).to_pylist())


def load_history(settings: Settings, months: list[str], say=print) -> dict:
    """Bronze and silver (findings, appeals, consents, population, opt-outs) of `months` — the
    generated city's first months, in order — from the landing zone of `settings`. Returns row
    counts per table and the wall time ("seconds")."""
    started = time.perf_counter()
    truth = bad_rows(settings.landing)
    pseudonyms = Pseudonyms(settings.subject_key)
    counts: dict[str, int] = defaultdict(int)
    whole_months: dict[str, list[pa.Table]] = defaultdict(list)   # appeals, consents
    forbidden = settings.validation["forbidden_columns"]
    for source_id, conf in settings.sources.items():
        kind = conf["kind"]
        findings: list[pa.Table] = []
        for month in months:
            delivery = find_delivery(settings.landing, source_id, month)
            if delivery is None:
                continue
            raw = read_delivery(delivery, conf, forbidden_columns=forbidden)
            write_bronze(settings, raw, source_id, month, LOAD_ID)
            counts["bronze"] += raw.landed
            rows = staging_rows(raw, conf, source_id, month, truth.get((source_id, month), set()),
                                pseudonyms)
            if kind == "findings":
                findings.append(rows)
            elif kind in ("appeals", "consents"):
                whole_months[kind].append(rows)
            elif kind == "population":
                snapshot = rows.rename_columns(
                    [("snapshot_month" if c == "month" else c) for c in rows.column_names])
                tables.replace_files(snapshot.select(catalog.SILVER_POPULATION.columns),
                                     catalog.SILVER_POPULATION.at(settings),
                                     partitions=[{"snapshot_month": month}])
                counts["population"] += rows.num_rows
            elif kind == "optouts":
                optouts = rows.select(["subject_key", "requested_on", "month"]).rename_columns(
                    ["subject_key", "requested_on", "known_from"])
                tables.write_arrow(optouts, catalog.SILVER_OPTOUTS.at(settings), mode="overwrite",
                                   replace={"known_from": month})
                counts["optouts"] += rows.num_rows
            else:
                raise ValueError(f"{source_id}: kind {kind!r} has no bulk load")
        if findings:      # a source's versions are independent of every other source's
            data = versions(findings, "findings")
            _replace_versions(data, catalog.SILVER_FINDINGS, settings)
            counts["finding versions"] += data.num_rows
        say(f"  history: {source_id} {len(months)} months ({time.perf_counter() - started:.0f} s)")
    for kind, rows in whole_months.items():
        data = versions(rows, kind)
        _replace_versions(data, catalog.VERSIONED[kind], settings)
        counts[f"{kind} versions"] += data.num_rows
    if counts["population"]:       # as the silver step keeps it month by month
        counts["residence"] = recount_residence(settings)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return dict(counts)
