# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: citycredit
#     language: python
#     name: citycredit
# ---

# %% [markdown]
# # Rule contributions
# Which rules move scores, for how many people, by how much, and in which grades? And which
# delivered findings matched no rule of the scheme? Read from the explanation lines
# (gold/score_lines), the scores (gold/scores) and the run report of one scheme and month.

# %% tags=["parameters"]
warehouse = "../demo/warehouse"
scheme = "haibei"
month = ""      # YYYY-MM; empty: the latest month scored

# %%
import matplotlib.pyplot as plt
import pandas as pd

from citycredit import analysis
from citycredit.plotting import cjk_font

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
month = month or analysis.latest_month(settings, scheme)
definition = analysis.scheme(scheme, settings)
grades = [g.grade for g in definition.grades]
where = {"scheme": scheme, "score_month": month}
lines = analysis.read_table("gold.score_lines", where=where, columns=[
    "subject_key", "line_type", "rule_id", "dimension", "item_code", "level", "source_id",
    "points", "status"], settings=settings)
scores = analysis.read_table("gold.scores", where=where, columns=["subject_key", "grade"],
                             settings=settings)
print(f"{definition.title} {month}: {len(lines):,} explanation lines, {len(scores):,} adults")

# %% [markdown]
# ## Per rule: subjects touched, total and mean points
# A rule's points are its counted finding lines plus its tier, growth, subject-rule and
# rule-cap lines; dimension caps are shown per dimension. Mean points are per subject touched.

# %%
titles = {d: v.title for d, v in definition.dimensions.items()}
counted = lines[(lines.status == "counted") & (lines.points != 0)].copy()
counted["rule"] = counted.rule_id.fillna("cap: " + counted.dimension.map(titles).fillna(""))
per_rule = (counted.groupby("rule")
            .agg(dimension=("dimension", "first"), subjects=("subject_key", "nunique"),
                 total_points=("points", "sum"))
            .assign(mean_points=lambda t: t.total_points / t.subjects)
            .sort_values("total_points"))
per_rule["dimension"] = per_rule.dimension.map(titles).fillna(per_rule.dimension)
fig, axes = plt.subplots(1, 2, figsize=(14, 0.8 + 0.35 * len(per_rule)), sharey=True)
colours = ["#55a868" if p > 0 else "#c44e52" for p in per_rule.total_points]
labels = [f"{d} · {r}" for r, d in zip(per_rule.index, per_rule.dimension)]
axes[0].barh(labels, per_rule.total_points, color=colours)
axes[0].set_title(f"{definition.title} {month}: 规则总分 total points per rule")
axes[1].barh(labels, per_rule.subjects, color="#4c72b0")
axes[1].set_xscale("log")
axes[1].set_title("涉及人数 subjects touched (log)")
fig.tight_layout()
plt.show()
per_rule.round(2)

# %% [markdown]
# ## Mean points per rule, by grade
# Mean points among the adults of each grade who have the rule (blank: nobody in that grade).

# %%
by_grade = counted.merge(scores, on="subject_key")
pivot = (by_grade.groupby(["rule", "grade", "subject_key"]).points.sum()
         .groupby(["rule", "grade"]).mean().unstack()
         .reindex(columns=grades).reindex(per_rule.index))
touched = (by_grade.groupby(["rule", "grade"]).subject_key.nunique().unstack()
           .reindex(columns=grades).reindex(per_rule.index))
fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(grades), 0.8 + 0.35 * len(pivot)))
bound = max(1.0, float(pivot.abs().max().max()))
image = ax.imshow(pivot.to_numpy(dtype=float), cmap="RdYlGn", vmin=-bound, vmax=bound,
                  aspect="auto")
ax.set_xticks(range(len(grades)), [f"{g.grade}\n{g.label}" for g in definition.grades])
ax.set_yticks(range(len(pivot)), pivot.index)
for (y, x), value in pd.DataFrame(pivot.to_numpy()).stack().items():
    ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=7)
fig.colorbar(image, ax=ax, label="mean points per subject")
ax.set_title(f"{definition.title}: 各等级规则平均分 mean points by grade")
fig.tight_layout()
plt.show()
touched.fillna(0).astype(int)

# %% [markdown]
# ## Findings that matched no rule
# Delivered, in force, but no rule of the scheme takes them (status `no_rule`): an item the
# scheme does not score, or a level it has no rule for. Worth a look when a department starts
# delivering something new. The explanation lines leave them out (they explain nothing about a
# score); the run report counts them per item (`unmatched`).

# %%
import json

report = analysis.read_table("report.run_report", columns=[
    "run_id", "score_month", "section", "name", "metrics"], settings=settings)
runs = report[(report.section == "scheme") & (report.name == scheme)
              & (report.score_month == month)].sort_values("run_id")
unmatched = json.loads(runs.metrics.iloc[-1]).get("unmatched", {}) if len(runs) else {}
table = (pd.DataFrame(sorted(unmatched.items(), key=lambda kv: -kv[1]),
                      columns=["item_code", "findings"]).set_index("item_code"))
print(f"{sum(unmatched.values()):,} findings matched no rule of {scheme} in {month}")
table

# %% [markdown]
# ## Every status of the finding lines

# %%
(lines[lines.line_type == "finding"].groupby("status")
 .agg(lines=("subject_key", "size"), subjects=("subject_key", "nunique")))
