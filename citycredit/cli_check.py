"""`citycredit check-delivery` (issue 23): a department checks its delivery before sending it.
Thin: parse arguments, call ingest.check.check_delivery, print, set the exit status. Registered
in cli.py."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import load_settings


def _month(ctx, param, value):
    from .cli import _month as month     # the one --month parser of the command line

    return month(ctx, param, value)


@click.command("check-delivery")
@click.option("--source", "source_id", required=True, help="the source id in conf/sources.yaml")
@click.option("--month", callback=_month, default=None,
              help="the delivery's month, YYYY-MM (default: the files' folder if it is a "
                   "month, else the month all the file names carry, else last month)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
def check_delivery(source_id, month, as_json, files):
    """Check a delivery before sending it: the same reading and checks as landing, nothing
    written. FILES: data files (and manifest.json), or the delivery folder.

    Exit status 0 when it would land cleanly, 1 when it would land with rows quarantined,
    3 when it would be refused as a whole; 2 for a usage or configuration error."""
    from .ingest.check import check_delivery as check

    try:
        verdict = check(source_id, files, load_settings(), month=month)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(verdict.to_json() if as_json else verdict.report())
    sys.exit(verdict.exit_status)
