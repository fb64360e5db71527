"""How a citycredit process ends: with its own exit status, never with a crash at exit.

Why (measured 2026-12-05, ARCHITECTURE.md "third round"; gdb backtrace in docs/operating.md):
a process that read a Delta table through delta-rs' default pyarrow dataset could abort *after*
its work was done — `terminate called without an active exception`, exit 134 — or hang at exit.
delta-rs hands Arrow a Python file system (`pyarrow.fs.PyFileSystem(DeltaStorageHandler)`), so
every Parquet file Arrow opens is a Python object. Arrow's I/O threads drop their last reference
to such a file asynchronously, sometimes after `to_table()` returned; when that happens while the
interpreter is finalizing, the thread's `PyGILState_Ensure` meets a finalizing interpreter,
CPython 3.11 ends the thread with `pthread_exit`, the forced unwind crosses a `noexcept` C++
destructor (arrow::py::PyReadableFile) and libstdc++ calls `std::terminate` → SIGABRT → 134.
Arrow issues apache/arrow#34314 and #45017 show the same stack.

Two defences, each sufficient for the commands:
- the cause: the table seam reads Delta tables with Arrow's own (C++) file system
  (`citycredit.io.filesystem`), so Arrow's threads never hold a Python object —
  this protects every reader: commands, DAG tasks, notebook kernels, scripts;
- the guard: `exit_now` ends the `citycredit` command the way Airflow's task runner ends a task
  (airflow.sdk.execution_time.supervisor._fork_main): wait for the program's own threads, run the
  atexit handlers (Spark's gateway, logging, temporary folders), flush, then `os._exit(status)` —
  no interpreter finalization, so no library's late thread can change the status. Airflow task
  processes already end this way.
"""
from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from contextlib import suppress
from typing import NoReturn


def status_of(exc: SystemExit) -> int:
    """The exit status Python would give this SystemExit (a message is printed, status 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def exit_now(status: int) -> NoReturn:
    """End the process with `status` after what a normal exit does that matters: the program's
    non-daemon threads joined, garbage collected (file objects flushed), atexit handlers run,
    standard streams flushed; then `os._exit`, skipping the interpreter's finalization."""
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()
    gc.collect()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with suppress(Exception):
            stream.flush()
    os._exit(status)
