"""`Store`: the async face of the mailbox store.

Every method that touches the disk runs on the store's own thread pool; the event loop
only awaits. Mailbox roots are opened on first use (creating the default folders, or
rebuilding a lost index) and kept open, up to `max_open_roots` idle ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .dirsync import DirSyncer
from .errors import InvalidName, StoreClosed, StoreUnavailable
from .flags import merge_keywords, normalize_letters, remove_keywords, split_flags
from .mailbox import Mailbox
from .maildir import Fsync, UniqueNames
from .model import (
    CachedSummary,
    Delivered,
    FolderInfo,
    MailboxKind,
    MailboxRef,
    MessageMeta,
    Usage,
)
from .names import canonical_folder
from .notify import ChangeCallback, Notifier, Subscription
from .root import move_index_aside

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    root: Mailbox | None = None
    users: int = 0


class _Roots:
    """Open mailbox roots by path, with a use count; idle ones beyond `limit` are closed
    (least recently used first)."""

    def __init__(self, limit: int, opener: Callable[[Path], Mailbox]) -> None:
        self._limit = limit
        self._opener = opener
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, _Entry] = OrderedDict()

    def acquire(self, path: Path) -> Mailbox:
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                entry = self._entries[path] = _Entry()
            self._entries.move_to_end(path)
            entry.users += 1
        try:
            with entry.lock:
                if entry.root is None:
                    entry.root = self._opener(path)
                return entry.root
        except BaseException:
            self.release(path, None)
            raise

    def release(self, path: Path, root: Mailbox | None) -> None:
        to_close: list[Mailbox] = []
        with self._lock:
            entry = self._entries[path]
            entry.users -= 1
            if root is not None and root.corrupt and entry.users == 0:
                del self._entries[path]
                to_close.append(root)
                move_aside = True
            else:
                move_aside = False
            idle = [p for p, e in self._entries.items() if e.users == 0]
            for p in idle[: max(0, len(self._entries) - self._limit)]:
                old = self._entries.pop(p)
                if old.root is not None:
                    to_close.append(old.root)
        for closing in to_close:
            closing.close()
        if move_aside and root is not None:
            log.warning("store.index_corrupt root=%s action=rebuild_on_next_use", root.path)
            move_index_aside(root.index.path)

    def close_all(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            if entry.root is not None:
                entry.root.close()


class Store:
    def __init__(
        self,
        data_dir: Path,
        *,
        hostname: str | None = None,
        workers: int = 16,
        fsync: Fsync = os.fsync,
        max_open_roots: int = 256,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._fsync = fsync
        self._names = UniqueNames(hostname or socket.gethostname())
        self.dirsync = DirSyncer(fsync)
        self._notifier = Notifier()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store")
        self._roots = _Roots(max_open_roots, self._open_root)
        self._closed = False

    def _open_root(self, path: Path) -> Mailbox:
        return Mailbox(
            path,
            names=self._names,
            fsync=self._fsync,
            dirsync=self.dirsync,
            notifier=self._notifier,
        )

    # -- paths --------------------------------------------------------------------------

    def maildir_path(self, ref: MailboxRef) -> Path:
        """The root of a mailbox: mail/<domain>/<user>/Maildir or public/<name>/Maildir."""
        if not isinstance(ref, MailboxRef):
            raise InvalidName("not a MailboxRef")
        ref.__post_init__()  # defence in depth: the path is made of these names
        if ref.kind == "user":
            assert ref.domain is not None
            return self.data_dir / "mail" / ref.domain / ref.name / "Maildir"
        return self.data_dir / "public" / ref.name / "Maildir"

    def mailbox_roots(self) -> list[MailboxRef]:
        """Every mailbox root on disk (for `pymta mailbox list`), without opening any."""
        refs: list[MailboxRef] = []
        for domain_dir in _subdirs(self.data_dir / "mail"):
            for user_dir in _subdirs(domain_dir):
                if (user_dir / "Maildir").is_dir():
                    refs.extend(_ref("user", user_dir.name, domain_dir.name))
        for public_dir in _subdirs(self.data_dir / "public"):
            if (public_dir / "Maildir").is_dir():
                refs.extend(_ref("public", public_dir.name, None))
        return refs

    # -- running on the pool ------------------------------------------------------------

    def _with_root(self, path: Path, fn: Callable[[Mailbox], T]) -> T:
        root = self._roots.acquire(path)
        try:
            return fn(root)
        except sqlite3.Error as exc:
            # A damaged index file ("malformed", "not a database") is forgotten and rebuilt
            # on next use; busy/locked errors (OperationalError) just fail this request.
            if type(exc) is sqlite3.DatabaseError:
                root.corrupt = True
            log.error("store.index_error root=%s error=%r", path, exc)
            raise StoreUnavailable("mailbox index unavailable") from exc
        finally:
            self._roots.release(path, root)

    async def _run(self, ref: MailboxRef, fn: Callable[[Mailbox], T]) -> T:
        if self._closed:
            raise StoreClosed("store is closed")
        path = self.maildir_path(ref)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_root, path, fn)

    # -- mail ---------------------------------------------------------------------------

    async def deliver(
        self,
        ref: MailboxRef,
        raw: bytes,
        *,
        folder: str = "INBOX",
        flags: str = "",
        keywords: Sequence[str] = (),
        internal_date: float | None = None,
        quota_bytes: int | None = None,
    ) -> Delivered:
        """Store `raw` as a new message; returns once it is durable (file and directory
        fsynced). `flags` are Maildir letters ("FS"); `keywords` IMAP keywords ("$Forwarded"
        becomes P). With `quota_bytes`, refuses (QuotaExceeded) when the root would exceed
        it; None or 0: unlimited."""
        name = canonical_folder(folder)
        kw_letters, kws = split_flags(keywords)
        letters = normalize_letters(flags + kw_letters)
        return await self._run(
            ref,
            lambda root: root.deliver(
                name,
                raw,
                letters=letters,
                keywords=kws,
                internal_date=internal_date,
                quota_bytes=quota_bytes,
            ),
        )

    async def usage(self, ref: MailboxRef) -> Usage:
        return await self._run(ref, Mailbox.usage)

    async def messages(self, ref: MailboxRef, folder: str) -> list[MessageMeta]:
        """Every message of the folder, ascending UID, after picking up changes made
        behind the store's back."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.messages(name))

    async def changes_since(
        self, ref: MailboxRef, folder: str, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]:
        """(messages whose modseq is above `modseq`, UIDs expunged after it): what
        CONDSTORE's CHANGEDSINCE and QRESYNC's VANISHED (EARLIER) need (RFC 7162 §3.1.4.1,
        §3.2.5.2)."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.changes_since(name, modseq))

    async def read_message(self, ref: MailboxRef, folder: str, uid: int) -> bytes:
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.read_message(name, uid))

    async def summaries(
        self, ref: MailboxRef, folder: str, uids: Sequence[int]
    ) -> list[CachedSummary]:
        """ENVELOPE, BODYSTRUCTURE and header fields cached at delivery (computed now and
        cached for files the store did not write itself)."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.summaries(name, list(uids)))

    async def set_flags(
        self,
        ref: MailboxRef,
        folder: str,
        uids: Sequence[int],
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
    ) -> list[MessageMeta]:
        """Change flags by IMAP name ("\\Seen", "$Forwarded", keywords). Returns the
        resulting state of every listed UID that exists; only messages whose flags really
        changed get a new modseq (RFC 7162 §3.2)."""
        name = canonical_folder(folder)
        add_letters, add_kws = split_flags(add)
        del_letters, del_kws = split_flags(remove)
        exact = None if replace is None else split_flags(replace)

        def update(letters: str, keywords: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
            if exact is not None:
                return exact
            kept = (set(letters) | set(add_letters)) - set(del_letters)
            return "".join(sorted(kept)), remove_keywords(
                merge_keywords(keywords, add_kws), del_kws
            )

        return await self._run(ref, lambda root: root.set_flags(name, list(uids), update))

    async def expunge(self, ref: MailboxRef, folder: str, uids: Sequence[int]) -> list[int]:
        """Remove the messages; returns the UIDs that were removed, ascending."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.expunge(name, list(uids)))

    # -- folders ------------------------------------------------------------------------

    async def folders(self, ref: MailboxRef) -> list[FolderInfo]:
        """Every folder, INBOX first, with counts (after picking up changes on disk)."""
        return await self._run(ref, Mailbox.folders)

    async def folder_info(self, ref: MailboxRef, folder: str) -> FolderInfo:
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.folder_info(name))

    async def create_folder(
        self, ref: MailboxRef, name: str, special_use: str | None = None
    ) -> None:
        folder = canonical_folder(name)
        await self._run(ref, lambda root: root.create_folder(folder, special_use))

    async def delete_folder(self, ref: MailboxRef, name: str) -> None:
        folder = canonical_folder(name)
        await self._run(ref, lambda root: root.delete_folder(folder))

    async def rename_folder(self, ref: MailboxRef, old: str, new: str) -> None:
        src, dst = canonical_folder(old), canonical_folder(new)
        await self._run(ref, lambda root: root.rename_folder(src, dst))

    async def set_subscribed(self, ref: MailboxRef, name: str, subscribed: bool) -> None:
        folder = canonical_folder(name)
        await self._run(ref, lambda root: root.set_subscribed(folder, subscribed))

    async def reindex(self, ref: MailboxRef) -> None:
        """Rebuild the root's index from its Maildir, keeping every UID and UIDVALIDITY
        (and, from the old index, keywords, subscriptions and special-use)."""
        await self._run(ref, Mailbox.reindex)

    # -- notifications ------------------------------------------------------------------

    def subscribe(
        self, ref: MailboxRef, folder: str | None, callback: ChangeCallback
    ) -> Subscription:
        """Call `callback(change)` on the running event loop after each committed change
        of `folder` (None: every folder of the root). Call from the event loop."""
        name = None if folder is None else canonical_folder(folder)
        return self._notifier.subscribe(
            os.fspath(self.maildir_path(ref)), name, asyncio.get_running_loop(), callback
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, True)
        self._roots.close_all()


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []


def _ref(kind: MailboxKind, name: str, domain: str | None) -> list[MailboxRef]:
    try:
        return [MailboxRef(kind, name, domain)]
    except InvalidName:
        log.warning("store.skipped_root kind=%s name=%r domain=%r", kind, name, domain)
        return []
