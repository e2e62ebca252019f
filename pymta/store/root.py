"""One mailbox root: its locks, and keeping its index in step with its Maildir.

`MailboxRoot` holds what every operation needs (locks, paths, the index) and the sync
between disk and index: rescans, adopting folders, rebuilds. `folders.FolderTree` adds the
folder operations, `views.Views` the reads and `mailbox.Mailbox` the changes to messages
(deliver, append, flags, expunge, copy, move); all run on worker threads.

Locks, always taken in this order (never the other way round):
1. `tree_lock` — the set of folders: create, delete, rename, adopting folders that
   appeared on disk, reindex;
2. folder locks (one per canonical folder name) — everything that changes a folder's
   messages: UID assignment + rename into place + index insert (so UIDs become visible in
   increasing order), flag renames, expunge, rescans. Several are taken only under
   `tree_lock`, in name order; a MOVE between two folders takes both that way and then
   lets `tree_lock` go (holding folder locks in name order cannot deadlock);
3. `index.lock` — the SQLite connection, held only around statements and commits.
The slow parts of a delivery (writing and fsyncing the file, the directory fsync) run
outside the folder lock; the directory fsync is group-committed by `DirSyncer`.

Changes are published (`Notifier.publish`) after their commit, before the folder lock is
released, so subscribers see one folder's changes in commit order.

Sizes: a message's size in the index is the size of the form IMAP serves it in, every
bare LF as CRLF (RFC822.SIZE, RFC 9051 §2.3.4), and quota usage is the sum of those.
Adopted files are measured that way (`maildir.wire_size`); our own writes do the same.

Behind-the-back changes: each folder records the st_mtime_ns of new/ and cur/ as of its
last scan; an access that finds other values rescans the folder. Our own renames update
the recorded values (when they were current before the rename), so deliveries never cause
a rescan (a foreign change in the microseconds between the two stats around our rename
would only be seen with the next foreign change or a reindex). A scan taken within one
timestamp tick (`SETTLE_*_NS`) of the directory's last change is "unsettled" (a later
change could carry the same timestamp) and is repeated on the next access.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .dirsync import DirSyncer
from .errors import FolderNotFound
from .index import (
    INDEX_FILE,
    FolderRow,
    Index,
    IndexCorrupt,
    MessageRow,
)
from .maildir import (
    SPECIAL_USE_FILE,
    UIDNEXT_FILE,
    UIDVALIDITY_FILE,
    Fsync,
    UniqueNames,
    clean_tmp,
    fsync_dir,
    link_rename,
    list_messages,
    make_dirs_durable,
    make_maildir,
    read_int_file,
    wire_size,
    write_int_file,
)
from .model import DEFAULT_FOLDERS, SPECIAL_USES, Change, ChangeKind, MessageMeta
from .names import INBOX, folder_dirname, folder_from_dirname
from .notify import Notifier
from .scan import Added, disk_files, plan_scan

log = logging.getLogger(__name__)

# How long after a directory's last change a scan of it can be trusted: a later change
# within the same timestamp tick would leave the mtime as it was. Nanosecond timestamps
# advance with the kernel's coarse clock (a tick of 1-10 ms; Linux >= 6.13 even gives a
# change after a stat a new value); file systems with whole-second timestamps get the
# full second, as Dovecot's MAILDIR_SYNC_SECS.
SETTLE_FINE_NS = 20_000_000
SETTLE_COARSE_NS = 1_000_000_000
_STAGING_PREFIX = "..pymta-new-"  # a folder being created (never a valid folder name)
TRASH_PREFIX = "..pymta-trash-"  # a folder being deleted
_LAST_UIDVALIDITY = "last_uidvalidity"
_DEFAULT_SPECIAL = dict(DEFAULT_FOLDERS)


@dataclass(frozen=True)
class _OldFolder:
    """What a reindex keeps from the index it replaces (the disk does not hold it)."""

    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    keywords: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class _Mtimes:
    new_mtime_ns: int
    cur_mtime_ns: int
    settled: bool


def _now_modseq() -> int:
    """A modseq floor for rebuilt folders: microseconds since the epoch. Normal operation
    adds 1 per change, so it stays below this floor unless a folder saw more than a
    million changes per second; a rebuilt HIGHESTMODSEQ therefore never goes backwards
    (RFC 7162 §3.1.1 requires it to only grow) even when the old index is lost."""
    return time.time_ns() // 1000


def _settled(before_ns: int, *mtimes: int) -> bool:
    """Whether a scan that began at `before_ns` saw directories whose mtimes can no longer
    repeat: every mtime is older than one timestamp tick."""
    return all(
        before_ns - m > (SETTLE_COARSE_NS if m % 1_000_000_000 == 0 else SETTLE_FINE_NS)
        for m in mtimes
    )


class MailboxRoot:
    def __init__(
        self,
        path: Path,
        *,
        names: UniqueNames,
        fsync: Fsync,
        dirsync: DirSyncer,
        notifier: Notifier,
    ) -> None:
        self.path = path
        self.key = os.fspath(path)
        self._names = names
        self._fsync = fsync
        self._dirsync = dirsync
        self._notifier = notifier
        self.tree_lock = threading.Lock()
        self._locks_guard = threading.Lock()
        self._folder_locks: dict[str, threading.Lock] = {}
        self.corrupt = False  # set when SQLite reported a damaged file; see Store
        make_dirs_durable(path, fsync)
        make_maildir(path, fsync, folder=False)
        index_path = path / INDEX_FILE
        try:
            self.index = Index(index_path)
        except IndexCorrupt as exc:
            log.warning("store.index_corrupt root=%s error=%s", path, exc)
            move_index_aside(index_path)
            self.index = Index(index_path)
        if self.index.needs_rebuild:
            log.info("store.index_rebuild root=%s", path)
            self._rebuild(preserve=False)

    def close(self) -> None:
        self.index.close()

    # -- helpers ------------------------------------------------------------------------

    def folder_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._folder_locks.get(name)
            if lock is None:
                lock = self._folder_locks[name] = threading.Lock()
            return lock

    def folder_dir(self, name: str) -> Path:
        return self.path if name == INBOX else self.path / folder_dirname(name)

    def _publish(self, changes: Iterable[Change]) -> None:
        self._notifier.publish(self.key, changes)

    def _row(self, name: str) -> FolderRow:
        with self.index.reading():
            row = self.index.folder(name)
        if row is None:
            raise FolderNotFound(name)
        return row

    def _lookup(self, name: str) -> FolderRow:
        """The folder's row; a folder that exists on disk but not yet in the index is
        adopted first. Call holding no folder lock (it may take `tree_lock`)."""
        with self.index.reading():
            row = self.index.folder(name)
        if row is None:
            with self.tree_lock:
                self._sync_tree()
            row = self._row(name)
        return row

    def _trusted(self, fdir: Path, row: FolderRow, subdirs: Sequence[str]) -> bool:
        """Whether the recorded mtimes of `subdirs` are current: then the result of our
        own change may be recorded without a rescan."""
        if not row.settled:
            return False
        try:
            return all(os.stat(fdir / sd).st_mtime_ns == row.mtime(sd) for sd in subdirs)
        except FileNotFoundError:
            return False

    def _after(self, fdir: Path, row: FolderRow, subdirs: Sequence[str], trusted: bool) -> _Mtimes:
        if not trusted:
            return _Mtimes(row.new_mtime_ns, row.cur_mtime_ns, row.settled)
        new = os.stat(fdir / "new").st_mtime_ns if "new" in subdirs else row.new_mtime_ns
        cur = os.stat(fdir / "cur").st_mtime_ns if "cur" in subdirs else row.cur_mtime_ns
        return _Mtimes(new, cur, True)

    def _meta(self, fdir: Path, m: MessageRow) -> MessageMeta:
        return MessageMeta(
            m.uid,
            m.flags,
            m.keywords,
            m.modseq,
            m.internal_date,
            m.size,
            fdir,
            f"{m.subdir}/{m.filename}",
        )

    def _new_uidvalidity(self) -> int:
        """RFC 9051 §2.3.1.1: a new UIDVALIDITY for every folder incarnation. Time-based
        (as Dovecot does) and strictly increasing per root; call inside a transaction."""
        value = max(int(time.time()), self.index.get_meta(_LAST_UIDVALIDITY) + 1)
        self.index.set_meta(_LAST_UIDVALIDITY, value)
        return value

    # -- the folder tree ----------------------------------------------------------------

    def _disk_folders(self) -> list[str]:
        names = [INBOX]
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.is_dir():
                    name = folder_from_dirname(entry.name)
                    if name is not None:
                        names.append(name)
        return sorted(names)

    def _clean_root(self) -> None:
        with os.scandir(self.path) as entries:
            leftovers = [
                e.path
                for e in entries
                if e.name.startswith((_STAGING_PREFIX, TRASH_PREFIX)) and e.is_dir()
            ]
        for leftover in leftovers:
            shutil.rmtree(leftover, ignore_errors=True)

    def _sync_tree(self) -> None:
        """Adopt folders that appeared on disk, forget those that vanished (tree_lock held)."""
        on_disk = set(self._disk_folders())
        with self.index.reading():
            known = {r.name: r for r in self.index.folders()}
        for name in sorted(known.keys() - on_disk):
            with self.folder_lock(name):
                if self.folder_dir(name).is_dir():
                    continue
                with self.index.transaction():
                    self.index.delete_folder(known[name].id)
                log.info("store.folder_vanished root=%s folder=%s", self.path, name)
            self._publish([Change(name, "folders")])
        for name in sorted(on_disk - known.keys()):
            with self.folder_lock(name):
                with self.index.transaction():
                    self._build_folder(name, None)
                log.info("store.folder_adopted root=%s folder=%s", self.path, name)
            self._publish([Change(name, "folders")])

    def _make_folder_dir(self, name: str, uidvalidity: int, special_use: str | None) -> _Mtimes:
        """Build the folder in a staging directory, then rename it into place: a crash
        leaves either no folder or a complete one."""
        staging = self.path / f"{_STAGING_PREFIX}{secrets.token_hex(8)}"
        staging.mkdir(mode=0o700)
        make_maildir(staging, self._fsync, folder=True)
        write_int_file(staging / UIDVALIDITY_FILE, uidvalidity, self._fsync)
        if special_use is not None:
            (staging / SPECIAL_USE_FILE).write_text(special_use + "\n", "ascii")
        target = self.folder_dir(name)
        os.rename(staging, target)
        fsync_dir(self.path, self._fsync)
        return _Mtimes(
            os.stat(target / "new").st_mtime_ns, os.stat(target / "cur").st_mtime_ns, True
        )

    def _synced(self, name: str, *, force: bool = False) -> FolderRow:
        """The folder's row after picking up changes made behind our back (folder lock held)."""
        row = self._row(name)
        fdir = self.folder_dir(name)
        before = time.time_ns()
        try:
            m_new = os.stat(fdir / "new").st_mtime_ns
            m_cur = os.stat(fdir / "cur").st_mtime_ns
        except FileNotFoundError as exc:
            raise FolderNotFound(name) from exc
        if not force and row.settled and m_new == row.new_mtime_ns and m_cur == row.cur_mtime_ns:
            return row
        return self._rescan(row, fdir, m_new, m_cur, before)

    def _rescan(self, row: FolderRow, fdir: Path, m_new: int, m_cur: int, before: int) -> FolderRow:
        disk = disk_files(
            [("new", list_messages(fdir / "new")), ("cur", list_messages(fdir / "cur"))]
        )
        with self.index.reading():
            known = self.index.by_base(row.id)
            top = self.index.max_uid(row.id)
        plan = plan_scan(disk, known, row.uidnext, rebuild=False)
        mtimes = _Mtimes(m_new, m_cur, _settled(before, m_new, m_cur))
        if plan.empty:
            with self.index.transaction():
                self._update_folder(row, row.uidnext, row.highestmodseq, mtimes)
            return self._row(row.name)
        modseq = row.highestmodseq + 1
        added, renamed_in = self._adopt(fdir, plan.added, modseq, {})
        if plan.vanished and plan.vanished[-1].uid == top:
            write_int_file(fdir / UIDNEXT_FILE, plan.uidnext, self._fsync)
        flagged = [old.uid for old, f in plan.moved if f.name.letters != old.flags]
        if not (added or plan.vanished or flagged):
            modseq = row.highestmodseq  # only moved between new/ and cur/: nothing to tell
        with self.index.transaction():
            self.index.insert_messages(row.id, [(msg, None) for msg in added])
            self.index.add_usage(sum(m.size for m in added), len(added))
            for old, f in plan.moved:
                self.index.update_message(
                    row.id,
                    old.uid,
                    subdir=f.subdir,
                    filename=f.filename,
                    flags=f.name.letters,
                    keywords=old.keywords,
                    modseq=modseq if old.uid in flagged else old.modseq,
                )
            self.index.delete_messages(row.id, plan.vanished, modseq)
            self._update_folder(row, plan.uidnext, modseq, mtimes)
        uv = row.uidvalidity
        kinds: tuple[tuple[ChangeKind, tuple[int, ...]], ...] = (
            ("expunge", tuple(m.uid for m in plan.vanished)),
            ("exists", tuple(m.uid for m in added)),
            ("flags", tuple(flagged)),
        )
        changes = [Change(row.name, kind, uids, modseq, uv) for kind, uids in kinds if uids]
        self._publish(changes)
        for sub in sorted(renamed_in):
            self._dirsync.sync(fdir / sub)
        log.info(
            "store.rescan root=%s folder=%s added=%d vanished=%d moved=%d",
            self.path,
            row.name,
            len(added),
            len(plan.vanished),
            len(plan.moved),
        )
        return self._row(row.name)

    def _update_folder(self, row: FolderRow, uidnext: int, modseq: int, m: _Mtimes) -> None:
        self.index.update_folder(
            row.id,
            uidnext=uidnext,
            highestmodseq=modseq,
            new_mtime_ns=m.new_mtime_ns,
            cur_mtime_ns=m.cur_mtime_ns,
            settled=m.settled,
        )

    def _adopt(
        self,
        fdir: Path,
        added: Sequence[Added],
        modseq: int,
        keywords: dict[str, tuple[str, ...]],
    ) -> tuple[list[MessageRow], set[str]]:
        """Give unknown files their UIDs: rename them to carry U= and stat them. Their
        size is that of their CRLF form (`maildir.wire_size`), as for our own files."""
        rows: list[MessageRow] = []
        renamed_in: set[str] = set()
        for a in added:
            directory = fdir / a.file.subdir
            final = a.final_filename
            try:
                if a.needs_rename:
                    link_rename(directory / a.file.filename, directory / final)
                    renamed_in.add(a.file.subdir)
                st = os.stat(directory / final)
                # RFC 9051 §2.3.4: the size IMAP reports (and quota counts) is that of
                # the CRLF form the file is served in; files from elsewhere often have
                # bare LF line ends.
                size = wire_size(directory / final, a.name, st.st_size)
            except FileNotFoundError:
                continue  # gone again already
            except FileExistsError:
                log.warning("store.adopt_name_taken folder=%s file=%s", fdir, final)
                continue
            rows.append(
                MessageRow(
                    a.uid,
                    a.name.base,
                    a.file.subdir,
                    final,
                    a.name.letters,
                    keywords.get(a.name.base, ()),
                    modseq,
                    st.st_mtime,
                    size,
                )
            )
        return rows, renamed_in

    def _build_folder(self, name: str, old: _OldFolder | None) -> tuple[int, int]:
        """Index one folder from its directory, keeping UIDs and UIDVALIDITY; inside a
        transaction. Returns (bytes, messages)."""
        fdir = self.folder_dir(name)
        make_maildir(fdir, self._fsync, folder=name != INBOX)
        clean_tmp(fdir / "tmp", time.time())
        stored_uv = read_int_file(fdir / UIDVALIDITY_FILE)
        uidvalidity = stored_uv or (old.uidvalidity if old else 0) or self._new_uidvalidity()
        if stored_uv != uidvalidity:
            write_int_file(fdir / UIDVALIDITY_FILE, uidvalidity, self._fsync)
        floor = max(read_int_file(fdir / UIDNEXT_FILE) or 1, old.uidnext if old else 1)
        if old is not None:
            special, subscribed = old.special_use, old.subscribed
        else:
            special = _DEFAULT_SPECIAL.get(name)
            try:
                text = (fdir / SPECIAL_USE_FILE).read_text("ascii").strip()
                special = text if text in SPECIAL_USES else special
            except (OSError, UnicodeDecodeError):
                pass
            subscribed = True  # subscriptions live only in the index: keep every folder visible
        # A folder we never served (no UIDVALIDITY file) starts at 1; one whose index was
        # lost jumps above any modseq a client may have seen.
        modseq = max(old.highestmodseq + 1 if old else 1, _now_modseq() if stored_uv else 1)
        before = time.time_ns()
        m_new = os.stat(fdir / "new").st_mtime_ns
        m_cur = os.stat(fdir / "cur").st_mtime_ns
        disk = disk_files(
            [("new", list_messages(fdir / "new")), ("cur", list_messages(fdir / "cur"))]
        )
        plan = plan_scan(disk, {}, floor, rebuild=True)
        rows, renamed_in = self._adopt(fdir, plan.added, modseq, old.keywords if old else {})
        for sub in sorted(renamed_in):
            self._dirsync.sync(fdir / sub)
        folder_id = self.index.insert_folder(
            name,
            uidvalidity=uidvalidity,
            uidnext=plan.uidnext,
            highestmodseq=modseq,
            special_use=special,
            subscribed=subscribed,
            new_mtime_ns=m_new,
            cur_mtime_ns=m_cur,
            settled=_settled(before, m_new, m_cur) and not renamed_in,
            # Expunges before this build are unknown: tombstones cover only later ones.
            vanished_floor=modseq,
        )
        size = sum(r.size for r in rows)
        self.index.insert_messages(folder_id, [(r, None) for r in rows])
        self.index.add_usage(size, len(rows))
        return size, len(rows)

    def _old_state(self) -> tuple[dict[str, _OldFolder], int]:
        try:
            with self.index.reading():
                if self.index.needs_rebuild:
                    return {}, 0
                old = {
                    r.name: _OldFolder(
                        r.uidvalidity,
                        r.uidnext,
                        r.highestmodseq,
                        r.special_use,
                        r.subscribed,
                        self.index.keywords_by_base(r.id),
                    )
                    for r in self.index.folders()
                }
                return old, self.index.get_meta(_LAST_UIDVALIDITY)
        except sqlite3.DatabaseError as exc:
            log.warning("store.reindex_old_index_unreadable root=%s error=%s", self.path, exc)
            return {}, 0

    def _rebuild(self, *, preserve: bool) -> None:
        """Rebuild the whole index from the Maildir (all locks held, or not yet shared)."""
        old, last_uv = self._old_state() if preserve else ({}, 0)
        self._clean_root()
        names = self._disk_folders()
        for name in names:
            uv = read_int_file(self.folder_dir(name) / UIDVALIDITY_FILE) or 0
            last_uv = max(last_uv, uv)
        total_size = total_count = 0
        with self.index.transaction():
            self.index.reset()
            self.index.set_meta(_LAST_UIDVALIDITY, last_uv)
            for name in names:
                size, count = self._build_folder(name, old.get(name))
                total_size += size
                total_count += count
            # First use (or a lost index): the default folders. A reindex of a healthy
            # index leaves out the ones the user deleted.
            for name, special in DEFAULT_FOLDERS if not old else ():
                if name not in names:
                    uidvalidity = self._new_uidvalidity()
                    mtimes = self._make_folder_dir(name, uidvalidity, special)
                    self.index.insert_folder(
                        name,
                        uidvalidity=uidvalidity,
                        uidnext=1,
                        highestmodseq=1,
                        special_use=special,
                        subscribed=True,
                        new_mtime_ns=mtimes.new_mtime_ns,
                        cur_mtime_ns=mtimes.cur_mtime_ns,
                        settled=True,
                    )
            self.index.mark_built()
        if preserve:
            self._publish(Change(name, "folders") for name in names)
        log.info(
            "store.rebuilt root=%s folders=%d messages=%d bytes=%d",
            self.path,
            len(names),
            total_count,
            total_size,
        )

    def reindex(self) -> None:
        with self.tree_lock:
            with self.index.reading():
                names = (
                    {r.name for r in self.index.folders()}
                    if not self.index.needs_rebuild
                    else set()
                )
            names.update(self._disk_folders())
            with contextlib.ExitStack() as stack:
                for name in sorted(names):
                    stack.enter_context(self.folder_lock(name))
                self._rebuild(preserve=True)


def move_index_aside(index_path: Path) -> None:
    """Keep one damaged index for inspection (`.corrupt`) and clear the way for a new one."""
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{index_path}{suffix}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(index_path, f"{index_path}.corrupt")
