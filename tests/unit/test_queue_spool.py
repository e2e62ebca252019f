"""The queue's spool on disk: durable enqueue, reload, recovery, locking, group commit."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pymta.config.model import QueueConfig
from pymta.queue import CorruptEnvelope, Queue, QueueEntry, QueueRecipient
from pymta.queue.model import IdGenerator, entry_from_json, entry_to_json, is_valid_id
from pymta.queue.spool import Change, GroupCommit, Spool

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
ORPHAN_ID = "0001a2b3c4d5e6-0123456789"


class RecordingFsync:
    """An fsync that records what it synced (file or directory, and the path)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        path = os.readlink(f"/proc/self/fd/{fd}")
        with self.lock:
            self.calls.append((kind, path))
        os.fsync(fd)

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for k, _ in self.calls if k == kind)


async def eventually(check: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Wait (polling) until check() is true; fail the test when it never becomes true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.001)


def rcpt(
    address: str = "bob@remote.test", transport: str = "remote", **kw: object
) -> QueueRecipient:
    return QueueRecipient(address=address, transport=transport, **kw)  # type: ignore[arg-type]


async def test_enqueue_is_durable_message_then_envelope_then_directory(tmp_path: Path) -> None:
    fsync = RecordingFsync()
    queue = Queue(tmp_path / "queue", QueueConfig(), fsync=fsync)
    entry = await queue.enqueue("alice@example.org", [rcpt()], MESSAGE)

    spool = tmp_path / "queue"
    assert (spool / f"{entry.id}.eml").read_bytes() == MESSAGE
    envelope = json.loads((spool / f"{entry.id}.json").read_text())
    assert envelope["id"] == entry.id
    assert envelope["sender"] == "alice@example.org"
    assert envelope["recipients"][0]["address"] == "bob@remote.test"
    assert envelope["recipients"][0]["status"] == "pending"
    assert sorted(p.name for p in spool.iterdir()) == [f"{entry.id}.eml", f"{entry.id}.json"]
    # Each file fsynced under its temp name before the rename, then the directory.
    kinds = [kind for kind, _ in fsync.calls]
    assert kinds == ["file", "file", "dir"]
    assert f"{entry.id}.eml." in fsync.calls[0][1]
    assert f"{entry.id}.json." in fsync.calls[1][1]
    assert fsync.calls[2][1] == str(spool)
    queue.close()


async def test_enqueue_failure_raises_oserror_and_leaves_nothing(tmp_path: Path) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    queue = Queue(tmp_path / "queue", QueueConfig(), fsync=failing_fsync)
    with pytest.raises(OSError):
        await queue.enqueue("", [rcpt()], MESSAGE)
    assert list((tmp_path / "queue").iterdir()) == []
    queue.close()


async def test_entry_survives_a_restart_with_all_its_fields(tmp_path: Path) -> None:
    first = Queue(tmp_path, QueueConfig(), clock=lambda: 1_700_000_000.0)
    recipient = rcpt(
        "élodie@remote.test", notify=("SUCCESS", "FAILURE"), orcpt="rfc822;elodie@x.test"
    )
    local = rcpt("carol@example.org", "local", target="user:carol", last_error="over quota")
    entry = await first.enqueue("", [recipient, local], MESSAGE, envid="ENV1", ret="HDRS")
    assert first.hold(entry.id)
    first.close()

    second = Queue(tmp_path, QueueConfig())
    reloaded = second.get(entry.id)
    assert reloaded is not None
    assert reloaded.sender == ""
    assert reloaded.created == 1_700_000_000.0
    assert reloaded.held
    assert (reloaded.envid, reloaded.ret, reloaded.size) == ("ENV1", "HDRS", len(MESSAGE))
    assert reloaded.recipients == [recipient, local]
    assert reloaded.message_path is not None
    assert reloaded.message_path.read_bytes() == MESSAGE
    assert [e.id for e in second.list()] == [entry.id]


