"""Reading a folder: listings, fetch rows, summaries, changes since a modseq, message bytes.

Everything here only reads the Maildir, apart from the rescans that pick up changes made
behind the store's back and the summaries filled in on first request (cache.py). The
fast paths (`listing`, `fetch_rows`) run one SQL query and hand out plain tuples, arrays
and shared strings rather than one object per message: a 20,000-message folder is a few
milliseconds of work (benchmarks/store_imap.py).
"""

from __future__ import annotations

import json
import logging
from array import array
from collections.abc import Sequence
from typing import Any

from .cache import fill_summaries
from .errors import MessageNotFound
from .folders import FolderTree
from .index import MESSAGE_FIELDS, SUMMARY_FIELDS, FolderRow, SummaryColumns
from .model import CachedSummary, Listing, MessageMeta

log = logging.getLogger(__name__)

# Columns `fetch_rows` can return (see `Store.fetch_rows` for what each holds).
FETCH_COLUMNS = frozenset(MESSAGE_FIELDS) | frozenset(SUMMARY_FIELDS)


class Views(FolderTree):
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

    def vanished_since(self, folder: str, modseq: int) -> list[int] | None:
        self._lookup(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                return self._vanished(row, modseq)

    def _vanished(self, row: FolderRow, modseq: int) -> list[int] | None:
        """Tombstones above `modseq`, or None when some may have been dropped. Call with
        the folder lock held since `row` was read: only expunges (under that lock) raise
        the floor."""
        if modseq < row.vanished_floor:
            return None
        return self.index.expunged_since(row.id, modseq)

    def listing(self, folder: str, vanished_since: int | None) -> Listing:
        self._lookup(folder)
        with self.folder_lock(folder):
            row = self._synced(folder)
            with self.index.reading():
                rows = self.index.listing(row.id)
                vanished = None if vanished_since is None else self._vanished(row, vanished_since)
        return _listing(folder, row.uidvalidity, row.uidnext, row.highestmodseq, rows, vanished)

    def fetch_rows(
        self, folder: str, uids: Sequence[int] | None, columns: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        unknown = [c for c in columns if c not in FETCH_COLUMNS]
        if unknown or not columns:
            raise ValueError(f"unknown fetch columns {unknown!r}")
        row = self._lookup(folder)
        fdir = self.folder_dir(folder)
        if not any(c in SUMMARY_FIELDS for c in columns):
            with self.index.reading():
                return self.index.fetch(row.id, uids, columns)
        # Fill in missing summaries without holding the folder lock (it may read many
        # files); under the lock, make sure nothing new came in without one (a rescan
        # adopts files without summaries) before the query. What cannot be filled (a
        # file gone behind our back) stays None.
        attempts = 0
        while True:
            fill_summaries(self.index, row, fdir, uids)
            attempts += 1
            with self.folder_lock(folder), self.index.reading():
                if attempts < 3 and self.index.uncached(row.id, uids):
                    continue
                return self.index.fetch(row.id, uids, columns)

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
        fill_summaries(self.index, row, self.folder_dir(folder), uids)
        with self.index.reading():
            pairs = self.index.summaries(row.id, uids)
        return [_cached(m.uid, cols) for m, cols in pairs if cols is not None]


def _listing(
    folder: str,
    uidvalidity: int,
    uidnext: int,
    highestmodseq: int,
    rows: list[tuple[int, str, str, int]],
    vanished: list[int] | None,
) -> Listing:
    if rows:
        uid_col, flag_col, kw_col, modseq_col = zip(*rows, strict=True)
    else:
        uid_col = flag_col = kw_col = modseq_col = ()
    # Share equal strings and keyword tuples: a folder has few distinct combinations.
    flag_objs: dict[str, str] = {}
    flags = [flag_objs.setdefault(f, f) for f in flag_col]
    kw_objs: dict[str, tuple[str, ...]] = {"": ()}
    keywords = [kw_objs.get(k) or kw_objs.setdefault(k, tuple(k.split())) for k in kw_col]
    is_unseen = {f: "S" not in f for f in flag_objs}
    unseen_marks = list(map(is_unseen.__getitem__, flags))
    unseen = sum(unseen_marks)
    first_unseen = unseen_marks.index(True) + 1 if unseen else None
    is_deleted = {f: "T" in f for f in flag_objs}
    deleted = sum(map(is_deleted.__getitem__, flags)) if any(is_deleted.values()) else 0
    in_use: dict[str, str] = {}
    for kws in kw_objs.values():
        for k in kws:
            in_use.setdefault(k.lower(), k)
    return Listing(
        folder,
        uidvalidity,
        uidnext,
        highestmodseq,
        array("I", uid_col),
        flags,
        keywords,
        array("q", modseq_col),
        unseen,
        first_unseen,
        deleted,
        tuple(sorted(in_use.values(), key=str.lower)),
        vanished,
    )


def _cached(uid: int, cols: SummaryColumns) -> CachedSummary:
    envelope: list[object] | None = None if cols.envelope is None else json.loads(cols.envelope)
    body: list[object] | None = (
        None if cols.bodystructure is None else json.loads(cols.bodystructure)
    )
    return CachedSummary(uid, envelope, body, cols.message_id, cols.subject, cols.header_bytes)
