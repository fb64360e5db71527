"""The measures of the policy tools, on small frequency tables (no Spark): the standard
credit-scoring measures of validity and discrimination (AUC, Gini, KS, bad rate per grade),
stability (PSI, migration matrices) and fairness (grade shares by group, the four-fifths rule).

Spark reduces a month to frequency tables first (a row per score and outcome, per grade, per
group: hundreds of rows, not millions); everything here works on those, with counts as weights.

Orientation: a higher score means a better record, so the risk ordering is −score. AUC is the
probability that a randomly chosen bad subject has a lower score than a randomly chosen good one
(ties count half); Gini = 2·AUC − 1; KS = max over cut-offs (TPR − FPR) of that ROC curve: the
largest gap between the share of bad and the share of good subjects at or below a score, i.e. the
one-sided two-sample Kolmogorov–Smirnov statistic in the scheme's own direction (a scheme that
ranks the bad above the good gets a small KS, not the large two-sided one).
AUC and the ROC curve come from scikit-learn (`roc_auc_score`, `roc_curve`, with the counts as
`sample_weight`), not from our own code.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

#: the share given to an empty bin in PSI (0.01 %): ln(0) is undefined, and a grade that is empty
#: in one month but not the other must still count (it is the strongest shift there is)
PSI_EPSILON = 1e-4
#: the usual PSI bands: < 0.1 stable, 0.1–0.25 watch, > 0.25 shifted
PSI_BANDS = ((0.1, "stable"), (0.25, "watch"), (math.inf, "shifted"))
#: the four-fifths rule: a group's selection rate below 0.8 × the reference rate is flagged
FOUR_FIFTHS = 0.8


class Unavailable(ValueError):
    """A measure cannot be computed; the message is the reason the JSON gives beside null."""


# ---------------------------------------------------------------------------------------------
# validity and discrimination
def roc_measures(freq: pd.DataFrame) -> dict:
    """AUC, Gini and KS of the scores against the outcome.

    In: a frequency table with columns `score` (number), `bad` (0/1 or bool), `count` (subjects).
    Out: {"auc", "gini", "ks", "ks_score" (the score at which KS is reached: the cut-off
    "score ≤ ks_score"), "roc": (fpr, tpr) arrays for the plot}.
    Raises Unavailable when there are no subjects, or no bad or no good subject."""
    from sklearn.metrics import roc_auc_score, roc_curve

    freq = freq[freq["count"] > 0]
    bad = freq["bad"].astype(int).to_numpy()
    weight = freq["count"].to_numpy(dtype=float)
    if weight.sum() == 0:
        raise Unavailable("no subjects")
    n_bad = weight[bad == 1].sum()
    if n_bad == 0:
        raise Unavailable("no subject had an outcome finding in the outcome window")
    if n_bad == weight.sum():
        raise Unavailable("every subject had an outcome finding: nothing to discriminate")
    risk = -freq["score"].to_numpy(dtype=float)
    auc = float(roc_auc_score(bad, risk, sample_weight=weight))
    fpr, tpr, thresholds = roc_curve(bad, risk, sample_weight=weight, drop_intermediate=False)
    gaps = tpr - fpr                    # ≥ 0: the curve starts at (0, 0)
    best = int(np.argmax(gaps))
    ks_score = None if not np.isfinite(thresholds[best]) else float(-thresholds[best])
    return {"auc": auc, "gini": 2 * auc - 1, "ks": float(gaps[best]), "ks_score": ks_score,
            "roc": (fpr, tpr)}


def bad_rates(by_grade: pd.DataFrame, grades: Sequence[str]) -> dict[str, dict]:
    """Per grade (highest first): subjects, bad subjects and the bad rate (None: no subjects).

    In: columns `grade`, `bad` (0/1), `count`."""
    out = {}
    for grade in grades:
        rows = by_grade[by_grade["grade"] == grade]
        subjects = int(rows["count"].sum())
        bad = int(rows.loc[rows["bad"].astype(int) == 1, "count"].sum())
        out[grade] = {"subjects": subjects, "bad": bad,
                      "rate": (bad / subjects) if subjects else None}
    return out


def monotone(rates: Mapping[str, float | None], grades: Sequence[str]) -> tuple[bool | None, list]:
    """Does the bad rate fall as the grade rises? `grades` highest first.

    Going up from the lowest grade, each grade's rate must not exceed the rate of the next lower
    grade that has subjects (equal rates pass: a grade with no bad subjects beside another
    one is not a failure of ordering). Grades without subjects are skipped. Returns (monotone,
    the grades whose rate does not fall); (None, []) when fewer than two grades have subjects."""
    present = [(g, rates[g]) for g in reversed(list(grades)) if rates.get(g) is not None]
    if len(present) < 2:
        return None, []
    flagged = [upper for (_, lower_rate), (upper, upper_rate) in zip(present, present[1:])
               if upper_rate > lower_rate]
    return not flagged, flagged


# ---------------------------------------------------------------------------------------------
# stability
def psi(expected: Mapping[str, int], actual: Mapping[str, int], bins: Iterable[str],
        epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of `actual` against `expected` on fixed bins (grades):
    Σ (a − e) · ln(a / e) over the bins, a and e the shares of each bin, an empty bin's share
    taken as `epsilon`. Raises Unavailable when either side has no subjects."""
    bins = list(bins)
    e_total = sum(expected.get(b, 0) for b in bins)
    a_total = sum(actual.get(b, 0) for b in bins)
    if not e_total or not a_total:
        raise Unavailable("no subjects to compare")
    value = 0.0
    for b in bins:
        e = max(expected.get(b, 0) / e_total, epsilon)
        a = max(actual.get(b, 0) / a_total, epsilon)
        value += (a - e) * math.log(a / e)
    return value


