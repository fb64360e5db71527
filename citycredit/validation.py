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
month_start, month_end, max_bad_share, min_good_share, findings_sources.

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
from typing import Any, Callable

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from citycredit.landing import CONTRACTS, Contract, RawBatch, default_forbidden_columns  # noqa: E402

__all__ = [
    "DERIVATIONS", "REASON_CODES", "SuiteError", "ValidationResult", "duplicated_later",
    "id_numbers_valid",
    "load_suite", "parse_dates", "suite_files", "validate_batch",
]

logging.getLogger("great_expectations").setLevel(logging.WARNING)

_PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXPECTATIONS_DIR = _PROJECT_ROOT / "expectations"

# Every reason code the shipped suites and landing produce (a suite may add its own).
REASON_CODES = (
    "bad_id_number", "missing_required", "unknown_item", "item_not_allowed", "unknown_level",
    "bad_date", "date_after_month", "negative_quantity", "bad_quantity", "bad_status",
    "duplicate_record_id", "forbidden_field", "unknown_column", "encoding", "unparseable_row",
    # population / appeals
    "bad_district", "bad_residency", "duplicate_id_number", "duplicate_appeal_id",
    "unknown_source", "bad_outcome",
)


class SuiteError(ValueError):
    """A suite file is broken (unreadable, unknown expectation, missing meta); names the file."""


@dataclass
class ValidationResult:
    accepted: pd.DataFrame        # typed contract columns (name dropped) + _file, _line
    quarantined: pd.DataFrame     # source_id, month, file, line, reasons (';'-joined), raw
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

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _arrow_text(values: pd.Series) -> pa.Array:
    return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def _boolean(ok: np.ndarray, null: np.ndarray, index) -> pd.Series:
    return pd.Series(pd.arrays.BooleanArray(np.asarray(ok, dtype=bool) & ~null, null), index=index)


def _team_id_validator() -> Callable[[str], bool]:
    """The project's definition of a valid identity number: citycredit.identity (built on
    stdnum.cn.ric) when present, else stdnum's own `ric.is_valid`."""
    try:
        from citycredit.identity import is_valid_id_number
        return is_valid_id_number
    except ImportError:  # pragma: no cover - identity.py ships with the project
        from stdnum.cn import ric
        return ric.is_valid


_CHECK_CHARS = "10X98765432"
_GUARD_SAMPLE = 256


def _representative(region: int, year: int) -> str:
    body = f"{region:06d}{year:04d}0101000"
    return body + _CHECK_CHARS[sum(int(c) * int(w) for c, w in zip(body, _ID_WEIGHTS)) % 11]


