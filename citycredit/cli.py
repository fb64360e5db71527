"""The `citycredit` command (SPEC §6). Thin: parse arguments, call the library, set exit status."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .cli_check import check_delivery
from .cli_admin import adopt, show_config
from .cli_audit import audit
from .config import ConfigError, load_settings
from .months import MonthError, check_month


_BUSY = 75      # exit status when the warehouse lock is held by another run, erasure or cleanup


def _month(_ctx, _param, value):
    if value is None:
        return value
    try:
        return check_month(value, "")
    except MonthError:
        raise click.BadParameter(f"'{value}' is not a month: use YYYY-MM, e.g. 2026-03") from None


class _MaskedUsageErrors(click.Group):
    """Click's errors (an unexpected extra argument, a bad --month value) echo what was typed:
    an identity number typed where it does not belong is masked in them, as in every message
    (identity.mask_id_numbers_in)."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            raise _masked(exc)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            raise _masked(exc)


def _masked(exc: click.ClickException) -> click.ClickException:
    from .identity import mask_id_numbers_in

    exc.message = mask_id_numbers_in(exc.message)
    return exc


@click.group(cls=_MaskedUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--rescore-with-current-rules", is_flag=True,
              help="re-publish a month already published under other rules with the rules in "
                   "force now (refused without it)")
@click.option("--new-warehouse", is_flag=True,
              help="start a new warehouse at this month although the landing zone holds earlier "
                   "months (refused without it: most likely a mistyped warehouse path)")
def run(month, schemes, accept_drift, rescore_with_current_rules, new_warehouse):
    """Run one month end to end (the DAG's task functions, without a scheduler).

    Each scheme scores under its version in force for the month (docs/rule-format.md); a
    scheme with no version in force yet is not scored. Exit status 0 only when the month was
    published."""
    from . import pipeline
    from .rules import RuleFileError

    chosen = [s.strip() for s in schemes.split(",") if s.strip()] if schemes is not None else None
    if chosen == []:        # an explicit empty list is not "every scheme"
        raise click.BadParameter("names no scheme", param_hint="--schemes")
    status, progress = _progress(month, f"citycredit {month}")
    undo = _nothing_to_undo
    with status:
        try:
            settings = load_settings()
            _check_new_warehouse(settings, month, new_warehouse)
            undo = _undo_new_warehouse(settings.warehouse)
            outcome = pipeline.run_month(month, chosen, accept_drift, progress=progress,
                                         settings=settings,
                                         rescore_with_current_rules=rescore_with_current_rules)
        except (RuleFileError, ConfigError) as exc:  # a scheme or setting (or rules changed
            click.echo(f"NOT STARTED: {exc}", err=True)   # since publication): before anything
            undo()                                        # runs
            sys.exit(2)
        except pipeline.REFUSALS as exc:    # the reason once: the report says it already
            said = str(exc) in getattr(exc, "summary", "")
            click.echo(getattr(exc, "summary", ""))
            click.echo(("NOT PUBLISHED" if isinstance(exc, pipeline.PublishRefused) else "STOPPED")
                       + (f": {getattr(exc, 'short', exc)} (in full: the report's NOT PUBLISHED "
                          "line above)" if said else f": {exc}"), err=True)
            undo()
            sys.exit(1)
        except pipeline.WarehouseBusy as exc:
            click.echo(f"NOT STARTED: {exc}", err=True)
            sys.exit(_BUSY)
    click.echo(outcome["summary"])


