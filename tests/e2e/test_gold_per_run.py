"""Gold promoted per run (issue 24, item 4), through two months of a small generated city.

One scenario, in order, on its own warehouse: 2026-01 and 2026-02 are published; 2026-02
re-scored under edited rules is refused (its grades move too far), and the portal's lookup
index, the explanation lines it serves and the notebooks' reader stay on the published run's
scores and lines; a `citycredit run` killed between scoring and publication leaves the
publication complete; the next run publishes every scheme of the month in one Delta commit and
the month's rows of the other runs leave gold.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from citycredit import analysis, catalog, pipeline
from citycredit.config import load_settings
from citycredit.crash import CRASH_VARIABLE
from citycredit.io import tables
from citycredit.lookup.index import ServingIndex, build_index
from citycredit.lookup.store import index_url
from citycredit.policy.job import gold_scores
from citycredit.publish.published import published_runs
from citycredit.synth import generate_city

PROJECT = Path(__file__).resolve().parents[2]
SCHEMES = ["haibei", "dazixiang"]
MONTH = "2026-02"


@pytest.fixture(scope="module")
def city(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("gold_city")
    generate_city(root / "landing", adults=300, months=2, end=MONTH, seed=11)
    rules = root / "rules"
    rules.mkdir()
    for name in ("catalogue.yaml", "haibei.yaml", "dazixiang.yaml"):
        shutil.copy(PROJECT / "rules" / name, rules)
    environ = {"CITYCREDIT_LANDING": str(root / "landing"),
               "CITYCREDIT_WAREHOUSE": str(root / "warehouse"), "CITYCREDIT_RULES": str(rules)}
    return {"settings": load_settings(PROJECT / "conf", env="local", environ=environ),
            "environ": {**environ, "CITYCREDIT_ENV": "local"}, "rules": rules}


def published(settings, scheme):
    """subject_key → (score, grade) of gold/published_scores for MONTH."""
    rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(settings),
                             where={"score_month": MONTH, "scheme": scheme}).to_pylist()
    return {r["subject_key"]: (r["score"], r["grade"]) for r in rows}


def notebook_view(settings, scheme):
    """What a notebook reads of MONTH (citycredit.analysis): subject_key → score, and
    subject_key → Σ explanation-line points."""
    where = {"scheme": scheme, "score_month": MONTH}
    scores = analysis.read_table("gold.scores", where=where, settings=settings)
    lines = analysis.read_table("gold.score_lines", where=where, settings=settings)
    explained = defaultdict(float)
    for key, points in zip(lines.subject_key, lines.points.fillna(0)):
        explained[key] += points
    return dict(zip(scores.subject_key, scores.score.tolist())), \
        {k: round(v, 6) for k, v in explained.items()}


def portal_view(settings, scheme, keys):
    """What the lookup service serves (the index rebuilt first): per key its score and
    explanation lines (the /v1/reports body's lines)."""
    build_index(settings)
    serving = ServingIndex(index_url(settings))
    try:
        with serving.reader() as reader:
            return {k: ((reader.score(scheme, k) or {}).get("score"),
                        [(line["rule_id"], line["status"], line["points"])
                         for line in reader.lines(scheme, k)]) for k in keys}
    finally:
        serving.dispose()


def runs_in_gold(settings, table=catalog.SCORES):
    return {p["run_id"] for p in tables.partitions(table.at(settings))
            if p["score_month"] == MONTH}


def test_gold_is_promoted_per_run(city, spark):
    settings, rules = city["settings"], city["rules"]
    pipeline.run_month("2026-01", SCHEMES, accept_drift=True, settings=settings)
    february = pipeline.run_month(MONTH, SCHEMES, accept_drift=True, settings=settings)
    first = february["run_id"]
    assert published_runs(settings)[("haibei", MONTH)] == first
    assert published_runs(settings)[("dazixiang", MONTH)] == first
    haibei = published(settings, "haibei")
    scores, explained = notebook_view(settings, "haibei")
    assert scores == {k: v[0] for k, v in haibei.items()}
    explained_keys = sorted(k for k, v in explained.items() if v)[:5]
    assert explained_keys, "the generated city has persons with findings"
    portal = portal_view(settings, "haibei", explained_keys)
    assert all(portal[k][0] == haibei[k][0] and portal[k][1] for k in explained_keys)

    # February re-scored under edited rules (every haibei score +300): the grades move far
    # past the bound against January, so the month is refused — and nothing a reader sees moves
    shipped = (rules / "haibei.yaml").read_text("utf-8")
    (rules / "haibei.yaml").write_text(shipped.replace("base_score: 1000", "base_score: 1300"),
                                       "utf-8")
    with pytest.raises(pipeline.PublishRefused, match="haibei: grade"):
        pipeline.run_month(MONTH, SCHEMES, settings=settings, rescore_with_current_rules=True)
    (refused,) = runs_in_gold(settings) - {first}
    staged = analysis.read_table("gold.scores", settings=settings,
                                 where={"scheme": "haibei", "score_month": MONTH,
                                        "run_id": refused})
    moved = {k: s - scores[k] for k, s in zip(staged.subject_key, staged.score)}
    assert moved.keys() == scores.keys() and max(moved.values()) == 300   # its rows, unseen
    assert published(settings, "haibei") == haibei
    assert published_runs(settings)[("haibei", MONTH)] == first
    assert notebook_view(settings, "haibei") == (scores, explained)
    assert portal_view(settings, "haibei", explained_keys) == portal
    adopted = gold_scores(spark, settings, "haibei", MONTH)        # the policy tools' view
    assert {r.subject_key: r.score for r in adopted.collect()} == scores

    # the shipped rules back; a run killed after scoring, just before promotion: the previous
    # publication stays complete (every scheme, its run's scores and lines)
    (rules / "haibei.yaml").write_text(shipped, "utf-8")
    env = {**os.environ, **city["environ"], CRASH_VARIABLE: "publish.checked",
           "COLUMNS": "200"}
    killed = subprocess.Popen(
        [sys.executable, "-m", "citycredit.cli", "run", "--month", MONTH, "--accept-drift",
         "--schemes", ",".join(SCHEMES)], cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = killed.communicate(timeout=900)
    finally:
        try:
            os.killpg(killed.pid, signal.SIGKILL)       # its Spark JVM too
        except ProcessLookupError:
            pass
    assert killed.returncode == 137, stderr[-3000:]
    assert len(runs_in_gold(settings) - {first, refused}) == 1      # it did score
    assert published(settings, "haibei") == haibei
    assert {s: r for (s, m), r in published_runs(settings).items() if m == MONTH} == \
        {"haibei": first, "dazixiang": first}
    assert notebook_view(settings, "haibei") == (scores, explained)
    assert portal_view(settings, "haibei", explained_keys) == portal

    # the next run publishes: both schemes in ONE commit of gold/published_scores, carrying
    # its run; then the month's rows of the other runs leave gold
    before = tables.version(catalog.PUBLISHED_SCORES.at(settings))
    again = pipeline.run_month(MONTH, SCHEMES, accept_drift=True, settings=settings)
    after = tables.version(catalog.PUBLISHED_SCORES.at(settings))
    month_at = {v: {s: r for (s, m), r in published_runs(settings, version=v).items()
                    if m == MONTH} for v in range(before, after + 1)}
    changed = [v for v in range(before + 1, after + 1) if month_at[v] != month_at[v - 1]]
    assert len(changed) == 1                          # one commit moved the month…
    assert month_at[changed[0] - 1] == {"haibei": first, "dazixiang": first}
    assert month_at[changed[0]] == {"haibei": again["run_id"], "dazixiang": again["run_id"]}
    assert {s: r for (s, m), r in published_runs(settings).items() if m == MONTH} == \
        {"haibei": again["run_id"], "dazixiang": again["run_id"]}
    assert published(settings, "haibei") == haibei                # same rules, same scores
    assert published(settings, "dazixiang")
    assert runs_in_gold(settings) == {again["run_id"]}
    assert runs_in_gold(settings, catalog.SCORE_LINES) == {again["run_id"]}
    assert notebook_view(settings, "haibei") == (scores, explained)
    assert portal_view(settings, "haibei", explained_keys) == portal
