"""Folders: create, delete, rename (RFC 9051 §6.3.4-6.3.6), subscriptions, special-use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.store import (
    Change,
    FolderExists,
    FolderNotFound,
    InvalidName,
    MailboxRef,
    NotAllowed,
    Store,
)

REF = MailboxRef("user", "alice", "example.org")


def message(n: int = 0) -> bytes:
    return f"Subject: test {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data", hostname="test.example")
    yield s
    await s.close()


async def names(store: Store) -> list[str]:
    return [f.name for f in await store.folders(REF)]


async def test_create_folder_on_disk_in_modified_utf7(store: Store) -> None:
    changes: list[Change] = []
    store.subscribe(REF, None, changes.append)
    await store.create_folder(REF, "Entwürfe", special_use="\\Drafts")
    folder = store.maildir_path(REF) / ".Entw&APw-rfe"
    assert {p.name for p in folder.iterdir()} >= {
        "cur",
        "new",
        "tmp",
        "maildirfolder",
        "pymta-uidvalidity",
    }
    info = await store.folder_info(REF, "Entwürfe")
    assert (info.special_use, info.uidnext, info.messages, info.subscribed) == (
        "\\Drafts",
        1,
        0,
        False,
    )
    assert int((folder / "pymta-uidvalidity").read_text()) == info.uidvalidity
    assert [(c.folder, c.kind) for c in changes] == [("Entwürfe", "folders")]
    assert not [p for p in store.maildir_path(REF).iterdir() if p.name.startswith("..")]


async def test_create_existing_or_inbox_refused(store: Store) -> None:
    await store.create_folder(REF, "Work")
    with pytest.raises(FolderExists):
        await store.create_folder(REF, "Work")
    with pytest.raises(FolderExists):
        await store.create_folder(REF, "inbox")
    with pytest.raises(InvalidName):
        await store.create_folder(REF, "Odd", special_use="\\Important-ish")


async def test_new_folder_gets_a_new_uidvalidity_after_delete(store: Store) -> None:
    await store.create_folder(REF, "Work")
    first = await store.folder_info(REF, "Work")
    await store.deliver(REF, message(), folder="Work")
    await store.delete_folder(REF, "Work")
    await store.create_folder(REF, "Work")
    second = await store.folder_info(REF, "Work")
    # RFC 9051 §6.3.9: a new incarnation never shows the old UIDs under the same UIDVALIDITY.
    assert second.uidvalidity > first.uidvalidity
    assert second.messages == 0


async def test_delete_folder_removes_it_and_its_usage_but_not_children(store: Store) -> None:
    await store.create_folder(REF, "Lists")
    await store.create_folder(REF, "Lists.Work")
    await store.deliver(REF, message(1), folder="Lists")
    kept = await store.deliver(REF, message(2), folder="Lists.Work")
    await store.delete_folder(REF, "Lists")
    assert "Lists" not in await names(store) and "Lists.Work" in await names(store)
    assert not (store.maildir_path(REF) / ".Lists").exists()
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (1, kept.size)
    with pytest.raises(FolderNotFound):
        await store.delete_folder(REF, "Lists")
    with pytest.raises(NotAllowed):
        await store.delete_folder(REF, "INBOX")


async def test_rename_moves_children_and_keeps_uids(store: Store) -> None:
    await store.create_folder(REF, "Projects")
    await store.create_folder(REF, "Projects.Old")
    await store.deliver(REF, message(1), folder="Projects.Old")
    before = await store.folder_info(REF, "Projects.Old")
    changes: list[Change] = []
    store.subscribe(REF, "Projects", changes.append)
    await store.rename_folder(REF, "Projects", "Archive.Projects")
    listed = await names(store)
    assert "Archive.Projects" in listed and "Archive.Projects.Old" in listed
    assert "Projects" not in listed and "Projects.Old" not in listed
    after = await store.folder_info(REF, "Archive.Projects.Old")
    assert (after.uidvalidity, after.messages) == (before.uidvalidity, 1)
    assert (store.maildir_path(REF) / ".Archive.Projects.Old" / "new").is_dir()
    assert [(c.kind, c.renamed_to) for c in changes] == [("folders", "Archive.Projects")]
    assert await store.read_message(REF, "Archive.Projects.Old", 1) == message(1)


async def test_rename_refusals(store: Store) -> None:
    await store.create_folder(REF, "A")
    with pytest.raises(FolderExists):
        await store.rename_folder(REF, "A", "Sent")
    with pytest.raises(FolderNotFound):
        await store.rename_folder(REF, "Nope", "B")
    with pytest.raises(NotAllowed):
        await store.rename_folder(REF, "A", "A.B")
    with pytest.raises(FolderExists):
        await store.rename_folder(REF, "A", "INBOX")


async def test_rename_inbox_moves_its_messages_and_leaves_it_empty(store: Store) -> None:
    for n in range(3):
        await store.deliver(REF, message(n))
    inbox = await store.folder_info(REF, "INBOX")
    changes: list[Change] = []
    store.subscribe(REF, "INBOX", changes.append)
    await store.rename_folder(REF, "INBOX", "Old Mail")  # RFC 9051 §6.3.6
    moved = await store.messages(REF, "Old Mail")
    assert [m.uid for m in moved] == [1, 2, 3]
    assert all(m.path.exists() for m in moved)
    assert await store.messages(REF, "INBOX") == []
    assert [(c.kind, c.uids) for c in changes] == [("expunge", (1, 2, 3))]
    # INBOX's UIDs are not handed out again.
    assert (await store.deliver(REF, message(9))).uid == inbox.uidnext
    usage = await store.usage(REF)
    assert usage.messages == 4


async def test_subscriptions(store: Store) -> None:
    await store.create_folder(REF, "Work")
    await store.set_subscribed(REF, "Work", True)
    assert (await store.folder_info(REF, "Work")).subscribed
    await store.set_subscribed(REF, "Work", False)
    assert not (await store.folder_info(REF, "Work")).subscribed
    with pytest.raises(FolderNotFound):
        await store.set_subscribed(REF, "Nope", True)


async def test_public_mailbox_root(store: Store) -> None:
    shared = MailboxRef("public", "Shared")
    delivered = await store.deliver(shared, message())
    assert delivered.path.is_relative_to(store.data_dir / "public" / "Shared" / "Maildir")
    assert (await store.usage(REF)).messages == 0
    assert (await store.usage(shared)).messages == 1
