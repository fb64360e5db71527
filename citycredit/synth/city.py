"""The month loop of the synthetic city and `generate_city`, the entry point of
`citycredit generate`."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from citycredit.config import configured_sources, load_grantees
from citycredit.months import check_month, month_of_index

from .appeals import Appeals, OptOuts
from .batches import ROW_NEW, batch_size, concat_batches, new_batch, take_rows
from .columns import finding_table
from .consents import Consents
from .corrections import remember, resends
from .faults import FAULT_CODE, FaultPlanner, GroundTruth, bad_rows, delivery_order
from .findings import NewFindings, ProvincialScores
from .history import EarlierCommitments
from .overlaps import Overlaps
from .plan import CityPlan, rng_for
from .population import Population
from .propensity import Propensities
from .sources import Source
from .volumes import ROLE_PROVINCIAL_SCORE, plan_streams
from .writers import DeliveryWriter


class City:
    """A city being generated: its population, sources and what later months owe."""

    def __init__(self, landing: Path, plan: CityPlan, sources: list):
        self.plan = plan
        self.sources = sources
        self.findings_sources = [s for s in sources if s.kind == "findings"]
        self.population = Population(rng_for(plan.seed, "population-base",
                                             plan.first_month_index),
                                     plan.adults, plan.first_month_index, plan.month_count)
        # who receives findings: fixed per person for the run (propensity.py)
        self.propensities = Propensities(rng_for(plan.seed, "propensities",
                                                 plan.first_month_index), self.population.size)
        self.new_findings = NewFindings(plan, self.population, self.propensities)
        self.overlaps = Overlaps(plan, self.findings_sources, self.new_findings.case_numbers,
                                 self.propensities)
        self.earlier = EarlierCommitments(plan, self.population, self.new_findings.case_numbers,
                                          self.overlaps.repairs)
        self.scores = (ProvincialScores(plan, self.population)
                       if any(ROLE_PROVINCIAL_SCORE in s.roles for s in self.findings_sources)
                       else None)
        self.appeals = Appeals(plan)
        self.optouts = OptOuts(plan, self.population)
        self.consents = (Consents(plan, self.population, load_grantees())
                         if any(s.kind == "consents" for s in sources) else None)
        self.fault_planner = FaultPlanner(plan.bad_share)
        self.truth = GroundTruth()
        self.writer = DeliveryWriter(landing)

    def generate_month(self, run_month: int) -> None:
        """Write every source's delivery of the run month."""
        plan = self.plan
        month_index = plan.month_index(run_month)
        active = self.population.active(run_month)
        rngs = {s.source_id: rng_for(plan.seed, s.source_id, month_index) for s in self.sources}
        new = {}
        for source in self.findings_sources:
            rng = rngs[source.source_id]
            new[source.source_id] = self.new_findings.draw(source, rng, run_month, active)
            self.overlaps.schedule_follow_ups(source, rng, run_month, new[source.source_id])
            self.earlier.breaches(source, run_month, active)
        clean = {s.source_id: self._clean_rows(s, rngs[s.source_id], run_month,
                                               new[s.source_id], active)
                 for s in self.findings_sources}
        reasons = self.fault_planner.choose(self.findings_sources, clean, rngs)
        for source in self.findings_sources:
            self._deliver_findings(source, rngs[source.source_id], month_index,
                                   clean[source.source_id], reasons[source.source_id])
        for source in self.sources:
            rng = rngs[source.source_id]
            if source.kind == "appeals":
                self._deliver(source, rng, month_index, self.appeals.delivery(source, run_month))
            elif source.kind == "optouts":
                self._deliver(source, rng, month_index,
                              self.optouts.delivery(source, rng, run_month, active))
            elif source.kind == "population":
                self._deliver(source, rng, month_index, self.population.snapshot(run_month))
            elif source.kind == "consents":
                self._deliver(source, rng, month_index,
                              self.consents.delivery(source, rng, run_month, active))
        if any(s.kind == "appeals" for s in self.sources):
            self.appeals.file(rng_for(plan.seed, "appeals-filing", month_index), run_month,
                              self.findings_sources, clean)

    def _clean_rows(self, source, rng, run_month: int, new: dict, active) -> dict:
        """The source's correct rows of the run month: new findings (drawn now or queued
        follow-ups and copies), queued corrections, random corrections and revocations, and
        provincial scores."""
        queued = concat_batches(source.queue.pop(run_month, []))
        fresh = concat_batches([new, take_rows(queued, queued["row_kind"] == ROW_NEW)])
        resent = resends(self.plan, source, rng, run_month, batch_size(fresh))
        scores = (self.scores.draw(rng, run_month, active)
                  if ROLE_PROVINCIAL_SCORE in source.roles else new_batch(0))
        remember(source, run_month, fresh)
        return concat_batches([fresh, take_rows(queued, queued["row_kind"] != ROW_NEW), resent,
                               scores])

    def _deliver_findings(self, source, rng, month_index: int, clean: dict, reasons: list):
        """Write the clean rows plus a bad row per reason, shuffled, and record the truth."""
        bad, originals = bad_rows(self.plan, self.population, source, rng, month_index, clean,
                                  reasons)
        order = delivery_order(rng, batch_size(clean), bad, originals)
        rows = take_rows(concat_batches([clean, bad]), order)
        table = finding_table(self.plan, self.population, source, rows, month_index)
        gb18030_rows = rows["fault"] == FAULT_CODE["encoding"]
        forbidden = np.where(rows["fault"] == FAULT_CODE["forbidden_field"],
                             rows["fault_variant"], -1)
        written = self.writer.write(source, month_index, table, rng, source.files_per_delivery,
                                    gb18030_rows=gb18030_rows if gb18030_rows.any() else None,
                                    forbidden_fields=forbidden if (forbidden >= 0).any()
                                    else None)
        self.truth.record_findings(source.source_id, month_of_index(month_index), written, rows)

    def _deliver(self, source, rng, month_index: int, table) -> None:
        written = self.writer.write(source, month_index, table, rng)
        self.truth.record_plain(source.source_id, month_of_index(month_index), written,
                                table.num_rows)

    def summary(self, landing: Path, wall_seconds: float) -> dict:
        plan, writer = self.plan, self.writer
        total_rows = sum(sum(v.values()) for v in writer.rows.values())
        total_bytes = sum(sum(v.values()) for v in writer.bytes.values())
        wall = round(wall_seconds, 3)
        return {
            "landing": str(landing), "adults": plan.adults, "months": plan.month_count,
            "first_month": month_of_index(plan.first_month_index),
            "end": month_of_index(plan.last_month_index),
            "seed": plan.seed, "bad_share": plan.bad_share, "persons": int(self.population.size),
            "rows": writer.rows, "bytes": writer.bytes,
            "rows_by_source": {s: sum(v.values()) for s, v in writer.rows.items()},
            "bytes_by_source": {s: sum(v.values()) for s, v in writer.bytes.items()},
            "total_rows": total_rows, "total_bytes": total_bytes,
            "bad_rows": self.truth.bad_rows_by_reason(),
            "bad_rows_by_source": self.truth.bad_rows_by_source(),
            "wall_seconds": wall,
            # aliases read by citycredit/cli.py
            "rows_total": total_rows, "bytes_total": total_bytes, "seconds": wall,
        }


