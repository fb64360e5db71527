"""spark-submit entry point: python jobs/evaluate.py --scheme haibei --month 2025-10
[--draft rules/drafts/….yaml] [--json out.json]

Argument parsing and a call into the library (citycredit.policy.task.evaluate), nothing else.
"""
import argparse
import sys

from citycredit.policy.task import evaluate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a scheme's grades at a month.")
    parser.add_argument("--scheme", required=True)
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--draft", default=None, help="a draft of the scheme, side by side")
    parser.add_argument("--json", default=None, help="write the JSON here")
    parser.add_argument("--report", default=None, help="the HTML report's path")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    result = evaluate(args.scheme, args.month, draft=args.draft, run_id=args.run_id,
                      json_path=args.json, report_path=args.report,
                      progress=lambda stage, detail="": print(f"{stage} {detail}", flush=True))
    print(f"{args.scheme} {args.month}: AUC {result['auc']}, KS {result['ks']}, "
          f"PSI {result['psi']}, report {result['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
