"""What someone who can write the audit database, but has not the audit key, can do after
changing an entry: re-hash the chain (tests of issue 24 item 7, SQLite and PostgreSQL)."""
from __future__ import annotations

from citycredit.lookup.audit import ENTRY_FIELDS, entry_hash


def rehash(connect, start: int, key: str | None, until: int | None = None) -> None:
    """What someone who can write the database does after changing entry `start`: recompute the
    chain from it on and move the head — with a key of their own (`key`) or the plain sha256
    (None), since the audit key is not in the database; with `until`, only the entries before it,
    entry `until` then pointing at them. `connect()` gives a DB-API connection whose audit_log
    accepts updates."""
    db = connect()
    cursor = db.cursor()
    cursor.execute(f"SELECT seq, {', '.join(ENTRY_FIELDS)}, prev_hash FROM audit_log "
                   f"ORDER BY seq")
    rows = cursor.fetchall()
    prev = None
    for seq, *values, prev_hash in rows:
        if seq < start:
            continue
        if until is not None and seq == until:
            cursor.execute(f"UPDATE audit_log SET prev_hash = '{prev}' WHERE seq = {seq}")
            break
        prev = prev if prev is not None else prev_hash
        digest = entry_hash(prev, seq, dict(zip(ENTRY_FIELDS, values)), key)
        cursor.execute(f"UPDATE audit_log SET prev_hash = '{prev}', hash = '{digest}' "
                       f"WHERE seq = {seq}")
        prev = digest
    if until is None:
        cursor.execute(f"UPDATE audit_head SET hash = '{prev}' WHERE id = 1")
    db.commit()
    db.close()
