"""The synthetic city: `citycredit generate` writes a landing zone (SPEC §2, docs/contracts.md).

Model (volumes at the reference scale of 2,250,000 adults × 36 months; every volume scales linearly
with adults/2.25M × months/36):

* population: adults with a realistic age pyramid plus ~3 % residents aged 15-17 (so new
  18-year-olds appear), a new one-month cohort of 15-year-olds each month, ~0.5 %/yr move-ins and
  ~1 %/yr exits (age-dependent deaths → ``deceased``, moves → ``moved_out``; exited persons stay in
  later snapshots with that status). Identity numbers carry real birth dates, a region code valid
  in the birth year (Weihai's own codes before/after the 1983/1987/1989/1993/2014 re-codings, or
  a migrant's home region) and a correct MOD 11-2 check character.
* findings: every source delivers only its conf ``items``; each (source, item, level) is a monthly
  Poisson stream; a finding is delivered in the month it occurred or 1-3 months later.
  Derived behaviour: ~40 % of court listings are performed within the period (48 % within a
  year of listing: DEBT_PERFORMED with the listing's case_ref, plus a correction shortening the
  listing's valid_until), ~2 % of signed commitments are later breached (same case_ref),
  half of the court listings are also delivered by provincial_credit (same case_ref), some
  commendations are delivered by both volunteer/charity federation and the civilization office
  (same case_ref, sometimes one level apart), provincial-and-above commendations are mirrored by
  provincial_credit. PROVINCIAL_CREDIT_SCORE: one record per adult, record_id stable per person,
  first sent when the person becomes an adult in the data (all adults in the first month) and
  re-sent every 12 months with a new score (a correction).
* corrections ~0.5 % and revocations ~0.3 % of findings, re-sent 1-6 months after delivery.
* appeals ~0.2 % of negative findings; filed 5-40 days after the delivery month's last day,
  resolved 10-90 days later (upheld 30 % / rejected 70 %) or never (12 %); the resolution is
  re-delivered with the same appeal_id in the month it happens.
* bad rows: ``bad_share`` of the findings rows are extra, deliberately wrong rows. The ground truth
  goes to ``<landing>/_truth/bad_rows.csv``; ``_truth/deliveries.csv`` has per-delivery counts.

Everything is vectorised with numpy / pyarrow; output is byte-identical for the same arguments.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from citycredit.identity import CHECK_CHARS, make_id_bytes

__all__ = ["generate_city", "load_sources", "BAD_REASONS", "SOURCE_FORMATS", "REFERENCE_ADULTS",
           "REFERENCE_MONTHS", "FINDINGS_COLUMNS", "APPEALS_COLUMNS", "OPTOUTS_COLUMNS",
           "POPULATION_COLUMNS"]

REFERENCE_ADULTS = 2_250_000
REFERENCE_MONTHS = 36
ROWS_PER_FILE = 1_000_000
MANIFEST_SHARE = 0.92          # "most deliveries" carry a manifest.json

FINDINGS_COLUMNS = ["record_id", "id_number", "name", "item_code", "level", "quantity",
                    "occurred_on", "valid_until", "status", "case_ref"]
APPEALS_COLUMNS = ["appeal_id", "source_id", "record_id", "filed_on", "resolved_on", "outcome"]
OPTOUTS_COLUMNS = ["id_number", "requested_on"]
POPULATION_COLUMNS = ["id_number", "district", "residency", "status"]

# Delivery format per source id (conf/sources.yaml may override with a `format:` key).
SOURCE_FORMATS = {
    "population": "parquet", "court": "csv", "public_security": "csv", "traffic_police": "jsonl",
    "market_regulation": "parquet", "urban_management": "csv", "civilization_office": "csv",
    "volunteer_federation": "jsonl", "blood_center": "csv", "charity_federation": "csv",
    "commitments": "jsonl", "provincial_credit": "parquet", "appeals": "csv", "optouts": "csv",
}
RECORD_PREFIX = {
    "court": "FY", "public_security": "GA", "traffic_police": "JJ", "market_regulation": "SJ",
    "urban_management": "CG", "civilization_office": "WM", "volunteer_federation": "ZY",
    "blood_center": "XZ", "charity_federation": "CS", "commitments": "CN",
    "provincial_credit": "SX",
}
FILES_PER_DELIVERY = {"traffic_police": 2}   # two brigades deliver separately

# ----------------------------------------------------------------------------------- catalogue
ITEMS = ["COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "ADMIN_PENALTY", "UNCIVIL_CONDUCT",
         "LOAN_ARREARS", "COMMITMENT_SIGNED", "COMMITMENT_BREACH", "COMMENDATION", "BRAVERY",
         "VOLUNTEER_SERVICE", "BLOOD_DONATION", "CHARITY_DONATION", "PROVINCIAL_CREDIT_SCORE"]
UNKNOWN_ITEMS = ["TAX_ARREARS", "PARKING_TICKET", "SOCIAL_INSURANCE_ARREARS", "HONOUR_ROLL"]
NEGATIVE_ITEMS = {"COURT_DISHONEST_DEBTOR", "ADMIN_PENALTY", "UNCIVIL_CONDUCT", "LOAN_ARREARS",
                  "COMMITMENT_BREACH"}
LEVELS = ["minor", "general", "serious", "international", "national", "provincial", "municipal",
          "county"]
PENALTY_LEVELS = LEVELS[0:3]
COMMENDATION_LEVELS = LEVELS[3:8]     # highest first
STATUSES = ["active", "revoked"]

# Volumes at the reference scale (2.25M adults, 36 months). dict = per level.
DEEDS = {"international": 10, "national": 200, "provincial": 1_500, "municipal": 8_000,
         "county": 15_000}
DEED_SHARE = {"civilization_office": 0.60, "volunteer_federation": 0.25,
              "charity_federation": 0.15}
VOLUMES = {
    "court": {"COURT_DISHONEST_DEBTOR": 22_500},
    "public_security": {"ADMIN_PENALTY": {"minor": 20_000, "general": 15_000, "serious": 2_500},
                        "UNCIVIL_CONDUCT": 10_000},
    "traffic_police": {"ADMIN_PENALTY": {"minor": 90_000, "general": 25_000, "serious": 5_000}},
    "market_regulation": {"ADMIN_PENALTY": {"minor": 15_000, "general": 12_000, "serious": 500}},
    "urban_management": {"UNCIVIL_CONDUCT": 25_000,
                         "ADMIN_PENALTY": {"minor": 25_000, "general": 8_000}},
    "civilization_office": {"COMMENDATION": {k: v * DEED_SHARE["civilization_office"]
                                             for k, v in DEEDS.items()},
                            "BRAVERY": 300, "UNCIVIL_CONDUCT": 5_000},
    "volunteer_federation": {"VOLUNTEER_SERVICE": 478_000,
                             "COMMENDATION": {k: v * DEED_SHARE["volunteer_federation"]
                                              for k, v in DEEDS.items()}},
    "blood_center": {"BLOOD_DONATION": 238_000},
    "charity_federation": {"CHARITY_DONATION": 201_000,
                           "COMMENDATION": {k: v * DEED_SHARE["charity_federation"]
                                            for k, v in DEEDS.items()}},
    "commitments": {"COMMITMENT_SIGNED": 600_000},
    "provincial_credit": {"LOAN_ARREARS": 50_000},
}
# Fallback for a department onboarded later (not in VOLUMES) delivering a known item.
FALLBACK_TOTAL = {"ADMIN_PENALTY": {"minor": 15_000, "general": 6_000, "serious": 800},
                  "COMMENDATION": {k: v * 0.1 for k, v in DEEDS.items()}}
FALLBACK_DEFAULT_TOTAL = 10_000

LAG_P = np.array([0.55, 0.25, 0.12, 0.08])   # delivery lag 0..3 months
PERFORMED_SHARE = 0.48    # performed 1-12 months after listing: ~40 % show within 36 months
BREACH_SHARE = 0.021
COURT_MIRROR_SHARE = 0.50
DEED_REGISTRY_MIRROR_SHARE = 0.35
DEED_PROVINCIAL_MIRROR_SHARE = 0.50
CORRECTION_SHARE = 0.005
REVOCATION_SHARE = 0.003
APPEAL_SHARE = 0.002
APPEAL_OPEN_SHARE = 0.12
APPEAL_UPHELD_SHARE = 0.30
OPTOUTS_PER_MONTH = 5.0
SCORE_SERIAL_BASE = 9_000_000_000    # record_id of a person's PROVINCIAL_CREDIT_SCORE

PERSON_POOLS = {"volunteer": 0.10, "donor": 0.08, "blood": 0.06, "debtor": 0.04,
                "offender": 0.25, "signer": 0.35}

# Case references: prefix + year + mid + number (zero-padded to pad when pad > 0) + suffix.
CASE_KINDS = [
    ("court", "(", ")鲁10执", "号", 0),
    ("traffic", "威公交决字〔", "〕第", "号", 6),
    ("police", "威公(治)行罚决字〔", "〕", "号", 0),
    ("market", "威市监处罚〔", "〕", "号", 0),
    ("urban", "威综执罚决字〔", "〕第", "号", 5),
    ("civ", "威文明办字〔", "〕", "号", 0),
    ("deed", "威表彰〔", "〕", "号", 0),
    ("bravery", "威见义勇为〔", "〕", "号", 0),
    ("volact", "ZYHD", "-", "", 7),
    ("blood", "XXBH", "-", "", 8),
    ("charity", "JZPJ", "-", "", 8),
    ("commit", "XYCN", "-", "", 8),
    ("loan", "DKHT", "-", "", 9),
    ("generic", "REF", "-", "", 8),
]
CASE_KIND_INDEX = {k[0]: i for i, k in enumerate(CASE_KINDS)}
PENALTY_CASE_KIND = {"traffic_police": "traffic", "public_security": "police",
                     "market_regulation": "market", "urban_management": "urban",
                     "civilization_office": "civ"}

# Reason codes of the deliberately bad rows (_truth/bad_rows.csv); the names are those of
# citycredit/validation.py REASON_CODES so that quarantine counts reconcile one to one.
BAD_REASONS = ["bad_id_number",        # wrong GB 11643 check character
               "unknown_item",         # item_code not in the catalogue
               "bad_date",             # occurred_on not parseable with the source's date format
               "date_after_month",     # occurred_on after the delivery month's last day
               "missing_required",     # record_id, id_number, item_code, occurred_on or status
               "negative_quantity",
               "duplicate_record_id",  # an exact copy of an earlier row of the same delivery
               "forbidden_field",      # jsonl row with an extra key such as "religion"
               "encoding"]             # utf-8 csv row whose bytes are gb18030
_R = {r: i + 1 for i, r in enumerate(BAD_REASONS)}      # bad code 0 = clean row
MISSING_FIELDS = ["record_id", "id_number", "item_code", "occurred_on", "status"]
FORBIDDEN_FIELDS = [("religion", "佛教"), ("ethnicity", "汉族"), ("political_affiliation", "群众"),
                    ("religion", "基督教")]

# ----------------------------------------------------------------------------------- people
WEIHAI_DISTRICTS = [371002, 371003, 371082, 371083]     # 环翠区 文登区 荣成市 乳山市
DISTRICT_WEIGHTS = np.array([0.36, 0.21, 0.26, 0.17])
# Region code of a person born in (today's) district d, by birth year: (first, last, code).
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
# Home regions of migrants: codes valid in every birth year.
MIGRANT_CODES = np.array([370100, 370200, 370300, 370400, 410100, 410200, 410300, 220100,
                          230100, 210100, 210200, 110105, 110108, 310104, 320100, 130100,
                          140100, 340100, 120101])
MIGRANT_WEIGHTS = np.array([8, 8, 5, 5, 3, 2, 2, 3, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1], float)
AGE_BANDS = [(18, 25, 8.0), (25, 30, 7.0), (30, 35, 9.0), (35, 40, 9.0), (40, 45, 8.0),
             (45, 50, 10.0), (50, 55, 11.0), (55, 60, 10.0), (60, 65, 9.0), (65, 70, 8.0),
             (70, 75, 6.0), (75, 80, 3.5), (80, 85, 1.5), (85, 90, 0.7), (90, 100, 0.3)]
MINOR_SHARE = 0.03            # of the population snapshot: residents aged 15-17
MOVE_IN_RATE = 0.005          # per year, of adults
MOVE_OUT_RATE_LOCAL = 0.002   # per year
MOVE_OUT_RATE_MIGRANT = 0.012
STATUS_CODES = ["active", "deceased", "moved_out"]
RESIDENCY = ["hukou", "permit"]

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
                "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
                "贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国玉兰红梅海波鹏宇浩然子涵雨欣佳琪"
             "晨阳文博俊峰志明晓东丹婷雪晶颖慧慧琳琳倩倩思远嘉怡若曦天佑一鸣昊宁凯旭红霞春燕秋菊冬梅"
             "德福永胜立新卫东建军振华")



def _breaks_utf8(ch: str) -> bool:
    """True if ch's gb18030 bytes, at the start of a field, can never be read as utf-8."""
    b = ch.encode("gb18030")
    if b[0] < 0x80:
        return False
    if 0x80 <= b[0] <= 0xC1 or b[0] >= 0xF5:
        return True
    return len(b) < 2 or not (0x80 <= b[1] <= 0xBF)


