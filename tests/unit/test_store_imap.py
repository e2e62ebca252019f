"""What the store gives IMAP: cached wire forms, SELECT listings, fetch rows, conditional
STORE (RFC 7162 §3.1.3), tombstones for VANISHED (RFC 7162 §3.2.10), folder hierarchy and
STATUS counts, the search forms kept for SEARCH, and the migration of older indexes."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire
from pymta.mime.summary import build_summary
from pymta.mime.text import search_forms
from pymta.store import FolderExists, MailboxRef, Store
from pymta.store import cache as cache_module
from pymta.store import index as index_module
from pymta.store.index import uid_ranges
from pymta.store.schema import SCHEMA_VERSION

REF = MailboxRef("user", "alice", "example.org")


def message(n: int = 0, *, multipart: bool = False) -> bytes:
    head = (
        f'From: "Bob Example" <bob@example.org>\r\nTo: alice@example.org\r\n'
        f"Subject: test {n}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <m{n}@example.org>\r\n"
    )
    if not multipart:
        return (head + "\r\nhello\r\n").encode()
    return (
        head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        "--b\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
    ).encode()


def wire_forms(raw: bytes) -> tuple[bytes, bytes, bytes]:
    s = build_summary(raw)
    return (
        envelope_wire(s.envelope),
        body_wire(s.bodystructure),
        bodystructure_wire(s.bodystructure),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data", hostname="test.example")
    yield s
    await s.close()


def query(store: Store, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(store.maildir_path(REF) / "pymta-index.sqlite")
    try:
        return list(db.execute(sql))
    finally:
        db.close()


class SummarizeCalls:
    """Counts the message parses of the store's cache (the file read path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = cache_module.summarize

        def counting(raw: bytes):  # type: ignore[no-untyped-def]
            self.count += 1
            return original(raw)

        monkeypatch.setattr(cache_module, "summarize", counting)


# -- wire forms -------------------------------------------------------------------------------


async def test_delivery_caches_the_wire_forms_of_envelope_body_and_bodystructure(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = [message(1), message(2, multipart=True)]
    for raw in raws:
        await store.deliver(REF, raw)
    parses = SummarizeCalls(monkeypatch)
    rows = await store.fetch_rows(
        REF, "INBOX", None, ("uid", "envelope", "body", "bodystructure", "subject")
    )
    assert rows == [(n + 1, *wire_forms(raw), f"test {n + 1}") for n, raw in enumerate(raws)]
    assert rows[1][3].startswith(b'(("TEXT" "PLAIN"')  # BODYSTRUCTURE of a multipart
    assert parses.count == 0  # straight from the index


SEARCH_COLUMNS = (
    "search_date",
    "search_subject",
    "search_from",
    "search_to",
    "search_cc",
    "search_bcc",
    "search_in_reply_to",
    "search_message_id",
    "sent_day",
)


def searchable(raw: bytes) -> tuple[object, ...]:
    f = search_forms(build_summary(raw).envelope)
    return (f.date, f.subject, f.from_, f.to, f.cc, f.bcc, f.in_reply_to, f.message_id, f.sent)


async def test_delivery_keeps_the_envelope_fields_as_search_compares_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = (
        b"From: =?utf-8?q?Ren=C3=A9?= <rene@example.fr>\r\nTo: a@example.org\r\n"
        b"Subject: =?iso-8859-1?q?Caf=E9?= NOW\r\n"
        b"Date: Fri, 1 Mar 2024 23:30:00 -0800\r\n\r\nhi\r\n"
    )
    await store.deliver(REF, raw)
    await store.deliver(REF, message(2))
    parses = SummarizeCalls(monkeypatch)
    rows = await store.fetch_rows(REF, "INBOX", None, ("uid", *SEARCH_COLUMNS))
    assert rows == [(1, *searchable(raw)), (2, *searchable(message(2)))]
    # RFC 2047-decoded and case-folded; absent fields are None; the Date: header's day.
    assert rows[0][1:4] == ("fri, 1 mar 2024 23:30:00 -0800", "café now", "rené <rene@example.fr>")
    assert rows[0][6] is None
    assert rows[0][9] == 738946  # 2024-03-01, its timezone ignored
    # COPY and MOVE carry them along.
    await store.copy(REF, "INBOX", [1], REF, "Archive")
    await store.move(REF, "INBOX", [2], REF, "Archive")
    moved = await store.fetch_rows(REF, "Archive", None, SEARCH_COLUMNS)
    assert moved == [row[1:] for row in rows]
    assert query(store, "SELECT count(*) FROM messages WHERE cached = 0") == [(0,)]
    assert parses.count == 0


async def test_adopted_file_gets_its_wire_forms_on_first_request_then_from_the_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.deliver(REF, message(1))
    raw = message(2, multipart=True)
    (store.maildir_path(REF) / "new" / "1700000000.M1P2.othermda").write_bytes(raw)
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1, 2]
    assert query(store, "SELECT uid, cached FROM messages ORDER BY uid") == [(1, 1), (2, 0)]

    parses = SummarizeCalls(monkeypatch)
    [row] = await store.fetch_rows(REF, "INBOX", [2], ("envelope", "bodystructure"))
    envelope, _, bodystructure = wire_forms(raw)
    assert row == (envelope, bodystructure)
    assert parses.count == 1
    assert query(store, "SELECT uid, cached FROM messages ORDER BY uid") == [(1, 1), (2, 1)]
    assert await store.fetch_rows(REF, "INBOX", [2], ("envelope",)) == [(envelope,)]
    [summary] = await store.summaries(REF, "INBOX", [2])
    assert summary.subject == "test 2"
    assert parses.count == 1


