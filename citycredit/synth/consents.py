"""Consents (本人授权): persons authorising a grantee of conf/grantees.yaml to look their score up
for one of the grantee's purposes (issue "Lookups").

About CONSENTS_PER_MONTH new consents a month at the reference scale (at least one), each from an
active adult, to a grantee and purpose drawn from the grantees, granted on a day of the delivery
month. A `self` consent (the person's own report through the portal) runs until revoked; the
others expire after CONSENT_DAYS. About REVOKED_SHARE are revoked 1-3 months later: the consent
is delivered again then, same consent_id, with revoked_on set — a correction, as silver sees it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .batches import NO_DAY
from .plan import first_day, last_day

CONSENTS_COLUMNS = ["consent_id", "id_number", "grantee", "purpose", "granted_on", "expires_on",
                    "revoked_on"]
CONSENTS_PER_MONTH = 30_000.0
CONSENT_DAYS = 365
REVOKED_SHARE = 0.08
OPEN_ENDED_PURPOSES = ("self",)


class Consents:
    """Draws each month's consents and re-sends the revoked ones when their month comes."""

    def __init__(self, plan, population, grantees: dict[str, dict]):
        self.plan = plan
        self.population = population
        # every (grantee, purpose) pair a consent may name
        self.pairs = [(g, p) for g, conf in sorted(grantees.items()) for p in conf["purposes"]]
        self.next_serial = 1
        self.revocations: dict[int, list] = {}   # run month → (serial, person, pair, granted,
                                                 #   expires or NO_DAY, revoked)

    def delivery(self, source, rng, run_month: int, active: np.ndarray) -> pa.Table:
        """The consents delivery of the run month (CONSENTS_COLUMNS): the new consents, then the
        revocations due this month."""
        month_index = self.plan.month_index(run_month)
        start, month_end = first_day(month_index), last_day(month_index)
        wanted = max(1, int(rng.poisson(CONSENTS_PER_MONTH * self.plan.scale)))
        candidate = rng.integers(0, self.population.size, wanted * 2 + 8)
        eligible = candidate[active[candidate]
                             & (self.population.adult_day[candidate] <= month_end)][:wanted]
        k = len(eligible)
        serial = np.arange(self.next_serial, self.next_serial + k, dtype=np.int64)
        self.next_serial += k
        pair = rng.integers(0, len(self.pairs), k)
        granted = start + rng.integers(0, month_end - start + 1, k)
        open_ended = np.array([self.pairs[i][1] in OPEN_ENDED_PURPOSES for i in pair], bool)
        expires = np.where(open_ended, NO_DAY, granted + CONSENT_DAYS - 1)
        revoked = np.full(k, NO_DAY, np.int64)
        later = rng.integers(1, 4, k)
        for j in np.flatnonzero(rng.random(k) < REVOKED_SHARE):
            due = run_month + int(later[j])
            if due < self.plan.month_count:
                self.revocations.setdefault(due, []).append(
                    (int(serial[j]), int(eligible[j]), int(pair[j]), int(granted[j]),
                     int(expires[j])))
        resent = self.revocations.pop(run_month, [])
        if resent:
            r_serial, r_person, r_pair, r_granted, r_expires = (np.array(c) for c in zip(*resent))
            r_revoked = start + rng.integers(0, month_end - start + 1, len(resent))
            serial = np.concatenate([serial, r_serial])
            eligible = np.concatenate([eligible, r_person])
            pair = np.concatenate([pair, r_pair])
            granted = np.concatenate([granted, r_granted])
            expires = np.concatenate([expires, r_expires])
            revoked = np.concatenate([revoked, r_revoked])
        return pa.table([
            pa.array([f"SQ{s:010d}" for s in serial], pa.string()),
            self.population.ids.take(pa.array(eligible, pa.int64())),
            pa.array([self.pairs[i][0] for i in pair], pa.string()),
            pa.array([self.pairs[i][1] for i in pair], pa.string()),
            _dates(granted, source.date_format),
            _dates(expires, source.date_format),
            _dates(revoked, source.date_format),
        ], names=CONSENTS_COLUMNS)


def _dates(days: np.ndarray, date_format: str) -> pa.Array:
    days = np.asarray(days, np.int64)
    return pc.strftime(pa.array(days.astype(np.int32), pa.date32(), mask=days == NO_DAY),
                       format=date_format)
