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
import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum.cn import ric as _ric

__all__ = [
    "normalise_id_number",
    "normalise_id_numbers",
    "id_number_problem",
    "is_valid_id_number",
    "valid_id_numbers",
    "birth_date",
    "sex",
    "check_char",
    "make_id_numbers",
    "make_id_bytes",
    "digits_matrix",
    "subject_key",
    "subject_keys",
    "mask_id_number",
    "id_number_tokens",
    "mask_id_numbers_in",
    "CHECK_WEIGHTS",
    "CHECK_CHARS",
]

#: weights of the first 17 digits (2**(17-i) mod 11)
CHECK_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
#: check character for (weighted sum mod 11)
CHECK_CHARS = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)

#: What normalisation trims from both ends of an identity number: every Unicode white space
#: (ASCII blanks, tabs and line breaks, NBSP, the ideographic space U+3000, the en/em spaces …)
#: and the invisible characters that copy-paste and spreadsheets leave behind (zero-width
#: space and joiners, word joiner, byte-order mark). One definition for the scalar and the
#: vectorised form.
ID_TRIM_CHARS = ("".join(chr(c) for c in range(0x3001) if chr(c).isspace() or c < 0x20)
                 + "\u200b\u200c\u200d\u2060\ufeff")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def normalise_id_number(value) -> str | None:
    """The one normal form of a delivered identity number, used by every check and key
    (validation, the duplicate check, subject_key, birth date, sex, masking): surrounding
    Unicode spaces, invisible characters and C0 controls (NUL padding of a fixed-width export)
    trimmed (ID_TRIM_CHARS) and ASCII letters
    upper-cased (the check character `x` → `X`). Nothing else changes: full-width digits
    (`３７１００２…`), inner blanks or a number Excel wrote as `3.71002E+17` stay as they are and
    fail validation — refused, never guessed. None stays None."""
    if value is None:
        return None
    return str(value).strip(ID_TRIM_CHARS).translate(_ASCII_UPPER)


def normalise_id_numbers(values):
    """`normalise_id_number` over a column: a pyarrow (Chunked)Array of strings, or a pandas
    Series (returned as an object Series, None for null). Empty after trimming → null."""
    if isinstance(values, pd.Series):
        arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        out = normalise_id_numbers(arr).to_numpy(zero_copy_only=False)
        return pd.Series(out, index=values.index, dtype=object)
    arr = pc.ascii_upper(pc.utf8_trim(values, characters=ID_TRIM_CHARS))
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def is_valid_id_number(s) -> bool:
    """True iff ``s`` is a valid 18-character resident identity number.

    stdnum.cn.ric's checks (length, digits, check character, real birth date — and not in the
    future, which stdnum allows — and a known region code), except one: stdnum also wants the region code to have existed in the *birth* year,
    but a card carries the code of where it was *issued* (at 16 or later), so e.g. every 环翠区
    371002 number of someone born before 1987 is real yet fails that test. Here the code must be
    one stdnum knows at all. The lookup is memoised per region code so that landing can validate
    millions of rows. The number is judged in its normal form (`normalise_id_number`: a
    lowercase ``x`` and surrounding spaces are harmless; full-width digits are not).
    """
    if not isinstance(s, str):
        return False
    number = normalise_id_number(s)
    if len(number) != 18:
        return False
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


_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


_GUARD_SAMPLE = 256


def _representative(region: int, year: int) -> str:
    body = f"{region:06d}{year:04d}0101000"
    return body + CHECK_CHARS[sum(int(c) * int(w) for c, w in zip(body, CHECK_WEIGHTS)) % 11]