async def test_a_file_gone_before_its_summary_was_made_gives_none(store: Store) -> None:
    await store.usage(REF)
    foreign = store.maildir_path(REF) / "new" / "1700000000.M1P2.othermda"
    foreign.write_bytes(message(1))
    [meta] = await store.messages(REF, "INBOX")
    meta.path.unlink()
    assert await store.fetch_rows(REF, "INBOX", None, ("uid", "envelope")) == [(1, None)]
    assert await store.messages(REF, "INBOX") == []


async def test_columns_without_summaries_read_nothing_but_the_messages_table(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.usage(REF)  # the root exists
    (store.maildir_path(REF) / "new" / "1700000000.M1P2.othermda").write_bytes(message(1))
    await store.messages(REF, "INBOX")
    parses = SummarizeCalls(monkeypatch)
    rows = await store.fetch_rows(REF, "INBOX", None, ("modseq", "uid", "flags", "size"))
    assert [(r[1], r[2], r[3]) for r in rows] == [(1, "", len(message(1)))]
    assert parses.count == 0


async def test_fetch_rows_by_sparse_and_large_uid_sets(store: Store) -> None:
    for n in range(6):
        await store.deliver(REF, message(n), flags="S" if n % 2 else "", keywords=["Work"])
    rows = await store.fetch_rows(REF, "INBOX", [5, 1, 3, 99], ("uid", "flags", "keywords"))
    assert rows == [(1, "", "Work"), (3, "", "Work"), (5, "", "Work")]
    # More than a few hundred UIDs: one range query, filtered.
    many = [*range(2, 1002, 2), 3]
    rows = await store.fetch_rows(REF, "INBOX", many, ("flags", "uid"))
    assert rows == [("S", 2), ("", 3), ("S", 4), ("S", 6)]
    assert await store.fetch_rows(REF, "INBOX", [], ("uid",)) == []
    with pytest.raises(ValueError):
        await store.fetch_rows(REF, "INBOX", None, ("uid", "password"))


def test_uid_ranges_cover_exactly_the_set_asked_for() -> None:
    assert list(uid_ranges([3, 1, 2, 2])) == [(1, 3, None)]
    assert list(uid_ranges([1, 5, 7, 6])) == [(1, 1, None), (5, 7, None)]
    assert list(uid_ranges([])) == []
    big = list(range(1, 2000, 3))
    [(low, high, keep)] = list(uid_ranges(big))
    assert (low, high, keep) == (1, 1999, frozenset(big))
    assert list(uid_ranges(range(1, 1001))) == [(1, 1000, None)]


async def test_file_column_and_folder_path_locate_the_message(store: Store) -> None:
    await store.create_folder(REF, "Work")
    await store.deliver(REF, message(1), folder="Work", flags="S")
    [(file, internal_date)] = await store.fetch_rows(REF, "Work", None, ("file", "internal_date"))
    path = store.folder_path(REF, "Work") / file
    assert file.startswith("cur/") and file.endswith(",U=1:2,S")
    assert path.read_bytes() == message(1)
    assert internal_date == os.stat(path).st_mtime


# -- SELECT listing ---------------------------------------------------------------------------


async def test_listing_has_what_select_needs(store: Store) -> None:
    await store.deliver(REF, message(1), flags="S")
    await store.deliver(REF, message(2), keywords=["Work"])
    await store.deliver(REF, message(3), flags="ST")
    await store.deliver(REF, message(4), keywords=["todo", "Work"])
    await store.deliver(REF, message(5), flags="S")
    info = await store.folder_info(REF, "INBOX")
    listing = await store.listing(REF, "INBOX")
    metas = await store.messages(REF, "INBOX")

    assert (listing.uidvalidity, listing.uidnext, listing.highestmodseq) == (
        info.uidvalidity,
        info.uidnext,
        info.highestmodseq,
    )
    assert list(listing.uids) == [1, 2, 3, 4, 5]
    assert listing.flags == ["S", "", "ST", "", "S"]
    assert listing.keywords == [(), ("Work",), (), ("todo", "Work"), ()]
    assert list(listing.modseqs) == [m.modseq for m in metas]
    assert (listing.messages, listing.unseen, listing.first_unseen, listing.deleted) == (
        5,
        2,
        2,
        1,
    )
    assert listing.keywords_in_use == ("todo", "Work")
    assert listing.flags[0] is listing.flags[4]  # equal values are shared objects
    assert listing.vanished is None


async def test_listing_of_an_empty_folder(store: Store) -> None:
    listing = await store.listing(REF, "Sent")
    assert (len(listing.uids), listing.unseen, listing.first_unseen) == (0, 0, None)
    assert listing.keywords_in_use == ()


async def test_listing_picks_up_changes_behind_the_back(store: Store) -> None:
    delivered = await store.deliver(REF, message(1))
    await store.listing(REF, "INBOX")
    os.rename(delivered.path, store.maildir_path(REF) / "cur" / f"{delivered.path.name}:2,S")
    listing = await store.listing(REF, "INBOX")
    assert (listing.flags, listing.unseen) == (["S"], 0)


# -- STORE with UNCHANGEDSINCE (RFC 7162 §3.1.3) ----------------------------------------------


async def test_unchanged_since_refuses_messages_changed_after_it(store: Store) -> None:
    for n in range(3):
        await store.deliver(REF, message(n))
    mark = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.set_flags(REF, "INBOX", [2], add=["\\Flagged"])  # changed after the mark

    result = await store.set_flags(REF, "INBOX", [1, 2, 3], add=["\\Seen"], unchanged_since=mark)
    assert result.failed == [2]
    assert [(m.uid, m.flags) for m in result.updated] == [(1, "S"), (3, "S")]
    assert result.updated[0].modseq > mark
    [two] = [m for m in await store.messages(REF, "INBOX") if m.uid == 2]
    assert two.flags == "F"  # not touched


async def test_unchanged_since_zero_always_fails(store: Store) -> None:
    await store.deliver(REF, message())
    before = (await store.folder_info(REF, "INBOX")).highestmodseq
    result = await store.set_flags(REF, "INBOX", [1], add=["\\Seen"], unchanged_since=0)
    assert (result.updated, result.failed) == ([], [1])
    assert (await store.folder_info(REF, "INBOX")).highestmodseq == before


async def test_a_store_that_changes_nothing_keeps_the_modseq(store: Store) -> None:
    await store.deliver(REF, message(), flags="S", keywords=["Work"])
    [meta] = await store.messages(REF, "INBOX")
    result = await store.set_flags(
        REF, "INBOX", [1], add=["\\Seen", "work"], unchanged_since=meta.modseq
    )
    assert [(m.flags, m.keywords, m.modseq) for m in result.updated] == [
        ("S", ("Work",), meta.modseq)
    ]
    assert result.failed == []


async def test_bulk_store_renames_every_file_and_keeps_other_info_letters(store: Store) -> None:
    root = store.maildir_path(REF)
    for n in range(20):
        await store.deliver(REF, message(n), flags="S" if n % 2 else "")
    # A Dovecot keyword letter in one name is kept through our renames.
    [first] = [m for m in await store.messages(REF, "INBOX") if m.uid == 2]
    os.rename(first.path, root / "cur" / (first.path.name + "a"))
    result = await store.set_flags(REF, "INBOX", range(1, 21), add=["\\Flagged"])
    assert len({m.modseq for m in result.updated}) == 1
    names = sorted(os.listdir(root / "cur"))
    assert os.listdir(root / "new") == [] and len(names) == 20
    assert all(":2,F" in name for name in names)
    assert sum(name.endswith(":2,FSa") for name in names) == 1
    assert [m.flags for m in await store.messages(REF, "INBOX")] == [
        "FS" if n % 2 else "F" for n in range(20)
    ]


# -- tombstones (RFC 7162 §3.2.10.1 VANISHED (EARLIER)) ---------------------------------------


async def test_vanished_since_lists_expunged_uids(store: Store) -> None:
    for n in range(5):
        await store.deliver(REF, message(n))
    mark = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.expunge(REF, "INBOX", [2])
    later = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.expunge(REF, "INBOX", [4, 5])
    assert await store.vanished_since(REF, "INBOX", mark) == [2, 4, 5]
    assert await store.vanished_since(REF, "INBOX", later) == [4, 5]
    listing = await store.listing(REF, "INBOX", vanished_since=mark)
    assert (list(listing.uids), listing.vanished) == ([1, 3], [2, 4, 5])
    _, gone = await store.changes_since(REF, "INBOX", mark)
    assert gone == [2, 4, 5]


async def test_tombstones_are_bounded_and_say_when_they_no_longer_reach_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "MAX_TOMBSTONES", 8)
    for n in range(12):
        await store.deliver(REF, message(n))
    start = (await store.folder_info(REF, "INBOX")).highestmodseq
    marks = []
    for uid in range(1, 12):
        marks.append((await store.folder_info(REF, "INBOX")).highestmodseq)
        await store.expunge(REF, "INBOX", [uid])
    assert len(query(store, "SELECT uid FROM expunged")) <= 8
    assert await store.vanished_since(REF, "INBOX", start) is None
    assert (await store.listing(REF, "INBOX", vanished_since=start)).vanished is None
    assert await store.vanished_since(REF, "INBOX", marks[-3]) == [9, 10, 11]


