"""Persistent propensities: who receives findings is not a fresh lottery each month.

Each person carries two fixed weights for the whole run, both log-normal with mean 1:

* `risk` — how likely the person is to receive a negative finding (penalties, uncivil conduct,
  court listings, arrears, commitment breaches): someone penalised before is more likely to be
  penalised again, and a debtor is more likely to fall behind again;
* `civic` — how likely the person is to receive a positive one (volunteering, blood and charity
  donations, commendations, bravery): volunteers keep volunteering.

The two are mildly opposed (correlation CIVIC_RISK_CORRELATION of the underlying normals), so
the people a scheme rewards are on average a little less likely to offend. A stream draws its
persons from its pool (volumes.pool_for) with probability proportional to the weight of the
stream's item; items of neither kind (signing a commitment, the provincial score) stay uniform.
The mean of each weight is 1, so every volume stays what volumes.py says; only *who* changes.

This is what makes a generated city worth evaluating (citycredit/policy): a person's record
at M predicts what happens to them after M, so a scheme's grades can discriminate.
"""
from __future__ import annotations

import numpy as np

from .catalogue import NEGATIVE_ITEMS

#: σ of log(risk) and log(civic): the spread of the weights (risk σ = 1.5: the riskiest 10 % of a
#: pool receive about 59 % of its negative findings, the "chronic few" of offending studies)
RISK_SIGMA = 1.5
CIVIC_SIGMA = 0.8
CIVIC_RISK_CORRELATION = -0.3
POSITIVE_ITEMS = {"COMMENDATION", "BRAVERY", "VOLUNTEER_SERVICE", "BLOOD_DONATION",
                  "CHARITY_DONATION"}
#: negative findings that follow another one rather than a stream of their own
NEGATIVE_FOLLOW_UPS = {"DEBT_PERFORMED"}


def weight_kind(item: str) -> str | None:
    """'risk', 'civic' or None (uniform) for a catalogue item."""
    if item in NEGATIVE_ITEMS or item in NEGATIVE_FOLLOW_UPS:
        return "risk"
    if item in POSITIVE_ITEMS:
        return "civic"
    return None


def lognormal_weights(z: np.ndarray, sigma: float) -> np.ndarray:
    """exp(σz − σ²/2): log-normal with mean 1 for standard normal z."""
    return np.exp(sigma * z - sigma * sigma / 2)


class Propensities:
    """The fixed weights of every person of a Population (arrays of length population.size),
    drawn from their own random stream so that no other stream of the city shifts."""

    def __init__(self, rng: np.random.Generator, size: int):
        z_risk = rng.standard_normal(size)
        z_other = rng.standard_normal(size)
        rho = CIVIC_RISK_CORRELATION
        z_civic = rho * z_risk + np.sqrt(1 - rho * rho) * z_other
        self.weights = {"risk": lognormal_weights(z_risk, RISK_SIGMA),
                        "civic": lognormal_weights(z_civic, CIVIC_SIGMA)}
        self._cumulative: dict[tuple[int, str], np.ndarray] = {}

    def draw(self, pool: np.ndarray, item: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """n persons of `pool` (with replacement), weighted by the item's kind of weight."""
        kind = weight_kind(item)
        if kind is None:
            return pool[rng.integers(0, len(pool), n)]
        key = (id(pool), kind)
        cumulative = self._cumulative.get(key)
        if cumulative is None:      # one cumulative sum per pool and kind, not one per draw
            cumulative = np.cumsum(self.weights[kind][pool])
            self._cumulative[key] = cumulative
        picks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        return pool[np.minimum(picks, len(pool) - 1)]

    def chance(self, share: float, person: np.ndarray, item: str) -> np.ndarray:
        """Per person, the probability of an event whose average share is `share` (e.g. a
        breach of a signed commitment), scaled by the item's weight and capped at 1."""
        kind = weight_kind(item)
        if kind is None:
            return np.full(len(person), share)
        return np.minimum(1.0, share * self.weights[kind][person])