def valid_id_numbers(values: pd.Series) -> pd.Series:
    """`is_valid_id_number` over a whole column (text or None), vectorised → nullable booleans.

    The structural part of GB 11643 — 18 characters (17 digits + 0-9/X/x), the ISO 7064
    MOD 11-2 check character, a real calendar birth date — runs in numpy over all rows; what
    is left of the definition (a region code stdnum knows, a birth date not in the future)
    depends only on (region code, birth year), so it is asked once per distinct pair, with a
    representative number. A sample of rows is then checked against the team's function
    row by row; any disagreement (the definition grew a new rule) falls back to calling it for
    every distinct value, so landing never accepts a number that silver's `identity.birth_date`
    would refuse. Values are judged in their normal form (`normalise_id_number`). Null, or
    nothing left after trimming, is null (NA).
    """
    valid = is_valid_id_number
    arr = normalise_id_numbers(pa.array(values.to_numpy(dtype=object), type=pa.string(),
                                        from_pandas=True))
    null = arr.is_null().to_numpy(zero_copy_only=False)
    fmt = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{17}[0-9Xx]$"), False)
    ok = np.zeros(len(arr), dtype=bool)
    pos = np.flatnonzero(fmt.to_numpy(zero_copy_only=False))
    if len(pos):
        cand = pc.filter(arr, fmt)
        offsets = np.frombuffer(cand.buffers()[1], dtype=np.int32)[cand.offset:cand.offset + 1]
        raw = np.frombuffer(cand.buffers()[2], dtype=np.uint8)
        b = raw[offsets[0]:offsets[0] + 18 * len(cand)].reshape(-1, 18)
        d = b[:, :17].astype(np.int64) - 48
        check = (12 - (d @ CHECK_WEIGHTS) % 11) % 11
        last = np.where(b[:, 17] == ord("x"), ord("X"), b[:, 17])
        expected = np.where(check == 10, ord("X"), check + 48)
        y = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
        m = d[:, 10] * 10 + d[:, 11]
        day = d[:, 12] * 10 + d[:, 13]
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        mdays = _DAYS[np.clip(m, 0, 12)] + ((m == 2) & leap)
        struct = ((last == expected) & (y >= 1) & (m >= 1) & (m <= 12) & (day >= 1)
                  & (day <= mdays))
        region = d[:, :6] @ (10 ** np.arange(5, -1, -1, dtype=np.int64))
        keys = region[struct] * 10000 + y[struct]
        if len(keys):
            uniq, inverse = np.unique(keys, return_inverse=True)
            verdict = np.array([bool(valid(_representative(int(k) // 10000, int(k) % 10000)))
                                for k in uniq], dtype=bool)
            struct[np.flatnonzero(struct)] = verdict[inverse]
        ok[pos] = struct
    present = np.flatnonzero(~null)
    if len(present):
        sample = present[np.linspace(0, len(present) - 1, min(len(present), _GUARD_SAMPLE))
                         .astype(np.int64)]
        texts = values.to_numpy(dtype=object)
        if any(bool(valid(texts[i])) != ok[i] for i in sample):
            logging.getLogger(__name__).warning(
                "identity-number fast check disagrees with %s.%s; validating row by row",
                valid.__module__, valid.__name__)
            memo: dict = {}
            ok = np.array([False if v is None else memo.setdefault(v, bool(valid(v)))
                           for v in texts], dtype=bool)
    return pd.Series(pd.arrays.BooleanArray(ok & ~null, null), index=values.index)


def _validated(s: str) -> str:
    """The normal form of a valid number; ValueError (without the value: no identity number
    in a message) otherwise."""
    if not is_valid_id_number(s):
        raise ValueError(f"invalid resident identity number ({id_number_problem(s)})")
    return normalise_id_number(s)


def id_number_problem(s) -> str | None:
    """What is wrong with a delivered identity number, in words a department can act on and
    without the number itself (error messages and quarantine details carry no personal data);
    None when it is valid. Judged in the normal form, like `is_valid_id_number`."""
    if s is None:
        return "missing"
    number = normalise_id_number(s)
    if not number:
        return "missing"
    if is_valid_id_number(number):
        return None
    if not number.isascii():
        if any(not c.isascii() and c.isdigit() for c in number):
            return "full-width digits (use ASCII 0-9)"
        return "characters other than ASCII digits and X"
    if any(c in number for c in ".eE+") and number.replace(".", "").replace("E+", "").isalnum():
        return "written as a number in scientific notation (a spreadsheet cell not formatted as text)"
    if len(number) != 18:
        return f"{len(number)} characters, not 18"
    if not number[:17].isdigit() or number[17] not in CHECK_CHARS:
        return "not 17 digits and a check character 0-9/X"
    if check_char(number[:17]) != number[17]:
        return "wrong check character (GB 11643): mistyped, or digits lost to a spreadsheet"
    try:
        born = _ric.get_birth_date(number)
    except (ValueError, _ric.ValidationError):
        return "no such birth date"
    if born > _dt.date.today():
        return "birth date in the future"
    return "unknown region code"


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


def digits_matrix(values: np.ndarray, width: int) -> np.ndarray:
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
    out[:, 0:6] = digits_matrix(region, 6)
    out[:, 6:14] = digits_matrix(ymd, 8)
    out[:, 14:17] = digits_matrix(seq, 3)
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
    """Pseudonymous subject key: lowercase hex HMAC-SHA256(key, upper(id_number)) of the
    number's normal form (`normalise_id_number`), so `…946x` and ` …946X ` are one person."""
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return hmac.new(k, normalise_id_number(id_number).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def finding_keys(refs, key: str) -> list[str]:
    """Keyed references of findings (source_id, record_id): lowercase hex HMAC-SHA256(key,
    "finding" US source_id US record_id), each part stripped. What the erasure record keeps of
    an erased person's findings, so appeals about them are dropped at landing without the
    department's record ids being kept (SPEC §7, minimum necessary data)."""
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return [hmac.new(k, "\x1f".join(("finding", str(s).strip(), str(r).strip())).encode("utf-8"),
                     hashlib.sha256).hexdigest() for s, r in refs]


def mask_id_number(value: str | None) -> str | None:
    """The display form that keeps a row findable without the number (SPEC §7): the first 6
    and last 4 characters, the rest as '*' (`371002********123X`). Anything of another length
    is masked whole, keeping only its length, so no part of a malformed number leaks either."""
    if value is None:
        return None
    text = normalise_id_number(value)
    if len(text) == 18:
        return text[:6] + "*" * 8 + text[-4:]
    return "*" * len(text)


#: a run of characters that may be an identity number (ASCII or full-width digits; 15 digits
#: is the old first-generation card), not part of a longer word — what free text must never
#: show in clear
ID_NUMBER_LIKE = re.compile(r"(?<![0-9０-９A-Za-z])[0-9０-９]{14,17}[0-9０-９Xx](?![0-9０-９A-Za-z])")


def mask_id_numbers_in(text: str) -> str:
    """Free text (a message, an undecodable row) with every identity-number-like run masked
    as `mask_id_number` does."""
    return ID_NUMBER_LIKE.sub(lambda m: mask_id_number(m.group()), text)


def subject_keys(id_numbers, key: str) -> list[str | None]:
    """`subject_key` of many identity numbers (None stays None), about twice as fast as calling
    it per value: the HMAC's inner and outer key blocks are hashed once (RFC 2104), and each
    value costs two SHA-256 copies. Same result as `subject_key` value for value."""
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    block = k.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block)).copy
    out: list[str | None] = []
    append = out.append
    for value in id_numbers:
        if value is None or value is pd.NA or isinstance(value, float):   # None / NA / NaN
            append(None)
            continue
        h = inner()
        h.update(str(value).upper().encode("utf-8"))
        o = outer()
        o.update(h.digest())
        append(o.hexdigest())
    return out


def id_number_tokens(text: str | None) -> list[str]:
    """The identity-number-like tokens of a text (e.g. a quarantined row that could not be read
    into fields), in order; they need not be valid."""
    return ID_NUMBER_LIKE.findall(text) if text else []


def birth_dates_and_sexes(id_numbers) -> tuple[pa.Array, pa.Array]:
    """Birth date (date32) and sex ('M' | 'F') of many *valid* identity numbers at once, from
    the normal form's digits 7–14 (YYYYMMDD) and 17 (odd: male), as `birth_date` and `sex` give
    value by value — Arrow kernels instead of a validation per value (landing validated them:
    at 2.3 M population rows a month the per-value path was a fifth of landing's time).

    `id_numbers`: a pandas Series or a pyarrow array of strings. Raises ValueError (naming no
    value) when one is missing or not an 18-character number with a real birth date."""
    if isinstance(id_numbers, pd.Series):
        id_numbers = pa.array(id_numbers.to_numpy(dtype=object), type=pa.string(),
                              from_pandas=True)
    normal = normalise_id_numbers(id_numbers)
    if isinstance(normal, pa.ChunkedArray):
        normal = normal.combine_chunks()
    shaped = pc.match_substring_regex(normal, r"^[0-9]{17}[0-9X]$")
    births = pc.strptime(pc.utf8_slice_codeunits(normal, 6, 14), format="%Y%m%d", unit="s",
                         error_is_null=True).cast(pa.date32())
    if pc.any(pc.invert(pc.fill_null(shaped, False))).as_py() or births.null_count:
        raise ValueError("birth date and sex asked of an identity number that is not valid")
    odd = pc.equal(pc.bit_wise_and(pc.cast(pc.utf8_slice_codeunits(normal, 16, 17), pa.int8()),
                                   pa.scalar(1, pa.int8())), pa.scalar(1, pa.int8()))
    return births, pc.if_else(odd, "M", "F")
