"""The deliberately bad rows and their ground truth.

About `bad_share` of each findings delivery's rows are extra, deliberately wrong rows (Binomial
per delivery; each run forces every reason at least once where it applies). Each is a copy of a
clean row of the delivery spoiled one way (BAD_REASONS). The ground truth goes to
`<landing>/_truth/`:

* bad_rows.csv: source_id, month, file, line (1 = first data row), reason;
* deliveries.csv: source_id, month, files, rows, bad_rows, new_records, corrections,
  revocations, manifest (0/1), one row per delivery of every source.
"""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from citycredit.identity import CHECK_CHARS

from .batches import (NO_DAY, NO_QUANTITY, ROW_CORRECTION, ROW_NEW, ROW_REVOCATION,
                      batch_size, concat_batches, new_batch, take_rows)
from .plan import last_day
from .population import SURNAMES

# Reason codes of the deliberately bad rows; the names are those of citycredit/ingest/validate.py
# REASON_CODES so that quarantine counts reconcile one to one.
BAD_REASONS = ["bad_id_number",        # wrong GB 11643 check character
               "unknown_item",         # item_code not in the catalogue
               "bad_date",             # occurred_on not parseable with the source's date format
               "date_after_month",     # occurred_on after the delivery month's last day
               "missing_required",     # record_id, id_number, item_code, occurred_on or status
               "negative_quantity",
               "duplicate_record_id",  # an exact copy of an earlier row of the same delivery
               "forbidden_field",      # jsonl row with an extra key such as "religion"
               "encoding"]             # utf-8 csv row whose bytes are gb18030
FAULT_CODE = {reason: i + 1 for i, reason in enumerate(BAD_REASONS)}   # 0 = clean row
MISSING_FIELDS = ["record_id", "id_number", "item_code", "occurred_on", "status"]
FORBIDDEN_FIELDS = [("religion", "佛教"), ("ethnicity", "汉族"), ("political_affiliation", "群众"),
                    ("religion", "基督教")]
_CHECK_ORDER = b"0123456789X"           # sorted check characters


def _breaks_utf8(char: str) -> bool:
    """True if char's gb18030 bytes, at the start of a field, can never be read as utf-8."""
    encoded = char.encode("gb18030")
    if encoded[0] < 0x80:
        return False
    if 0x80 <= encoded[0] <= 0xC1 or encoded[0] >= 0xF5:
        return True
    return len(encoded) < 2 or not (0x80 <= encoded[1] <= 0xBF)


# rows of persons with such a surname (the name field starts with it) can carry `encoding`
SURNAME_BREAKS_UTF8 = np.array([_breaks_utf8(c) for c in SURNAMES])


def applicable_reasons(source, has_quantity: bool) -> list:
    """The BAD_REASONS a delivery of the source can carry (in BAD_REASONS order)."""
    reasons = {"bad_id_number", "unknown_item", "date_after_month", "missing_required",
               "duplicate_record_id"}
    if source.format in ("csv", "jsonl"):
        reasons.add("bad_date")
    if has_quantity:
        reasons.add("negative_quantity")
    if source.format == "jsonl":
        reasons.add("forbidden_field")
    if source.is_utf8_csv:
        reasons.add("encoding")
    return [r for r in BAD_REASONS if r in reasons]


def _has_quantity(rows: dict) -> bool:
    return bool((rows["quantity"] != NO_QUANTITY).any())


class FaultPlanner:
    """Chooses the reasons of each month's bad rows, forcing every reason into the run once."""

    def __init__(self, bad_share: float):
        self.bad_share = bad_share
        self.not_yet_chosen = list(BAD_REASONS) if bad_share > 0 else []

    def choose(self, findings_sources: list, clean: dict, rngs: dict) -> dict:
        """source_id → list of reasons (one per bad row) for the month's findings deliveries;
        clean: source_id → the delivery's clean batch; rngs: source_id → its generator."""
        reasons = {}
        for source in findings_sources:
            rows = clean[source.source_id]
            n = batch_size(rows)
            rng = rngs[source.source_id]
            applicable = applicable_reasons(source, _has_quantity(rows))
            k = int(rng.binomial(n, self.bad_share)) if (n and self.bad_share > 0) else 0
            reasons[source.source_id] = list(rng.choice(applicable, size=k)) if k else []
        for reason in list(self.not_yet_chosen):
            if any(reason in chosen for chosen in reasons.values()):
                self.not_yet_chosen.remove(reason)
                continue
            largest = None        # the largest delivery the reason applies to
            for source in findings_sources:
                rows = clean[source.source_id]
                if batch_size(rows) and reason in applicable_reasons(source, _has_quantity(rows)):
                    if largest is None or batch_size(rows) > batch_size(clean[largest.source_id]):
                        largest = source
            if largest is not None:
                reasons[largest.source_id].append(reason)
                self.not_yet_chosen.remove(reason)
        return reasons


