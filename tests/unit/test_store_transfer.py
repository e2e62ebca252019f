"""APPEND / MULTIAPPEND (RFC 3502), COPY with COPYUID (RFC 4315 §3) and MOVE (RFC 6851):
UIDs, flags, keywords, internal dates, quota, durability, notifications, interruption."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.store import AppendItem, Change, MailboxRef, QuotaExceeded, Store
from pymta.store import cache as cache_module
from pymta.store.index import Index

REF = MailboxRef("user", "alice", "example.org")
SHARED = MailboxRef("public", "Shared")
DATE = 1_600_000_000.0  # 2020-09-13, an APPEND date in the past


def message(n: int = 0) -> bytes:
    return f"Subject: test {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n".encode()


class FsyncLog:
    """The store's fsync, recording which paths were synced."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, fd: int) -> None:
        self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        os.fsync(fd)


@pytest.fixture
def fsyncs() -> FsyncLog:
    return FsyncLog()


@pytest.fixture
async def store(tmp_path: Path, fsyncs: FsyncLog) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data", hostname="test.example", fsync=fsyncs)
    yield s
    await s.close()


def files(directory: Path) -> list[str]:
    return sorted(
        f"{sub}/{name}" for sub in ("new", "cur", "tmp") for name in os.listdir(directory / sub)
    )


async def deliver_three(store: Store) -> None:
    await store.deliver(REF, message(1), flags="S", keywords=["Work"])
    await store.deliver(REF, message(2))
    await store.deliver(REF, message(3), flags="RF", internal_date=DATE)


# -- APPEND / MULTIAPPEND ---------------------------------------------------------------------


async def test_append_many_gives_consecutive_uids_flags_and_dates(store: Store) -> None:
    changes: list[Change] = []
    store.subscribe(REF, "Drafts", changes.append)
    items = [
        AppendItem(message(1), ("\\Draft", "\\Seen", "Work"), DATE),
        AppendItem(message(2)),
        AppendItem(message(3), ("$Forwarded",), DATE + 60),
    ]
    delivered = await store.append_many(REF, "Drafts", items)
    info = await store.folder_info(REF, "Drafts")
    assert [d.uid for d in delivered] == [1, 2, 3]
    assert {d.uidvalidity for d in delivered} == {info.uidvalidity}  # APPENDUID (RFC 4315)
    assert delivered[0].path.parent.name == "cur" and delivered[0].path.name.endswith(",U=1:2,DS")
    assert delivered[1].path.parent.name == "new"
    assert delivered[2].path.name.endswith(":2,P")
    assert os.stat(delivered[0].path).st_mtime == DATE  # the internal date, as Dovecot reads it
    rows = await store.fetch_rows(
        REF, "Drafts", None, ("uid", "flags", "keywords", "internal_date")
    )
    assert rows[0] == (1, "DS", "Work", DATE) and rows[2] == (3, "P", "", DATE + 60)
    assert [(c.kind, c.uids) for c in changes] == [("exists", (1, 2, 3))]


