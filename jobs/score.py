"""spark-submit entry point: python jobs/score.py --month 2026-03 [--scheme haibei]...

Argument parsing and a call into the library, nothing else: the same step as the month's `score`
(scoring.task.score) runs embedded and on a cluster (CITYCREDIT_SPARK_MASTER, or spark-submit by
the DAG's score step when conf names a cluster: citycredit.cluster, docs/cluster.md).
"""
import argparse
import datetime as dt
import sys
from pathlib import Path

# spark-submit puts the --py-files zip (for the executors) first on the driver's path; the driver
# runs in the checkout this file is in, whose citycredit finds conf/ and rules/ beside it
CHECKOUT = Path(__file__).resolve().parents[1]
if (CHECKOUT / "citycredit").is_dir():
    sys.path.insert(0, str(CHECKOUT))

from citycredit.cluster import write_result  # noqa: E402  (after the path above)
from citycredit.config import ConfigError, load_settings  # noqa: E402
from citycredit.io.lock import SHARED, WarehouseBusy, warehouse_lock  # noqa: E402
from citycredit.months import MonthError, check_month  # noqa: E402
from citycredit.rules import RuleFileError  # noqa: E402
from citycredit.scoring.job import PointsOutOfRange  # noqa: E402
from citycredit.scoring.rules_in_force import not_in_force_reason, rules_for_month  # noqa: E402
from citycredit.scoring.task import score  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Score one month for one or more schemes.")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--scheme", action="append", help="scheme id (repeatable; default all)")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--rescore-with-current-rules", action="store_true",
                        help="re-score a month published under other rules with those in force")
    parser.add_argument("--result", default=None,
                        help="write the step's result (JSON: per scheme the counts the publish "
                             "step checks) to this file")
    parser.add_argument("--lock-wait", type=float, default=0.0,
                        help="seconds to wait while an erasure or cleanup holds the warehouse")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        check_month(args.month, "--month")
        _, not_yet = rules_for_month(settings, args.month, args.scheme,
                                     args.rescore_with_current_rules)
    except (ConfigError, MonthError, RuleFileError) as exc:   # a setting, a month, a scheme,
        print(f"NOT STARTED: {exc}", file=sys.stderr)          # or a published month's rules
        return 2                                               # changed
    for name, first in not_yet.items():
        print(f"{name} {args.month}: {not_in_force_reason(args.month, first)}")
    run_id = args.run_id or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    # gold is written under the warehouse lock (shared), like the month's score step: no
    # erasure or cleanup removes files this job has yet to commit
    try:
        with warehouse_lock(settings.warehouse, f"jobs/score.py {args.month}", SHARED,
                            args.lock_wait):
            # every scheme from one scan and one shuffle of the month's findings
            scored = score(args.month, run_id, settings, args.scheme,
                           rescore_with_current_rules=args.rescore_with_current_rules)
    except WarehouseBusy as exc:
        print(f"NOT STARTED: {exc}", file=sys.stderr)
        return 75
    except PointsOutOfRange as exc:      # points beyond their types: nothing to publish
        print(f"STOPPED: {exc}", file=sys.stderr)
        return 1
    for result in scored:
        print(f"{result['scheme']} {result['month']}: {result['subjects']} subjects, "
              f"{result['lines']} explanation lines, {result['seconds']:.1f}s (run {run_id})")
    if args.result:
        write_result(args.result, scored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
