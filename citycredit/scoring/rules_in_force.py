"""The schemes that score a month: each scheme's version in force for the month, and the refusal
to re-publish a month under other rules than it was published with (issue 24, item 1).

    in_force, not_yet = rules_for_month(settings, "2026-03", ["haibei"])

`in_force` maps a scheme to its adopted version with the latest effective_from ≤ the month
(citycredit/rules/adopted.py); `not_yet` maps a scheme whose first version takes effect after
the month to that first month: it is not scored for the month (the run report says so, it is
not an error). A month already published for a scheme under another rules_version than the one
in force now is refused with :class:`RulesChangedSincePublication` — unless
`rescore_with_current_rules` (`citycredit run … --rescore-with-current-rules`) asks for it.

The rules_version a month was published with is read from the run report (report/run_report:
the latest run whose publish row lists the scheme, and that run's scheme row), or, for a
publication the run report does not record, from the published run's rows of gold/scores.
"""
from __future__ import annotations

import json

from .. import catalog
from ..config import Settings
from ..io import tables
from ..publish.published import published_runs, published_where
from ..rules import RuleFileError, Scheme, schemes_in_force


class RulesChangedSincePublication(RuleFileError):
    """Re-scoring a published month would publish it under other rules than it was published
    with; the message names month, scheme, both rules_versions and the option that allows it."""


def published_rules_versions(settings: Settings, month: str, names: list[str]) -> dict[str, str]:
    """scheme → the rules_version month `month` was published with, for the `names` published
    for it (gold/published_scores holds the partition); a scheme whose version no table records
    is left out."""
    location = catalog.PUBLISHED_SCORES.at(settings)
    if not tables.exists(location):
        return {}
    published = {p["scheme"] for p in tables.partitions(location)
                 if p["score_month"] == month and p["scheme"] in names}
    versions = _reported_versions(settings, month, published)
    gold = catalog.SCORES.at(settings)
    runs = published_runs(settings)
    for name in sorted(published - set(versions) if tables.exists(gold) else ()):
        where = published_where(settings, name, month, runs)
        if where is None:
            continue
        kept = tables.read_arrow(gold, where=where,
                                 columns=["rules_version"]).column("rules_version").unique()
        if len(kept) == 1:
            versions[name] = kept[0].as_py()
    return versions


def _reported_versions(settings: Settings, month: str, names: set[str]) -> dict[str, str]:
    """scheme → rules_version of the latest run that published `month` for it (run_report)."""
    location = catalog.RUN_REPORT.at(settings)
    if not names or not tables.exists(location):
        return {}
    rows = [r for r in tables.read_arrow(location).to_pylist() if r["score_month"] == month]
    rows.sort(key=lambda r: r["created_at"])
    publisher: dict[str, str] = {}           # scheme → run_id of its latest publication
    for r in rows:
        if r["section"] == "publish" and r["name"] == "published_scores":
            for name in json.loads(r["metrics"]).get("published", {}):
                publisher[name] = r["run_id"]
    scored = {(r["run_id"], r["name"]): json.loads(r["metrics"]).get("rules_version")
              for r in rows if r["section"] == "scheme"}
    return {name: scored[(run_id, name)] for name, run_id in publisher.items()
            if name in names and scored.get((run_id, name))}


def rules_for_month(settings: Settings, month: str, names: list[str] | None = None,
                    rescore_with_current_rules: bool = False
                    ) -> tuple[dict[str, Scheme], dict[str, str]]:
    """(scheme → version in force for `month`, scheme → first effective month of a scheme not
    yet in force) for the schemes of settings.rules (all, or `names`). Raises
    UnknownSchemeError / RuleFileError for an unknown name or a broken file, and
    RulesChangedSincePublication when a published month would change rules, unless
    `rescore_with_current_rules`."""
    in_force, not_yet = schemes_in_force(settings.rules, month, names)
    if rescore_with_current_rules or not in_force:
        return in_force, not_yet
    changed = [f"{name} {month} was published under rules {version}, the rules in force for "
               f"{month} are {in_force[name].rules_version} ({in_force[name].path})"
               for name, version in published_rules_versions(settings, month,
                                                             list(in_force)).items()
               if version != in_force[name].rules_version]
    if changed:
        raise RulesChangedSincePublication(
            "; ".join(changed) + ". Re-publishing it under other rules than it was published "
            "with needs --rescore-with-current-rules; a backfill under the rules it was "
            "published with needs that version kept in rules/adopted/<scheme>/"
            "<effective_from>.yaml (docs/rule-format.md, 'Adopting a new version')")
    return in_force, not_yet


def not_in_force_reason(month: str, first: str) -> str:
    """The run report's words for a scheme not scored in `month`."""
    return f"not scored: no version in force in {month} (its first takes effect {first})"
