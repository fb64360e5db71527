"""The rules in force by month, through months of a small generated city (issue 24, item 1).

One scenario, in order, on its own warehouse (two whole runs, the rest step by step to stay
fast): dazixiang's first version takes effect in 2026-03, so 2026-02 publishes haibei only and
says why; a new haibei version (base score +7) is adopted from 2026-03; 2026-03 is scored under
it; a backfill of 2026-02 reproduces what 2026-02 first published; a published month whose
rules were then edited in place is refused, and re-published under the edited rules only when
asked for.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from citycredit import catalog, pipeline
from citycredit.cli import cli as citycredit_cli
from citycredit.config import load_settings
from citycredit.io import tables
from citycredit.rules import adopt
from citycredit.scoring.rules_in_force import RulesChangedSincePublication
from citycredit.synth import generate_city

PROJECT = Path(__file__).resolve().parents[2]
SCHEMES = ["haibei", "dazixiang"]


def published(settings, month, scheme):
    rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings),
                             where={"score_month": month, "scheme": scheme})
    return dict(zip(rows.column("subject_key").to_pylist(),
                    zip(rows.column("score").to_pylist(), rows.column("grade").to_pylist())))


def gold_versions(settings, month, scheme):
    rows = tables.read_arrow(catalog.SCORES.at(settings),
                             where={"score_month": month, "scheme": scheme},
                             columns=["rules_version"])
    return set(rows.column("rules_version").to_pylist())


def revised(name: str, version: str, effective_from: str, base_score: int | None = None) -> str:
    """The shipped rules/<name>.yaml with another version, effective_from (and base score)."""
    text = (PROJECT / "rules" / f"{name}.yaml").read_text("utf-8")
    shipped = {"haibei": ("2026.1", "1000"), "dazixiang": ("2026.1", None)}[name]
    text = (text.replace(f'version: "{shipped[0]}"', f'version: "{version}"')
                .replace("effective_from: 2026-01", f"effective_from: {effective_from}"))
    return text if base_score is None else text.replace(f"base_score: {shipped[1]}",
                                                        f"base_score: {base_score}")


def versions_of(scored) -> dict[str, str]:
    return {s["scheme"]: s["rules_version"] for s in scored}


def erased(settings) -> set[str]:
    listed = tables.read_arrow(catalog.SUPPRESSION_LIST.at(settings), columns=["subject_key"])
    return set(listed.column("subject_key").to_pylist())


def run(settings, month, **options):
    # drift is not what this test is about: a 400-adult city's grade shares move a lot
    return pipeline.run_month(month, SCHEMES, accept_drift=True, settings=settings, **options)


@pytest.fixture(scope="module")
def city(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("rules_city")
    generate_city(root / "landing", adults=400, months=3, end="2026-03", seed=5)
    rules = root / "rules"
    (rules / "drafts").mkdir(parents=True)
    shutil.copy(PROJECT / "rules" / "catalogue.yaml", rules)
    shutil.copy(PROJECT / "rules" / "haibei.yaml", rules)
    (rules / "dazixiang.yaml").write_text(revised("dazixiang", "2026.1", "2026-03"), "utf-8")
    environ = {"CITYCREDIT_LANDING": str(root / "landing"),
               "CITYCREDIT_WAREHOUSE": str(root / "warehouse"), "CITYCREDIT_RULES": str(rules)}
    settings = load_settings(PROJECT / "conf", env="local", environ=environ)
    return {"settings": settings, "rules": rules, "environ": {**environ,
                                                              "CITYCREDIT_ENV": "local"}}


def test_rules_in_force_month_by_month(city):
    settings, rules = city["settings"], city["rules"]

    # 2026-02 comes before dazixiang's first version: not scored, not an error, and said so
    february = run(settings, "2026-02")
    old_version = versions_of(february["scored"])["haibei"]
    assert list(versions_of(february["scored"])) == ["haibei"]
    assert "dazixiang  not scored: no version in force in 2026-02 (its first takes effect " \
           "2026-03)" in february["summary"]
    assert f"· rules {old_version}" in february["summary"]
    first_february = published(settings, "2026-02", "haibei")
    assert first_february and not published(settings, "2026-02", "dazixiang")

    # a new haibei version from 2026-03 (every score +7); the old one is kept under adopted/
    draft = rules / "drafts" / "haibei-2026-03.yaml"
    draft.write_text(revised("haibei", "2026.3", "2026-03", 1007), "utf-8")
    new_version = adopt(rules, draft).scheme.rules_version
    assert (rules / "adopted" / "haibei" / "2026-01.yaml").exists()

    # a month after the change: the new rules (and dazixiang, now in force)
    march = run(settings, "2026-03")
    assert versions_of(march["scored"])["haibei"] == new_version
    assert versions_of(march["scored"])["dazixiang"].startswith("2026.1+")
    assert gold_versions(settings, "2026-03", "haibei") == {new_version}
    first_march = published(settings, "2026-03", "haibei")

    # a backfill of the month before the change (the score and publish steps of a run): the
    # rules it was published with, the same scores (but for persons erased since)
    again = pipeline.score("2026-02", "backfill", settings, schemes=SCHEMES)
    assert versions_of(again) == {"haibei": old_version}
    pipeline.publish("2026-02", "backfill", again, accept_drift=True, settings=settings)
    assert gold_versions(settings, "2026-02", "haibei") == {old_version}
    gone = erased(settings)
    assert published(settings, "2026-02", "haibei") == {
        k: v for k, v in first_february.items() if k not in gone}

    # the current version edited in place (base back to 1000): 2026-03 was published under the
    # version before the edit, so re-running it is refused before anything runs…
    (rules / "haibei.yaml").write_text(revised("haibei", "2026.3", "2026-03", 1000), "utf-8")
    report_version = tables.version(catalog.RUN_REPORT.at(settings))
    with pytest.raises(RulesChangedSincePublication,
                       match=rf"haibei 2026-03 was published under rules {re.escape(new_version)}, "
                             rf"the rules "
                             rf"in force for 2026-03 are 2026\.3\+\w+ .*"
                             rf"needs --rescore-with-current-rules"):
        run(settings, "2026-03")
    assert tables.version(catalog.RUN_REPORT.at(settings)) == report_version   # nothing ran
    # `citycredit run` says so and ends 2 (NOT STARTED), and the DAG's steps treat it as a
    # refusal of the month (failed without retries, recorded in the run report)
    ended = CliRunner().invoke(citycredit_cli, ["run", "--month", "2026-03", "--accept-drift",
                                          "--schemes", ",".join(SCHEMES)],
                               env=city["environ"], catch_exceptions=False)
    assert ended.exit_code == 2, ended.output
    assert "NOT STARTED: haibei 2026-03 was published under rules" in ended.stderr
    assert "--rescore-with-current-rules" in ended.stderr
    assert tables.version(catalog.RUN_REPORT.at(settings)) == report_version
    with pytest.raises(pipeline.REFUSALS):
        pipeline.run_step(pipeline.STEP_BY_NAME["score"], "2026-03", "dag-run", settings, {},
                          None, {"schemes": ["haibei"]})
    assert tables.version(catalog.RUN_REPORT.at(settings)) == report_version + 1  # recorded
    with pytest.raises(RulesChangedSincePublication):
        pipeline.score("2026-03", "unasked", settings, schemes=["haibei"])
    assert published(settings, "2026-03", "haibei") == first_march

    # …and re-publishes it under the edited rules when asked: every score 7 lower
    edited = pipeline.score("2026-03", "edited", settings, schemes=["haibei"],
                            rescore_with_current_rules=True)
    edited_version = versions_of(edited)["haibei"]
    assert edited_version not in (new_version, old_version)
    pipeline.publish("2026-03", "edited", edited, accept_drift=True, settings=settings)
    now = published(settings, "2026-03", "haibei")
    assert now.keys() == first_march.keys()
    assert {first_march[k][0] - now[k][0] for k in now if now[k][0] > 0} == {7}
