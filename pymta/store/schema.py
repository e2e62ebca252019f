"""The index's SQL schema (version 3), and the migrations from versions 1 and 2.

Tables:
- `folders`: one row per folder (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the mtimes of the
  last scan, and `vanished_floor`: the tombstones cover every expunge above that modseq).
- `messages` (clustered by folder and UID, small rows): what SELECT, FLAGS and STORE touch.
  `cached` is 1 once the message's `summaries` row is complete (wire and search forms
  included); the partial index `messages_uncached` finds the others without a scan. No
  index on modseq: every flag change would rewrite it (a third of the cost of a
  `STORE 1:*`), and CHANGEDSINCE reads few enough rows that a scan of one folder's small
  rows serves it.
- `summaries` (rowid = `summary_key(folder_id, uid)`, so a folder's rows are one key range
  in UID order): the parsed summary as JSON, the IMAP wire bytes of ENVELOPE, BODY and
  BODYSTRUCTURE, and the ENVELOPE fields as SEARCH compares them (`search_*`: decoded,
  case-folded, `mime.text.search_forms`; `sent_day` the Date: header's day; `searchable`
  1 once those are filled). Kept apart so that flag updates never rewrite these rows.
- `expunged`: tombstones (uid, modseq of removal) per folder, at most `MAX_TOMBSTONES`.
- `usage`, `meta`: the root's byte and message counters; small named integers.

Older versions are migrated in place, keeping UIDs, keywords, modseqs, subscriptions and
tombstones; what they lack is filled in on first request, from the JSON (no file read):
- version 1 kept the summary columns in `messages` and had no tombstone floor
  (`MIGRATE_FROM_1`, straight to this version);
- version 2 had no search columns (`MIGRATE_FROM_2`).
"""

from __future__ import annotations

SCHEMA_VERSION = 3
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
    bodystructure_wire BLOB,
    search_date TEXT,
    search_subject TEXT,
    search_from TEXT,
    search_to TEXT,
    search_cc TEXT,
    search_bcc TEXT,
    search_in_reply_to TEXT,
    search_message_id TEXT,
    sent_day INTEGER,
    searchable INTEGER NOT NULL DEFAULT 0
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

# Version 2 had the wire forms but no search columns: they are added (at the end of the
# rows), and every message is marked for filling.
MIGRATE_FROM_2 = """
DROP INDEX IF EXISTS messages_by_modseq;
ALTER TABLE summaries ADD COLUMN search_date TEXT;
ALTER TABLE summaries ADD COLUMN search_subject TEXT;
ALTER TABLE summaries ADD COLUMN search_from TEXT;
ALTER TABLE summaries ADD COLUMN search_to TEXT;
ALTER TABLE summaries ADD COLUMN search_cc TEXT;
ALTER TABLE summaries ADD COLUMN search_bcc TEXT;
ALTER TABLE summaries ADD COLUMN search_in_reply_to TEXT;
ALTER TABLE summaries ADD COLUMN search_message_id TEXT;
ALTER TABLE summaries ADD COLUMN sent_day INTEGER;
ALTER TABLE summaries ADD COLUMN searchable INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET cached = 0 WHERE cached != 0;
"""
MIGRATIONS = {1: MIGRATE_FROM_1, 2: MIGRATE_FROM_2}
