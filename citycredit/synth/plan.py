"""One run of the synthetic city: its months, scale, seed and item codes, and its random streams.

Two month counters appear throughout the package: a `month_index` counts calendar months since
1970-01 (citycredit.months.month_index), a `run_month` counts the run's months from 0 (the first
delivery month) to month_count - 1.
"""
from __future__ import annotations

import zlib

import numpy as np

from citycredit.months import month_index, month_index_of_days, month_start_days

from .catalogue import ITEMS, UNKNOWN_ITEMS
from .volumes import REFERENCE_ADULTS


def rng_for(seed: int, tag: str, month_index: int) -> np.random.Generator:
    """The random stream of (seed, tag, calendar month): each source and each month draws from
    its own stream, so a city is reproducible piece by piece."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tag.encode()),
                                                         month_index]))


def first_day(month_index: int) -> int:
    """Day number (days since 1970-01-01) of the first day of a calendar month."""
    return int(month_start_days(month_index))


def last_day(month_index: int) -> int:
    """Day number of the last day of a calendar month."""
    return int(month_start_days(month_index + 1)) - 1


class CityPlan:
    """The fixed parameters of a run of `month_count` months ending with `end` (YYYY-MM).

    item_codes: the catalogue ITEMS, then items that only conf/sources.yaml names (sorted), then
    the UNKNOWN_ITEMS of the bad rows; item_index maps a code to its position (the `item` field of
    a batch). scale: adults / REFERENCE_ADULTS, the factor of every reference volume per month.
    intensity: weight kind (propensity.weight_kind: 'risk' for negative items, 'civic' for
    positive ones) → a factor on the volume of those streams, and 'appeals' → a factor on the
    share of negative findings appealed (default 1: the reference city's volumes); the demo city
    uses it to have a record worth auditing with few adults.
    """

    def __init__(self, adults: int, month_count: int, end: str, seed: int, bad_share: float,
                 configured_items, intensity: dict[str, float] | None = None):
        self.adults = int(adults)
        self.month_count = int(month_count)
        self.last_month_index = month_index(end)
        self.first_month_index = self.last_month_index - self.month_count + 1
        self.seed = int(seed)
        self.bad_share = float(bad_share)
        self.scale = self.adults / REFERENCE_ADULTS
        self.intensity = dict(intensity or {})
        unknown = set(self.intensity) - {"risk", "civic", "appeals"}
        if unknown or any(not factor > 0 for factor in self.intensity.values()):
            raise ValueError(f"intensity: factors > 0 for 'risk', 'civic' and 'appeals' only, "
                             f"got {intensity}")
        extra = sorted({item for item in configured_items if item not in ITEMS})
        self.item_codes = ITEMS + extra + UNKNOWN_ITEMS
        self.item_index = {code: i for i, code in enumerate(self.item_codes)}
        self.unknown_item_indexes = np.arange(len(self.item_codes) - len(UNKNOWN_ITEMS),
                                              len(self.item_codes))

    def month_index(self, run_month: int) -> int:
        return self.first_month_index + run_month

    def run_months_of_days(self, days) -> np.ndarray:
        """Run month of each day number (negative before the run)."""
        return month_index_of_days(days) - self.first_month_index
