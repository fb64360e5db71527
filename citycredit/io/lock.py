"""The warehouse lock: no erasure or cleanup while a month's run writes (issue "Privacy").

One lock file, `<warehouse>/_locks/warehouse.lock`, locked with the operating system's
`flock` (stdlib `fcntl`): the kernel releases it when the holding process ends, killed or not,
so a stale lock never blocks. Two modes:

* shared — every other writer: a step of the month that writes (`pipeline.run_step`: the DAG's
  tasks, several landing tasks of one run at a time), `jobs/score.py` (spark-submit),
  `citycredit simulate` / `evaluate` and the citycredit_evaluate DAG (citycredit.policy.task);
* exclusive — a whole `citycredit run` (one process), the month's `erase` step, and the
  operator's `citycredit erase` and `citycredit cleanup`: nothing else writes meanwhile.

Every holder also writes `<warehouse>/_locks/holder-<pid>.json` (what: run id / command, pid,
since when, mode) and removes it on release; a second taker that cannot get the lock within
`wait_seconds` raises WarehouseBusy naming the live holders. Holder files of dead processes are
ignored (and removed). Reentrant within a process: a step run inside `citycredit run`, which
already holds the lock exclusively, takes nothing more.

Holder files hold run ids and command names only — no personal data.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["WarehouseBusy", "warehouse_lock", "holders", "SHARED", "EXCLUSIVE"]

SHARED, EXCLUSIVE = "shared", "exclusive"
_POLL_SECONDS = 0.2
_held: dict[str, list] = {}          # lock file → [mode, holds, file, holder note] of this process
_guard = threading.Lock()


class WarehouseBusy(RuntimeError):
    """The warehouse lock is held by another process (run, erase or cleanup)."""


def _folder(warehouse) -> Path:
    return Path(warehouse) / "_locks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holders(warehouse) -> list[dict]:
    """The live holders of the lock: {what, pid, since (UTC ISO), mode}, oldest first. Holder
    files left by dead processes are removed."""
    found = []
    folder = _folder(warehouse)
    if not folder.is_dir():
        return found
    for path in folder.glob("holder-*.json"):
        try:
            holder = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if holder.get("pid") != os.getpid() and not _alive(int(holder.get("pid", 0))):
            path.unlink(missing_ok=True)        # killed: the OS released its lock already
            continue
        found.append(holder)
    return sorted(found, key=lambda h: h.get("since", ""))


def _describe(found: list[dict]) -> str:
    if not found:
        return "a process that has not said who it is yet"
    return "; ".join(f"{h['what']} (pid {h['pid']}, {h['mode']}, since {h['since']})"
                     for h in found)


@contextmanager
def warehouse_lock(warehouse, what: str, mode: str = EXCLUSIVE,
                   wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the warehouse lock for the block. `what` says who holds it (e.g. "run 20261130T1000
    (2026-10)", "citycredit erase --month 2026-10"); `mode` SHARED or EXCLUSIVE.

    Waits up to `wait_seconds` for other holders, then raises WarehouseBusy naming them (what,
    pid, mode, since). Taking it again inside a block of this process holding it exclusively
    (or shared, for shared) is a no-op; asking for exclusive inside a shared hold raises
    RuntimeError (a programming error: it would wait on itself)."""
    if mode not in (SHARED, EXCLUSIVE):
        raise ValueError(f"lock mode must be {SHARED!r} or {EXCLUSIVE!r}, not {mode!r}")
    folder = _folder(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = str(folder / "warehouse.lock")
    with _guard:
        held = _held.get(lock_path)
        if held is not None and (held[0] == EXCLUSIVE or held[0] == mode):
            held[1] += 1              # nested: the outer hold stays until the last one ends
    if held is not None and (held[0] == EXCLUSIVE or held[0] == mode):
        try:
            yield
        finally:
            _leave(lock_path)
        return
    if held is not None:
        raise RuntimeError(f"{what}: asks for the warehouse lock exclusively inside a shared "
                           "hold of the same process")
    handle = open(lock_path, "a+")
    flag = fcntl.LOCK_EX if mode == EXCLUSIVE else fcntl.LOCK_SH
    deadline = time.monotonic() + max(0.0, wait_seconds)
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), flag | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"{what}: the warehouse {warehouse} is busy — held by "
                        f"{_describe(holders(warehouse))}; try again when it has finished"
                        + (f" (waited {wait_seconds:.0f}s)" if wait_seconds else "")) from None
                time.sleep(_POLL_SECONDS)
    except BaseException:
        handle.close()
        raise
    holder_path = folder / f"holder-{os.getpid()}.json"
    holder_path.write_text(json.dumps({
        "what": what, "pid": os.getpid(), "mode": mode,
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}),
        encoding="utf-8")
    with _guard:
        _held[lock_path] = [mode, 1, handle, holder_path]
    try:
        yield
    finally:
        _leave(lock_path)


def _leave(lock_path: str) -> None:
    """End one hold; the last one of the process releases the lock."""
    with _guard:
        held = _held[lock_path]
        held[1] -= 1
        if held[1]:
            return
        del _held[lock_path]
        _mode, _count, handle, holder_path = held
        holder_path.unlink(missing_ok=True)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
