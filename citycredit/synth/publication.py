"""A synthetic publication, written straight into a warehouse through the table seam: what the
lookup service serves, without a monthly run (its tests and `make bench-lookup` at 2.25 M adults).

`people(n, seed)` mints n distinct valid identity numbers; `publish_scores` writes their scores and
grades for one month and scheme into gold/published_scores; `write_consents` writes consents into
silver/consents (each a current version).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from .. import catalog
from ..identity import make_id_numbers, subject_key
from ..io import tables
from ..rules import Scheme


def people(n: int, seed: int = 0) -> list[str]:
    """n distinct identity numbers of adults (Weihai region codes, born 1940-2005)."""
    rng = np.random.default_rng(seed)
    regions = np.array([371002, 371003, 371082, 371083])
    born = np.datetime64("1940-01-01") + rng.permutation(np.arange(0, 23_700))
    serial = np.arange(n)
    # distinct by construction: (birth day, region, sequence) runs through a product
    birth = born[serial % len(born)]
    region = regions[(serial // len(born)) % len(regions)]
    seq = (serial // (len(born) * len(regions))) % 1000
    if n > len(born) * len(regions) * 1000:
        raise ValueError("too many people for distinct identity numbers")
    return make_id_numbers(region, birth, seq).tolist()


def subject_keys(id_numbers: list[str], key: str) -> list[str]:
    return [subject_key(i, key) for i in id_numbers]


def publish_scores(warehouse, keys: list[str], scheme: Scheme, month: str, seed: int = 0,
                   scores: list[int] | None = None, run_id: str | None = None) -> None:
    """gold/published_scores (scheme, month) for these subject keys: the given scores, else
    scores drawn around the scheme's base; grades and labels from the scheme. run_id: the
    scoring run whose gold rows they are (None: any run's, as a publication made before runs
    were recorded — citycredit.publish.published)."""
    rng = np.random.default_rng([seed, len(keys)])
    base = int(scheme.base_score)
    values = np.asarray(scores if scores is not None else
                        np.rint(base + rng.normal(0, base * 0.05, len(keys))), dtype=np.int32)
    grades = [scheme.grade_for(int(v)) for v in values]
    now = dt.datetime.now(dt.timezone.utc)
    data = pa.table({
        "subject_key": pa.array(keys, pa.string()),
        "scheme": pa.array([scheme.scheme] * len(keys), pa.string()),
        "score_month": pa.array([month] * len(keys), pa.string()),
        "score": pa.array(values, pa.int32()),
        "grade": pa.array([g.grade for g in grades], pa.string()),
        "grade_label": pa.array([g.label for g in grades], pa.string()),
        "published_at": pa.array([now] * len(keys), catalog.TIMESTAMP),
        "run_id": pa.array([run_id] * len(keys), pa.string()),
    })
    tables.write_arrow(data, catalog.PUBLISHED_SCORES.at(warehouse), mode="overwrite",
                       replace={"scheme": scheme.scheme, "score_month": month})


def write_consents(warehouse, consents: list[dict], key: str, mode: str = "overwrite") -> None:
    """silver/consents rows from dicts with id_number, consent_id, grantee, purpose, granted_on,
    expires_on, revoked_on (dates or None) and optionally known_from / known_until (default: a
    current version delivered in granted_on's month)."""
    rows = []
    for c in consents:
        rows.append({
            "consent_id": c["consent_id"], "source_id": "consents",
            "subject_key": subject_key(c["id_number"], key), "grantee": c["grantee"],
            "purpose": c["purpose"], "granted_on": c["granted_on"],
            "expires_on": c.get("expires_on"), "revoked_on": c.get("revoked_on"),
            "known_from": c.get("known_from") or c["granted_on"].strftime("%Y-%m"),
            "known_until": c.get("known_until"), "load_id": "synthetic"})
    table = pa.Table.from_pylist(rows, schema=catalog.SILVER_CONSENTS.schema)
    tables.write_arrow(table, catalog.SILVER_CONSENTS.at(warehouse), mode=mode)