def bad_rows(plan, population, source, rng, month_index: int, clean: dict, reasons: list):
    """(bad batch, originals): the delivery's bad rows, grouped by reason in BAD_REASONS order,
    and for its duplicate_record_id rows (in their order) the clean row each one copies."""
    no_duplicates = np.zeros(0, np.int64)
    clean_count = batch_size(clean)
    if not reasons or clean_count == 0:
        return new_batch(0), no_duplicates
    reasons = np.array(reasons)
    parts, originals = [], no_duplicates
    for reason in BAD_REASONS:
        k = int((reasons == reason).sum())
        if not k:
            continue
        if reason == "negative_quantity":
            candidates = np.flatnonzero(clean["quantity"] != NO_QUANTITY)
        elif reason == "encoding":
            person = clean["person"]
            candidates = np.flatnonzero(SURNAME_BREAKS_UTF8[population.surname[
                np.maximum(person, 0)]] & (person >= 0))
            if not len(candidates):
                continue
        else:
            candidates = np.arange(clean_count)
        if reason == "duplicate_record_id":
            k = min(k, len(candidates))
            templates = np.sort(rng.choice(candidates, size=k, replace=False))
        else:
            templates = candidates[rng.integers(0, len(candidates), k)]
        rows = take_rows(clean, templates)
        rows["row_kind"][:] = ROW_NEW
        rows["locked"][:] = False
        rows["fault"][:] = FAULT_CODE[reason]
        rows["fault_variant"][:] = 0
        if reason == "duplicate_record_id":
            originals = templates        # keeps its record_id: the original comes first
        else:
            rows["serial"] = source.serials(k)
        _spoil(plan, source, rng, month_index, rows, reason, k)
        parts.append(rows)
    return concat_batches(parts), originals


def _spoil(plan, source, rng, month_index: int, rows: dict, reason: str, k: int) -> None:
    """Make the k copied rows wrong for `reason` (in place; some faults are only rendered by
    columns.finding_table, from fault_variant)."""
    if reason == "bad_id_number":
        rows["fault_variant"] = rng.integers(0, 10, k).astype(np.int8)
    elif reason == "unknown_item":
        rows["item"] = rng.choice(plan.unknown_item_indexes, size=k).astype(np.int16)
    elif reason == "bad_date":
        rows["fault_variant"] = rng.integers(
            0, len(junk_dates(source.date_format, month_index)), k).astype(np.int8)
    elif reason == "date_after_month":
        occurred = last_day(month_index) + rng.integers(1, 91, k)
        rows["occurred"] = occurred.astype(np.int32)
        rows["valid_until"] = np.where((rows["valid_until"] != NO_DAY)
                                       & (rows["valid_until"] < occurred), NO_DAY,
                                       rows["valid_until"]).astype(np.int32)
    elif reason == "missing_required":
        field = rng.integers(0, len(MISSING_FIELDS), k)      # index into MISSING_FIELDS
        rows["fault_variant"] = field.astype(np.int8)
        rows["serial"] = np.where(field == 0, -1, rows["serial"])
        rows["person"] = np.where(field == 1, -1, rows["person"]).astype(np.int32)
        rows["item"] = np.where(field == 2, -1, rows["item"]).astype(np.int16)
        rows["occurred"] = np.where(field == 3, NO_DAY, rows["occurred"]).astype(np.int32)
        rows["status"] = np.where(field == 4, -1, rows["status"]).astype(np.int8)
    elif reason == "negative_quantity":
        rows["quantity"] = -np.maximum(np.abs(rows["quantity"]), 100)
    elif reason == "forbidden_field":
        rows["fault_variant"] = rng.integers(0, len(FORBIDDEN_FIELDS), k).astype(np.int8)


