"""Which subject key made the warehouse's subject keys (issue 24 item 5).

The warehouse records a fingerprint of the key, never the key:

    fingerprint = HMAC-SHA256(key, "citycredit key fingerprint"), first 32 hex digits

in `<warehouse>/_keys/subject_key.json` ({fingerprint, development, recorded_at}), written by the
first silver build (silver.task.build_silver). A month's run checks it before anything is landed
(ingest.task.check_deliveries), and so do erasure and the lookup service: a run with another key
would make pseudonyms that match no one already in the warehouse (an erased person would be
missed, a lookup would find no one), so it stops with KeyMismatch, a ConfigError (`NOT STARTED`,
exit 2). The fingerprint cannot be turned back into the key; it only tells keys apart.

A warehouse built before this record existed gets it on its next silver build, with the key in
force then (nothing older says which key was used).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from pathlib import Path

from .config import DEVELOPMENT_KEYS, ConfigError, Settings

__all__ = ["KeyMismatch", "key_fingerprint", "record_path", "recorded_fingerprint",
           "check_subject_key", "record_subject_key"]

_MESSAGE = b"citycredit key fingerprint"


class KeyMismatch(ConfigError):
    """The subject key in force is not the one that made the warehouse's subject keys."""


def key_fingerprint(key: str) -> str:
    """32 hex digits that tell keys apart without revealing them."""
    return hmac.new(key.encode("utf-8"), _MESSAGE, hashlib.sha256).hexdigest()[:32]


def record_path(warehouse) -> Path:
    return Path(warehouse) / "_keys" / "subject_key.json"


def recorded_fingerprint(warehouse) -> dict | None:
    """The warehouse's record ({fingerprint, development, recorded_at}), None when it has none."""
    try:
        return json.loads(record_path(warehouse).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        raise ConfigError(f"{record_path(warehouse)}: not a key record (JSON); restore it "
                          "from a backup or remove it to record the key in force") from None


def check_subject_key(settings: Settings) -> None:
    """Raise KeyMismatch when the warehouse records another key than settings.subject_key."""
    record = recorded_fingerprint(settings.warehouse)
    if record is None or record.get("fingerprint") == key_fingerprint(settings.subject_key):
        return
    made_by = ("the public development key" if record.get("development")
               else "another key (a production key)")
    raise KeyMismatch(
        f"{settings.warehouse}: its subject keys were made with {made_by} (fingerprint "
        f"{record.get('fingerprint')} in {record_path(settings.warehouse)}), not the subject key "
        f"in force (fingerprint {key_fingerprint(settings.subject_key)}); set "
        f"CITYCREDIT_SUBJECT_KEY to the warehouse's key — nothing was done")


def record_subject_key(settings: Settings) -> None:
    """Record the key in force if the warehouse has no record yet; check it otherwise."""
    path = record_path(settings.warehouse)
    if path.exists():
        check_subject_key(settings)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({
        "fingerprint": key_fingerprint(settings.subject_key),
        "development": settings.subject_key == DEVELOPMENT_KEYS["subject_key"],
        "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}),
        encoding="utf-8")
    os.replace(temporary, path)