def generate_city(landing: Path, adults: int, months: int, end: str, seed: int = 0,
                  bad_share: float = 0.002, sources: dict | None = None,
                  intensity: dict[str, float] | None = None) -> dict:
    """Write a synthetic city's landing zone for the `months` months ending with `end` (YYYY-MM).

    sources: source_id → conf entry (kind, format, encoding, date_format, items); default
    citycredit.config.configured_sources(), the sources.yaml of the conf folder in force.
    intensity: {'risk': f, 'civic': g, 'appeals': h} multiplies the volumes of negative (f) and
    positive (g) findings and the share of negative findings appealed (h) (plan.CityPlan);
    default the reference city's.
    Returns a summary: rows and bytes per source and month ("rows", "bytes": source → YYYY-MM
    → count) and per source, totals, bad rows by reason and by source, persons, and the wall
    time in seconds. Output is byte-identical for the same arguments.

    Raises ValueError for non-positive adults or months, a bad_share outside [0, 0.5) or an
    `end` that is not a month; citycredit.config.ConfigError for a bad sources.yaml.
    """
    if adults < 1 or months < 1:
        raise ValueError("adults and months must be positive")
    if not 0 <= bad_share < 0.5:
        raise ValueError("bad_share must be in [0, 0.5)")
    check_month(end, "end")
    if sources is None:
        sources = configured_sources()
    started = time.perf_counter()
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    configured = [Source(source_id, settings) for source_id, settings in sources.items()]
    for source in configured:
        if source.kind == "findings":
            plan_streams(source)
    plan = CityPlan(adults, months, end, seed, bad_share,
                    [item for s in configured if s.kind == "findings" for item in s.items],
                    intensity)
    city = City(landing, plan, configured)
    for run_month in range(plan.month_count):
        city.generate_month(run_month)
    city.truth.write(landing)
    return city.summary(landing, time.perf_counter() - started)
