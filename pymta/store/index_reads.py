"""The index's queries: everything `index.Index` reads, a base class it builds on.

Folders and their counts, messages (all, a UID set, those changed since a modseq),
summaries (all, or the ones still to be computed), `fetch` of named columns, tombstones,
meta values and usage. Like every `Index` method, these never lock: callers hold
`Index.lock` through `reading()` or `transaction()`.

A set of UIDs is fetched in as few index range scans as possible (`uid_ranges`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from .index_rows import (
    FOLDER_COLUMNS,
    MAX_UID,
    MESSAGE_COLUMNS,
    MESSAGE_FIELDS,
    SUMMARY_COLUMNS,
    SUMMARY_FIELDS,
    FolderRow,
    FolderStats,
    MessageRow,
    SummaryColumns,
    folder_from_row,
    message_from_row,
    summary_from_row,
)
from .schema import KEY_SHIFT as _KEY_SHIFT

_CHUNK = 500  # beyond this many UIDs, one range scan and a filter instead of lookups

_STATS = (
    "count(*), coalesce(sum(instr(flags, 'S') = 0), 0), coalesce(sum(size), 0), "
    "coalesce(sum(instr(flags, 'T') > 0), 0)"
)


def uid_ranges(uids: Sequence[int] | None) -> Iterator[tuple[int, int, frozenset[int] | None]]:
    """How to fetch a set of UIDs: (low, high, keep) pieces, keep None when every UID of
    the range is wanted. All UIDs: one range. A large set: one range and a filter (one
    scan beats hundreds of lookups); a small one: one exact range per run of UIDs."""
    if uids is None:
        yield 1, MAX_UID, None
        return
    wanted = sorted(set(uids))
    if not wanted:
        return
    if len(wanted) > _CHUNK:
        contiguous = wanted[-1] - wanted[0] + 1 == len(wanted)
        yield wanted[0], wanted[-1], None if contiguous else frozenset(wanted)
        return
    low = high = wanted[0]
    for uid in wanted[1:]:
        if uid != high + 1:
            yield low, high, None
            low = uid
        high = uid
    yield low, high, None


class IndexReads:
    """The read half of `index.Index` (which opens `_db`)."""

    _db: sqlite3.Connection

    # -- meta and usage -----------------------------------------------------------------

    def get_meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def usage(self) -> tuple[int, int]:
        row = self._db.execute("SELECT bytes, messages FROM usage WHERE id = 0").fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    # -- folders ------------------------------------------------------------------------

    def folder(self, name: str) -> FolderRow | None:
        row = self._db.execute(
            f"SELECT {FOLDER_COLUMNS} FROM folders WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else folder_from_row(row)

    def folders(self) -> list[FolderRow]:
        rows = self._db.execute(f"SELECT {FOLDER_COLUMNS} FROM folders ORDER BY name")
        return [folder_from_row(r) for r in rows]

    def folder_stats(self, folder_id: int) -> FolderStats:
        row = self._db.execute(
            f"SELECT {_STATS} FROM messages WHERE folder_id = ?", (folder_id,)
        ).fetchone()
        return FolderStats(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def all_folder_stats(self) -> dict[int, FolderStats]:
        rows = self._db.execute(f"SELECT folder_id, {_STATS} FROM messages GROUP BY folder_id")
        return {int(r[0]): FolderStats(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    # -- messages -----------------------------------------------------------------------

    def _select(
        self, columns: str, table: str, folder_id: int, uids: Sequence[int] | None, tail: str = ""
    ) -> list[tuple[Any, ...]]:
        """Rows of `table` (aliased m, holding folder_id and uid) for `uids`, UID order;
        the first column must be the UID (a sparse set is filtered on it)."""
        found: list[tuple[Any, ...]] = []
        for low, high, keep in uid_ranges(uids):
            rows = self._db.execute(
                f"SELECT {columns} FROM {table} WHERE m.folder_id = ? "
                f"AND m.uid BETWEEN ? AND ?{tail} ORDER BY m.uid",
                (folder_id, low, high),
            ).fetchall()
            found.extend(rows if keep is None else [r for r in rows if r[0] in keep])
        return found

    def messages(self, folder_id: int, uids: Sequence[int] | None = None) -> list[MessageRow]:
        """Rows in ascending UID order (all, or those of `uids` that exist)."""
        rows = self._select(MESSAGE_COLUMNS, "messages m", folder_id, uids)
        return [message_from_row(r) for r in rows]

    def message_tuples(self, folder_id: int, uids: Sequence[int] | None) -> list[tuple[Any, ...]]:
        """Like `messages`, as plain tuples in `MessageRow` field order with the keywords
        as stored (space-separated): for loops over many messages."""
        return self._select(MESSAGE_COLUMNS, "messages m", folder_id, uids)

    def listing(self, folder_id: int) -> list[tuple[int, str, str, int]]:
        """(uid, flags, keywords, modseq) of every message, ascending UID: SELECT's data."""
        return self._db.execute(
            "SELECT uid, flags, keywords, modseq FROM messages WHERE folder_id = ? ORDER BY uid",
            (folder_id,),
        ).fetchall()

    def fetch(
        self, folder_id: int, uids: Sequence[int] | None, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """Plain tuples of the named `MESSAGE_FIELDS` / `SUMMARY_FIELDS`, ascending UID."""
        exprs = [MESSAGE_FIELDS.get(f) or SUMMARY_FIELDS[f] for f in fields]
        lead = fields[0] == "uid"  # `_select` filters sparse sets on the first column
        if not lead:
            exprs.insert(0, "m.uid")
        table = "messages m"
        if any(f in SUMMARY_FIELDS for f in fields):
            table += f" LEFT JOIN summaries s ON s.key = (m.folder_id << {_KEY_SHIFT}) + m.uid"
        rows = self._select(", ".join(exprs), table, folder_id, uids)
        return rows if lead else [r[1:] for r in rows]

    def uncached(
        self, folder_id: int, uids: Sequence[int] | None
    ) -> list[tuple[MessageRow, SummaryColumns | None]]:
        """Messages whose summary row is missing or incomplete (through the partial index
        `messages_uncached`: no scan when there are none), with what is stored of it."""
        cols = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
        scols = ", ".join(f"s.{c.strip()}" for c in SUMMARY_COLUMNS.split(","))
        table = (
            f"messages m INDEXED BY messages_uncached LEFT JOIN summaries s "
            f"ON s.key = (m.folder_id << {_KEY_SHIFT}) + m.uid"
        )
        found: list[tuple[MessageRow, SummaryColumns | None]] = []
        for r in self._select(f"{cols}, s.key, {scols}", table, folder_id, uids, " AND cached = 0"):
            found.append(
                (message_from_row(r[:9]), None if r[9] is None else summary_from_row(r[10:]))
            )
        return found

    def summaries(
        self, folder_id: int, uids: Sequence[int] | None
    ) -> list[tuple[MessageRow, SummaryColumns | None]]:
        cols = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
        scols = ", ".join(f"s.{c.strip()}" for c in SUMMARY_COLUMNS.split(","))
        table = f"messages m LEFT JOIN summaries s ON s.key = (m.folder_id << {_KEY_SHIFT}) + m.uid"
        return [
            (message_from_row(r[:9]), None if r[9] is None else summary_from_row(r[10:]))
            for r in self._select(f"{cols}, s.key, {scols}", table, folder_id, uids)
        ]

    def changed_since(self, folder_id: int, modseq: int) -> list[MessageRow]:
        rows = self._db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE folder_id = ? AND modseq > ? "
            "ORDER BY uid",
            (folder_id, modseq),
        )
        return [message_from_row(r) for r in rows]

    def by_base(self, folder_id: int) -> dict[str, MessageRow]:
        rows = self._db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE folder_id = ?", (folder_id,)
        )
        return {m.base: m for m in map(message_from_row, rows)}

    def max_uid(self, folder_id: int) -> int:
        row = self._db.execute(
            "SELECT max(uid) FROM messages WHERE folder_id = ?", (folder_id,)
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def keywords_by_base(self, folder_id: int) -> dict[str, tuple[str, ...]]:
        rows = self._db.execute(
            "SELECT base, keywords FROM messages WHERE folder_id = ? AND keywords != ''",
            (folder_id,),
        )
        return {str(r[0]): tuple(str(r[1]).split()) for r in rows}

    def expunged_since(self, folder_id: int, modseq: int) -> list[int]:
        rows = self._db.execute(
            "SELECT uid FROM expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid",
            (folder_id, modseq),
        )
        return [int(r[0]) for r in rows]