def _check_new_warehouse(settings, month: str, new_warehouse: bool) -> None:
    """A run on a folder that holds no warehouse yet starts a new warehouse. When the
    landing zone holds earlier months, that is most likely a mistyped path (the month would be
    scored with none of their findings and published): refused, exit 2, unless --new-warehouse.
    Otherwise (a first month) said first, so that it is seen before it publishes."""
    from . import catalog
    from .ingest.delivery import delivered_months_before

    if catalog.holds_warehouse(settings.warehouse):
        return
    origin = settings.origins.get("paths.warehouse", "conf")
    earlier = delivered_months_before(settings.landing, settings.sources, month)
    if earlier and not new_warehouse:
        span = earlier[0] if len(earlier) == 1 else f"{earlier[0]} … {earlier[-1]}"
        click.echo(f"NOT STARTED: no warehouse at {settings.warehouse} (paths.warehouse, from "
                   f"{origin}), but the landing zone {settings.landing} holds {len(earlier)} "
                   f"earlier month(s) ({span}): a new warehouse would score {month} without "
                   "their findings. Set CITYCREDIT_WAREHOUSE to the warehouse that holds them, "
                   f"run the months in order from {earlier[0]} (citycredit run --month "
                   f"{earlier[0]}), or pass --new-warehouse to start one at {month} on purpose.",
                   err=True)
        sys.exit(2)
    click.echo(f"NOTE: no warehouse at {settings.warehouse} yet (paths.warehouse, from {origin}): "
               f"this run starts a new one, and {month} is scored with no earlier month's "
               "history. If you meant an existing warehouse, stop now (Ctrl-C) and set "
               "CITYCREDIT_WAREHOUSE to it.", err=True)


def _nothing_to_undo() -> None:
    """What a refused run on a warehouse that was there already takes back: nothing."""


def _undo_new_warehouse(warehouse: Path):
    """For a run that starts a new warehouse, a function that puts the folder back as the run
    found it — what the run created in it removed (the folder itself, and the parents made for
    it, when it was not there) — so that a refused first month leaves no `_keys/`, `_locks/`
    or `report/` behind (a key record there would refuse the next run under another key). Kept
    when the run erased someone: the suppression list must stay (SPEC §7)."""
    import shutil

    from . import catalog
    from .io import tables

    folder = Path(warehouse).absolute()
    if catalog.holds_warehouse(folder):
        return _nothing_to_undo
    top = folder            # the highest folder this run will have made
    while not top.parent.exists():
        top = top.parent
    before = {p.name for p in folder.iterdir()} if folder.is_dir() else None

    def undo() -> None:
        if not folder.is_dir():
            return
        if tables.exists(catalog.SUPPRESSION_LIST.at(folder)) and "privacy" not in (before or ()):
            click.echo(f"NOTE: the new warehouse at {folder} is kept: this run erased opted-out "
                       "persons, and its suppression list keeps them from coming back", err=True)
            return
        made = [top] if before is None else [p for p in folder.iterdir() if p.name not in before]
        if not made:
            return
        for path in made:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        click.echo(f"NOTE: {folder} is as it was before the run: a refused first month leaves no "
                   "warehouse behind", err=True)
    return undo


def _progress(title: str, first: str | None = None):
    """A status line and a line per step on stderr, for `run` and the policy tools; returns
    (status, progress). On a terminal, rich's log (time and step; its source-location column
    says nothing to an operator); into a file or a pipe, one plain line per step — rich would
    wrap it at 80 columns and pad it with spaces there."""
    import datetime as dt

    from rich.console import Console

    console = Console(stderr=True, log_path=False)
    status = console.status(first or title)

    def progress(stage, detail=""):
        if stage == "warning":      # said in full, not as a log line
            return click.echo(f"WARNING: {detail}", err=True)
        status.update(f"[bold]{title}[/] {stage}: {detail}")
        if console.is_terminal:
            console.log(f"{stage} {detail}", markup=False)
        else:
            click.echo(f"[{dt.datetime.now():%H:%M:%S}] {stage} {detail}", err=True)
    return status, progress


def _policy_call(title: str, call):
    """Run a policy tool with progress shown; refusals exit 1 (data missing) or 2 (a rule or
    setting, or points a rule gives beyond their exact type), with the message; 75 when a run,
    an erasure or a cleanup holds the warehouse."""
    from .io.lock import WarehouseBusy
    from .policy.evaluate import OutcomeItemError
    from .policy.job import PolicyDataMissing
    from .rules import RuleFileError
    from .scoring.job import PointsOutOfRange

    status, progress = _progress(title)
    try:
        with status:
            return call(progress)
    except PolicyDataMissing as exc:
        click.echo(f"STOPPED: {exc}", err=True)
        sys.exit(1)
    except (RuleFileError, OutcomeItemError, ConfigError, PointsOutOfRange) as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(2)
    except WarehouseBusy as exc:
        click.echo(f"NOT STARTED: {exc}", err=True)
        sys.exit(_BUSY)


