"""pyarrow string columns built straight from numpy arrays (no Python string per row)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def fixed_width_strings(matrix: np.ndarray, null_mask=None) -> pa.Array:
    """StringArray of the rows of an (n, width) uint8 matrix of ASCII; null where null_mask."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                        pa.py_buffer(np.ascontiguousarray(matrix).tobytes()))
    return null_where(array, null_mask)


def null_where(array: pa.Array, mask) -> pa.Array:
    """`array` with nulls where the boolean `mask` is true (None = no nulls)."""
    if mask is None:
        return array
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return array
    return pc.if_else(pa.array(mask), pa.scalar(None, array.type), array)


def lookup_strings(strings: list, indexes, valid=None) -> pa.Array:
    """strings[i] for each index i; null where the index is negative (or where not `valid`)."""
    indexes = np.asarray(indexes)
    null = (indexes < 0) if valid is None else ~np.asarray(valid, dtype=bool)
    positions = pa.array(np.where(null, 0, indexes).astype(np.int32), mask=null)
    return pa.array(strings, pa.string()).take(positions)


def int_strings(values) -> pa.Array:
    """Decimal renderings of integers."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def string_bytes(array: pa.Array) -> bytes:
    """The concatenated bytes of a StringArray without nulls."""
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if len(array) == 0:
        return b""
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32 if array.type == pa.string() else np.int64)
    offsets = offsets[array.offset: array.offset + len(array) + 1]
    return buffers[2].to_pybytes()[offsets[0]:offsets[-1]]
