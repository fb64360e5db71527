"""spark-submit entry point: python jobs/simulate.py --scheme haibei
--draft rules/drafts/haibei-blood-15.yaml --month 2026-10 [--json out.json]

Argument parsing and a call into the library (citycredit.policy.task.simulate), nothing else:
the same code runs embedded and on a cluster (CITYCREDIT_SPARK_MASTER). Writes the sandbox only.
"""
import argparse
import sys

from citycredit.policy.task import simulate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Simulate a draft scheme against the adopted one.")
    parser.add_argument("--scheme", required=True)
    parser.add_argument("--draft", required=True, help="rules/drafts/<scheme>-….yaml")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--json", default=None, help="write the JSON summary here")
    parser.add_argument("--report", default=None, help="the HTML report's path")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    summary = simulate(args.scheme, args.draft, args.month, run_id=args.run_id,
                       json_path=args.json, report_path=args.report,
                       progress=lambda stage, detail="": print(f"{stage} {detail}", flush=True))
    print(f"{summary['scheme']} → {summary['draft']} {summary['month']}: {summary['subjects']} "
          f"subjects, {summary['moved']} change grade, {summary['seconds']}s; "
          f"report {summary['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
