"""The index as a cache of the Maildir: changes behind the store's back, lost and corrupt
indexes, reindex, and taking over a Dovecot Maildir."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.store import Change, MailboxRef, Store

REF = MailboxRef("user", "alice", "example.org")
FOREIGN = b"From: x@example.net\r\nSubject: dropped\r\n\r\nfrom another MDA\r\n"


def message(n: int = 0) -> bytes:
    return f"Subject: test {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n".encode()


def new_store(data_dir: Path) -> Store:
    return Store(data_dir, hostname="test.example")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = new_store(tmp_path / "data")
    yield s
    await s.close()


def drop_index(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (root / f"pymta-index.sqlite{suffix}").unlink(missing_ok=True)


async def test_file_dropped_into_new_gets_the_next_uid_and_is_renamed(store: Store) -> None:
    await store.deliver(REF, message(1))
    changes: list[Change] = []
    store.subscribe(REF, "INBOX", changes.append)
    root = store.maildir_path(REF)
    (root / "new" / "1700000000.M1P2.othermda").write_bytes(FOREIGN)

    metas = await store.messages(REF, "INBOX")
    assert [m.uid for m in metas] == [1, 2]
    assert metas[1].path == root / "new" / "1700000000.M1P2.othermda,U=2"
    assert metas[1].path.read_bytes() == FOREIGN
    assert not (root / "new" / "1700000000.M1P2.othermda").exists()
    assert [(c.kind, c.uids) for c in changes] == [("exists", (2,))]
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (2, len(message(1)) + len(FOREIGN))
    [summary] = await store.summaries(REF, "INBOX", [2])  # computed from the file, lazily
    assert summary.subject == "dropped"
    assert (await store.deliver(REF, message(3))).uid == 3


async def test_foreign_file_claiming_a_taken_uid_gets_a_new_one(store: Store) -> None:
    delivered = await store.deliver(REF, message(1))
    # A copy (say `cp`) of our own file under another unique name: same U=1.
    copy = delivered.path.parent / delivered.path.name.replace(".M", ".Mcopy", 1)
    copy.write_bytes(delivered.path.read_bytes())
    metas = await store.messages(REF, "INBOX")
    assert [m.uid for m in metas] == [1, 2]
    assert metas[1].path.name.endswith(",U=2")
    assert not copy.exists()


async def test_file_removed_behind_the_back_disappears(store: Store) -> None:
    delivered = [await store.deliver(REF, message(n)) for n in range(3)]
    changes: list[Change] = []
    store.subscribe(REF, "INBOX", changes.append)
    delivered[1].path.unlink()
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1, 3]
    assert [(c.kind, c.uids) for c in changes] == [("expunge", (2,))]
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (2, len(message(0)) + len(message(2)))


async def test_flag_change_by_another_maildir_tool_is_picked_up(store: Store) -> None:
    delivered = await store.deliver(REF, message())
    modseq = (await store.folder_info(REF, "INBOX")).highestmodseq
    root = store.maildir_path(REF)
    # A MUA moves it to cur/ and marks it seen and replied, as Maildir tools do.
    os.rename(delivered.path, root / "cur" / f"{delivered.path.name}:2,RS")
    [meta] = await store.messages(REF, "INBOX")
    assert (meta.uid, meta.flags) == (1, "RS")
    assert meta.modseq > modseq
    assert await store.read_message(REF, "INBOX", 1) == message()


async def test_read_message_follows_a_rename_behind_the_back(store: Store) -> None:
    delivered = await store.deliver(REF, message())
    await store.messages(REF, "INBOX")
    target = store.maildir_path(REF) / "cur" / f"{delivered.path.name}:2,S"
    os.rename(delivered.path, target)
    assert await store.read_message(REF, "INBOX", 1) == message()


async def test_lost_index_is_rebuilt_with_the_same_uids_and_uidvalidity(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    for n in range(4):
        await store.deliver(REF, message(n))
    await store.deliver(REF, message(9), folder="Sent", flags="S")
    await store.create_folder(REF, "Lists.Work")
    await store.deliver(REF, message(10), folder="Lists.Work")
    await store.set_flags(REF, "INBOX", [2], add=["\\Flagged"])
    await store.expunge(REF, "INBOX", [3])
    before = {f.name: f for f in await store.folders(REF)}
    uids = [(m.uid, m.flags, m.size) for m in await store.messages(REF, "INBOX")]
    usage = await store.usage(REF)
    await store.close()

    drop_index(store.maildir_path(REF))
    reopened = new_store(tmp_path)
    try:
        after = {f.name: f for f in await reopened.folders(REF)}
        assert after.keys() == before.keys()
        for name, info in after.items():
            assert info.uidvalidity == before[name].uidvalidity, name
            assert info.uidnext == before[name].uidnext, name
            assert info.messages == before[name].messages, name
            assert info.highestmodseq >= before[name].highestmodseq, name
        assert after["Sent"].special_use == "\\Sent"
        assert [(m.uid, m.flags, m.size) for m in await reopened.messages(REF, "INBOX")] == uids
        assert await reopened.usage(REF) == usage
        assert (await reopened.deliver(REF, message(5))).uid == 5
    finally:
        await reopened.close()


async def test_expunged_highest_uid_is_not_reused_after_index_loss(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    for n in range(3):
        await store.deliver(REF, message(n))
    assert await store.expunge(REF, "INBOX", [3]) == [3]
    await store.close()
    drop_index(store.maildir_path(REF))

    reopened = new_store(tmp_path)
    try:
        assert [m.uid for m in await reopened.messages(REF, "INBOX")] == [1, 2]
        assert (await reopened.deliver(REF, message(4))).uid == 4
    finally:
        await reopened.close()


async def test_corrupt_index_is_rebuilt(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    for n in range(2):
        await store.deliver(REF, message(n))
    uidvalidity = (await store.folder_info(REF, "INBOX")).uidvalidity
    await store.close()
    root = store.maildir_path(REF)
    drop_index(root)
    (root / "pymta-index.sqlite").write_bytes(b"this is not a database" * 100)

    reopened = new_store(tmp_path)
    try:
        assert [m.uid for m in await reopened.messages(REF, "INBOX")] == [1, 2]
        assert (await reopened.folder_info(REF, "INBOX")).uidvalidity == uidvalidity
        assert (root / "pymta-index.sqlite.corrupt").exists()
    finally:
        await reopened.close()


async def test_reindex_keeps_uids_keywords_and_usage(store: Store) -> None:
    for n in range(3):
        await store.deliver(REF, message(n), keywords=["Work"] if n == 1 else ())
    await store.expunge(REF, "INBOX", [1])
    usage = await store.usage(REF)
    info = await store.folder_info(REF, "INBOX")
    await store.set_subscribed(REF, "Junk", False)
    await store.reindex(REF)
    assert await store.usage(REF) == usage
    metas = await store.messages(REF, "INBOX")
    assert [(m.uid, m.keywords) for m in metas] == [(2, ("Work",)), (3, ())]
    after = await store.folder_info(REF, "INBOX")
    assert (after.uidvalidity, after.uidnext) == (info.uidvalidity, info.uidnext)
    assert after.highestmodseq > info.highestmodseq
    assert not (await store.folder_info(REF, "Junk")).subscribed


async def test_usage_stays_right_across_deliver_expunge_behind_the_back_and_reindex(
    store: Store,
) -> None:
    sizes: dict[int, int] = {}
    for n in range(5):
        d = await store.deliver(REF, message(n) * (n + 1), folder="Archive" if n % 2 else "INBOX")
        sizes[n] = d.size

    async def check(expected_sizes: list[int]) -> None:
        usage = await store.usage(REF)
        assert (usage.messages, usage.bytes) == (len(expected_sizes), sum(expected_sizes))

    await check(list(sizes.values()))
    await store.expunge(REF, "INBOX", [1])  # message 0
    await check([sizes[n] for n in (1, 2, 3, 4)])
    [first_archived, _] = await store.messages(REF, "Archive")
    first_archived.path.unlink()  # message 1, behind the back
    await store.folders(REF)
    await check([sizes[n] for n in (2, 3, 4)])
    await store.reindex(REF)
    await check([sizes[n] for n in (2, 3, 4)])
    await store.delete_folder(REF, "Archive")  # message 3 goes with it
    await check([sizes[n] for n in (2, 4)])


async def test_dovecot_maildir_is_taken_over(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    root = store.maildir_path(REF)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
        (root / ".Lists.Work" / sub).mkdir(parents=True)
        (root / ".Entw&APw-rfe" / sub).mkdir(parents=True)
    (root / ".Lists.Work" / "maildirfolder").touch()
    (root / "cur" / "1600000000.M1P1.old,S=40,W=42:2,Sa").write_bytes(message(1))
    (root / "cur" / "1600000001.M1P1.old,S=40,W=42:2,").write_bytes(message(2))
    (root / "new" / "1600000002.M1P1.old,S=40").write_bytes(message(3))
    (root / ".Lists.Work" / "cur" / "1600000003.M1P1.old:2,FS").write_bytes(message(4))
    (root / "dovecot-uidlist").write_text("3 V1 N4\n")  # Dovecot's own files stay put
    try:
        folders = {f.name: f for f in await store.folders(REF)}
        assert {"INBOX", "Lists.Work", "Entwürfe", "Sent", "Trash"} <= folders.keys()
        metas = await store.messages(REF, "INBOX")
        assert [(m.uid, m.flags) for m in metas] == [(1, "S"), (2, ""), (3, "")]
        # Dovecot's keyword letter "a" is kept in the name, every file now carries U=.
        assert metas[0].path.name == "1600000000.M1P1.old,S=40,W=42,U=1:2,Sa"
        assert all(",U=" in m.path.name for m in metas)
        [work] = await store.messages(REF, "Lists.Work")
        assert work.flags == "FS"
        assert (root / "dovecot-uidlist").exists()
        await store.create_folder(REF, "Entwürfe.2024")
        assert (root / ".Entw&APw-rfe.2024" / "maildirfolder").exists()
    finally:
        await store.close()


async def test_folder_created_or_removed_behind_the_back(store: Store) -> None:
    await store.usage(REF)
    root = store.maildir_path(REF)
    for sub in ("cur", "new", "tmp"):
        (root / ".Behind" / sub).mkdir(parents=True)
    (root / ".Behind" / "new" / "1.M1P1.x").write_bytes(FOREIGN)
    # Delivering to it works: the folder is adopted on first use.
    assert (await store.deliver(REF, message(), folder="Behind")).uid == 2
    assert [m.uid for m in await store.messages(REF, "Behind")] == [1, 2]
    import shutil

    shutil.rmtree(root / ".Behind")
    assert "Behind" not in {f.name for f in await store.folders(REF)}
    assert (await store.usage(REF)).messages == 0


async def test_stale_tmp_files_are_cleaned_on_rebuild(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    root = store.maildir_path(REF)
    (root / "tmp").mkdir(parents=True)
    stale = root / "tmp" / "1.M1P1.crashed"
    stale.write_bytes(b"partial")
    os.utime(stale, (1_000_000, 1_000_000))
    fresh = root / "tmp" / "2.M1P1.inflight"
    fresh.write_bytes(b"partial")
    try:
        await store.usage(REF)
        assert not stale.exists() and fresh.exists()
    finally:
        await store.close()


async def test_mailbox_roots_lists_users_and_public_mailboxes(store: Store) -> None:
    bob = MailboxRef("user", "bob", "example.net")
    shared = MailboxRef("public", "Shared")
    for ref in (REF, bob, shared):
        await store.usage(ref)
    (store.data_dir / "mail" / "example.org" / "not-a-mailbox").mkdir()
    assert store.mailbox_roots() == [bob, REF, shared]


async def test_own_changes_do_not_cause_rescans(store: Store, monkeypatch) -> None:
    from pymta.store import root as root_module

    # Every scan counts as settled: only a changed mtime can trigger a rescan.
    monkeypatch.setattr(root_module, "SETTLE_FINE_NS", 0)
    monkeypatch.setattr(root_module, "SETTLE_COARSE_NS", 0)
    rescans: list[str] = []
    original = root_module.MailboxRoot._rescan

    def counting(self, row, *args):  # type: ignore[no-untyped-def]
        rescans.append(row.name)
        return original(self, row, *args)

    monkeypatch.setattr(root_module.MailboxRoot, "_rescan", counting)
    await store.deliver(REF, message(0))
    await store.messages(REF, "INBOX")  # a fresh root may be scanned once
    rescans.clear()
    for n in range(1, 6):
        await store.deliver(REF, message(n))
    await store.deliver(REF, message(9), flags="S")
    await store.set_flags(REF, "INBOX", [1, 2], add=["\\Seen"])
    await store.expunge(REF, "INBOX", [3])
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1, 2, 4, 5, 6, 7]
    assert rescans == []
    (store.maildir_path(REF) / "new" / "1700000000.M1P2.othermda").write_bytes(FOREIGN)
    assert len(await store.messages(REF, "INBOX")) == 7
    assert rescans == ["INBOX"]


async def test_index_damaged_while_open_is_rebuilt_on_next_use(store: Store, monkeypatch) -> None:
    import sqlite3

    from pymta.store import StoreUnavailable
    from pymta.store.index import Index

    for n in range(3):
        await store.deliver(REF, message(n))
    uidvalidity = (await store.folder_info(REF, "INBOX")).uidvalidity

    def malformed(self, *args):  # type: ignore[no-untyped-def]
        raise sqlite3.DatabaseError("database disk image is malformed")

    with monkeypatch.context() as m:
        m.setattr(Index, "messages", malformed)
        with pytest.raises(StoreUnavailable) as caught:
            await store.messages(REF, "INBOX")
        assert isinstance(caught.value, OSError)  # temporary, like any disk trouble
    assert (store.maildir_path(REF) / "pymta-index.sqlite.corrupt").exists()
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1, 2, 3]
    assert (await store.folder_info(REF, "INBOX")).uidvalidity == uidvalidity
    assert (await store.deliver(REF, message(4))).uid == 4
