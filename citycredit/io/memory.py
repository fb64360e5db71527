"""Giving memory back to the system between the steps of a month run in one process."""
from __future__ import annotations


def give_back_memory() -> None:
    """Return what the finished step freed to the system: one process runs every step, and
    the Arrow buffers of landing and erasure (mimalloc's pool) and the C heap of delta-rs would
    otherwise stay in its resident size while the Spark JVM scores beside it. (No gc.collect():
    0.1 s a call, and the buffers are freed by reference counting.)"""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)        # glibc only; elsewhere nothing to do
    except (OSError, AttributeError):
        pass
