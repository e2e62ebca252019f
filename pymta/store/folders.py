"""Folder operations of a mailbox root: create, delete, rename, subscribe, list.

Each takes `tree_lock` first, then the folder locks of every folder it touches (in name
order), then the index: the lock order of root.py. Maildir++ hierarchy is implicit (a
folder "A.B" is one directory `.A.B`, whether or not `.A` exists), so deleting a parent
leaves its children alone and renaming one moves every directory under its name; creating
or renaming to "A.B" creates a missing "A" (RFC 9051 §6.3.4, §6.3.6 SHOULD).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil

from .errors import FolderExists, FolderNotFound, InvalidName, NotAllowed
from .index import FolderRow, FolderStats
from .maildir import fsync_dir
from .model import SPECIAL_USES, Change, FolderInfo
from .names import INBOX, SEPARATOR, canonical_folder
from .root import TRASH_PREFIX, MailboxRoot

log = logging.getLogger(__name__)


class FolderTree(MailboxRoot):
    def create_folder(self, name: str, special_use: str | None) -> None:
        """RFC 9051 §6.3.4; missing superior names ("A" for "A.B") are created too, as
        the RFC says a server SHOULD. Refused (FolderExists) before anything is created."""
        name = canonical_folder(name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidName(f"unknown special-use attribute {special_use!r} (RFC 6154 §2)")
        with self.tree_lock:
            self._sync_tree()
            if name == INBOX or self.folder_dir(name).exists():
                raise FolderExists(name)
            self._create_parents(name)
            self._create_one(name, special_use)

    def _create_parents(self, name: str) -> None:
        """Create the missing superior names of `name` (tree_lock held, no folder lock)."""
        parts = name.split(SEPARATOR)
        for depth in range(1, len(parts)):
            parent = SEPARATOR.join(parts[:depth])
            if parent != INBOX and not self.folder_dir(parent).exists():
                self._create_one(parent, None)

    def _create_one(self, name: str, special_use: str | None) -> None:
        """One new folder (tree_lock held)."""
        with self.folder_lock(name):
            if self.folder_dir(name).exists():
                raise FolderExists(name)
            with self.index.transaction():
                uidvalidity = self._new_uidvalidity()
            mtimes = self._make_folder_dir(name, uidvalidity, special_use)
            with self.index.transaction():
                self.index.insert_folder(
                    name,
                    uidvalidity=uidvalidity,
                    uidnext=1,
                    highestmodseq=1,
                    special_use=special_use,
                    subscribed=False,
                    new_mtime_ns=mtimes.new_mtime_ns,
                    cur_mtime_ns=mtimes.cur_mtime_ns,
                    settled=True,
                )
            self._publish([Change(name, "folders", uidvalidity=uidvalidity)])
        log.info("store.folder_created root=%s folder=%s", self.path, name)

    def delete_folder(self, name: str) -> None:
        """RFC 9051 §6.3.9. Maildir++ hierarchy is implicit, so children stay as they are."""
        name = canonical_folder(name)
        if name == INBOX:
            raise NotAllowed("INBOX cannot be deleted (RFC 9051 §6.3.9)")
        with self.tree_lock:
            self._sync_tree()
            with self.folder_lock(name):
                row = self._row(name)
                trash = self.path / f"{TRASH_PREFIX}{secrets.token_hex(8)}"
                os.rename(self.folder_dir(name), trash)
                fsync_dir(self.path, self._fsync)
                with self.index.transaction():
                    self.index.delete_folder(row.id)
                self._publish([Change(name, "folders", uidvalidity=row.uidvalidity)])
        shutil.rmtree(trash, ignore_errors=True)
        log.info("store.folder_deleted root=%s folder=%s", self.path, name)

    def rename_folder(self, old: str, new: str) -> None:
        """RFC 9051 §6.3.6: inferior names move along; renaming INBOX moves its messages."""
        old, new = canonical_folder(old), canonical_folder(new)
        if new == INBOX or old == new:
            raise FolderExists(new)
        if new.startswith(old + ".") and old != INBOX:
            raise NotAllowed("a folder cannot be renamed into itself")
        with self.tree_lock:
            self._sync_tree()
            if old == INBOX:
                self._rename_inbox(new)
                self._create_parents(new)
                return
            with self.index.reading():
                rows = [
                    r for r in self.index.folders() if r.name == old or r.name.startswith(old + ".")
                ]
            if not any(r.name == old for r in rows):
                raise FolderNotFound(old)
            moves = [(r, new + r.name[len(old) :]) for r in rows]
            names = sorted({r.name for r in rows} | {target for _, target in moves})
            with contextlib.ExitStack() as stack:
                for lock_name in names:
                    stack.enter_context(self.folder_lock(lock_name))
                for _, target in moves:
                    if self.folder_dir(target).exists():
                        raise FolderExists(target)
                for r, target in moves:
                    os.rename(self.folder_dir(r.name), self.folder_dir(target))
                fsync_dir(self.path, self._fsync)
                with self.index.transaction():
                    for r, target in moves:
                        self.index.rename_folder(r.id, target)
                self._publish(
                    Change(r.name, "folders", uidvalidity=r.uidvalidity, renamed_to=target)
                    for r, target in moves
                )
            self._create_parents(new)  # RFC 9051 §6.3.6: superior names the new one needs
        log.info("store.folder_renamed root=%s old=%s new=%s", self.path, old, new)

    def _rename_inbox(self, new: str) -> None:
        with contextlib.ExitStack() as stack:
            for lock_name in sorted({INBOX, new}):
                stack.enter_context(self.folder_lock(lock_name))
            if self.folder_dir(new).exists():
                raise FolderExists(new)
            inbox = self._synced(INBOX)
            with self.index.transaction():
                uidvalidity = self._new_uidvalidity()
            self._make_folder_dir(new, uidvalidity, None)
            target = self.folder_dir(new)
            with self.index.reading():
                msgs = self.index.messages(inbox.id)
            moved: list[int] = []
            for m in msgs:
                try:
                    os.rename(self.path / m.subdir / m.filename, target / m.subdir / m.filename)
                except FileNotFoundError:
                    continue
                moved.append(m.uid)
            for directory in (self.path, target):
                for sub in ("new", "cur"):
                    fsync_dir(directory / sub, self._fsync)
            modseq = inbox.highestmodseq + 1
            with self.index.transaction():
                new_id = self.index.insert_folder(
                    new,
                    uidvalidity=uidvalidity,
                    uidnext=inbox.uidnext,
                    highestmodseq=modseq,
                    special_use=None,
                    subscribed=inbox.subscribed,
                    new_mtime_ns=os.stat(target / "new").st_mtime_ns,
                    cur_mtime_ns=os.stat(target / "cur").st_mtime_ns,
                    settled=True,
                )
                self.index.move_messages(inbox.id, new_id, moved, modseq)
                self.index.update_folder(
                    inbox.id,
                    uidnext=inbox.uidnext,
                    highestmodseq=modseq,
                    new_mtime_ns=os.stat(self.path / "new").st_mtime_ns,
                    cur_mtime_ns=os.stat(self.path / "cur").st_mtime_ns,
                    settled=True,
                )
            self._publish(
                [
                    Change(INBOX, "expunge", tuple(moved), modseq, inbox.uidvalidity),
                    Change(new, "folders", uidvalidity=uidvalidity),
                ]
            )
        log.info("store.inbox_renamed root=%s new=%s messages=%d", self.path, new, len(moved))

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        name = canonical_folder(name)
        self._lookup(name)
        with self.folder_lock(name):
            row = self._row(name)
            with self.index.transaction():
                self.index.set_subscribed(row.id, subscribed)

    def folders(self) -> list[FolderInfo]:
        with self.tree_lock:
            self._sync_tree()
        with self.index.reading():
            names = [r.name for r in self.index.folders()]
        for name in names:
            with self.folder_lock(name), contextlib.suppress(FolderNotFound):
                self._synced(name)
        with self.index.reading():
            rows = self.index.folders()
            stats = self.index.all_folder_stats()
        parents = {
            r.name.rsplit(SEPARATOR, depth)[0]
            for r in rows
            for depth in range(1, r.name.count(SEPARATOR) + 1)
        }
        infos = [self._info(r, stats.get(r.id), r.name in parents) for r in rows]
        return sorted(infos, key=lambda i: (i.name != INBOX, i.name))

    def folder_info(self, name: str) -> FolderInfo:
        name = canonical_folder(name)
        self._lookup(name)
        with self.folder_lock(name):
            row = self._synced(name)
            with self.index.reading():
                stats = self.index.folder_stats(row.id)
                prefix = name + SEPARATOR
                children = any(r.name.startswith(prefix) for r in self.index.folders())
        return self._info(row, stats, children)

    @staticmethod
    def _info(row: FolderRow, stats: FolderStats | None, children: bool) -> FolderInfo:
        stats = stats or FolderStats(0, 0, 0)
        return FolderInfo(
            row.name,
            row.special_use,
            row.uidvalidity,
            row.uidnext,
            row.highestmodseq,
            stats.messages,
            stats.unseen,
            stats.size,
            row.subscribed,
            stats.deleted,
            children,
        )
