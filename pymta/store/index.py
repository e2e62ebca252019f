"""The index: one SQLite database per mailbox root (`<root>/pymta-index.sqlite`).

It is a cache of the Maildir plus the UID map, and the UID map is recoverable from the
file names (U=), so it runs in WAL mode with synchronous=NORMAL: a commit costs no fsync,
and a power loss may lose the last commits, never consistency. The schema version is
written by the same transaction that fills a rebuilt index, so a half-built index is
rebuilt again.

One connection per root, opened once and kept; `lock` guards it (no two threads use it at
a time). Callers hold `lock` through `reading()` or `transaction()` around the methods
below, which never lock themselves. Usage counters change in the same transaction as the
messages they count.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INDEX_FILE = "pymta-index.sqlite"
SCHEMA_VERSION = 1
_CHUNK = 500  # UIDs per "IN (...)" query, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    special_use TEXT,
    subscribed INTEGER NOT NULL,
    new_mtime_ns INTEGER NOT NULL,
    cur_mtime_ns INTEGER NOT NULL,
    settled INTEGER NOT NULL
);
CREATE TABLE messages (
    folder_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    base TEXT NOT NULL,
    subdir TEXT NOT NULL,
    filename TEXT NOT NULL,
    flags TEXT NOT NULL,
    keywords TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    internal_date REAL NOT NULL,
    size INTEGER NOT NULL,
    header_bytes INTEGER,
    message_id TEXT,
    subject TEXT,
    envelope TEXT,
    bodystructure TEXT,
    PRIMARY KEY (folder_id, uid)
);
CREATE UNIQUE INDEX messages_by_base ON messages (folder_id, base);
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);
CREATE TABLE expunged (
    folder_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (folder_id, uid)
) WITHOUT ROWID;
CREATE TABLE usage (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    bytes INTEGER NOT NULL,
    messages INTEGER NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO usage (id, bytes, messages) VALUES (0, 0, 0);
"""
_TABLES = ("folders", "messages", "expunged", "usage", "meta")

_FOLDER_COLUMNS = (
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed, "
    "new_mtime_ns, cur_mtime_ns, settled"
)
_MESSAGE_COLUMNS = "uid, base, subdir, filename, flags, keywords, modseq, internal_date, size"


class IndexCorrupt(Exception):
    """The index file cannot be used; the caller moves it aside and rebuilds."""


@dataclass(frozen=True)
class FolderRow:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    new_mtime_ns: int
    cur_mtime_ns: int
    settled: bool

    def mtime(self, subdir: str) -> int:
        return self.new_mtime_ns if subdir == "new" else self.cur_mtime_ns


@dataclass(frozen=True)
class MessageRow:
    uid: int
    base: str
    subdir: str
    filename: str
    flags: str
    keywords: tuple[str, ...]
    modseq: int
    internal_date: float
    size: int


@dataclass(frozen=True)
class SummaryColumns:
    """A message summary as stored: JSON text and plain columns."""

    header_bytes: int | None
    message_id: str | None
    subject: str | None
    envelope: str | None
    bodystructure: str | None


@dataclass(frozen=True)
class FolderStats:
    messages: int
    unseen: int
    size: int


def db_text(value: str | None) -> str | None:
    """A str SQLite can store: header text may carry surrogate escapes of raw bytes."""
    if value is None:
        return None
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def to_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _folder(row: Sequence[Any]) -> FolderRow:
    (fid, name, uidvalidity, uidnext, hms, special, subscribed, new_m, cur_m, settled) = row
    return FolderRow(
        int(fid),
        str(name),
        int(uidvalidity),
        int(uidnext),
        int(hms),
        None if special is None else str(special),
        bool(subscribed),
        int(new_m),
        int(cur_m),
        bool(settled),
    )