SURNAME_BREAKS_UTF8 = np.array([_breaks_utf8(c) for c in SURNAMES])

QNULL = np.iinfo(np.int64).min
DNULL = np.iinfo(np.int32).min
_FRAC = ["" if f == 0 else ("." + f"{f:02d}".rstrip("0")) for f in range(100)]

# Row fields of a findings batch (columnar, numpy).
_FIELDS = [("serial", np.int64, -1), ("person", np.int32, -1), ("item", np.int16, -1),
           ("level", np.int8, -1), ("qty", np.int64, QNULL), ("occ", np.int32, DNULL),
           ("valid", np.int32, DNULL), ("status", np.int8, 0), ("ckind", np.int8, -1),
           ("cyear", np.int16, 0), ("cno", np.int64, 0), ("kind", np.int8, 0),
           ("locked", np.bool_, False), ("bad", np.int8, 0), ("variant", np.int8, 0)]
KIND_NEW, KIND_CORRECTION, KIND_REVOCATION = 0, 1, 2


def load_sources() -> dict:
    """The `sources` mapping of conf/sources.yaml (the department catalogue)."""
    path = Path(__file__).resolve().parents[1] / "conf" / "sources.yaml"
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["sources"]


# ------------------------------------------------------------------------------- small helpers
def _rows(n: int = 0, **cols) -> dict:
    out = {}
    for name, dtype, default in _FIELDS:
        if name in cols:
            v = np.asarray(cols[name])
            out[name] = (np.full(n, v, dtype=dtype) if v.ndim == 0 else v.astype(dtype, copy=False))
        else:
            out[name] = np.full(n, default, dtype=dtype)
    return out


def _nrows(r: dict) -> int:
    return len(r["serial"])


def _concat(parts: list) -> dict:
    parts = [p for p in parts if p is not None and _nrows(p)]
    if not parts:
        return _rows(0)
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name, _, _ in _FIELDS}


def _take(r: dict, idx) -> dict:
    return {k: v[idx] for k, v in r.items()}


def _rng(seed: int, tag: str, am: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tag.encode()), am]))


def _am_of(year: int, month: int) -> int:
    return (year - 1970) * 12 + month - 1


def _month_str(am: int) -> str:
    return f"{1970 + am // 12:04d}-{am % 12 + 1:02d}"


def _month_start(am) -> np.ndarray:
    return np.asarray(am, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]") \
        .astype(np.int64)


def _month_of(days) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]") \
        .astype(np.int64)


def _year_of(days) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]") \
        .astype(np.int64) + 1970


def _add_months(days, n) -> np.ndarray:
    """add_months with month-end clamping, on int day numbers (days since 1970-01-01)."""
    d = np.asarray(days, dtype=np.int64)
    m = _month_of(d)
    dom = d - _month_start(m)
    tm = m + np.asarray(n, dtype=np.int64)
    ts = _month_start(tm)
    dim = _month_start(tm + 1) - ts
    return ts + np.minimum(dom, dim - 1)


def _digits(values, width: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)


def _fixed_strings(mat: np.ndarray, null_mask=None) -> pa.Array:
    """StringArray from an (n, w) uint8 matrix of ASCII."""
    n, w = mat.shape
    offsets = np.arange(n + 1, dtype=np.int32) * w
    arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                      pa.py_buffer(np.ascontiguousarray(mat).tobytes()))
    return _null_where(arr, null_mask)


def _null_where(arr: pa.Array, mask) -> pa.Array:
    if mask is None:
        return arr
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _take_strings(table: list, idx, valid=None) -> pa.Array:
    idx = np.asarray(idx)
    mask = (idx < 0) if valid is None else ~np.asarray(valid, dtype=bool)
    ia = pa.array(np.where(mask, 0, idx).astype(np.int32), mask=mask)
    return pa.array(table, pa.string()).take(ia)


