"""Commitments made before the first month (rule format v2 needs breaches to repair from the
start): a city does not begin with the run. The commitments platform delivers, besides breaches
of the commitments it delivered in the run (overlaps.py), breaches of commitments signed up to
BREACH_DELAY_DAYS before the first month, in the volume a city in steady state has — fading out
as the run's own commitments take over (a breach comes 20-400 days after signing).

Draws come from their own random stream, so the other deliveries are the same with or without
these rows.
"""
from __future__ import annotations

import numpy as np

from .batches import new_batch
from .overlaps import BREACH_SHARE
from .plan import first_day, last_day, rng_for
from .volumes import REFERENCE_MONTHS, ROLE_COMMITMENT_BREACH, VOLUMES

BREACH_DELAY_DAYS = (20, 400)      # after signing, as overlaps.py draws them
DAYS_PER_MONTH = 30.44


class EarlierCommitments:
    """Breaches, in the run's first months, of commitments signed before it."""

    def __init__(self, plan, population, case_numbers, repairs):
        self.plan = plan
        self.population = population
        self.case_numbers = case_numbers
        self.repairs = repairs

    def breaches(self, source, run_month: int, active: np.ndarray) -> None:
        """Queue this run month's breaches of earlier commitments into the source's delivery."""
        signed = VOLUMES.get(source.source_id, {}).get("COMMITMENT_SIGNED")
        if ROLE_COMMITMENT_BREACH not in source.roles or not signed:
            return
        low, high = BREACH_DELAY_DAYS
        # the share of a month's breaches whose commitment was signed before the run
        elapsed = (run_month + 0.5) * DAYS_PER_MONTH
        share = float(np.clip((high - elapsed) / (high - low), 0.0, 1.0))
        if share == 0.0:
            return
        rng = rng_for(self.plan.seed, "earlier-commitments", self.plan.month_index(run_month))
        expected = signed * BREACH_SHARE * self.plan.scale / REFERENCE_MONTHS * share
        pool = self.population.pools["signer"]
        start = first_day(self.plan.month_index(run_month))
        end = last_day(self.plan.month_index(run_month))
        n = rng.poisson(expected)
        person = pool[rng.integers(0, len(pool), n)] if len(pool) else np.zeros(0, np.int64)
        day = start + rng.integers(0, end - start + 1, len(person))
        keep = active[person] & (self.population.adult_day[person] <= day)
        person, day = person[keep], day[keep]
        if not len(person):
            return
        rows = new_batch(len(person), serial=source.serials(len(person)), person=person,
                         item=self.plan.item_index["COMMITMENT_BREACH"], occurred=day)
        self.case_numbers.assign(rows, "commit", rng)
        source.schedule(run_month, rows)
        self.repairs.after_breaches(run_month, person, day)