async def test_rebuilt_index_does_not_claim_to_know_older_expunges(tmp_path: Path) -> None:
    store = Store(tmp_path, hostname="test.example")
    for n in range(3):
        await store.deliver(REF, message(n))
    await store.expunge(REF, "INBOX", [2])
    old = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.close()
    for suffix in ("", "-wal", "-shm"):
        (store.maildir_path(REF) / f"pymta-index.sqlite{suffix}").unlink(missing_ok=True)
    store = Store(tmp_path, hostname="test.example")
    try:
        new = (await store.folder_info(REF, "INBOX")).highestmodseq
        assert await store.vanished_since(REF, "INBOX", old) is None
        assert await store.vanished_since(REF, "INBOX", new) == []
    finally:
        await store.close()


# -- folders ----------------------------------------------------------------------------------


async def test_create_folder_creates_missing_parents(store: Store) -> None:
    await store.create_folder(REF, "Clients.Acme.Invoices")
    folders = {f.name: f for f in await store.folders(REF)}
    assert {"Clients", "Clients.Acme", "Clients.Acme.Invoices"} <= folders.keys()
    assert folders["Clients"].children and folders["Clients.Acme"].children
    assert not folders["Clients.Acme.Invoices"].children
    assert not folders["INBOX"].children and not folders["Sent"].children
    assert (await store.folder_info(REF, "Clients")).children
    assert not (await store.folder_info(REF, "Clients.Acme.Invoices")).children


