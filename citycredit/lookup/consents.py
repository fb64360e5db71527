"""When a consent lets a grantee look a person up (issue "Lookups"; 黑河: 积分查询和使用需经本人授权).

A consent (silver/consents, current version of its consent_id) names the person (subject_key), the
grantee and the purpose. It is valid on day D iff

    granted_on ≤ D  and  (expires_on is empty or D ≤ expires_on)  and  (revoked_on is empty or D < revoked_on)

— the expiry day is the last day it counts; a revocation takes effect on its own day. D is today
in the centre's time zone (`lookup.timezone`, Asia/Shanghai), not the server's.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Iterable

#: outcomes of a consent check, as the audit log records them
VALID, NO_CONSENT, NOT_YET, EXPIRED, REVOKED = "valid", "no_consent", "consent_not_yet_valid", \
    "consent_expired", "consent_revoked"


@dataclass(frozen=True)
class Consent:
    consent_id: str
    granted_on: dt.date
    expires_on: dt.date | None
    revoked_on: dt.date | None

    def state_on(self, day: dt.date) -> str:
        """VALID, or why not on `day` (REVOKED before EXPIRED before NOT_YET)."""
        if self.revoked_on is not None and day >= self.revoked_on:
            return REVOKED
        if self.expires_on is not None and day > self.expires_on:
            return EXPIRED
        if day < self.granted_on:
            return NOT_YET
        return VALID


def consent_state(consents: Iterable[Consent], day: dt.date) -> str:
    """VALID when any of the person's consents for this grantee and purpose is valid on `day`;
    otherwise the reason of the most recently granted one (NO_CONSENT when there is none)."""
    latest = None
    for consent in consents:
        state = consent.state_on(day)
        if state == VALID:
            return VALID
        if latest is None or consent.granted_on >= latest[0]:
            latest = (consent.granted_on, state)
    return NO_CONSENT if latest is None else latest[1]


def today(timezone: str) -> dt.date:
    """Today's date in `timezone` (e.g. Asia/Shanghai)."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()