def _message(row: Sequence[Any]) -> MessageRow:
    (uid, base, subdir, filename, flags, keywords, modseq, idate, size) = row
    return MessageRow(
        int(uid),
        str(base),
        str(subdir),
        str(filename),
        str(flags),
        tuple(str(keywords).split()),
        int(modseq),
        float(idate),
        int(size),
    )


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class Index:
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
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            self.needs_rebuild = version != SCHEMA_VERSION
            if not self.needs_rebuild:
                self._db.execute("SELECT count(*) FROM folders").fetchone()
        except (sqlite3.DatabaseError, IndexCorrupt) as exc:
            self._db.close()
            raise IndexCorrupt(str(exc)) from exc

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
        for table in _TABLES:
            self._db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        self._db.execute("PRAGMA user_version = 0")

    def mark_built(self) -> None:
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.needs_rebuild = False

    def get_meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- folders ------------------------------------------------------------------------

    def folder(self, name: str) -> FolderRow | None:
        row = self._db.execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else _folder(row)

    def folders(self) -> list[FolderRow]:
        rows = self._db.execute(f"SELECT {_FOLDER_COLUMNS} FROM folders ORDER BY name")
        return [_folder(r) for r in rows]

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
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO folders (name, uidvalidity, uidnext, highestmodseq, special_use, "
            "subscribed, new_mtime_ns, cur_mtime_ns, settled) VALUES (?,?,?,?,?,?,?,?,?)",
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
        self._db.execute("DELETE FROM expunged WHERE folder_id = ?", (folder_id,))
        self._db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
        self.add_usage(-stats.size, -stats.messages)
        return stats

    def folder_stats(self, folder_id: int) -> FolderStats:
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(instr(flags, 'S') = 0), 0), coalesce(sum(size), 0) "
            "FROM messages WHERE folder_id = ?",
            (folder_id,),
        ).fetchone()
        return FolderStats(int(row[0]), int(row[1]), int(row[2]))

    def all_folder_stats(self) -> dict[int, FolderStats]:
        rows = self._db.execute(
            "SELECT folder_id, count(*), sum(instr(flags, 'S') = 0), sum(size) "
            "FROM messages GROUP BY folder_id"
        )
        return {int(r[0]): FolderStats(int(r[1]), int(r[2]), int(r[3])) for r in rows}

    # -- messages -----------------------------------------------------------------------

    def insert_message(
        self, folder_id: int, msg: MessageRow, summary: SummaryColumns | None = None
    ) -> None:
        s = summary or SummaryColumns(None, None, None, None, None)
        self._db.execute(
            "INSERT INTO messages (folder_id, uid, base, subdir, filename, flags, keywords, "
            "modseq, internal_date, size, header_bytes, message_id, subject, envelope, "
            "bodystructure) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                folder_id,
                msg.uid,
                msg.base,
                msg.subdir,
                msg.filename,
                msg.flags,
                " ".join(msg.keywords),
                msg.modseq,
                msg.internal_date,
                msg.size,
                s.header_bytes,
                s.message_id,
                s.subject,
                s.envelope,
                s.bodystructure,
            ),
        )

    def messages(self, folder_id: int, uids: Sequence[int] | None = None) -> list[MessageRow]:
        """Rows in ascending UID order (all, or those of `uids` that exist)."""
        if uids is None:
            rows = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder_id = ? ORDER BY uid",
                (folder_id,),
            )
            return [_message(r) for r in rows]
        found: list[MessageRow] = []
        for chunk in _chunks(sorted(set(uids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages "
                f"WHERE folder_id = ? AND uid IN ({marks}) ORDER BY uid",
                (folder_id, *chunk),
            )
            found.extend(_message(r) for r in rows)
        return found

    def changed_since(self, folder_id: int, modseq: int) -> list[MessageRow]:
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder_id = ? AND modseq > ? "
            "ORDER BY uid",
            (folder_id, modseq),
        )
        return [_message(r) for r in rows]

    def by_base(self, folder_id: int) -> dict[str, MessageRow]:
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder_id = ?", (folder_id,)
        )
        return {m.base: m for m in map(_message, rows)}

    def max_uid(self, folder_id: int) -> int:
        row = self._db.execute(
            "SELECT max(uid) FROM messages WHERE folder_id = ?", (folder_id,)
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

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
        self._db.execute(
            "UPDATE messages SET subdir = ?, filename = ?, flags = ?, keywords = ?, modseq = ? "
            "WHERE folder_id = ? AND uid = ?",
            (subdir, filename, flags, " ".join(keywords), modseq, folder_id, uid),
        )

    def delete_messages(self, folder_id: int, rows: Iterable[MessageRow], modseq: int) -> None:
        """Expunge: drop the rows, remember the UIDs with the modseq of their removal
        (RFC 7162 §3.2.5.2 VANISHED (EARLIER) needs them), and lower the usage."""
        size = count = 0
        for msg in rows:
            self._db.execute(
                "DELETE FROM messages WHERE folder_id = ? AND uid = ?", (folder_id, msg.uid)
            )
            self._db.execute(
                "INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                (folder_id, msg.uid, modseq),
            )
            size += msg.size
            count += 1
        self.add_usage(-size, -count)

    def move_messages(self, src_id: int, dst_id: int, uids: Sequence[int], modseq: int) -> None:
        """Hand messages to another folder keeping their UIDs (RENAME INBOX, RFC 9051
        §6.3.6); to the source folder they are expunged. Usage does not change."""
        for uid in uids:
            self._db.execute(
                "UPDATE messages SET folder_id = ?, modseq = ? WHERE folder_id = ? AND uid = ?",
                (dst_id, modseq, src_id, uid),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                (src_id, uid, modseq),
            )

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

    def summaries(
        self, folder_id: int, uids: Sequence[int]
    ) -> list[tuple[MessageRow, SummaryColumns]]:
        found: list[tuple[MessageRow, SummaryColumns]] = []
        for chunk in _chunks(sorted(set(uids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, header_bytes, message_id, subject, envelope, "
                f"bodystructure FROM messages WHERE folder_id = ? AND uid IN ({marks}) "
                "ORDER BY uid",
                (folder_id, *chunk),
            )
            for r in rows:
                hb, mid, subject, env, body = r[9:]
                found.append(
                    (
                        _message(r[:9]),
                        SummaryColumns(
                            None if hb is None else int(hb),
                            mid,
                            subject,
                            env,
                            body,
                        ),
                    )
                )
        return found

    def set_summary(self, folder_id: int, uid: int, base: str, s: SummaryColumns) -> None:
        self._db.execute(
            "UPDATE messages SET header_bytes = ?, message_id = ?, subject = ?, envelope = ?, "
            "bodystructure = ? WHERE folder_id = ? AND uid = ? AND base = ?",
            (
                s.header_bytes,
                s.message_id,
                s.subject,
                s.envelope,
                s.bodystructure,
                folder_id,
                uid,
                base,
            ),
        )

    # -- usage --------------------------------------------------------------------------

    def usage(self) -> tuple[int, int]:
        row = self._db.execute("SELECT bytes, messages FROM usage WHERE id = 0").fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def add_usage(self, size: int, count: int) -> None:
        if size or count:
            self._db.execute(
                "UPDATE usage SET bytes = bytes + ?, messages = messages + ? WHERE id = 0",
                (size, count),
            )
