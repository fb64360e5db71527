"""Administration commands: `citycredit config` (the settings in force and where each came
from, docs/configuration.md) and `citycredit adopt` (a new version of a scheme, docs/rule-format.md §12)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import load_settings


@click.command("config")
def show_config():
    """The settings in force, each with where it came from (a conf file and key, or an
    environment variable); secrets masked. docs/configuration.md"""
    from .config import describe

    settings = load_settings(keys_required=False)     # shown even before the keys are set
    origins = settings.origins
    click.echo(f"conf folder  {settings.conf_dir.resolve()}  ← {origins['conf']}")
    click.echo(f"environment  {settings.env} ({settings.conf_dir.resolve() / (settings.env + '.yaml')}"
               f" over base.yaml)  ← {origins['env']}")
    rows = describe(settings)
    width = max(len(name) for name, _, _ in rows)
    for name, value, origin in rows:
        click.echo(f"{name:<{width}}  {value}  ← {origin}")
    click.echo(f"{'sources':<{width}}  {', '.join(settings.sources)}  ← "
               f"{settings.conf_dir.resolve() / 'sources.yaml'}")
    grantees = settings.conf_dir.resolve() / "grantees.yaml"
    click.echo(f"{'grantees':<{width}}  (serve, lookup)  ← " + (
        str(grantees) if grantees.is_file()
        else f"none: {grantees} is missing (serve and lookup will not start without it)"))
    if settings.key_problem:
        click.echo(f"NOT READY: {settings.key_problem}", err=True)
        sys.exit(2)


@click.command()
@click.argument("rule_file", type=click.Path(dir_okay=False, path_type=Path))
def adopt(rule_file):
    """Adopt RULE_FILE (e.g. rules/drafts/haibei-2027.yaml) as its scheme's current version.

    The version it replaces is kept as rules/adopted/<scheme>/<effective_from>.yaml, so months
    before the new effective_from are still scored (and re-scored) under it. Refused, with
    nothing changed, when the file fails the checks or its effective_from is not later than
    the current version's."""
    from .config import load_settings
    from .rules import RuleFileError, adopt as adopt_rules

    try:
        done = adopt_rules(load_settings().rules, rule_file)
    except RuleFileError as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(2)
    new = done.scheme
    click.echo(f"{new.scheme}: adopted {new.version} ({new.rules_version}) from "
               f"{new.effective_from} → {done.installed}")
    if done.replaced is not None:
        click.echo(f"{new.scheme}: {done.replaced.version} ({done.replaced.rules_version}) stays "
                   f"in force before {new.effective_from} → {done.archived}")