async def test_create_refused_creates_no_parent(store: Store) -> None:
    await store.create_folder(REF, "P.Q")
    await store.delete_folder(REF, "P")  # Maildir++: the child stays
    with pytest.raises(FolderExists):
        await store.create_folder(REF, "P.Q")
    assert "P" not in [f.name for f in await store.folders(REF)]


async def test_rename_creates_missing_parents_of_the_new_name(store: Store) -> None:
    await store.create_folder(REF, "Work")
    await store.rename_folder(REF, "Work", "Old.Years.Work")
    names = [f.name for f in await store.folders(REF)]
    assert {"Old", "Old.Years", "Old.Years.Work"} <= set(names) and "Work" not in names


async def test_status_counts_come_from_the_index(store: Store) -> None:
    raws = [message(n) for n in range(4)]
    for raw in raws:
        await store.deliver(REF, raw)
    await store.set_flags(REF, "INBOX", [1, 2], add=["\\Seen"])
    await store.set_flags(REF, "INBOX", [2, 3], add=["\\Deleted"])
    info = await store.folder_info(REF, "INBOX")
    assert (info.messages, info.unseen, info.deleted, info.size, info.uidnext) == (
        4,
        2,
        2,
        sum(map(len, raws)),
        5,
    )
    [inbox] = [f for f in await store.folders(REF) if f.name == "INBOX"]
    assert (inbox.deleted, inbox.unseen) == (2, 2)


