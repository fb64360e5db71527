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
# # Data quality
# Per department and month: how many rows were delivered (landed), accepted, quarantined and
# why, how many corrected or revoked earlier findings — and how each department's volume moves
# over time. Reads the run report (report/run_report), quarantine/rows, bronze row counts (the
# `month` column only: never an identity number) and silver/findings.

# %% tags=["parameters"]
warehouse = "../demo/warehouse"
month = ""      # YYYY-MM; empty: the latest month the run report holds

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd

from citycredit import analysis
from citycredit.plotting import cjk_font

cjk_font(backend=None)
settings = analysis.open_warehouse(warehouse)
report = analysis.read_table("report.run_report", where={"section": "source"},
                             settings=settings)
report = report.sort_values("created_at").groupby(["score_month", "name"]).tail(1)  # latest run
month = month or report.score_month.max()
runs = pd.DataFrame([{"month": r.score_month, "source": r.name, **json.loads(r.metrics)}
                     for r in report.itertuples()])
titles = {s: c.get("title", s) for s, c in settings.sources.items()}
print(f"run report: {runs.month.nunique()} month(s) run through the pipeline "
      f"({', '.join(sorted(runs.month.unique()))}); shown: {month}")

# %% [markdown]
# ## The month per department: landed = accepted + quarantined + suppressed
# Corrections and revocations are re-sent versions of earlier findings (silver keeps both).

# %%
columns = ["landed", "accepted", "quarantined", "suppressed", "corrections", "revocations"]
this = runs[runs.month == month].set_index("source")
this = this.reindex(columns=columns + ["status"]).fillna({c: 0 for c in columns})
fig, ax = plt.subplots(figsize=(11, 0.8 + 0.32 * len(this)))
labels = [f"{titles.get(s, s)[:14]} ({s})" for s in this.index]
ax.barh(labels, this.accepted, color="#55a868", label="accepted 接收")
ax.barh(labels, this.quarantined, left=this.accepted, color="#c44e52", label="quarantined 隔离")
ax.barh(labels, this.suppressed, left=this.accepted + this.quarantined, color="#8172b2",
        label="suppressed 已注销")
ax.set_xscale("symlog")
ax.set_title(f"{month}: 各部门报送 rows per department")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
this.astype({c: int for c in columns})

# %% [markdown]
# ## Quarantined rows by reason
# A row may carry several reason codes (';'-joined); `detail` in quarantine/rows says what to fix.

# %%
quarantine = analysis.read_table("quarantine.rows", columns=["source_id", "month", "reasons"],
                                 settings=settings)
reasons = quarantine.assign(reason=quarantine.reasons.str.split(";")).explode("reason")
by_reason = reasons.groupby(["month", "source_id", "reason"]).size().unstack(fill_value=0)
if len(by_reason):
    fig, ax = plt.subplots(figsize=(11, 0.8 + 0.3 * len(by_reason)))
    by_reason.plot(kind="barh", stacked=True, ax=ax, colormap="tab20")
    ax.set_title("隔离原因 quarantined rows by month, department and reason")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    plt.show()
by_reason

# %% [markdown]
# ## Volumes over time
# Rows landed per department and month (bronze; bulk-loaded months included), and the finding
# versions silver accepted from them, split into new findings, corrections and revocations.

# %%
landed = []
for source_id, conf in settings.sources.items():
    months = analysis.read_table(f"bronze.{source_id}", columns=["month"], settings=settings)
    landed.append(months["month"].value_counts().rename(source_id))
landed = pd.concat(landed, axis=1).fillna(0).astype(int).sort_index()
versions = analysis.read_table("silver.findings", columns=["source_id", "record_id", "item_code",
                                                           "known_from", "status"],
                               settings=settings)
first = versions.groupby(["source_id", "record_id"]).known_from.transform("min")
later = versions.known_from != first
versions["kind"] = "new"
versions.loc[later, "kind"] = "correction"
versions.loc[later & (versions.status == "revoked"), "kind"] = "revocation"
# the provincial platform re-sends every adult's score once a year: new versions, not corrections
versions.loc[later & (versions.item_code == "PROVINCIAL_CREDIT_SCORE"), "kind"] = "yearly re-send"
kinds = (versions.groupby(["known_from", "kind"]).size().unstack(fill_value=0)
         .reindex(columns=["new", "correction", "revocation", "yearly re-send"], fill_value=0))
fig, axes = plt.subplots(3, 1, figsize=(12, 12))
kinds_of = {s: c["kind"] for s, c in settings.sources.items()}
findings_sources = [s for s in landed.columns if kinds_of[s] == "findings"]
landed[findings_sources].plot(ax=axes[0], logy=True, legend=False, colormap="tab20")
axes[0].set_title("各部门每月报送量 rows landed per department and month (findings sources, log)")
axes[0].legend(findings_sources, bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=7)
kinds[["new", "yearly re-send"]].plot(kind="bar", stacked=True, ax=axes[1],
                                      color=["#4c72b0", "#bbbbbb"])
axes[1].set_title("新增 new finding versions per delivery month (grey: the provincial score's "
                  "yearly re-send)")
axes[1].set_xlabel("")
kinds[["correction", "revocation"]].plot(kind="bar", stacked=True, ax=axes[2],
                                         color=["#dd8452", "#c44e52"])
axes[2].set_title("更正与撤销 corrections and revocations of earlier findings per delivery month")
axes[2].set_xlabel("delivery month")
fig.tight_layout()
plt.show()
kinds.tail(12)

# %% [markdown]
# ## Every department and month run, from the run report

# %%
runs.pivot_table(index="source", columns="month", values=["landed", "quarantined"],
                 aggfunc="sum").fillna(0).astype(int)
