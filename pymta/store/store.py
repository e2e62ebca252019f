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
from typing import Any, TypeVar

from .dirsync import DirSyncer
from .errors import InvalidName, StoreClosed, StoreUnavailable
from .flags import merge_keywords, normalize_letters, remove_keywords, split_flags
from .mailbox import Mailbox, NewMessage
from .maildir import Fsync, UniqueNames
from .model import (
    AppendItem,
    CachedSummary,
    CopyResult,
    Delivered,
    FlagsResult,
    FolderInfo,
    Listing,
    MailboxKind,
    MailboxRef,
    MessageMeta,
    Usage,
)
from .names import INBOX, canonical_folder, folder_dirname
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

    def _with_two_roots(self, a: Path, b: Path, fn: Callable[[Mailbox, Mailbox], T]) -> T:
        first = self._roots.acquire(a)
        try:
            second = self._roots.acquire(b)
            try:
                return fn(first, second)
            finally:
                self._roots.release(b, second)
        except sqlite3.Error as exc:
            # Which of the two indexes failed is unknown here: neither is condemned; the
            # next request to the damaged one finds out on its own.
            log.error("store.index_error roots=%s,%s error=%r", a, b, exc)
            raise StoreUnavailable("mailbox index unavailable") from exc
        finally:
            self._roots.release(a, first)

    async def _run2(self, a: MailboxRef, b: MailboxRef, fn: Callable[[Mailbox, Mailbox], T]) -> T:
        if self._closed:
            raise StoreClosed("store is closed")
        paths = self.maildir_path(a), self.maildir_path(b)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_two_roots, *paths, fn)

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

    async def append_many(
        self,
        ref: MailboxRef,
        folder: str,
        items: Sequence[AppendItem],
        *,
        quota_bytes: int | None = None,
    ) -> list[Delivered]:
        """APPEND / MULTIAPPEND (RFC 3502): store every message or none, with consecutive
        UIDs in the order given (APPENDUID, RFC 4315 §3: `uidvalidity` and the UIDs of
        the result). Durable on return, like `deliver`. A message with flags goes into
        cur/ with them, one without into new/; the internal date becomes the file's mtime
        (as Dovecot reads it) and the index's. With `quota_bytes` (None or 0: unlimited),
        QuotaExceeded when the whole batch would not fit (IMAP NO [OVERQUOTA])."""
        name = canonical_folder(folder)
        messages: list[NewMessage] = []
        for item in items:
            letters, keywords = split_flags(item.flags)
            messages.append(NewMessage(item.raw, letters, keywords, item.internal_date))
        if not messages:
            return []
        return await self._run(ref, lambda root: root.append_many(name, messages, quota_bytes))

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

    async def vanished_since(self, ref: MailboxRef, folder: str, modseq: int) -> list[int] | None:
        """UIDs expunged after `modseq` (RFC 7162 §3.2.10.1 VANISHED (EARLIER)), ascending;
        None when the tombstones no longer reach back that far (they are bounded, and a
        rebuilt index starts without): the caller then reports every UID of the range it
        asked about that does not exist, which RFC 7162 §3.2.6 allows."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.vanished_since(name, modseq))

    async def listing(
        self, ref: MailboxRef, folder: str, *, vanished_since: int | None = None
    ) -> Listing:
        """The folder in compact columns for SELECT / EXAMINE (one query, after picking up
        changes on disk): UIDs, flags, keywords, modseqs, counts, the first unseen message
        and the keywords in use; with `vanished_since` also the UIDs expunged after that
        modseq, read in the same snapshot (QRESYNC, RFC 7162 §3.2.5)."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.listing(name, vanished_since))

    async def fetch_rows(
        self,
        ref: MailboxRef,
        folder: str,
        uids: Sequence[int] | None,
        columns: Sequence[str],
    ) -> list[tuple[Any, ...]]:
        """One plain tuple per existing message of `uids` (None: all), ascending UID, with
        the `columns` asked for, in that order (ValueError for an unknown one):

        - "uid", "modseq", "size" (int), "internal_date" (float, seconds since the epoch);
        - "flags": Maildir letters; "keywords": space-separated, as stored;
        - "file": "new/<name>" or "cur/<name>" relative to `folder_path(ref, folder)`
          (valid until the next flag change; `read_message` follows renames);
        - "envelope", "body", "bodystructure": the IMAP wire bytes of FETCH ENVELOPE, BODY
          and BODYSTRUCTURE (RFC 9051 §7.5.2), ready to be sent;
        - "envelope_json", "bodystructure_json": the cached summary (JSON text);
          "subject", "message_id" (raw header text), "header_bytes" (int);
        - "search_subject", "search_from", "search_to", "search_cc", "search_bcc",
          "search_date", "search_in_reply_to", "search_message_id": the ENVELOPE field
          as SEARCH compares it (`mime.text.search_forms`: decoded, case-folded; None
          when absent); "sent_day" (int): the Date: header's day, None if unreadable.

        Summary columns of messages the store did not write (adopted files, a rebuilt
        index) are computed on first request and kept; they are None only for a message
        whose file vanished before that (the next listing expunges it). Picks up no
        changes on disk: the UIDs come from a listing that did."""
        name = canonical_folder(folder)
        cols = tuple(columns)
        wanted = None if uids is None else list(uids)
        return await self._run(ref, lambda root: root.fetch_rows(name, wanted, cols))

    def folder_path(self, ref: MailboxRef, folder: str) -> Path:
        """The folder's directory: "file" columns of `fetch_rows` are relative to it."""
        name = canonical_folder(folder)
        root = self.maildir_path(ref)
        return root if name == INBOX else root / folder_dirname(name)

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
        unchanged_since: int | None = None,
    ) -> FlagsResult:
        """Change flags by IMAP name ("\\Seen", "$Forwarded", keywords). Only messages
        whose flags really changed get a new modseq (RFC 7162 §3.2). With
        `unchanged_since`, a message whose modseq is above it is not touched and its UID
        is returned in `failed` (RFC 7162 §3.1.3: UNCHANGEDSINCE 0 fails for every
        message). `updated` holds the resulting state of every other listed UID that
        exists, ascending."""
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

        wanted = list(uids)
        updated, failed = await self._run(
            ref, lambda root: root.set_flags(name, wanted, update, unchanged_since)
        )
        return FlagsResult(updated, failed)

    async def expunge(self, ref: MailboxRef, folder: str, uids: Sequence[int]) -> list[int]:
        """Remove the messages; returns the UIDs that were removed, ascending."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.expunge(name, list(uids)))

    async def copy(
        self,
        ref: MailboxRef,
        src_folder: str,
        uids: Sequence[int],
        dst_ref: MailboxRef,
        dst_folder: str,
        *,
        quota_bytes: int | None = None,
    ) -> CopyResult:
        """COPY (RFC 9051 §6.4.7): the messages of `uids` that exist go to `dst_folder` of
        `dst_ref` (the same root or another) with their flags, keywords and internal date,
        under new UIDs given in source UID order (COPYUID, RFC 4315 §3). Hard links when
        the file system allows, else copies. Durable on return. `quota_bytes` is the
        destination root's quota (QuotaExceeded: nothing copied)."""
        src, dst = canonical_folder(src_folder), canonical_folder(dst_folder)
        wanted = list(uids)
        return await self._run2(
            ref, dst_ref, lambda s, d: d.copy_from(s, src, wanted, dst, quota_bytes)
        )

    async def move(
        self,
        ref: MailboxRef,
        src_folder: str,
        uids: Sequence[int],
        dst_ref: MailboxRef,
        dst_folder: str,
        *,
        quota_bytes: int | None = None,
    ) -> CopyResult:
        """MOVE (RFC 6851): like `copy`, then the source messages are expunged (their UIDs
        in `pairs`). Within one root the files are renamed into the destination (usage
        unchanged, no quota check); across roots it is copy, then expunge. Never loses a
        message if interrupted (at worst it is left in both folders). Subscribers hear
        "exists" in the destination, then "expunge" in the source."""
        src, dst = canonical_folder(src_folder), canonical_folder(dst_folder)
        wanted = list(uids)
        if self.maildir_path(ref) == self.maildir_path(dst_ref) and src != dst:
            return await self._run(ref, lambda root: root.move_within(src, wanted, dst))
        result = await self.copy(ref, src, wanted, dst_ref, dst, quota_bytes=quota_bytes)
        await self.expunge(ref, src, [old for old, _ in result.pairs])
        return result

    # -- folders ------------------------------------------------------------------------

    async def folders(self, ref: MailboxRef) -> list[FolderInfo]:
        """Every folder, INBOX first, with counts and `children` (LIST, RFC 5258 §4),
        after picking up changes on disk."""
        return await self._run(ref, Mailbox.folders)

    async def folder_info(self, ref: MailboxRef, folder: str) -> FolderInfo:
        """STATUS (RFC 9051 §6.3.11, SIZE RFC 8438, HIGHESTMODSEQ RFC 7162) from the index:
        two stats of the folder's directories, no file is read."""
        name = canonical_folder(folder)
        return await self._run(ref, lambda root: root.folder_info(name))

    async def create_folder(
        self, ref: MailboxRef, name: str, special_use: str | None = None
    ) -> None:
        """RFC 9051 §6.3.4, creating missing superior names ("A" for "A.B") as well."""
        folder = canonical_folder(name)
        await self._run(ref, lambda root: root.create_folder(folder, special_use))

    async def delete_folder(self, ref: MailboxRef, name: str) -> None:
        folder = canonical_folder(name)
        await self._run(ref, lambda root: root.delete_folder(folder))

    async def rename_folder(self, ref: MailboxRef, old: str, new: str) -> None:
        """RFC 9051 §6.3.6: inferior names move along, missing superior names of `new` are
        created, renaming INBOX moves its messages into a new folder."""
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