def _in_a_folder(ctx, param, value: str | None) -> Path | None:
    """An output file given on the command line: refused before any work (exit 2) unless it
    names a file (not '', not a folder, no trailing /) in an existing folder this user may
    write to — the folder is not created (a mistyped one is not made, at / or anywhere)."""
    if value is None:
        return None
    path = Path(value)
    if not value.strip() or value.endswith(("/", os.sep)) or path.is_dir():
        raise click.BadParameter(f"{value!r} is a folder: name a file")
    folder = path.parent
    if not folder.exists():
        raise click.BadParameter(f"{value}: folder {folder} does not exist")
    if not folder.is_dir():
        raise click.BadParameter(f"{value}: {folder} is not a folder")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{value}: not writable by this user")
    return path


def _policy_outputs(default_report: str):
    """--json and --report, the outputs of both policy tools."""
    def options(command):
        command = click.option(
            "--report", "report_path", type=str, default=None, callback=_in_a_folder,
            help=f"the HTML report (default: <policy.reports>/{default_report})")(command)
        return click.option("--json", "json_path", type=str, default=None, callback=_in_a_folder,
                            help="also write the JSON summary here")(command)
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
        monotone = "—" if r["monotone"] is None else r["monotone"]
        psi = ", ".join(f"{k} {'—' if v is None else f'{v:.3f}'}" for k, v in r["psi"].items())
        return (f"{name}: AUC {auc}, KS {ks}, monotone {monotone}, PSI {psi}, "
                f"{len(r['fairness_flags'])} group(s) below the fairness bound")
    window = (f"outcome window {result['outcome_months']} month(s), {result['subjects']} "
              f"subjects, {result['bad']} bad" if result["outcome_months"] else
              f"no outcome window (AUC, KS and bad rates need later months: see below), "
              f"{result['subjects']} subjects")
    click.echo(f"{scheme} {month}: {window}")
    click.echo(line("adopted", result))
    if result.get("draft"):
        click.echo(line(f"draft {result['draft']['draft']}", result["draft"]))
    said: dict[str, list[str]] = {}        # a reason once, with every measure it is for
    for key, reason in result["reasons"].items():
        said.setdefault(reason, []).append(key)
    for reason, keys in said.items():
        click.echo(f"  {', '.join(keys)}: {reason}")
    click.echo(f"report: {result['report']}" + (f"  json: {json_path}" if json_path else ""))


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default="demo",
              show_default=True, help="where the demo city's landing/ and warehouse/ go")
@click.option("--adults", type=click.IntRange(min=100), default=None,
              help="adults in the city [default: citycredit.demo.DEMO_ADULTS]")
@click.option("--end", callback=_month, default="2026-10", show_default=True)
@click.option("--run-months", type=click.IntRange(1, 6), default=None,
              help="the last months run end to end, the others bulk-loaded "
                   "[default: citycredit.demo.DEMO_RUN_MONTHS]")