def test_ids_are_unique_sortable_and_safe_as_file_names() -> None:
    ids = IdGenerator()
    same_instant = [ids.next(1_700_000_000.0) for _ in range(100)]
    later = ids.next(1_700_000_001.0)
    assert len(set(same_instant)) == 100
    assert same_instant == sorted(same_instant)
    assert later > same_instant[-1]
    assert all(is_valid_id(i) for i in [*same_instant, later])
    assert not is_valid_id("../../etc/passwd")
    assert not is_valid_id(same_instant[0] + "/x")


def test_envelope_codec_round_trips_and_rejects_malformed_input() -> None:
    ids = IdGenerator()
    entry = QueueEntry(
        id=ids.next(1.0),
        sender="",
        recipients=[rcpt(notify=("NEVER",))],
        created=1.0,
        next_attempt=2.5,
        attempts=3,
        last_error="451 try later",
    )
    assert entry_from_json(entry_to_json(entry)) == entry
    good = json.loads(entry_to_json(entry))
    for broken in (
        b"",
        b'{"id": "x", "sen',
        b"\xff\xfe",
        b"[]",
        json.dumps({**good, "attempts": "3"}).encode(),
        json.dumps({**good, "held": 1}).encode(),
        json.dumps({**good, "recipients": []}).encode(),
        json.dumps({**good, "recipients": [{**good["recipients"][0], "status": "lost"}]}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "next_attempt"}).encode(),
    ):
        with pytest.raises(CorruptEnvelope):
            entry_from_json(broken)


async def test_orphan_message_and_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    queue = Queue(tmp_path, QueueConfig())
    kept = await queue.enqueue("a@example.org", [rcpt()], MESSAGE)
    # What a kill -9 in the middle of an enqueue or of an envelope rewrite leaves behind.
    (tmp_path / f"{ORPHAN_ID}.eml").write_bytes(MESSAGE)
    (tmp_path / f"{ORPHAN_ID}.json.1a2b3c4d.tmp").write_bytes(b'{"id"')
    (tmp_path / f"{kept.id}.json.5e6f7a8b.tmp").write_bytes(b"{")
    queue.close()

    restarted = Queue(tmp_path, QueueConfig())
    await restarted.recover()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{kept.id}.eml", f"{kept.id}.json"]
    restarted.close()


