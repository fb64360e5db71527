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


def _policy_console(title: str):
    """A status line and a log on stderr, as `run` shows them; returns (console, progress)."""
    from rich.console import Console

    console = Console(stderr=True)
    status = console.status(title)

    def progress(stage, detail=""):
        status.update(f"[bold]{title}[/] {stage}: {detail}")
        console.log(f"{stage} {detail}")
    return status, progress


def _policy_call(title: str, call):
    """Run a policy tool with progress shown; refusals exit 1 (data missing) or 2 (a rule or
    setting), with the message."""
    from .policy.evaluate import OutcomeItemError
    from .policy.job import PolicyDataMissing
    from .rules import RuleFileError

    status, progress = _policy_console(title)
    try:
        with status:
            return call(progress)
    except PolicyDataMissing as exc:
        click.echo(f"STOPPED: {exc}", err=True)
        sys.exit(1)
    except (RuleFileError, OutcomeItemError) as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(2)


def _policy_outputs(default_report: str):
    """--json and --report, the outputs of both policy tools."""
    def options(command):
        command = click.option(
            "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
            default=None, help=f"the HTML report (default: <policy.reports>/{default_report})")(command)
        return click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="also write the JSON summary here")(command)
    return options


@cli.command()
@click.option("--scheme", required=True, help="the adopted scheme the draft revises")
@click.option("--draft", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="candidate rule file, e.g. rules/drafts/haibei-blood-15.yaml")
@click.option("--month", callback=_month, required=True, help="score month, YYYY-MM")
@_policy_outputs("simulate-<draft>-<month>.html")
def simulate(scheme, draft, month, json_path, report_path):
    """Score a month under the adopted scheme and a draft (sandbox only): who the draft moves."""
    from .policy import task

    summary = _policy_call(f"simulate {draft.stem} {month}", lambda progress: task.simulate(
        scheme, draft, month, json_path=json_path, report_path=report_path, progress=progress))
    crossings = ", ".join(f"≥{g} up {v['up']} down {v['down']}"
                          for g, v in summary["threshold_crossings"].items())
    click.echo(f"{summary['scheme']} {summary['adopted_version']} → draft {summary['draft']} "
               f"{summary['draft_version']}, {month}: {summary['subjects']} subjects, "
               f"{summary['moved']} change grade (up {summary['up']}, down {summary['down']}), "
               f"{summary['score_changed']} change score")
    click.echo(f"thresholds: {crossings}")
    click.echo(f"report: {summary['report']}" + (f"  json: {json_path}" if json_path else ""))


@cli.command()
@click.option("--scheme", required=True, help="an adopted scheme")
@click.option("--month", callback=_month, required=True, help="score month, YYYY-MM")
@click.option("--draft", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a draft of the scheme, evaluated beside it")
@_policy_outputs("evaluate-<scheme>-<month>.html")
def evaluate(scheme, month, draft, json_path, report_path):
    """Validity, discrimination, stability and fairness of a scheme's grades at a month."""
    from .policy import task

    result = _policy_call(f"evaluate {scheme} {month}", lambda progress: task.evaluate(
        scheme, month, draft=draft, json_path=json_path, report_path=report_path,
        progress=progress))

    def line(name, r):
        auc = "—" if r["auc"] is None else f"{r['auc']:.3f}"
        ks = "—" if r["ks"] is None else f"{r['ks']:.3f}"
        psi = ", ".join(f"{k} {'—' if v is None else f'{v:.3f}'}" for k, v in r["psi"].items())
        return (f"{name}: AUC {auc}, KS {ks}, monotone {r['monotone']}, PSI {psi}, "
                f"{len(r['fairness_flags'])} group(s) below the fairness bound")
    click.echo(f"{scheme} {month}: outcome window {result['outcome_months']} month(s), "
               f"{result['subjects']} subjects, {result['bad']} bad")
    click.echo(line("adopted", result))
    if result.get("draft"):
        click.echo(line(f"draft {result['draft']['draft']}", result["draft"]))
    for key, reason in result["reasons"].items():
        click.echo(f"  {key}: {reason}")
    click.echo(f"report: {result['report']}" + (f"  json: {json_path}" if json_path else ""))


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