def demo(folder, adults, end, run_months):
    """Generate the demo city (36 months: 34 bulk-loaded, the last 2 run end to end), then
    print the report and where everything is."""
    from . import catalog
    from .demo import DEMO_ADULTS, DEMO_MONTHS, DEMO_RUN_MONTHS, build_demo

    folder = folder.resolve()
    run_months = run_months or DEMO_RUN_MONTHS
    built = build_demo(folder, adults=adults or DEMO_ADULTS, end=end, run_months=run_months,
                       say=click.echo)
    settings, warehouse = built["settings"], built["settings"].warehouse
    click.echo("")
    click.echo(built["outcome"]["summary"])
    click.echo("")
    click.echo(f"{DEMO_MONTHS} months: {DEMO_MONTHS - run_months} bulk-loaded into bronze and "
               f"silver, {', '.join(built['months'])} run end to end; "
               + ", ".join(f"{k} {v:.0f} s" for k, v in built["seconds"].items()))
    click.echo(f"warehouse (Delta tables): {warehouse}")
    for layer in ("bronze", "quarantine", "staging", "silver", "gold", "report", "privacy"):
        if (warehouse / layer).is_dir():
            names = sorted(p.name for p in (warehouse / layer).iterdir() if p.is_dir())
            click.echo(f"  {layer:11} {', '.join(names)}")
    click.echo(f"  validation results (GX): {warehouse / 'validation_results'}")
    click.echo(f"portal table: {catalog.PUBLISHED_SCORES.at(settings)}")
    click.echo(f"analyst notebooks: `make notebooks` renders them to {folder / 'notebooks'}/*.html; "
               f"open them with `.venv/bin/jupyter lab notebooks/` (docs/notebooks.md)")


@cli.command()
@click.option("--warehouse", type=click.Path(file_okay=False, path_type=Path), default="demo/warehouse",
              show_default=True, help="the warehouse the notebooks read")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where the executed notebooks and HTML go [default: <warehouse>/../notebooks]")
@click.option("--only", multiple=True, help="a notebook's name (repeatable); default all")
@click.option("--pictures", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="also write each notebook's README figure there (docs/notebook-<name>.png)")
def notebooks(warehouse, out, only, pictures):
    """Execute the analyst notebooks (notebooks/*.py) against a warehouse with papermill and
    render each to HTML."""
    from .notebooks import NOTEBOOKS, NotebookFailed, render_all

    warehouse = warehouse.resolve()
    if not (warehouse / "gold" / "scores").is_dir():
        click.echo(f"no scores in {warehouse}: run `make demo` (or `citycredit run`) first", err=True)
        sys.exit(1)
    out = (out or warehouse.parent / "notebooks").resolve()
    unknown = sorted(set(only) - set(NOTEBOOKS))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; there are {', '.join(NOTEBOOKS)}",
                                 param_hint="--only")
    try:
        render_all(warehouse, out, names=[n for n in NOTEBOOKS if not only or n in only],
                   say=click.echo, pictures=pictures)
    except NotebookFailed as failed:
        click.echo(str(failed), err=True)
        sys.exit(1)
    click.echo(f"HTML: {out}/*.html")


# ---------------------------------------------------------------------------------------------
# lookups (issue "Lookups"): citycredit/lookup/
def _lookup_setup_checked(function):
    """A lookup command whose configuration is refused (grantees, rules, recognition tables)
    says so in one line and exits 2; without a warehouse folder, exit 1 (store.no_warehouse)."""
    import functools

    @functools.wraps(function)
    def checked(*args, **kwargs):
        from .lookup.lookups import LookupSetupError
        from .lookup.store import no_warehouse
        from .rules import RuleFileError

        problem = no_warehouse(load_settings())
        if problem:
            click.echo(problem, err=True)
            sys.exit(1)
        try:
            return function(*args, **kwargs)
        except (LookupSetupError, RuleFileError) as exc:
            click.echo(f"configuration error: {exc}", err=True)
            sys.exit(2)
    return checked


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@_lookup_setup_checked
def serve(host, port):
    """The lookup service: consent-checked score and grade lookups over HTTP, every request in
    the hash-chained audit log."""
    from .lookup.service import PortInUse, serve as run_service

    try:
        run_service(host, port)
    except PortInUse as exc:
        click.echo(f"NOT STARTED: {exc.strerror}", err=True)
        sys.exit(3)


def _read_id_number(what: str) -> str:
    """An identity number from standard input (a prompt without echo on a terminal): never an
    argument, which would show in `ps` and the shell's history."""
    if sys.stdin.isatty():
        return click.prompt(what, hide_input=True).strip()
    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if len(lines) > 1:      # one person per command: a second line is not silently dropped
        raise click.UsageError(f"standard input holds {len(lines)} lines: give one {what} "
                               "per command")
    if not lines:
        raise click.UsageError(f"standard input holds no {what}: give one on a line")
    return lines[0]


