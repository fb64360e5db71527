"""What a finding can say: catalogue items, levels, statuses and the shape of case references.

The item list mirrors rules/catalogue.yaml; UNKNOWN_ITEMS are codes no catalogue has, used only by
the deliberately bad rows.
"""
from __future__ import annotations

from typing import NamedTuple

ITEMS = ["COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "ADMIN_PENALTY", "UNCIVIL_CONDUCT",
         "LOAN_ARREARS", "COMMITMENT_SIGNED", "COMMITMENT_BREACH", "COMMENDATION", "BRAVERY",
         "VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION", "PROVINCIAL_CREDIT_SCORE",
         "CREDIT_SERVICE_SETTLED", "CREDIT_SERVICE_OVERDUE", "CREDIT_REPAIR_COMPLETED"]
UNKNOWN_ITEMS = ["TAX_ARREARS", "PARKING_TICKET", "SOCIAL_INSURANCE_ARREARS", "HONOUR_ROLL"]
NEGATIVE_ITEMS = {"COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY", "UNCIVIL_CONDUCT", "LOAN_ARREARS",
                  "COMMITMENT_BREACH"}
LEVELS = ["minor", "general", "serious", "international", "national", "provincial", "municipal",
          "county"]
PENALTY_LEVELS = LEVELS[0:3]
COMMENDATION_LEVELS = LEVELS[3:8]     # highest first
STATUSES = ["active", "revoked"]


class CaseKind(NamedTuple):
    """A case reference reads prefix + year + middle + number + suffix; the number is
    zero-padded to `pad` digits when pad > 0."""
    name: str
    prefix: str
    middle: str
    suffix: str
    pad: int


CASE_KINDS = [
    CaseKind("court", "(", ")鲁10执", "号", 0),
    CaseKind("traffic", "威公交决字〔", "〕第", "号", 6),
    CaseKind("police", "威公(治)行罚决字〔", "〕", "号", 0),
    CaseKind("market", "威市监处罚〔", "〕", "号", 0),
    CaseKind("urban", "威综执罚决字〔", "〕第", "号", 5),
    CaseKind("civ", "威文明办字〔", "〕", "号", 0),
    CaseKind("deed", "威表彰〔", "〕", "号", 0),
    CaseKind("bravery", "威见义勇为〔", "〕", "号", 0),
    CaseKind("volact", "ZYHD", "-", "", 7),
    CaseKind("blood", "XXBH", "-", "", 8),
    CaseKind("charity", "JZPJ", "-", "", 8),
    CaseKind("commit", "XYCN", "-", "", 8),
    CaseKind("loan", "DKHT", "-", "", 9),
    CaseKind("generic", "REF", "-", "", 8),
    CaseKind("credit", "XYFW", "-", "", 9),
]
CASE_KIND_INDEX = {kind.name: i for i, kind in enumerate(CASE_KINDS)}
PENALTY_CASE_KIND = {"traffic_police": "traffic", "public_security": "police",
                     "market_regulation": "market", "urban_management": "urban",
                     "civilization_office": "civ"}
_ITEM_CASE_KIND = {"COMMENDATION": "deed", "BRAVERY": "bravery", "VOLUNTEER_SERVICE": "volact",
                   "BLOOD_DONATION": "blood", "CHARITY_DONATION": "charity",
                   "COMMITMENT_SIGNED": "commit", "COMMITMENT_BREACH": "commit",
                   "LOAN_ARREARS": "loan", "PROVINCIAL_CREDIT_SCORE": None,
                   "CREDIT_SERVICE_SETTLED": "credit", "CREDIT_SERVICE_OVERDUE": "credit"}


def case_kind_for(source_id: str, item: str) -> str | None:
    """The CASE_KINDS name of a new finding's case reference, or None (no case reference)."""
    if item in ("COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED"):
        return "court"
    if item in ("ADMIN_PENALTY", "UNCIVIL_CONDUCT"):
        return PENALTY_CASE_KIND.get(source_id, "generic")
    return _ITEM_CASE_KIND.get(item, "generic")
