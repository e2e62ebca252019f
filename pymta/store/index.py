"""The index: one SQLite database per mailbox root (`<root>/pymta-index.sqlite`).

It is a cache of the Maildir plus the UID map, and the UID map is recoverable from the
file names (U=), so it runs in WAL mode with synchronous=NORMAL: a commit costs no fsync,
and a power loss may lose the last commits, never consistency. The schema version is
written by the same transaction that fills a rebuilt index, so a half-built index is
rebuilt again; an index of the previous version (1) is migrated in place instead, keeping
keywords, modseqs, subscriptions and tombstones.

The tables are described in schema.py; the row types and their SQL columns are in
index_rows.py. `Index` builds on `index_reads.IndexReads` (every query) and adds here
opening, locking, the schema and every write.

One connection per root, opened once and kept; `lock` guards it (no two threads use it at
a time). Callers hold `lock` through `reading()` or `transaction()` around the methods
below, which never lock themselves. Usage counters change in the same transaction as the
messages they count.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .index_reads import IndexReads, uid_ranges
from .index_rows import (
    MAX_UID,
    MESSAGE_FIELDS,
    SUMMARY_COLUMNS,
    SUMMARY_FIELDS,
    SUMMARY_PLACEHOLDERS,
    FolderRow,
    FolderStats,
    MessageRow,
    SummaryColumns,
    db_text,
    summary_key,
    summary_values,
    to_json,
)
from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, TABLES

# What the rest of the store (and the tests) import from here, wherever it lives.
__all__ = [
    "INDEX_FILE",
    "MAX_TOMBSTONES",
    "MAX_UID",
    "MESSAGE_FIELDS",
    "SUMMARY_FIELDS",
    "FolderRow",
    "FolderStats",
    "Index",
    "IndexCorrupt",
    "MessageRow",
    "SummaryColumns",
    "db_text",
    "summary_key",
    "to_json",
    "uid_ranges",
]

log = logging.getLogger(__name__)

INDEX_FILE = "pymta-index.sqlite"
# Tombstones kept per folder (QRESYNC VANISHED (EARLIER), RFC 7162 §3.2.7): past this, the
# oldest quarter is dropped and `vanished_floor` rises; older modseqs get "unknown".
MAX_TOMBSTONES = 20_000
# Readers map the file instead of copying pages through read() into SQLite's per-connection
# cache: the mapped pages are the OS page cache, shared and reclaimable, so an open root
# holds little memory of its own (a small page cache for writes), and scans run faster.
_MMAP_BYTES = 1 << 30
_CACHE_KIB = 1024


class IndexCorrupt(Exception):
    """The index file cannot be used; the caller moves it aside and rebuilds."""


class Index(IndexReads):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, cached_statements=128
            )
        except sqlite3.Error as exc:
            raise IndexCorrupt(str(exc)) from exc
        try:
            self._db.execute("PRAGMA busy_timeout = 10000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise IndexCorrupt(f"journal_mode is {mode!r}")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version in MIGRATIONS:
                self._migrate(version)
                version = SCHEMA_VERSION
            self.needs_rebuild = version != SCHEMA_VERSION
            if not self.needs_rebuild:
                self._db.execute("SELECT count(*) FROM folders").fetchone()
        except (sqlite3.DatabaseError, IndexCorrupt) as exc:
            self._db.close()
            raise IndexCorrupt(str(exc)) from exc

    def _migrate(self, version: int) -> None:
        """Bring an index of an older version to this one, in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        log.info("store.index_migrated path=%s from=%d to=%d", self.path, version, SCHEMA_VERSION)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- locking ------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self.lock:
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- schema -------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop and recreate every table (inside the rebuild's transaction)."""
        for table in TABLES:
            self._db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        self._db.execute("PRAGMA user_version = 0")

    def mark_built(self) -> None:
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.needs_rebuild = False

    def set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- folders ------------------------------------------------------------------------

    def insert_folder(
        self,
        name: str,
        *,
        uidvalidity: int,
        uidnext: int,
        highestmodseq: int,
        special_use: str | None,
        subscribed: bool,
        new_mtime_ns: int,
        cur_mtime_ns: int,
        settled: bool,
        vanished_floor: int = 0,
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO folders (name, uidvalidity, uidnext, highestmodseq, special_use, "
            "subscribed, new_mtime_ns, cur_mtime_ns, settled, vanished_floor) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                name,
                uidvalidity,
                uidnext,
                highestmodseq,
                special_use,
                int(subscribed),
                new_mtime_ns,
                cur_mtime_ns,
                int(settled),
                vanished_floor,
            ),
        )
        return int(cursor.lastrowid or 0)

    def update_folder(
        self,
        folder_id: int,
        *,
        uidnext: int,
        highestmodseq: int,
        new_mtime_ns: int,
        cur_mtime_ns: int,
        settled: bool,
    ) -> None:
        self._db.execute(
            "UPDATE folders SET uidnext = ?, highestmodseq = ?, new_mtime_ns = ?, "
            "cur_mtime_ns = ?, settled = ? WHERE id = ?",
            (uidnext, highestmodseq, new_mtime_ns, cur_mtime_ns, int(settled), folder_id),
        )

    def rename_folder(self, folder_id: int, name: str) -> None:
        self._db.execute("UPDATE folders SET name = ? WHERE id = ?", (name, folder_id))

    def set_subscribed(self, folder_id: int, subscribed: bool) -> None:
        self._db.execute(
            "UPDATE folders SET subscribed = ? WHERE id = ?", (int(subscribed), folder_id)
        )

    def set_special_use(self, folder_id: int, special_use: str | None) -> None:
        self._db.execute(
            "UPDATE folders SET special_use = ? WHERE id = ?", (special_use, folder_id)
        )

    def delete_folder(self, folder_id: int) -> FolderStats:
        """Remove the folder and its messages; usage goes down by what they held."""
        stats = self.folder_stats(folder_id)
        self._db.execute("DELETE FROM messages WHERE folder_id = ?", (folder_id,))
        self._db.execute(
            "DELETE FROM summaries WHERE key BETWEEN ? AND ?",
            (summary_key(folder_id, 0), summary_key(folder_id, MAX_UID)),
        )
        self._db.execute("DELETE FROM expunged WHERE folder_id = ?", (folder_id,))
        self._db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
        self.add_usage(-stats.size, -stats.messages)
        return stats

    # -- messages -----------------------------------------------------------------------

    def insert_messages(
        self, folder_id: int, items: Sequence[tuple[MessageRow, SummaryColumns | None]]
    ) -> None:
        self._db.executemany(
            "INSERT INTO messages (folder_id, uid, base, subdir, filename, flags, keywords, "
            "modseq, internal_date, size, cached) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    folder_id,
                    m.uid,
                    m.base,
                    m.subdir,
                    m.filename,
                    m.flags,
                    " ".join(m.keywords),
                    m.modseq,
                    m.internal_date,
                    m.size,
                    int(s is not None and s.complete),
                )
                for m, s in items
            ],
        )
        self._db.executemany(
            f"INSERT OR REPLACE INTO summaries (key, {SUMMARY_COLUMNS}) "
            f"VALUES ({SUMMARY_PLACEHOLDERS})",
            [
                (summary_key(folder_id, m.uid), *summary_values(s))
                for m, s in items
                if s is not None
            ],
        )

    def set_summary(self, folder_id: int, uid: int, base: str, s: SummaryColumns) -> None:
        """Store a computed summary, if the message is still the one it was computed for."""
        exists = self._db.execute(
            "SELECT 1 FROM messages WHERE folder_id = ? AND uid = ? AND base = ?",
            (folder_id, uid, base),
        ).fetchone()
        if exists is None:
            return
        self._db.execute(
            f"INSERT OR REPLACE INTO summaries (key, {SUMMARY_COLUMNS}) "
            f"VALUES ({SUMMARY_PLACEHOLDERS})",
            (summary_key(folder_id, uid), *summary_values(s)),
        )
        self._db.execute(
            "UPDATE messages SET cached = ? WHERE folder_id = ? AND uid = ?",
            (int(s.complete), folder_id, uid),
        )

    def update_message(
        self,
        folder_id: int,
        uid: int,
        *,
        subdir: str,
        filename: str,
        flags: str,
        keywords: Sequence[str],
        modseq: int,
    ) -> None:
        self.update_messages(
            folder_id, [(uid, subdir, filename, flags, " ".join(keywords), modseq)]
        )

    def update_messages(
        self, folder_id: int, rows: Iterable[tuple[int, str, str, str, str, int]]
    ) -> None:
        """(uid, subdir, filename, flags, keywords as stored (space-separated), modseq).
        The tuples are bound as they come (numbered parameters): a `STORE 1:*` of 20,000
        messages builds no second list."""
        self._db.executemany(
            "UPDATE messages SET subdir = ?2, filename = ?3, flags = ?4, keywords = ?5, "
            f"modseq = ?6 WHERE folder_id = {int(folder_id)} AND uid = ?1",
            rows,
        )

    def delete_messages(self, folder_id: int, rows: Iterable[MessageRow], modseq: int) -> None:
        """Expunge: drop the rows, remember the UIDs with the modseq of their removal
        (RFC 7162 §3.2.5.2 VANISHED (EARLIER) needs them), and lower the usage."""
        rows = list(rows)
        self._db.executemany(
            "DELETE FROM messages WHERE folder_id = ? AND uid = ?",
            [(folder_id, m.uid) for m in rows],
        )
        self._db.executemany(
            "DELETE FROM summaries WHERE key = ?", [(summary_key(folder_id, m.uid),) for m in rows]
        )
        self._tombstones(folder_id, [m.uid for m in rows], modseq)
        self.add_usage(-sum(m.size for m in rows), -len(rows))

    def _tombstones(self, folder_id: int, uids: Sequence[int], modseq: int) -> None:
        if not uids:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
            [(folder_id, uid, modseq) for uid in uids],
        )
        count = self._db.execute(
            "SELECT count(*) FROM expunged WHERE folder_id = ?", (folder_id,)
        ).fetchone()[0]
        if count <= MAX_TOMBSTONES:
            return
        # Drop whole modseqs, oldest first, until a quarter of the room is free again; the
        # floor says from which modseq on the remaining ones are complete.
        cutoff = self._db.execute(
            "SELECT modseq FROM expunged WHERE folder_id = ? ORDER BY modseq LIMIT 1 OFFSET ?",
            (folder_id, count - MAX_TOMBSTONES * 3 // 4),
        ).fetchone()[0]
        self._db.execute(
            "DELETE FROM expunged WHERE folder_id = ? AND modseq <= ?", (folder_id, cutoff)
        )
        self._db.execute(
            "UPDATE folders SET vanished_floor = max(vanished_floor, ?) WHERE id = ?",
            (cutoff, folder_id),
        )

    def move_messages(self, src_id: int, dst_id: int, uids: Sequence[int], modseq: int) -> None:
        """Hand messages to another folder keeping their UIDs (RENAME INBOX, RFC 9051
        §6.3.6); to the source folder they are expunged. Usage does not change."""
        self._db.executemany(
            "UPDATE messages SET folder_id = ?, modseq = ? WHERE folder_id = ? AND uid = ?",
            [(dst_id, modseq, src_id, uid) for uid in uids],
        )
        self._db.executemany(
            "UPDATE summaries SET key = ? WHERE key = ?",
            [(summary_key(dst_id, uid), summary_key(src_id, uid)) for uid in uids],
        )
        self._tombstones(src_id, uids, modseq)

    # -- usage --------------------------------------------------------------------------

    def add_usage(self, size: int, count: int) -> None:
        if size or count:
            self._db.execute(
                "UPDATE usage SET bytes = bytes + ?, messages = messages + ? WHERE id = 0",
                (size, count),
            )
