"""spark-submit of the month's scoring job (jobs/score.py) on a cluster: what the DAG's score step
submits when conf names one (`spark.submit.conn_id`, citycredit.airflow_submit; docs/cluster.md),
and what `make cluster-test` submits to its standalone master. The one home of that command's
parts; the delta-spark jars and settings are io/spark.py's (`delta_conf`), the embedded session's.

The job's driver writes the step's result — the `Scored` list of scoring.task.score, what the
publish step takes — as JSON to `result_path(...)`, under the warehouse (which the driver and the
Airflow worker both see, whatever the deploy mode); counts and grades only, no personal data.
"""
from __future__ import annotations

import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import AUTO, PROJECT_ROOT, Settings
from .io.spark import delta_conf, driver_memory_for, this_machine, wants_delta

#: the scoring job spark-submit runs (argument parsing and a call into citycredit)
SCORE_JOB = PROJECT_ROOT / "jobs" / "score.py"
#: under the warehouse: the results the job hands back to the task that submitted it
RESULTS_FOLDER = "_jobs"


@dataclass(frozen=True)
class Submission:
    """What `spark-submit` is given, beyond the master: the application and its arguments,
    `--py-files`, `--jars`, `--conf key=value` and `--driver-memory`."""

    application: str
    application_args: list[str]
    py_files: str
    jars: str | None
    conf: dict[str, str] = field(default_factory=dict)
    driver_memory: str | None = None

    def arguments(self, master: str) -> list[str]:
        """spark-submit's arguments (after the binary) for `master`, as the Airflow provider's
        hook orders them."""
        args = ["--master", master]
        for key, value in self.conf.items():
            args += ["--conf", f"{key}={value}"]
        args += ["--py-files", self.py_files]
        if self.jars:
            args += ["--jars", self.jars]
        if self.driver_memory:
            args += ["--driver-memory", self.driver_memory]
        return [*args, self.application, *self.application_args]


def package_zip(folder: Path | str) -> Path:
    """citycredit's modules as one zip in `folder` (`--py-files`): what the executors' Python
    workers import, whatever is installed on their machines."""
    source = Path(__file__).resolve().parent
    target = Path(folder) / "citycredit.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(source.rglob("*.py")):
            z.write(path, path.relative_to(source.parent))
    return target


def result_path(settings: Settings, month: str, run_id: str) -> Path:
    """Where jobs/score.py --result writes a run's score-step result."""
    return Path(settings.warehouse) / RESULTS_FOLDER / f"score-{month}-{run_id}.json"


def write_result(path: Path | str, result) -> None:
    """The job's result as JSON, whole or not at all (written beside, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def read_result(path: Path | str):
    """The result the job wrote (and the file removed): FileNotFoundError when it wrote none."""
    path = Path(path)
    result = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    return result


def score_submission(settings: Settings, month: str, run_id: str, py_files: Path | str,
                     result: Path | str | None = None, rescore_with_current_rules: bool = False,
                     lock_wait_seconds: float = 0.0) -> Submission:
    """spark-submit of jobs/score.py for `month`: the jars and settings of delta-spark as the
    embedded session has them (none under spark.delta: off; DeltaJarsMissingError under 'on'
    without them), conf's `spark.conf`, the driver's and executors' Python (this interpreter,
    unless spark.conf names `spark.pyspark.python` / `spark.pyspark.driver.python`) and the
    driver's heap (`spark.driver_memory`, sized from this machine when 'auto')."""
    jars = wants_delta(settings)
    conf = delta_conf(jars) if jars else {}
    jar_list = conf.pop("spark.jars", None)
    conf.update({"spark.pyspark.python": sys.executable,
                 "spark.pyspark.driver.python": sys.executable})
    conf.update({key: str(value) for key, value in settings.spark_conf.items()})
    memory = settings.spark_driver_memory
    if memory == AUTO:
        machine = this_machine()
        memory = driver_memory_for(machine.cores, machine)
    args = ["--month", month, "--run-id", run_id]
    if result is not None:
        args += ["--result", str(result)]
    if lock_wait_seconds:
        args += ["--lock-wait", f"{lock_wait_seconds:g}"]
    if rescore_with_current_rules:
        args.append("--rescore-with-current-rules")
    return Submission(application=str(SCORE_JOB), application_args=args,
                      py_files=str(py_files), jars=jar_list, conf=conf, driver_memory=memory)
