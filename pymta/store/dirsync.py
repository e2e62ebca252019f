"""Group commit for directory fsyncs.

A delivery is durable once its file is fsynced and the directory it was renamed into is
fsynced. Directory fsyncs of one directory serialise in the kernel anyway, so when several
deliveries wait for the same directory, one fsync started *after* all their renames serves
them all. `DirSyncer.sync(path)` gives exactly that guarantee: it returns only after an
fsync of `path` that started after the call began. A caller that arrives while a sync of
that directory is in progress cannot rely on it (its rename may have come too late) and
waits for the next one, which then covers everyone who arrived in the meantime.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .maildir import Fsync, fsync_dir


@dataclass
class _DirState:
    cond: threading.Condition
    started: int = 0  # number of syncs begun
    done: int = 0  # the highest sync generation that completed
    running: bool = False
    waiters: int = 0


class DirSyncer:
    def __init__(self, fsync: Fsync = os.fsync) -> None:
        self._fsync = fsync
        self._lock = threading.Lock()
        self._dirs: dict[str, _DirState] = {}

    def sync(self, path: str | os.PathLike[str]) -> None:
        """Return once an fsync of the directory `path` that began after this call began
        has completed (blocking; runs the fsync itself when nobody else is)."""
        key = os.fspath(path)
        with self._lock:
            state = self._dirs.get(key)
            if state is None:
                state = self._dirs[key] = _DirState(threading.Condition(self._lock))
            state.waiters += 1
            # The first generation to start from now on; a running one may predate our rename.
            target = state.started + 1
            try:
                while state.done < target:
                    if state.running:
                        state.cond.wait()
                        continue
                    state.running = True
                    state.started += 1
                    generation = state.started
                    ok = False
                    self._lock.release()
                    try:
                        fsync_dir(key, self._fsync)
                        ok = True
                    finally:
                        self._lock.acquire()
                        state.running = False
                        if ok:
                            state.done = generation
                        # On failure the others retry with a sync of their own.
                        state.cond.notify_all()
            finally:
                state.waiters -= 1
                if state.waiters == 0:
                    del self._dirs[key]

    def waiters(self, path: str | os.PathLike[str]) -> int:
        """How many callers are inside `sync(path)` now (for tests and metrics)."""
        with self._lock:
            state = self._dirs.get(os.fspath(path))
            return 0 if state is None else state.waiters
