"""Message operations of a mailbox root: deliver, list, read, flags, expunge.

Delivery order (the durability and UID-order invariants of the package): write the file
to tmp/ and fsync it with no lock held; under the folder lock take the next UID, rename
the file into new/ (cur/ with flags), insert the index row and commit, publish; then,
with the lock released, wait for the group-committed fsync of the directory. Only then
does `deliver` return.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pymta.mime.summary import summarize

from .errors import FolderNotFound, MessageNotFound, QuotaExceeded
from .folders import FolderTree
from .index import MessageRow, SummaryColumns, db_text, to_json
from .maildir import UIDNEXT_FILE, MaildirName, write_file, write_int_file
from .model import CachedSummary, Change, Delivered, MessageMeta, Usage

log = logging.getLogger(__name__)

# (letters, keywords) -> (letters, keywords): what a STORE does to one message.
FlagUpdate = Callable[[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]


def summary_columns(raw: bytes) -> SummaryColumns:
    """`mime.summary.summarize` as index columns. A parser failure must not lose mail: the
    message is stored without a summary (computed again when asked for) and logged."""
    try:
        s = summarize(raw)
        return SummaryColumns(
            s.header_bytes,
            db_text(s.message_id),
            db_text(s.subject),
            to_json(s.envelope),
            to_json(s.bodystructure),
        )
    except Exception:
        log.exception("store.summary_failed size=%d", len(raw))
        return SummaryColumns(None, None, None, None, None)


@dataclass(frozen=True)
class _Pending:
    """A message written and fsynced in tmp/, waiting for its UID."""

    folder: str
    unique: str  # the file name in tmp/, the base without U=
    subdir: str
    letters: str
    keywords: tuple[str, ...]
    internal_date: float
    size: int
    summary: SummaryColumns


class Mailbox(FolderTree):
    """A mailbox root with everything the store does to it (see root.py for the locks)."""

    def usage(self) -> Usage:
        with self.index.reading():
            size, count = self.index.usage()
        return Usage(size, count)

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
        self._lookup(folder)
        if quota_bytes and self.usage().bytes + len(raw) > quota_bytes:
            raise QuotaExceeded(f"{len(raw)} bytes over a quota of {quota_bytes}")
        fdir = self.folder_dir(folder)
        unique = f"{self._names.next()},S={len(raw)}"
        tmp = fdir / "tmp" / unique
        try:
            mtime = write_file(tmp, raw, self._fsync, internal_date)
        except FileNotFoundError as exc:
            raise FolderNotFound(folder) from exc
        pending = _Pending(
            folder,
            unique,
            # RFC 9051 §6.3.12: APPEND with flags lands in cur/ with its info; a plain
            # delivery is "new" mail in the Maildir sense.
            "cur" if letters else "new",
            letters,
            keywords,
            mtime,
            len(raw),
            summary_columns(raw),
        )
        try:
            delivered = self._place(tmp, pending)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # Durable only now: the file was fsynced, its directory entry is here (group commit).
        self._dirsync.sync(delivered.path.parent)
        return delivered

    def _place(self, tmp: Path, p: _Pending) -> Delivered:
        """Under the folder lock: next UID, rename into place, index row, publish."""
        fdir = self.folder_dir(p.folder)
        with self.folder_lock(p.folder):
            row = self._row(p.folder)
            uid = row.uidnext
            name = MaildirName(p.unique, p.letters, "", None, p.subdir == "cur").with_uid(uid)
            target = fdir / p.subdir / name.filename()
            trusted = self._trusted(fdir, row, (p.subdir,))
            os.rename(tmp, target)
            modseq = row.highestmodseq + 1
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
            try:
                mtimes = self._after(fdir, row, (p.subdir,), trusted)
                with self.index.transaction():
                    self.index.insert_message(row.id, msg, p.summary)
                    self._update_folder(row, uid + 1, modseq, mtimes)
                    self.index.add_usage(p.size, 1)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(target)
                raise
            self._publish([Change(p.folder, "exists", (uid,), modseq, row.uidvalidity)])
        return Delivered(uid, row.uidvalidity, p.folder, target, p.size)

    def messages(self, folder: str) -> list[MessageMeta]:
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                rows = self.index.messages(row.id)
        return [self._meta(fdir, m) for m in rows]

    def changes_since(self, folder: str, modseq: int) -> tuple[list[MessageMeta], list[int]]:
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                rows = self.index.changed_since(row.id, modseq)
                gone = self.index.expunged_since(row.id, modseq)
        return [self._meta(fdir, m) for m in rows], gone

    def read_message(self, folder: str, uid: int) -> bytes:
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        for attempt in range(2):
            row = self._row(folder)
            with self.index.reading():
                found = self.index.messages(row.id, [uid])
            if not found:
                break
            try:
                return (fdir / found[0].subdir / found[0].filename).read_bytes()
            except FileNotFoundError:
                if attempt == 0:  # renamed or removed behind our back: look again
                    with self.folder_lock(folder):
                        self._synced(folder, force=True)
        raise MessageNotFound(f"{folder} uid {uid}")

    def summaries(self, folder: str, uids: Sequence[int]) -> list[CachedSummary]:
        """Cached summaries; those missing (files adopted from disk, a rebuilt index) are
        computed from the file now and stored."""
        row = self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.index.reading():
            pairs = self.index.summaries(row.id, uids)
        out: list[CachedSummary] = []
        computed: list[tuple[MessageRow, SummaryColumns]] = []
        for m, cols in pairs:
            if cols.envelope is None:
                try:
                    raw = (fdir / m.subdir / m.filename).read_bytes()
                except FileNotFoundError:
                    continue
                cols = summary_columns(raw)
                computed.append((m, cols))
            out.append(_cached(m.uid, cols))
        if computed:
            with self.index.transaction():
                for m, cols in computed:
                    self.index.set_summary(row.id, m.uid, m.base, cols)
        return out

    def set_flags(
        self,
        folder: str,
        uids: Sequence[int],
        update: FlagUpdate,
    ) -> list[MessageMeta]:
        """Apply `update(letters, keywords) -> (letters, keywords)` to each message; a
        message whose letters change is renamed (into cur/, with the new info)."""
        self._lookup(folder)
        fdir = self.folder_dir(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                msgs = self.index.messages(row.id, uids)
            modseq = row.highestmodseq + 1
            trusted = self._trusted(fdir, row, ("new", "cur"))
            result, changed, lost = self._rename_for_flags(fdir, msgs, update, modseq)
            if changed or lost:
                mtimes = self._after(fdir, row, ("new", "cur"), trusted and not lost)
                if lost:  # a file was not where the index said: look at the disk next time
                    mtimes = replace(mtimes, settled=False)
                with self.index.transaction():
                    for m in changed:
                        self.index.update_message(
                            row.id,
                            m.uid,
                            subdir=m.subdir,
                            filename=m.filename,
                            flags=m.flags,
                            keywords=m.keywords,
                            modseq=m.modseq,
                        )
                    hms = modseq if changed else row.highestmodseq
                    self._update_folder(row, row.uidnext, hms, mtimes)
                if changed:
                    uids_changed = tuple(m.uid for m in changed)
                    self._publish([Change(folder, "flags", uids_changed, modseq, row.uidvalidity)])
        return [self._meta(fdir, m) for m in sorted(result, key=lambda m: m.uid)]

    @staticmethod
    def _rename_for_flags(
        fdir: Path, msgs: Sequence[MessageRow], update: FlagUpdate, modseq: int
    ) -> tuple[list[MessageRow], list[MessageRow], bool]:
        """(every message's new state, the changed ones, whether a file was missing).
        Only letters live in the file name, so a keyword change renames nothing."""
        result: list[MessageRow] = []
        changed: list[MessageRow] = []
        lost = False
        for m in msgs:
            letters, keywords = update(m.flags, m.keywords)
            if letters == m.flags and keywords == m.keywords:
                result.append(m)
                continue
            subdir, filename = m.subdir, m.filename
            if letters != m.flags:
                subdir = "cur"
                filename = MaildirName.parse(m.filename).filename(letters)
                try:
                    os.rename(fdir / m.subdir / m.filename, fdir / subdir / filename)
                except FileNotFoundError:
                    lost = True  # renamed or removed behind our back; a rescan tells
                    continue
            new = replace(
                m, subdir=subdir, filename=filename, flags=letters, keywords=keywords, modseq=modseq
            )
            result.append(new)
            changed.append(new)
        return result, changed, lost

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


def _cached(uid: int, cols: SummaryColumns) -> CachedSummary:
    envelope: list[object] | None = None if cols.envelope is None else json.loads(cols.envelope)
    body: list[object] | None = (
        None if cols.bodystructure is None else json.loads(cols.bodystructure)
    )
    return CachedSummary(uid, envelope, body, cols.message_id, cols.subject, cols.header_bytes)
