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
# # Score distributions
# How are the adults of a month spread over scores and grades in each scheme, how do the grade
# shares move from month to month, and do districts, age bands and residency groups differ?
# Reads gold/scores and silver/population through `citycredit.analysis` (no Spark).

# %% tags=["parameters"]
warehouse = "../demo/warehouse"   # a warehouse folder (make demo writes demo/warehouse)
scheme = "haibei"                 # the scheme broken down by group
month = ""                        # YYYY-MM; empty: the latest month scored

# %%
import matplotlib.pyplot as plt
import pandas as pd

from citycredit import analysis
from citycredit.months import last_day
from citycredit.plotting import cjk_font

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
month = month or analysis.latest_month(settings, scheme)
schemes = analysis.schemes(settings)
scores = analysis.read_table("gold.scores", where={"score_month": month},
                             columns=["subject_key", "scheme", "score", "grade"], settings=settings)
print(f"{month}: {scores.subject_key.nunique():,} adults scored in {scores.scheme.nunique()} schemes")

# %% [markdown]
# ## Score histogram and grade shares per scheme
# Grade boundaries are the dashed lines; the table gives each grade's count and share (grades
# best first, as the rule file lists them).

# %%
present = [s for s in schemes if s in set(scores.scheme)]
fig, axes = plt.subplots(len(present), 2, figsize=(12, 3.2 * len(present)), squeeze=False)
shares = {}
for row, scheme_id in zip(axes, present):
    definition = schemes[scheme_id]
    grades = [g.grade for g in definition.grades]
    these = scores[scores.scheme == scheme_id]
    row[0].hist(these.score, bins=60, color="#4c72b0")
    row[0].set_yscale("log")
    for g in definition.grades:
        if g.min is not None:
            row[0].axvline(float(g.min), color="grey", ls="--", lw=0.8)
    row[0].set_title(f"{definition.title} ({scheme_id}) {month}: 分数分布 score histogram")
    row[0].set_xlabel("score"); row[0].set_ylabel("adults (log)")
    counts = these.grade.value_counts().reindex(grades, fill_value=0)
    shares[scheme_id] = counts / counts.sum()
    labels = [f"{g.grade} {g.label}" for g in definition.grades]
    row[1].bar(labels, 100 * shares[scheme_id], color="#dd8452")
    row[1].set_title(f"{definition.title}: 等级占比 grade shares (%)")
    row[1].tick_params(axis="x", rotation=45)
    for x, (n, s) in enumerate(zip(counts, shares[scheme_id])):
        row[1].annotate(f"{n:,}", (x, 100 * s), ha="center", va="bottom", fontsize=8)
fig.tight_layout()
plt.show()
pd.DataFrame({s: (100 * v.rename(lambda g: g)).round(2).to_dict() for s, v in shares.items()}).fillna("")

# %% [markdown]
# ## Grade shares month over month
# Every month gold/scores holds for the scheme (a rerun replaces its month).

# %%
definition = schemes[scheme]
grades = [g.grade for g in definition.grades]
history = analysis.read_table("gold.scores", where={"scheme": scheme},
                              columns=["score_month", "grade"], settings=settings)
by_month = (history.groupby(["score_month", "grade"]).size().unstack(fill_value=0)
            .reindex(columns=grades, fill_value=0))
by_month_share = 100 * by_month.div(by_month.sum(axis=1), axis=0)
fig, ax = plt.subplots(figsize=(10, 4))
by_month_share.plot(kind="bar", stacked=True, ax=ax, colormap="RdYlGn_r", width=0.8)
ax.set_title(f"{definition.title}: 每月等级占比 grade shares by month (%)")
ax.set_xlabel("score month"); ax.set_ylabel("% of adults")
ax.legend([f"{g.grade} {g.label}" for g in definition.grades], bbox_to_anchor=(1.01, 1),
          loc="upper left")
fig.tight_layout()
plt.show()
by_month_share.round(2)

# %% [markdown]
# ## By district, age band and residency
# The population snapshot of the month gives each scored adult's district, residency and birth
# date (age in full years at the month's end, in bands).

# %%
population = analysis.read_table("silver.population", where={"snapshot_month": month},
                                 columns=["subject_key", "birth_date", "district", "residency"],
                                 settings=settings)
mine = scores[scores.scheme == scheme].merge(population, on="subject_key", how="left")
as_of = pd.Timestamp(last_day(month))
age = (as_of - pd.to_datetime(mine.birth_date)).dt.days // 365.25
mine["age band"] = pd.cut(age, [17, 24, 34, 44, 54, 64, 200],
                          labels=["18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
mine["residency"] = mine.residency.fillna("unknown")
mine["district"] = mine.district.fillna("unknown")
fig, axes = plt.subplots(1, 3, figsize=(16, 5))
tables = {}
for ax, group in zip(axes, ["district", "age band", "residency"]):
    counts = (mine.groupby([group, "grade"], observed=True).size().unstack(fill_value=0)
              .reindex(columns=grades, fill_value=0))
    share = 100 * counts.div(counts.sum(axis=1), axis=0)
    share.plot(kind="barh", stacked=True, ax=ax, colormap="RdYlGn_r", legend=False)
    ax.set_title(f"{definition.title}: 按{ {'district': '区县', 'age band': '年龄段', 'residency': '户籍'}[group] } by {group} (%)")
    ax.set_xlabel("% of adults")
    tables[group] = share.round(1).assign(adults=counts.sum(axis=1))
axes[-1].legend([f"{g.grade} {g.label}" for g in definition.grades], bbox_to_anchor=(1.01, 1),
                loc="upper left")
fig.tight_layout()
plt.show()

# %%
pd.concat(tables, names=["group", "value"])
