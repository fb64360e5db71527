"""The HTML reports of `citycredit simulate` and `citycredit evaluate`: one self-contained file
each (tables, and matplotlib plots embedded as base64 PNGs), for policy staff.

Grade labels and scheme titles are Chinese: the plots use a CJK font when one is installed
(Debian: `apt-get install fonts-noto-cjk`; `make cjk-font`). Without one the report is still
written, with a warning, and matplotlib draws the Chinese characters as boxes (the HTML text
around the plots is rendered by the browser and is unaffected).
"""
from __future__ import annotations

import base64
import html
import io

from ..plotting import CJKFontMissing, cjk_font  # noqa: F401 (the reports' font)
from ..rules import Scheme

CORNER_SIM = "adopted \\ draft"
CORNER_MONTHS = "previous month \\ this month"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _figure(width=7.0, height=4.0):
    cjk_font()
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _fmt(value, digits=3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _table(header: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    font = cjk_font()
    note = "" if font else ('<p class="warn">No CJK font was installed when this report was '
                            'made: Chinese labels in the plots show as boxes.</p>')
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 3px 8px; text-align: right; }}
th {{ background: #eee; }} td:first-child, th:first-child {{ text-align: left; }}
tr.flag td {{ background: #fde2e2; }} .warn {{ color: #a00; }} img {{ max-width: 100%; }}
.diag {{ background: #e8f0fe; font-weight: bold; }} code {{ font-size: 0.9em; }}
</style></head><body><h1>{html.escape(title)}</h1>{note}{body}</body></html>"""


def _grade_label(scheme: Scheme, grade: str) -> str:
    labels = {g.grade: g.label for g in scheme.grades}
    return f"{grade} {labels.get(grade, '')}".strip()


# ---------------------------------------------------------------------------------------------
# simulation
def _migration_plot(matrix: dict, adopted: Scheme, draft: Scheme) -> str:
    import numpy as np

    rows = [g.grade for g in adopted.grades]
    cols = [g.grade for g in draft.grades]
    data = np.array([[matrix[r].get(c, 0) for c in cols] for r in rows], dtype=float)
    fig, ax = _figure(6.5, 5)
    ax.imshow(np.log1p(data), cmap="Blues")
    ax.set_xticks(range(len(cols)), [_grade_label(draft, c) for c in cols], rotation=30)
    ax.set_yticks(range(len(rows)), [_grade_label(adopted, r) for r in rows])
    ax.set_xlabel(f"草案 draft {draft.version}")
    ax.set_ylabel(f"现行 adopted {adopted.version}")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=8)
    ax.set_title(f"{adopted.title}: 等级迁移 grade migration")
    return _png(fig)


def _change_plot(histogram: dict) -> str:
    fig, ax = _figure()
    values = sorted(int(k) for k in histogram)
    counts = [histogram[str(v)] for v in values]
    ax.bar(values, counts, width=max(1, (max(values) - min(values)) / 60 if values else 1),
           color="#4a7bd0")
    ax.set_yscale("log")
    ax.set_xlabel("分数变化 score change (draft − adopted)")
    ax.set_ylabel("人数 subjects (log)")
    ax.set_title("分数变化分布 score-change distribution")
    return _png(fig)


def _rules_plot(rules: dict) -> str:
    import numpy as np

    names = list(rules)
    before = [(rules[n]["adopted"] or {}).get("mean_points") or 0 for n in names]
    after = [(rules[n]["draft"] or {}).get("mean_points") or 0 for n in names]
    fig, ax = _figure(7, max(3, 0.32 * len(names) + 1))
    y = np.arange(len(names))
    ax.barh(y - 0.2, before, height=0.4, label="现行 adopted", color="#999")
    ax.barh(y + 0.2, after, height=0.4, label="草案 draft", color="#d9822b")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel("每人平均分值 mean points per subject touched")
    ax.legend()
    ax.set_title("按规则 per rule")
    return _png(fig)


def _grades_plot(series: dict[str, dict[str, int]], scheme: Scheme, title: str) -> str:
    import numpy as np

    grades = [g.grade for g in scheme.grades]
    fig, ax = _figure()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(grades))
    for i, (name, counts) in enumerate(series.items()):
        total = sum(counts.values()) or 1
        ax.bar(x + i * width - 0.4 + width / 2, [counts.get(g, 0) / total for g in grades],
               width=width, label=name)
    ax.set_xticks(x, [_grade_label(scheme, g) for g in grades], rotation=20)
    ax.set_ylabel("占比 share")
    ax.legend()
    ax.set_title(title)
    return _png(fig)


def simulation_html(summary: dict, adopted: Scheme, draft: Scheme) -> str:
    a_grades = [g.grade for g in adopted.grades]
    d_grades = [g.grade for g in draft.grades]
    matrix, shares = summary["migration"], summary["migration_shares"]
    mig_rows = [[html.escape(_grade_label(adopted, r))]
                + [f"{matrix[r].get(c, 0)}<br><small>{_pct(shares[r].get(c))}</small>"
                   for c in d_grades] + [str(sum(matrix[r].values()))] for r in a_grades]
    crossings = [[f"{html.escape(g)} or better", str(v["up"]), str(v["down"])]
                 for g, v in summary["threshold_crossings"].items()]
    q = summary["score_change"]["quantiles"]
    rules = summary["rules"]
    rule_rows = [[html.escape(r),
                  _fmt((v["adopted"] or {}).get("subjects")), _fmt((v["adopted"] or {}).get("mean_points"), 2),
                  _fmt((v["draft"] or {}).get("subjects")), _fmt((v["draft"] or {}).get("mean_points"), 2)]
                 for r, v in rules.items()]
    sample_rows = []
    for s in summary["explanation_sample"]:
        diffs = "; ".join(f"{html.escape(k)}: {v['adopted']:+g} → {v['draft']:+g}"
                          for k, v in s["rules"].items())
        sample_rows.append([f"#{s['sample']}",
                            f"{s.get('adopted_score')} {html.escape(str(s.get('adopted_grade')))}",
                            f"{s.get('draft_score')} {html.escape(str(s.get('draft_grade')))}",
                            diffs or "—"])
    body = f"""
<p>Scheme <b>{html.escape(adopted.scheme)}</b> ({html.escape(adopted.title)}) version
{html.escape(adopted.version)} against draft <b>{html.escape(summary['draft'])}</b> version
{html.escape(draft.version)}, score month <b>{summary['month']}</b>, silver as known at that month.
Sandbox only: nothing here was written to gold, the publication or the run report.</p>
{_table(["subjects", "grade changes", "up", "down", "score changed", "mean change"],
        [[str(summary['subjects']), str(summary['moved']), str(summary['up']),
          str(summary['down']), str(summary['score_changed']),
          _fmt(summary['score_change']['mean'], 2)]])}
<h2>Grade migration (adopted × draft)</h2>
{_table([CORNER_SIM, *d_grades, "total"], mig_rows)}
{_img(_migration_plot(matrix, adopted, draft), "migration matrix")}
<h2>Incentive thresholds crossed</h2>
{_table(["threshold", "up (reach it)", "down (lose it)"], crossings)}
<h2>Score change</h2>
{_table(list(q), [[_fmt(v) for v in q.values()]])}
{_img(_change_plot(summary['score_change']['histogram']), "score change histogram")}
{_img(_grades_plot({"现行 adopted": summary['grades']['adopted'],
                    "草案 draft": summary['grades']['draft']}, adopted, "等级分布 grades"), "grades")}
<h2>Per rule: subjects touched and mean points</h2>
{_table(["rule", "adopted subjects", "adopted mean", "draft subjects", "draft mean"], rule_rows)}
{_img(_rules_plot(rules), "per-rule points")}
<h2>Explanation differences (sample of moved people, largest moves first; no subject keys)</h2>
{_table(["sample", "adopted", "draft", "rules whose points differ"], sample_rows)}
<p>Run {html.escape(summary.get('run_id', ''))}; {summary.get('seconds', '?')} s. Rows per subject:
<code>{html.escape(summary.get('sandbox_table', ''))}</code>.</p>"""
    return _page(f"{adopted.title} — 规则修订模拟 simulation of {summary['draft']}, "
                 f"{summary['month']}", body)


# ---------------------------------------------------------------------------------------------
# evaluation
def _roc_plot(curves: dict) -> str:
    fig, ax = _figure(5, 5)
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="#aaa", ls="--", lw=0.8)
    ax.set_xlabel("good subjects below the cut-off (FPR)")
    ax.set_ylabel("bad subjects below the cut-off (TPR)")
    ax.legend(loc="lower right")
    ax.set_title("ROC: 分数对后续严重失信的排序 ordering by outcome")
    return _png(fig)


def _bad_rate_plot(variants: dict, schemes: dict) -> str:
    import numpy as np

    fig, ax = _figure()
    width = 0.8 / max(1, len(variants))
    for i, (name, result) in enumerate(variants.items()):
        scheme = schemes[name]
        grades = [g.grade for g in scheme.grades]
        rates = [result["bad_rate_by_grade"].get(g) or 0 for g in grades]
        colors = ["#c0392b" if g in result.get("not_falling", []) else "#4a7bd0" if i == 0
                  else "#d9822b" for g in grades]
        x = np.arange(len(grades))
        ax.bar(x + i * width - 0.4 + width / 2, rates, width=width, color=colors, label=name)
        if i == 0:
            ax.set_xticks(x, [_grade_label(scheme, g) for g in grades], rotation=20)
    ax.set_ylabel("坏账率 bad rate")
    ax.legend()
    ax.set_title("各等级后续严重失信率 bad rate per grade (red: does not fall)")
    return _png(fig)


def _fairness_plot(fair: dict, bound: float, title: str) -> str:
    labels, values = [], []
    for attribute, groups in fair["ratios"].items():
        for group, ratio in groups.items():
            labels.append(f"{attribute}: {group}")
            values.append(ratio or 0)
    fig, ax = _figure(7, max(3, 0.28 * len(labels) + 1))
    colors = ["#c0392b" if v < bound else "#4a7bd0" for v in values]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(bound, color="#c0392b", ls="--", lw=1)
    ax.axvline(1, color="#333", lw=0.8)
    ax.set_xlabel("share at or above the incentive grade ÷ whole population's")
    ax.set_title(title)
    return _png(fig)


def _variant_section(name: str, result: dict, scheme: Scheme) -> str:
    grades = [g.grade for g in scheme.grades]
    rate_rows = [[html.escape(_grade_label(scheme, g)), str(result["subjects_by_grade"].get(g, 0)),
                  str(result["bad_by_grade"].get(g, 0)), _pct(result["bad_rate_by_grade"].get(g))]
                 for g in grades]
    flags = ["flag" if g in result.get("not_falling", []) else "" for g in grades]
    psi = result["psi"]
    bands = result.get("psi_band", {})
    reasons = result.get("reasons", {})
    fair = result.get("fairness_detail") or {}
    flagged = [[html.escape(f["attribute"]), html.escape(f["group"]), _fmt(f["ratio"]),
                _pct(f["share"])] for f in fair.get("flagged", [])]
    migration = result.get("migration_previous_month") or {}
    mig_rows = [[html.escape(r)] + [str(row.get(c, 0)) for c in grades]
                for r, row in migration.items()]
    reason_rows = [[html.escape(k), html.escape(v)] for k, v in reasons.items()]
    return f"""
<h2>{html.escape(name)}: {html.escape(scheme.title)} {html.escape(scheme.version)}</h2>
<h3>Validity and discrimination</h3>
{_table(["subjects", "bad", "bad rate", "outcome months", "AUC", "Gini", "KS", "monotone"],
        [[str(result['subjects']), str(result['bad']), _pct(result['bad_rate']),
          str(result['outcome_months']), _fmt(result['auc']), _fmt(result['gini']),
          _fmt(result['ks']), _fmt(result['monotone'])]])}
{_table(["grade", "subjects", "bad", "bad rate"], rate_rows, flags)}
<h3>Stability</h3>
{_table(["against", "PSI", "band"], [["previous month", _fmt(psi['previous_month']),
                                        _fmt(bands.get('previous_month'))],
                                       ["twelve months before", _fmt(psi['twelve_months_before']),
                                        _fmt(bands.get('twelve_months_before'))]])}
{_table([CORNER_MONTHS, *grades], mig_rows) if mig_rows else ""}
<h3>Fairness (incentive grade {html.escape(str(result.get('incentive_grade')))} or better:
{fair.get('reference_at_or_above', '—')} subjects, {_pct(fair.get('reference_share'))};
bound {result.get('fairness_min_ratio')})</h3>
{_table(["attribute", "group", "ratio", "share at or above"], flagged) if flagged
 else "<p>No group below the bound.</p>"}
{_table(["measure", "why it is missing or limited"], reason_rows) if reason_rows else ""}
"""


def evaluation_html(result: dict, schemes: dict[str, Scheme]) -> str:
    """schemes: {"adopted": Scheme, <draft name>: Scheme}; result: the evaluation summary with
    the draft's result under "draft" (if any)."""
    variants = {"adopted": result}
    if result.get("draft"):
        variants[result["draft"]["draft"]] = result["draft"]
    scheme = schemes["adopted"]
    curves = {n: (r["_roc"][0], r["_roc"][1], r["auc"]) for n, r in variants.items()
              if r.get("_roc") is not None}
    plots = []
    if curves:
        plots.append(_img(_roc_plot(curves), "ROC curves"))
    if any(r["bad"] for r in variants.values()):
        plots.append(_img(_bad_rate_plot(variants, schemes), "bad rate per grade"))
    for name, r in variants.items():
        series = {m: c for m, c in (r.get("grade_counts") or {}).items() if c}
        if series:
            plots.append(_img(_grades_plot(series, schemes[name], f"{name}: 等级分布 grades"),
                              "grade distribution"))
        if r.get("fairness_detail"):
            plots.append(_img(_fairness_plot(r["fairness_detail"], r["fairness_min_ratio"],
                                             f"{name}: 公平性 fairness ratios"), "fairness"))
    side = ""
    if len(variants) > 1:
        keys = ["auc", "gini", "ks", "monotone", "bad_rate"]
        rows = [[k] + [_fmt(v.get(k)) for v in variants.values()] for k in keys]
        rows += [[f"psi {k}"] + [_fmt(v["psi"].get(k)) for v in variants.values()]
                 for k in ("previous_month", "twelve_months_before")]
        rows += [["groups below the fairness bound"]
                 + [str(len((v.get("fairness_detail") or {}).get("flagged", [])))
                    for v in variants.values()]]
        side = "<h2>Side by side</h2>" + _table(["measure", *variants], rows)
    outcome = (f"outcome: a new {html.escape(', '.join(result['outcome_items']))} finding in the "
               f"{result['outcome_months']} month(s) after it, from silver as known at "
               f"{html.escape(str(result.get('outcome_known_at')))}"
               if result["outcome_months"] else
               f"<b>no outcome window</b>: {html.escape(result['reasons']['outcome_months'])}")
    body = f"""
<p>Score month <b>{result['month']}</b>; {outcome}. Scores from
{html.escape(result.get('scores_from', ''))}.</p>
{side}{''.join(_variant_section(n, r, schemes[n]) for n, r in variants.items())}
<h2>Plots</h2>{''.join(plots)}"""
    return _page(f"{scheme.title} — 评估 evaluation, {result['month']}", body)
