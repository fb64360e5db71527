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
    for layer in ("bronze", "quarantine", "staging", "silver", "gold", "report"):
        if (warehouse / layer).is_dir():
            names = sorted(p.name for p in (warehouse / layer).iterdir() if p.is_dir())
            click.echo(f"  {layer:11} {', '.join(names)}")
    click.echo(f"  validation results (GX): {warehouse / 'validation_results'}")
    click.echo(f"portal table: {catalog.PUBLISHED_SCORES.at(settings)}  e.g. "
               f"python -c \"import polars as pl; print(pl.read_delta('{warehouse}/gold/published_scores'))\"")


def main():
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
