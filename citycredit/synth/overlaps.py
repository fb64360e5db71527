"""Findings that follow from others, in the same or another department, sharing the case_ref.

* court listings: PERFORMED_SHARE are performed 1-12 months after listing (DEBT_PERFORMED, plus
  a correction shortening the listing's valid_until); COURT_MIRROR_SHARE are also delivered by
  the provincial platform, whose copy carries (or later receives) the shortened validity;
* signed commitments: BREACH_SHARE are breached 20-400 days later (COMMITMENT_BREACH);
* commendations: the civilization office registers some federation deeds too (sometimes one
  level higher); the provincial platform mirrors provincial-and-above commendations.

A follow-up is delivered in the month it happens or (30 %) the month after; a copy by a second
department 0-2 months after the first delivery but at most 3 months after the occurrence.
Completed credit repairs and repair activities after breaches: repairs.py.
"""
from __future__ import annotations

import numpy as np

from .batches import NO_DAY, ROW_CORRECTION, by_due_month, new_batch, take_rows
from .catalogue import LEVELS
from .repairs import Repairs
from .volumes import (DEED_SHARE, ROLE_COMMITMENT_BREACH, ROLE_DEBT_PERFORMANCE,
                      ROLE_MIRRORS_COMMENDATION, ROLE_MIRRORS_COURT)

PERFORMED_SHARE = 0.48    # performed 1-12 months after listing: ~40 % show within 36 months
BREACH_SHARE = 0.021
COURT_MIRROR_SHARE = 0.50
DEED_REGISTRY_MIRROR_SHARE = 0.35
DEED_PROVINCIAL_MIRROR_SHARE = 0.50
DEED_REGISTERED_HIGHER_SHARE = 0.30
# months a copy comes after the first delivery (numpy choice arguments: lags, shares)
COURT_MIRROR_LAG = (3, [0.5, 0.3, 0.2])
DEED_REGISTRY_LAG = (3, [0.5, 0.35, 0.15])
DEED_PROVINCIAL_LAG = ([1, 2], None)
LATE_FOLLOW_UP_SHARE = 0.30
DEED_REGISTRY = "civilization_office"
NOT_DUE = 10 ** 6          # run month of a follow-up that never comes


