"""The spool on disk: one directory, two files per entry, locked read-modify-write.

Layout of `<spool_dir>`:

    <id>.eml                  the message, exactly the bytes given to `enqueue`
    <id>.json                 the envelope (see `model.entry_to_json`); it makes the entry exist
    <id>.{eml,json}.<r>.tmp   a file being written (r: random)
    corrupt/                  envelopes that did not decode, and their messages, moved aside

Every method here blocks (the `Queue` calls them from its thread pool, the CLI directly),
and every one is safe while another process works on the same spool:

- A new entry is written message first, then envelope, each as temp → fsync → rename; the
  caller then fsyncs the directory (`sync_dir`, group-committed by `GroupCommit`).
- A change takes `flock(LOCK_EX)` on `<id>.json`, checks the path still names the locked
  file (a rename by the previous holder replaces it: lock again), reads, writes the new
  envelope as temp → fsync → rename over it, fsyncs the directory, then unlocks.
- Removal takes the same lock, unlinks the envelope first, then the message. A waiter that
  then gets the lock finds the path gone and sees "no such entry": nothing resurrects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pymta.queue.model import (
    CorruptEnvelope,
    QueueEntry,
    entry_from_json,
    entry_to_json,
    is_valid_id,
)

log = logging.getLogger(__name__)

ENVELOPE_SUFFIX = ".json"
MESSAGE_SUFFIX = ".eml"
TEMP_SUFFIX = ".tmp"
CORRUPT_DIR = "corrupt"

# A stat of an envelope file that changes whenever the envelope is rewritten (a rewrite is
# a new file renamed over the old one): lets a scan skip envelopes it has already read.
StatKey = tuple[int, int, int, int]


class Change(enum.Enum):
    """What a `Spool.transact` callback decided."""

    SAVE = "save"  # write the changed envelope
    REMOVE = "remove"  # remove the entry
    NOTHING = "nothing"  # leave the files as they are


@dataclass(frozen=True)
class Recovery:
    removed_temp: int
    removed_orphans: int


class Spool:
    def __init__(self, directory: Path, *, fsync: Callable[[int], None] = os.fsync) -> None:
        self.directory = directory
        self._fsync = fsync

    # -- paths ---------------------------------------------------------------------------

    def envelope_path(self, entry_id: str) -> Path:
        return self.directory / f"{entry_id}{ENVELOPE_SUFFIX}"

    def message_path(self, entry_id: str) -> Path:
        return self.directory / f"{entry_id}{MESSAGE_SUFFIX}"

    def create(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- writing -------------------------------------------------------------------------

    def write_new(self, entry: QueueEntry, message: bytes) -> None:
        """Write a new entry's two files; the caller fsyncs the directory afterwards."""
        self._write_file(self.message_path(entry.id), message)
        self._write_file(self.envelope_path(entry.id), entry_to_json(entry))
        entry.message_path = self.message_path(entry.id)

    def sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._fsync(fd)
        finally:
            os.close(fd)

    def _write_file(self, path: Path, data: bytes) -> None:
        temp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    # -- reading -------------------------------------------------------------------------

    def ids(self) -> list[str]:
        """The IDs of every entry (every envelope file), oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            entry_id, suffix = os.path.splitext(name)
            if suffix == ENVELOPE_SUFFIX and is_valid_id(entry_id):
                found.append(entry_id)
        return sorted(found)

    def stat_key(self, entry_id: str) -> StatKey | None:
        try:
            st = os.stat(self.envelope_path(entry_id))
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, entry_id: str) -> QueueEntry | None:
        """The entry, or None when it does not exist; raises CorruptEnvelope."""
        try:
            raw = self.envelope_path(entry_id).read_bytes()
        except FileNotFoundError:
            return None
        return self._decode(entry_id, raw)

    def read_message(self, entry_id: str) -> bytes:
        return self.message_path(entry_id).read_bytes()

    def _decode(self, entry_id: str, raw: bytes) -> QueueEntry:
        entry = entry_from_json(raw)
        if entry.id != entry_id:
            raise CorruptEnvelope(f"envelope names id {entry.id!r}")
        entry.message_path = self.message_path(entry_id)
        return entry

    # -- locked changes ------------------------------------------------------------------

    def transact(
        self, entry_id: str, decide: Callable[[QueueEntry], Change]
    ) -> tuple[QueueEntry, Change] | None:
        """Read the entry under its lock, let `decide` change it, carry out the decision.

        Returns None when the entry does not exist (or was removed while we waited);
        raises CorruptEnvelope when its envelope does not decode.
        """
        with self._locked(entry_id) as locked:
            if locked is None:
                return None
            entry = self._decode(entry_id, locked.read())
            change = decide(entry)
            if change is Change.SAVE:
                self._write_file(self.envelope_path(entry_id), entry_to_json(entry))
                self.sync_dir()
            elif change is Change.REMOVE:
                self._unlink_entry(entry_id)
            return entry, change

    def remove(self, entry_id: str) -> bool:
        """Remove an entry, even one whose envelope does not decode; False if absent."""
        with self._locked(entry_id) as locked:
            if locked is None:
                return False
            self._unlink_entry(entry_id)
            return True

    def _unlink_entry(self, entry_id: str) -> None:
        # Envelope first: once it is gone the entry no longer exists, whatever follows.
        os.unlink(self.envelope_path(entry_id))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.message_path(entry_id))
        self.sync_dir()

    @contextlib.contextmanager
    def _locked(self, entry_id: str, *, blocking: bool = True) -> Iterator[BinaryIO | None]:
        """Yields the envelope file, open and locked, or None when there is none.

        Non-blocking: raises BlockingIOError when another holder has the lock.
        """
        f = self._open_locked(entry_id, blocking)
        try:
            yield f
        finally:
            if f is not None:
                f.close()  # closing the last descriptor releases the flock

    def _open_locked(self, entry_id: str, blocking: bool) -> BinaryIO | None:
        path = self.envelope_path(entry_id)
        while True:
            try:
                f = open(path, "rb")  # noqa: SIM115 - handed to the caller, closed there
            except FileNotFoundError:
                return None
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                held = os.fstat(f.fileno())
                current = os.stat(path)
                if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                    return f
            except FileNotFoundError:
                f.close()
                return None
            except BaseException:
                f.close()
                raise
            f.close()  # the previous holder replaced the file: lock the new one

    # -- repair --------------------------------------------------------------------------

    def recover(self, in_flight: Container[str]) -> Recovery:
        """At start: remove temp files and message files that have no envelope.

        `in_flight`: IDs this process is enqueueing right now (their message file may
        legitimately precede their envelope). Only the server process enqueues.
        """
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return Recovery(0, 0)
        removed_temp = removed_orphans = 0
        for name in names:
            entry_id = name.split(".", 1)[0]
            if entry_id in in_flight:
                continue
            if name.endswith(TEMP_SUFFIX):
                if self._remove_temp(entry_id, name):
                    removed_temp += 1
            elif self._is_orphan(entry_id, name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / name)
                    removed_orphans += 1
        if removed_temp or removed_orphans:
            self.sync_dir()
        return Recovery(removed_temp, removed_orphans)

    def _is_orphan(self, entry_id: str, name: str) -> bool:
        return (
            name == f"{entry_id}{MESSAGE_SUFFIX}"
            and is_valid_id(entry_id)
            and not self.envelope_path(entry_id).exists()
        )

    def _remove_temp(self, entry_id: str, name: str) -> bool:
        # An envelope rewrite in progress (the CLI's, say) holds the envelope's lock for as
        # long as its temp file exists: leave that one alone.
        try:
            with self._locked(entry_id, blocking=False):
                os.unlink(self.directory / name)
                return True
        except BlockingIOError:
            return False
        except FileNotFoundError:
            return False

    def move_aside(self, entry_id: str) -> Path:
        """Move an entry's files into corrupt/ (where an admin can look at them)."""
        corrupt = self.directory / CORRUPT_DIR
        corrupt.mkdir(mode=0o700, exist_ok=True)
        for source in (self.envelope_path(entry_id), self.message_path(entry_id)):
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, corrupt / source.name)
        self.sync_dir()
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(corrupt, os.O_RDONLY | os.O_DIRECTORY)
            try:
                self._fsync(fd)
            finally:
                os.close(fd)
        return corrupt


