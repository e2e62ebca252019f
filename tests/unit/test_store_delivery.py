"""Delivery, flags, expunge, usage, notifications and group commit, on real files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.store import (
    Change,
    FolderNotFound,
    InvalidFlag,
    MailboxRef,
    MessageNotFound,
    QuotaExceeded,
    Store,
)

REF = MailboxRef("user", "alice", "example.org")


def message(n: int = 0, body: bytes = b"hello\r\n") -> bytes:
    return (
        f"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: test {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n\r\n"
    ).encode() + body


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data", hostname="test.example")
    yield s
    await s.close()


def index_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(root / "pymta-index.sqlite")
    try:
        return list(db.execute(sql))
    finally:
        db.close()


async def test_deliver_writes_new_file_with_uid_index_row_and_usage(store: Store) -> None:
    raw = message(1)
    delivered = await store.deliver(REF, raw)
    root = store.maildir_path(REF)
    assert delivered.uid == 1 and delivered.folder == "INBOX" and delivered.size == len(raw)
    assert delivered.path.parent == root / "new"
    assert delivered.path.name.endswith(f".test.example,S={len(raw)},U=1")
    assert delivered.path.read_bytes() == raw
    assert os.listdir(root / "tmp") == []
    rows = index_rows(
        root,
        "SELECT m.uid, m.subdir, m.filename, m.size, s.subject FROM messages m "
        "JOIN summaries s ON s.key = (m.folder_id << 32) + m.uid",
    )
    assert rows == [(1, "new", delivered.path.name, len(raw), "test 1")]
    usage = await store.usage(REF)
    assert (usage.bytes, usage.messages) == (len(raw), 1)
    [meta] = await store.messages(REF, "INBOX")
    assert (meta.uid, meta.flags, meta.size, meta.path) == (1, "", len(raw), delivered.path)
    assert await store.read_message(REF, "INBOX", 1) == raw


async def test_first_use_creates_default_folders_with_special_use(store: Store) -> None:
    folders = {f.name: f for f in await store.folders(REF)}
    assert next(iter(folders)) == "INBOX"
    assert {name: f.special_use for name, f in folders.items()} == {
        "INBOX": None,
        "Drafts": "\\Drafts",
        "Sent": "\\Sent",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    root = store.maildir_path(REF)
    for name in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
        folder = root / f".{name}"
        assert {p.name for p in folder.iterdir()} >= {"cur", "new", "tmp", "maildirfolder"}
        assert int((folder / "pymta-uidvalidity").read_text()) == folders[name].uidvalidity
    assert len({f.uidvalidity for f in folders.values()}) == len(folders)


async def test_deliver_into_a_folder_with_flags_lands_in_cur(store: Store) -> None:
    delivered = await store.deliver(
        REF, message(), folder="Sent", flags="SR", keywords=["$Forwarded", "Work"]
    )
    assert delivered.path.parent == store.maildir_path(REF) / ".Sent" / "cur"
    assert delivered.path.name.endswith(",U=1:2,PRS")
    [meta] = await store.messages(REF, "Sent")
    assert (meta.flags, meta.keywords) == ("PRS", ("Work",))
    assert meta.imap_flags == ("$Forwarded", "\\Answered", "\\Seen", "Work")


async def test_internal_date_is_the_file_mtime(store: Store) -> None:
    delivered = await store.deliver(REF, message(), internal_date=1_600_000_000.0)
    assert delivered.path.stat().st_mtime == 1_600_000_000.0
    [meta] = await store.messages(REF, "INBOX")
    assert meta.internal_date == 1_600_000_000.0


async def test_deliver_to_missing_folder_refused(store: Store) -> None:
    with pytest.raises(FolderNotFound):
        await store.deliver(REF, message(), folder="Nope")
    assert (await store.usage(REF)).messages == 0


async def test_quota_refuses_a_delivery_that_would_exceed_it(store: Store) -> None:
    raw = message()
    await store.deliver(REF, raw, quota_bytes=2 * len(raw))
    await store.deliver(REF, raw, quota_bytes=2 * len(raw))
    with pytest.raises(QuotaExceeded):
        await store.deliver(REF, raw, quota_bytes=2 * len(raw))
    assert (await store.usage(REF)).messages == 2


async def test_fifty_concurrent_deliveries_get_unique_increasing_uids(store: Store) -> None:
    seen: list[int] = []
    store.subscribe(REF, "INBOX", lambda change: seen.extend(change.uids))
    results = await asyncio.gather(*(store.deliver(REF, message(n)) for n in range(50)))
    assert sorted(d.uid for d in results) == list(range(1, 51))
    # Committed (and announced) in UID order: nobody sees 5 and later a new 4.
    assert seen == list(range(1, 51))
    metas = await store.messages(REF, "INBOX")
    assert [m.uid for m in metas] == list(range(1, 51))
    assert sorted(os.listdir(store.maildir_path(REF) / "new")) == sorted(m.path.name for m in metas)
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (50, sum(len(message(n)) for n in range(50)))


async def test_flags_round_trip_through_file_names(store: Store) -> None:
    delivered = await store.deliver(REF, message())
    before = (await store.folder_info(REF, "INBOX")).highestmodseq

    [meta] = (await store.set_flags(REF, "INBOX", [1], add=["\\Seen", "\\Flagged", "Todo"])).updated
    assert (meta.flags, meta.keywords) == ("FS", ("Todo",))
    assert meta.modseq == before + 1
    assert meta.path.parent.name == "cur" and meta.path.name.endswith(",U=1:2,FS")
    assert meta.path.exists() and not delivered.path.exists()

    [meta] = (await store.set_flags(REF, "INBOX", [1], remove=["\\Flagged", "todo"])).updated
    assert (meta.flags, meta.keywords, meta.path.name[-4:]) == ("S", (), ":2,S")

    [meta] = (
        await store.set_flags(REF, "INBOX", [1], replace=["\\Answered", "$Forwarded"])
    ).updated
    assert meta.flags == "PR" and meta.path.name.endswith(":2,PR")

    # Setting what is already set changes nothing, not even the modseq (RFC 7162 §3.2).
    [same] = (await store.set_flags(REF, "INBOX", [1], add=["\\Answered"])).updated
    assert same.modseq == meta.modseq
    assert (await store.folder_info(REF, "INBOX")).unseen == 1

    # The flags are read back from the file name after the index is gone.
    await store.close()
    for suffix in ("", "-wal", "-shm"):
        (store.maildir_path(REF) / f"pymta-index.sqlite{suffix}").unlink(missing_ok=True)
    reopened = Store(store.data_dir, hostname="test.example")
    try:
        [meta] = await reopened.messages(REF, "INBOX")
        assert (meta.uid, meta.flags) == (1, "PR")
    finally:
        await reopened.close()


async def test_set_flags_refuses_unknown_system_flags(store: Store) -> None:
    await store.deliver(REF, message())
    with pytest.raises(InvalidFlag):
        await store.set_flags(REF, "INBOX", [1], add=["\\Recent"])


async def test_expunge_removes_files_rows_and_usage(store: Store) -> None:
    raws = [message(n) for n in range(3)]
    delivered = [await store.deliver(REF, raw) for raw in raws]
    await store.set_flags(REF, "INBOX", [2], add=["\\Deleted"])
    assert await store.expunge(REF, "INBOX", [2, 99]) == [2]
    assert not any(p.name.endswith(",U=2:2,T") for p in (store.maildir_path(REF) / "cur").iterdir())
    assert [m.uid for m in await store.messages(REF, "INBOX")] == [1, 3]
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (2, len(raws[0]) + len(raws[2]))
    with pytest.raises(MessageNotFound):
        await store.read_message(REF, "INBOX", 2)
    assert await store.expunge(REF, "INBOX", [2]) == []
    assert delivered[0].path.exists()


async def test_uids_are_not_reused_after_expunging_the_highest(store: Store) -> None:
    for n in range(3):
        await store.deliver(REF, message(n))
    await store.expunge(REF, "INBOX", [3])
    assert (await store.deliver(REF, message(4))).uid == 4


async def test_notifications_fire_after_deliver_expunge_and_flags(store: Store) -> None:
    changes: list[Change] = []
    everything: list[Change] = []

    def on_change(change: Change) -> None:
        # Called on the event loop, after the commit: the index already shows it.
        assert threading.current_thread() is threading.main_thread()
        changes.append(change)

    sub = store.subscribe(REF, "inbox", on_change)
    store.subscribe(REF, None, everything.append)
    delivered = await store.deliver(REF, message())
    # The callback was queued before deliver's result, so it has run by now.
    assert [(c.folder, c.kind, c.uids) for c in changes] == [("INBOX", "exists", (1,))]
    info = await store.folder_info(REF, "INBOX")
    assert changes[0].uidvalidity == info.uidvalidity
    assert changes[0].highestmodseq == info.highestmodseq

    await store.set_flags(REF, "INBOX", [1], add=["\\Seen"])
    await store.expunge(REF, "INBOX", [delivered.uid])
    assert [c.kind for c in changes] == ["exists", "flags", "expunge"]
    assert changes[-1].uids == (1,)
    assert changes[-1].highestmodseq > changes[-2].highestmodseq

    await store.deliver(REF, message(), folder="Sent")
    assert len(changes) == 3  # another folder
    assert [(c.folder, c.kind) for c in everything][-1] == ("Sent", "exists")

    sub.cancel()
    await store.deliver(REF, message())
    assert len(changes) == 3


async def test_group_commit_one_directory_fsync_serves_all_waiting(tmp_path: Path) -> None:
    """Deliveries that arrive while a directory fsync is running wait for the next one,
    and that single next fsync covers all of them."""
    dir_syncs: list[str] = []
    armed = threading.Event()
    first_running = threading.Event()
    release = threading.Event()

    def counting_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode) and armed.is_set():
            dir_syncs.append(os.readlink(f"/proc/self/fd/{fd}"))
            if not first_running.is_set():
                first_running.set()
                release.wait(30)
        os.fsync(fd)

    store = Store(tmp_path / "data", hostname="test.example", fsync=counting_fsync, workers=16)
    try:
        await store.usage(REF)  # the root and its folders exist before we count
        new_dir = store.maildir_path(REF) / "new"
        armed.set()
        first = asyncio.create_task(store.deliver(REF, message(0)))
        assert await asyncio.to_thread(first_running.wait, 30)
        others = [asyncio.create_task(store.deliver(REF, message(n))) for n in range(1, 11)]
        # Wait (not a timing assertion) until all ten wait behind the running fsync.
        for _ in range(3000):
            if store.dirsync.waiters(new_dir) == 11:
                break
            await asyncio.sleep(0.01)
        assert store.dirsync.waiters(new_dir) == 11
        release.set()
        results = await asyncio.gather(first, *others)
        assert sorted(d.uid for d in results) == list(range(1, 12))
        assert dir_syncs == [str(new_dir), str(new_dir)]
    finally:
        release.set()
        await store.close()


def test_dirsyncer_waiter_arriving_during_a_sync_waits_for_the_next(tmp_path: Path) -> None:
    from pymta.store.dirsync import DirSyncer

    calls: list[int] = []
    running = threading.Event()
    release = threading.Event()

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            running.set()
            release.wait(30)

    syncer = DirSyncer(fsync)
    done: list[str] = []
    first = threading.Thread(target=lambda: (syncer.sync(tmp_path), done.append("first")))
    first.start()
    assert running.wait(30)
    late = [
        threading.Thread(target=lambda: (syncer.sync(tmp_path), done.append("late")))
        for _ in range(8)
    ]
    for t in late:
        t.start()
    for _ in range(3000):
        if syncer.waiters(tmp_path) == 9:
            break
        threading.Event().wait(0.01)
    assert syncer.waiters(tmp_path) == 9
    assert done == []  # nobody returned on the sync that was already running
    release.set()
    for t in (first, *late):
        t.join(30)
    assert len(calls) == 2 and done.count("late") == 8
    assert syncer.waiters(tmp_path) == 0


async def test_summaries_are_cached_at_delivery(store: Store) -> None:
    await store.deliver(REF, message(7))
    [summary] = await store.summaries(REF, "INBOX", [1])
    assert summary.uid == 1
    assert summary.subject == "test 7"
    assert summary.envelope is not None and summary.bodystructure is not None
    assert summary.header_bytes == message(7).index(b"\r\n\r\n") + 4


async def test_mixed_concurrent_operations_stay_consistent(store: Store) -> None:
    """Deliveries, flag changes, expunges, listings, a folder rename and a reindex all at
    once; afterwards index, disk and usage agree."""
    await store.create_folder(REF, "Work")

    async def deliveries(folder: str) -> None:
        for n in range(15):
            await store.deliver(REF, message(n), folder=folder)

    async def flagger() -> None:
        for n in range(1, 15):
            await store.set_flags(REF, "INBOX", [n], add=["\\Seen", f"k{n % 3}"])

    removed: list[int] = []

    async def expunger() -> None:
        for n in range(2, 15, 3):
            removed.extend(await store.expunge(REF, "INBOX", [n]))

    async def lister() -> None:
        for _ in range(10):
            uids = [m.uid for m in await store.messages(REF, "INBOX")]
            assert uids == sorted(set(uids))
            await store.folders(REF)

    await asyncio.gather(
        deliveries("INBOX"),
        deliveries("INBOX"),
        deliveries("Work"),
        flagger(),
        expunger(),
        lister(),
        store.reindex(REF),
        store.rename_folder(REF, "Archive", "Old"),
    )
    total = 0
    count = 0
    for folder in await store.folders(REF):
        metas = await store.messages(REF, folder.name)
        directory = store.maildir_path(REF) / ("" if folder.name == "INBOX" else f".{folder.name}")
        on_disk = sorted(
            f"{sub}/{name}" for sub in ("new", "cur") for name in os.listdir(directory / sub)
        )
        assert sorted(m.filename for m in metas) == on_disk, folder.name
        assert all(f",U={m.uid}" in m.filename for m in metas)
        assert folder.uidnext > max((m.uid for m in metas), default=0)
        total += sum(m.size for m in metas)
        count += len(metas)
    usage = await store.usage(REF)
    assert (usage.messages, usage.bytes) == (count, total)
    assert count == 45 - len(removed)


async def test_idle_roots_beyond_the_limit_are_closed(tmp_path: Path) -> None:
    store = Store(tmp_path, hostname="test.example", max_open_roots=1)
    users = [MailboxRef("user", f"u{n}", "example.org") for n in range(4)]
    try:
        for _ in range(2):
            results = await asyncio.gather(*(store.deliver(ref, message()) for ref in users))
            assert all(d.uid >= 1 for d in results)
        for ref in users:
            assert (await store.usage(ref)).messages == 2
            assert [m.uid for m in await store.messages(ref, "INBOX")] == [1, 2]
    finally:
        await store.close()


async def test_changes_since_a_modseq(store: Store) -> None:
    for n in range(4):
        await store.deliver(REF, message(n))
    mark = (await store.folder_info(REF, "INBOX")).highestmodseq
    await store.set_flags(REF, "INBOX", [2], add=["\\Seen"])
    await store.expunge(REF, "INBOX", [3])
    await store.deliver(REF, message(5))
    changed, vanished = await store.changes_since(REF, "INBOX", mark)
    assert [(m.uid, m.flags) for m in changed] == [(2, "S"), (5, "")]
    assert vanished == [3]
    assert await store.changes_since(REF, "INBOX", changed[-1].modseq) == ([], [])