@cli.command()
@click.option("--grantee", required=True, help="the grantee of conf/grantees.yaml acted for")
@click.option("--purpose", required=True, help="one of the grantee's purposes (self: a report)")
@click.option("--scheme", required=True, help="the scheme looked up")
@click.option("--report", is_flag=True, help="the person's own report (purpose self)")
@click.option("--as", "as_scheme", default=None, help="also the recognised grade in this scheme")
@_lookup_setup_checked
def lookup(grantee, purpose, scheme, report, as_scheme):
    """Look a person up as the service would, for an operator: the identity number is read from
    standard input; the answer (JSON) goes to standard output. Same checks, same audit log.
    Exit status 0 when granted, 1 when refused."""
    import json

    from .lookup.audit import AuditUnavailable, audit_log
    from .lookup.index import build_index
    from .lookup.lookups import Lookups

    if report and as_scheme:
        raise click.UsageError("--report and --as are different lookups: choose one")
    settings = load_settings()
    log = audit_log(settings)             # no lookup without a keyed audit log
    build_index(settings)                 # the index as the service would serve it now
    lookups = Lookups(settings)
    kind = "report" if report else "recognition" if as_scheme else "score"
    body = {"id_number": _read_id_number("identity number"), "purpose": purpose}
    if as_scheme:
        body["as"] = as_scheme
    answer = lookups.lookup_as_operator(kind, grantee, scheme, body)
    try:
        log.append([answer.entry])
    except AuditUnavailable as exc:
        click.echo(f"503: {exc}: no answer without its audit entry", err=True)
        sys.exit(1)
    if answer.status != 200:
        click.echo(f"{answer.status}: {answer.body['detail']}", err=True)
        sys.exit(1)
    click.echo(json.dumps(answer.body, ensure_ascii=False, indent=1))


@cli.group()
def recognition():
    """Grade recognition across schemes (互认): rules/recognition/<from>__<to>.yaml."""


@recognition.command("propose")
@click.option("--from", "source", required=True, help="the scheme whose grades are recognised")
@click.option("--to", "target", required=True, help="the scheme they are read as")
@click.option("--month", callback=_month, required=True, help="a published month, YYYY-MM")
def recognition_propose(source, target, month):
    """Propose a recognition table by percentile matching on one month's published population;
    prints a YAML draft with the share tables, for policy staff to edit and adopt."""
    from .lookup.recognition import ProposalError, propose, proposal_yaml

    try:
        click.echo(proposal_yaml(propose(load_settings(), source, target, month)), nl=False)
    except ProposalError as exc:
        click.echo(f"cannot propose: {exc}", err=True)
        sys.exit(1)


@cli.command()
@click.option("--month", callback=_month, required=True,
              help="carry out the opt-outs landed here that were requested on or before this "
                   "month's last day")