class GroupCommit:
    """Coalesces the directory fsyncs of concurrent enqueues (group commit).

    A writer calls `commit()` after its renames. A sync that *begins* after that call
    covers it; a sync already under way may not. So a writer arriving while a sync runs waits
    for the next one, and that next one covers every writer that arrived meanwhile.
    A failed sync raises in exactly the writers it was meant to cover.
    """

    def __init__(self, sync: Callable[[], Awaitable[None]]) -> None:
        self._sync = sync
        self._started = 0  # syncs scheduled so far; the running one has this number
        self._running: asyncio.Future[None] | None = None
        self._begun = False  # the running one has called the fsync (not merely scheduled)
        self.waiters = 0  # writers inside commit() (for metrics and tests)

    async def commit(self) -> None:
        # A sync scheduled but not yet begun covers us; one under way may not.
        scheduled_only = self._running is not None and not self._begun
        need = self._started if scheduled_only else self._started + 1
        self.waiters += 1
        try:
            while True:
                if self._running is None:
                    self._started += 1
                    self._running = asyncio.ensure_future(self._run())
                number, running = self._started, self._running
                try:
                    # shield: one writer's cancellation must not cancel everyone's sync.
                    await asyncio.shield(running)
                except Exception:
                    if number >= need:
                        raise
                if number >= need:
                    return
        finally:
            self.waiters -= 1

    async def _run(self) -> None:
        self._begun = True
        try:
            await self._sync()
        finally:
            self._running = None
            self._begun = False
