"""The `citycredit` command (SPEC §6). Thin: parse arguments, call the library, set exit status."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import ConfigError, load_settings
from .months import MonthError, check_month


def _month(_ctx, _param, value):
    if value is None:
        return value
    try:
        return check_month(value, "")
    except MonthError:
        raise click.BadParameter(f"'{value}' is not a month: use YYYY-MM, e.g. 2026-03") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """citycredit — the monthly scoring warehouse for city personal credit scores."""


@cli.command()
@click.option("--adults", type=click.IntRange(min=1), required=True, help="adults in the city")
@click.option("--months", type=click.IntRange(min=1), required=True, help="months of deliveries")
@click.option("--end", callback=_month, required=True, help="last delivery month, YYYY-MM")
@click.option("--landing", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--bad-share", type=click.FloatRange(0, 0.5), default=0.002, show_default=True,
              help="share of findings rows that are deliberately wrong")
def generate(adults, months, end, landing, seed, bad_share):
    """Write a synthetic city's monthly deliveries into a landing folder."""
    from .synth import generate_city

    summary = generate_city(landing, adults=adults, months=months, end=end, seed=seed,
                            bad_share=bad_share)
    click.echo(f"wrote {summary.get('rows_total', '?')} rows "
               f"({summary.get('bytes_total', 0) / 1e6:.1f} MB) to {landing.resolve()} "
               f"in {summary.get('seconds', 0):.1f}s")


@cli.command()
@click.option("--month", callback=_month, required=True, help="score month, YYYY-MM")
@click.option("--schemes", default=None, help="comma-separated scheme ids (default: all in rules/)")
@click.option("--accept-drift", is_flag=True,
              help="publish even if a grade share moved more than the configured bound")
def run(month, schemes, accept_drift):
    """Run one month end to end (the DAG's task functions, without a scheduler).

    Exit status 0 only when the month was published."""
    from rich.console import Console

    from . import pipeline

    console = Console(stderr=True)
    chosen = [s.strip() for s in schemes.split(",") if s.strip()] if schemes else None
    with console.status(f"citycredit {month}") as status:
        def progress(stage, detail=""):
            status.update(f"[bold]{month}[/] {stage}: {detail}")
            console.log(f"{stage} {detail}")
        try:
            outcome = pipeline.run_month(month, chosen, accept_drift, progress=progress)
        except pipeline.PublishRefused as exc:
            click.echo(getattr(exc, "summary", ""))
            click.echo(f"NOT PUBLISHED: {exc}", err=True)
            sys.exit(1)
        except pipeline.REFUSALS as exc:
            click.echo(getattr(exc, "summary", ""))
            click.echo(f"STOPPED: {exc}", err=True)
            sys.exit(1)
    click.echo(outcome["summary"])


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default="demo",
              show_default=True, help="where the demo city's landing/ and warehouse/ go")
@click.option("--adults", type=click.IntRange(min=100), default=2000, show_default=True)
@click.option("--end", callback=_month, default="2026-10", show_default=True)
def demo(folder, adults, end):
    """Generate a small synthetic city and run its months end to end, then print the report."""
    import os
    import shutil

    from . import pipeline
    from . import catalog
    from .months import month_before
    from .synth import generate_city

    folder = folder.resolve()
    landing, warehouse = folder / "landing", folder / "warehouse"
    shutil.rmtree(landing, ignore_errors=True)
    summary = generate_city(landing, adults=adults, months=2, end=end, seed=0)
    click.echo(f"generated {summary['rows_total']} rows of deliveries for {adults} adults "
               f"→ {landing}")
    settings = load_settings(environ={**os.environ, "CITYCREDIT_LANDING": str(landing),
                                      "CITYCREDIT_WAREHOUSE": str(warehouse)})
    months = [month_before(end), end]
    for month in months:
        click.echo(f"running {month} …")
        outcome = pipeline.run_month(month, settings=settings,
                                     progress=lambda stage, detail="": click.echo(f"  {stage} {detail}"))
    click.echo("")
    click.echo(outcome["summary"])
    click.echo("")
    click.echo(f"warehouse (Delta tables): {warehouse}")
    for layer in ("bronze", "quarantine", "staging", "silver", "gold", "report", "privacy"):
        if (warehouse / layer).is_dir():
            names = sorted(p.name for p in (warehouse / layer).iterdir() if p.is_dir())
            click.echo(f"  {layer:11} {', '.join(names)}")
    click.echo(f"  validation results (GX): {warehouse / 'validation_results'}")
    click.echo(f"portal table: {catalog.PUBLISHED_SCORES.at(settings)}  e.g. "
               f"python -c \"import polars as pl; print(pl.read_delta('{warehouse}/gold/published_scores'))\"")


