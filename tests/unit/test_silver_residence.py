"""months_resident kept by the silver step (silver.residence, issue 20): after any sequence of
population deliveries — in order, re-delivered, back-filled, with persons leaving, coming back
and turning inactive — silver/residence as of the latest snapshot gives every person the count
of active snapshots up to it (SPEC §4.1), as counting every snapshot would. Real Delta tables
(delta-rs), no Spark; the scoring job's reading of it: tests/integration/test_scoring_job.py."""
from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest

from citycredit import catalog
from citycredit.io import tables
from citycredit.silver import residence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from population_deliveries import counted, deliver  # noqa: E402

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]


def kept(settings) -> dict[str, int]:
    """silver/residence → {subject_key: months_resident} (and it is as of the latest snapshot)."""
    state = tables.read_arrow(catalog.SILVER_RESIDENCE.at(settings))
    latest = max(p["snapshot_month"] for p in
                 tables.partitions(catalog.SILVER_POPULATION.at(settings)))
    assert set(state["as_of"].to_pylist()) <= {latest} and residence.state_month(settings) == latest
    counted = residence.months_resident_of(state)
    return dict(zip(counted["subject_key"].to_pylist(), counted["months_resident"].to_pylist()))


@pytest.fixture
def world(tmp_path, settings):
    return dataclasses.replace(settings, warehouse=tmp_path)


def test_months_in_order_advance_the_state_and_a_person_who_left_and_came_back_keeps_the_count(
        world):
    standing = {
        "2026-01": {"a": "active", "b": "active", "c": "active"},
        "2026-02": {"a": "active", "c": "moved_out"},        # b is not in the snapshot at all
        "2026-03": {"a": "active", "b": "active", "c": "active", "d": "active"},
    }
    for month, statuses in standing.items():
        assert deliver(world, month, statuses)["residence"] == "advanced"
    assert kept(world) == {"a": 3, "b": 2, "c": 2, "d": 1} == counted(standing)


def test_a_redelivered_latest_month_counts_it_again_without_the_month_before(world):
    deliver(world, "2026-01", {"a": "active", "b": "active"})
    deliver(world, "2026-02", {"a": "active", "b": "active"})
    # February again, b now deceased: a state already as of February is taken back one month
    assert deliver(world, "2026-02", {"a": "active", "b": "deceased"})["residence"] == "advanced"
    assert kept(world) == {"a": 2, "b": 1}


def test_an_earlier_month_redelivered_unchanged_leaves_the_state_and_a_change_recounts_it(world):
    standing = {"2026-01": {"a": "active", "b": "active"},
                "2026-02": {"a": "active", "b": "active"},
                "2026-03": {"a": "active"}}
    for month, statuses in standing.items():
        deliver(world, month, statuses)
    version = tables.version(catalog.SILVER_RESIDENCE.at(world))
    assert deliver(world, "2026-01", standing["2026-01"])["residence"] == "unchanged"
    assert tables.version(catalog.SILVER_RESIDENCE.at(world)) == version
    standing["2026-01"] = {"a": "active", "b": "moved_out", "c": "active"}
    assert deliver(world, "2026-01", standing["2026-01"])["residence"] == "recounted"
    assert kept(world) == {"a": 3, "b": 1, "c": 1} == counted(standing)


def test_a_backfilled_earlier_month_and_a_warehouse_kept_before_the_state_are_recounted(world):
    deliver(world, "2026-03", {"a": "active"})
    assert deliver(world, "2026-02", {"a": "active", "b": "active"})["residence"] == "recounted"
    assert kept(world) == {"a": 2, "b": 1}
    # a warehouse from before silver/residence: its first month counts every snapshot once
    tables.delete_where(catalog.SILVER_RESIDENCE.at(world), "true")
    assert residence.state_month(world) is None
    assert deliver(world, "2026-04", {"a": "active", "b": "active"})["residence"] == "recounted"
    assert kept(world) == {"a": 3, "b": 2}


def test_any_order_of_deliveries_keeps_the_count_of_every_snapshot(world):
    rng = random.Random(20)
    persons = [f"p{i}" for i in range(12)]
    standing: dict[str, dict[str, str]] = {}
    for _ in range(14):
        month = rng.choice(MONTHS)
        statuses = {p: rng.choice(["active", "active", "moved_out", "deceased"])
                    for p in persons if rng.random() < 0.8}
        standing[month] = statuses
        deliver(world, month, statuses)
        assert kept(world) == counted(standing), f"after {month}"
