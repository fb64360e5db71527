"""Validation of a landed delivery with Great Expectations 1.x (SPEC §2, ARCHITECTURE §4).

Row checks are GX expectations in suite files, run by GX on a pandas DataFrame:

  expectations/kind.<kind>.json   one suite per extract kind (findings, population, appeals, optouts)
  expectations/<source_id>.json   optional per-source override, merged into its kind's suite

so onboarding a department is an entry in conf/sources.yaml, with no Python and no suite file.
A suite file is GX's own serialised ExpectationSuite (`name`, `expectations`, `meta`, `notes`) and
loads with `great_expectations.ExpectationSuite(**json)`. Each expectation's `meta` says what it
means to us:
  check       a stable id (an override expectation with the same id replaces the kind's one;
              `meta.citycredit.remove_checks` in an override drops checks)
  reason      the quarantine reason code of the rows it finds (row-level expectations)
  level       "batch" for the expectations that decide whether the delivery may proceed; they run
              after the row checks, on a one-column frame `_quarantined`
  exclusive   rows with this reason carry no other (a row that could not be read has no fields)
  unless      [reasons]: not reported for rows that already have one of these
Where GX has no built-in expectation (GB 11643 check digit, dates under a source's pattern,
duplicates within a delivery, levels per catalogue item, jsonl keys beyond the contract) the suite's
`meta.citycredit.derived_columns` names helper columns that our code computes first (functions in
DERIVATIONS below); a plain GX expectation on the helper column then decides.
Suite parameters (`{"$PARAMETER": name}`) supplied per run: catalogue_items, source_items,
month_start, month_end, max_bad_share, min_good_share, findings_sources, grantees.

Failing rows come from `result_format` COMPLETE (`unexpected_index_list`, values excluded so no
identity number reaches the kept results); each row gets the reasons of every expectation it fails.

Where the parts live: ingest.suites (suite files, GX runs, kept results, Data Docs),
ingest.derive (the helper columns, Arrow), ingest.verdicts (GX results → failing rows per
reason, the batch verdict, the quarantined / accepted split); this module runs them over a
delivery (DeliveryChecks, validate_batch).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import union_categoricals

from ..config import forbidden_columns as configured_forbidden_columns
from .contracts import CONTRACTS, META_COLUMNS, RawBatch
from .controls import strip_control_padding
from .derive import (DELIVERY_WIDE, DERIVATIONS, DeriveContext, duplicated_later,
                     first_occurrences, parse_dates)
from .details import SourceContext, refusal_summary, row_details
from .suites import (DEFAULT_EXPECTATIONS_DIR, SuiteError, data_docs_pages, kept_results,
                     load_suite, referenced_columns, suite_files, suite_parameters)
from .verdicts import RowChecks, accepted_rows, check_batch, check_rows, quarantined_rows

__all__ = [
    "DEFAULT_EXPECTATIONS_DIR", "DERIVATIONS", "REASON_CODES", "DeliveryChecks", "SuiteError",
    "ValidationResult", "Verdict", "data_docs_pages", "duplicated_later", "first_occurrences",
    "load_suite", "parse_dates", "suite_files", "validate_batch",
]

# Every reason code the shipped suites and landing produce (a suite may add its own).
REASON_CODES = (
    "bad_id_number", "missing_required", "unknown_item", "item_not_allowed", "unknown_level",
    "bad_date", "date_after_month", "negative_quantity", "bad_quantity", "bad_status",
    "duplicate_record_id", "forbidden_field", "unknown_column", "encoding", "unparseable_row",
    "control_character",
    # population / appeals
    "bad_district", "bad_residency", "duplicate_id_number", "duplicate_appeal_id",
    "unknown_source", "bad_outcome",
    # consents
    "unknown_grantee", "bad_purpose", "bad_date_order", "duplicate_consent_id",
)


@dataclass
class ValidationResult:
    accepted: pd.DataFrame        # typed contract columns (name dropped) + _file, _line
    quarantined: pd.DataFrame     # source_id, month, file, line, reasons (';'-joined), detail, raw
    counts: dict                  # landed, accepted, quarantined, by_reason {code: rows}
    gx_success: bool              # GX's verdict on the batch (bad share, batch expectations)
    gx_results: dict              # JSON-able GX results (row + batch suites), values stripped
    batch_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.gx_success and not self.batch_errors


# ------------------------------------------------------------------------------------------------
# validate_batch
# ------------------------------------------------------------------------------------------------

def _validation_settings(settings) -> dict:
    """The validation settings as one flat dict, from the `validation` section, a whole config
    dict with a `validation` key, or a citycredit.config.Settings."""
    if settings is not None and not isinstance(settings, dict) and hasattr(settings, "validation"):
        return {**settings.validation, "sources": getattr(settings, "sources", None),
                "expectations_dir": getattr(settings, "expectations", None)}
    settings = dict(settings or {})
    if isinstance(settings.get("validation"), dict):
        merged = dict(settings["validation"])
        merged.update({k: v for k, v in settings.items() if k != "validation"})
        settings = merged
    return settings


def _catalogue_dict(catalogue_items) -> dict[str, set | None]:
    if hasattr(catalogue_items, "items") and not isinstance(catalogue_items, dict):
        catalogue_items = catalogue_items.items          # a citycredit.rules.Catalogue
    out = {}
    for code, levels in dict(catalogue_items).items():
        if hasattr(levels, "levels"):                   # a citycredit.rules.Item
            levels = levels.levels
        out[str(code)] = set(levels) if levels else None
    return out


def _concat(pieces: list[pd.Series]) -> pd.Series:
    """One column of the GX frame from its chunks' pieces: categoricals stay categorical (their
    categories united), the rest concatenated."""
    if len(pieces) == 1:
        return pieces[0].reset_index(drop=True)
    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in pieces):
        return pd.Series(union_categoricals(pieces))
    return pd.concat(pieces, ignore_index=True)


@dataclass
class Verdict:
    """What DeliveryChecks.finish decides about the delivery as a whole."""

    counts: dict                  # landed, accepted, quarantined, by_reason {code: rows}
    gx_success: bool
    gx_results: dict
    batch_errors: list[str]
    #: rows whose values lost control-character padding (ingest.controls): count, and the
    #: first one's file, line and note
    padding: dict = field(default_factory=dict)


class DeliveryChecks:
    """The validation of one delivery that arrives in chunks (record batches of bounded size),
    so that a delivery of any size is validated in bounded memory (issue 15).

        checks = DeliveryChecks(source_id, source_conf, month, catalogue_items, settings)
        for chunk in chunks: checks.add(chunk)             # pass 1: the checks' columns
        checks.run_row_checks()                            # GX, row-level suite, whole delivery
        for chunk in the same chunks: checks.split(chunk)  # pass 2: → (quarantined, accepted)
        verdict = checks.finish()                          # GX, batch-level suite: the verdict

    Chunks are RawBatch.data frames of consecutive rows, in delivery order, the same in both
    passes. Pass 1 keeps only what GX reads: the suite's helper columns (vectorised, mostly
    booleans) and the referenced delivered columns as categoricals — no identity number, no
    raw text — plus file and line of every row; so GX still validates every row of the
    delivery in one run (one result, one Data Docs page) on a frame of a few bytes per row.
    Delivery-wide helpers (duplicates) are combined from the chunks' parts before GX runs.
    Arguments as validate_batch; raises SuiteError for a broken suite file."""

    def __init__(self, source_id: str, source_conf: dict, month: str, catalogue_items: dict,
                 settings: dict, *, expectations_dir: Path | None = None,
                 kind: str | None = None):
        settings = _validation_settings(settings)
        self.source_id, self.month = source_id, month
        self.kind = (source_conf or {}).get("kind") or kind
        self.contract = CONTRACTS[self.kind]
        self.catalogue = _catalogue_dict(catalogue_items)
        self.forbidden = frozenset(c.lower() for c in settings.get("forbidden_columns")
                                   or configured_forbidden_columns())
        self.max_bad = float(settings.get("max_bad_share", 0.05))
        self.min_bad_rows = int(settings.get("min_bad_rows", 0))
        self.doc = load_suite(source_id, self.kind,
                              expectations_dir or settings.get("expectations_dir"))
        self.where = f"{source_id} {month}"
        self.date_format = (source_conf or {}).get("date_format") or "%Y-%m-%d"
        self.date_format_declared = bool((source_conf or {}).get("date_format"))
        self.params = suite_parameters(source_conf, self.catalogue, month, self.max_bad,
                                        self.kind, settings)
        self.derived = self.doc["meta"]["citycredit"]["derived_columns"]
        self.columns = referenced_columns(self.doc["expectations"])
        known = set(self.contract.columns) | set(META_COLUMNS) | set(self.derived)
        for col in self.columns:
            if col not in known:
                raise SuiteError(f"{', '.join(self.doc['meta']['citycredit']['files'])}: an "
                                 f"expectation reads column {col!r}, which is neither in the "
                                 f"{self.kind} contract nor a derived column")
        self.n = 0
        self._pieces: dict[str, list] = {col: [] for col in self.columns}
        self._lines: list[np.ndarray] = []
        self._file_codes: list[np.ndarray] = []
        self._files: dict[str, int] = {}
        self._landed_per_file: dict[str, int] = {}
        self.rows: RowChecks | None = None
        self.bad: np.ndarray | None = None
        self.first_of: dict[str, np.ndarray] = {}
        self._offset = 0
        self._bad_per_file: dict[str, int] = {}
        self._reasons: dict[str, list] = {}     # reason → [rows, file, line, detail] (first)
        self._padding: dict = {}

    def _derive_context(self, df: pd.DataFrame) -> DeriveContext:
        return DeriveContext(df, self.contract, self.date_format, self.catalogue, self.forbidden)

    # -- pass 1 --------------------------------------------------------------------------------
    def _cleaned(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
        """The chunk as the checks read it: control-character padding removed (ingest.controls),
        and per row position the note of what was removed (with the reader's notes: `_detail`
        of rows without `_error`)."""
        df, notes = strip_control_padding(df.reset_index(drop=True), self.contract.columns)
        if "_detail" in df.columns and "_error" in df.columns:
            read = (df["_detail"].notna() & df["_error"].isna()).to_numpy()
            for pos in np.flatnonzero(read).tolist():
                note = df["_detail"].iat[pos]
                notes[pos] = f"{note}; {notes[pos]}" if pos in notes else note
        return df, notes

    def add(self, df: pd.DataFrame) -> None:
        """Pass 1: the next chunk's check columns (RawBatch.data rows)."""
        df, _ = self._cleaned(df)
        ctx = self._derive_context(df)
        for col in self.columns:
            if col in self.derived:
                spec = self.derived[col]
                piece = DERIVATIONS[spec["function"]](ctx, spec)
            elif col == "_error" or df[col].dtype == object:
                piece = df[col].astype("category")
            else:
                piece = df[col]
            self._pieces[col].append(piece)
        files = df["_file"].to_numpy(dtype=object)
        names, codes = np.unique(files, return_inverse=True) if len(files) else ([], files)
        remap = np.array([self._files.setdefault(f, len(self._files)) for f in names],
                         dtype=np.int32)
        self._file_codes.append(remap[codes] if len(files) else np.zeros(0, np.int32))
        for name, count in zip(*np.unique(files, return_counts=True)) if len(files) else ():
            self._landed_per_file[name] = self._landed_per_file.get(name, 0) + int(count)
        self._lines.append(df["_line"].to_numpy(dtype=np.int64))
        self.n += len(df)

    def run_row_checks(self) -> None:
        """GX runs the row-level suite once over the whole delivery's check columns."""
        if not self._lines:
            self.add(pd.DataFrame({c: pd.Series([], dtype=object)
                                   for c in (*self.contract.columns, *META_COLUMNS)}))
        work = {}
        for col in self.columns:
            spec = self.derived.get(col)
            if spec and spec["function"] in DELIVERY_WIDE:
                work[col], first = DELIVERY_WIDE[spec["function"]](self._pieces[col], self.n)
                self.first_of[spec["column"]] = first
            else:
                work[col] = _concat(self._pieces[col])
        self._pieces = {}
        pa.default_memory_pool().release_unused()   # the duplicate check's hash table
        self._all_lines = np.concatenate(self._lines)
        self._all_files = np.concatenate(self._file_codes)
        self._file_names = np.array(list(self._files), dtype=object)
        self._lines = self._file_codes = []
        self.rows = check_rows(pd.DataFrame(work, index=pd.RangeIndex(self.n)), self.doc,
                                    self.params, self.where)
        self.bad = (np.logical_or.reduce(list(self.rows.masks.values())) if self.rows.masks
                    else np.zeros(self.n, dtype=bool))

    def _place(self, pos: int) -> str:
        """`<file> line <n>` of the delivery's row at position `pos`."""
        return f"{self._file_names[self._all_files[pos]]} line {self._all_lines[pos]}"

    # -- pass 2 --------------------------------------------------------------------------------
    def split(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Pass 2: the next chunk (the same chunks, in the same order, as pass 1) →
        (quarantined rows, accepted rows); see _quarantined_rows and _accepted_rows."""
        df, notes = self._cleaned(df)
        part = slice(self._offset, self._offset + len(df))
        self._offset += len(df)
        masks = {reason: mask[part] for reason, mask in self.rows.masks.items()}
        failures = [replace(f, mask=f.mask[part]) for f in self.rows.failures]
        bad = self.bad[part]
        details = row_details(SourceContext(
            self.source_id, self.kind, self.date_format, self.date_format_declared,
            self.derived, self.params, self.forbidden,
            {col: first[part] for col, first in self.first_of.items()}, self._place),
            df, failures)
        files, lines = df["_file"].to_numpy(dtype=object), df["_line"].to_numpy()
        for name, count in zip(*np.unique(files[bad], return_counts=True)) if bad.any() else ():
            self._bad_per_file[name] = self._bad_per_file.get(name, 0) + int(count)
        for reason, by_pos in details.by_reason.items():
            seen = self._reasons.setdefault(reason, [0, None, None, None])
            if seen[0] == 0:
                pos = min(by_pos)
                seen[1:] = files[pos], lines[pos], by_pos[pos]
            seen[0] += len(by_pos)
        quarantined = quarantined_rows(df, masks, bad, self.contract, self.forbidden,
                                        self.source_id, self.month, details)
        if notes:
            self._note_padding(quarantined, notes, bad, files, lines)
        return quarantined, accepted_rows(df, ~bad, self.contract, self._derive_context(df))

    def _note_padding(self, quarantined: pd.DataFrame, notes: dict[int, str], bad: np.ndarray,
                      files, lines) -> None:
        """Count the chunk's rows that lost padding; a quarantined one's detail says so."""
        first = min(notes)
        self._padding["rows"] = self._padding.get("rows", 0) + len(notes)
        self._padding.setdefault("example", (files[first], int(lines[first]), notes[first]))
        detail = quarantined["detail"].to_numpy(dtype=object).copy()
        for i, pos in enumerate(np.flatnonzero(bad).tolist()):
            if pos in notes:
                detail[i] = f"{detail[i]}; {notes[pos]}" if detail[i] else notes[pos]
        quarantined["detail"] = detail

    def finish(self) -> Verdict:
        """GX runs the batch-level suite on the delivery's `_quarantined` column: may the
        delivery proceed? (after every chunk went through split)."""
        if self._offset != self.n:          # a real check: `assert` is gone under python -O
            raise RuntimeError(f"{self.source_id} {self.month}: {self._offset} of {self.n} rows "
                               "split before finish (split every chunk of pass 1 first)")
        batch_ok, batch_errors, batch_result = check_batch(
            self.bad, self.doc, self.params, self.min_bad_rows, self.max_bad, self.where,
            lambda: refusal_summary(self._landed_per_file, self._bad_per_file, self._reasons))
        n_bad = int(self.bad.sum())
        counts = {
            "landed": self.n,
            "accepted": self.n - n_bad,
            "quarantined": n_bad,
            "by_reason": {reason: int(mask.sum()) for reason, mask
                          in sorted(self.rows.masks.items()) if mask.any()},
        }
        gx_success = batch_ok and not self.rows.gx_failed
        gx_results = json.loads(json.dumps({
            "suite": self.doc["name"],
            "suite_files": self.doc["meta"]["citycredit"]["files"],
            "source_id": self.source_id,
            "month": self.month,
            "parameters": self.params,
            "success": gx_success,
            "rows": kept_results(self.rows.result.to_json_dict()),
            "batch": kept_results(batch_result.to_json_dict()),
        }, default=str))
        return Verdict(counts, gx_success, gx_results, self.rows.errors + batch_errors,
                       dict(self._padding))


def validate_batch(raw: RawBatch, source_id: str, source_conf: dict, month: str,
                   catalogue_items: dict, settings: dict, *,
                   expectations_dir: Path | None = None) -> ValidationResult:
    """Validate one landed delivery with its GX suite; split accepted / quarantined rows.
    (A delivery read whole; DeliveryChecks does the same chunk by chunk.)

    `settings` is the `validation` section of the configuration (max_bad_share, min_bad_rows,
    forbidden_columns; optional `sources` (the sources catalogue, for appeals' source_id check)
    and `expectations_dir`); a dict with a `validation` key or a config.Settings works too.
    `catalogue_items`: item_code → set of allowed levels, or None for an item without levels
    (a rules.Catalogue is accepted as well).

    Only when `gx_success` is true (and `batch_errors` is empty) may `accepted` go on to silver;
    `quarantined` is complete either way (every landed row is in exactly one of the two).
    Raises SuiteError for a broken suite file.
    """
    checks = DeliveryChecks(source_id, source_conf, month, catalogue_items, settings,
                            expectations_dir=expectations_dir, kind=raw.kind)
    checks.add(raw.data)
    checks.run_row_checks()
    quarantined, accepted = checks.split(raw.data)
    verdict = checks.finish()
    if verdict.counts["landed"] != len(accepted) + len(quarantined):     # not `assert`: kept
        raise RuntimeError(                                                 # under python -O
            f"{source_id} {month}: {verdict.counts['landed']} rows landed but {len(accepted)} "
            f"accepted + {len(quarantined)} quarantined: a row was lost or counted twice")
    return ValidationResult(accepted, quarantined, verdict.counts, verdict.gx_success,
                            verdict.gx_results, verdict.batch_errors)
