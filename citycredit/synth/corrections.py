"""Corrections and revocations: about CORRECTION_SHARE and REVOCATION_SHARE of a month's new
findings, re-sent 1-6 months after delivery with the same record_id.

A correction changes the level (penalties: another penalty level; commendations: one level up or
down), else the quantity, else valid_until; a revocation sets status `revoked`. Rows with a
follow-up already scheduled (locked) and revoked rows are left alone.
"""
from __future__ import annotations

import numpy as np

from citycredit.months import add_months_days

from .batches import (NO_DAY, NO_QUANTITY, ROW_CORRECTION, ROW_REVOCATION,
                      concat_batches, new_batch, take_rows)
from .catalogue import LEVELS, PENALTY_LEVELS, STATUSES

CORRECTION_SHARE = 0.005
REVOCATION_SHARE = 0.003
RESEND_WINDOW = 6          # months back a correction or revocation may reach
REVOKED = STATUSES.index("revoked")
FIRST_COMMENDATION_LEVEL = LEVELS.index("international")
LAST_COMMENDATION_LEVEL = len(LEVELS) - 1


def remember(source, run_month: int, new_rows: dict) -> None:
    """Keep the run month's new rows for later resends; forget what is out of reach."""
    source.history[run_month] = new_rows
    source.history.pop(run_month - RESEND_WINDOW - 1, None)


def resends(plan, source, rng, run_month: int, new_count: int) -> dict:
    """The corrections and revocations the source delivers in the run month (new_count: its
    new rows this month). Changes the source's remembered rows in place, so that a later
    resend of the same record starts from the corrected version."""
    corrections = rng.poisson(CORRECTION_SHARE * new_count)
    revocations = rng.poisson(REVOCATION_SHARE * new_count)
    if corrections + revocations == 0:
        return new_batch(0)
    candidates = []
    for month in range(max(0, run_month - RESEND_WINDOW), run_month):
        if month in source.history:
            rows = source.history[month]
            open_rows = np.flatnonzero((rows["status"] == 0) & ~rows["locked"])
            if len(open_rows):
                candidates.append((month, open_rows))
    if not candidates:
        return new_batch(0)
    candidate_month = np.concatenate([np.full(len(rows), month) for month, rows in candidates])
    candidate_row = np.concatenate([rows for _, rows in candidates])
    picked = rng.choice(len(candidate_row), size=min(corrections + revocations,
                                                     len(candidate_row)), replace=False)
    out = []
    for row_kind, chosen in ((ROW_CORRECTION, picked[:corrections]),
                             (ROW_REVOCATION, picked[corrections:])):
        if not len(chosen):
            continue
        for month in np.unique(candidate_month[chosen]):
            which = candidate_row[chosen[candidate_month[chosen] == month]]
            history = source.history[month]
            if row_kind == ROW_CORRECTION:
                _correct(plan, history, which, rng)
            else:
                history["status"][which] = REVOKED
            resent = take_rows(history, which)
            resent["row_kind"][:] = row_kind
            resent["locked"][:] = False
            out.append(resent)
    return concat_batches(out)


def _correct(plan, rows: dict, which: np.ndarray, rng) -> None:
    """Change level, quantity or valid_until of rows[which] in place."""
    level = rows["level"][which].astype(np.int64)
    quantity = rows["quantity"][which]
    item = rows["item"][which]
    n = len(which)
    penalty = (level >= 0) & (level < len(PENALTY_LEVELS))
    commendation = level >= FIRST_COMMENDATION_LEVEL
    new_level = level.copy()
    new_level[penalty] = (level[penalty] + rng.integers(1, 3, int(penalty.sum()))) \
        % len(PENALTY_LEVELS)
    step = np.where(rng.random(n) < 0.5, -1, 1)
    shifted = level + step
    shifted = np.where((shifted < FIRST_COMMENDATION_LEVEL) | (shifted > LAST_COMMENDATION_LEVEL),
                       level - step, shifted)
    new_level[commendation] = shifted[commendation]
    rows["level"][which] = new_level.astype(np.int8)

    has_quantity = (level < 0) & (quantity != NO_QUANTITY)
    rows["quantity"][which] = _corrected_quantities(plan, rng, item, quantity, has_quantity)

    neither = (level < 0) & (quantity == NO_QUANTITY)
    occurred = rows["occurred"][which].astype(np.int64)
    valid_until = rows["valid_until"][which].astype(np.int64)
    months = rng.integers(3, 37, n)
    corrected = np.where(valid_until == NO_DAY, add_months_days(occurred, months) - 1,
                         np.maximum(add_months_days(valid_until, np.where(
                             rng.random(n) < 0.6, -3, 6)), occurred))
    corrected = np.where(corrected == valid_until, corrected + 30, corrected)
    rows["valid_until"][which] = np.where(neither, corrected, valid_until).astype(np.int32)


def _corrected_quantities(plan, rng, item, quantity, has_quantity) -> np.ndarray:
    """Another value of the same kind: blood ml another of 200/300/400, arrears months ±1
    within 1-6, any other quantity × 0.5-1.5 rounded to 0.5 (never the same)."""
    corrected = quantity.copy()
    blood = has_quantity & (item == plan.item_index["BLOOD_DONATION"])
    loan = has_quantity & (item == plan.item_index["LOAN_ARREARS"])
    other = has_quantity & ~blood & ~loan
    corrected[blood] = ((quantity[blood] // 100 - 200
                         + 100 * rng.integers(1, 3, int(blood.sum()))) % 300 + 200) * 100
    months = quantity[loan] // 100
    corrected[loan] = np.where(months >= 6, months - 1, np.where(
        months <= 1, months + 1,
        months + np.where(rng.random(int(loan.sum())) < 0.5, -1, 1))) * 100
    factor = rng.uniform(0.5, 1.5, int(other.sum()))
    rounded = np.round(quantity[other] * factor / 50) * 50
    corrected[other] = np.where(rounded == quantity[other], quantity[other] + 50,
                                np.maximum(rounded, 50)).astype(np.int64)
    return corrected