def erase(month):
    """Erase opted-out persons from every table, its history and the landing zone (SPEC §7).

    The same step `citycredit run` takes after building silver: it carries out the opt-outs
    that runs have landed (validated and pseudonymised, in silver/optouts). Opt-outs delivered
    but not landed yet are not seen: they are listed, with the month to run first (its run
    lands them and erases). The persons go on the suppression list, so no later delivery
    brings them back."""

    from . import catalog
    from .config import landing_folder
    from .io.lock import WarehouseBusy
    from .pipeline import new_run_id
    from .privacy.task import ErasureError, erase as erase_month, optouts_not_landed

    run_id = new_run_id("erase-")
    try:
        settings = load_settings()
        landing_folder(settings)         # ConfigError first: no landing zone where it points
        if not catalog.holds_warehouse(settings.warehouse):   # a mistyped path: not "0 erased"
            click.echo(f"NOT STARTED: no warehouse at {settings.warehouse} (no "
                       f"{', '.join(catalog.WAREHOUSE_LAYERS)} folder; paths.warehouse, from "
                       f"{settings.origins.get('paths.warehouse', 'conf')}): nobody was erased "
                       "(check CITYCREDIT_WAREHOUSE)", err=True)
            sys.exit(2)
        _check_erasable(settings, month)
        done = erase_month(month, run_id, settings)
    except ConfigError as exc:      # e.g. no landing zone where paths.landing points
        click.echo(f"NOT STARTED: configuration error: {exc}", err=True)
        sys.exit(2)
    except ErasureError as exc:
        click.echo(f"ERASURE NOT COMPLETE: {exc}", err=True)
        sys.exit(1)
    except WarehouseBusy as exc:
        click.echo(f"NOT STARTED: {exc}", err=True)
        sys.exit(_BUSY)
    click.echo(f"{done['persons']} person(s) erased (opt-outs landed here and requested by the "
               f"end of {month}): {sum(done['rows'].values())} rows from {len(done['rows'])} "
               f"tables, {done['landing_rows']} rows from {done['landing_files']} landing files, "
               f"{done['files_vacuumed']} files vacuumed, history purged in "
               f"{done['tables_purged']} tables ({done['seconds']:.1f}s)")
    for table, rows in done["rows"].items():
        click.echo(f"  {table:32} {rows:>8} rows")
    unseen = optouts_not_landed(settings, month)
    if unseen:
        first = min(folder.name for folder in unseen)
        click.echo(f"WARNING: not seen: opt-outs delivered but not landed yet in "
                   f"{', '.join(map(str, unseen))}: run their month first (citycredit run "
                   f"--month {first}: it lands them and its erase step carries them out)",
                   err=True)


def _check_erasable(settings, month: str) -> None:
    """`erase --month` of a month no run has landed yet — one to come, or after the latest month
    run here — would say "0 erased" for opt-outs it cannot see: refused, exit 2, naming the
    latest month it can erase."""
    import datetime as dt

    from .ingest.delivery import latest_landed_month
    from .months import month_of

    today = dt.date.today()
    latest = latest_landed_month(settings)
    if month > month_of(today):
        why = f"{month} has not begun yet (today is {today.isoformat()})"
    elif latest is not None and month > latest:
        why = (f"no run has landed {month} yet (the latest month run here is {latest}): run it "
               f"first (citycredit run --month {month}; its erase step carries out its opt-outs)")
    else:
        return
    click.echo(f"NOT STARTED: {why}; nobody was erased"
               + (f" (citycredit erase --month {latest} carries out every opt-out landed so far)"
                  if latest else ""), err=True)
    sys.exit(2)


@cli.command()
@click.option("--dry-run", is_flag=True, help="only list the landing folders that would go")
def cleanup(dry_run):
    """Housekeeping: remove killed runs' `_staging-*` folders, vacuum every table with
    cleanup.retention_days, delete delivery folders older than landing.retention_months."""
    from .io.lock import WarehouseBusy
    from .privacy.task import NoWarehouse, cleanup as run_cleanup

    try:
        done = run_cleanup(dry_run=dry_run)
    except NoWarehouse as exc:
        click.echo(f"NOT STARTED: {exc}", err=True)
        sys.exit(2)
    except WarehouseBusy as exc:
        click.echo(f"NOT STARTED: {exc}", err=True)
        sys.exit(_BUSY)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(done['deliveries_removed'])} delivery folder(s) before "
               f"{done['landing_before']}")
    for folder in done["deliveries_removed"]:
        click.echo(f"  {folder}")
    if done["deliveries_kept"]:
        click.echo(f"kept {len(done['deliveries_kept'])} delivery folder(s) before "
                   f"{done['landing_before']} holding files never landed here (neither the run report "
                   "nor bronze names them: land them with a run of their month, or remove them "
                   "by hand):")
        for folder in done["deliveries_kept"]:
            click.echo(f"  {folder}")
    if not dry_run:
        click.echo(f"removed {len(done['staging_removed'])} staging folder(s) of killed runs; "
                   f"vacuumed {done['tables']} tables: {done['files_vacuumed']} files removed "
                   f"({done['seconds']:.1f}s)")


@cli.command("privacy-scan")
@click.option("--id-number", default=None,
              help="identity number to look for ('-': read them from standard input, one a line)")
