"""Persistent propensities of the synthetic city (citycredit/synth/propensity.py): who receives
findings is weighted by fixed per-person weights, so a record predicts the next finding."""
from __future__ import annotations

import numpy as np
import pytest

from citycredit.synth.propensity import (CIVIC_RISK_CORRELATION, RISK_SIGMA, Propensities,
                                         weight_kind)


def test_weights_have_mean_one_and_the_stated_spread():
    p = Propensities(np.random.default_rng(1), 400_000)
    risk, civic = p.weights["risk"], p.weights["civic"]
    assert risk.mean() == pytest.approx(1, abs=0.03) and civic.mean() == pytest.approx(1, abs=0.02)
    assert np.log(risk).std() == pytest.approx(RISK_SIGMA, abs=0.01)
    # the riskiest 10 % carry 1 − Φ(1.2816 − σ) of the weight: 58.6 % for σ = 1.5
    top = np.sort(risk)[-len(risk) // 10:].sum() / risk.sum()
    assert top == pytest.approx(0.586, abs=0.01)
    assert np.corrcoef(np.log(risk), np.log(civic))[0, 1] == \
        pytest.approx(CIVIC_RISK_CORRELATION, abs=0.01)


def test_a_person_penalised_once_is_likelier_to_be_penalised_again():
    rng = np.random.default_rng(2)
    p = Propensities(rng, 50_000)
    pool = np.arange(0, 50_000, 2)                       # a pool: every other person
    first = np.unique(p.draw(pool, "ADMIN_PENALTY", rng, 5_000))
    second = p.draw(pool, "ADMIN_PENALTY", rng, 5_000)
    assert set(np.unique(second)) <= set(pool)
    repeat = np.isin(second, first).mean()
    uniform = len(first) / len(pool)                     # the repeat share without propensities
    assert repeat > 2 * uniform
    # a stream of an item of neither kind stays uniform
    assert weight_kind("COMMITMENT_SIGNED") is None and weight_kind("BLOOD_DONATION") == "civic"
    signed = p.draw(pool, "COMMITMENT_SIGNED", rng, 200_000)
    assert np.bincount(signed // 2, minlength=len(pool)).max() < 30


def test_breach_chance_scales_with_risk():
    p = Propensities(np.random.default_rng(3), 1_000)
    people = np.array([int(np.argmin(p.weights["risk"])), int(np.argmax(p.weights["risk"]))])
    low, high = p.chance(0.02, people, "COMMITMENT_BREACH")
    assert low < 0.02 < high <= 1.0
    assert list(p.chance(0.02, people, "COMMITMENT_SIGNED")) == [0.02, 0.02]