def delivery_order(rng, clean_count: int, bad: dict, originals: np.ndarray) -> np.ndarray:
    """A random order of the delivery's rows (clean rows, then the bad batch) in which every
    duplicate comes after its original: the later occurrence is the bad one."""
    n = clean_count + batch_size(bad)
    order = rng.permutation(n)
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    duplicates = clean_count + np.flatnonzero(bad["fault"] == FAULT_CODE["duplicate_record_id"])
    if len(duplicates):
        swap = position[duplicates] < position[originals]
        early, original = duplicates[swap], originals[swap]
        order[position[early]], order[position[original]] = original, early
    return order


def junk_dates(date_format: str, month_index: int) -> list:
    """Dates of the delivery's year that neither its date format nor ISO can parse."""
    year = 1970 + month_index // 12
    candidates = [f"{year}-02-30", f"{year}/13/01", f"31.12.{year}", "N/A", f"{year}1345",
                  f"{year}-1-", f"{year}-06-31", "0000-00-00"]
    out = []
    for text in candidates:
        parses = 0
        for fmt in (date_format, "%Y-%m-%d"):
            try:
                dt.datetime.strptime(text, fmt)
                parses += 1
            except ValueError:
                pass
        if not parses:
            out.append(text)
    return out


def wrong_check_characters(check_bytes: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """ASCII check characters other than the given (correct) ones: the 1st-10th next in the
    MOD 11-2 table, chosen by variant 0-9."""
    current = np.searchsorted(np.frombuffer(_CHECK_ORDER, np.uint8), check_bytes)
    table_position = np.array([CHECK_CHARS.index(c) for c in _CHECK_ORDER.decode()])[current]
    wrong = (table_position + 1 + variant.astype(np.int64)) % 11
    return np.frombuffer(CHECK_CHARS.encode(), np.uint8)[wrong]


class GroundTruth:
    """Collects the bad rows and the per-delivery counts, and writes them to `_truth/`."""

    def __init__(self):
        self.bad_rows: list = []      # (source_id, month, file, line, reason)
        self.deliveries: list = []    # the columns of deliveries.csv

    def record_findings(self, source_id: str, month: str, written, rows: dict) -> None:
        """A findings delivery of `rows` (in file order) as `written` by the DeliveryWriter."""
        fault = rows["fault"]
        bad = np.flatnonzero(fault > 0)
        file_of = np.searchsorted(np.array(written.row_offsets[1:]), bad, side="right")
        for position, file in zip(bad.tolist(), file_of.tolist()):
            self.bad_rows.append((source_id, month, written.files[file],
                                  position - written.row_offsets[file] + 1,
                                  BAD_REASONS[fault[position] - 1]))
        row_kind = rows["row_kind"][fault == 0]
        self.deliveries.append((source_id, month, len(written.files), batch_size(rows), len(bad),
                                int((row_kind == ROW_NEW).sum()),
                                int((row_kind == ROW_CORRECTION).sum()),
                                int((row_kind == ROW_REVOCATION).sum()), int(written.manifest)))

    def record_plain(self, source_id: str, month: str, written, row_count: int) -> None:
        """A delivery without bad rows whose every row is new (population, appeals, opt-outs)."""
        self.deliveries.append((source_id, month, len(written.files), row_count, 0, row_count,
                                0, 0, int(written.manifest)))

    def bad_rows_by_reason(self) -> dict:
        counts = {reason: 0 for reason in BAD_REASONS}
        for row in self.bad_rows:
            counts[row[4]] += 1
        return counts

    def bad_rows_by_source(self) -> dict:
        counts: dict = {}
        for row in self.bad_rows:
            counts[row[0]] = counts.get(row[0], 0) + 1
        return counts

    def write(self, landing: Path) -> None:
        folder = Path(landing) / "_truth"
        folder.mkdir(parents=True, exist_ok=True)
        _write_csv(folder / "bad_rows.csv", ["source_id", "month", "file", "line", "reason"],
                   self.bad_rows)
        _write_csv(folder / "deliveries.csv",
                   ["source_id", "month", "files", "rows", "bad_rows", "new_records",
                    "corrections", "revocations", "manifest"], self.deliveries)


def _write_csv(path: Path, header: list, rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(sorted(rows))