# -- migration of an index of version 1 -------------------------------------------------------

_V1_MESSAGES = """
CREATE TABLE messages_v1_layout (
    folder_id INTEGER NOT NULL, uid INTEGER NOT NULL, base TEXT NOT NULL,
    subdir TEXT NOT NULL, filename TEXT NOT NULL, flags TEXT NOT NULL,
    keywords TEXT NOT NULL, modseq INTEGER NOT NULL, internal_date REAL NOT NULL,
    size INTEGER NOT NULL, header_bytes INTEGER, message_id TEXT, subject TEXT,
    envelope TEXT, bodystructure TEXT, PRIMARY KEY (folder_id, uid));
INSERT INTO messages_v1_layout
    SELECT m.folder_id, m.uid, m.base, m.subdir, m.filename, m.flags, m.keywords, m.modseq,
    m.internal_date, m.size, s.header_bytes, s.message_id, s.subject, s.envelope,
    s.bodystructure
    FROM messages m LEFT JOIN summaries s ON s.key = (m.folder_id << 32) + m.uid;
DROP TABLE messages;
DROP TABLE summaries;
ALTER TABLE messages_v1_layout RENAME TO messages;
CREATE UNIQUE INDEX messages_by_base ON messages (folder_id, base);
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);
ALTER TABLE folders DROP COLUMN vanished_floor;
PRAGMA user_version = 1;
"""


def downgrade_to_version_1(index_path: Path) -> None:
    """Rewrite a closed index into the layout of version 1 (summary in `messages`)."""
    db = sqlite3.connect(index_path, isolation_level=None)
    try:
        db.executescript(_V1_MESSAGES)
    finally:
        db.close()