def psi_band(value: float | None) -> str | None:
    if value is None:
        return None
    return next(name for bound, name in PSI_BANDS if value < bound)


def herfindahl(counts: Mapping[str, int]) -> float | None:
    """Grade concentration: Σ share² (1 = everybody in one grade)."""
    total = sum(counts.values())
    return sum((c / total) ** 2 for c in counts.values()) if total else None


# ---------------------------------------------------------------------------------------------
# migration (adopted × draft, or last month × this month)
def migration_matrix(counts: pd.DataFrame, rows: Sequence[str], columns: Sequence[str]
                     ) -> dict[str, dict[str, int]]:
    """{row grade: {column grade: subjects}} with every grade present (zeros filled).
    In: columns `from_grade`, `to_grade`, `count`."""
    matrix = {r: {c: 0 for c in columns} for r in rows}
    for r, c, n in counts[["from_grade", "to_grade", "count"]].itertuples(index=False):
        matrix.setdefault(r, {k: 0 for k in columns})
        matrix[r][c] = matrix[r].get(c, 0) + int(n)
    return matrix


def matrix_shares(matrix: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, float | None]]:
    """Each row of a migration matrix as shares of the row's subjects (None for an empty row)."""
    out = {}
    for r, row in matrix.items():
        total = sum(row.values())
        out[r] = {c: (n / total if total else None) for c, n in row.items()}
    return out


def migration_moves(matrix: Mapping[str, Mapping[str, int]], from_grades: Sequence[str],
                    to_grades: Sequence[str]) -> dict:
    """Subjects whose grade changes, and how: up (to a better grade), down, unchanged, and the
    weighted bandwidths of the ECB's validation instructions (Σ share × grades moved, upward
    and downward). Grades compare by name: the position of a grade in `to_grades` against the
    position of the same name; a grade the other side lacks compares by position in its list."""
    rank_to = {g: i for i, g in enumerate(to_grades)}
    rank_from = {g: rank_to.get(g, i) for i, g in enumerate(from_grades)}
    total = sum(n for row in matrix.values() for n in row.values())
    up = down = same = 0
    up_width = down_width = 0.0
    for r, row in matrix.items():
        for c, n in row.items():
            steps = rank_from[r] - rank_to[c]           # > 0: the new grade is higher
            if steps > 0:
                up += n
                up_width += n * steps
            elif steps < 0:
                down += n
                down_width += n * -steps
            else:
                same += n
    return {"subjects": total, "moved": up + down, "up": up, "down": down, "unchanged": same,
            "upward_bandwidth": up_width / total if total else None,
            "downward_bandwidth": down_width / total if total else None}


