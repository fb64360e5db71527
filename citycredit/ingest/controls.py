"""Control characters in delivered values (issue 23): C0 controls other than tab, CR and LF
(U+0000–U+001F; NUL is what fixed-width CHAR columns of a database export are padded with).
They never reach silver; bronze keeps the values as read.

* padding is removed: control characters at the end of a value (with the blanks beside them)
  are cut off by validation before any check reads the value (strip_control_padding), and
  around an identity number by its normal form (identity.ID_TRIM_CHARS, so suppression and
  keys see the number too); the row's note says so (`_detail` of a row without `_error`, and
  the detail of the row if it is quarantined for another reason);
* a control character anywhere else in a value puts the row in quarantine `control_character`
  (the suite's derived column `control_characters`, validate.DERIVATIONS), its detail naming the
  column, the character and its position — never the value.
Values of every format go through here: csv, JSON Lines (`\\u0000` in a string) and Parquet
strings alike.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: C0 controls that are not text (tab, LF and CR are), as a regex character class
CONTROL_CLASS = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"
CONTROL_CHARS = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
_PADDING = CONTROL_CHARS + "".join(chr(c) for c in range(0x3001) if chr(c).isspace())

#: columns whose controls do not matter: the name is dropped after validation (SPEC §7)
_IGNORED = frozenset({"name"})


def checked_columns(columns) -> list[str]:
    """The contract columns whose values must be free of control characters."""
    return [c for c in columns if c not in _IGNORED]


def has_controls(values) -> np.ndarray:
    """True where a text value (pandas Series or Arrow array) holds a control character."""
    arr = (pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)
           if isinstance(values, pd.Series) else values)
    return pc.fill_null(pc.match_substring_regex(arr, CONTROL_CLASS),
                        False).to_numpy(zero_copy_only=False)


def _codes(text: str) -> str:
    found = sorted({c for c in text if c in CONTROL_CHARS})
    return ", ".join(f"U+{ord(c):04X}" for c in found)


def padding_note(column: str, removed: str) -> str:
    return (f"{column}: trailing control character(s) {_codes(removed)} removed (padding of a "
            "fixed-width export)")


def id_padding_note(column: str, delivered: str) -> str:
    return (f"{column}: control character(s) {_codes(delivered)} around the number removed "
            "(padding)")


def strip_control_padding(df: pd.DataFrame, columns) -> tuple[pd.DataFrame, dict[int, str]]:
    """`df` (RawBatch.data rows) with control characters at the end of its text values cut off
    (and the blanks beside them; nothing left → None), and a note per row position that lost
    some. Values with no control character are untouched; a control elsewhere stays (the row
    goes to quarantine `control_character`)."""
    notes: dict[int, list[str]] = {}
    changed = {}
    for col in checked_columns(columns):
        if col not in df.columns or df[col].dtype != object:
            continue
        positions = np.flatnonzero(has_controls(df[col]))
        if not len(positions):
            continue
        values = df[col].to_numpy(dtype=object).copy()
        for pos in positions.tolist():
            text = values[pos]
            kept = text.rstrip(_PADDING)
            removed = text[len(kept):]
            if any(c in CONTROL_CHARS for c in removed):
                values[pos] = kept or None
                notes.setdefault(pos, []).append(padding_note(col, removed))
        changed[col] = pd.Series(values, index=df.index, dtype=object)
    if changed:
        df = df.assign(**changed)
    return df, {pos: "; ".join(texts) for pos, texts in notes.items()}


def controls_column(df: pd.DataFrame, columns) -> pd.Series:
    """Per row: the checked columns (';'-joined) that still hold a control character after
    strip_control_padding, or None; categorical, mostly null."""
    out = np.full(len(df), None, dtype=object)
    for col in checked_columns(columns):
        if col not in df.columns or df[col].dtype != object:
            continue
        for pos in np.flatnonzero(has_controls(df[col])).tolist():
            out[pos] = col if out[pos] is None else f"{out[pos]};{col}"
    return pd.Series(pd.Categorical(out), index=df.index)


def control_detail(df: pd.DataFrame, pos: int, columns: str) -> str:
    """What is wrong with row `pos`: per column named in `columns` (';'-joined), the first
    control character and where it is — the value itself is never shown."""
    parts = []
    for col in str(columns).split(";"):
        text = df[col].iat[pos] if col in df.columns else None
        if not isinstance(text, str):
            continue
        at = next(i for i, c in enumerate(text) if c in CONTROL_CHARS)
        parts.append(f"{col}: control character U+{ord(text[at]):04X} at character {at + 1} "
                     f"of {len(text)} (inside the value; only tab and line breaks are text)")
    return "; ".join(parts) or "a control character inside a value"
