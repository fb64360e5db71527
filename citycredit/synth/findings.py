"""New findings: each source's monthly streams (volumes.py), their quantities, validity and case
references, and the provincial credit score of every adult.

A finding is delivered in the month it occurred or 1-3 months later (DELIVERY_LAG_SHARES), to an
active adult of the stream's pool.
"""
from __future__ import annotations

import numpy as np

from citycredit.months import add_months_days, month_start_days, year_of_days

from .batches import ROW_CORRECTION, ROW_NEW, NO_DAY, NO_QUANTITY, batch_size, concat_batches, \
    new_batch
from .catalogue import CASE_KIND_INDEX, CASE_KINDS, LEVELS, case_kind_for
from .plan import first_day, last_day
from .propensity import weight_kind
from .volumes import REFERENCE_MONTHS

DELIVERY_LAG_SHARES = np.array([0.55, 0.25, 0.12, 0.08])   # delivered 0..3 months late
OVERSAMPLING = 1.35     # persons drawn per finding wanted: some are not active adults then
NO_CASE_REF_SHARE = 0.03     # of penalties and uncivil conduct
SCORE_SERIAL_BASE = 9_000_000_000    # + person = record serial of a person's score
SCORE_MEAN, SCORE_SD, SCORE_YEARLY_CHANGE_SD = 740, 90, 35
SCORE_RANGE = (0, 1000)


class CaseNumbers:
    """Case references of new findings: one running number per case kind across sources."""

    def __init__(self):
        self.last_number = np.zeros(len(CASE_KINDS), np.int64)

    def assign(self, rows: dict, case_kind: str, rng, no_case_ref_share: float = 0.0) -> None:
        """Give every row a case reference of the kind, dated by its occurrence year; about
        no_case_ref_share of them get none."""
        n = batch_size(rows)
        kind = CASE_KIND_INDEX[case_kind]
        rows["case_kind"][:] = kind
        rows["case_year"][:] = year_of_days(rows["occurred"])
        rows["case_number"][:] = self.last_number[kind] + 1 + np.arange(n)
        self.last_number[kind] += n
        if no_case_ref_share > 0 and n:
            rows["case_kind"][rng.random(n) < no_case_ref_share] = -1


class NewFindings:
    """Draws each month's new findings of every stream of a source."""

    def __init__(self, plan, population, propensities=None):
        self.plan = plan
        self.population = population
        self.propensities = propensities     # None: persons drawn uniformly from the pool
        self.case_numbers = CaseNumbers()

    def draw(self, source, rng, run_month: int, active: np.ndarray) -> dict:
        """The batch of the source's new findings delivered in the run month (all streams,
        in stream order)."""
        parts = []
        for stream in source.streams:
            factor = self.plan.intensity.get(weight_kind(stream.item) or "", 1.0)
            n = rng.poisson(stream.reference_total * self.plan.scale / REFERENCE_MONTHS * factor)
            if n:
                parts.append(self._stream(source, stream, n, rng, run_month, active))
        return concat_batches(parts)

    def _stream(self, source, stream, wanted: int, rng, run_month: int, active) -> dict:
        """Up to `wanted` findings of one stream (fewer when too few drawn persons qualify)."""
        drawn = int(wanted * OVERSAMPLING) + 16
        lag = rng.choice(len(DELIVERY_LAG_SHARES), size=drawn, p=DELIVERY_LAG_SHARES)
        occurrence_month = self.plan.month_index(run_month) - lag
        month_start = month_start_days(occurrence_month)
        days_in_month = month_start_days(occurrence_month + 1) - month_start
        occurred = month_start + (rng.random(drawn) * days_in_month).astype(np.int64)
        pool = self.population.pools[stream.pool]
        if not len(pool):
            return new_batch(0)
        person = (pool[rng.integers(0, len(pool), drawn)] if self.propensities is None
                  else self.propensities.draw(pool, stream.item, rng, drawn))
        qualifies = active[person] & (self.population.adult_day[person] <= occurred)
        person = person[qualifies][:wanted]
        occurred = occurred[qualifies][:wanted]
        n = len(person)
        level = -1 if stream.level is None else LEVELS.index(stream.level)
        quantity = quantities(stream.item, rng, n)
        valid_until = valid_until_days(stream.item, stream.level, occurred, rng)
        case_kind = case_kind_for(source.source_id, stream.item)
        rows = new_batch(n, serial=source.serials(n), person=person,
                         item=self.plan.item_index[stream.item], level=level, quantity=quantity,
                         occurred=occurred, valid_until=valid_until, row_kind=ROW_NEW)
        if case_kind is not None:
            self.case_numbers.assign(rows, case_kind, rng, NO_CASE_REF_SHARE if stream.item in (
                "ADMIN_PENALTY", "UNCIVIL_CONDUCT") else 0.0)
        return rows


