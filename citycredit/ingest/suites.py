"""The GX suites of validation (ingest.validate, whose docstring describes the suite files and
their `meta`): finding and merging a source's suite files, building GX ExpectationSuites from
them, running GX on a frame, the suite parameters of a run, and the results as kept (values
stripped) and rendered as Data Docs.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from ..config import PROJECT_ROOT, configured_sources, load_grantees
from ..months import last_day
from .derive import DERIVATIONS

DEFAULT_EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


class SuiteError(ValueError):
    """A suite file is broken (unreadable, unknown expectation, missing meta); names the file."""


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


def gx_suite(doc: dict, level: str):
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
STRIPPED_RESULT_KEYS = ("unexpected_list", "partial_unexpected_list", "partial_unexpected_counts",
          "unexpected_index_list", "unexpected_index_query", "unexpected_rows")


def run_gx(df: pd.DataFrame, suite, params: dict):
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    return batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters=params)


def gx_exception(result) -> str | None:
    info = result.exception_info or {}
    if isinstance(info, dict):
        if info.get("raised_exception"):
            return str(info.get("exception_message"))
        for value in info.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                return str(value.get("exception_message"))
    return None


def kept_results(result_json: dict) -> dict:
    """GX results as kept per run: counts and percentages, no row values or full index lists."""
    for r in result_json.get("results", []):
        res = r.get("result") or {}
        for key in STRIPPED_RESULT_KEYS:
            res.pop(key, None)
    return result_json


def _findings_sources(settings: dict) -> list[str]:
    sources = settings.get("sources")
    if sources is None:
        sources = configured_sources()
    return sorted(s for s, conf in sources.items() if conf.get("kind") == "findings")


def referenced_columns(expectations: list[dict]) -> list[str]:
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


def suite_parameters(source_conf: dict, catalogue: dict, month: str, max_bad: float,
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
        pages[part] = _page_view(DefaultJinjaPageView).render(document)
    return pages


_PAGE_VIEW: list = []


def _page_view(view_class):
    """One GX page view per process: each new view builds its own Jinja environment and compiles
    every template again (about 17 per page, profiled as 15 % of landing a month's sources);
    one view keeps them compiled."""
    if not _PAGE_VIEW:
        _PAGE_VIEW.append(view_class())
    return _PAGE_VIEW[0]
