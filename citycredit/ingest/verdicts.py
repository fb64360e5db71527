"""What GX's results mean for the rows and the delivery (ingest.validate): the row-level
suite's failing rows per reason code (with `exclusive` and `unless` applied), the batch-level
suite's verdict on the delivery, and a chunk's rows split into quarantined (with reasons and
details) and accepted (typed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .contracts import Contract
from .derive import DeriveContext
from .details import CheckFailure, RowDetails
from .quarantine import quarantine_raw
from .suites import STRIPPED_RESULT_KEYS, gx_exception, gx_suite, run_gx


@dataclass
class RowChecks:
    """What the row-level suite found: rows per reason code, and checks that could not run."""

    masks: dict[str, np.ndarray]
    rules: list[tuple[str, dict]]
    failures: list[CheckFailure]   # per expectation, its rows (after exclusive / unless)
    errors: list[str]
    gx_failed: bool          # GX could not evaluate a check, or a row check failed as a whole
    result: object           # GX's validation result (kept, values stripped)


def check_rows(work: pd.DataFrame, doc: dict, params: dict, where: str) -> RowChecks:
    """Row-level expectations → a boolean mask of failing rows per reason code. A row fails
    with every reason it has, except that `exclusive` reasons (the row could not be read) stand
    alone and `unless` reasons give way to the ones named."""
    n = len(work)
    result = run_gx(work, gx_suite(doc, "row"), params)
    masks: dict[str, np.ndarray] = {}
    rules: list[tuple[str, dict]] = []
    failures: list[CheckFailure] = []
    suite_kwargs = {e["meta"]["check"]: e.get("kwargs", {}) for e in doc["expectations"]}
    errors: list[str] = []
    gx_failed = False
    for r in result.results:
        meta = r.expectation_config.meta or {}
        problem = gx_exception(r)
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
        for key in STRIPPED_RESULT_KEYS:      # the rows are in `masks` now; keep the kept results small
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
    _control_character_alone(work, doc, masks, failures)
    return RowChecks(masks, rules, failures, errors, gx_failed, result)


#: the reason of a control character inside a value (ingest.controls)
CONTROL_REASON = "control_character"


def _control_character_alone(work: pd.DataFrame, doc: dict, masks: dict[str, np.ndarray],
                             failures: list[CheckFailure]) -> None:
    """A control character inside a value is one problem with one reason: the row's other
    failures about that same column (a NUL inside an identity number is not also a bad
    identity number, nor a date a bad date) give way to `control_character`, in the failures
    and in `masks`. The column of a check on a derived column is the column it derives from."""
    if CONTROL_REASON not in masks or "_control_characters" not in work.columns:
        return
    held: dict[str, np.ndarray] = {}       # column → rows whose value holds a control
    for pos, columns in enumerate(work["_control_characters"].tolist()):
        if isinstance(columns, str):
            for column in columns.split(";"):
                held.setdefault(column, np.zeros(len(work), dtype=bool))[pos] = True
    if not held:
        return
    derived = doc.get("meta", {}).get("citycredit", {}).get("derived_columns", {})
    changed = set()
    for failure in failures:
        checked = failure.kwargs.get("column")
        column = (derived.get(checked) or {}).get("column", checked)
        if failure.reason != CONTROL_REASON and column in held and failure.mask.any():
            failure.mask &= ~held[column]
            changed.add(failure.reason)
    for reason in changed:
        masks[reason] = np.logical_or.reduce([f.mask for f in failures if f.reason == reason])


def check_batch(bad: np.ndarray, doc: dict, params: dict, min_bad_rows: int,
                      max_bad: float, where: str, summary) -> tuple[bool, list[str], object]:
    """Batch-level expectations on the one-column frame `_quarantined`: GX decides whether the
    delivery may proceed. → (GX's verdict, problems, GX's result). `summary()` says which
    files and reasons the bad rows are (details.refusal_summary), for a bad-share refusal."""
    n, n_bad = len(bad), int(bad.sum())
    params = dict(params)
    # a share of a handful of rows is noise: the bound applies from validation.min_bad_rows on
    if n_bad < min_bad_rows:
        params["min_good_share"] = 0.0
    result = run_gx(pd.DataFrame({"_quarantined": bad}), gx_suite(doc, "batch"), params)
    share = n_bad / n if n else 0.0
    errors, could_not = [], False
    for r in result.results:
        meta = r.expectation_config.meta or {}
        problem = gx_exception(r)
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


def quarantined_rows(df: pd.DataFrame, masks: dict[str, np.ndarray], bad: np.ndarray,
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


def accepted_rows(df: pd.DataFrame, good: np.ndarray, contract: Contract,
                   ctx: DeriveContext) -> pd.DataFrame:
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