def _int_strings(values) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _string_buffer(arr: pa.Array) -> bytes:
    """The concatenated bytes of a StringArray without nulls."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if len(arr) == 0:
        return b""
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int32 if arr.type == pa.string() else np.int64)
    offs = offs[arr.offset: arr.offset + len(arr) + 1]
    return bufs[2].to_pybytes()[offs[0]:offs[-1]]


# ------------------------------------------------------------------------------- the population
class _Population:
    """Every person who appears in any snapshot of the run, ordered by entry month."""

    def __init__(self, rng: np.random.Generator, adults: int, first_am: int, months: int):
        e0 = int(_month_start(first_am + 1)[()]) - 1          # last day of the first month
        n_minor0 = int(round(adults * MINOR_SHARE / (1 - MINOR_SHARE)))
        groups = []                                            # (birth, entry, local, migrant-age?)

        # initial adults: age pyramid
        bands = np.array([(a, b) for a, b, _ in AGE_BANDS], dtype=float)
        w = np.array([x for _, _, x in AGE_BANDS])
        band = rng.choice(len(w), size=adults, p=w / w.sum())
        age = bands[band, 0] + rng.random(adults) * (bands[band, 1] - bands[band, 0])
        birth = e0 - np.floor(age * 365.2425).astype(np.int64)
        birth = np.minimum(birth, int(_add_months(e0, -216)[()]))     # adult on e0
        local = rng.random(adults) < 0.80
        groups.append((birth, np.zeros(adults, np.int64), local))

        # initial minors aged 15-17 on e0
        lo = int(_add_months(e0, -216)[()]) + 1
        hi = int(_add_months(e0, -180)[()])
        birth = rng.integers(lo, hi + 1, n_minor0)
        groups.append((birth, np.zeros(n_minor0, np.int64), rng.random(n_minor0) < 0.95))

        # each later month: the cohort turning 15, and move-ins
        per_month_cohort = n_minor0 / 36.0
        for mi in range(1, months):
            end_prev = int(_month_start(first_am + mi)[()]) - 1
            end_now = int(_month_start(first_am + mi + 1)[()]) - 1
            lo = int(_add_months(end_prev, -180)[()]) + 1
            hi = int(_add_months(end_now, -180)[()])
            k = rng.poisson(per_month_cohort)
            if k and hi >= lo:
                groups.append((rng.integers(lo, hi + 1, k), np.full(k, mi, np.int64),
                               rng.random(k) < 0.95))
            k = rng.poisson(adults * MOVE_IN_RATE / 12.0)
            if k:
                age = 20 + rng.random(k) * 35
                groups.append((end_now - np.floor(age * 365.2425).astype(np.int64),
                               np.full(k, mi, np.int64), np.zeros(k, bool)))

        birth = np.concatenate([g[0] for g in groups]).astype(np.int64)
        entry = np.concatenate([g[1] for g in groups]).astype(np.int16)
        local = np.concatenate([g[2] for g in groups])
        n0 = adults + n_minor0
        # shuffle the initial population so that person index carries no age order
        perm0 = rng.permutation(n0)
        birth[:n0] = birth[:n0][perm0]
        local[:n0] = local[:n0][perm0]
        P = len(birth)
        self.size = P

        district = rng.choice(len(WEIHAI_DISTRICTS), size=P, p=DISTRICT_WEIGHTS).astype(np.int8)
        # local people: born in their district (85 %) or another Weihai district
        birth_district = np.where(rng.random(P) < 0.85, district,
                                  rng.integers(0, len(WEIHAI_DISTRICTS), P)).astype(np.int64)
        byear = _year_of(birth)
        region = np.zeros(P, np.int64)
        for di, code in enumerate(WEIHAI_DISTRICTS):
            for first, last, era_code in WEIHAI_ERAS[code]:
                region[(birth_district == di) & (byear >= first) & (byear <= last)] = era_code
        mig = ~local
        region[mig] = rng.choice(MIGRANT_CODES, size=int(mig.sum()),
                                 p=MIGRANT_WEIGHTS / MIGRANT_WEIGHTS.sum())
        residency = np.where(local, (rng.random(P) < 0.02).astype(np.int8),
                             (rng.random(P) < 0.65).astype(np.int8))

        # sequence codes unique within (region, birth date)
        key = region * 100_000 + (birth + 50_000)
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.r_[True, ks[1:] != ks[:-1]]
        gid = np.cumsum(starts) - 1
        first_pos = np.flatnonzero(starts)
        rank = np.arange(P) - first_pos[gid]
        if P and rank.max() >= 999:
            raise RuntimeError("more than 999 people share a region and birth date")
        offset = rng.integers(0, 999, len(first_pos))[gid]
        seq = np.empty(P, np.int64)
        seq[order] = 1 + (offset + rank) % 999

        self.id_u8 = np.ascontiguousarray(make_id_bytes(region, birth.astype("datetime64[D]"),
                                                        seq))
        self.ids = _fixed_strings(self.id_u8)
        self.birth = birth.astype(np.int32)
        self.adult_day = _add_months(birth, 216).astype(np.int32)
        self.entry = entry
        self.district = district
        self.residency = residency

        # exits: deaths (age-dependent) and moves out, geometric in months from entry
        entry_day = _month_start(first_am + entry.astype(np.int64))
        age_now = (entry_day - birth) / 365.2425
        q_year = np.minimum(0.35, 0.0004 * np.exp(0.085 * (age_now - 30)))
        p_death = 1 - (1 - q_year) ** (1 / 12)
        p_move = np.where(local, MOVE_OUT_RATE_LOCAL, MOVE_OUT_RATE_MIGRANT) / 12
        t_death = rng.geometric(p_death)
        t_move = rng.geometric(p_move)
        t = np.minimum(t_death, t_move)
        exit_month = entry.astype(np.int64) + t
        self.exit = np.where(exit_month < months, exit_month, 32_000).astype(np.int16)
        self.exit_status = np.where(t_death <= t_move, 1, 2).astype(np.int8)
        # entry is non-decreasing: the snapshot of month mi is a prefix of the person arrays
        self.count_by_month = np.searchsorted(entry, np.arange(months), side="right")

        # names
        sur = rng.integers(0, len(SURNAMES), P)
        self.surname = sur.astype(np.int16)
        g1 = rng.integers(0, len(GIVEN), P)
        g2 = np.where(rng.random(P) < 0.7, rng.integers(0, len(GIVEN), P), -1)
        self.names = pc.binary_join_element_wise(
            _take_strings(SURNAMES, sur), _take_strings(GIVEN, g1),
            pc.fill_null(_take_strings(GIVEN, g2), ""), "")

        # behaviour pools
        self.pools = {"all": np.arange(P, dtype=np.int64)}
        for name, share in PERSON_POOLS.items():
            self.pools[name] = np.flatnonzero(rng.random(P) < share)

    def active(self, mi: int) -> np.ndarray:
        return (self.entry <= mi) & (self.exit > mi)


# ------------------------------------------------------------------------------- sources
class _Source:
    def __init__(self, sid: str, cfg: dict, order: int):
        self.sid = sid
        self.cfg = cfg or {}
        self.order = order
        self.kind = self.cfg.get("kind", "findings")
        self.fmt = self.cfg.get("format") or SOURCE_FORMATS.get(sid, "csv")
        self.encoding = str(self.cfg.get("encoding", "utf-8")).lower()
        self.date_format = self.cfg.get("date_format", "%Y-%m-%d")
        self.items = list(self.cfg.get("items") or [])
        self.prefix = RECORD_PREFIX.get(sid, (sid.replace("_", "")[:2] or "RX").upper())
        self.next_serial = 1
        self.queue: dict[int, list] = {}
        self.history: dict[int, dict] = {}
        self.streams: list = []          # (item, level or None, total at reference scale, pool)
        self.roles: set = set()

    def serials(self, n: int) -> np.ndarray:
        s = np.arange(self.next_serial, self.next_serial + n, dtype=np.int64)
        self.next_serial += n
        return s

    def schedule(self, due: int, rows: dict):
        if _nrows(rows):
            self.queue.setdefault(int(due), []).append(rows)

    @property
    def is_utf8_csv(self):
        return self.fmt == "csv" and self.encoding.replace("_", "-") in ("utf-8", "utf8")

    def applicable_reasons(self, has_qty: bool) -> list:
        out = ["bad_id_number", "unknown_item", "date_after_month", "missing_required",
               "duplicate_record_id"]
        if self.fmt in ("csv", "jsonl"):
            out.append("bad_date")
        if has_qty:
            out.append("negative_quantity")
        if self.fmt == "jsonl":
            out.append("forbidden_field")
        if self.is_utf8_csv:
            out.append("encoding")
        return [r for r in BAD_REASONS if r in out]


def _pool_for(sid: str, item: str) -> str:
    if item == "VOLUNTEER_SERVICE":
        return "volunteer"
    if item == "CHARITY_DONATION":
        return "donor"
    if item == "BLOOD_DONATION":
        return "blood"
    if item in ("COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED", "LOAN_ARREARS"):
        return "debtor"
    if item in ("ADMIN_PENALTY", "UNCIVIL_CONDUCT"):
        return "offender"
    if item in ("COMMITMENT_SIGNED", "COMMITMENT_BREACH"):
        return "signer"
    if item == "COMMENDATION":
        return {"volunteer_federation": "volunteer", "charity_federation": "donor"}.get(sid, "all")
    return "all"


def _case_kind_for(sid: str, item: str):
    if item in ("COURT_DISHONEST_DEBTOR", "DEBT_PERFORMED"):
        return "court"
    if item in ("ADMIN_PENALTY", "UNCIVIL_CONDUCT"):
        return PENALTY_CASE_KIND.get(sid, "generic")
    return {"COMMENDATION": "deed", "BRAVERY": "bravery", "VOLUNTEER_SERVICE": "volact",
            "BLOOD_DONATION": "blood", "CHARITY_DONATION": "charity",
            "COMMITMENT_SIGNED": "commit", "COMMITMENT_BREACH": "commit", "LOAN_ARREARS": "loan",
            "PROVINCIAL_CREDIT_SCORE": None}.get(item, "generic")


# ------------------------------------------------------------------------------- the generator
class _City:
    def __init__(self, landing: Path, adults: int, months: int, end: str, seed: int,
                 bad_share: float, sources: dict):
        self.landing = Path(landing)
        self.adults = int(adults)
        self.K = int(months)
        self.seed = int(seed)
        self.bad_share = float(bad_share)
        y, m = (int(x) for x in end.split("-"))
        self.last_am = _am_of(y, m)
        self.first_am = self.last_am - self.K + 1
        self.scale = self.adults / REFERENCE_ADULTS
        self.sources = [_Source(sid, cfg, i) for i, (sid, cfg) in enumerate(sources.items())]
        self.by_id = {s.sid: s for s in self.sources}
        self.findings = [s for s in self.sources if s.kind == "findings"]
        extra = sorted({it for s in self.findings for it in s.items if it not in ITEMS})
        self.item_codes = ITEMS + extra + UNKNOWN_ITEMS
        self.item_index = {c: i for i, c in enumerate(self.item_codes)}
        self.unknown_item_idx = np.arange(len(self.item_codes) - len(UNKNOWN_ITEMS),
                                          len(self.item_codes))
        self.case_counter = np.zeros(len(CASE_KINDS), np.int64)
        self._plan_streams()
        self.truth: list = []
        self.deliveries: list = []
        self.summary_rows: dict = {}
        self.summary_bytes: dict = {}
        self.missing_reasons = list(BAD_REASONS) if self.bad_share > 0 else []
        self.appeal_queue: dict[int, list] = {}
        self.appeal_serial = 1
        self.opted_out = np.zeros(0, np.int64)

    # .................................................................... planning
    def _plan_streams(self):
        for s in self.findings:
            vols = VOLUMES.get(s.sid)
            for item in s.items:
                if item == "PROVINCIAL_CREDIT_SCORE":
                    s.roles.add("score")
                    continue
                if vols is not None and item in vols:
                    spec = vols[item]
                elif vols is not None and item in ("COURT_DISHONEST_DEBTOR", "COMMENDATION") \
                        and s.sid == "provincial_credit":
                    s.roles.add("mirror:" + item)
                    continue
                elif vols is not None and item == "DEBT_PERFORMED" \
                        and "COURT_DISHONEST_DEBTOR" in vols:
                    s.roles.add("performance")
                    continue
                elif vols is not None and item == "COMMITMENT_BREACH" \
                        and "COMMITMENT_SIGNED" in vols:
                    s.roles.add("breach")
                    continue
                else:
                    spec = FALLBACK_TOTAL.get(item, FALLBACK_DEFAULT_TOTAL)
                if isinstance(spec, dict):
                    for lvl, total in spec.items():
                        if total > 0:
                            s.streams.append((item, lvl, float(total), _pool_for(s.sid, item)))
                else:
                    s.streams.append((item, None, float(spec), _pool_for(s.sid, item)))
        # performance / breach need the item on the same source
        for s in self.findings:
            if "performance" in s.roles and "DEBT_PERFORMED" not in s.items:
                s.roles.discard("performance")
        reg = self.by_id.get("civilization_office")
        self.deed_registry = reg if (reg is not None and "COMMENDATION" in reg.items) else None
        self.court_mirrors = [s for s in self.findings
                              if "mirror:COURT_DISHONEST_DEBTOR" in s.roles]
        self.deed_mirrors = [s for s in self.findings if "mirror:COMMENDATION" in s.roles]

    # .................................................................... record building
    def _new_findings(self, src: _Source, rng, mi: int, item: str, level, n: int, pool: str):
        am = self.first_am + mi
        m = int(n * 1.35) + 16
        lag = rng.choice(len(LAG_P), size=m, p=LAG_P)
        occ_am = am - lag
        start = _month_start(occ_am)
        dim = _month_start(occ_am + 1) - start
        occ = start + (rng.random(m) * dim).astype(np.int64)
        pool_idx = self.pop.pools[pool]
        if not len(pool_idx):
            return _rows(0)
        person = pool_idx[rng.integers(0, len(pool_idx), m)]
        ok = self.active_now[person] & (self.pop.adult_day[person] <= occ)
        person = person[ok][:n]
        occ = occ[ok][:n]
        n = len(person)
        lvl = -1 if level is None else LEVELS.index(level)
        qty = self._quantity(item, rng, n)
        valid = self._valid_until(item, level, occ, rng)
        ck = _case_kind_for(src.sid, item)
        r = _rows(n, serial=src.serials(n), person=person, item=self.item_index[item], level=lvl,
                  qty=qty, occ=occ, valid=valid, kind=KIND_NEW)
        if ck is not None:
            self._assign_cases(r, ck, rng, null_share=0.03 if item in (
                "ADMIN_PENALTY", "UNCIVIL_CONDUCT") else 0.0)
        return r

    def _assign_cases(self, r: dict, ck: str, rng, null_share: float = 0.0):
        n = _nrows(r)
        k = CASE_KIND_INDEX[ck]
        r["ckind"][:] = k
        r["cyear"][:] = _year_of(r["occ"])
        r["cno"][:] = self.case_counter[k] + 1 + np.arange(n)
        self.case_counter[k] += n
        if null_share > 0 and n:
            r["ckind"][rng.random(n) < null_share] = -1

    @staticmethod
    def _quantity(item: str, rng, n: int) -> np.ndarray:
        if item == "VOLUNTEER_SERVICE":
            hours = np.clip(np.round(rng.gamma(1.6, 2.2, n) * 2) / 2, 0.5, 24)
            return np.round(hours * 100).astype(np.int64)
        if item == "BLOOD_DONATION":
            return rng.choice(np.array([200, 300, 400]), size=n, p=[0.25, 0.30, 0.45]) * 100
        if item == "CHARITY_DONATION":
            yuan = np.clip(np.round(np.exp(rng.normal(4.6, 1.3, n))), 1, 200_000).astype(np.int64)
            cents = np.where(rng.random(n) < 0.2, rng.integers(1, 100, n), 0)
            return yuan * 100 + cents
        if item == "LOAN_ARREARS":
            return rng.choice(np.arange(1, 7), size=n, p=[.4, .25, .15, .1, .06, .04]) * 100
        return np.full(n, QNULL, np.int64)

    @staticmethod
    def _valid_until(item: str, level, occ: np.ndarray, rng) -> np.ndarray:
        n = len(occ)
        out = np.full(n, DNULL, np.int64)
        u = rng.random(n)
        if item == "COURT_DISHONEST_DEBTOR":
            out = np.where(u < 0.5, _add_months(occ, 36) - 1,
                           np.where(u < 0.7, _add_months(occ, 24) - 1, DNULL))
        elif item == "ADMIN_PENALTY":
            if level == "minor":
                out = np.where(u < 0.3, _add_months(occ, 3) - 1, DNULL)
            elif level == "general":
                out = _add_months(occ, 12) - 1
            elif level == "serious":
                out = _add_months(occ, 36) - 1
        elif item == "COMMITMENT_SIGNED":
            out = np.where(u < 0.5, _add_months(occ, 12) - 1,
                           np.where(u < 0.8, _add_months(occ, 36) - 1, DNULL))
        return out

    # .................................................................... per-month pieces
    def _primaries(self, src: _Source, rng, mi: int) -> dict:
        parts = []
        for item, level, total, pool in src.streams:
            n = rng.poisson(total * self.scale / REFERENCE_MONTHS)
            if n:
                parts.append(self._new_findings(src, rng, mi, item, level, n, pool))
        new = _concat(parts)
        self._schedule_followups(src, rng, mi, new)
        return new

    def _schedule_followups(self, src: _Source, rng, mi: int, new: dict):
        K = self.K
        item = new["item"]
        # court listings: performance, provincial mirror
        ci = self.item_index["COURT_DISHONEST_DEBTOR"]
        idx = np.flatnonzero(item == ci)
        if len(idx) and ("performance" in src.roles or self.court_mirrors):
            lst = _take(new, idx)
            n = len(idx)
            performed = np.zeros(n, bool)
            perf_due = np.full(n, 10 ** 6, np.int64)
            perf_day = lst["occ"].astype(np.int64) + rng.integers(30, 366, n)
            corrected = lst["valid"].astype(np.int64).copy()
            if "performance" in src.roles:
                sel = rng.random(n) < PERFORMED_SHARE
                due = np.maximum(_month_of(perf_day) - self.first_am
                                 + (rng.random(n) < 0.3), mi + 1)
                performed = sel & (due < K)
                perf_due = np.where(performed, due, perf_due)
                shorten = performed & ((lst["valid"] == DNULL) | (perf_day < lst["valid"]))
                corrected = np.where(shorten, perf_day, corrected)
                new["locked"][idx[performed]] = True
                for d in np.unique(perf_due[performed]):
                    w = np.flatnonzero(performed & (perf_due == d))
                    dp = _rows(len(w), serial=src.serials(len(w)), person=lst["person"][w],
                               item=self.item_index["DEBT_PERFORMED"], occ=perf_day[w],
                               ckind=lst["ckind"][w], cyear=lst["cyear"][w], cno=lst["cno"][w])
                    src.schedule(d, dp)
                    ws = w[shorten[w]]
                    if len(ws):
                        corr = _take(lst, ws)
                        corr["valid"] = corrected[ws].astype(np.int32)
                        corr["kind"] = np.full(len(ws), KIND_CORRECTION, np.int8)
                        src.schedule(d, corr)
            for tgt in self.court_mirrors:
                if tgt is src:
                    continue
                sel = rng.random(n) < COURT_MIRROR_SHARE
                q = self._mirror_month(mi, lst["occ"], rng.choice(3, size=n, p=[0.5, 0.3, 0.2]))
                sel &= q < K
                for d in np.unique(q[sel]):
                    w = np.flatnonzero(sel & (q == d))
                    mr = _take(lst, w)
                    mr["serial"] = tgt.serials(len(w))
                    mr["locked"] = np.zeros(len(w), bool)
                    already = performed[w] & (perf_due[w] <= d)
                    mr["valid"] = np.where(already, corrected[w], mr["valid"]).astype(np.int32)
                    later = performed[w] & ~already & (corrected[w] != lst["valid"][w])
                    cdue = np.maximum(perf_due[w], d + 1)
                    later &= cdue < K
                    mr["locked"][later] = True
                    tgt.schedule(d, mr)
                    for cd in np.unique(cdue[later]):
                        v = np.flatnonzero(later & (cdue == cd))
                        corr = _take(mr, v)
                        corr["valid"] = corrected[w][v].astype(np.int32)
                        corr["kind"] = np.full(len(v), KIND_CORRECTION, np.int8)
                        tgt.schedule(cd, corr)
        # commitments: breaches of signed commitments
        if "breach" in src.roles:
            si = self.item_index["COMMITMENT_SIGNED"]
            idx = np.flatnonzero((item == si) & (rng.random(len(item)) < BREACH_SHARE))
            if len(idx):
                day = new["occ"][idx].astype(np.int64) + rng.integers(20, 401, len(idx))
                due = np.maximum(_month_of(day) - self.first_am + (rng.random(len(idx)) < 0.3),
                                 mi + 1)
                ok = due < K
                for d in np.unique(due[ok]):
                    w = np.flatnonzero(ok & (due == d))
                    src.schedule(d, _rows(len(w), serial=src.serials(len(w)),
                                          person=new["person"][idx[w]],
                                          item=self.item_index["COMMITMENT_BREACH"],
                                          occ=day[w], ckind=new["ckind"][idx[w]],
                                          cyear=new["cyear"][idx[w]], cno=new["cno"][idx[w]]))
        # commendations: the civilization office registers some federation deeds too;
        # provincial_credit mirrors provincial-and-above deeds
        cm = self.item_index["COMMENDATION"]
        idx = np.flatnonzero(item == cm)
        if len(idx):
            deeds = _take(new, idx)
            n = len(idx)
            reg = self.deed_registry
            if reg is not None and reg is not src and src.sid in DEED_SHARE:
                sel = rng.random(n) < DEED_REGISTRY_MIRROR_SHARE
                q = self._mirror_month(mi, deeds["occ"],
                                       rng.choice(3, size=n, p=[0.5, 0.35, 0.15]))
                sel &= q < K
                higher = rng.random(n) < 0.3
                top = LEVELS.index("international")
                lvl = np.where(higher, np.maximum(deeds["level"] - 1, top), deeds["level"])
                for d in np.unique(q[sel]):
                    w = np.flatnonzero(sel & (q == d))
                    mr = _take(deeds, w)
                    mr["serial"] = reg.serials(len(w))
                    mr["level"] = lvl[w].astype(np.int8)
                    reg.schedule(d, mr)
            high = deeds["level"] <= LEVELS.index("provincial")
            for tgt in self.deed_mirrors:
                if tgt is src:
                    continue
                sel = high & (rng.random(n) < DEED_PROVINCIAL_MIRROR_SHARE)
                q = self._mirror_month(mi, deeds["occ"], rng.choice([1, 2], size=n))
                sel &= q < K
                for d in np.unique(q[sel]):
                    w = np.flatnonzero(sel & (q == d))
                    mr = _take(deeds, w)
                    mr["serial"] = tgt.serials(len(w))
                    tgt.schedule(d, mr)

    def _mirror_month(self, mi: int, occ: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """Delivery month of a second department's copy: `extra` months after the first
        delivery, but never more than 3 months after the month of occurrence."""
        occ_mi = _month_of(occ) - self.first_am
        return np.maximum(mi, np.minimum(mi + extra, occ_mi + 3))

    def _scores(self, src: _Source, rng, mi: int) -> dict:
        pop = self.pop
        am = self.first_am + mi
        month_end = int(_month_start(am + 1)[()]) - 1
        if not hasattr(self, "score_first"):
            self.score_first = np.full(pop.size, -1, np.int16)
            self.score_value = np.zeros(pop.size, np.int64)
        eligible = self.active_now & (pop.adult_day <= month_end)
        first = np.flatnonzero(eligible & (self.score_first < 0))
        since = mi - self.score_first.astype(np.int64)
        again = np.flatnonzero(self.active_now & (self.score_first >= 0) & (since > 0)
                               & (since % 12 == 0))
        self.score_first[first] = mi
        self.score_value[first] = np.clip(np.round(rng.normal(740, 90, len(first))), 0, 1000)
        self.score_value[again] = np.clip(self.score_value[again]
                                          + np.round(rng.normal(0, 35, len(again))), 0, 1000)
        person = np.concatenate([first, again])
        kind = np.r_[np.full(len(first), KIND_NEW), np.full(len(again), KIND_CORRECTION)]
        occ = np.full(len(person), _month_start(am), np.int64)
        return _rows(len(person), serial=SCORE_SERIAL_BASE + person, person=person,
                     item=self.item_index["PROVINCIAL_CREDIT_SCORE"],
                     qty=self.score_value[person] * 100, occ=occ,
                     valid=_add_months(occ, 12) - 1, kind=kind)

    def _resends(self, src: _Source, rng, mi: int, base: int) -> dict:
        nc = rng.poisson(CORRECTION_SHARE * base)
        nr = rng.poisson(REVOCATION_SHARE * base)
        if nc + nr == 0:
            return _rows(0)
        months = [m for m in range(max(0, mi - 6), mi) if m in src.history]
        cand = [(m, np.flatnonzero((src.history[m]["status"] == 0) & ~src.history[m]["locked"]))
                for m in months]
        cand = [(m, c) for m, c in cand if len(c)]
        if not cand:
            return _rows(0)
        flat_m = np.concatenate([np.full(len(c), m) for m, c in cand])
        flat_i = np.concatenate([c for _, c in cand])
        k = min(nc + nr, len(flat_i))
        pick = rng.choice(len(flat_i), size=k, replace=False)
        out = []
        for j, p in enumerate([pick[:nc], pick[nc:]]):
            if not len(p):
                continue
            for m in np.unique(flat_m[p]):
                sel = flat_i[p[flat_m[p] == m]]
                h = src.history[m]
                if j == 0:
                    self._correct(h, sel, rng)
                    r = _take(h, sel)
                    r["kind"][:] = KIND_CORRECTION
                else:
                    h["status"][sel] = 1
                    r = _take(h, sel)
                    r["kind"][:] = KIND_REVOCATION
                r["locked"][:] = False
                out.append(r)
        return _concat(out)

    def _correct(self, h: dict, sel: np.ndarray, rng):
        """Change level, quantity or valid_until of history rows `sel` in place."""
        lvl = h["level"][sel].astype(np.int64)
        qty = h["qty"][sel]
        item = h["item"][sel]
        n = len(sel)
        pen = (lvl >= 0) & (lvl <= 2)
        com = lvl >= 3
        new_lvl = lvl.copy()
        new_lvl[pen] = (lvl[pen] + rng.integers(1, 3, int(pen.sum()))) % 3
        step = np.where(rng.random(n) < 0.5, -1, 1)
        shifted = lvl + step
        shifted = np.where((shifted < 3) | (shifted > 7), lvl - step, shifted)
        new_lvl[com] = shifted[com]
        h["level"][sel] = new_lvl.astype(np.int8)
        hasq = (lvl < 0) & (qty != QNULL)
        newq = qty.copy()
        blood = hasq & (item == self.item_index["BLOOD_DONATION"])
        loan = hasq & (item == self.item_index["LOAN_ARREARS"])
        other = hasq & ~blood & ~loan
        newq[blood] = ((qty[blood] // 100 - 200 + 100 * rng.integers(1, 3, int(blood.sum())))
                       % 300 + 200) * 100
        lc = qty[loan] // 100
        newq[loan] = np.where(lc >= 6, lc - 1, np.where(lc <= 1, lc + 1,
                              lc + np.where(rng.random(int(loan.sum())) < 0.5, -1, 1))) * 100
        factor = rng.uniform(0.5, 1.5, int(other.sum()))
        o = np.round(qty[other] * factor / 50) * 50
        newq[other] = np.where(o == qty[other], qty[other] + 50, np.maximum(o, 50)).astype(np.int64)
        h["qty"][sel] = newq
        rest = (lvl < 0) & (qty == QNULL)
        occ = h["occ"][sel].astype(np.int64)
        valid = h["valid"][sel].astype(np.int64)
        months = rng.integers(3, 37, n)
        nv = np.where(valid == DNULL, _add_months(occ, months) - 1,
                      np.maximum(_add_months(valid, np.where(rng.random(n) < 0.6, -3, 6)), occ))
        nv = np.where(nv == valid, nv + 30, nv)
        h["valid"][sel] = np.where(rest, nv, valid).astype(np.int32)

    # .................................................................... bad rows
    def _bad_rows(self, src: _Source, rng, mi: int, clean: dict, reasons: list) -> dict:
        n_clean = _nrows(clean)
        if not reasons or n_clean == 0:
            return _rows(0)
        am = self.first_am + mi
        month_end = int(_month_start(am + 1)[()]) - 1
        reasons = np.array(reasons)
        out = []
        for reason in BAD_REASONS:
            k = int((reasons == reason).sum())
            if not k:
                continue
            if reason == "negative_quantity":
                pool = np.flatnonzero(clean["qty"] != QNULL)
            elif reason == "encoding":
                pool = np.flatnonzero(SURNAME_BREAKS_UTF8[
                    self.pop.surname[np.maximum(clean["person"], 0)]] & (clean["person"] >= 0))
                if not len(pool):
                    continue
            else:
                pool = np.arange(n_clean)
            if reason == "duplicate_record_id":
                k = min(k, len(pool))
                tmpl = np.sort(rng.choice(pool, size=k, replace=False))
            else:
                tmpl = pool[rng.integers(0, len(pool), k)]
            r = _take(clean, tmpl)
            r["kind"][:] = KIND_NEW
            r["locked"][:] = False
            r["bad"][:] = _R[reason]
            r["variant"][:] = 0
            if reason == "duplicate_record_id":
                r["variant"] = np.zeros(k, np.int8)
                r["_tmpl"] = tmpl           # the original row, must come first
            else:
                r["serial"] = src.serials(k)
            if reason == "bad_id_number":
                r["variant"] = rng.integers(0, 10, k).astype(np.int8)
            elif reason == "unknown_item":
                r["item"] = rng.choice(self.unknown_item_idx, size=k).astype(np.int16)
            elif reason == "bad_date":
                r["variant"] = rng.integers(0, len(self._junk_dates(src, am)), k).astype(np.int8)
            elif reason == "date_after_month":
                occ = month_end + rng.integers(1, 91, k)
                r["occ"] = occ.astype(np.int32)
                r["valid"] = np.where((r["valid"] != DNULL) & (r["valid"] < occ), DNULL,
                                      r["valid"]).astype(np.int32)
            elif reason == "missing_required":
                v = rng.integers(0, len(MISSING_FIELDS), k)
                r["variant"] = v.astype(np.int8)
                r["serial"] = np.where(v == 0, -1, r["serial"])
                r["person"] = np.where(v == 1, -1, r["person"]).astype(np.int32)
                r["item"] = np.where(v == 2, -1, r["item"]).astype(np.int16)
                r["occ"] = np.where(v == 3, DNULL, r["occ"]).astype(np.int32)
                r["status"] = np.where(v == 4, -1, r["status"]).astype(np.int8)
            elif reason == "negative_quantity":
                r["qty"] = -np.maximum(np.abs(r["qty"]), 100)
            elif reason == "forbidden_field":
                r["variant"] = rng.integers(0, len(FORBIDDEN_FIELDS), k).astype(np.int8)
            out.append(r)
        dup_tmpl = [r.pop("_tmpl") for r in out if "_tmpl" in r]
        bad = _concat(out)
        bad["_tmpl"] = (np.concatenate(dup_tmpl) if dup_tmpl else np.zeros(0, np.int64))
        return bad

    @staticmethod
    def _junk_dates(src: _Source, am: int) -> list:
        y = 1970 + am // 12
        cands = [f"{y}-02-30", f"{y}/13/01", f"31.12.{y}", "N/A", f"{y}1345", f"{y}-1-",
                 f"{y}-06-31", "0000-00-00"]
        out = []
        for c in cands:
            ok = 0
            for fmt in (src.date_format, "%Y-%m-%d"):
                try:
                    _dt.datetime.strptime(c, fmt)
                    ok += 1
                except ValueError:
                    pass
            if not ok:
                out.append(c)
        return out

    # .................................................................... columns & writing
    def _finding_columns(self, src: _Source, r: dict, am: int) -> dict:
        n = _nrows(r)
        serial = r["serial"]
        prefix = np.frombuffer(src.prefix.encode("ascii"), np.uint8)
        mat = np.empty((n, len(prefix) + 10), np.uint8)
        mat[:, :len(prefix)] = prefix
        mat[:, len(prefix):] = _digits(np.maximum(serial, 0), 10)
        record_id = _fixed_strings(mat, serial < 0)

        person = r["person"]
        ids = self.pop.id_u8[np.maximum(person, 0)]
        badid = np.flatnonzero(r["bad"] == _R["bad_id_number"])
        if len(badid):
            cur = np.searchsorted(np.frombuffer(b"0123456789X", np.uint8), ids[badid, 17])
            chk_idx = np.array([CHECK_CHARS.index(c) for c in "0123456789X"])[cur]
            wrong = (chk_idx + 1 + r["variant"][badid].astype(np.int64)) % 11
            ids[badid, 17] = np.frombuffer(CHECK_CHARS.encode(), np.uint8)[wrong]
        id_number = _fixed_strings(ids, person < 0)
        pm = person < 0
        name = self.pop.names.take(pa.array(np.where(pm, 0, person).astype(np.int32), mask=pm))
        item_code = _take_strings(self.item_codes, r["item"])
        level = _take_strings(LEVELS, r["level"])
        status = _take_strings(STATUSES, r["status"])

        q = r["qty"]
        qnull = q == QNULL
        qa = np.where(qnull, 0, np.abs(q))
        qstr = pc.binary_join_element_wise(
            _take_strings(["", "-"], (q < 0).astype(np.int64)), _int_strings(qa // 100),
            _take_strings(_FRAC, qa % 100), "")
        quantity = _null_where(qstr, qnull)

        occ = pa.array(r["occ"], type=pa.date32(), mask=r["occ"] == DNULL)
        valid = pa.array(r["valid"], type=pa.date32(), mask=r["valid"] == DNULL)

        ck = r["ckind"]
        case_ref = pa.nulls(n, pa.string())
        for k in np.unique(ck[ck >= 0]):
            m = ck == k
            _, pre, mid, suf, pad = CASE_KINDS[k]
            no = _int_strings(r["cno"][m])
            if pad:
                no = pc.utf8_lpad(no, width=pad, padding="0")
            s = pc.binary_join_element_wise(pre, _int_strings(r["cyear"][m]), mid, no, suf, "")
            case_ref = pc.replace_with_mask(case_ref, pa.array(m), s)

        if src.fmt == "parquet":
            quantity = quantity.cast(pa.decimal128(18, 4))
        else:
            occ = pc.strftime(occ, format=src.date_format)
            valid = pc.strftime(valid, format=src.date_format)
            junk = np.flatnonzero(r["bad"] == _R["bad_date"])
            if len(junk):
                jd = self._junk_dates(src, am)
                mask = np.zeros(n, bool)
                mask[junk] = True
                occ = pc.replace_with_mask(
                    occ, pa.array(mask), pa.array([jd[v] for v in r["variant"][junk]], pa.string()))
        return {"record_id": record_id, "id_number": id_number, "name": name,
                "item_code": item_code, "level": level, "quantity": quantity,
                "occurred_on": occ, "valid_until": valid, "status": status, "case_ref": case_ref}

    def _write_delivery(self, src_id: str, fmt: str, encoding: str, am: int, table: pa.Table,
                        rng, n_files: int = 1, enc_bad=None, forbid=None) -> tuple:
        """Write one delivery; returns (file names, row offsets per file, bytes)."""
        month = _month_str(am)
        folder = self.landing / src_id / month
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        n = table.num_rows
        n_files = max(n_files, -(-n // ROWS_PER_FILE))
        n_files = max(1, min(n_files, n)) if n else 1
        bounds = [n * i // n_files for i in range(n_files + 1)]
        names, total = [], 0
        for i in range(n_files):
            lo, hi = bounds[i], bounds[i + 1]
            name = f"{src_id}_{month}_{i + 1:02d}.{fmt}"
            part = table.slice(lo, hi - lo)
            path = folder / name
            if fmt == "parquet":
                pq.write_table(part, path, compression="snappy")
            elif fmt == "jsonl":
                path.write_bytes(self._jsonl_bytes(part, None if forbid is None
                                                   else forbid[lo:hi]))
            else:
                buf = io.BytesIO()
                pacsv.write_csv(part, buf)
                data = buf.getvalue()
                if enc_bad is not None and enc_bad[lo:hi].any():
                    lines = data.split(b"\n")
                    for j in np.flatnonzero(enc_bad[lo:hi]):
                        raw = lines[j + 1].decode("utf-8").encode("gb18030")
                        try:
                            raw.decode("utf-8")
                        except UnicodeDecodeError:
                            pass
                        else:
                            raise RuntimeError("bad-encoding row still decodes as utf-8")
                        lines[j + 1] = raw
                    data = b"\n".join(lines)
                enc = encoding.replace("_", "-")
                if enc not in ("utf-8", "utf8"):
                    data = data.decode("utf-8").encode(enc)
                path.write_bytes(data)
            total += path.stat().st_size
            names.append(name)
        manifest = bool(rng.random() < MANIFEST_SHARE)
        if manifest:
            (folder / "manifest.json").write_text(json.dumps({"row_count": n}) + "\n")
        (folder / "_READY").touch()
        sid = src_id
        self.summary_rows.setdefault(sid, {})[month] = n
        self.summary_bytes.setdefault(sid, {})[month] = total
        return names, bounds, total, manifest

    @staticmethod
    def _jsonl_bytes(t: pa.Table, forbid) -> bytes:
        if t.num_rows == 0:
            return b""
        pieces = []
        for i, col in enumerate(t.column_names):
            a = t.column(col).combine_chunks()
            pieces.append(pa.scalar(("{" if i == 0 else ",") + json.dumps(col) + ":"))
            if col == "quantity":
                val = a
            else:
                val = pc.binary_join_element_wise('"', a, '"', "")
            pieces.append(pc.if_else(pc.is_null(a), "null", val))
        if forbid is not None and (forbid >= 0).any():
            extra = [""] + ["," + json.dumps(k) + ":" + json.dumps(v, ensure_ascii=False)
                            for k, v in FORBIDDEN_FIELDS]
            pieces.append(_take_strings(extra, forbid + 1))
        pieces.append(pa.scalar("}\n"))
        lines = pc.binary_join_element_wise(*pieces, "")
        return _string_buffer(lines)

    # .................................................................... month loop
    def run(self) -> dict:
        t0 = time.perf_counter()
        self.landing.mkdir(parents=True, exist_ok=True)
        self.pop = _Population(_rng(self.seed, "population-base", self.first_am), self.adults,
                               self.first_am, self.K)
        for mi in range(self.K):
            self._month(mi)
        self._write_truth()
        wall = time.perf_counter() - t0
        bad_by_reason = {r: 0 for r in BAD_REASONS}
        bad_by_source: dict = {}
        for t in self.truth:
            bad_by_reason[t[4]] += 1
            bad_by_source[t[0]] = bad_by_source.get(t[0], 0) + 1
        total_rows = sum(sum(v.values()) for v in self.summary_rows.values())
        total_bytes = sum(sum(v.values()) for v in self.summary_bytes.values())
        return {
            "landing": str(self.landing), "adults": self.adults, "months": self.K,
            "first_month": _month_str(self.first_am), "end": _month_str(self.last_am),
            "seed": self.seed, "bad_share": self.bad_share, "persons": int(self.pop.size),
            "rows": self.summary_rows, "bytes": self.summary_bytes,
            "rows_by_source": {s: sum(v.values()) for s, v in self.summary_rows.items()},
            "bytes_by_source": {s: sum(v.values()) for s, v in self.summary_bytes.items()},
            "total_rows": total_rows, "total_bytes": total_bytes,
            "bad_rows": bad_by_reason, "bad_rows_by_source": bad_by_source,
            "wall_seconds": round(wall, 3),
            # aliases read by citycredit/cli.py
            "rows_total": total_rows, "bytes_total": total_bytes, "seconds": round(wall, 3),
        }

    def _month(self, mi: int):
        am = self.first_am + mi
        self.active_now = self.pop.active(mi)
        rngs = {s.sid: _rng(self.seed, s.sid, am) for s in self.sources}
        new = {}
        for s in self.findings:
            new[s.sid] = self._primaries(s, rngs[s.sid], mi)
        clean = {}
        for s in self.findings:
            rng = rngs[s.sid]
            queued = _concat(s.queue.pop(mi, []))
            fresh = _concat([new[s.sid], _take(queued, queued["kind"] == KIND_NEW)])
            base = _nrows(fresh)
            resends = self._resends(s, rng, mi, base)
            scores = self._scores(s, rng, mi) if "score" in s.roles else _rows(0)
            s.history[mi] = fresh
            s.history.pop(mi - 7, None)
            clean[s.sid] = _concat([fresh, _take(queued, queued["kind"] != KIND_NEW), resends,
                                    scores])
        # bad rows: Binomial per delivery, plus any reason not seen yet forced where it applies
        reasons = {}
        for s in self.findings:
            c = clean[s.sid]
            n = _nrows(c)
            app = s.applicable_reasons(bool((c["qty"] != QNULL).any()))
            k = int(rngs[s.sid].binomial(n, self.bad_share)) if (n and self.bad_share > 0) else 0
            reasons[s.sid] = list(rngs[s.sid].choice(app, size=k)) if k else []
        for reason in list(self.missing_reasons):
            if any(reason in v for v in reasons.values()):
                self.missing_reasons.remove(reason)
                continue
            best = None
            for s in self.findings:
                c = clean[s.sid]
                if _nrows(c) and reason in s.applicable_reasons(bool((c["qty"] != QNULL).any())):
                    if best is None or _nrows(c) > _nrows(clean[best.sid]):
                        best = s
            if best is not None:
                reasons[best.sid].append(reason)
                self.missing_reasons.remove(reason)
        for s in self.findings:
            self._emit_findings(s, rngs[s.sid], mi, clean[s.sid], reasons[s.sid])
        # appeals and opt-outs
        for s in self.sources:
            if s.kind == "appeals":
                self._emit_appeals(s, rngs[s.sid], mi)
            elif s.kind == "optouts":
                self._emit_optouts(s, rngs[s.sid], mi)
            elif s.kind == "population":
                self._emit_population(s, rngs[s.sid], mi)
        if any(s.kind == "appeals" for s in self.sources):
            self._schedule_appeals(_rng(self.seed, "appeals-filing", am), mi, clean)

    def _emit_findings(self, s: _Source, rng, mi: int, clean: dict, reasons: list):
        am = self.first_am + mi
        bad = self._bad_rows(s, rng, mi, clean, reasons)
        dup_tmpl = bad.pop("_tmpl") if "_tmpl" in bad else np.zeros(0, np.int64)
        rows = _concat([clean, bad])
        n, nc = _nrows(rows), _nrows(clean)
        perm = rng.permutation(n)
        pos = np.empty(n, np.int64)
        pos[perm] = np.arange(n)
        # a duplicate must come after its original (the later occurrence is the bad one)
        dup_rows = nc + np.flatnonzero(bad["bad"] == _R["duplicate_record_id"])
        if len(dup_rows):
            a, b = pos[dup_rows], pos[dup_tmpl]
            swap = a < b
            da, db = dup_rows[swap], dup_tmpl[swap]
            perm[pos[da]], perm[pos[db]] = db, da
            pos[perm] = np.arange(n)
        rows = _take(rows, perm)
        cols = self._finding_columns(s, rows, am)
        table = pa.table(cols)
        enc_bad = rows["bad"] == _R["encoding"]
        forbid = np.where(rows["bad"] == _R["forbidden_field"], rows["variant"], -1)
        names, bounds, total, manifest = self._write_delivery(
            s.sid, s.fmt, s.encoding, am, table, rng, FILES_PER_DELIVERY.get(s.sid, 1),
            enc_bad=enc_bad if enc_bad.any() else None,
            forbid=forbid if (forbid >= 0).any() else None)
        month = _month_str(am)
        bad_pos = np.flatnonzero(rows["bad"] > 0)
        fidx = np.searchsorted(np.array(bounds[1:]), bad_pos, side="right")
        for p, f in zip(bad_pos.tolist(), fidx.tolist()):
            self.truth.append((s.sid, month, names[f], p - bounds[f] + 1,
                               BAD_REASONS[rows["bad"][p] - 1]))
        kind = rows["kind"][rows["bad"] == 0]
        self.deliveries.append((s.sid, month, len(names), n, len(bad_pos),
                                int((kind == KIND_NEW).sum()),
                                int((kind == KIND_CORRECTION).sum()),
                                int((kind == KIND_REVOCATION).sum()), int(manifest)))

    def _schedule_appeals(self, rng, mi: int, clean: dict):
        am = self.first_am + mi
        month_end = int(_month_start(am + 1)[()]) - 1
        neg = np.array([self.item_index[i] for i in NEGATIVE_ITEMS if i in self.item_index])
        for s in self.findings:
            c = clean[s.sid]
            idx = np.flatnonzero((c["kind"] == KIND_NEW) & np.isin(c["item"], neg)
                                 & (c["status"] == 0))
            if not len(idx):
                continue
            idx = idx[rng.random(len(idx)) < APPEAL_SHARE]
            k = len(idx)
            if not k:
                continue
            aid = np.arange(self.appeal_serial, self.appeal_serial + k)
            self.appeal_serial += k
            filed = month_end + rng.integers(5, 41, k)
            resolved = filed + rng.integers(10, 91, k)
            open_ = rng.random(k) < APPEAL_OPEN_SHARE
            outcome = np.where(rng.random(k) < APPEAL_UPHELD_SHARE, 0, 1)
            rid = [f"{s.prefix}{x:010d}" for x in c["serial"][idx].tolist()]
            fm = _month_of(filed) - self.first_am
            rm = _month_of(resolved) - self.first_am
            for j in range(k):   # appeals are ~0.2 % of negative findings: tiny
                base = (int(aid[j]), s.sid, rid[j], int(filed[j]))
                if not open_[j] and rm[j] == fm[j]:
                    self._queue_appeal(int(fm[j]), base + (int(resolved[j]), int(outcome[j])))
                    continue
                self._queue_appeal(int(fm[j]), base + (DNULL, -1))
                if not open_[j]:
                    self._queue_appeal(int(rm[j]), base + (int(resolved[j]), int(outcome[j])))

    def _queue_appeal(self, due: int, row: tuple):
        if due < self.K:
            self.appeal_queue.setdefault(due, []).append(row)

    def _emit_appeals(self, s: _Source, rng, mi: int):
        am = self.first_am + mi
        rows = sorted(self.appeal_queue.pop(mi, []))
        filed = np.array([r[3] for r in rows], np.int32)
        resolved = np.array([r[4] for r in rows], np.int32)
        outcome = np.array([r[5] for r in rows], np.int64)
        fmt = s.date_format
        table = pa.table({
            "appeal_id": pa.array([f"YY{r[0]:09d}" for r in rows], pa.string()),
            "source_id": pa.array([r[1] for r in rows], pa.string()),
            "record_id": pa.array([r[2] for r in rows], pa.string()),
            "filed_on": pc.strftime(pa.array(filed, pa.date32()), format=fmt),
            "resolved_on": pc.strftime(pa.array(resolved, pa.date32(), mask=resolved == DNULL),
                                       format=fmt),
            "outcome": _take_strings(["upheld", "rejected"], outcome),
        })
        self._write_plain(s, rng, am, table)

    def _emit_optouts(self, s: _Source, rng, mi: int):
        am = self.first_am + mi
        start = int(_month_start(am)[()])
        dim = int(_month_start(am + 1)[()]) - start
        k = max(1, int(rng.poisson(OPTOUTS_PER_MONTH * self.scale)))
        month_end = start + dim - 1
        cand = rng.integers(0, self.pop.size, k * 4 + 8)
        ok = self.active_now[cand] & (self.pop.adult_day[cand] <= month_end) \
            & ~np.isin(cand, self.opted_out)
        person = np.unique(cand[ok])[:k]
        person = person[rng.permutation(len(person))]
        self.opted_out = np.concatenate([self.opted_out, person])
        day = np.sort(start + rng.integers(0, dim, len(person)))
        table = pa.table({
            "id_number": self.pop.ids.take(pa.array(person)),
            "requested_on": pc.strftime(pa.array(day.astype(np.int32), pa.date32()),
                                        format=s.date_format),
        })
        self._write_plain(s, rng, am, table)

    def _write_plain(self, s: _Source, rng, am: int, table: pa.Table):
        names, _, _, manifest = self._write_delivery(s.sid, s.fmt, s.encoding, am, table, rng)
        self.deliveries.append((s.sid, _month_str(am), len(names), table.num_rows, 0,
                                table.num_rows, 0, 0, int(manifest)))

    def _emit_population(self, s: _Source, rng, mi: int):
        am = self.first_am + mi
        pop = self.pop
        n = int(pop.count_by_month[mi])
        status = np.where(pop.exit[:n] <= mi, pop.exit_status[:n], 0)
        table = pa.table({
            "id_number": pop.ids.slice(0, n),
            "district": _take_strings([str(c) for c in WEIHAI_DISTRICTS], pop.district[:n]),
            "residency": _take_strings(RESIDENCY, pop.residency[:n]),
            "status": _take_strings(STATUS_CODES, status),
        })
        names, _, _, manifest = self._write_delivery(s.sid, s.fmt, s.encoding, am, table, rng)
        self.deliveries.append((s.sid, _month_str(am), len(names), n, 0, n, 0, 0, int(manifest)))

    def _write_truth(self):
        folder = self.landing / "_truth"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "bad_rows.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["source_id", "month", "file", "line", "reason"])
            w.writerows(sorted(self.truth))
        with open(folder / "deliveries.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["source_id", "month", "files", "rows", "bad_rows", "new_records",
                        "corrections", "revocations", "manifest"])
            w.writerows(sorted(self.deliveries))


def generate_city(landing: Path, adults: int, months: int, end: str, seed: int = 0,
                  bad_share: float = 0.002, sources: dict | None = None) -> dict:
    """Write a synthetic city's landing zone for the `months` months ending with `end` (YYYY-MM).

    Returns a summary: rows and bytes per source and month, bad rows by reason and source,
    totals and wall time. Output is byte-identical for the same arguments.
    """
    if adults < 1 or months < 1:
        raise ValueError("adults and months must be positive")
    if not 0 <= bad_share < 0.5:
        raise ValueError("bad_share must be in [0, 0.5)")
    if sources is None:
        sources = load_sources()
    return _City(Path(landing), adults, months, end, seed, bad_share, sources).run()
