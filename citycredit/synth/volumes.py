"""How many findings each department delivers: reference volumes and the streams they make.

Volumes are totals over the reference city of REFERENCE_ADULTS adults × REFERENCE_MONTHS months;
a run draws each (source, item, level) stream monthly from Poisson(total × adults /
REFERENCE_ADULTS / REFERENCE_MONTHS), so every volume scales linearly with adults and months.
"""
from __future__ import annotations

from typing import NamedTuple

REFERENCE_ADULTS = 2_250_000
REFERENCE_MONTHS = 36

# Commendations (deeds) per level; the three departments that commend share them.
DEEDS = {"international": 10, "national": 200, "provincial": 1_500, "municipal": 8_000,
         "county": 15_000}
DEED_SHARE = {"civilization_office": 0.60, "volunteer_federation": 0.25,
              "charity_federation": 0.15}
# source → item → total, or item → {level: total}
VOLUMES = {
    "court": {"COURT_DISHONEST_DEBTOR": 22_500},
    "public_security": {"ADMIN_PENALTY": {"minor": 20_000, "general": 15_000, "serious": 2_500},
                        "UNCIVIL_CONDUCT": 10_000},
    "traffic_police": {"ADMIN_PENALTY": {"minor": 90_000, "general": 25_000, "serious": 5_000}},
    "market_regulation": {"ADMIN_PENALTY": {"minor": 15_000, "general": 12_000, "serious": 500}},
    "urban_management": {"UNCIVIL_CONDUCT": 25_000,
                         "ADMIN_PENALTY": {"minor": 25_000, "general": 8_000}},
    "civilization_office": {"COMMENDATION": {k: v * DEED_SHARE["civilization_office"]
                                             for k, v in DEEDS.items()},
                            "BRAVERY": 300, "UNCIVIL_CONDUCT": 5_000},
    "volunteer_federation": {"VOLUNTEER_SERVICE": 478_000,
                             "COMMENDATION": {k: v * DEED_SHARE["volunteer_federation"]
                                              for k, v in DEEDS.items()}},
    "blood_center": {"BLOOD_DONATION": 238_000},
    "charity_federation": {"CHARITY_DONATION": 201_000,
                           "COMMENDATION": {k: v * DEED_SHARE["charity_federation"]
                                            for k, v in DEEDS.items()}},
    "commitments": {"COMMITMENT_SIGNED": 600_000},
    "provincial_credit": {"LOAN_ARREARS": 50_000},
    # 信易+ credit services (deposit-free borrowing, pay-later parking or treatment)
    "credit_services": {"CREDIT_SERVICE_SETTLED": 1_200_000, "CREDIT_SERVICE_OVERDUE": 60_000},
}
# A department onboarded later (not in VOLUMES) delivering a known item.
FALLBACK_TOTAL = {"ADMIN_PENALTY": {"minor": 15_000, "general": 6_000, "serious": 800},
                  "COMMENDATION": {k: v * 0.1 for k, v in DEEDS.items()}}
FALLBACK_DEFAULT_TOTAL = 10_000

# What a source delivers besides its own streams (see overlaps.py and findings.py).
ROLE_PROVINCIAL_SCORE = "provincial_score"          # PROVINCIAL_CREDIT_SCORE of every adult
ROLE_DEBT_PERFORMANCE = "debt_performance"          # DEBT_PERFORMED of its own court listings
ROLE_COMMITMENT_BREACH = "commitment_breach"        # COMMITMENT_BREACH of its own commitments
ROLE_MIRRORS_COURT = "mirrors:COURT_DISHONEST_DEBTOR"    # copies of the court's listings
ROLE_MIRRORS_COMMENDATION = "mirrors:COMMENDATION"       # copies of high commendations
ROLE_CREDIT_REPAIR = "credit_repair"                # CREDIT_REPAIR_COMPLETED of others' cases


class Stream(NamedTuple):
    """A monthly Poisson stream of new findings of one item (and level) from one source."""
    item: str
    level: str | None
    reference_total: float
    pool: str            # the Population pool the persons are drawn from


def pool_for(source_id: str, item: str) -> str:
    """The Population pool whose persons receive the item from the source."""
    if item == "VOLUNTEER_SERVICE":
        return "volunteer"
    if item == "CHARITY_DONATION":
        return "donor"
    if item == "BLOOD_DONATION":
        return "blood"
    if item in ("COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "LOAN_ARREARS"):
        return "debtor"
    if item in ("ADMIN_PENALTY", "UNCIVIL_CONDUCT"):
        return "offender"
    if item in ("COMMITMENT_SIGNED", "COMMITMENT_BREACH", "CREDIT_SERVICE_SETTLED",
                "CREDIT_SERVICE_OVERDUE"):
        return "signer"          # the persons who deal with credit commitments and services
    if item == "COMMENDATION":
        return {"volunteer_federation": "volunteer",
                "charity_federation": "donor"}.get(source_id, "all")
    return "all"


def plan_streams(source) -> None:
    """Fill source.streams and source.roles from the items the source delivers (conf).

    An item a known department delivers as a consequence of another (debt performed, breach,
    provincial copies, scores) becomes a role, not a stream; any other item gets its VOLUMES
    entry or, for a department or item not in VOLUMES, a fallback volume.
    """
    volumes = VOLUMES.get(source.source_id)
    for item in source.items:
        if item == "PROVINCIAL_CREDIT_SCORE":
            source.roles.add(ROLE_PROVINCIAL_SCORE)
            continue
        if item == "CREDIT_REPAIR_COMPLETED":     # follows listings and penalties (repairs.py)
            source.roles.add(ROLE_CREDIT_REPAIR)
            continue
        if volumes is not None and item in volumes:
            spec = volumes[item]
        elif volumes is not None and item in ("COURT_DISHONEST_DEBTOR", "COMMENDATION") \
                and source.source_id == "provincial_credit":
            source.roles.add("mirrors:" + item)
            continue
        elif volumes is not None and item == "DEBT_PERFORMED" \
                and "COURT_DISHONEST_DEBTOR" in volumes:
            source.roles.add(ROLE_DEBT_PERFORMANCE)
            continue
        elif volumes is not None and item == "COMMITMENT_BREACH" \
                and "COMMITMENT_SIGNED" in volumes:
            source.roles.add(ROLE_COMMITMENT_BREACH)
            continue
        else:
            spec = FALLBACK_TOTAL.get(item, FALLBACK_DEFAULT_TOTAL)
        pool = pool_for(source.source_id, item)
        if isinstance(spec, dict):
            source.streams.extend(Stream(item, level, float(total), pool)
                                  for level, total in spec.items() if total > 0)
        else:
            source.streams.append(Stream(item, None, float(spec), pool))
