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
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from ..config import PROJECT_ROOT, configured_sources, load_grantees
from ..config import forbidden_columns as configured_forbidden_columns
from ..identity import valid_id_numbers
from ..months import last_day
from .contracts import CONTRACTS, META_COLUMNS, Contract, RawBatch
from .details import CheckFailure, RowDetails, SourceContext, refusal_summary, row_details
from .quarantine import quarantine_raw

__all__ = [
    "DERIVATIONS", "REASON_CODES", "DeliveryChecks", "SuiteError", "ValidationResult",
    "Verdict", "duplicated_later",
    "load_suite", "parse_dates", "suite_files", "validate_batch",
]

DEFAULT_EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

# Every reason code the shipped suites and landing produce (a suite may add its own).
REASON_CODES = (
    "bad_id_number", "missing_required", "unknown_item", "item_not_allowed", "unknown_level",
    "bad_date", "date_after_month", "negative_quantity", "bad_quantity", "bad_status",
    "duplicate_record_id", "forbidden_field", "unknown_column", "encoding", "unparseable_row",
    # population / appeals
    "bad_district", "bad_residency", "duplicate_id_number", "duplicate_appeal_id",
    "unknown_source", "bad_outcome",
    # consents
    "unknown_grantee", "bad_purpose", "bad_date_order", "duplicate_consent_id",
)


class SuiteError(ValueError):
    """A suite file is broken (unreadable, unknown expectation, missing meta); names the file."""


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
# Helper computations (where GX has no built-in expectation)
# ------------------------------------------------------------------------------------------------

def _arrow_text(values: pd.Series) -> pa.Array:
    return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def _boolean(ok: np.ndarray, null: np.ndarray, index) -> pd.Series:
    return pd.Series(pd.arrays.BooleanArray(np.asarray(ok, dtype=bool) & ~null, null), index=index)


