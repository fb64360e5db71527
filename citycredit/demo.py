"""The demo city (`citycredit demo`, `make demo`): a small synthetic city with three years of
history, so that the demo month's distribution is worth auditing in the notebooks.

DEMO_MONTHS months are generated; all but the last DEMO_RUN_MONTHS are bulk-loaded into bronze
and silver (citycredit/synth/bulk_history.py: seconds, not one pipeline run per month), and the
last ones run through the real pipeline (`pipeline.run_month`: landing, GX validation and
quarantine, silver versions with corrections and revocations, erasure, scoring of every scheme
with explanation lines, publication checks, the run report).

The city is busier than the reference city (DEMO_INTENSITY: negative findings ×8, positive ×30
per adult, 15× the share of negative findings appealed, so that the demo months carry appeals)
so that DEMO_ADULTS adults fill every grade of 海贝分 and 达子香分 and no grade holds
more than 90 % of them (tests/e2e/test_notebooks.py checks it on the demo month); at the reference
volumes a 5,000-adult city has ~96 % of adults at the base score.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from . import pipeline
from .config import Settings, load_settings
from .months import months_between, shift_month

DEMO_ADULTS = 5000
DEMO_SEED = 1
DEMO_MONTHS = 36
DEMO_RUN_MONTHS = 2
DEMO_END = "2026-10"
DEMO_INTENSITY = {"risk": 8.0, "civic": 30.0, "appeals": 15.0}


def demo_settings(folder: Path) -> Settings:
    """The settings of a demo folder: `<folder>/landing` and `<folder>/warehouse`."""
    folder = Path(folder).resolve()
    return load_settings(environ={**os.environ, "CITYCREDIT_LANDING": str(folder / "landing"),
                                  "CITYCREDIT_WAREHOUSE": str(folder / "warehouse")})


def build_demo(folder: Path, adults: int = DEMO_ADULTS, end: str = DEMO_END,
               seed: int = DEMO_SEED, months: int = DEMO_MONTHS,
               run_months: int = DEMO_RUN_MONTHS, say=print) -> dict:
    """Generate the demo city into `<folder>/landing` (replacing what was there, and the
    warehouse), bulk-load its first `months - run_months` months and run the last `run_months`
    with the real pipeline. Returns {"settings", "generated" (generate_city's summary),
    "history" (bulk-load counts), "outcome" (the last run_month result), "months" (the months
    run), "seconds" per phase}.

    Raises whatever the pipeline raises (a refused month stops the demo)."""
    from .synth import generate_city
    from .synth.bulk_history import load_history

    if not 1 <= run_months < months:
        raise ValueError("run_months must be at least 1 and fewer than months")
    settings = demo_settings(folder)
    shutil.rmtree(settings.landing, ignore_errors=True)
    shutil.rmtree(settings.warehouse, ignore_errors=True)
    seconds = {}
    started = time.perf_counter()
    generated = generate_city(settings.landing, adults=adults, months=months, end=end, seed=seed,
                              intensity=DEMO_INTENSITY)
    seconds["generate"] = round(time.perf_counter() - started, 1)
    say(f"generated {generated['rows_total']} rows of deliveries for {adults} adults, "
        f"{months} months → {settings.landing}")
    every_month = months_between(shift_month(end, 1 - months), end)
    bulk, run = every_month[:-run_months], every_month[-run_months:]
    started = time.perf_counter()
    say(f"bulk-loading {bulk[0]} … {bulk[-1]} into bronze and silver …")
    history = load_history(settings, bulk, say=lambda line: None)
    seconds["bulk history"] = round(time.perf_counter() - started, 1)
    outcome = None
    for month in run:
        started = time.perf_counter()
        say(f"running {month} …")
        outcome = pipeline.run_month(month, settings=settings,
                                     progress=lambda stage, detail="": say(f"  {stage} {detail}"))
        seconds[f"run {month}"] = round(time.perf_counter() - started, 1)
    return {"settings": settings, "generated": generated, "history": history,
            "outcome": outcome, "months": run, "seconds": seconds}