def quantities(item: str, rng, n: int) -> np.ndarray:
    """Quantities in hundredths: volunteer hours (0.5-24, half hours), blood ml (200/300/400),
    charity yuan (log-normal, some with fen), loan arrears months (1-6), credit services days
    overdue (1-180); NO_QUANTITY for items without one."""
    if item == "VOLUNTEER_SERVICE":
        hours = np.clip(np.round(rng.gamma(1.6, 2.2, n) * 2) / 2, 0.5, 24)
        return np.round(hours * 100).astype(np.int64)
    if item == "BLOOD_DONATION":
        return rng.choice(np.array([200, 300, 400]), size=n, p=[0.25, 0.30, 0.45]) * 100
    if item == "CHARITY_DONATION":
        yuan = np.clip(np.round(np.exp(rng.normal(4.6, 1.3, n))), 1, 200_000).astype(np.int64)
        fen = np.where(rng.random(n) < 0.2, rng.integers(1, 100, n), 0)
        return yuan * 100 + fen
    if item == "LOAN_ARREARS":
        return rng.choice(np.arange(1, 7), size=n, p=[.4, .25, .15, .1, .06, .04]) * 100
    if item == "CREDIT_SERVICE_OVERDUE":      # days overdue: mostly a few days, some months
        return np.minimum(rng.geometric(0.12, n), 180).astype(np.int64) * 100
    return np.full(n, NO_QUANTITY, np.int64)


def valid_until_days(item: str, level: str | None, occurred: np.ndarray, rng) -> np.ndarray:
    """Last day of validity (day numbers; NO_DAY = open-ended) of new findings: court listings
    3 or 2 years or open, penalties by level, commitments 1 or 3 years or open."""
    n = len(occurred)
    valid_until = np.full(n, NO_DAY, np.int64)
    u = rng.random(n)

    def after(months):
        return add_months_days(occurred, months) - 1

    if item == "COURT_DISHONEST_DEBTOR":
        valid_until = np.where(u < 0.5, after(36), np.where(u < 0.7, after(24), NO_DAY))
    elif item == "ADMIN_PENALTY":
        if level == "minor":
            valid_until = np.where(u < 0.3, after(3), NO_DAY)
        elif level == "general":
            valid_until = after(12)
        elif level == "serious":
            valid_until = after(36)
    elif item == "COMMITMENT_SIGNED":
        valid_until = np.where(u < 0.5, after(12), np.where(u < 0.8, after(36), NO_DAY))
    return valid_until


class ProvincialScores:
    """PROVINCIAL_CREDIT_SCORE: one record per adult, its serial fixed per person, first sent in
    the month the person is an active adult in the data (every adult in the first month), then
    re-sent every 12 months with a new score as a correction. Scores 0-1000, in hundredths."""

    def __init__(self, plan, population):
        self.plan = plan
        self.population = population
        self.first_run_month = np.full(population.size, -1, np.int16)
        self.score = np.zeros(population.size, np.int64)

    def draw(self, rng, run_month: int, active: np.ndarray) -> dict:
        month_index = self.plan.month_index(run_month)
        month_end = last_day(month_index)
        eligible = active & (self.population.adult_day <= month_end)
        first = np.flatnonzero(eligible & (self.first_run_month < 0))
        months_since = run_month - self.first_run_month.astype(np.int64)
        again = np.flatnonzero(active & (self.first_run_month >= 0) & (months_since > 0)
                               & (months_since % 12 == 0))
        self.first_run_month[first] = run_month
        self.score[first] = np.clip(np.round(rng.normal(SCORE_MEAN, SCORE_SD, len(first))),
                                    *SCORE_RANGE)
        self.score[again] = np.clip(self.score[again] + np.round(
            rng.normal(0, SCORE_YEARLY_CHANGE_SD, len(again))), *SCORE_RANGE)
        person = np.concatenate([first, again])
        row_kind = np.r_[np.full(len(first), ROW_NEW), np.full(len(again), ROW_CORRECTION)]
        occurred = np.full(len(person), first_day(month_index), np.int64)
        return new_batch(len(person), serial=SCORE_SERIAL_BASE + person, person=person,
                         item=self.plan.item_index["PROVINCIAL_CREDIT_SCORE"],
                         quantity=self.score[person] * 100, occurred=occurred,
                         valid_until=add_months_days(occurred, 12) - 1, row_kind=row_kind)