@cli.command()
@click.option("--month", callback=_month, required=True,
              help="carry out the opt-outs requested on or before this month's last day")
def erase(month):
    """Erase opted-out persons from every table, its history and the landing zone (SPEC §7).

    The same step `citycredit run` takes after building silver; the persons go on the
    suppression list, so no later delivery brings them back."""
    import datetime as dt

    from .privacy.task import ErasureError, erase as erase_month

    run_id = "erase-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    try:
        done = erase_month(month, run_id)
    except ErasureError as exc:
        click.echo(f"ERASURE NOT COMPLETE: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{done['persons']} person(s) erased (opt-outs requested by the end of {month}): "
               f"{sum(done['rows'].values())} rows from {len(done['rows'])} tables, "
               f"{done['landing_rows']} rows from {done['landing_files']} landing files, "
               f"{done['files_vacuumed']} files vacuumed, history purged in "
               f"{done['tables_purged']} tables ({done['seconds']:.1f}s)")
    for table, rows in done["rows"].items():
        click.echo(f"  {table:32} {rows:>8} rows")


@cli.command()
@click.option("--dry-run", is_flag=True, help="only list the landing folders that would go")
def cleanup(dry_run):
    """Housekeeping: remove killed runs' `_staging-*` folders, vacuum every table with
    cleanup.retention_days, delete delivery folders older than landing.retention_months."""
    from .privacy.task import cleanup as run_cleanup

    done = run_cleanup(dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(done['deliveries_removed'])} delivery folder(s) before "
               f"{done['landing_before']}")
    for folder in done["deliveries_removed"]:
        click.echo(f"  {folder}")
    if not dry_run:
        click.echo(f"removed {len(done['staging_removed'])} staging folder(s) of killed runs; "
                   f"vacuumed {done['tables']} tables: {done['files_vacuumed']} files removed "
                   f"({done['seconds']:.1f}s)")


@cli.command("privacy-scan")
@click.option("--id-number", default=None,
              help="identity number to look for ('-': read it from standard input)")
@click.option("--subject-key", default=None, help="subject key to look for")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def privacy_scan(id_number, subject_key, as_json):
    """List every place under the warehouse and landing that holds a person (every file on
    disk: Parquet column by column, Delta logs and checkpoints, JSON/HTML, deliveries).

    Exit status 0 only when nothing is found outside the suppression list and erasure log."""
    import json

    from .privacy.task import privacy_scan as scan

    if (id_number is None) == (subject_key is None):
        raise click.UsageError("give exactly one of --id-number and --subject-key")
    if id_number == "-":
        id_number = sys.stdin.readline().strip()
    result = scan(id_number=id_number, subject_key=subject_key)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    else:
        record: dict[str, int] = {}
        for place in result.places:
            if place.erasure_record:        # where the key belongs: one line per table
                record[place.table] = record.get(place.table, 0) + 1
                continue
            click.echo(f"FOUND {place.area:9} {place.table:28} {place.file}  "
                       f"column {place.column}: {place.found} ×{place.count}")
        for table, files in sorted(record.items()):
            click.echo(f"erasure record: {table} ({files} files hold the key, as they should)")
        verdict = ("clean: nothing outside the suppression list and erasure log" if result.clean
                   else f"{len(result.outside_record)} place(s) still hold the person")
        click.echo(f"{verdict} ({result.files} files, {result.bytes / 1e6:.1f} MB, "
                   f"{result.seconds:.1f}s)")
    sys.exit(0 if result.clean else 1)


def main():
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
