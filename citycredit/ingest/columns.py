"""The columns of a delivered file against its contract (ingest.read): a csv header or a
Parquet schema with no header, unnamed, repeated, forbidden, missing or unknown columns, and a
header row repeated further down (files joined together) — each stops the file with one
DeliveryError naming source, month, file and the problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..identity import ID_NUMBER_LIKE, mask_id_numbers_in
from .contracts import Contract
from .delivery import DeliveryError


#: names tools give a column that had none: pandas' `Unnamed: 3` (a csv column without a header,
#: or an index written with the data) and `__index_level_0__` (an index written to Parquet)
_UNNAMED = re.compile(r"^(?:unnamed: ?\d+|__index_level_\d+__)$")


def _shown(name: str) -> str:
    """A delivered column name as a message may show it: identity-number-like runs masked,
    long names cut."""
    text = mask_id_numbers_in(name)
    return repr(text if len(text) <= 40 else text[:37] + "…")


@dataclass(frozen=True)
class ReadContext:
    source_id: str
    month: str
    contract: Contract
    forbidden: frozenset
    date_format: str

    def error(self, file: str, reason: str) -> DeliveryError:
        return DeliveryError(self.source_id, self.month, file, reason)

    def check_columns(self, file: str, columns: list[str]) -> None:
        """Batch-level checks of a csv header or a parquet schema (names lower-cased): no
        header at all, columns without a name, repeated, forbidden, missing, unknown ones."""
        known = [c for c in columns if c in self.contract.columns or c in self.forbidden]
        if columns and not known:
            if any(ID_NUMBER_LIKE.search(c) or re.fullmatch(r"[0-9./-]{6,}", c) for c in columns):
                raise self.error(file, "no header row: the first line holds data (a csv starts "
                                       "with a header row naming its columns: "
                                       f"{', '.join(self.contract.columns)})")
            named = [_shown(c) for c in columns if c] or ["no names"]
            raise self.error(file, f"the header names none of the {self.contract.kind} "
                                   f"contract's columns (found {', '.join(named)}; "
                                   f"expected {', '.join(self.contract.columns)})")
        unnamed = [f"column {i + 1}" + (f" ({c!r})" if c else "")
                   for i, c in enumerate(columns) if not c or _UNNAMED.match(c)]
        if unnamed:
            raise self.error(file, f"{', '.join(unnamed)} of {len(columns)} ha"
                                   f"{'s' if len(unnamed) == 1 else 've'} no name (every column "
                                   f"needs one of the {self.contract.kind} contract's names; an "
                                   f"index or an empty trailing column written with the data?)")
        seen = set()
        repeated = sorted({c for c in columns if c in seen or seen.add(c)})
        if repeated:
            raise self.error(file, f"column(s) {', '.join(repeated)} appear more than once")
        forbidden = [c for c in columns if c in self.forbidden]
        if forbidden:
            raise self.error(file, f"forbidden column(s) {', '.join(forbidden)} (SPEC §7: "
                                   f"such data is rejected at landing)")
        missing = [c for c in self.contract.required if c not in seen]
        unknown = [c for c in columns if c not in self.contract.columns]
        if missing:
            # a misspelt name is both: say the column the file has instead
            raise self.error(file, f"missing required column(s) {', '.join(missing)} of the "
                                   f"{self.contract.kind} contract" + (
                                       f"; the file has {', '.join(map(_shown, unknown))}, "
                                       "which the contract does not name (misspelt?)"
                                       if unknown else ""))
        if unknown:
            raise self.error(file, f"column(s) {', '.join(map(_shown, unknown))} are not in the "
                                   f"{self.contract.kind} contract "
                                   f"({', '.join(self.contract.columns)})")


def check_repeated_header(ctx: ReadContext, file: str, header: list[str], columns: dict,
                           lines) -> None:
    """A data row that repeats the header (csv files joined together, or a Parquet file made
    from such a csv) stops the file. Column by column, leaving at the first without a match."""
    mask = None
    for col in header:
        values = columns.get(col)
        if values is None:
            return
        arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        same = pc.fill_null(pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(arr)), col), False)
        mask = same if mask is None else pc.and_(mask, same)
        if not pc.any(mask).as_py():
            return
    if mask is None:
        return
    repeats = np.asarray(lines)[np.flatnonzero(np.asarray(mask))]
    where = ", ".join(map(str, repeats[:5])) + (" …" if len(repeats) > 5 else "")
    raise ctx.error(file, f"the header row is repeated on data line(s) {where} (files "
                          "joined together?): one header row, at the top")
