"""The people of the city: who lives there in each month, their identity numbers, names, districts
and exits, and the population snapshots the 户政 department delivers.

Adults follow an age pyramid (AGE_BANDS); MINOR_SHARE of the first snapshot are residents aged
15-17 (so new 18-year-olds appear), a one-month cohort of 15-year-olds enters each later month,
with MOVE_IN_RATE move-ins a year. Exits (age-dependent deaths → `deceased`, moves → `moved_out`)
are geometric in months from entry; exited persons stay in later snapshots with that status.
Identity numbers carry real birth dates, a region code valid in the birth year (Weihai's own codes
across the 1983/1987/1989/1993/2014 re-codings, or a migrant's home region) and a correct MOD 11-2
check character.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citycredit.identity import make_id_bytes
from citycredit.months import add_months_days, month_start_days, year_of_days

from .arrow_strings import fixed_width_strings, lookup_strings
from .plan import last_day

POPULATION_COLUMNS = ["id_number", "district", "residency", "status"]

WEIHAI_DISTRICTS = [371002, 371003, 371082, 371083]     # 环翠区 文登区 荣成市 乳山市
DISTRICT_WEIGHTS = np.array([0.36, 0.21, 0.26, 0.17])
# Region code of a person born in (today's) district, by birth year: (first, last, code).
# Weihai was part of 烟台地区 until 1983, a county-level city of 烟台市 until 1987.
WEIHAI_ERAS = {
    371002: [(0, 1982, 372102), (1983, 1986, 370620), (1987, 9999, 371002)],
    371003: [(0, 1982, 372132), (1983, 1986, 370632), (1987, 1988, 371022),
             (1989, 2013, 371081), (2014, 9999, 371003)],
    371082: [(0, 1982, 372133), (1983, 1986, 370633), (1987, 1988, 371023),
             (1989, 9999, 371082)],
    371083: [(0, 1982, 372130), (1983, 1986, 370630), (1987, 1992, 371021),
             (1993, 9999, 371083)],
}
BORN_IN_OWN_DISTRICT_SHARE = 0.85     # of local people; the others were born elsewhere in Weihai
# Home regions of migrants: codes valid in every birth year.
MIGRANT_CODES = np.array([370100, 370200, 370300, 370400, 410100, 410200, 410300, 220100,
                          230100, 210100, 210200, 110105, 110108, 310104, 320100, 130100,
                          140100, 340100, 120101])
MIGRANT_WEIGHTS = np.array([8, 8, 5, 5, 3, 2, 2, 3, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1], float)
# (from age, to age, weight) of the initial adults
AGE_BANDS = [(18, 25, 8.0), (25, 30, 7.0), (30, 35, 9.0), (35, 40, 9.0), (40, 45, 8.0),
             (45, 50, 10.0), (50, 55, 11.0), (55, 60, 10.0), (60, 65, 9.0), (65, 70, 8.0),
             (70, 75, 6.0), (75, 80, 3.5), (80, 85, 1.5), (85, 90, 0.7), (90, 100, 0.3)]
DAYS_PER_YEAR = 365.2425
ADULT_AGE_MONTHS = 18 * 12
COHORT_AGE_MONTHS = 15 * 12     # the age at which residents enter the snapshots
MINOR_SHARE = 0.03              # of the first snapshot: residents aged 15-17
LOCAL_SHARE_ADULTS = 0.80       # the others are migrants
LOCAL_SHARE_MINORS = 0.95
MOVE_IN_AGES = (20, 55)
MOVE_IN_RATE = 0.005            # per year, of adults
MOVE_OUT_RATE_LOCAL = 0.002     # per year
MOVE_OUT_RATE_MIGRANT = 0.012
PERMIT_SHARE_LOCAL = 0.02       # residency "permit" rather than "hukou"
PERMIT_SHARE_MIGRANT = 0.65
STATUS_CODES = ["active", "deceased", "moved_out"]
ACTIVE, DECEASED, MOVED_OUT = 0, 1, 2
RESIDENCY = ["hukou", "permit"]
NEVER = 32_000                  # exit run month of persons who stay to the end
SECOND_GIVEN_CHAR_SHARE = 0.7

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
                "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
                "贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国玉兰红梅海波鹏宇浩然子涵雨欣佳琪"
             "晨阳文博俊峰志明晓东丹婷雪晶颖慧慧琳琳倩倩思远嘉怡若曦天佑一鸣昊宁凯旭红霞春燕秋菊冬梅"
             "德福永胜立新卫东建军振华")

# Behaviour pools: the share of persons who may receive findings of a kind (volumes.pool_for);
# the pool "all" is everybody.
PERSON_POOLS = {"volunteer": 0.10, "donor": 0.08, "blood": 0.06, "debtor": 0.04,
                "offender": 0.25, "signer": 0.35}


class Population:
    """Every person who appears in any snapshot of the run, ordered by entry month.

    Per person (arrays of length `size`): id_bytes ((size, 18) uint8 ASCII) and ids (strings),
    names, surname (index into SURNAMES), birth_day and adult_day (day numbers, the 18th
    birthday), entry_run_month and exit_run_month (NEVER = stays), exit_status (DECEASED or
    MOVED_OUT, meaningful once exited), district (index into WEIHAI_DISTRICTS), residency (index
    into RESIDENCY). count_by_run_month: snapshot sizes (a snapshot is a prefix of the arrays).
    pools: pool name → person indexes.
    """

    def __init__(self, rng: np.random.Generator, adults: int, first_month_index: int,
                 month_count: int):
        birth, entry, local = _arrivals(rng, adults, first_month_index, month_count)
        self.size = len(birth)
        self.district, region, self.residency = _districts_and_regions(rng, birth, local)
        sequence = _sequence_codes(rng, region, birth)
        self.id_bytes = np.ascontiguousarray(
            make_id_bytes(region, birth.astype("datetime64[D]"), sequence))
        self.ids = fixed_width_strings(self.id_bytes)
        self.birth_day = birth.astype(np.int32)
        self.adult_day = add_months_days(birth, ADULT_AGE_MONTHS).astype(np.int32)
        self.entry_run_month = entry
        self.exit_run_month, self.exit_status = _exits(rng, birth, entry, local,
                                                       first_month_index, month_count)
        # entry is non-decreasing: the snapshot of a run month is a prefix of the arrays
        self.count_by_run_month = np.searchsorted(entry, np.arange(month_count), side="right")
        self.surname, self.names = _names(rng, self.size)
        self.pools = {"all": np.arange(self.size, dtype=np.int64)}
        for name, share in PERSON_POOLS.items():
            self.pools[name] = np.flatnonzero(rng.random(self.size) < share)

    def active(self, run_month: int) -> np.ndarray:
        """Boolean per person: in the city (entered, not exited) in the run month."""
        return (self.entry_run_month <= run_month) & (self.exit_run_month > run_month)

    def snapshot(self, run_month: int) -> pa.Table:
        """The population delivery of the run month (POPULATION_COLUMNS)."""
        n = int(self.count_by_run_month[run_month])
        status = np.where(self.exit_run_month[:n] <= run_month, self.exit_status[:n], ACTIVE)
        return pa.table([self.ids.slice(0, n),
                         lookup_strings([str(code) for code in WEIHAI_DISTRICTS],
                                        self.district[:n]),
                         lookup_strings(RESIDENCY, self.residency[:n]),
                         lookup_strings(STATUS_CODES, status)], names=POPULATION_COLUMNS)


def _arrivals(rng, adults: int, first_month_index: int, month_count: int):
    """(birth day, entry run month, local?) per person: the first snapshot (adults and minors,
    shuffled so that a person's index says nothing of age), then each later month's cohort of
    15-year-olds and adult move-ins."""
    first_month_end = last_day(first_month_index)
    minors = int(round(adults * MINOR_SHARE / (1 - MINOR_SHARE)))
    groups = []

    bands = np.array([(low, high) for low, high, _ in AGE_BANDS], dtype=float)
    weights = np.array([weight for _, _, weight in AGE_BANDS])
    band = rng.choice(len(weights), size=adults, p=weights / weights.sum())
    age = bands[band, 0] + rng.random(adults) * (bands[band, 1] - bands[band, 0])
    birth = first_month_end - np.floor(age * DAYS_PER_YEAR).astype(np.int64)
    last_adult_birth = int(add_months_days(first_month_end, -ADULT_AGE_MONTHS))
    birth = np.minimum(birth, last_adult_birth)
    groups.append((birth, np.zeros(adults, np.int64), rng.random(adults) < LOCAL_SHARE_ADULTS))

    last_minor_birth = int(add_months_days(first_month_end, -COHORT_AGE_MONTHS))
    birth = rng.integers(last_adult_birth + 1, last_minor_birth + 1, minors)
    groups.append((birth, np.zeros(minors, np.int64), rng.random(minors) < LOCAL_SHARE_MINORS))

    cohort_per_month = minors / 36.0        # the minors span three birth years
    for run_month in range(1, month_count):
        previous_end = last_day(first_month_index + run_month - 1)
        month_end = last_day(first_month_index + run_month)
        low = int(add_months_days(previous_end, -COHORT_AGE_MONTHS)) + 1
        high = int(add_months_days(month_end, -COHORT_AGE_MONTHS))
        k = rng.poisson(cohort_per_month)
        if k and high >= low:
            groups.append((rng.integers(low, high + 1, k), np.full(k, run_month, np.int64),
                           rng.random(k) < LOCAL_SHARE_MINORS))
        k = rng.poisson(adults * MOVE_IN_RATE / 12.0)
        if k:
            age = MOVE_IN_AGES[0] + rng.random(k) * (MOVE_IN_AGES[1] - MOVE_IN_AGES[0])
            groups.append((month_end - np.floor(age * DAYS_PER_YEAR).astype(np.int64),
                           np.full(k, run_month, np.int64), np.zeros(k, bool)))

    birth = np.concatenate([g[0] for g in groups]).astype(np.int64)
    entry = np.concatenate([g[1] for g in groups]).astype(np.int16)
    local = np.concatenate([g[2] for g in groups])
    first_snapshot = adults + minors
    shuffle = rng.permutation(first_snapshot)
    birth[:first_snapshot] = birth[:first_snapshot][shuffle]
    local[:first_snapshot] = local[:first_snapshot][shuffle]
    return birth, entry, local


def _districts_and_regions(rng, birth: np.ndarray, local: np.ndarray):
    """(district, region code of the identity number, residency) per person."""
    size = len(birth)
    district = rng.choice(len(WEIHAI_DISTRICTS), size=size, p=DISTRICT_WEIGHTS).astype(np.int8)
    birth_district = np.where(rng.random(size) < BORN_IN_OWN_DISTRICT_SHARE, district,
                              rng.integers(0, len(WEIHAI_DISTRICTS), size)).astype(np.int64)
    birth_year = year_of_days(birth)
    region = np.zeros(size, np.int64)
    for district_index, code in enumerate(WEIHAI_DISTRICTS):
        for first, last, era_code in WEIHAI_ERAS[code]:
            region[(birth_district == district_index) & (birth_year >= first)
                   & (birth_year <= last)] = era_code
    migrant = ~local
    region[migrant] = rng.choice(MIGRANT_CODES, size=int(migrant.sum()),
                                 p=MIGRANT_WEIGHTS / MIGRANT_WEIGHTS.sum())
    residency = np.where(local, (rng.random(size) < PERMIT_SHARE_LOCAL).astype(np.int8),
                         (rng.random(size) < PERMIT_SHARE_MIGRANT).astype(np.int8))
    return district, region, residency


def _sequence_codes(rng, region: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Sequence codes 1..999, unique within each (region, birth date): consecutive from a
    random start per group."""
    size = len(birth)
    key = region * 100_000 + (birth + 50_000)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group = np.cumsum(starts) - 1
    first_position = np.flatnonzero(starts)
    rank = np.arange(size) - first_position[group]
    if size and rank.max() >= 999:
        raise RuntimeError("more than 999 people share a region and birth date")
    offset = rng.integers(0, 999, len(first_position))[group]
    sequence = np.empty(size, np.int64)
    sequence[order] = 1 + (offset + rank) % 999
    return sequence


def _exits(rng, birth, entry, local, first_month_index: int, month_count: int):
    """(exit run month, exit status) per person: the first of death (Gompertz-like yearly
    hazard at the age of entry) and moving out, each geometric in months from entry."""
    entry_day = month_start_days(first_month_index + entry.astype(np.int64))
    age = (entry_day - birth) / DAYS_PER_YEAR
    death_per_year = np.minimum(0.35, 0.0004 * np.exp(0.085 * (age - 30)))
    death_per_month = 1 - (1 - death_per_year) ** (1 / 12)
    move_per_month = np.where(local, MOVE_OUT_RATE_LOCAL, MOVE_OUT_RATE_MIGRANT) / 12
    months_to_death = rng.geometric(death_per_month)
    months_to_move = rng.geometric(move_per_month)
    exit_month = entry.astype(np.int64) + np.minimum(months_to_death, months_to_move)
    exit_run_month = np.where(exit_month < month_count, exit_month, NEVER).astype(np.int16)
    status = np.where(months_to_death <= months_to_move, DECEASED, MOVED_OUT).astype(np.int8)
    return exit_run_month, status


def _names(rng, size: int):
    """(surname index, full names): a surname and one or two given-name characters."""
    surname = rng.integers(0, len(SURNAMES), size)
    first_given = rng.integers(0, len(GIVEN), size)
    second_given = np.where(rng.random(size) < SECOND_GIVEN_CHAR_SHARE,
                            rng.integers(0, len(GIVEN), size), -1)
    names = pc.binary_join_element_wise(
        lookup_strings(SURNAMES, surname), lookup_strings(GIVEN, first_given),
        pc.fill_null(lookup_strings(GIVEN, second_given), ""), "")
    return surname.astype(np.int16), names
