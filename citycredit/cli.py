"""The `citycredit` command (SPEC §6). Thin: parse arguments, call the library, set exit status."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from .config import ConfigError, load_settings

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(_ctx, _param, value):
    if value is not None and not MONTH.match(value):
        raise click.BadParameter(f"'{value}' is not a month: use YYYY-MM, e.g. 2026-03")
    return value


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
    from .generate import generate_city

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
        except (pipeline.DeliveryMissing, pipeline.BatchRejected) as exc:
            click.echo(f"STOPPED: {exc}", err=True)
            sys.exit(1)
    click.echo(outcome["summary"])


def main():
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