@click.option("--subject-key", default=None,
              help="subject key to look for ('-': read them from standard input, one a line)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def privacy_scan(id_number, subject_key, as_json):
    """List every place under the warehouse, landing and the policy reports folder that holds a
    person (every file on disk: Parquet column by column, Delta logs and checkpoints, JSON/HTML,
    deliveries). Many persons are searched in one pass: '-' reads one a line from stdin, and
    places then name the person by line number (never the number itself).

    Exit status 0 only when nothing is found outside the allowed places (erasure record,
    lookup audit log)."""
    import json

    from .io.lock import WarehouseBusy
    from .privacy.task import NotAPerson, NothingToScan
    from .privacy.task import privacy_scan as scan

    if (id_number is None) == (subject_key is None):
        raise click.UsageError("give exactly one of --id-number and --subject-key")
    given = id_number if id_number is not None else subject_key
    values = ([line.strip() for line in sys.stdin if line.strip()] if given == "-"
              else [given.strip()] if given.strip() else [])
    if not values:
        raise click.UsageError("nothing to look for" + (" on standard input" if given == "-"
                                                        else ": the value is empty"))
    if id_number is not None and given != "-":
        click.echo("warning: an identity number on the command line stays in the shell's "
                   "history and shows in the process list: prefer --id-number - < file",
                   err=True)
    many = len(values) > 1
    try:
        result = (scan(id_numbers=values) if id_number is not None
                  else scan(subject_keys=values))
    except NotAPerson as exc:       # the value itself is never echoed
        option = "--id-number" if id_number is not None else "--subject-key"
        where = f"standard input, line {exc.position}" if given == "-" else "the value"
        raise click.UsageError(f"{option}: {where} {exc.problem}")
    except NothingToScan as exc:
        raise click.UsageError(str(exc))
    except WarehouseBusy as exc:
        click.echo(f"NOT STARTED: {exc}", err=True)
        sys.exit(_BUSY)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    else:
        record: dict[tuple[str, int], int] = {}
        for place in result.places:
            who = f"person {place.person} " if many else ""
            if place.erasure_record:        # where the key belongs: one line per table
                record[(place.table, place.person)] = record.get((place.table, place.person), 0) + 1
                continue
            click.echo(f"FOUND {who}{place.area:9} {place.table:28} {place.file}  "
                       f"column {place.column}: {place.found} ×{place.count}")
        for (table, person), files in sorted(record.items()):
            who = f"person {person}: " if many else ""
            what = ("lookup audit log, kept as the legal trace of lookups" if "audit" in table
                    else "erasure record")
            click.echo(f"allowed: {who}{table} ({what}; {files} file(s) hold the key, "
                       "as they should)")
        held = sorted({p.person for p in result.outside_record})
        verdict = ("clean: nothing outside the erasure record and the audit log" if result.clean
                   else f"{len(result.outside_record)} place(s) still hold "
                        + (f"persons {', '.join(map(str, held))} of {len(values)}" if many
                           else "the person"))
        click.echo(f"{verdict} ({len(values)} person(s), {result.files} files, "
                   f"{result.bytes / 1e6:.1f} MB, {result.seconds:.1f}s)")
    sys.exit(0 if result.clean else 1)


cli.add_command(check_delivery)     # citycredit check-delivery (cli_check.py)
cli.add_command(show_config)        # citycredit config (cli_admin.py)
cli.add_command(adopt)              # citycredit adopt (cli_admin.py)
cli.add_command(audit)              # citycredit audit verify|show (cli_audit.py)


def main():
    """The console script: the command's own exit status, whatever a library's threads do at
    interpreter exit (citycredit.shutdown)."""
    import traceback

    from .shutdown import exit_now, status_of

    try:
        cli(standalone_mode=True)
        status = 0
    except SystemExit as exc:
        status = status_of(exc)
    except ConfigError as exc:
        click.echo(f"NOT STARTED: configuration error: {exc}", err=True)
        status = 2
    except Exception:       # what Python would print and exit 1 with
        traceback.print_exc()
        status = 1
    exit_now(status)


if __name__ == "__main__":
    main()
