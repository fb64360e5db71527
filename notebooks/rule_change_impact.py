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
# # Rule change impact
# What would a draft rule file do to the month's grades? The policy tool `citycredit simulate`
# (citycredit/policy) scores the month under the adopted scheme and the draft in one Spark job
# and writes sandbox/simulated_scores and its HTML report; this notebook runs it and shows the
# migration matrix, the score changes, the rules that differ and a few explained moves.

# %% tags=["parameters"]
warehouse = "../demo/warehouse"
scheme = "haibei"
draft = "haibei-blood-15.yaml"   # a file of rules/drafts/ (or a path)
month = ""                       # YYYY-MM; empty: the latest month scored

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from citycredit import analysis
from citycredit.plotting import cjk_font
from citycredit.policy.task import simulate

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
month = month or analysis.latest_month(settings, scheme)
draft_path = Path(draft) if Path(draft).is_file() else settings.rules / "drafts" / draft
definition = analysis.scheme(scheme, settings)
result = simulate(scheme, draft_path, month, settings=settings)
print(f"{definition.title} {month}: {result['subjects']:,} adults, {result['moved']:,} change "
      f"grade ({result['up']:,} up, {result['down']:,} down), {result['score_changed']:,} change "
      f"score; report {result['report']}")

# %% [markdown]
# ## Migration matrix
# Rows: the grade under the adopted scheme; columns: under the draft. Cells: adults (the colour:
# the share of the row).

# %%
adopted_grades = list(result["grades"]["adopted"])
draft_grades = list(result["grades"]["draft"])
matrix = pd.DataFrame(result["migration"]).T.reindex(index=adopted_grades, columns=draft_grades)
matrix = matrix.fillna(0).astype(int)
shares = matrix.div(matrix.sum(axis=1).replace(0, np.nan), axis=0)
fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(draft_grades), 1.2 + 0.6 * len(adopted_grades)))
ax.imshow(shares.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=1)
ax.set_xticks(range(len(draft_grades)), draft_grades)
ax.set_yticks(range(len(adopted_grades)), adopted_grades)
for y in range(len(adopted_grades)):
    for x in range(len(draft_grades)):
        n = matrix.iat[y, x]
        if n:
            ax.text(x, y, f"{n:,}", ha="center", va="center", fontsize=8,
                    color="white" if shares.iat[y, x] > 0.6 else "black")
ax.set_xlabel(f"草案 draft {result['draft']}")
ax.set_ylabel(f"现行 adopted {definition.title}")
ax.set_title(f"{definition.title} {month}: 等级迁移 grade migration")
fig.tight_layout()
plt.show()
matrix

# %% [markdown]
# ## Score changes
# Adults whose score changes, by the size of the change (adults whose score stays are left out
# of the histogram; the quantiles include them).

# %%
histogram = pd.Series({int(k): v for k, v in result["score_change"]["histogram"].items()}).sort_index()
changed = histogram[histogram.index != 0]
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
axes[0].bar(changed.index, changed.to_numpy(), width=max(1, (changed.index.max() - changed.index.min()) / 60)
            if len(changed) else 1, color="#4c72b0")
axes[0].set_title(f"分数变化 score change, draft − adopted ({changed.sum():,} adults)")
axes[0].set_xlabel("points"); axes[0].set_ylabel("adults")
grades = pd.DataFrame(result["grades"]).reindex(list(dict.fromkeys(adopted_grades + draft_grades)))
grades.plot(kind="bar", ax=axes[1])
axes[1].set_yscale("log")
axes[1].set_title("各等级人数 adults per grade, adopted vs draft (log)")
fig.tight_layout()
plt.show()
pd.Series(result["score_change"]["quantiles"], name="score change").to_frame().T

# %% [markdown]
# ## Rules that differ, and crossings of each "grade or better" line
# (rules the draft leaves alone are left out of the table)

# %%
rules = pd.DataFrame({rule: {f"{side} {what}": (v or {}).get(what)
                             for side, v in sides.items() for what in ("subjects", "mean_points")}
                      for rule, sides in result["rules"].items()
                      if sides.get("adopted") != sides.get("draft")}).T
print(f"{len(rules)} of {len(result['rules'])} rules differ in subjects touched or mean points")
rules

# %%
pd.DataFrame(result["threshold_crossings"]).T

# %% [markdown]
# ## A sample of moved adults, explained
# Per sampled adult (numbered #1…, the n-th row of sandbox/simulated_scores in the sample's
# order — no subject key in a report): both scores and grades, and the rules whose points differ.

# %%
pd.DataFrame([{"sample": f"#{s['sample']}",
               "adopted": f"{s['adopted_score']} {s['adopted_grade']}",
               "draft": f"{s['draft_score']} {s['draft_grade']}",
               "rules that differ": "; ".join(f"{r}: {v['adopted']} → {v['draft']}"
                                             for r, v in s["rules"].items())}
              for s in result["explanation_sample"]])
