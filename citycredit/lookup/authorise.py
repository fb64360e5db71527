"""Who is asking, and may they (issue "Lookups" items 2–3): grantees of conf/grantees.yaml,
identified by an API key whose sha256 is configured (the key itself is stored nowhere), each
allowed some purposes and some schemes.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

#: outcomes of authentication, as the audit log records them
NO_KEY, BAD_KEY = "no_key", "bad_key"


@dataclass(frozen=True)
class Grantee:
    id: str
    name: str
    purposes: frozenset[str]
    schemes: frozenset[str]


class Grantees:
    """The configured grantees (config.load_grantees), by id and by key hash."""

    def __init__(self, configured: dict[str, dict]):
        self.by_id = {gid: Grantee(gid, conf["name"], frozenset(conf["purposes"]),
                                   frozenset(conf["schemes"]))
                      for gid, conf in configured.items()}
        self._by_hash = {conf["key_sha256"]: gid for gid, conf in configured.items()}

    def authenticate(self, authorization: str | None) -> tuple[Grantee | None, str | None]:
        """`Authorization: Bearer <key>` → (grantee, None), or (None, NO_KEY | BAD_KEY)."""
        if not authorization:
            return None, NO_KEY
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None, NO_KEY
        digest = hashlib.sha256(key.strip().encode("utf-8")).hexdigest()
        for known, gid in self._by_hash.items():      # constant time per configured key
            if hmac.compare_digest(known, digest):
                return self.by_id[gid], None
        return None, BAD_KEY

    def get(self, grantee_id: str) -> Grantee | None:
        return self.by_id.get(grantee_id)

    def unknown_schemes(self, adopted) -> dict[str, list[str]]:
        """grantee → schemes it names that are not adopted (the service refuses to start)."""
        return {g.id: sorted(g.schemes - set(adopted)) for g in self.by_id.values()
                if g.schemes - set(adopted)}