async def test_index_of_version_1_is_migrated_keeping_state_and_filling_wire_from_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, hostname="test.example")
    raws = [message(n, multipart=n == 2) for n in range(1, 4)]
    for raw in raws:
        await store.deliver(REF, raw)
    await store.set_flags(REF, "INBOX", [1], add=["\\Seen", "Work"])
    mark = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.expunge(REF, "INBOX", [3])
    await store.set_subscribed(REF, "Sent", False)
    before = await store.folder_info(REF, "INBOX")
    metas = await store.messages(REF, "INBOX")
    await store.close()
    index_path = store.maildir_path(REF) / "pymta-index.sqlite"
    downgrade_to_version_1(index_path)
    assert query(store, "PRAGMA user_version") == [(1,)]

    store = Store(tmp_path, hostname="test.example")
    try:
        parses = SummarizeCalls(monkeypatch)
        assert await store.folder_info(REF, "INBOX") == before
        assert await store.messages(REF, "INBOX") == metas  # keywords and modseqs kept
        assert not (await store.folder_info(REF, "Sent")).subscribed
        assert await store.vanished_since(REF, "INBOX", mark) == [3]
        rows = await store.fetch_rows(REF, "INBOX", None, ("envelope", "body", "bodystructure"))
        assert rows == [wire_forms(raws[0]), wire_forms(raws[1])]
        rows = await store.fetch_rows(REF, "INBOX", None, SEARCH_COLUMNS)
        assert rows == [searchable(raws[0]), searchable(raws[1])]
        assert parses.count == 0  # from the JSON of version 1, not from the files
        assert query(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert (await store.deliver(REF, message(9))).uid == 4
    finally:
        await store.close()


# -- migration of an index of version 2 -------------------------------------------------------

_V2_SUMMARIES = """
ALTER TABLE summaries DROP COLUMN search_date;
ALTER TABLE summaries DROP COLUMN search_subject;
ALTER TABLE summaries DROP COLUMN search_from;
ALTER TABLE summaries DROP COLUMN search_to;
ALTER TABLE summaries DROP COLUMN search_cc;
ALTER TABLE summaries DROP COLUMN search_bcc;
ALTER TABLE summaries DROP COLUMN search_in_reply_to;
ALTER TABLE summaries DROP COLUMN search_message_id;
ALTER TABLE summaries DROP COLUMN sent_day;
ALTER TABLE summaries DROP COLUMN searchable;
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);
PRAGMA user_version = 2;
"""


async def test_index_of_version_2_gets_its_search_forms_from_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, hostname="test.example")
    raws = [message(n, multipart=n == 2) for n in range(1, 4)]
    for raw in raws:
        await store.deliver(REF, raw)
    await store.set_flags(REF, "INBOX", [2], add=["\\Flagged", "Work"])
    metas = await store.messages(REF, "INBOX")
    wires = await store.fetch_rows(REF, "INBOX", None, ("uid", "envelope", "bodystructure"))
    await store.close()
    db = sqlite3.connect(store.maildir_path(REF) / "pymta-index.sqlite", isolation_level=None)
    try:
        db.executescript(_V2_SUMMARIES)
    finally:
        db.close()

    store = Store(tmp_path, hostname="test.example")
    try:
        parses = SummarizeCalls(monkeypatch)
        assert await store.messages(REF, "INBOX") == metas
        rows = await store.fetch_rows(REF, "INBOX", None, ("uid", *SEARCH_COLUMNS))
        assert rows == [(n + 1, *searchable(raw)) for n, raw in enumerate(raws)]
        assert (
            await store.fetch_rows(REF, "INBOX", None, ("uid", "envelope", "bodystructure"))
            == wires
        )
        assert parses.count == 0  # from the JSON of version 2, not from the files
        assert query(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert query(store, "SELECT count(*) FROM messages WHERE cached = 0") == [(0,)]
        indexes = query(store, "SELECT name FROM sqlite_master WHERE type = 'index'")
        assert ("messages_by_modseq",) not in indexes
        assert (await store.deliver(REF, message(9))).uid == 4
    finally:
        await store.close()
