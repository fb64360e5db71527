"""Appeals against negative findings, and opt-out requests.

Appeals: about APPEAL_SHARE of new negative findings are appealed, filed 5-40 days after the
delivery month's last day and resolved 10-90 days later (upheld APPEAL_UPHELD_SHARE, else
rejected) or never (APPEAL_OPEN_SHARE). An appeal is delivered in the month it is filed; a
resolution in a later month is re-delivered then with the same appeal_id.
Opt-outs: about OPTOUTS_PER_MONTH requests a month at the reference scale (at least one), each
from an active adult who has not opted out before.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_strings import lookup_strings
from .batches import NO_DAY, ROW_NEW
from .catalogue import NEGATIVE_ITEMS
from .plan import first_day, last_day

APPEALS_COLUMNS = ["appeal_id", "source_id", "record_id", "filed_on", "resolved_on", "outcome"]
OPTOUTS_COLUMNS = ["id_number", "requested_on"]
APPEAL_SHARE = 0.002
APPEAL_OPEN_SHARE = 0.12
APPEAL_UPHELD_SHARE = 0.30
OUTCOMES = ["upheld", "rejected"]
NO_OUTCOME = -1
OPTOUTS_PER_MONTH = 5.0


class Appeals:
    """Files appeals against each month's findings and delivers them when due."""

    def __init__(self, plan):
        self.plan = plan
        self.queue: dict[int, list] = {}   # run month → (appeal serial, source_id, record_id,
        self.next_serial = 1               #   filed day, resolved day or NO_DAY, outcome)

    def file(self, rng, run_month: int, findings_sources: list, clean: dict) -> None:
        """Appeal some of the new, active negative findings delivered in the run month
        (clean: source_id → the delivery's clean batch)."""
        month_end = last_day(self.plan.month_index(run_month))
        negative = np.array([self.plan.item_index[item] for item in NEGATIVE_ITEMS
                             if item in self.plan.item_index])
        for source in findings_sources:
            rows = clean[source.source_id]
            appealed = np.flatnonzero((rows["row_kind"] == ROW_NEW)
                                      & np.isin(rows["item"], negative) & (rows["status"] == 0))
            if not len(appealed):
                continue
            share = min(1.0, APPEAL_SHARE * self.plan.intensity.get("appeals", 1.0))
            appealed = appealed[rng.random(len(appealed)) < share]
            k = len(appealed)
            if not k:
                continue
            serial = np.arange(self.next_serial, self.next_serial + k)
            self.next_serial += k
            filed = month_end + rng.integers(5, 41, k)
            resolved = filed + rng.integers(10, 91, k)
            stays_open = rng.random(k) < APPEAL_OPEN_SHARE
            outcome = np.where(rng.random(k) < APPEAL_UPHELD_SHARE, 0, 1)   # index in OUTCOMES
            record_ids = source.record_ids(rows["serial"][appealed]).to_pylist()
            filed_month = self.plan.run_months_of_days(filed)
            resolved_month = self.plan.run_months_of_days(resolved)
            for j in range(k):   # appeals are ~0.2 % of negative findings: few
                appeal = (int(serial[j]), source.source_id, record_ids[j], int(filed[j]))
                resolution = (int(resolved[j]), int(outcome[j]))
                if not stays_open[j] and resolved_month[j] == filed_month[j]:
                    self._queue(int(filed_month[j]), appeal + resolution)
                    continue
                self._queue(int(filed_month[j]), appeal + (NO_DAY, NO_OUTCOME))
                if not stays_open[j]:
                    self._queue(int(resolved_month[j]), appeal + resolution)

    def _queue(self, run_month: int, row: tuple) -> None:
        if run_month < self.plan.month_count:
            self.queue.setdefault(run_month, []).append(row)

    def delivery(self, source, run_month: int) -> pa.Table:
        """The appeals delivery of the run month (APPEALS_COLUMNS), ordered by appeal."""
        rows = sorted(self.queue.pop(run_month, []))
        filed = np.array([r[3] for r in rows], np.int32)
        resolved = np.array([r[4] for r in rows], np.int32)
        outcome = np.array([r[5] for r in rows], np.int64)
        return pa.table([
            pa.array([f"YY{r[0]:09d}" for r in rows], pa.string()),
            pa.array([r[1] for r in rows], pa.string()),
            pa.array([r[2] for r in rows], pa.string()),
            pc.strftime(pa.array(filed, pa.date32()), format=source.date_format),
            pc.strftime(pa.array(resolved, pa.date32(), mask=resolved == NO_DAY),
                        format=source.date_format),
            lookup_strings(OUTCOMES, outcome),
        ], names=APPEALS_COLUMNS)


class OptOuts:
    """Opt-out requests; remembers who opted out."""

    def __init__(self, plan, population):
        self.plan = plan
        self.population = population
        self.opted_out = np.zeros(0, np.int64)

    def delivery(self, source, rng, run_month: int, active: np.ndarray) -> pa.Table:
        """The opt-outs delivery of the run month (OPTOUTS_COLUMNS), ordered by date."""
        month_index = self.plan.month_index(run_month)
        start = first_day(month_index)
        month_end = last_day(month_index)
        wanted = max(1, int(rng.poisson(OPTOUTS_PER_MONTH * self.plan.scale)))
        candidate = rng.integers(0, self.population.size, wanted * 4 + 8)
        eligible = active[candidate] & (self.population.adult_day[candidate] <= month_end) \
            & ~np.isin(candidate, self.opted_out)
        person = np.unique(candidate[eligible])[:wanted]
        person = person[rng.permutation(len(person))]
        self.opted_out = np.concatenate([self.opted_out, person])
        day = np.sort(start + rng.integers(0, month_end - start + 1, len(person)))
        return pa.table([
            self.population.ids.take(pa.array(person)),
            pc.strftime(pa.array(day.astype(np.int32), pa.date32()), format=source.date_format),
        ], names=OPTOUTS_COLUMNS)
