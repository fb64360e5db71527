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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import PROJECT_ROOT, configured_sources, load_grantees
from ..config import forbidden_columns as configured_forbidden_columns
from ..identity import valid_id_numbers
from ..months import last_day
from .contracts import CONTRACTS, Contract, RawBatch
from .details import CheckFailure, RowDetails, SourceContext, refusal_summary, row_details
from .quarantine import quarantine_raw

__all__ = [
    "DERIVATIONS", "REASON_CODES", "SuiteError", "ValidationResult", "duplicated_later",
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


def first_occurrences(values: pd.Series) -> np.ndarray:
    """For each row, the position of the first earlier row with the same value (row order),
    or -1 (the first occurrence, or null): a duplicate can name what it repeats.

    Sorts 64-bit hashes (pandas' hash_array: ~0.7 s for 2.25 M identity numbers, against ~1.3 s
    for Series.duplicated on object strings) and then compares the actual strings inside each
    group of equal hashes, so a hash collision can never make a false duplicate."""
    arr = values.to_numpy(dtype=object)
    n = len(arr)
    first = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return first
    h = pd.util.hash_array(arr, categorize=False)
    order = np.argsort(h, kind="stable")          # stable: row order inside a hash group
    hs = h[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = hs[1:] == hs[:-1]
    if not same.any():
        return first
    starts = np.flatnonzero(~same)
    group = np.cumsum(~same) - 1
    ends = np.append(starts[1:], n)
    for g in np.unique(group[same]):
        seen: dict = {}
        for m in order[starts[g]:ends[g]]:
            v = arr[m]
            if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                continue
            first[m] = seen.setdefault(v, m)
    first[first == np.arange(n)] = -1
    return first


def duplicated_later(values: pd.Series) -> np.ndarray:
    """True for the second and later occurrences of a value (in row order); nulls never."""
    return first_occurrences(values) >= 0


def _d_duplicated(ctx: _DeriveContext, spec: dict) -> pd.Series:
    """True for the second and later rows with the same value (delivery order); NA where null.
    The first occurrences are kept for the quarantine's detail (`first_of`)."""
    s = ctx.df[spec["column"]]
    first = first_occurrences(s)
    ctx.cache[("first_of", spec["column"])] = first
    return _boolean(first >= 0, s.isna().to_numpy(), s.index)


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


def _gx_frame(df: pd.DataFrame, doc: dict, ctx: _DeriveContext, kind: str) -> pd.DataFrame:
    """The frame GX validates: only the columns its expectations read, helper columns computed
    first. Low-cardinality text goes in as categoricals (GX copies the frame per filter and
    hashes it per batch); unique keys reach GX only through their helper columns."""
    derived = {name: DERIVATIONS[spec["function"]](ctx, spec)
               for name, spec in doc["meta"]["citycredit"]["derived_columns"].items()}
    work = {}
    for col in _referenced_columns(doc["expectations"]):
        if col in derived:
            work[col] = derived[col]
        elif col == "_error":
            work[col] = df[col].astype("category")
        elif col in df.columns:
            work[col] = df[col].astype("category") if df[col].dtype == object else df[col]
        else:
            raise SuiteError(f"{', '.join(doc['meta']['citycredit']['files'])}: an expectation "
                             f"reads column {col!r}, which is neither in the {kind} contract nor "
                             f"a derived column")
    return pd.DataFrame(work, index=df.index)


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


def validate_batch(raw: RawBatch, source_id: str, source_conf: dict, month: str,
                   catalogue_items: dict, settings: dict, *,
                   expectations_dir: Path | None = None) -> ValidationResult:
    """Validate one landed delivery with its GX suite; split accepted / quarantined rows.

    `settings` is the `validation` section of the configuration (max_bad_share, min_bad_rows,
    forbidden_columns; optional `sources` (the sources catalogue, for appeals' source_id check)
    and `expectations_dir`); a dict with a `validation` key or a config.Settings works too.
    `catalogue_items`: item_code → set of allowed levels, or None for an item without levels
    (a rules.Catalogue is accepted as well).

    Only when `gx_success` is true (and `batch_errors` is empty) may `accepted` go on to silver;
    `quarantined` is complete either way (every landed row is in exactly one of the two).
    Raises SuiteError for a broken suite file.
    """
    settings = _validation_settings(settings)
    kind = (source_conf or {}).get("kind") or raw.kind
    contract = CONTRACTS[kind]
    catalogue = _catalogue_dict(catalogue_items)
    forbidden = frozenset(c.lower() for c in settings.get("forbidden_columns")
                          or configured_forbidden_columns())
    max_bad = float(settings.get("max_bad_share", 0.05))
    doc = load_suite(source_id, kind, expectations_dir or settings.get("expectations_dir"))
    where = f"{source_id} {month}"

    df = raw.data.reset_index(drop=True)
    ctx = _DeriveContext(df, contract, (source_conf or {}).get("date_format") or "%Y-%m-%d",
                         catalogue, forbidden)
    params = _suite_parameters(source_conf, catalogue, month, max_bad, kind, settings)
    rows = _run_row_checks(_gx_frame(df, doc, ctx, kind), doc, params, where)
    bad = (np.logical_or.reduce(list(rows.masks.values())) if rows.masks
           else np.zeros(len(df), dtype=bool))
    details = row_details(SourceContext(
        source_id, kind, ctx.date_format, bool((source_conf or {}).get("date_format")),
        doc["meta"]["citycredit"]["derived_columns"], params, forbidden,
        {key[1]: first for key, first in ctx.cache.items()
         if isinstance(key, tuple) and key[0] == "first_of"}),
        df, rows.failures)
    batch_ok, batch_errors, batch_result = _run_batch_checks(
        bad, doc, params, int(settings.get("min_bad_rows", 0)), max_bad, where,
        lambda: refusal_summary(df, bad, details))

    quarantined = _quarantined_rows(df, rows.masks, bad, contract, forbidden, source_id, month,
                                    details)
    accepted = _accepted_rows(df, ~bad, contract, ctx)
    counts = {
        "landed": len(df),
        "accepted": len(accepted),
        "quarantined": len(quarantined),
        "by_reason": {reason: int(mask.sum()) for reason, mask in sorted(rows.masks.items())
                      if mask.any()},
    }
    assert counts["landed"] == counts["accepted"] + counts["quarantined"], counts
    gx_success = batch_ok and not rows.gx_failed
    gx_results = json.loads(json.dumps({
        "suite": doc["name"],
        "suite_files": doc["meta"]["citycredit"]["files"],
        "source_id": source_id,
        "month": month,
        "parameters": params,
        "success": gx_success,
        "rows": _kept(rows.result.to_json_dict()),
        "batch": _kept(batch_result.to_json_dict()),
    }, default=str))
    return ValidationResult(accepted, quarantined, counts, gx_success, gx_results,
                            rows.errors + batch_errors)


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