async def test_recovery_spares_the_temp_file_of_a_rewrite_in_progress(tmp_path: Path) -> None:
    queue = Queue(tmp_path, QueueConfig())
    entry = await queue.enqueue("a@example.org", [rcpt()], MESSAGE)
    temp = tmp_path / f"{entry.id}.json.0badcafe.tmp"
    temp.write_bytes(b"{")
    # Another process (the CLI) holds the envelope's lock while it writes that temp file.
    with open(tmp_path / f"{entry.id}.json", "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        await queue.recover()
        assert temp.exists()
    await queue.recover()
    assert not temp.exists()
    queue.close()


async def test_a_locked_change_waits_and_applies_on_top_of_the_previous_one(
    tmp_path: Path,
) -> None:
    queue = Queue(tmp_path, QueueConfig())
    entry = await queue.enqueue("a@example.org", [rcpt()], MESSAGE)
    queue.close()
    scheduler_side, cli_side = Spool(tmp_path), Spool(tmp_path)
    inside, release = threading.Event(), threading.Event()

    def slow_attempt(e: QueueEntry) -> Change:
        inside.set()
        release.wait(5)
        e.attempts = 7
        return Change.SAVE

    def hold(e: QueueEntry) -> Change:
        e.held = True
        return Change.SAVE

    first = threading.Thread(target=scheduler_side.transact, args=(entry.id, slow_attempt))
    first.start()
    assert inside.wait(5)
    second_done = threading.Event()

    def second_writer() -> None:
        cli_side.transact(entry.id, hold)
        second_done.set()

    second = threading.Thread(target=second_writer)
    second.start()
    assert not second_done.wait(0.05), "the second change must wait for the lock"
    release.set()
    first.join(5)
    second.join(5)
    # The second writer re-locked the file that replaced the one it waited on: no lost update.
    final = Spool(tmp_path).read(entry.id)
    assert final is not None
    assert (final.attempts, final.held) == (7, True)


async def test_removal_is_final_for_a_writer_that_was_waiting(tmp_path: Path) -> None:
    queue = Queue(tmp_path, QueueConfig())
    entry = await queue.enqueue("a@example.org", [rcpt()], MESSAGE)
    spool = Spool(tmp_path)
    assert spool.remove(entry.id)
    assert spool.transact(entry.id, lambda e: Change.SAVE) is None
    assert list(tmp_path.iterdir()) == []
    assert not spool.remove(entry.id)
    queue.close()


async def test_admin_operations_refuse_ids_that_are_paths(tmp_path: Path) -> None:
    spool_dir = tmp_path / "queue"
    outside = tmp_path / "victim.json"
    outside.write_text("{}")
    queue = Queue(spool_dir, QueueConfig())
    await queue.enqueue("a@example.org", [rcpt()], MESSAGE)
    for evil in ("../victim", "..", "/etc/passwd", "", "x" * 300):
        assert queue.get(evil) is None
        assert not queue.delete(evil)
        assert not queue.hold(evil)
        assert not queue.release(evil)
    assert outside.exists()
    queue.close()


async def test_group_commit_covers_everyone_who_arrived_during_a_sync() -> None:
    syncs = 0
    gate = asyncio.Event()

    async def sync() -> None:
        nonlocal syncs
        syncs += 1
        if syncs == 1:
            await gate.wait()

    group = GroupCommit(sync)
    first = asyncio.create_task(group.commit())
    await eventually(lambda: syncs == 1)
    # These arrive while sync #1 runs: #1 may not cover their renames, so they wait for #2.
    later = [asyncio.create_task(group.commit()) for _ in range(10)]
    await eventually(lambda: group.waiters == 11)
    assert not any(t.done() for t in later)
    gate.set()
    await asyncio.gather(first, *later)
    assert syncs == 2


async def test_group_commit_error_reaches_the_writers_it_covered() -> None:
    calls = 0

    async def sync() -> None:
        nonlocal calls
        calls += 1
        raise OSError(5, "I/O error")

    group = GroupCommit(sync)
    results = await asyncio.gather(group.commit(), group.commit(), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert calls == 1


async def test_concurrent_enqueues_share_directory_fsyncs(tmp_path: Path) -> None:
    recorder = RecordingFsync()
    first_dir_sync_may_finish = threading.Event()

    def fsync(fd: int) -> None:
        recorder(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode) and recorder.count("dir") == 1:
            first_dir_sync_may_finish.wait(5)

    queue = Queue(tmp_path, QueueConfig(), fsync=fsync)
    first = asyncio.create_task(queue.enqueue("a@example.org", [rcpt()], MESSAGE))
    await eventually(lambda: recorder.count("dir") == 1)
    rest = [
        asyncio.create_task(queue.enqueue("a@example.org", [rcpt()], MESSAGE)) for _ in range(20)
    ]
    # Wait until the other 20 have renamed their files and wait for a directory fsync.
    await eventually(lambda: queue._group.waiters == 21)
    first_dir_sync_may_finish.set()
    await asyncio.gather(first, *rest)

    assert recorder.count("file") == 42  # every message and envelope still fsynced
    assert recorder.count("dir") == 2  # one for the first, one shared by the other 20
    queue.close()


def test_warned_round_trips_and_older_envelopes_without_it_read_as_not_warned() -> None:
    import json

    from pymta.queue.model import (
        IdGenerator,
        QueueEntry,
        QueueRecipient,
        entry_from_json,
        entry_to_json,
    )

    entry = QueueEntry(
        id=IdGenerator().next(1.0),
        sender="a@b.test",
        recipients=[QueueRecipient(address="c@d.test", transport="remote")],
        created=1.0,
        next_attempt=2.0,
        warned=True,
    )
    assert entry_from_json(entry_to_json(entry)).warned
    older = json.loads(entry_to_json(entry))
    del older["warned"]
    assert not entry_from_json(json.dumps(older).encode()).warned
