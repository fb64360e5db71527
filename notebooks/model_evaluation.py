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
# # Model evaluation
# Does the scheme sort people by what happens to them next (validity and discrimination), is it
# stable from month to month, and is it fair across districts, age bands, sexes and residency?
# The policy tool `citycredit evaluate` (citycredit/policy) computes the measures; this notebook
# runs it and plots them. The outcome is a new serious negative finding within the 12 months
# after the evaluated month, so the default month is 12 months before the latest one scored.

# %% tags=["parameters"]
warehouse = "../demo/warehouse"
scheme = "haibei"
month = ""      # YYYY-MM; empty: 12 months before the latest month scored
draft = ""      # optional: a draft of rules/drafts/ evaluated beside the adopted scheme

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from citycredit import analysis
from citycredit.months import shift_month
from citycredit.plotting import cjk_font
from citycredit.policy.task import evaluate

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
month = month or shift_month(analysis.latest_month(settings, scheme), -12)
definition = analysis.scheme(scheme, settings)
draft_path = None
if draft:
    draft_path = Path(draft) if Path(draft).is_file() else settings.rules / "drafts" / draft
result = evaluate(scheme, month, draft=draft_path, settings=settings, record=False)
variants = {"adopted": result, **({result["draft"]["draft"]: result["draft"]} if draft else {})}


def fmt(value, digits=3):
    return "—" if value is None else round(value, digits)


pd.DataFrame({name: {"adults": r["subjects"], "bad (outcome)": r["bad"],
                     "bad rate": fmt(r["bad_rate"], 4), "AUC": fmt(r["auc"]),
                     "Gini": fmt(r["gini"]), "KS": fmt(r["ks"]),
                     "monotone": r["monotone"], "outcome months": r["outcome_months"],
                     "PSI vs previous month": fmt(r["psi"]["previous_month"], 5),
                     "PSI vs 12 months before": fmt(r["psi"]["twelve_months_before"], 5),
                     "PSI band (previous / 12 before)":
                         " / ".join(str(b) for b in (r["psi_band"] or {}).values()) or "—"}
              for name, r in variants.items()})

# %% [markdown]
# ## Validity: bad rate per grade
# The share of each grade's adults with a serious negative finding in the outcome window; it
# should fall as the grade rises (grades where it does not are listed in `not_falling`).

# %%
fig, axes = plt.subplots(1, len(variants), figsize=(7 * len(variants), 4), squeeze=False)
for ax, (name, r) in zip(axes[0], variants.items()):
    grades = list(r["subjects_by_grade"])
    rates = [100 * (r["bad_rate_by_grade"].get(g) or 0) for g in grades]
    bars = ax.bar(grades, rates, color="#c44e52")
    for bar, g in zip(bars, grades):
        ax.annotate(f"{r['bad_by_grade'].get(g, 0)}/{r['subjects_by_grade'][g]:,}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8)
    ax.set_title(f"{definition.title} {month} ({name}): 各等级违约率 bad rate by grade (%)")
    ax.set_ylabel("% with a serious finding in the outcome window")
fig.tight_layout()
plt.show()
print("reasons a measure is null or limited:", result["reasons"] or "none")

# %% [markdown]
# ## Discrimination: the cumulative share of bad and good adults by grade (ROC by grade)
# From the worst grade up; the area under it is the AUC, the widest gap the KS (by grade).

# %%
fig, ax = plt.subplots(figsize=(5.5, 5))
for name, r in variants.items():
    grades = list(r["subjects_by_grade"])[::-1]          # worst first
    bad = np.array([r["bad_by_grade"].get(g, 0) for g in grades], dtype=float)
    good = np.array([r["subjects_by_grade"][g] for g in grades], dtype=float) - bad
    if bad.sum() and good.sum():
        tpr = np.concatenate([[0], np.cumsum(bad) / bad.sum()])
        fpr = np.concatenate([[0], np.cumsum(good) / good.sum()])
        ax.plot(fpr, tpr, marker="o", label=f"{name} AUC {fmt(r['auc'])}")
ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
ax.set_xlabel("share of good adults (worst grades first)")
ax.set_ylabel("share of bad adults")
ax.set_title(f"{definition.title}: 区分度 discrimination")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Stability: grade shares now, a month before and a year before; migration from last month

# %%
counts = pd.DataFrame(result["grade_counts"]).fillna(0)
shares = 100 * counts / counts.sum()
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
shares.plot(kind="bar", ax=axes[0])
axes[0].set_yscale("log")
axes[0].set_title(f"{definition.title}: 等级占比 grade shares (%, log), PSI {fmt(result['psi']['previous_month'], 5)}"
                  f" / {fmt(result['psi']['twelve_months_before'], 5)}")
migration = pd.DataFrame(result["migration_previous_month"]).T.fillna(0).astype(int)
row_share = migration.div(migration.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
axes[1].imshow(row_share.to_numpy(), cmap="Blues", vmin=0, vmax=1)
axes[1].set_xticks(range(len(migration.columns)), migration.columns)
axes[1].set_yticks(range(len(migration.index)), migration.index)
for y in range(len(migration.index)):
    for x in range(len(migration.columns)):
        if migration.iat[y, x]:
            axes[1].text(x, y, f"{migration.iat[y, x]:,}", ha="center", va="center", fontsize=7,
                         color="white" if row_share.iat[y, x] > 0.6 else "black")
axes[1].set_xlabel("this month"); axes[1].set_ylabel("previous month")
axes[1].set_title("月度迁移 migration from the previous month")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Fairness: each group's share at or above the incentive grade, over the whole population's
# Below the dashed line (`policy.fairness_min_ratio`, the four-fifths rule) a group is flagged.

# %%
attributes = list(result["fairness"])
fig, axes = plt.subplots(1, len(attributes), figsize=(4.2 * len(attributes), 4), squeeze=False)
for ax, attribute in zip(axes[0], attributes):
    ratios = pd.Series(result["fairness"][attribute], dtype=float)
    ax.bar(ratios.index.astype(str), ratios.to_numpy(), color="#8172b2")
    ax.axhline(result["fairness_min_ratio"], color="red", ls="--", lw=0.8)
    ax.axhline(1, color="grey", lw=0.6)
    ax.set_title(f"{attribute} (≥ {result['incentive_grade']})")
    ax.tick_params(axis="x", rotation=45)
fig.suptitle(f"{definition.title} {month}: 公平性 fairness ratio")
fig.tight_layout()
plt.show()
pd.DataFrame(result["fairness_flags"]) if result["fairness_flags"] else "no group flagged"
