"""Policy tools (SPEC §6, issue "Policy tools"): simulate a draft rule file against the adopted
scheme before adoption, and evaluate a scheme for validity, discrimination, stability and
fairness. Built on citycredit.scoring itself — one semantics, never a second scorer.

* measures: AUC / Gini / KS (scikit-learn), PSI on fixed grades, bad rates and monotonicity,
  migration matrices and threshold crossings, fairness ratios (the four-fifths rule) — pure,
  on small frequency tables;
* simulate, evaluate: pure DataFrame steps from scores, explanation lines, silver outcomes and
  population attributes to those frequency tables and the summaries;
* job: the edges — several schemes scored from one scan and one shuffle of the findings
  (ScoredTogether), gold and silver reads, the sandbox tables (catalog layer `sandbox`);
* report: the HTML reports (matplotlib plots as base64 PNGs, a CJK font when installed);
* task: `simulate`, `evaluate`, `monthly_evaluation` — what the CLI, jobs/simulate.py,
  jobs/evaluate.py and dags/citycredit_evaluate.py call.
"""
