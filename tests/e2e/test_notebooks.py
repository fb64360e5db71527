"""The demo city and the analyst notebooks, as an analyst meets them.

One demo warehouse per module, built exactly as `make demo` builds it (citycredit.demo: 36
months, 34 bulk-loaded, the last two run through the pipeline): its demo month must be worth
auditing (every grade of 海贝分 and 达子香分 populated, none holding more than 90 % of adults;
quarantined rows, corrections, revocations and appeals present), and every notebook must run
headless against it (papermill on the registered kernel) without a cell error, with every figure
non-empty and no Chinese glyph missing from the font.
"""
from __future__ import annotations

import json

import nbformat
import pytest

from citycredit import analysis
from citycredit.demo import DEMO_END, build_demo
from citycredit.months import month_before
from citycredit.notebooks import MIN_FIGURE_BYTES, NOTEBOOKS, execute, register_kernel


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    built = build_demo(root, say=lambda line: None)
    register_kernel()
    return built


@pytest.mark.parametrize("scheme", ["haibei", "dazixiang"])
def test_demo_month_fills_every_grade_and_none_holds_90_percent(demo, scheme):
    settings = demo["settings"]
    scores = analysis.read_table("gold.scores", where={"scheme": scheme, "score_month": DEMO_END},
                                 columns=["grade"], settings=settings)
    grades = [g.grade for g in analysis.scheme(scheme, settings).grades]
    shares = scores.grade.value_counts(normalize=True).reindex(grades, fill_value=0)
    assert len(scores) > 4000
    assert (shares > 0).all(), f"empty grades: {list(shares[shares == 0].index)}"
    assert shares.max() <= 0.90, f"{shares.idxmax()} holds {shares.max():.1%}"


def test_demo_months_carry_quarantine_corrections_revocations_and_appeals(demo):
    settings = demo["settings"]
    assert demo["months"] == [month_before(DEMO_END), DEMO_END]
    report = analysis.read_table("report.run_report", where={"section": "source"},
                                 settings=settings)
    sources = [json.loads(m) for m in report.metrics]
    assert sum(s["quarantined"] for s in sources) > 0
    assert sum(s["corrections"] for s in sources) > 0
    assert sum(s["revocations"] for s in sources) > 0
    appeals = analysis.read_table("silver.appeals", where={"known_from": demo["months"]},
                                  settings=settings)
    assert len(appeals) > 0
    quarantine = analysis.read_table("quarantine.rows", where={"month": demo["months"]},
                                     columns=["reasons"], settings=settings)
    assert len(quarantine) > 0
    # 36 months of history behind the demo month: bronze and silver hold the bulk months
    months = analysis.read_table("silver.population", columns=["snapshot_month"],
                                 settings=settings).snapshot_month.nunique()
    assert months == 36


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_draws_every_figure(demo, name, tmp_path):
    warehouse = demo["settings"].warehouse
    result = execute(name, {"warehouse": str(warehouse)}, tmp_path)   # raises on a cell error
    notebook = nbformat.read(result["notebook"], as_version=4)
    assert result["figures"] >= 1
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            assert "missing from font" not in text, f"{name}: a CJK glyph is missing: {text[:200]}"
            if "image/png" in output.get("data", {}):
                assert len(output["data"]["image/png"]) > MIN_FIGURE_BYTES
    html = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= result["figures"]   # + the page's own icon
