"""Grade recognition across schemes (互认; issue "Lookups" items 3 and 6).

Adopted tables are data: `rules/recognition/<from>__<to>.yaml`, `grades: {<from grade>: <to
grade>}`, loaded and checked by citycredit.rules.load_recognition (every grade mapped); the service
loads them all at start.

`propose` drafts such a table from data by percentile matching: on one month's population scored
in both schemes (gold/published_scores, joined on subject_key), each grade of <from> covers a band
of the population ranked best first (its cumulative share); it is mapped to the grade of <to>
whose band holds the middle of that band. Policy staff edit the printed YAML and adopt it as
`rules/recognition/<from>__<to>.yaml`.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog
from ..config import Settings
from ..io import tables
from ..rules import load_schemes


class ProposalError(ValueError):
    """Nothing to propose from (no common population published for the month)."""


@dataclass
class Proposal:
    source: str
    target: str
    month: str
    population: int                       # persons scored in both schemes
    source_shares: list[tuple[str, str, int]]   # (grade, label, persons), best first
    target_shares: list[tuple[str, str, int]]
    mapping: dict[str, str]               # every grade of source → a grade of target
    agreement: float                      # share of the population whose own target grade is
                                          # the one their source grade maps to


def _bands(shares: list[tuple[str, str, int]], total: int) -> list[tuple[str, float, float]]:
    out, start = [], 0.0
    for grade, _label, persons in shares:
        end = start + persons / total
        out.append((grade, start, end))
        start = end
    return out


def percentile_mapping(source: list[tuple[str, str, int]],
                       target: list[tuple[str, str, int]]) -> dict[str, str]:
    """Each source grade → the target grade whose cumulative band (best first) holds the middle
    of the source grade's band; an empty grade takes the target grade at its position."""
    total = sum(n for *_, n in source)
    if total == 0 or sum(n for *_, n in target) != total:
        raise ProposalError("both grade tables must count the same, non-empty population")
    target_bands = _bands(target, total)
    mapping = {}
    for grade, start, end in _bands(source, total):
        middle = (start + end) / 2
        mapping[grade] = next((g for g, lo, hi in target_bands if lo <= middle < hi and hi > lo),
                              next((g for g, lo, hi in reversed(target_bands) if lo <= middle),
                                   target_bands[0][0]))
    return mapping


def propose(settings: Settings, source: str, target: str, month: str) -> Proposal:
    """A draft recognition table <source> → <target> from month `month`'s publication."""
    schemes = load_schemes(settings.rules, [source, target])
    location = catalog.PUBLISHED_SCORES.at(settings)
    if not tables.exists(location):
        raise ProposalError(f"nothing published yet ({location})")
    graded = {}
    for name in (source, target):
        rows = tables.read_arrow(location, where={"scheme": name, "score_month": month},
                                 columns=["subject_key", "grade"])
        graded[name] = rows.rename_columns(["subject_key", f"grade_{name}"])
    both = graded[source].join(graded[target], "subject_key", join_type="inner")
    if both.num_rows == 0:
        raise ProposalError(f"no person has both a {source} and a {target} score published for "
                            f"{month}")

    def shares(name):
        counts = dict(zip(*[c.to_pylist() for c in
                            pc.value_counts(both.column(f"grade_{name}")).flatten()]))
        return [(g.grade, g.label, int(counts.get(g.grade, 0))) for g in schemes[name].grades]

    source_shares, target_shares = shares(source), shares(target)
    for name, rows in ((source, source_shares), (target, target_shares)):
        if sum(n for *_, n in rows) != both.num_rows:
            raise ProposalError(f"{month}: {name} grades were published that rules/{name}.yaml "
                                f"no longer has; propose from a month scored with these rules")
    mapping = percentile_mapping(source_shares, target_shares)
    expected = pa.array([mapping[g] for g in both.column(f"grade_{source}").to_pylist()])
    agree = pc.sum(pc.equal(expected, both.column(f"grade_{target}"))).as_py() or 0
    return Proposal(source, target, month, both.num_rows, source_shares, target_shares, mapping,
                    agree / both.num_rows)


def proposal_yaml(p: Proposal) -> str:
    """The draft as a recognition file, the share tables as comments."""
    def table(title, rows):
        lines = [f"#   {title}", "#     grade  persons     share  cumulative"]
        cumulative = 0
        for grade, label, n in rows:
            cumulative += n
            lines.append(f"#     {grade:<5} {n:>8} {n / p.population:>8.2%} {cumulative / p.population:>10.2%}"
                         f"  {label}")
        return lines

    out = [f"# DRAFT 互认 table {p.source} → {p.target}, proposed by `citycredit recognition propose "
           f"--from {p.source} --to {p.target} --month {p.month}`.",
           f"# Percentile matching on the {p.population} persons published in both schemes for "
           f"{p.month}: each {p.source} grade",
           f"# takes the {p.target} grade at the middle of its band of the population (best first).",
           "# Review and edit, then adopt as rules/recognition/"
           f"{p.source}__{p.target}.yaml (every {p.source} grade must stay mapped).",
           "#", *table(p.source, p.source_shares), "#", *table(p.target, p.target_shares), "#",
           f"#   {p.agreement:.1%} of these persons hold, in {p.target}, exactly the grade their "
           f"{p.source} grade maps to.",
           "grades:"]
    out += [f"  {grade}: {p.mapping[grade]}"
            + (f"    # nobody in {grade} this month: placed by rank, review" if not n else "")
            for grade, _label, n in p.source_shares]
    return "\n".join(out) + "\n"
