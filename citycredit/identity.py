"""GB 11643 resident identity numbers (居民身份证号) and pseudonymous subject keys.

Validation and parsing delegate to python-stdnum (``stdnum.cn.ric``): length, digits, the
ISO 7064 MOD 11-2 check character, a real birth date, and an administrative-division code that
existed in the birth year. ``make_id_numbers`` is the numpy-vectorised builder the synthetic city
uses to mint millions of numbers; its check character is cross-checked against stdnum in tests.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import hmac

import numpy as np
from stdnum.cn import ric as _ric

__all__ = [
    "is_valid_id_number",
    "birth_date",
    "sex",
    "check_char",
    "make_id_numbers",
    "make_id_bytes",
    "subject_key",
    "CHECK_WEIGHTS",
    "CHECK_CHARS",
]

#: weights of the first 17 digits (2**(17-i) mod 11)
CHECK_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
#: check character for (weighted sum mod 11)
CHECK_CHARS = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)


def is_valid_id_number(s) -> bool:
    """True iff ``s`` is a valid 18-character resident identity number.

    stdnum.cn.ric's checks (length, digits, check character, real birth date — and not in the
    future, which stdnum allows — and a known region code), except one: stdnum also wants the region code to have existed in the *birth* year,
    but a card carries the code of where it was *issued* (at 16 or later), so e.g. every 环翠区
    371002 number of someone born before 1987 is real yet fails that test. Here the code must be
    one stdnum knows at all. The lookup is memoised per region code so that landing can validate
    millions of rows. A lowercase ``x`` check character is accepted, surrounding blanks are not.
    """
    if not isinstance(s, str) or len(s) != 18:
        return False
    number = s.upper()
    if not number[:17].isascii() or not number[:17].isdigit():
        return False
    try:
        if number[17] != _ric.calc_check_digit(number):
            return False
        born = _ric.get_birth_date(number)
    except (ValueError, _ric.ValidationError):
        return False
    return born <= _dt.date.today() and _region_known(number[:6])   # stdnum allows future births


@functools.lru_cache(maxsize=1 << 16)
def _region_known(region: str) -> bool:
    """A region code stdnum's table of administrative divisions has (at any time)."""
    from stdnum import numdb
    results = numdb.get("cn/loc").info(region)
    return any("county" in props for _part, props in results)


def _validated(s: str) -> str:
    if not is_valid_id_number(s):
        raise ValueError(f"invalid resident identity number: {s!r}")
    return _ric.compact(s)


def birth_date(s: str) -> _dt.date:
    """Birth date encoded in a valid identity number (ValueError if the number is invalid)."""
    return _ric.get_birth_date(_validated(s))


def sex(s: str) -> str:
    """'M' when the 17th digit (sequence code) is odd, else 'F' (ValueError if invalid)."""
    return "M" if int(_validated(s)[16]) % 2 == 1 else "F"


def check_char(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits (pure-python, for tests/tools)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(c) * int(w) for c, w in zip(first17, CHECK_WEIGHTS))
    return CHECK_CHARS[total % 11]


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded decimal digits (ASCII) of non-negative ints."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 10 ** width):
        raise ValueError(f"values do not fit in {width} digits")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)


def make_id_bytes(region_codes, birth_dates, seqs) -> np.ndarray:
    """Vectorised builder: an (n, 18) uint8 matrix of ASCII identity numbers.

    region_codes: ints (6 digits); birth_dates: anything numpy turns into datetime64[D];
    seqs: ints 0..999 (odd = male).
    """
    region = np.asarray(region_codes, dtype=np.int64).ravel()
    births = np.asarray(birth_dates, dtype="datetime64[D]").ravel()
    seq = np.asarray(seqs, dtype=np.int64).ravel()
    if not (region.shape == births.shape == seq.shape):
        raise ValueError("region_codes, birth_dates and seqs must have the same length")
    years = births.astype("datetime64[Y]").astype(np.int64) + 1970
    months = births.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (births - births.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    ymd = years * 10000 + months * 100 + days
    out = np.empty((region.size, 18), dtype=np.uint8)
    out[:, 0:6] = _digits(region, 6)
    out[:, 6:14] = _digits(ymd, 8)
    out[:, 14:17] = _digits(seq, 3)
    weighted = (out[:, :17].astype(np.int64) - 48) @ CHECK_WEIGHTS
    out[:, 17] = _CHECK_BYTES[weighted % 11]
    return out


def make_id_numbers(region_codes, birth_dates, seqs) -> np.ndarray:
    """Vectorised builder of identity numbers with a correct ISO 7064 MOD 11-2 check character.

    Returns a numpy array of str (dtype '<U18').
    """
    raw = np.ascontiguousarray(make_id_bytes(region_codes, birth_dates, seqs))
    return raw.view("S18").ravel().astype("U18")


def subject_key(id_number: str, key: str) -> str:
    """Pseudonymous subject key: lowercase hex HMAC-SHA256(key, upper(id_number))."""
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return hmac.new(k, id_number.upper().encode("utf-8"), hashlib.sha256).hexdigest()
