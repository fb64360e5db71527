"""Policy measures on tiny distributions whose values are worked out by hand in each test
(citycredit/policy/measures.py, the pure parts of evaluate.py and simulate.py, report.py)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import ks_2samp

from citycredit.policy import evaluate as ev
from citycredit import plotting
from citycredit.policy import measures, report
from citycredit.policy import simulate as sim
from citycredit.rules import load_catalogue, load_draft, load_schemes

RULES = Path(__file__).resolve().parents[2] / "rules"


def freq(rows):
    return pd.DataFrame(rows, columns=["score", "bad", "count"])


# ------------------------------------------------------------------------------ AUC, Gini, KS
def test_auc_gini_ks_of_three_good_and_three_bad():
    # good scores 3 4 5, bad scores 1 2 4. Of the 9 (bad, good) pairs the bad one scores lower
    # in 1→3, 2→3, 4→1 (below 5) plus the tie 4=4 counting half: 7.5 / 9.
    table = freq([(3, 0, 1), (4, 0, 1), (5, 0, 1), (1, 1, 1), (2, 1, 1), (4, 1, 1)])
    got = measures.roc_measures(table)
    assert got["auc"] == pytest.approx(7.5 / 9)
    assert got["gini"] == pytest.approx(2 * 7.5 / 9 - 1)
    # cumulative shares at "score ≤ t": t=2 holds 2/3 of the bad and none of the good
    assert got["ks"] == pytest.approx(2 / 3)
    assert got["ks_score"] == 2
    assert got["ks"] == pytest.approx(ks_2samp([1, 2, 4], [3, 4, 5], alternative="greater")
                                      .statistic)


def test_counts_are_weights():
    # 2 bad at 10, 1 good at 10, 3 good at 20: of 2×4 = 8 pairs, 2×3 lower + 2×1 ties / 2 = 7
    table = freq([(10, 1, 2), (10, 0, 1), (20, 0, 3)])
    got = measures.roc_measures(table)
    assert got["auc"] == pytest.approx(7 / 8)
    # score ≤ 10 holds all the bad and 1 of 4 good
    assert got["ks"] == pytest.approx(1 - 1 / 4)


def test_a_score_that_rewards_the_bad_has_auc_below_a_half_and_a_small_ks():
    table = freq([(3, 1, 1), (4, 1, 1), (5, 1, 1), (1, 0, 1), (2, 0, 1), (4, 0, 1)])
    got = measures.roc_measures(table)
    assert got["auc"] == pytest.approx(1 - 7.5 / 9)
    # at or below every score the bad share never exceeds the good share: KS is 0, where the
    # two-sided statistic would give 2/3
    assert got["ks"] == pytest.approx(0)
    assert ks_2samp([3, 4, 5], [1, 2, 4]).statistic == pytest.approx(2 / 3)


def test_auc_needs_both_outcomes():
    with pytest.raises(measures.Unavailable, match="no subject had an outcome"):
        measures.roc_measures(freq([(1, 0, 5), (2, 0, 3)]))
    with pytest.raises(measures.Unavailable, match="every subject"):
        measures.roc_measures(freq([(1, 1, 5)]))


# ------------------------------------------------------------------------------ PSI
def test_psi_on_fixed_grades():
    # shares .5 .3 .2 → .4 .3 .3
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + 0 + (0.3 - 0.2) * math.log(0.3 / 0.2)
    got = measures.psi({"A": 50, "B": 30, "C": 20}, {"A": 40, "B": 30, "C": 30}, ["A", "B", "C"])
    assert got == pytest.approx(expected)
    assert got == pytest.approx(0.0628609, abs=1e-6)
    assert measures.psi_band(got) == "stable"


def test_psi_counts_a_grade_present_in_one_month_only():
    # B empty before: its share is taken as epsilon = 0.0001 (not dropped)
    eps = measures.PSI_EPSILON
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - eps) * math.log(0.5 / eps)
    got = measures.psi({"A": 100}, {"A": 50, "B": 50}, ["A", "B"])
    assert got == pytest.approx(expected)
    assert measures.psi_band(got) == "shifted"


def test_psi_bands():
    assert [measures.psi_band(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501, None)] == \
        ["stable", "stable", "watch", "shifted", "shifted", None]


def test_psi_of_identical_months_is_zero():
    assert measures.psi({"A": 7, "B": 3}, {"A": 70, "B": 30}, ["A", "B"]) == pytest.approx(0)


# ------------------------------------------------------------------------------ bad rates, monotonicity
def test_monotone_flags_a_grade_whose_bad_rate_rises():
    grades = ["AAA", "AA", "A", "B"]
    rates = {"AAA": 0.0, "AA": 0.01, "A": 0.005, "B": 0.02}
    assert measures.monotone(rates, grades) == (False, ["AA"])
    assert measures.monotone({"AAA": 0.0, "AA": 0.0, "A": 0.005, "B": 0.02}, grades) == (True, [])
    # a grade without subjects is skipped: AA (0.03) compares with B
    assert measures.monotone({"AAA": 0.0, "AA": 0.03, "A": None, "B": 0.02}, grades) == \
        (False, ["AA"])
    assert measures.monotone({"AAA": None, "AA": None, "A": 0.1, "B": None}, grades) == (None, [])


def test_validity_of_a_frequency_table():
    scheme = load_schemes(RULES, ["haibei"])["haibei"]
    rows = [  # score, grade, bad, district, age_band, sex, residency, count
        (1100, "AA", 0, "371002", "25-34", "M", "hukou", 9), (1100, "AA", 1, "371002", "25-34", "M", "hukou", 1),
        (1000, "A", 0, "371002", "25-34", "F", "hukou", 95), (1000, "A", 1, "371002", "25-34", "F", "hukou", 5),
        (900, "C", 0, "371003", "35-44", "F", "permit", 8), (900, "C", 1, "371003", "35-44", "F", "permit", 2),
    ]
    table = pd.DataFrame(rows, columns=["score", "grade", "bad", *ev.ATTRIBUTES, "count"])
    figures, reasons = ev.validity(table, scheme)
    # AA 1/10 = 10 % is worse than A 5/100: the rate does not fall from A to AA
    assert figures["bad_rate_by_grade"]["AA"] == pytest.approx(0.1)
    assert figures["bad_rate_by_grade"]["A"] == pytest.approx(0.05)
    assert figures["bad_rate_by_grade"]["C"] == pytest.approx(0.2)
    assert figures["bad_rate_by_grade"]["AAA"] is None
    assert (figures["monotone"], figures["not_falling"]) == (False, ["AA"])
    assert (figures["subjects"], figures["bad"]) == (120, 8)
    # bad 1@1100, 5@1000, 2@900 against good 9@1100, 95@1000, 8@900 (112 good):
    # lower-scored bad pairs: 5×9 + 2×(9+95) = 253, ties: 1×9 + 5×95 + 2×8 = 500 → /2
    assert figures["auc"] == pytest.approx((253 + 500 / 2) / (8 * 112))
    assert reasons == {}


# ------------------------------------------------------------------------------ fairness
def test_fairness_flags_a_group_below_four_fifths():
    scheme = load_schemes(RULES, ["haibei"])["haibei"]
    rows = [("residency", "hukou", "AA", 30), ("residency", "hukou", "A", 70),
            ("residency", "permit", "AA", 5), ("residency", "permit", "A", 45),
            ("sex", "F", "AA", 18), ("sex", "F", "A", 57), ("sex", "M", "AA", 17),
            ("sex", "M", "A", 58)]
    counts = pd.DataFrame(rows, columns=["attribute", "group", "grade", "count"])
    got = measures.fairness(counts, [g.grade for g in scheme.grades], "AA", 0.8)
    # whole population: 35 of 150 at AA or better; hukou 30 %, permit 10 %
    assert got["reference_share"] == pytest.approx(35 / 150)
    assert got["ratios"]["residency"]["hukou"] == pytest.approx(0.3 / (35 / 150))
    assert got["ratios"]["residency"]["permit"] == pytest.approx(0.1 / (35 / 150))
    assert got["ratios"]["sex"]["F"] == pytest.approx((18 / 75) / (35 / 150))
    assert [(f["attribute"], f["group"]) for f in got["flagged"]] == [("residency", "permit")]
    assert got["shares"]["residency"]["permit"]["A"] == pytest.approx(0.9)


def test_fairness_counts_better_grades_as_reaching_the_threshold():
    rows = [("sex", "F", "AAA", 1), ("sex", "F", "B", 1), ("sex", "M", "AA", 1),
            ("sex", "M", "A", 1)]
    counts = pd.DataFrame(rows, columns=["attribute", "group", "grade", "count"])
    got = measures.fairness(counts, ["AAA", "AA", "A", "B"], "AA")
    assert got["ratios"]["sex"] == {"F": pytest.approx(1.0), "M": pytest.approx(1.0)}
    assert got["flagged"] == []


def test_incentive_grade_default_and_configured():
    schemes = load_schemes(RULES)
    # the first grade above what a person without findings gets (the base score's grade)
    assert {n: ev.incentive_grade(s, {}) for n, s in schemes.items()} == \
        {"bailu": "A", "dazixiang": "AA", "haibei": "AA", "huzhou": "GREEN"}   # 白鹭分 v2: base 550 (B)
    assert ev.incentive_grade(schemes["haibei"], {"haibei": "AAA"}) == "AAA"
    with pytest.raises(measures.Unavailable, match="haibei has no grade 'S'"):
        ev.incentive_grade(schemes["haibei"], {"haibei": "S"})


def test_outcome_items_are_checked_against_the_catalogue():
    catalogue = load_catalogue(RULES)
    assert ev.parse_outcome_items(["COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY:serious"],
                                  catalogue) == [("COURT_DISHONEST_DEBTOR", None),
                                                 ("ADMIN_PENALTY", "serious")]
    with pytest.raises(ev.OutcomeItemError, match="unknown item 'FRAUD'"):
        ev.parse_outcome_items(["FRAUD"], catalogue)
    with pytest.raises(ev.OutcomeItemError, match="no level 'huge'"):
        ev.parse_outcome_items(["ADMIN_PENALTY:huge"], catalogue)


# ------------------------------------------------------------------------------ migration
def test_migration_threshold_crossings_and_moves():
    counts = pd.DataFrame([("A", "AA", 3), ("AA", "A", 1), ("A", "A", 10), ("B", "AAA", 2)],
                          columns=["from_grade", "to_grade", "count"])
    grades = ["AAA", "AA", "A", "B"]
    matrix = measures.migration_matrix(counts, grades, grades)
    assert matrix["A"] == {"AAA": 0, "AA": 3, "A": 10, "B": 0}
    assert matrix["AAA"] == {"AAA": 0, "AA": 0, "A": 0, "B": 0}
    crossings = measures.threshold_crossings(matrix, grades, grades)
    # "AA or better": A→AA and B→AAA reach it (5), AA→A loses it (1)
    assert crossings == {"AAA": {"up": 2, "down": 0}, "AA": {"up": 5, "down": 1},
                         "A": {"up": 2, "down": 0}}
    moves = measures.migration_moves(matrix, grades, grades)
    assert (moves["subjects"], moves["moved"], moves["up"], moves["down"]) == (16, 6, 5, 1)
    # up: 3 × 1 grade + 2 × 3 grades = 9; down: 1 × 1
    assert moves["upward_bandwidth"] == pytest.approx(9 / 16)
    assert moves["downward_bandwidth"] == pytest.approx(1 / 16)
    assert measures.matrix_shares(matrix)["A"]["AA"] == pytest.approx(3 / 13)
    assert measures.matrix_shares(matrix)["AAA"]["AA"] is None


def test_quantiles_of_a_histogram():
    q = measures.quantiles({0: 90, 5: 8, 10: 2}, [0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
    assert q == {0.0: 0, 0.5: 0, 0.9: 0, 0.95: 5, 0.99: 10, 1.0: 10}
    assert measures.quantiles({}, [0.5]) == {0.5: None}


def test_simulation_summary_from_movement_counts():
    adopted = load_schemes(RULES, ["haibei"])["haibei"]
    draft = load_draft(RULES / "drafts" / "haibei-blood-15.yaml")
    counts = pd.DataFrame([("A", "A", 0, 100), ("A", "A", 5, 7), ("A", "AA", 10, 2),
                           ("AA", "AAA", 60, 1)],
                          columns=["adopted_grade", "draft_grade", "score_change", "count"])
    s = sim.summarise(counts, adopted, draft, "haibei-blood-15", "2026-10")
    assert (s["subjects"], s["moved"], s["score_changed"], s["up"], s["down"]) == (110, 3, 10, 3, 0)
    assert s["migration"]["A"]["AA"] == 2 and s["migration"]["A"]["A"] == 107
    assert s["threshold_crossings"]["AA"] == {"up": 2, "down": 0}
    assert s["threshold_crossings"]["AAA"] == {"up": 1, "down": 0}
    assert s["score_change"]["histogram"] == {"0": 100, "5": 7, "10": 2, "60": 1}
    assert s["score_change"]["quantiles"]["p50"] == 0
    assert s["score_change"]["quantiles"]["max"] == 60
    assert s["score_change"]["mean"] == pytest.approx((35 + 20 + 60) / 110)
    assert s["grades"]["draft"]["AA"] == 2 and s["grades"]["adopted"]["A"] == 109
    assert s["draft_version"] == "draft-2026.1"


# ------------------------------------------------------------------------------ the report's font
def test_report_without_a_cjk_font_warns_and_still_writes(monkeypatch):
    adopted = load_schemes(RULES, ["haibei"])["haibei"]
    draft = load_draft(RULES / "drafts" / "haibei-blood-15.yaml")
    counts = pd.DataFrame([("A", "A", 0, 10), ("A", "AA", 10, 2)],
                          columns=["adopted_grade", "draft_grade", "score_change", "count"])
    summary = sim.summarise(counts, adopted, draft, "haibei-blood-15", "2026-10")
    summary["rules"] = {"blood": {"adopted": {"subjects": 2, "mean_points": 10.0},
                                  "draft": {"subjects": 2, "mean_points": 15.0}}}
    summary["explanation_sample"] = []
    monkeypatch.setattr(plotting, "CJK_FONTS", ("No Such Font",))
    report.cjk_font.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            page = report.simulation_html(summary, adopted, draft)
        assert any(issubclass(w.category, report.CJKFontMissing) for w in caught)
        assert "Chinese labels in the plots show as boxes" in page
        assert page.count("data:image/png;base64,") == 4
    finally:
        report.cjk_font.cache_clear()


# ------------------------------------------------------------------------------ settings
def test_policy_settings_defaults_override_and_refusal(tmp_path):
    import shutil

    from citycredit.config import ConfigError, load_settings

    conf = RULES.parent / "conf"
    settings = load_settings(conf, env="local", environ={"CITYCREDIT_REPORTS": str(tmp_path / "r")})
    assert settings.policy["reports"] == (tmp_path / "r").resolve()
    assert settings.policy["outcome_items"] == ["COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY:serious",
                                                "COMMITMENT_BREACH"]
    assert (settings.policy["outcome_months"], settings.policy["fairness_min_ratio"]) == (12, 0.8)
    copy = tmp_path / "conf"
    shutil.copytree(conf, copy)
    (copy / "local.yaml").write_text((copy / "local.yaml").read_text("utf-8")
                                     + "policy:\n  fairness_min_ratio: 1.5\n", "utf-8")
    with pytest.raises(ConfigError, match=r"local.yaml: key 'policy.fairness_min_ratio' must be"):
        load_settings(copy, env="local", environ={})


# ------------------------------------------------------------------------------ the CLI's refusals
@pytest.mark.parametrize("args, status, message", [
    (["simulate", "--scheme", "haibei", "--draft", "rules/drafts/nope.yaml", "--month", "2026-01"],
     2, "REFUSED: rules/drafts/nope.yaml: file not found"),
    (["simulate", "--scheme", "huzhou", "--draft", "rules/drafts/haibei-blood-15.yaml",
      "--month", "2026-01"], 2, "is a draft of 'haibei', not of 'huzhou'"),
    (["simulate", "--scheme", "haibei", "--draft", "rules/drafts/haibei-blood-15.yaml",
      "--month", "2026-01"], 1, "STOPPED: silver has no population snapshot for 2026-01"),
    (["evaluate", "--scheme", "haibei", "--month", "2026-01"], 1,
     "run `citycredit run --month 2026-01` first"),
    # a month to come: not "run it first" (a newcomer's try-out)
    (["evaluate", "--scheme", "haibei", "--month", "2999-01"], 1,
     "STOPPED: silver has no population snapshot for 2999-01 (months held: none): 2999-01 has "
     "not begun yet (today is"),
    (["evaluate", "--scheme", "nosuch", "--month", "2026-01"], 2, "nosuch"),
    (["evaluate", "--scheme", "haibei", "--month", "2026-13"], 2, "is not a month"),
])
def test_cli_refusals_name_the_problem(tmp_path, monkeypatch, args, status, message):
    from click.testing import CliRunner

    from citycredit.cli import cli

    for var in [k for k in __import__("os").environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    (tmp_path / "warehouse" / "silver").mkdir(parents=True)     # a warehouse without the month
    monkeypatch.chdir(RULES.parent)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == status, result.output
    assert message in result.output


def test_the_policy_tools_on_a_mistyped_warehouse_say_so(tmp_path, monkeypatch):
    """Not "run the month first": the warehouse path is wrong (a newcomer's try-out)."""
    from click.testing import CliRunner

    from citycredit.cli import cli

    for var in [k for k in __import__("os").environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehose"))
    monkeypatch.chdir(RULES.parent)
    for args in (["simulate", "--scheme", "haibei", "--draft", "rules/drafts/haibei-blood-15.yaml",
                  "--month", "2026-01"], ["evaluate", "--scheme", "haibei", "--month", "2026-01"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert f"no warehouse at {tmp_path / 'warehose'} (no bronze, silver, gold folder; check " \
               "CITYCREDIT_WAREHOUSE)" in " ".join(result.output.split()), result.output
        assert "citycredit run" not in result.output
    assert not (tmp_path / "warehouse").exists()


@pytest.mark.parametrize("where", ["reports.html", "reports.html/haibei", "/proc/no-such/reports"])
def test_a_reports_folder_that_is_a_file_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                          where):
    """policy.reports naming a file (or a folder under one, or one that cannot be made) stopped
    `simulate` only as it wrote the report, after minutes of Spark: now refused first, naming
    the setting and its origin."""
    from click.testing import CliRunner

    from citycredit.cli import cli

    (tmp_path / "reports.html").write_text("an earlier report", "utf-8")
    for var in [k for k in __import__("os").environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    (tmp_path / "warehouse" / "silver").mkdir(parents=True)     # a warehouse without the month
    monkeypatch.setenv("CITYCREDIT_REPORTS", str(tmp_path / where))
    monkeypatch.chdir(RULES.parent)
    problem = ("is a file, not a folder" if where == "reports.html" else
               # a folder that cannot be made although the part there is writable (root passes
               # os.access on /proc): it failed at the end with a traceback (newcomer try-out)
               ("cannot be made: No such file or directory" if __import__("os").geteuid() == 0
                else "cannot be made: /proc is not writable by this user")
               if where.startswith("/proc") else
               f"cannot be made: {tmp_path / 'reports.html'} is a file")
    for args in (["simulate", "--scheme", "haibei", "--draft", "rules/drafts/haibei-blood-15.yaml",
                  "--month", "2026-01"], ["evaluate", "--scheme", "haibei", "--month", "2026-01"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert (f"REFUSED: policy.reports: {tmp_path / where} {problem} (from environment "
                "variable CITYCREDIT_REPORTS)") in " ".join(result.output.split()), result.output
        assert "population snapshot" not in result.output     # before the month is looked at
    # the report given on the command line is used instead: the setting does not matter then
    given = CliRunner().invoke(cli, ["evaluate", "--scheme", "haibei", "--month", "2026-01",
                                     "--report", str(tmp_path / "here.html")])
    assert given.exit_code == 1 and "STOPPED: silver has no population snapshot" in given.output


def test_simulate_warns_when_the_draft_predates_the_adopted_rules(tmp_path, monkeypatch):
    """A draft written from rules replaced since (its effective_from before the adopted
    version's): said first, naming both versions, before the run goes on (here: to its refusal
    for want of data)."""
    import shutil

    from click.testing import CliRunner

    from citycredit.cli import cli

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    adopted = rules / "haibei.yaml"
    adopted.write_text(adopted.read_text("utf-8").replace('version: "2026.1"', 'version: "2026.2"')
                       .replace("effective_from: 2026-01", "effective_from: 2026-07"), "utf-8")
    for var in [k for k in __import__("os").environ if k.startswith("CITYCREDIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CITYCREDIT_WAREHOUSE", str(tmp_path / "warehouse"))
    (tmp_path / "warehouse" / "silver").mkdir(parents=True)     # a warehouse without the month
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules))
    monkeypatch.chdir(RULES.parent)
    result = CliRunner().invoke(cli, ["simulate", "--scheme", "haibei", "--draft",
                                      "rules/drafts/haibei-blood-15.yaml", "--month", "2026-10"])
    assert result.exit_code == 1, result.output
    assert ("WARNING: the draft haibei-blood-15 (version draft-2026.1, effective_from 2026-01) "
            "predates the adopted haibei rules (version 2026.2, effective_from 2026-07)"
            ) in result.output
    assert "STOPPED: silver has no population snapshot for 2026-10" in result.output
    adopted.write_text((RULES / "haibei.yaml").read_text("utf-8"), "utf-8")
    current = CliRunner().invoke(cli, ["simulate", "--scheme", "haibei", "--draft",
                                       "rules/drafts/haibei-blood-15.yaml", "--month", "2026-10"])
    assert current.exit_code == 1 and "WARNING" not in current.output     # same start: no warning


def test_the_rule_table_lists_subject_rules_beside_the_finding_rules():
    """白鹭分's subject rules (hukou, clean-3y, …) score most people: a draft that changes one
    shows it in simulate's rule table, beside the finding rules."""
    import dataclasses

    adopted = load_schemes(RULES, ["bailu"])["bailu"]
    hukou = adopted.subject_rules_by_id["hukou"]
    draft = dataclasses.replace(adopted, subject_rules=tuple(
        dataclasses.replace(r, points=hukou.points + 15) if r.id == "hukou" else r
        for r in adopted.subject_rules))
    from decimal import Decimal

    effects = lambda points: pd.DataFrame(  # noqa: E731  (rule_effects: Spark's decimals)
        {"rule_id": ["hukou", "debtor"], "subjects": [4, 1],
         "points": [Decimal(4 * points), Decimal(-150)]})
    table = sim.rule_table(effects(30), effects(45), adopted, draft)
    assert list(table)[:2] == ["hukou", "permit"] and "clean-3y" in table and "debtor" in table
    assert table["hukou"] == {"adopted": {"subjects": 4, "mean_points": 30.0},
                              "draft": {"subjects": 4, "mean_points": 45.0}}
    assert table["clean-3y"]["adopted"] == {"subjects": 0, "mean_points": None}
    # a mean is the decimal at the points' scale, not a float of the 28-digit quotient
    thirds = sim.rule_table(pd.DataFrame({"rule_id": ["hukou"], "subjects": [3],
                                          "points": [Decimal(100)]}), effects(45), adopted, draft)
    assert repr(thirds["hukou"]["adopted"]["mean_points"]) == "33.33333333"
