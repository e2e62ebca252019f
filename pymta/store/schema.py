"""The index's SQL schema (version 2), and the migration from version 1.

Tables:
- `folders`: one row per folder (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the mtimes of the
  last scan, and `vanished_floor`: the tombstones cover every expunge above that modseq).
- `messages` (clustered by folder and UID, small rows): what SELECT, FLAGS and STORE touch.
  `cached` is 1 once the message's `summaries` row is complete (wire forms included); the
  partial index `messages_uncached` finds the others without a scan.
- `summaries` (rowid = `summary_key(folder_id, uid)`, so a folder's rows are one key range
  in UID order): the parsed summary as JSON and the IMAP wire bytes of ENVELOPE, BODY and
  BODYSTRUCTURE. Kept apart so that flag updates never rewrite these large rows.
- `expunged`: tombstones (uid, modseq of removal) per folder, at most `MAX_TOMBSTONES`.
- `usage`, `meta`: the root's byte and message counters; small named integers.

Version 1 kept the summary columns in `messages` and had no tombstone floor; it is
migrated in place (`MIGRATE_FROM_1`), keeping UIDs, keywords, modseqs, subscriptions and
tombstones. The wire forms of its messages are filled in on first request, from the JSON.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
KEY_SHIFT = 32  # summary key: the folder id above the 32-bit UID (RFC 9051 §2.3.1.1)

MESSAGES_TABLE = """
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
    cached INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (folder_id, uid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_base ON messages (folder_id, base);
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);
CREATE INDEX messages_uncached ON messages (folder_id, uid) WHERE cached = 0;
CREATE TABLE summaries (
    key INTEGER PRIMARY KEY,
    header_bytes INTEGER,
    message_id TEXT,
    subject TEXT,
    envelope TEXT,
    bodystructure TEXT,
    envelope_wire BLOB,
    body_wire BLOB,
    bodystructure_wire BLOB
);
"""

SCHEMA = (
    """
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
    settled INTEGER NOT NULL,
    vanished_floor INTEGER NOT NULL DEFAULT 0
);
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
    + MESSAGES_TABLE
)
TABLES = ("folders", "messages", "summaries", "expunged", "usage", "meta")

# Version 1 kept the summary in `messages` and had no tombstone floor. Its tombstones are
# complete only since the index was last built, which is no earlier than the oldest modseq
# it still holds: that is the floor it gets.
MIGRATE_FROM_1 = (
    """
ALTER TABLE messages RENAME TO messages_v1;
DROP INDEX IF EXISTS messages_by_base;
DROP INDEX IF EXISTS messages_by_modseq;
"""
    + MESSAGES_TABLE
    + """
INSERT INTO messages (folder_id, uid, base, subdir, filename, flags, keywords, modseq,
    internal_date, size, cached)
SELECT folder_id, uid, base, subdir, filename, flags, keywords, modseq, internal_date, size, 0
FROM messages_v1;
INSERT INTO summaries (key, header_bytes, message_id, subject, envelope, bodystructure)
SELECT (folder_id << 32) + uid, header_bytes, message_id, subject, envelope, bodystructure
FROM messages_v1 WHERE envelope IS NOT NULL;
DROP TABLE messages_v1;
ALTER TABLE folders ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;
UPDATE folders SET vanished_floor = coalesce(
    (SELECT min(m) FROM (
        SELECT min(modseq) AS m FROM messages WHERE folder_id = folders.id
        UNION ALL SELECT min(modseq) FROM expunged WHERE folder_id = folders.id)),
    highestmodseq);
"""
)
