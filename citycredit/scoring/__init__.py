"""Scoring (SPEC §4): pure DataFrame steps (steps, explain), the job's edges (job), the month's
step (task). The names below are the package's public API."""
from .steps import (FINDING_COLUMNS, ScoringError, appeal_flags, dedupe_highest_value,  # noqa: F401
                    dimension_totals, evaluate_findings, evaluate_month, match_rule, rule_totals,
                    rules_frame, score_month, subject_scores, summarise_month, tier_points)