def id_numbers_valid(values: pd.Series) -> pd.Series:
    """Resident identity numbers valid per `citycredit.identity.is_valid_id_number`, vectorised.

    The structural part of GB 11643 — 18 characters (17 digits + 0-9/X/x), the ISO 7064
    MOD 11-2 check character, a real calendar birth date — runs in numpy over all rows; what
    is left of the team's definition (stdnum's "region code existed in the birth year") depends
    only on (region code, birth year), so it is asked once per distinct pair, with a
    representative number. A sample of rows is then checked against the team's function
    row by row; any disagreement (the definition grew a new rule) falls back to calling it for
    every distinct value, so landing never accepts a number that silver's `identity.birth_date`
    would refuse. Null stays null (NA).
    """
    valid = _team_id_validator()
    arr = _arrow_text(values)
    null = arr.is_null().to_numpy(zero_copy_only=False)
    fmt = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{17}[0-9Xx]$"), False)
    ok = np.zeros(len(arr), dtype=bool)
    pos = np.flatnonzero(fmt.to_numpy(zero_copy_only=False))
    if len(pos):
        cand = pc.filter(arr, fmt)
        offsets = np.frombuffer(cand.buffers()[1], dtype=np.int32)[cand.offset:cand.offset + 1]
        raw = np.frombuffer(cand.buffers()[2], dtype=np.uint8)
        b = raw[offsets[0]:offsets[0] + 18 * len(cand)].reshape(-1, 18)
        d = b[:, :17].astype(np.int64) - 48
        check = (12 - (d @ _ID_WEIGHTS) % 11) % 11
        last = np.where(b[:, 17] == ord("x"), ord("X"), b[:, 17])
        expected = np.where(check == 10, ord("X"), check + 48)
        y = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
        m = d[:, 10] * 10 + d[:, 11]
        day = d[:, 12] * 10 + d[:, 13]
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        mdays = _DAYS[np.clip(m, 0, 12)] + ((m == 2) & leap)
        struct = ((last == expected) & (y >= 1) & (m >= 1) & (m <= 12) & (day >= 1)
                  & (day <= mdays))
        region = d[:, :6] @ (10 ** np.arange(5, -1, -1, dtype=np.int64))
        keys = region[struct] * 10000 + y[struct]
        if len(keys):
            uniq, inverse = np.unique(keys, return_inverse=True)
            verdict = np.array([bool(valid(_representative(int(k) // 10000, int(k) % 10000)))
                                for k in uniq], dtype=bool)
            struct[np.flatnonzero(struct)] = verdict[inverse]
        ok[pos] = struct
    present = np.flatnonzero(~null)
    if len(present):
        sample = present[np.linspace(0, len(present) - 1, min(len(present), _GUARD_SAMPLE))
                         .astype(np.int64)]
        texts = values.to_numpy(dtype=object)
        if any(bool(valid(texts[i])) != ok[i] for i in sample):
            logging.getLogger(__name__).warning(
                "identity-number fast check disagrees with %s.%s; validating row by row",
                valid.__module__, valid.__name__)
            memo: dict = {}
            ok = np.array([False if v is None else memo.setdefault(v, bool(valid(v)))
                           for v in texts], dtype=bool)
    return _boolean(ok, null, values.index)


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
    return id_numbers_valid(ctx.df[spec["column"]])


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


def duplicated_later(values: pd.Series) -> np.ndarray:
    """True for the second and later occurrences of a value (in row order); nulls never.

    Sorts 64-bit hashes (pandas' hash_array: ~0.7 s for 2.25 M identity numbers, against ~1.3 s
    for Series.duplicated on object strings) and then compares the actual strings inside each
    group of equal hashes, so a hash collision can never make a false duplicate."""
    arr = values.to_numpy(dtype=object)
    n = len(arr)
    dup = np.zeros(n, dtype=bool)
    if n < 2:
        return dup
    h = pd.util.hash_array(arr, categorize=False)
    order = np.argsort(h, kind="stable")          # stable: row order inside a hash group
    hs = h[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = hs[1:] == hs[:-1]
    if not same.any():
        return dup
    starts = np.flatnonzero(~same)
    group = np.cumsum(~same) - 1
    ends = np.append(starts[1:], n)
    for g in np.unique(group[same]):
        seen = set()
        for m in order[starts[g]:ends[g]]:
            v = arr[m]
            if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                continue
            if v in seen:
                dup[m] = True
            else:
                seen.add(v)
    return dup


def _d_duplicated(ctx: _DeriveContext, spec: dict) -> pd.Series:
    """True for the second and later rows with the same value (delivery order); NA where null."""
    s = ctx.df[spec["column"]]
    return _boolean(duplicated_later(s), s.isna().to_numpy(), s.index)


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
        import great_expectations as gx

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
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

def _last_day(month: str) -> _dt.date:
    y, m = int(month[:4]), int(month[5:7])
    return _dt.date(y + m // 12, m % 12 + 1, 1) - _dt.timedelta(days=1)


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
        from citycredit.config import load_sources
        sources = load_sources(_PROJECT_ROOT / "conf" / "sources.yaml")
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


def _redact(raw: Any, error: Any, file: str, name: Any, forbidden: frozenset) -> str:
    """Quarantine keeps the delivered text, but not a name or a forbidden field (SPEC §7)."""
    if error is not None:
        return raw    # could not be read into fields: kept as delivered
    if str(file).lower().endswith(".jsonl"):
        masked = {"name"} | set(forbidden)
        try:
            obj = json.loads(raw)
            return json.dumps({k: ("***" if str(k).strip().lower() in masked and v is not None
                                   else v) for k, v in obj.items()}, ensure_ascii=False)
        except (ValueError, AttributeError):
            return raw
    return raw.replace(name, "***") if isinstance(name, str) and name else raw


def _quarantine_raw(qdf: pd.DataFrame, contract: Contract, forbidden: frozenset) -> list:
    """The `raw` of quarantined rows: the delivered text (csv record, jsonl line), or for parquet
    rows (no text) the row's fields as one JSON object; names and forbidden fields masked."""
    out = list(qdf["_raw"].to_numpy(dtype=object))
    has_text = qdf["_raw"].notna().to_numpy()
    rendered = np.flatnonzero(~has_text)
    if len(rendered):
        fields = qdf.iloc[rendered][list(contract.columns)].copy()
        if "name" in fields.columns:
            fields["name"] = fields["name"].where(fields["name"].isna(), "***")
        lines = fields.to_json(orient="records", lines=True, force_ascii=False).splitlines()
        for pos, line in zip(rendered, lines):
            out[pos] = line
    names = qdf["name"].to_numpy(dtype=object) if "name" in qdf.columns else None
    errors, files = qdf["_error"].to_numpy(dtype=object), qdf["_file"].to_numpy(dtype=object)
    for pos in np.flatnonzero(has_text):
        out[pos] = _redact(out[pos], errors[pos], files[pos],
                           names[pos] if names is not None else None, forbidden)
    return out


def validate_batch(raw: RawBatch, source_id: str, source_conf: dict, month: str,
                   catalogue_items: dict, settings: dict, *,
                   expectations_dir: Path | None = None) -> ValidationResult:
    """Validate one landed delivery with its GX suite; split accepted / quarantined rows.

    `settings` is the `validation` section of the configuration (max_bad_share,
    forbidden_columns; optional `sources` (the sources catalogue, for appeals' source_id check)
    and `expectations_dir`); a dict with a `validation` key or a config.Settings works too.
    `catalogue_items`: item_code → set of allowed levels, or None for an item without levels
    (a rules.Catalogue is accepted as well).

    Only when `gx_success` is true (and `batch_errors` is empty) may `accepted` go on to silver;
    `quarantined` is complete either way (every landed row is in exactly one of the two).
    """
    settings = _validation_settings(settings)
    kind = (source_conf or {}).get("kind") or raw.kind
    contract = CONTRACTS[kind]
    date_format = (source_conf or {}).get("date_format") or "%Y-%m-%d"
    catalogue = _catalogue_dict(catalogue_items)
    forbidden = frozenset(c.lower() for c in settings.get("forbidden_columns")
                          or default_forbidden_columns())
    max_bad = float(settings.get("max_bad_share", 0.05))
    doc = load_suite(source_id, kind, expectations_dir or settings.get("expectations_dir"))

    df = raw.data.reset_index(drop=True)
    n = len(df)
    ctx = _DeriveContext(df, contract, date_format, catalogue, forbidden)
    derived = {name: DERIVATIONS[spec["function"]](ctx, spec)
               for name, spec in doc["meta"]["citycredit"]["derived_columns"].items()}
    # GX gets only the columns its expectations read (it copies the frame per filter and hashes
    # it per batch); the sparse landing-error column as a categorical.
    work = {}
    for col in _referenced_columns(doc["expectations"]):
        if col in derived:
            work[col] = derived[col]
        elif col == "_error":
            work[col] = df[col].astype("category")
        elif col in df.columns:
            # low-cardinality text (unique keys reach GX through their helper columns):
            # categorical makes GX's repeated null / set tests and its batch hash cheap
            work[col] = df[col].astype("category") if df[col].dtype == object else df[col]
        else:
            raise SuiteError(f"{', '.join(doc['meta']['citycredit']['files'])}: an expectation "
                             f"reads column {col!r}, which is neither in the {kind} contract nor "
                             f"a derived column")
    work = pd.DataFrame(work, index=df.index)

    items = (source_conf or {}).get("items") or sorted(catalogue)
    params = {
        "catalogue_items": sorted(catalogue),
        "source_items": sorted(items),
        "month_start": f"{month}-01",
        "month_end": _last_day(month).isoformat(),
        "max_bad_share": max_bad,
        "min_good_share": 1.0 - max_bad,
    }
    if kind == "appeals":
        params["findings_sources"] = _findings_sources(settings)

    # ---- row-level expectations
    errors: list[str] = []
    row_res = _run(work, _gx_suite(doc, "row"), params)
    masks: dict[str, np.ndarray] = {}
    rules: list[tuple[str, dict]] = []
    for r in row_res.results:
        meta = r.expectation_config.meta or {}
        problem = _exception(r)
        if problem is not None:
            errors.append(f"{source_id} {month}: GX could not evaluate check "
                          f"'{meta.get('check')}': {problem}")
            continue
        reason = meta["reason"]
        index = r.result.get("unexpected_index_list")
        if index is None and not r.success:
            errors.append(f"{source_id} {month}: check '{meta.get('check')}' failed for the "
                          f"batch as a whole")
            continue
        mask = masks.setdefault(reason, np.zeros(n, dtype=bool))
        if index:
            mask[np.asarray(index, dtype=np.int64)] = True
        rules.append((reason, meta))
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
    bad = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(n, dtype=bool)

    # ---- batch-level expectations (GX decides whether the delivery may proceed)
    batch_frame = pd.DataFrame({"_quarantined": bad})
    batch_suite = _gx_suite(doc, "batch")
    n_bad = int(bad.sum())
    # a share of a handful of rows is noise: the bound applies from validation.min_bad_rows on
    if n_bad < int(settings.get("min_bad_rows", 0)):
        params["min_good_share"] = 0.0
    batch_res = _run(batch_frame, batch_suite, params)
    share = n_bad / n if n else 0.0
    for r in batch_res.results:
        meta = r.expectation_config.meta or {}
        problem = _exception(r)
        if problem is not None:
            errors.append(f"{source_id} {month}: GX could not evaluate batch check "
                          f"'{meta.get('check')}': {problem}")
        elif not r.success:
            if meta.get("check") == "bad_share":
                errors.append(f"{source_id} {month}: {n_bad} of {n} rows quarantined, bad share "
                              f"{share:.2%} > max_bad_share {max_bad:.2%}")
            else:
                errors.append(f"{source_id} {month}: batch check '{meta.get('check')}' failed"
                              + (f" ({meta['description']})" if meta.get("description") else ""))
    gx_success = bool(batch_res.success) and not any("GX could not" in e for e in errors)
    if any("failed for the batch" in e for e in errors):
        gx_success = False

    # ---- split
    bad_pos = np.flatnonzero(bad)
    reason_lists: list[list[str]] = [[] for _ in bad_pos]
    slot = np.full(n, -1, dtype=np.int64)
    slot[bad_pos] = np.arange(len(bad_pos))
    for reason in sorted(masks):
        for pos in np.flatnonzero(masks[reason]):
            reason_lists[slot[pos]].append(reason)
    qdf = df.iloc[bad_pos]
    raws = _quarantine_raw(qdf, contract, forbidden)
    quarantined = pd.DataFrame({
        "source_id": pd.Series([source_id] * len(bad_pos), dtype=object),
        "month": pd.Series([month] * len(bad_pos), dtype=object),
        "file": qdf["_file"].to_numpy(dtype=object),
        "line": qdf["_line"].to_numpy(dtype=np.int64),
        "reasons": pd.Series([";".join(r) for r in reason_lists], dtype=object),
        "raw": pd.Series(raws, dtype=object),
    })

    good = ~bad
    accepted = {}
    for col in contract.columns:
        if col == "name":
            continue    # SPEC §7: names are not kept past validation
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
    accepted_df = pd.DataFrame(accepted)

    counts = {
        "landed": n,
        "accepted": len(accepted_df),
        "quarantined": len(quarantined),
        "by_reason": {reason: int(mask.sum()) for reason, mask in sorted(masks.items())
                      if mask.any()},
    }
    assert counts["landed"] == counts["accepted"] + counts["quarantined"], counts

    gx_results = {
        "suite": doc["name"],
        "suite_files": doc["meta"]["citycredit"]["files"],
        "source_id": source_id,
        "month": month,
        "parameters": params,
        "success": gx_success,
        "rows": _kept(row_res.to_json_dict()),
        "batch": _kept(batch_res.to_json_dict()),
    }
    gx_results = json.loads(json.dumps(gx_results, default=str))
    return ValidationResult(accepted_df, quarantined, counts, gx_success, gx_results, errors)


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
