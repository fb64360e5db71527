"""Repair in the synthetic city (rule format v2, SPEC §4.1): what `requires` and `repair` energy
score.

* completed credit repairs (CREDIT_REPAIR_COMPLETED, 信用修复) delivered by the source with the
  credit_repair role, with the repaired case's case_ref: LISTING_REPAIR_SHARE of performed court
  listings 1-3 months after performance, PENALTY_REPAIR_SHARE of general and serious
  administrative penalties 2-8 months after the decision, and ORPHAN_REPAIR_SHARE of those for a
  case the person has no finding of here (another city's), which `requires` leaves unmet;
* repair activities after a breached commitment: BREACH_ACTIVITY_SHARE of the persons who breach
  volunteer, give blood or donate 1-3 times within 0-150 days after the breach, delivered by the
  departments of those items like their other findings (so some breaches are repaired early, some
  partly, and some activities fall before the breach and give no energy).

Draws come from their own random streams (rng_for(seed, "repairs-…", month)), so the other
deliveries are the same with or without this module's rows.
"""
from __future__ import annotations

import numpy as np

from .batches import by_due_month, new_batch
from .catalogue import LEVELS, case_kind_for
from .plan import rng_for
from .volumes import ROLE_CREDIT_REPAIR

LISTING_REPAIR_SHARE = 0.6
PENALTY_REPAIR_SHARE = 0.08
ORPHAN_REPAIR_SHARE = 0.1
BREACH_ACTIVITY_SHARE = 0.5
# activity: (item, share of activities, quantities in hundredths and their weights)
ACTIVITIES = [
    ("VOLUNTEER_SERVICE", 0.5, np.array([200, 400, 600, 1000, 1200]), [.2, .25, .25, .2, .1]),
    ("BLOOD_DONATION", 0.3, np.array([20000, 30000, 40000]), [.25, .3, .45]),
    ("CHARITY_DONATION", 0.2, np.array([10000, 20000, 50000, 100000]), [.3, .3, .3, .1]),
]


class Repairs:
    """Schedules repairs and repair activities into the departments' later deliveries."""

    def __init__(self, plan, findings_sources: list, case_numbers, follow_up_due):
        self.plan = plan
        self.case_numbers = case_numbers
        self.follow_up_due = follow_up_due     # (rng, run_month, day) → delivery run month
        self.repairer = next((s for s in findings_sources if ROLE_CREDIT_REPAIR in s.roles), None)
        # an activity is delivered by the department that delivers the item as a stream
        self.activity_source = {}
        for item, *_ in ACTIVITIES:
            source = next((s for s in findings_sources
                           if any(stream.item == item for stream in s.streams)), None)
            if source is not None:
                self.activity_source[item] = source

    def _rng(self, tag: str, run_month: int):
        return rng_for(self.plan.seed, f"repairs-{tag}", self.plan.month_index(run_month))

    # ..................................................................... 信用修复
    def after_performance(self, run_month: int, rows: dict, performed: np.ndarray,
                          performed_day: np.ndarray) -> None:
        """rows[performed]: court listings performed on performed_day[performed]."""
        if self.repairer is None or not len(performed):
            return
        rng = self._rng("listings", run_month)
        chosen = performed[rng.random(len(performed)) < LISTING_REPAIR_SHARE]
        day = performed_day[chosen] + rng.integers(30, 92, len(chosen))
        self._schedule_repairs(rng, run_month, rows, chosen, day)

    def after_penalties(self, source, run_month: int, new: dict) -> None:
        """Some of the source's new general and serious penalties (with a case_ref)."""
        if self.repairer is None or "ADMIN_PENALTY" not in self.plan.item_index:
            return
        penalty = ((new["item"] == self.plan.item_index["ADMIN_PENALTY"])
                   & np.isin(new["level"], [LEVELS.index("general"), LEVELS.index("serious")])
                   & (new["case_kind"] >= 0))
        rows = np.flatnonzero(penalty)
        if not len(rows):
            return
        rng = self._rng(f"penalties-{source.source_id}", run_month)
        chosen = rows[rng.random(len(rows)) < PENALTY_REPAIR_SHARE]
        day = new["occurred"][chosen].astype(np.int64) + rng.integers(60, 244, len(chosen))
        self._schedule_repairs(rng, run_month, new, chosen, day)

    def _schedule_repairs(self, rng, run_month: int, rows: dict, which: np.ndarray,
                          day: np.ndarray) -> None:
        due = self.follow_up_due(rng, run_month, day)
        orphan = rng.random(len(which)) < ORPHAN_REPAIR_SHARE
        case_number = np.where(orphan, rows["case_number"][which] + 10 ** 7,
                               rows["case_number"][which])
        for month, picked in by_due_month(due, due < self.plan.month_count):
            source = self.repairer
            source.schedule(month, new_batch(
                len(picked), serial=source.serials(len(picked)),
                person=rows["person"][which][picked],
                item=self.plan.item_index["CREDIT_REPAIR_COMPLETED"], occurred=day[picked],
                case_kind=rows["case_kind"][which][picked],
                case_year=rows["case_year"][which][picked], case_number=case_number[picked]))

    # ..................................................................... repair energy
    def after_breaches(self, run_month: int, person: np.ndarray, breach_day: np.ndarray) -> None:
        """Persons who breach a commitment on breach_day: some do repair activities after it."""
        available = [a for a in ACTIVITIES if a[0] in self.activity_source]
        if not available or not len(person):
            return
        rng = self._rng("activities", run_month)
        active = np.flatnonzero(rng.random(len(person)) < BREACH_ACTIVITY_SHARE)
        times = rng.integers(1, 4, len(active))
        who = np.repeat(active, times)
        day = breach_day[who].astype(np.int64) + rng.integers(0, 151, len(who))
        shares = np.array([a[1] for a in available])
        kind = rng.choice(len(available), size=len(who), p=shares / shares.sum())
        for k, (item, _, amounts, weights) in enumerate(available):
            picked = np.flatnonzero(kind == k)
            if not len(picked):
                continue
            source = self.activity_source[item]
            quantity = rng.choice(amounts, size=len(picked), p=weights)
            due = self.follow_up_due(rng, run_month, day[picked])
            for month, sub in by_due_month(due, due < self.plan.month_count):
                batch = new_batch(len(sub), serial=source.serials(len(sub)),
                                  person=person[who[picked[sub]]],
                                  item=self.plan.item_index[item], quantity=quantity[sub],
                                  occurred=day[picked[sub]])
                case_kind = case_kind_for(source.source_id, item)
                if case_kind is not None:
                    self.case_numbers.assign(batch, case_kind, rng)
                source.schedule(month, batch)
