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
# # Explain a subject's score
# Why does this person have this score? A waterfall from the base score through every counted
# finding, tier, cap, subject and growth rule to the clamp and the final score, read from the
# explanation lines (gold/score_lines), with the findings that did *not* count listed beside it:
# deduplicated (and by which), expired, masked by an appeal, revoked, not matched by any rule.
# Subjects are pseudonymous (subject_key); this notebook never sees an identity number.

# %% tags=["parameters"]
warehouse = "../demo/warehouse"
scheme = "haibei"
month = ""          # YYYY-MM; empty: the latest month scored
subject_key = ""    # empty: the subject whose explanation shows the most kinds of line

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from citycredit import analysis
from citycredit.plotting import cjk_font

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
month = month or analysis.latest_month(settings, scheme)
definition = analysis.scheme(scheme, settings)
where = {"scheme": scheme, "score_month": month}
if not subject_key:     # the richest explanation: most distinct statuses and line types
    kinds = analysis.read_table("gold.score_lines", where=where,
                                columns=["subject_key", "line_type", "status"], settings=settings)
    variety = (kinds.assign(kind=kinds.line_type + ":" + kinds.status)
               .groupby("subject_key").agg(kinds=("kind", "nunique"), lines=("kind", "size")))
    subject_key = variety.sort_values(["kinds", "lines"], ascending=False).index[0]
lines = analysis.read_table("gold.score_lines", where={**where, "subject_key": subject_key},
                            settings=settings)
score = analysis.read_table("gold.scores", where={**where, "subject_key": subject_key},
                            settings=settings).iloc[0]
print(f"{definition.title} {month}, subject {subject_key[:12]}…: score {score.score}, "
      f"grade {score.grade} {score.grade_label}; {len(lines)} explanation lines")

# %% [markdown]
# ## The waterfall
# Base score, then each line that moved the score (finding points, tiers, rule and dimension
# caps, subject and growth rules), then the clamp to the scheme's range and rounding; the
# explanation adds up: base + Σ points = the score before the clamp.

# %%
titles = {d: v.title for d, v in definition.dimensions.items()}
moving = lines[(lines.points != 0) & (lines.status == "counted")].copy()
moving["label"] = [
    f"{titles.get(r.dimension, r.dimension or '')} · {r.line_type} {r.rule_id or ''}"
    + (f" {r.item_code} {r.occurred_on:%Y-%m-%d}" if r.line_type == "finding" else "")
    for r in moving.itertuples()]
order = {"finding": 0, "tier": 1, "growth": 2, "subject": 3, "rule_cap": 4, "dimension_cap": 5}
moving = moving.sort_values(by=["line_type", "dimension", "points"],
                            key=lambda c: c.map(order) if c.name == "line_type" else c)
before_clamp = float(score.base_score) + moving.points.sum()
steps = ([("基础分 base", float(score.base_score))]
         + list(zip(moving.label, moving.points))
         + ([("clamp / rounding", score.score - before_clamp)] if score.score != before_clamp else []))
labels, deltas = zip(*steps)
starts = np.concatenate([[0], np.cumsum(deltas)[:-1]])
colours = ["#999999"] + ["#55a868" if d > 0 else "#c44e52" for d in deltas[1:]]
fig, ax = plt.subplots(figsize=(10, 1.2 + 0.42 * len(steps)))
ax.barh(range(1, len(steps)), deltas[1:], left=starts[1:], color=colours[1:])
ax.barh(0, deltas[0], color=colours[0])          # the base and the score: bars from zero,
ax.barh(len(steps), score.score, color="#4c72b0")  # cut by the axis to the range that moves
ax.set_yticks(range(len(steps) + 1), [*labels, f"得分 score {score.score} ({score.grade} {score.grade_label})"])
ax.invert_yaxis()
levels = [*np.cumsum(deltas), float(score.base_score), score.score]   # where the bars end
low, high = max(0, min(levels) - 60), max(levels) + 40
ax.set_xlim(low, high)
for g in definition.grades:
    if g.min is not None and low <= float(g.min) <= high:
        ax.axvline(float(g.min), color="grey", ls=":", lw=0.8)
        ax.text(float(g.min), -0.9, g.grade, ha="center", fontsize=8, color="grey")
for y, (start, delta) in enumerate(zip(starts, deltas)):
    if y:
        ax.text(start + delta, y, f" {delta:+.0f}", va="center", fontsize=8)
ax.set_title(f"{definition.title} {month}: 分数构成 how the score is made")
ax.set_xlabel("score")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Every line of the explanation
# Counted lines moved the score; the others are listed with why they did not count.

# %%
show = ["line_type", "status", "rule_id", "dimension", "item_code", "level", "quantity",
        "occurred_on", "last_valid_day", "finding_points", "points", "deduplicated_by",
        "repaired_on", "source_id"]
lines.sort_values(["status", "line_type", "occurred_on"])[show]

# %%
not_counted = lines[lines.status != "counted"]
print("findings that did not count, by status:")
not_counted.groupby("status").size().rename("lines").to_frame()