async def test_append_many_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.usage(REF)
    renames: list[str] = []
    real_rename = os.rename

    def failing_second(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        renames.append(str(dst))
        if len(renames) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", failing_second)
        with pytest.raises(OSError):
            await store.append_many(REF, "INBOX", [AppendItem(message(n)) for n in range(3)])
    root = store.maildir_path(REF)
    assert files(root) == []
    assert (await store.listing(REF, "INBOX")).messages == 0
    assert (await store.usage(REF)).messages == 0
    [delivered] = await store.append_many(REF, "INBOX", [AppendItem(message(9))])
    assert delivered.uid == 1  # the failed batch's UIDs were never seen


async def test_append_over_quota_stores_nothing(store: Store) -> None:
    await store.deliver(REF, message(0))
    used = (await store.usage(REF)).bytes
    items = [AppendItem(message(n)) for n in range(2)]
    with pytest.raises(QuotaExceeded):
        await store.append_many(REF, "INBOX", items, quota_bytes=used + len(message(1)) + 1)
    assert (await store.usage(REF)).bytes == used
    assert files(store.maildir_path(REF)) == [
        f"new/{p.name}" for p in (store.maildir_path(REF) / "new").iterdir()
    ]
    assert len(await store.append_many(REF, "INBOX", items, quota_bytes=used + 1000)) == 2
    assert await store.append_many(REF, "INBOX", []) == []


# -- COPY -------------------------------------------------------------------------------------


async def test_copy_gives_copyuid_pairs_in_source_order_and_keeps_flags_keywords_dates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver_three(store)
    await store.deliver(REF, message(0), folder="Archive")
    changes: list[Change] = []
    store.subscribe(REF, "Archive", changes.append)
    parses: list[bytes] = []
    monkeypatch.setattr(cache_module, "summarize", lambda raw: parses.append(raw))

    result = await store.copy(REF, "INBOX", [3, 99, 1], REF, "Archive")
    archive = await store.folder_info(REF, "Archive")
    assert result.uidvalidity == archive.uidvalidity
    assert result.pairs == [(1, 2), (3, 3)]  # RFC 4315 §3: new UIDs in source UID order
    copies = {m.uid: m for m in await store.messages(REF, "Archive")}
    originals = {m.uid: m for m in await store.messages(REF, "INBOX")}
    for src, dst in result.pairs:
        a, b = originals[src], copies[dst]
        assert (b.flags, b.keywords, b.internal_date, b.size) == (
            a.flags,
            a.keywords,
            a.internal_date,
            a.size,
        )
        assert os.stat(b.path).st_ino == os.stat(a.path).st_ino  # hard link, as Dovecot does
        assert b.path.read_bytes() == a.path.read_bytes()
    assert copies[3].internal_date == DATE
    rows = await store.fetch_rows(REF, "Archive", [2, 3], ("subject",))
    assert rows == [("test 1",), ("test 3",)] and parses == []  # the summary came along
    assert [(c.kind, c.uids) for c in changes] == [("exists", (2, 3))]
    assert (await store.usage(REF)).messages == 6
    assert files(store.maildir_path(REF) / ".Archive")[-1].startswith("new/")  # tmp/ empty


async def test_copy_is_durable_before_it_returns(store: Store, fsyncs: FsyncLog) -> None:
    await deliver_three(store)
    fsyncs.paths.clear()
    await store.copy(REF, "INBOX", [1, 2], REF, "Archive")
    archive = store.maildir_path(REF) / ".Archive"
    assert str(archive / "cur") in fsyncs.paths and str(archive / "new") in fsyncs.paths


async def test_copy_across_file_systems_copies_the_data_and_fsyncs_it(
    store: Store, fsyncs: FsyncLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver_three(store)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    fsyncs.paths.clear()
    result = await store.copy(REF, "INBOX", [3], REF, "Archive")
    [(_, uid)] = result.pairs
    [copy] = await store.messages(REF, "Archive")
    [original] = [m for m in await store.messages(REF, "INBOX") if m.uid == 3]
    assert copy.uid == uid and copy.path.read_bytes() == message(3)
    assert os.stat(copy.path).st_ino != os.stat(original.path).st_ino
    assert os.stat(copy.path).st_mtime == DATE
    archive = store.maildir_path(REF) / ".Archive"
    assert any(p.startswith(str(archive / "tmp")) for p in fsyncs.paths)  # the data
    assert str(archive / "cur") in fsyncs.paths  # and the directory entry


async def test_copy_into_the_same_folder_and_into_another_root(store: Store) -> None:
    await deliver_three(store)
    same = await store.copy(REF, "INBOX", [2], REF, "INBOX")
    assert same.pairs == [(2, 4)]
    other = await store.copy(REF, "INBOX", [1, 2], SHARED, "INBOX")
    assert other.pairs == [(1, 1), (2, 2)]
    assert other.uidvalidity == (await store.folder_info(SHARED, "INBOX")).uidvalidity
    shared = await store.messages(SHARED, "INBOX")
    assert [(m.flags, m.keywords) for m in shared] == [("S", ("Work",)), ("", ())]
    assert (await store.usage(SHARED)).bytes == len(message(1)) + len(message(2))


async def test_copy_checks_the_quota_of_the_destination(store: Store) -> None:
    await deliver_three(store)
    await store.usage(SHARED)
    with pytest.raises(QuotaExceeded):
        await store.copy(REF, "INBOX", [1, 2], SHARED, "INBOX", quota_bytes=len(message(1)))
    assert await store.messages(SHARED, "INBOX") == []
    assert files(store.maildir_path(SHARED)) == []


async def test_copy_follows_a_flag_change_racing_with_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver_three(store)
    [meta] = [m for m in await store.messages(REF, "INBOX") if m.uid == 2]
    real_link = os.link
    calls: list[str] = []

    def link_after_a_rename(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not calls:  # another session's STORE renames the file first
            calls.append(str(src))
            os.rename(meta.path, meta.path.parent.parent / "cur" / f"{meta.path.name}:2,S")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", link_after_a_rename)
    result = await store.copy(REF, "INBOX", [2], REF, "Archive")
    assert result.pairs == [(2, 1)]
    [copy] = await store.messages(REF, "Archive")
    assert copy.path.read_bytes() == message(2)


# -- MOVE -------------------------------------------------------------------------------------


async def test_move_renames_into_the_destination_and_expunges_the_source(store: Store) -> None:
    await deliver_three(store)
    await store.deliver(REF, message(0), folder="Archive")
    before = {m.uid: m for m in await store.messages(REF, "INBOX")}
    inodes = {uid: os.stat(m.path).st_ino for uid, m in before.items()}
    mark = (await store.folder_info(REF, "INBOX")).highestmodseq
    usage = await store.usage(REF)
    changes: list[Change] = []
    store.subscribe(REF, None, changes.append)

    result = await store.move(REF, "INBOX", [1, 3], REF, "Archive")
    assert result.pairs == [(1, 2), (3, 3)]
    assert result.uidvalidity == (await store.folder_info(REF, "Archive")).uidvalidity
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [2]
    moved = {m.uid: m for m in await store.messages(REF, "Archive")}
    for src, dst in result.pairs:
        assert os.stat(moved[dst].path).st_ino == inodes[src]  # renamed, not copied
        assert (moved[dst].flags, moved[dst].keywords, moved[dst].internal_date) == (
            before[src].flags,
            before[src].keywords,
            before[src].internal_date,
        )
        assert f",U={dst}" in moved[dst].filename
    assert await store.vanished_since(REF, "INBOX", mark) == [1, 3]
    assert [(c.folder, c.kind, c.uids) for c in changes] == [
        ("Archive", "exists", (2, 3)),
        ("INBOX", "expunge", (1, 3)),
    ]
    assert await store.usage(REF) == usage
    assert await store.fetch_rows(REF, "Archive", [3], ("subject",)) == [("test 3",)]


async def test_interrupted_move_loses_no_message(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files were renamed, then the index commit failed (as a crash would leave it):
    the next access finds them in the destination with the UIDs their names carry."""
    await deliver_three(store)

    def crash(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(Index, "delete_messages", crash)
        with pytest.raises(OSError):
            await store.move(REF, "INBOX", [1, 2], REF, "Archive")
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [3]
    archive = await store.messages(REF, "Archive")
    assert [(m.uid, m.flags) for m in archive] == [(1, "S"), (2, "")]
    assert sorted(m.path.read_bytes() for m in archive) == [message(1), message(2)]
    assert (await store.usage(REF)).messages == 3


async def test_move_across_roots_and_within_a_folder(store: Store) -> None:
    await deliver_three(store)
    result = await store.move(REF, "INBOX", [2, 3], SHARED, "INBOX")
    assert result.pairs == [(2, 1), (3, 2)]
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1]
    assert [m.flags for m in await store.messages(SHARED, "INBOX")] == ["", "FR"]
    same = await store.move(REF, "INBOX", [1], REF, "INBOX")
    assert same.pairs == [(1, 4)]
    assert [(m.uid, m.keywords) for m in await store.messages(REF, "INBOX")] == [(4, ("Work",))]


async def test_copy_or_move_of_nothing_that_exists_changes_nothing(store: Store) -> None:
    await deliver_three(store)
    before = await store.folder_info(REF, "Archive")
    assert (await store.move(REF, "INBOX", [42], REF, "Archive")).pairs == []
    assert (await store.copy(REF, "INBOX", [42], REF, "Archive")).pairs == []
    assert await store.folder_info(REF, "Archive") == before  # not even the modseq
    assert len(await store.messages(REF, "INBOX")) == 3
