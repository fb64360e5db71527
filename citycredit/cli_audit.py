"""`citycredit audit verify|show`: the lookups' audit log (docs/lookups.md) — its keyed hash
chain checked, its entries listed. A log that does not exist is refused, never created empty."""
from __future__ import annotations

import sys

import click

from .config import load_settings


@click.group()
def audit():
    """The audit log of lookups: verify its hash chain, show entries."""


def _audit_settings(nothing: str = "nothing was verified"):
    """The settings, once the audit log they name exists (else exit 2 saying `nothing` was
    done: never an empty log)."""
    from .lookup.store import missing_audit_log

    settings = load_settings()
    if missing := missing_audit_log(settings, nothing):
        click.echo(f"NOT FOUND: {missing}", err=True)
        sys.exit(2)
    return settings


@audit.command("verify")
def audit_verify():
    """Check the hash chain (HMAC under CITYCREDIT_AUDIT_KEY): exit 1 naming every changed,
    removed or reordered entry — also one changed and re-hashed by someone without the key."""
    from .lookup.audit import audit_log
    from .lookup.store import shown

    log = audit_log(_audit_settings())
    result = log.verify()
    for problem in result.problems:
        click.echo(f"BROKEN: {problem}", err=True)
    keyed = (f"keyed (HMAC-SHA256) from entry {result.keyed_from}"
             + (f", entries 1–{result.keyed_from - 1} from before keying"
                if result.keyed_from > 1 else "") if result.keyed_from else "not keyed")
    click.echo(f"{shown(log.url)}: {result.entries} entries, head {result.head_seq} "
               f"{result.head_hash}, {keyed} — "
               f"{'chain intact' if result.ok else 'CHAIN BROKEN'}")
    sys.exit(0 if result.ok else 1)


def _day(_ctx, _param, value):
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date: use YYYY-MM-DD") from None


@audit.command("show")
@click.option("--grantee", default=None,
              help="only this grantee's entries (an id of conf/grantees.yaml, or one the log "
                   "holds)")
@click.option("--subject", is_flag=True,
              help="only this person: the identity number is read from standard input and "
                   "hashed on the way in")
@click.option("--from", "since", callback=_day, default=None, help="first day, YYYY-MM-DD")
@click.option("--to", "until", callback=_day, default=None, help="last day, YYYY-MM-DD")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def audit_show(grantee, subject, since, until, as_json):
    """Entries of the audit log (days in lookup.timezone), oldest first."""
    import datetime as dt
    import json
    import zoneinfo

    from .identity import is_valid_id_number, subject_key
    from .lookup.audit import AuditLog
    from .lookup.store import audit_url

    settings = _audit_settings("nothing to show")
    zone = zoneinfo.ZoneInfo(settings.lookup["timezone"])

    def utc(day):
        return None if day is None else dt.datetime.combine(day, dt.time(), zone) \
            .astimezone(dt.timezone.utc).isoformat(timespec="microseconds")

    log = AuditLog(audit_url(settings))
    if grantee is not None:     # before the prompt for a number; "" (an unset variable) too
        _check_grantee(settings, log, grantee)
    key = None
    if subject:
        from .cli import _read_id_number     # stdin only, never an argument

        number = _read_id_number("identity number")
        if not is_valid_id_number(number):
            raise click.BadParameter("not a valid resident identity number", param_hint="--subject")
        key = subject_key(number, settings.subject_key)
    entries = log.show(grantee=grantee, subject_key=key, since=utc(since),
                       until=utc(until + dt.timedelta(days=1)) if until else None)
    for e in entries:
        if as_json:
            click.echo(json.dumps(e, ensure_ascii=False))
        else:
            click.echo(f"{e['seq']:>7} {e['at']} {e['channel']:<12} {e['grantee'] or '-':<8} "
                       f"{e['purpose'] or '-':<8} {e['scheme'] or '-':<9} {e['kind']:<11} "
                       f"{e['status']} {e['outcome']:<22} {e['subject_key'] or '-'}")
    if not as_json:
        click.echo(f"{len(entries)} entries", err=True)


def _check_grantee(settings, log, grantee: str) -> None:
    """A grantee neither configured nor in the log (a typo, most likely) would show "0 entries"
    as if it had made no lookup: refused, naming the configured ones (organisations, not
    persons). One that left conf/grantees.yaml keeps its entries in the log: shown."""
    from .config import GRANTEES_FILE, load_grantees

    known = load_grantees(settings.conf_dir)
    if grantee and (grantee in known or log.show(grantee=grantee, limit=1)):
        return
    names = ", ".join(f"{g} ({conf['name']})" for g, conf in known.items())
    raise click.BadParameter(
        f"no grantee {grantee!r} is configured in {settings.conf_dir / GRANTEES_FILE} and the "
        f"audit log holds no entry of one; the grantees are {names}", param_hint="--grantee")
