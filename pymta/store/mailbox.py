"""Message operations of a mailbox root: deliver and append, flags, expunge.

Delivery order (the durability and UID-order invariants of the package): write the file
to tmp/ and fsync it with no lock held; under the folder lock take the next UID, rename
the file into new/ (cur/ with flags), insert the index row and commit, publish; then,
with the lock released, wait for the group-committed fsync of the directory. Only then
does `deliver` return. `append_many` does the same for several messages at once: all of
them get consecutive UIDs in one transaction, or none is stored (RFC 3502 §6.3.11).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import summary_columns
from .errors import FolderNotFound, QuotaExceeded
from .flags import LETTERS
from .index import MessageRow, SummaryColumns
from .maildir import (
    INFO_SEPARATOR,
    UIDNEXT_FILE,
    Fsync,
    MaildirName,
    link_or_copy,
    wire_size_of_bytes,
    write_file,
    write_int_file,
)
from .model import Change, CopyResult, Delivered, MessageMeta, Usage
from .views import Views

log = logging.getLogger(__name__)

# (letters, keywords) -> (letters, keywords): what a STORE does to one message.
FlagUpdate = Callable[[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Pending:
    """A message written and fsynced in tmp/ (as `unique`), waiting for its UID."""

    unique: str  # the file name in tmp/, the base without U=
    subdir: str
    letters: str
    keywords: tuple[str, ...]
    internal_date: float
    size: int
    summary: SummaryColumns | None


@dataclass(frozen=True)
class NewMessage:
    raw: bytes
    letters: str  # validated Maildir letters
    keywords: tuple[str, ...]
    internal_date: float | None


class Mailbox(Views):
    """A mailbox root with everything the store does to it (see root.py for the locks)."""

    def usage(self) -> Usage:
        with self.index.reading():
            size, count = self.index.usage()
        return Usage(size, count)

    def check_quota(self, size: int, quota_bytes: int | None) -> None:
        """RFC 9208 §4.3: refuse what would take the root over its quota (None, 0: none)."""
        if quota_bytes and self.usage().bytes + size > quota_bytes:
            raise QuotaExceeded(f"{size} bytes over a quota of {quota_bytes}")

    def deliver(
        self,
        folder: str,
        raw: bytes,
        *,
        letters: str,
        keywords: tuple[str, ...],
        internal_date: float | None,
        quota_bytes: int | None,
    ) -> Delivered:
        [delivered] = self.append_many(
            folder, [NewMessage(raw, letters, keywords, internal_date)], quota_bytes
        )
        return delivered

    def append_many(
        self, folder: str, items: Sequence[NewMessage], quota_bytes: int | None
    ) -> list[Delivered]:
        """Store every message or none (RFC 3502 §6.3.11), with consecutive UIDs."""
        self._lookup(folder)
        # Sizes are those of the CRLF form IMAP serves (RFC 9051 §2.3.4; root.py).
        sizes = [wire_size_of_bytes(item.raw) for item in items]
        self.check_quota(sum(sizes), quota_bytes)
        fdir = self.folder_dir(folder)
        staged: list[tuple[Path, Pending]] = []
        try:
            for item, size in zip(items, sizes, strict=True):
                unique = f"{self._names.next()},S={len(item.raw)}"
                tmp = fdir / "tmp" / unique
                try:
                    mtime = write_file(tmp, item.raw, self._fsync, item.internal_date)
                except FileNotFoundError as exc:
                    raise FolderNotFound(folder) from exc
                # RFC 9051 §6.3.12: APPEND with flags lands in cur/ with its info; a plain
                # delivery is "new" mail in the Maildir sense. The internal date is the
                # file's mtime, as Dovecot reads it.
                subdir = "cur" if item.letters else "new"
                summary = summary_columns(item.raw)
                pending = Pending(unique, subdir, item.letters, item.keywords, mtime, size, summary)
                staged.append((tmp, pending))
            delivered = self.place(folder, staged)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        # Durable only now: the files were fsynced, their directory entries are here
        # (group commit).
        for directory in sorted({d.path.parent for d in delivered}):
            self._dirsync.sync(directory)
        return delivered

    def place(self, folder: str, staged: Sequence[tuple[Path, Pending]]) -> list[Delivered]:
        """Under the folder lock: the next UIDs, rename into place, index rows, publish.
        On failure nothing is placed (the files renamed so far are removed again); the
        caller still owns the tmp/ files."""
        if not staged:
            return []
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._row(folder)
            subdirs = sorted({p.subdir for _, p in staged})
            trusted = self._trusted(fdir, row, subdirs)
            modseq = row.highestmodseq + 1
            placed: list[Path] = []
            rows: list[tuple[MessageRow, SummaryColumns | None]] = []
            try:
                for offset, (tmp, p) in enumerate(staged):
                    uid = row.uidnext + offset
                    name = MaildirName(p.unique, p.letters, "", None, p.subdir == "cur")
                    name = name.with_uid(uid)
                    target = fdir / p.subdir / name.filename()
                    os.rename(tmp, target)
                    placed.append(target)
                    msg = MessageRow(
                        uid,
                        name.base,
                        p.subdir,
                        target.name,
                        p.letters,
                        p.keywords,
                        modseq,
                        p.internal_date,
                        p.size,
                    )
                    rows.append((msg, p.summary))
                mtimes = self._after(fdir, row, subdirs, trusted)
                with self.index.transaction():
                    self.index.insert_messages(row.id, rows)
                    self._update_folder(row, row.uidnext + len(rows), modseq, mtimes)
                    self.index.add_usage(sum(m.size for m, _ in rows), len(rows))
            except BaseException:
                for target in placed:
                    with contextlib.suppress(OSError):
                        os.unlink(target)
                raise
            uids = tuple(m.uid for m, _ in rows)
            self._publish([Change(folder, "exists", uids, modseq, row.uidvalidity)])
        return [
            Delivered(m.uid, row.uidvalidity, folder, path, m.size)
            for (m, _), path in zip(rows, placed, strict=True)
        ]

    def set_flags(
        self,
        folder: str,
        uids: Sequence[int],
        update: FlagUpdate,
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageMeta], list[int]]:
        """Apply `update(letters, keywords) -> (letters, keywords)` to each message; a
        message whose letters change is renamed (into cur/, with the new info). With
        `unchanged_since`, messages whose modseq is above it are left alone and listed
        (RFC 7162 §3.1.3). Returns (the state of the others, the refused UIDs)."""
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                msgs = self.index.message_tuples(row.id, uids)
            modseq = row.highestmodseq + 1
            trusted = self._trusted(fdir, row, ("new", "cur"))
            flagged = _FlagRenamer(fdir, update, modseq, unchanged_since).run(msgs)
            if flagged.changed or flagged.lost:
                mtimes = self._after(fdir, row, ("new", "cur"), trusted and not flagged.lost)
                with self.index.transaction():
                    self.index.update_messages(row.id, flagged.changed)
                    hms = modseq if flagged.changed else row.highestmodseq
                    # A file that was not where the index said: look at the disk next time.
                    self.index.update_folder(
                        row.id,
                        uidnext=row.uidnext,
                        highestmodseq=hms,
                        new_mtime_ns=mtimes.new_mtime_ns,
                        cur_mtime_ns=mtimes.cur_mtime_ns,
                        settled=mtimes.settled and not flagged.lost,
                    )
                if flagged.changed:
                    uids_changed = tuple(c[0] for c in flagged.changed)
                    self._publish([Change(folder, "flags", uids_changed, modseq, row.uidvalidity)])
        return flagged.result, flagged.failed

    # -- copy and move --------------------------------------------------------------------

    def copy_from(
        self,
        src: Mailbox,
        src_folder: str,
        uids: Sequence[int],
        folder: str,
        quota_bytes: int | None,
    ) -> CopyResult:
        """COPY (RFC 9051 §6.4.7) from a folder of `src` (this root or another) into
        `folder`: flags, keywords, internal date and cached summary go along; the new UIDs
        are consecutive, in source UID order (RFC 4315 §3 COPYUID). Durable on return."""
        srow = src._lookup(src_folder)
        drow = self._lookup(folder)
        with src.index.reading():
            items = src.index.summaries(srow.id, uids)
        self.check_quota(sum(m.size for m, _ in items), quota_bytes)
        sdir, ddir = src.folder_dir(src_folder), self.folder_dir(folder)
        staged: list[tuple[Path, Pending]] = []
        sources: list[int] = []
        try:
            for m, summary in items:
                tmp = ddir / "tmp" / f"{self._names.next()},S={m.size}"
                found = src._stage_copy(src_folder, sdir, m, tmp, self._fsync)
                if found is None:
                    continue  # expunged meanwhile: not copied, not in COPYUID
                subdir = "cur" if found.flags or found.subdir == "cur" else "new"
                pending = Pending(
                    tmp.name,
                    subdir,
                    found.flags,
                    found.keywords,
                    found.internal_date,
                    found.size,
                    summary,
                )
                staged.append((tmp, pending))
                sources.append(m.uid)
            delivered = self.place(folder, staged)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        for directory in sorted({d.path.parent for d in delivered}):
            self._dirsync.sync(directory)
        pairs = [(s, d.uid) for s, d in zip(sources, delivered, strict=True)]
        log.info(
            "store.copied root=%s from=%s to=%s count=%d", self.path, src_folder, folder, len(pairs)
        )
        return CopyResult(drow.uidvalidity, pairs)

    def _stage_copy(
        self, folder: str, sdir: Path, m: MessageRow, tmp: Path, fsync: Fsync
    ) -> MessageRow | None:
        """Link (or copy) the file of `m` to `tmp`. A file renamed meanwhile (a flag change
        by another session or behind our back) is looked up again after a rescan. Returns
        the row as copied, None if the message is gone."""
        for attempt in range(2):
            try:
                link_or_copy(sdir / m.subdir / m.filename, tmp, fsync, m.internal_date)
                return m
            except FileNotFoundError:
                if not tmp.parent.is_dir():
                    raise
                if attempt == 0:
                    with self.folder_lock(folder):
                        row = self._synced(folder, force=True)
                        with self.index.reading():
                            again = self.index.messages(row.id, [m.uid])
                    if not again:
                        return None
                    m = again[0]
        return None

    def move_within(self, src_folder: str, uids: Sequence[int], folder: str) -> CopyResult:
        """MOVE (RFC 6851) between two folders of this root by renaming each file into the
        destination under a new name that carries its new UID. Never loses a message: a
        rename is atomic, and after a crash before the index commit the next access finds
        the files where they are (gone from the source, adopted with their U= in the
        destination). Usage does not change."""
        self._lookup(src_folder)
        self._lookup(folder)
        with contextlib.ExitStack() as stack:
            with self.tree_lock:  # several folder locks: taken in name order, under tree_lock
                for name in sorted({src_folder, folder}):
                    stack.enter_context(self.folder_lock(name))
            result = self._move_locked(src_folder, uids, folder)
        if result.pairs:  # durable on return: both directories (group commit, unlocked)
            for directory in (self.folder_dir(folder), self.folder_dir(src_folder)):
                for sub in ("new", "cur"):
                    self._dirsync.sync(directory / sub)
        log.info(
            "store.moved root=%s from=%s to=%s count=%d",
            self.path,
            src_folder,
            folder,
            len(result.pairs),
        )
        return result

    def _move_locked(self, src_folder: str, uids: Sequence[int], folder: str) -> CopyResult:
        srow, drow = self._synced(src_folder), self._synced(folder)
        sdir, ddir = self.folder_dir(src_folder), self.folder_dir(folder)
        with self.index.reading():
            items = self.index.summaries(srow.id, uids)
            top = self.index.max_uid(srow.id)
        if not items:
            return CopyResult(drow.uidvalidity, [])
        if items[-1][0].uid == top:  # the UID high-water mark first, as in expunge
            write_int_file(sdir / UIDNEXT_FILE, srow.uidnext, self._fsync)
        subdirs = ("new", "cur")
        s_trusted = self._trusted(sdir, srow, subdirs)
        d_trusted = self._trusted(ddir, drow, subdirs)
        smodseq, dmodseq = srow.highestmodseq + 1, drow.highestmodseq + 1
        gone: list[MessageRow] = []
        added: list[tuple[MessageRow, SummaryColumns | None]] = []
        lost = False
        for m, summary in items:
            uid = drow.uidnext + len(added)
            cur = m.subdir == "cur" or bool(m.flags)
            name = MaildirName(f"{self._names.next()},S={m.size}", m.flags, "", None, cur)
            name = name.with_uid(uid)
            subdir = "cur" if cur else "new"
            try:
                os.rename(sdir / m.subdir / m.filename, ddir / subdir / name.filename())
            except FileNotFoundError:
                lost = True  # renamed or removed behind our back: left to a rescan
                continue
            gone.append(m)
            new = MessageRow(
                uid,
                name.base,
                subdir,
                name.filename(),
                m.flags,
                m.keywords,
                dmodseq,
                m.internal_date,
                m.size,
            )
            added.append((new, summary))
        if not gone:
            return CopyResult(drow.uidvalidity, [])
        s_mtimes = self._after(sdir, srow, subdirs, s_trusted and not lost)
        d_mtimes = self._after(ddir, drow, subdirs, d_trusted)
        with self.index.transaction():
            self.index.delete_messages(srow.id, gone, smodseq)
            self.index.insert_messages(drow.id, added)
            self.index.add_usage(sum(m.size for m in gone), len(gone))
            self._update_folder(srow, srow.uidnext, smodseq, s_mtimes)
            self._update_folder(drow, drow.uidnext + len(added), dmodseq, d_mtimes)
        new_uids = tuple(m.uid for m, _ in added)
        old_uids = tuple(m.uid for m in gone)
        self._publish(
            [
                Change(folder, "exists", new_uids, dmodseq, drow.uidvalidity),
                Change(src_folder, "expunge", old_uids, smodseq, srow.uidvalidity),
            ]
        )
        pairs = [(old.uid, new.uid) for old, (new, _) in zip(gone, added, strict=True)]
        return CopyResult(drow.uidvalidity, pairs)

    def expunge(self, folder: str, uids: Sequence[int]) -> list[int]:
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                msgs = self.index.messages(row.id, uids)
                top = self.index.max_uid(row.id)
            if not msgs:
                return []
            # UIDs are never reused, even if the index is lost: before the highest UID's
            # file goes, the high-water mark is on disk (a rebuild starts above it).
            if msgs[-1].uid == top:
                write_int_file(fdir / UIDNEXT_FILE, row.uidnext, self._fsync)
            touched = sorted({m.subdir for m in msgs})
            trusted = self._trusted(fdir, row, touched)
            for m in msgs:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(fdir / m.subdir / m.filename)
            mtimes = self._after(fdir, row, touched, trusted)
            modseq = row.highestmodseq + 1
            with self.index.transaction():
                self.index.delete_messages(row.id, msgs, modseq)
                self._update_folder(row, row.uidnext, modseq, mtimes)
            gone = tuple(m.uid for m in msgs)
            self._publish([Change(folder, "expunge", gone, modseq, row.uidvalidity)])
        for sub in touched:
            self._dirsync.sync(fdir / sub)
        return list(gone)


# (uid, subdir, filename, letters, keywords as stored, modseq): one index update.
_Updated = tuple[int, str, str, str, str, int]


class _FlagRenamer:
    """One STORE over many messages: a tight loop (it runs once per message of a
    `STORE 1:*`), so the flag update and the new file name are computed once per distinct
    (flags, keywords) and info part, and renames go through directory descriptors."""

    def __init__(
        self, fdir: Path, update: FlagUpdate, modseq: int, unchanged_since: int | None
    ) -> None:
        self.fdir = fdir
        self.update = update
        self.modseq = modseq
        self.unchanged_since = unchanged_since
        self.result: list[MessageMeta] = []
        self.changed: list[_Updated] = []
        self.failed: list[int] = []
        self.lost = False  # a file was not where the index said (renamed behind our back)
        self._updates: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {}
        self._infos: dict[tuple[str, str], str] = {}

    def _new_state(self, flags: str, keywords: str) -> tuple[str, str, tuple[str, ...]]:
        state = self._updates.get((flags, keywords))
        if state is None:
            letters, kws = self.update(flags, tuple(keywords.split()))
            state = self._updates[(flags, keywords)] = (letters, " ".join(kws), kws)
        return state

    def _new_info(self, info: str, letters: str) -> str:
        """The Maildir rule: the info part after ":2," holds the flag letters in ASCII order;
        characters that are not our letters (Dovecot keywords a-z) are kept."""
        new = self._infos.get((info, letters))
        if new is None:
            kept = "".join(ch for ch in info if ch not in LETTERS)
            new = self._infos[(info, letters)] = "".join(sorted(set(letters + kept)))
        return new

    def run(self, msgs: Sequence[tuple[Any, ...]]) -> _FlagRenamer:
        fds = {
            sub: os.open(self.fdir / sub, os.O_RDONLY | os.O_DIRECTORY) for sub in ("new", "cur")
        }
        try:
            self._loop(msgs, fds)
        finally:
            for fd in fds.values():
                os.close(fd)
        return self

    def _loop(self, msgs: Sequence[tuple[Any, ...]], fds: dict[str, int]) -> None:
        rename, fdir, modseq, since = os.rename, self.fdir, self.modseq, self.unchanged_since
        cur_fd, result, changed = fds["cur"], self.result, self.changed
        for uid, _base, subdir, filename, flags, keywords, mseq, idate, size in msgs:
            if since is not None and mseq > since:
                self.failed.append(uid)
                continue
            letters, new_keywords, kws = self._new_state(flags, keywords)
            if letters == flags and new_keywords == keywords:
                meta = MessageMeta(uid, flags, kws, mseq, idate, size, fdir, f"{subdir}/{filename}")
                result.append(meta)
                continue
            if letters != flags:
                base, _, info = filename.partition(INFO_SEPARATOR)
                new_name = f"{base}{INFO_SEPARATOR}{self._new_info(info, letters)}"
                try:
                    rename(filename, new_name, src_dir_fd=fds[subdir], dst_dir_fd=cur_fd)
                except FileNotFoundError:
                    self.lost = True  # renamed or removed behind our back; a rescan tells
                    continue
                subdir, filename = "cur", new_name
            result.append(
                MessageMeta(uid, letters, kws, modseq, idate, size, fdir, f"{subdir}/{filename}")
            )
            changed.append((uid, subdir, filename, letters, new_keywords, modseq))
