"""The index: one SQLite database per mailbox root (`<root>/pymta-index.sqlite`).

It is a cache of the Maildir plus the UID map, and the UID map is recoverable from the
file names (U=), so it runs in WAL mode with synchronous=NORMAL: a commit costs no fsync,
and a power loss may lose the last commits, never consistency. The schema version is
written by the same transaction that fills a rebuilt index, so a half-built index is
rebuilt again; an index of the previous version (1) is migrated in place instead, keeping
keywords, modseqs, subscriptions and tombstones.

The tables are described in schema.py.

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

from pymta.mime.text import SearchForms

from .schema import KEY_SHIFT as _KEY_SHIFT
from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, TABLES

log = logging.getLogger(__name__)

INDEX_FILE = "pymta-index.sqlite"
_CHUNK = 500  # beyond this many UIDs, one range scan and a filter instead of lookups
MAX_UID = 2**32 - 1  # RFC 9051 §2.3.1.1
# Tombstones kept per folder (QRESYNC VANISHED (EARLIER), RFC 7162 §3.2.7): past this, the
# oldest quarter is dropped and `vanished_floor` rises; older modseqs get "unknown".
MAX_TOMBSTONES = 20_000
# Readers map the file instead of copying pages through read() into SQLite's per-connection
# cache: the mapped pages are the OS page cache, shared and reclaimable, so an open root
# holds little memory of its own (a small page cache for writes), and scans run faster.
_MMAP_BYTES = 1 << 30
_CACHE_KIB = 1024

_FOLDER_COLUMNS = (
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed, "
    "new_mtime_ns, cur_mtime_ns, settled, vanished_floor"
)
_MESSAGE_COLUMNS = "uid, base, subdir, filename, flags, keywords, modseq, internal_date, size"
_SUMMARY_COLUMNS = (
    "header_bytes, message_id, subject, envelope, bodystructure, "
    "envelope_wire, body_wire, bodystructure_wire, "
    "search_date, search_subject, search_from, search_to, search_cc, search_bcc, "
    "search_in_reply_to, search_message_id, sent_day, searchable"
)
_SUMMARY_PLACEHOLDERS = ",".join("?" * (1 + len(_SUMMARY_COLUMNS.split(","))))

# `fetch` columns: public name -> SQL over `messages m LEFT JOIN summaries s`.
MESSAGE_FIELDS: dict[str, str] = {
    "uid": "m.uid",
    "flags": "m.flags",
    "keywords": "m.keywords",
    "modseq": "m.modseq",
    "internal_date": "m.internal_date",
    "size": "m.size",
    "file": "m.subdir || '/' || m.filename",
}
SUMMARY_FIELDS: dict[str, str] = {
    "header_bytes": "s.header_bytes",
    "message_id": "s.message_id",
    "subject": "s.subject",
    "envelope_json": "s.envelope",
    "bodystructure_json": "s.bodystructure",
    "envelope": "s.envelope_wire",
    "body": "s.body_wire",
    "bodystructure": "s.bodystructure_wire",
    # The ENVELOPE fields as SEARCH compares them (`mime.text.search_forms`); NULL when
    # the field is absent (or not computed yet: `searchable` 0).
    "search_date": "s.search_date",
    "search_subject": "s.search_subject",
    "search_from": "s.search_from",
    "search_to": "s.search_to",
    "search_cc": "s.search_cc",
    "search_bcc": "s.search_bcc",
    "search_in_reply_to": "s.search_in_reply_to",
    "search_message_id": "s.search_message_id",
    "sent_day": "s.sent_day",
}


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
    vanished_floor: int = 0

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
    """A message summary as stored: JSON text, plain columns, the IMAP wire forms and the
    search forms (None until computed)."""

    header_bytes: int | None
    message_id: str | None
    subject: str | None
    envelope: str | None
    bodystructure: str | None
    envelope_wire: bytes | None = None
    body_wire: bytes | None = None
    bodystructure_wire: bytes | None = None
    search: SearchForms | None = None

    @property
    def complete(self) -> bool:
        return self.search is not None and None not in (
            self.envelope,
            self.envelope_wire,
            self.body_wire,
            self.bodystructure_wire,
        )


@dataclass(frozen=True)
class FolderStats:
    messages: int
    unseen: int
    size: int
    deleted: int = 0


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


def summary_key(folder_id: int, uid: int) -> int:
    return (folder_id << _KEY_SHIFT) + uid


def _folder(row: Sequence[Any]) -> FolderRow:
    (fid, name, uidvalidity, uidnext, hms, special, subscribed, new_m, cur_m, settled, floor) = row
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
        int(floor),
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


def _summary(row: Sequence[Any]) -> SummaryColumns:
    hb, mid, subject, env, body, env_w, body_w, bs_w = row[:8]
    searchable = row[17]
    return SummaryColumns(
        None if hb is None else int(hb),
        mid,
        subject,
        env,
        body,
        None if env_w is None else bytes(env_w),
        None if body_w is None else bytes(body_w),
        None if bs_w is None else bytes(bs_w),
        SearchForms(*row[8:17]) if searchable else None,
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

    _STATS = (
        "count(*), coalesce(sum(instr(flags, 'S') = 0), 0), coalesce(sum(size), 0), "
        "coalesce(sum(instr(flags, 'T') > 0), 0)"
    )

    def folder_stats(self, folder_id: int) -> FolderStats:
        row = self._db.execute(
            f"SELECT {self._STATS} FROM messages WHERE folder_id = ?", (folder_id,)
        ).fetchone()
        return FolderStats(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def all_folder_stats(self) -> dict[int, FolderStats]:
        rows = self._db.execute(f"SELECT folder_id, {self._STATS} FROM messages GROUP BY folder_id")
        return {int(r[0]): FolderStats(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

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
            f"INSERT OR REPLACE INTO summaries (key, {_SUMMARY_COLUMNS}) "
            f"VALUES ({_SUMMARY_PLACEHOLDERS})",
            [
                (summary_key(folder_id, m.uid), *_summary_values(s))
                for m, s in items
                if s is not None
            ],
        )

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
        rows = self._select(_MESSAGE_COLUMNS, "messages m", folder_id, uids)
        return [_message(r) for r in rows]

    def message_tuples(self, folder_id: int, uids: Sequence[int] | None) -> list[tuple[Any, ...]]:
        """Like `messages`, as plain tuples in `MessageRow` field order with the keywords
        as stored (space-separated): for loops over many messages."""
        return self._select(_MESSAGE_COLUMNS, "messages m", folder_id, uids)

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
        cols = ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
        scols = ", ".join(f"s.{c.strip()}" for c in _SUMMARY_COLUMNS.split(","))
        table = (
            f"messages m INDEXED BY messages_uncached LEFT JOIN summaries s "
            f"ON s.key = (m.folder_id << {_KEY_SHIFT}) + m.uid"
        )
        found: list[tuple[MessageRow, SummaryColumns | None]] = []
        for r in self._select(f"{cols}, s.key, {scols}", table, folder_id, uids, " AND cached = 0"):
            found.append((_message(r[:9]), None if r[9] is None else _summary(r[10:])))
        return found

    def set_summary(self, folder_id: int, uid: int, base: str, s: SummaryColumns) -> None:
        """Store a computed summary, if the message is still the one it was computed for."""
        exists = self._db.execute(
            "SELECT 1 FROM messages WHERE folder_id = ? AND uid = ? AND base = ?",
            (folder_id, uid, base),
        ).fetchone()
        if exists is None:
            return
        self._db.execute(
            f"INSERT OR REPLACE INTO summaries (key, {_SUMMARY_COLUMNS}) "
            f"VALUES ({_SUMMARY_PLACEHOLDERS})",
            (summary_key(folder_id, uid), *_summary_values(s)),
        )
        self._db.execute(
            "UPDATE messages SET cached = ? WHERE folder_id = ? AND uid = ?",
            (int(s.complete), folder_id, uid),
        )

    def summaries(
        self, folder_id: int, uids: Sequence[int] | None
    ) -> list[tuple[MessageRow, SummaryColumns | None]]:
        cols = ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
        scols = ", ".join(f"s.{c.strip()}" for c in _SUMMARY_COLUMNS.split(","))
        table = f"messages m LEFT JOIN summaries s ON s.key = (m.folder_id << {_KEY_SHIFT}) + m.uid"
        return [
            (_message(r[:9]), None if r[9] is None else _summary(r[10:]))
            for r in self._select(f"{cols}, s.key, {scols}", table, folder_id, uids)
        ]

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


_NO_SEARCH = (None,) * 9 + (0,)


def _summary_values(s: SummaryColumns) -> tuple[object, ...]:
    f = s.search
    search = (
        _NO_SEARCH
        if f is None
        else (
            db_text(f.date),
            db_text(f.subject),
            db_text(f.from_),
            db_text(f.to),
            db_text(f.cc),
            db_text(f.bcc),
            db_text(f.in_reply_to),
            db_text(f.message_id),
            f.sent,
            1,
        )
    )
    return (
        s.header_bytes,
        s.message_id,
        s.subject,
        s.envelope,
        s.bodystructure,
        s.envelope_wire,
        s.body_wire,
        s.bodystructure_wire,
        *search,
    )
