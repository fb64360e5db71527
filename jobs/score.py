"""spark-submit entry point: python jobs/score.py --month 2026-03 [--scheme haibei]...

Argument parsing and a call into the library, nothing else: the same code runs embedded and on a
cluster (CITYCREDIT_SPARK_MASTER).
"""
import argparse
import sys

from citycredit.config import ConfigError, load_settings
from citycredit.io.lock import SHARED, WarehouseBusy, warehouse_lock
from citycredit.months import MonthError, check_month
from citycredit.rules import RuleFileError
from citycredit.io.spark import get_spark
from citycredit.scoring.job import run_scoring
from citycredit.scoring.rules_in_force import not_in_force_reason, rules_for_month


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Score one month for one or more schemes.")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--scheme", action="append", help="scheme id (repeatable; default all)")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--rescore-with-current-rules", action="store_true",
                        help="re-score a month published under other rules with those in force")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        check_month(args.month, "--month")
        schemes, not_yet = rules_for_month(settings, args.month, args.scheme,
                                           args.rescore_with_current_rules)
    except (ConfigError, MonthError, RuleFileError) as exc:   # a setting, a month, a scheme,
        print(f"NOT STARTED: {exc}", file=sys.stderr)          # or a published month's rules
        return 2                                               # changed
    for name, first in not_yet.items():
        print(f"{name} {args.month}: {not_in_force_reason(args.month, first)}")
    if not schemes:
        return 0
    # gold is written under the warehouse lock (shared), like the month's score step: no
    # erasure or cleanup removes files this job has yet to commit
    try:
        with warehouse_lock(settings.warehouse, f"jobs/score.py {args.month}", SHARED):
            spark = get_spark(settings, "citycredit-score")
            # every scheme from one scan and one shuffle of the month's findings
            for result in run_scoring(spark, settings, list(schemes.values()), args.month,
                                      args.run_id):
                print(f"{result.scheme} {result.month}: {result.subjects} subjects, "
                      f"{result.lines} explanation lines, {result.seconds:.1f}s "
                      f"(run {result.run_id})")
    except WarehouseBusy as exc:
        print(f"NOT STARTED: {exc}", file=sys.stderr)
        return 75
    return 0


if __name__ == "__main__":
    sys.exit(main())
