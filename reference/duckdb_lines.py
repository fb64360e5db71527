"""Explanation lines of the DuckDB reference scorer (SPEC §5 as amended 2026-12-05; docs/contracts.md
gold/score_lines), written in DuckDB SQL over the reference's own temporary tables — no code
shared with citycredit.scoring.

The lines that explain the month, per subject of the month:

*   ``finding``: every finding as known at M of a scored adult whose status is not ``no_rule``,
    ``expired`` or ``revoked``; an ``expired`` one whose last valid day is on or after the first
    day of the previous month; a ``revoked`` one whose current version was delivered
    in M (known_from = M).  Statuses, in this order: revoked, appeal_upheld, masked, no_rule,
    not_yet_valid, expired, then for the rest requirement_unmet, deduplicated, repaired, counted.
    Points: a counted finding of a ``points`` / ``points_per_unit`` rule carries its points,
    every other finding line 0 (a tiers rule is explained by its ``tier`` line, a growth rule by
    its ``growth`` line);
*   ``tier`` per subject and tiers rule with counting findings (points for the summed quantity);
    ``growth`` per subject and growth rule with a current finding of it (points before the rule
    cap, quantity = full periods, occurred_on = the day growth counts from); ``subject`` per
    subject and subject rule that applies;
*   ``rule_cap`` (total − raw) where a rule cap acts, ``dimension_cap`` (total − raw, no rule_id)
    where a dimension cap acts.

All of them status ``counted`` apart from finding lines.  So base_score + Σ points = raw_score.

Tables read (made by reference.duckdb_scorer.score_reference before): adults, evaluated, valid,
counted, repaired, rule_tot, dim_tot, rules, dims.
"""
from __future__ import annotations

import datetime as dt

#: the columns of the reference's lines (a subset of catalog.SCORE_LINES: no finding_points,
#: deduplicated_by, rules_version or run_id)
LINE_COLUMNS = ("scheme", "score_month", "subject_key", "line_type", "source_id", "record_id",
                "item_code", "level", "quantity", "occurred_on", "valid_until", "rule_id",
                "dimension", "last_valid_day", "points", "status", "repaired_on")


def lines_sql(scale: int, scheme: str, month: str) -> str:
    """The SELECT of every explanation line (LINE_COLUMNS) of `scheme` for score month `month`
    ('YYYY-MM'); points DECIMAL(38, scale), as the scorer's.  No parameters (it can be COPY'd)."""
    D = f"DECIMAL(38,{scale})"
    year, mon = int(month[:4]), int(month[5:])
    since = dt.date(year - (mon == 1), (mon - 2) % 12 + 1, 1)   # first day of the month before
    text = lambda value: "'" + str(value).replace("'", "''") + "'"  # noqa: E731
    zero = f"CAST(0 AS {D})"

    def adjustment(line_type: str, points: str, source: str, where: str,
                   rule_id: str = "t.rule_id", quantity: str = "NULL", start: str = "NULL") -> str:
        return f"""
    SELECT t.sid, '{line_type}', NULL, NULL, NULL, NULL, CAST({quantity} AS DECIMAL(38,4)),
           CAST({start} AS DATE), NULL, {rule_id}, d.dimension, NULL, CAST({points} AS {D}),
           'counted', NULL
    FROM {source} t JOIN dims d ON d.dim_idx = t.dim_idx
    WHERE {where}"""

    return f"""
WITH finding_lines AS (
    SELECT e.sid, e.source_id, e.record_id, e.item_code, e.level, e.quantity, e.occurred_on,
           e.valid_until, r.rule_id, d.dimension, e.last_valid_day, e.known_from, x.repaired_on,
           CASE WHEN e.status <> 'counted' OR r.kind = 'growth' THEN e.status
                WHEN NOT v.met THEN 'requirement_unmet'
                WHEN c.sid IS NULL THEN 'deduplicated'
                WHEN x.sid IS NOT NULL THEN 'repaired'
                ELSE 'counted' END AS status,
           CASE WHEN x.sid IS NULL AND r.kind IN ('points', 'per_unit') THEN c.points END AS points
    FROM evaluated e
    LEFT JOIN rules r ON r.rule_idx = e.rule_idx
    LEFT JOIN dims d ON d.dim_idx = r.dim_idx
    LEFT JOIN valid v ON v.sid = e.sid AND v.source_id = e.source_id AND v.record_id = e.record_id
    LEFT JOIN counted c ON c.sid = e.sid AND c.source_id = e.source_id AND c.record_id = e.record_id
    LEFT JOIN repaired x ON x.sid = e.sid AND x.source_id = e.source_id AND x.record_id = e.record_id
    WHERE e.status NOT IN ('no_rule', 'expired', 'revoked')
       OR (e.status = 'expired' AND e.last_valid_day >= DATE {text(since.isoformat())})
       OR (e.status = 'revoked' AND e.known_from = {text(month)})
),
lines (sid, line_type, source_id, record_id, item_code, level, quantity, occurred_on, valid_until,
       rule_id, dimension, last_valid_day, points, status, repaired_on) AS (
    SELECT sid, 'finding', source_id, record_id, item_code, level, quantity, occurred_on, valid_until,
           rule_id, dimension, last_valid_day,
           CASE WHEN status = 'counted' THEN coalesce(points, {zero}) ELSE {zero} END, status, repaired_on
    FROM finding_lines
    UNION ALL{adjustment("tier", "t.raw", "rule_tot", "t.kind = 'tiers'", quantity="t.qty")}
    UNION ALL{adjustment("growth", "t.raw", "rule_tot", "t.kind = 'growth'", quantity="t.qty",
                         start="t.start_day")}
    UNION ALL{adjustment("subject", "t.raw", "rule_tot", "t.kind = 'subject'")}
    UNION ALL{adjustment("rule_cap", "t.total - t.raw", "rule_tot", "t.total <> t.raw")}
    UNION ALL{adjustment("dimension_cap", "t.total - t.raw", "dim_tot", "t.total <> t.raw",
                         rule_id="NULL")}
)
SELECT CAST({text(scheme)} AS VARCHAR) AS scheme, CAST({text(month)} AS VARCHAR) AS score_month, a.subject_key,
       l.line_type, l.source_id, l.record_id, l.item_code, l.level, l.quantity, l.occurred_on,
       l.valid_until, l.rule_id, l.dimension, l.last_valid_day, l.points, l.status, l.repaired_on
FROM lines l JOIN adults a ON a.sid = l.sid
"""