def parse_dates(values: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    """(dates as date32, ok) for text under a strptime pattern; strict: the text must be exactly
    what the pattern writes for that date (ISO: `2026-1-5` is not `2026-01-05`). Parsed once per
    distinct value. Null in → NA in both; unparseable → NA date, False ok."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed: list = []
    good = np.zeros(len(uniques) + 1, dtype=bool)   # last slot: the NA sentinel
    for i, text in enumerate(uniques):
        try:
            day = _dt.datetime.strptime(text, date_format).date()
            if day.strftime(date_format) != text:
                raise ValueError
        except (ValueError, TypeError):
            parsed.append(None)
            continue
        parsed.append(day)
        good[i] = True
    table = pa.array(parsed + [None], type=pa.date32())
    idx = np.where(codes < 0, len(uniques), codes)
    dates = pd.Series(pd.array(pc.take(table, pa.array(idx)), dtype=pd.ArrowDtype(pa.date32())),
                      index=values.index)
    ok = pd.Series(pd.arrays.BooleanArray(good[idx], codes < 0), index=values.index)
    return dates, ok


@dataclass
class _DeriveContext:
    df: pd.DataFrame
    contract: Contract
    date_format: str
    catalogue_items: dict
    forbidden: frozenset
    cache: dict = field(default_factory=dict)

    def dates(self, column: str):
        if column not in self.cache:
            self.cache[column] = parse_dates(self.df[column], self.date_format)
        return self.cache[column]


def _d_valid_id_number(ctx: _DeriveContext, spec: dict) -> pd.Series:
    return valid_id_numbers(ctx.df[spec["column"]])


def _d_date_ok(ctx: _DeriveContext, spec: dict) -> pd.Series:
    return ctx.dates(spec["column"])[1]


def _d_date_value(ctx: _DeriveContext, spec: dict) -> pd.Series:
    return ctx.dates(spec["column"])[0]


def _d_decimal_value(ctx: _DeriveContext, spec: dict) -> pd.Series:
    """Numeric value (float, for sign/range checks only) of text matching `pattern`; else NaN."""
    arr = _arrow_text(ctx.df[spec["column"]])
    ok = pc.fill_null(pc.match_substring_regex(arr, spec["pattern"]), False)
    text = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    return pd.Series(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False),
                     index=ctx.df.index)


def _d_matches(ctx: _DeriveContext, spec: dict) -> pd.Series:
    """Does the text match `pattern` (pyarrow regex, vectorised; GX's own pandas regex runs
    Python's re row by row)? NA where null."""
    arr = _arrow_text(ctx.df[spec["column"]])
    null = arr.is_null().to_numpy(zero_copy_only=False)
    ok = pc.fill_null(pc.match_substring_regex(arr, spec["pattern"]), False)
    return _boolean(ok.to_numpy(zero_copy_only=False), null, ctx.df.index)


def first_occurrences(values) -> np.ndarray:
    """For each row, the position of the first earlier row with the same value (row order),
    or -1 (the first occurrence, or null): a duplicate can name what it repeats.

    `values`: a pandas Series or a pyarrow (Chunked)Array of text. Arrow's hash table encodes
    the column (exact string equality, no Python per row; one table across chunks, so codes
    agree between them); codes are handed out in order of first appearance, so a row is a
    first occurrence exactly when its code exceeds every code before it, and code k's first
    row is the k-th such row. Works on 32-bit codes: ~40 bytes a row besides Arrow's table."""
    arr = (pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
           if isinstance(values, pd.Series) else values)
    n = len(arr)
    first = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return first
    encoded = pc.dictionary_encode(arr)
    parts = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    codes = np.concatenate([pc.fill_null(part.indices, -1).to_numpy(zero_copy_only=False)
                            for part in parts])
    del encoded, parts
    seen_max = np.maximum.accumulate(codes)
    is_first = np.empty(n, dtype=bool)
    is_first[0] = codes[0] >= 0
    np.greater(codes[1:], seen_max[:-1], out=is_first[1:])
    del seen_max
    first_rows = np.flatnonzero(is_first)
    repeat = ~is_first & (codes >= 0)
    first[repeat] = first_rows[codes[repeat]]
    return first


def duplicated_later(values: pd.Series) -> np.ndarray:
    """True for the second and later occurrences of a value (in row order); nulls never."""
    return first_occurrences(values) >= 0


def _d_duplicated(ctx: _DeriveContext, spec: dict) -> pa.Array:
    """The chunk's part of a delivery-wide derivation: the key column as Arrow text. The whole
    delivery's column is `_duplicated_over` of all parts (DeliveryChecks)."""
    return _arrow_text(ctx.df[spec["column"]])


def _duplicated_over(parts: list[pa.Array], n: int) -> tuple[pd.Series, np.ndarray]:
    """True for the second and later rows with the same value (delivery order); NA where null;
    and the first occurrences (first_occurrences), kept for the quarantine's detail."""
    values = pa.chunked_array(parts, pa.string())
    first = first_occurrences(values)
    null = pc.is_null(values).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    return _boolean(first >= 0, null, pd.RangeIndex(n)), first


def _d_level_ok(ctx: _DeriveContext, spec: dict) -> pd.Series:
    """Is `level` one of the catalogue levels of the row's item? NA where there is no level or
    the item is missing / unknown (those rows have their own reason). An item without levels
    takes none."""
    item, level = _arrow_text(ctx.df[spec["item_column"]]), _arrow_text(ctx.df[spec["column"]])
    allowed = pa.array(sorted(f"{code}\x1f{lv}" for code, levels in ctx.catalogue_items.items()
                              for lv in (levels or ())), pa.string())
    known = pc.and_(pc.is_in(item, value_set=pa.array(sorted(ctx.catalogue_items), pa.string())),
                    pc.is_valid(level))
    known = pc.fill_null(known, False).to_numpy(zero_copy_only=False)
    pair = pc.binary_join_element_wise(item, level, "\x1f")
    ok = pc.fill_null(pc.is_in(pair, value_set=allowed), False).to_numpy(zero_copy_only=False)
    return _boolean(ok, ~known, ctx.df.index)


def _extra_keys(ctx: _DeriveContext, forbidden: bool) -> pd.Series:
    """The row's jsonl keys beyond the contract that are (not) forbidden; categorical, mostly
    null (cheap for GX to test for null)."""
    extra = ctx.df["_extra"]
    out = np.full(len(extra), None, dtype=object)
    for pos in np.flatnonzero(extra.notna().to_numpy()):
        keys = [k for k in extra.iat[pos].split(";") if (k in ctx.forbidden) == forbidden]
        out[pos] = ";".join(keys) if keys else None
    return pd.Series(pd.Categorical(out), index=extra.index)


def _d_forbidden_keys(ctx: _DeriveContext, spec: dict) -> pd.Series:
    return _extra_keys(ctx, True)


def _d_unknown_keys(ctx: _DeriveContext, spec: dict) -> pd.Series:
    return _extra_keys(ctx, False)


#: derivations whose value for a row depends on the whole delivery: each chunk gives its part
#: (DERIVATIONS), combined once every chunk is in (DeliveryChecks.run_row_checks)
_DELIVERY_WIDE = {"duplicated": _duplicated_over}

DERIVATIONS: dict[str, Callable[[_DeriveContext, dict], pd.Series]] = {
    "valid_id_number": _d_valid_id_number,
    "date_ok": _d_date_ok,
    "date_value": _d_date_value,
    "decimal_value": _d_decimal_value,
    "matches": _d_matches,
    "duplicated": _d_duplicated,
    "level_ok": _d_level_ok,
    "forbidden_keys": _d_forbidden_keys,
    "unknown_keys": _d_unknown_keys,
}


# ------------------------------------------------------------------------------------------------
# Suites
# ------------------------------------------------------------------------------------------------

def suite_files(source_id: str, kind: str, expectations_dir: Path | None = None) -> list[Path]:
    """The kind's suite and, if present, the source's override (in merge order)."""
    folder = Path(expectations_dir or DEFAULT_EXPECTATIONS_DIR)
    files = [folder / f"kind.{kind}.json"]
    override = folder / f"{source_id}.json"
    if override.is_file():
        files.append(override)
    return files


def _read_suite_file(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: expectation suite not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: not a readable JSON suite: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations", []), list):
        raise SuiteError(f"{path}: a suite is an object with an 'expectations' list")
    for i, exp in enumerate(doc.get("expectations", [])):
        meta = exp.get("meta") if isinstance(exp, dict) else None
        if not isinstance(meta, dict) or not meta.get("check"):
            raise SuiteError(f"{path}: expectation #{i + 1} has no meta.check id")
        if meta.get("level") != "batch" and not meta.get("reason"):
            raise SuiteError(f"{path}: expectation '{meta['check']}' has no meta.reason "
                             f"(row-level expectations name their quarantine reason)")
    return doc


def load_suite(source_id: str, kind: str, expectations_dir: Path | None = None) -> dict:
    """The merged suite document (GX ExpectationSuite JSON) for a source."""
    files = suite_files(source_id, kind, expectations_dir)
    doc = _read_suite_file(files[0])
    merged = {
        "name": doc.get("name") or f"kind.{kind}",
        "expectations": list(doc.get("expectations", [])),
        "meta": json.loads(json.dumps(doc.get("meta") or {})),
        "notes": doc.get("notes"),
    }
    cc = merged["meta"].setdefault("citycredit", {})
    cc.setdefault("derived_columns", {})
    cc["files"] = [str(files[0].name)]
    for path in files[1:]:
        over = _read_suite_file(path)
        occ = (over.get("meta") or {}).get("citycredit", {})
        drop = set(occ.get("remove_checks", []))
        replaced = {e["meta"]["check"]: e for e in over.get("expectations", [])}
        result = []
        for exp in merged["expectations"]:
            check = exp["meta"]["check"]
            if check in drop:
                continue
            result.append(replaced.pop(check, exp))
        result.extend(e for e in over.get("expectations", []) if e["meta"]["check"] in replaced)
        merged["expectations"] = result
        cc["derived_columns"].update(occ.get("derived_columns", {}))
        cc["files"].append(path.name)
        merged["name"] = f"{merged['name']}+{over.get('name') or path.stem}"
    checks = [e["meta"]["check"] for e in merged["expectations"]]
    repeated = sorted({c for c in checks if checks.count(c) > 1})
    if repeated:
        raise SuiteError(f"{', '.join(cc['files'])}: check id(s) {', '.join(repeated)} repeated")
    for name, spec in cc["derived_columns"].items():
        if not name.startswith("_") or spec.get("function") not in DERIVATIONS:
            raise SuiteError(f"{', '.join(cc['files'])}: derived column {name!r}: names start "
                             f"with '_' and 'function' is one of {', '.join(DERIVATIONS)}")
    return merged


def _gx_suite(doc: dict, level: str):
    """Build a GX ExpectationSuite of the row- or batch-level expectations of a merged document;
    GX only logs an expectation it cannot build, so we check every one made it."""
    import great_expectations as gx

    exps = [e for e in doc["expectations"]
            if (e["meta"].get("level") == "batch") == (level == "batch")]
    suite = gx.ExpectationSuite(name=f"{doc['name']}:{level}", expectations=exps,
                                meta=doc["meta"], notes=doc.get("notes"))
    if len(suite.expectations) != len(exps):
        built = {e.meta.get("check") for e in suite.expectations}
        lost = [e["meta"]["check"] for e in exps if e["meta"]["check"] not in built]
        raise SuiteError(f"{', '.join(doc['meta']['citycredit']['files'])}: GX cannot build "
                         f"expectation(s) {', '.join(lost)} (unknown type or bad kwargs)")
    return suite


_GX_STATE: dict = {}


def _batch_definition():
    """One ephemeral GX context for the process: pandas source → dataframe asset → whole-frame
    batch definition; each validation passes its own DataFrame as a batch parameter."""
    if "bd" not in _GX_STATE:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")   # no telemetry from a warehouse
        import great_expectations as gx

        logging.getLogger("great_expectations").setLevel(logging.WARNING)   # ~200 INFO lines a run
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        asset = context.data_sources.add_pandas("citycredit").add_dataframe_asset("delivery")
        _GX_STATE["context"] = context
        _GX_STATE["bd"] = asset.add_batch_definition_whole_dataframe("whole_delivery")
    return _GX_STATE["bd"]


_RESULT_FORMAT = {"result_format": "COMPLETE", "exclude_unexpected_values": True,
                  "partial_unexpected_count": 20, "return_unexpected_index_query": False}
_STRIP = ("unexpected_list", "partial_unexpected_list", "partial_unexpected_counts",
          "unexpected_index_list", "unexpected_index_query", "unexpected_rows")


def _run(df: pd.DataFrame, suite, params: dict):
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    return batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters=params)


def _exception(result) -> str | None:
    info = result.exception_info or {}
    if isinstance(info, dict):
        if info.get("raised_exception"):
            return str(info.get("exception_message"))
        for value in info.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                return str(value.get("exception_message"))
    return None


def _kept(result_json: dict) -> dict:
    """GX results as kept per run: counts and percentages, no row values or full index lists."""
    for r in result_json.get("results", []):
        res = r.get("result") or {}
        for key in _STRIP:
            res.pop(key, None)
    return result_json


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


def _findings_sources(settings: dict) -> list[str]:
    sources = settings.get("sources")
    if sources is None:
        sources = configured_sources()
    return sorted(s for s, conf in sources.items() if conf.get("kind") == "findings")


def _catalogue_dict(catalogue_items) -> dict[str, set | None]:
    if hasattr(catalogue_items, "items") and not isinstance(catalogue_items, dict):
        catalogue_items = catalogue_items.items          # a citycredit.rules.Catalogue
    out = {}
    for code, levels in dict(catalogue_items).items():
        if hasattr(levels, "levels"):                   # a citycredit.rules.Item
            levels = levels.levels
        out[str(code)] = set(levels) if levels else None
    return out


def _referenced_columns(expectations: list[dict]) -> list[str]:
    """Columns an expectation list reads: `column` kwargs and row_condition columns."""
    seen: dict[str, None] = {}

    def walk(node, key=None):
        if isinstance(node, dict):
            if key == "column" and isinstance(node.get("name"), str):
                seen.setdefault(node["name"])
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("column", "column_A", "column_B"):
            seen.setdefault(node)

    for exp in expectations:
        if exp["meta"].get("level") != "batch":
            kwargs = exp.get("kwargs", {})
            walk(kwargs)
            for col in kwargs.get("column_list", []) or []:
                seen.setdefault(col)
    return list(seen)


@dataclass
class _RowChecks:
    """What the row-level suite found: rows per reason code, and checks that could not run."""

    masks: dict[str, np.ndarray]
    rules: list[tuple[str, dict]]
    failures: list[CheckFailure]   # per expectation, its rows (after exclusive / unless)
    errors: list[str]
    gx_failed: bool          # GX could not evaluate a check, or a row check failed as a whole
    result: object           # GX's validation result (kept, values stripped)


def _suite_parameters(source_conf: dict, catalogue: dict, month: str, max_bad: float,
                      kind: str, settings: dict) -> dict:
    """The `{"$PARAMETER": …}` values the shipped suites use."""
    items = (source_conf or {}).get("items") or sorted(catalogue)
    params = {
        "catalogue_items": sorted(catalogue),
        "source_items": sorted(items),
        "month_start": f"{month}-01",
        "month_end": last_day(month).isoformat(),
        "max_bad_share": max_bad,
        "min_good_share": 1.0 - max_bad,
    }
    if kind == "appeals":
        params["findings_sources"] = _findings_sources(settings)
    if kind == "consents":      # conf/grantees.yaml of the conf folder in force
        params["grantees"] = sorted(settings.get("grantees") or load_grantees())
    return params


def _run_row_checks(work: pd.DataFrame, doc: dict, params: dict, where: str) -> _RowChecks:
    """Row-level expectations → a boolean mask of failing rows per reason code. A row fails
    with every reason it has, except that `exclusive` reasons (the row could not be read) stand
    alone and `unless` reasons give way to the ones named."""
    n = len(work)
    result = _run(work, _gx_suite(doc, "row"), params)
    masks: dict[str, np.ndarray] = {}
    rules: list[tuple[str, dict]] = []
    failures: list[CheckFailure] = []
    suite_kwargs = {e["meta"]["check"]: e.get("kwargs", {}) for e in doc["expectations"]}
    errors: list[str] = []
    gx_failed = False
    for r in result.results:
        meta = r.expectation_config.meta or {}
        problem = _exception(r)
        if problem is not None:
            errors.append(f"{where}: GX could not evaluate check '{meta.get('check')}': {problem}")
            gx_failed = True
            continue
        reason = meta["reason"]
        index = r.result.get("unexpected_index_list")
        if index is None and not r.success:
            errors.append(f"{where}: check '{meta.get('check')}' failed for the batch as a whole")
            gx_failed = True
            continue
        mask = masks.setdefault(reason, np.zeros(n, dtype=bool))
        own = np.zeros(n, dtype=bool)
        if index:
            own[np.asarray(index, dtype=np.int64)] = True
            mask |= own
        rules.append((reason, meta))
        # the suite's own kwargs: GX's result carries them with the parameters filled in
        failures.append(CheckFailure(meta.get("check"), reason, r.expectation_config.type,
                                     suite_kwargs.get(meta.get("check"), {}), meta, own))
        for key in _STRIP:      # the rows are in `masks` now; keep the kept results small
            r.result.pop(key, None)
    exclusive = [reason for reason, meta in rules if meta.get("exclusive")]
    if exclusive:
        stop = np.logical_or.reduce([masks[r] for r in exclusive])
        for reason in masks:
            if reason not in exclusive:
                masks[reason] &= ~stop
    for reason, meta in rules:
        for other in meta.get("unless", []):
            if other in masks:
                masks[reason] &= ~masks[other]
    for failure in failures:
        failure.mask &= masks[failure.reason]
    return _RowChecks(masks, rules, failures, errors, gx_failed, result)


def _run_batch_checks(bad: np.ndarray, doc: dict, params: dict, min_bad_rows: int,
                      max_bad: float, where: str, summary) -> tuple[bool, list[str], object]:
    """Batch-level expectations on the one-column frame `_quarantined`: GX decides whether the
    delivery may proceed. → (GX's verdict, problems, GX's result). `summary()` says which
    files and reasons the bad rows are (details.refusal_summary), for a bad-share refusal."""
    n, n_bad = len(bad), int(bad.sum())
    params = dict(params)
    # a share of a handful of rows is noise: the bound applies from validation.min_bad_rows on
    if n_bad < min_bad_rows:
        params["min_good_share"] = 0.0
    result = _run(pd.DataFrame({"_quarantined": bad}), _gx_suite(doc, "batch"), params)
    share = n_bad / n if n else 0.0
    errors, could_not = [], False
    for r in result.results:
        meta = r.expectation_config.meta or {}
        problem = _exception(r)
        if problem is not None:
            errors.append(f"{where}: GX could not evaluate batch check '{meta.get('check')}': "
                          f"{problem}")
            could_not = True
        elif not r.success:
            if meta.get("check") == "bad_share":
                errors.append(f"{where}: {n_bad} of {n} rows quarantined, bad share "
                              f"{share:.2%} > max_bad_share {max_bad:.2%}. {summary()}")
            else:
                errors.append(f"{where}: batch check '{meta.get('check')}' failed"
                              + (f" ({meta['description']})" if meta.get("description") else ""))
    return bool(result.success) and not could_not, errors, result


def _quarantined_rows(df: pd.DataFrame, masks: dict[str, np.ndarray], bad: np.ndarray,
                      contract: Contract, forbidden: frozenset, source_id: str,
                      month: str, details: RowDetails) -> pd.DataFrame:
    """Columns source_id, month, file, line (int64), reasons (';'-joined, sorted), detail
    (what is wrong, reason by reason, without personal data: ingest.details), raw (the
    delivered content, names and forbidden fields masked)."""
    bad_pos = np.flatnonzero(bad)
    reason_lists: list[list[str]] = [[] for _ in bad_pos]
    slot = np.full(len(df), -1, dtype=np.int64)
    slot[bad_pos] = np.arange(len(bad_pos))
    for reason in sorted(masks):
        for pos in np.flatnonzero(masks[reason]):
            reason_lists[slot[pos]].append(reason)
    rows = df.iloc[bad_pos]
    return pd.DataFrame({
        "source_id": pd.Series([source_id] * len(bad_pos), dtype=object),
        "month": pd.Series([month] * len(bad_pos), dtype=object),
        "file": rows["_file"].to_numpy(dtype=object),
        "line": rows["_line"].to_numpy(dtype=np.int64),
        "reasons": pd.Series([";".join(r) for r in reason_lists], dtype=object),
        "detail": pd.Series(details.of_rows(bad_pos.tolist()), dtype=object),
        "raw": pd.Series(quarantine_raw(rows, contract, forbidden), dtype=object),
    })


def _accepted_rows(df: pd.DataFrame, good: np.ndarray, contract: Contract,
                   ctx: _DeriveContext) -> pd.DataFrame:
    """The contract's columns typed (dates date32, decimals decimal(18,4), the rest text), the
    name dropped (SPEC §7: names are not kept past validation), plus _file and _line."""
    accepted = {}
    for col in contract.columns:
        if col == "name":
            continue
        if col in contract.dates:
            accepted[col] = ctx.dates(col)[0][good].reset_index(drop=True)
        elif col in contract.decimals:
            text = pa.array(df[col][good].to_numpy(dtype=object), type=pa.string())
            accepted[col] = pd.Series(pd.array(pc.cast(text, pa.decimal128(18, 4)),
                                               dtype=pd.ArrowDtype(pa.decimal128(18, 4))))
        else:
            accepted[col] = df[col][good].reset_index(drop=True)
    accepted["_file"] = df["_file"][good].reset_index(drop=True)
    accepted["_line"] = df["_line"][good].reset_index(drop=True)
    return pd.DataFrame(accepted)


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
        self.params = _suite_parameters(source_conf, self.catalogue, month, self.max_bad,
                                        self.kind, settings)
        self.derived = self.doc["meta"]["citycredit"]["derived_columns"]
        self.columns = _referenced_columns(self.doc["expectations"])
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
        self.rows: _RowChecks | None = None
        self.bad: np.ndarray | None = None
        self.first_of: dict[str, np.ndarray] = {}
        self._offset = 0
        self._bad_per_file: dict[str, int] = {}
        self._reasons: dict[str, list] = {}     # reason → [rows, file, line, detail] (first)

    def _derive_context(self, df: pd.DataFrame) -> _DeriveContext:
        return _DeriveContext(df, self.contract, self.date_format, self.catalogue, self.forbidden)

    # -- pass 1 --------------------------------------------------------------------------------
    def add(self, df: pd.DataFrame) -> None:
        """Pass 1: the next chunk's check columns (RawBatch.data rows)."""
        df = df.reset_index(drop=True)
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
            if spec and spec["function"] in _DELIVERY_WIDE:
                work[col], first = _DELIVERY_WIDE[spec["function"]](self._pieces[col], self.n)
                self.first_of[spec["column"]] = first
            else:
                work[col] = _concat(self._pieces[col])
        self._pieces = {}
        pa.default_memory_pool().release_unused()   # the duplicate check's hash table
        self._all_lines = np.concatenate(self._lines)
        self._all_files = np.concatenate(self._file_codes)
        self._file_names = np.array(list(self._files), dtype=object)
        self._lines = self._file_codes = []
        self.rows = _run_row_checks(pd.DataFrame(work, index=pd.RangeIndex(self.n)), self.doc,
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
        df = df.reset_index(drop=True)
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
        quarantined = _quarantined_rows(df, masks, bad, self.contract, self.forbidden,
                                        self.source_id, self.month, details)
        return quarantined, _accepted_rows(df, ~bad, self.contract, self._derive_context(df))

    def finish(self) -> Verdict:
        """GX runs the batch-level suite on the delivery's `_quarantined` column: may the
        delivery proceed? (after every chunk went through split)."""
        assert self._offset == self.n, "split every chunk of pass 1 before finish"
        batch_ok, batch_errors, batch_result = _run_batch_checks(
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
            "rows": _kept(self.rows.result.to_json_dict()),
            "batch": _kept(batch_result.to_json_dict()),
        }, default=str))
        return Verdict(counts, gx_success, gx_results, self.rows.errors + batch_errors)


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
    assert verdict.counts["landed"] == len(accepted) + len(quarantined), verdict.counts
    return ValidationResult(accepted, quarantined, verdict.counts, verdict.gx_success,
                            verdict.gx_results, verdict.batch_errors)


def data_docs_pages(gx_results: dict) -> dict[str, str]:
    """GX Data Docs (HTML) of a kept validation: one page per suite run ('rows', 'batch').

    Rendered from the kept JSON, which holds counts and row indexes but no row values, so the
    pages are as safe to share as the JSON."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    pages = {}
    for part in ("rows", "batch"):
        kept = gx_results[part]
        results = [ExpectationValidationResult(
            success=r["success"], expectation_config=ExpectationConfiguration(**r["expectation_config"]),
            result=r.get("result") or {}, meta=r.get("meta"), exception_info=r.get("exception_info"))
            for r in kept["results"]]
        suite = ExpectationSuiteValidationResult(
            success=kept["success"], results=results, suite_name=kept.get("suite_name") or part,
            statistics=kept.get("statistics"), meta=kept.get("meta"))
        document = ValidationResultsPageRenderer().render(suite)
        pages[part] = DefaultJinjaPageView().render(document)
    return pages