def threshold_crossings(matrix: Mapping[str, Mapping[str, int]], from_grades: Sequence[str],
                        to_grades: Sequence[str]) -> dict[str, dict[str, int]]:
    """For every grade but the lowest, the subjects who cross "that grade or better": up (below
    it before, at or above after) and down. A threshold counts only where both sides have the
    grade (a draft that renames a grade has no such threshold)."""
    out = {}
    for threshold in from_grades[:-1]:
        if threshold not in to_grades[:-1]:
            continue
        at_from = set(from_grades[:from_grades.index(threshold) + 1])
        at_to = set(to_grades[:to_grades.index(threshold) + 1])
        up = sum(n for r, row in matrix.items() for c, n in row.items()
                 if r not in at_from and c in at_to)
        down = sum(n for r, row in matrix.items() for c, n in row.items()
                   if r in at_from and c not in at_to)
        out[threshold] = {"up": up, "down": down}
    return out


# ---------------------------------------------------------------------------------------------
# distributions
def quantiles(histogram: Mapping[int, int], levels: Sequence[float]) -> dict[float, int | None]:
    """Quantiles of an integer distribution given as {value: count} (the lower value at a
    boundary: the smallest v with cumulative share ≥ level)."""
    items = sorted((v, n) for v, n in histogram.items() if n)
    total = sum(n for _, n in items)
    out = {}
    for level in levels:
        if not total:
            out[level] = None
            continue
        target, seen = level * total, 0
        out[level] = items[-1][0]
        for value, n in items:
            seen += n
            if seen >= target and seen > 0:
                out[level] = value
                break
    return out


# ---------------------------------------------------------------------------------------------
# fairness
def fairness(counts: pd.DataFrame, grades: Sequence[str], incentive_grade: str,
             bound: float = FOUR_FIFTHS) -> dict:
    """Grade shares by group and the four-fifths rule at the incentive threshold.

    In: columns `attribute` (district, age_band, sex, residency), `group`, `grade`, `count`;
    each attribute's rows cover the whole population once. The reference is the whole
    population's share at or above `incentive_grade`. Out: {"reference_share",
    "reference_at_or_above" (subjects: few means noisy ratios), "ratios":
    {attribute: {group: ratio or None}}, "flagged": [{attribute, group, ratio, share}],
    "shares": {attribute: {group: {grade: share}}}, "subjects": {attribute: {group: n}}}.
    A group's ratio is None when the reference share is 0 (nobody reaches the threshold)."""
    if incentive_grade not in grades:
        raise Unavailable(f"incentive grade {incentive_grade!r} is not a grade of the scheme")
    at_or_above = set(grades[:list(grades).index(incentive_grade) + 1])
    out = {"reference_share": None, "reference_at_or_above": 0, "ratios": {}, "flagged": [],
           "shares": {}, "subjects": {}}
    for attribute, rows in counts.groupby("attribute", sort=False):
        total = rows["count"].sum()
        reaching = int(rows.loc[rows["grade"].isin(at_or_above), "count"].sum())
        reference = reaching / total if total else None
        out["reference_share"], out["reference_at_or_above"] = reference, reaching
        ratios, shares, sizes = {}, {}, {}
        for group, g in rows.groupby("group", sort=True):
            n = int(g["count"].sum())
            share = g.loc[g["grade"].isin(at_or_above), "count"].sum() / n if n else None
            ratio = (share / reference) if reference and share is not None else None
            ratios[str(group)] = ratio
            sizes[str(group)] = n
            shares[str(group)] = {gr: (int(g.loc[g["grade"] == gr, "count"].sum()) / n
                                       if n else None) for gr in grades}
            if ratio is not None and ratio < bound:
                out["flagged"].append({"attribute": attribute, "group": str(group),
                                       "ratio": ratio, "share": share})
        out["ratios"][attribute] = ratios
        out["shares"][attribute] = shares
        out["subjects"][attribute] = sizes
    return out