class Overlaps:
    """Schedules, for one source's new findings, the rows they cause in later deliveries."""

    def __init__(self, plan, findings_sources: list, case_numbers=None, propensities=None):
        self.plan = plan
        self.propensities = propensities     # None: every commitment has the same breach share
        self.repairs = Repairs(plan, findings_sources, case_numbers, self._follow_up_due)
        registry = next((s for s in findings_sources if s.source_id == DEED_REGISTRY), None)
        self.deed_registry = (registry if registry is not None
                              and "COMMENDATION" in registry.items else None)
        self.court_mirrors = [s for s in findings_sources if ROLE_MIRRORS_COURT in s.roles]
        self.deed_mirrors = [s for s in findings_sources if ROLE_MIRRORS_COMMENDATION in s.roles]

    def schedule_follow_ups(self, source, rng, run_month: int, new: dict) -> None:
        """Queue every consequence of `new` (the source's new findings of the run month);
        locks the listings whose performance is scheduled."""
        item = new["item"]
        listings = np.flatnonzero(item == self.plan.item_index["COURT_DISHONEST_DEBTOR"])
        if len(listings) and (ROLE_DEBT_PERFORMANCE in source.roles or self.court_mirrors):
            self._court_listings(source, rng, run_month, new, listings)
        if ROLE_COMMITMENT_BREACH in source.roles:
            self._commitment_breaches(source, rng, run_month, new)
        self.repairs.after_penalties(source, run_month, new)
        deeds = np.flatnonzero(item == self.plan.item_index["COMMENDATION"])
        if len(deeds):
            self._commendations(source, rng, run_month, take_rows(new, deeds))

    # ..................................................................... court listings
    def _court_listings(self, source, rng, run_month: int, new: dict, listings: np.ndarray):
        rows = take_rows(new, listings)
        n = len(listings)
        performed = np.zeros(n, bool)
        performed_due = np.full(n, NOT_DUE, np.int64)
        performed_day = rows["occurred"].astype(np.int64) + rng.integers(30, 366, n)
        corrected_valid = rows["valid_until"].astype(np.int64).copy()
        if ROLE_DEBT_PERFORMANCE in source.roles:
            chosen = rng.random(n) < PERFORMED_SHARE
            due = self._follow_up_due(rng, run_month, performed_day)
            performed = chosen & (due < self.plan.month_count)
            performed_due = np.where(performed, due, performed_due)
            shorten = performed & ((rows["valid_until"] == NO_DAY)
                                   | (performed_day < rows["valid_until"]))
            corrected_valid = np.where(shorten, performed_day, corrected_valid)
            new["locked"][listings[performed]] = True
            self.repairs.after_performance(run_month, rows, np.flatnonzero(performed),
                                           performed_day)
            for month, which in by_due_month(performed_due, performed):
                source.schedule(month, self._same_case(source, rows, which, "DEBT_PERFORMED",
                                                       performed_day[which]))
                shortened = which[shorten[which]]
                if len(shortened):
                    source.schedule(month, _correction(rows, shortened,
                                                       corrected_valid[shortened]))
        for mirror in self.court_mirrors:
            if mirror is source:
                continue
            due, chosen = self._copies_due(rng, run_month, rows["occurred"], COURT_MIRROR_SHARE,
                                           *COURT_MIRROR_LAG)
            for month, which in by_due_month(due, chosen):
                copy = _copy_for(mirror, rows, which)
                copy["locked"] = np.zeros(len(which), bool)
                # performed by the copy's delivery: it carries the shortened validity at once;
                # performed later: the copy is corrected when the court's listing is
                already = performed[which] & (performed_due[which] <= month)
                copy["valid_until"] = np.where(already, corrected_valid[which],
                                               copy["valid_until"]).astype(np.int32)
                later = performed[which] & ~already \
                    & (corrected_valid[which] != rows["valid_until"][which])
                correction_due = np.maximum(performed_due[which], month + 1)
                later &= correction_due < self.plan.month_count
                copy["locked"][later] = True
                mirror.schedule(month, copy)
                for correction_month, corrected in by_due_month(correction_due, later):
                    mirror.schedule(correction_month, _correction(
                        copy, corrected, corrected_valid[which][corrected]))

    # ..................................................................... commitments
    def _commitment_breaches(self, source, rng, run_month: int, new: dict):
        item = new["item"]
        share = (BREACH_SHARE if self.propensities is None else
                 self.propensities.chance(BREACH_SHARE, new["person"], "COMMITMENT_BREACH"))
        signed = np.flatnonzero((item == self.plan.item_index["COMMITMENT_SIGNED"])
                                & (rng.random(len(item)) < share))
        if not len(signed):
            return
        rows = take_rows(new, signed)
        day = rows["occurred"].astype(np.int64) + rng.integers(20, 401, len(signed))
        due = self._follow_up_due(rng, run_month, day)
        for month, which in by_due_month(due, due < self.plan.month_count):
            source.schedule(month, self._same_case(source, rows, which, "COMMITMENT_BREACH",
                                                   day[which]))
        delivered = due < self.plan.month_count
        self.repairs.after_breaches(run_month, rows["person"][delivered], day[delivered])

    # ..................................................................... commendations
    def _commendations(self, source, rng, run_month: int, deeds: dict):
        n = len(deeds["serial"])
        registry = self.deed_registry
        if registry is not None and registry is not source and source.source_id in DEED_SHARE:
            due, chosen = self._copies_due(rng, run_month, deeds["occurred"],
                                           DEED_REGISTRY_MIRROR_SHARE, *DEED_REGISTRY_LAG)
            higher = rng.random(n) < DEED_REGISTERED_HIGHER_SHARE
            top = LEVELS.index("international")
            level = np.where(higher, np.maximum(deeds["level"] - 1, top), deeds["level"])
            for month, which in by_due_month(due, chosen):
                copy = _copy_for(registry, deeds, which)
                copy["level"] = level[which].astype(np.int8)
                registry.schedule(month, copy)
        high = deeds["level"] <= LEVELS.index("provincial")
        for mirror in self.deed_mirrors:
            if mirror is source:
                continue
            due, chosen = self._copies_due(rng, run_month, deeds["occurred"],
                                           DEED_PROVINCIAL_MIRROR_SHARE, *DEED_PROVINCIAL_LAG,
                                           among=high)
            for month, which in by_due_month(due, chosen):
                mirror.schedule(month, _copy_for(mirror, deeds, which))

    # ..................................................................... timing
    def _follow_up_due(self, rng, run_month: int, day: np.ndarray) -> np.ndarray:
        """Run month delivering a follow-up that happens on `day`: that month or (30 %) the
        next, never before the month after the original's delivery."""
        late = rng.random(len(day)) < LATE_FOLLOW_UP_SHARE
        return np.maximum(self.plan.run_months_of_days(day) + late, run_month + 1)

    def _copies_due(self, rng, run_month: int, occurred: np.ndarray, share: float, lags,
                    lag_shares=None, among=None):
        """(due, chosen): about `share` of the rows (of those `among`) are copied by a second
        department, delivered a random number of `lags` months (numpy's choice: a list, or n
        for 0..n-1; weighted by lag_shares) after the first delivery but never more than 3
        months after the month of occurrence; chosen only where that falls within the run."""
        n = len(occurred)
        chosen = rng.random(n) < share
        if among is not None:
            chosen = among & chosen
        lag = rng.choice(lags, size=n, p=lag_shares)
        occurrence_run_month = self.plan.run_months_of_days(occurred)
        due = np.maximum(run_month, np.minimum(run_month + lag, occurrence_run_month + 3))
        return due, chosen & (due < self.plan.month_count)

    def _same_case(self, source, rows: dict, which: np.ndarray, item: str, day) -> dict:
        """New findings of `item` on `day` for the persons and case references of rows[which]."""
        return new_batch(len(which), serial=source.serials(len(which)),
                         person=rows["person"][which], item=self.plan.item_index[item],
                         occurred=day, case_kind=rows["case_kind"][which],
                         case_year=rows["case_year"][which],
                         case_number=rows["case_number"][which])


def _copy_for(target, rows: dict, which: np.ndarray) -> dict:
    """rows[which] as the target department's own records (its serials)."""
    copy = take_rows(rows, which)
    copy["serial"] = target.serials(len(which))
    return copy


def _correction(rows: dict, which: np.ndarray, valid_until: np.ndarray) -> dict:
    """A correction of rows[which] setting valid_until."""
    correction = take_rows(rows, which)
    correction["valid_until"] = valid_until.astype(np.int32)
    correction["row_kind"] = np.full(len(which), ROW_CORRECTION, np.int8)
    return correction
