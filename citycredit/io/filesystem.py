"""Arrow's own file system for the pyarrow datasets delta-rs builds (the table seam and
citycredit.analysis read every Delta table through it).

delta-rs' default (`DeltaTable.to_pyarrow_dataset()` without `filesystem=`) is a Python file
system, `pyarrow.fs.PyFileSystem(DeltaStorageHandler)`: every Parquet file Arrow opens is then a
Python object, and Arrow's I/O threads may drop the last reference to one after the read
returned. If that happens while the interpreter is finalizing, the process aborts with
`terminate called without an active exception` (exit 134) or hangs — after a correct read
(citycredit.shutdown explains the mechanism; docs/operating.md "Exit status"). Arrow's C++ file
system holds no Python object, so no thread needs the interpreter at exit.
"""
from __future__ import annotations

import os

import pyarrow.fs


def native_filesystem(table_path: str) -> pyarrow.fs.FileSystem:
    """Arrow's C++ file system rooted at the Delta table `table_path` (a local path, `file://`
    URI, or a URI Arrow knows such as s3://), for `filesystem=` of delta-rs' pyarrow reads."""
    root = str(table_path)
    if "://" in root and not root.startswith("file://"):
        filesystem, base = pyarrow.fs.FileSystem.from_uri(root)
    else:
        filesystem = pyarrow.fs.LocalFileSystem()
        base = os.path.abspath(root.removeprefix("file://"))
    return pyarrow.fs.SubTreeFileSystem(base, filesystem)
