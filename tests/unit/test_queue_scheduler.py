"""The queue's scheduler: attempts, backoff, failures, expiry, and admin changes while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from pymta.config.model import QueueConfig
from pymta.queue import Outcome, Queue, QueueEntry, QueueRecipient, Transport
from pymta.queue.model import SuccessAction

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
T0 = 1_700_000_000.0
FAST = QueueConfig(retry_intervals_s=(3600.0,), scan_interval_s=0.02)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTransport:
    """A transport that answers from a script: one kind per call (the last one repeats).

    A kind may be an exception instance (raised) or a callable taking the address.
    """

    def __init__(self, name: str, *script: object, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.script = list(script) or ["delivered"]
        self.gate = gate
        self.calls: list[tuple[str, list[str], bytes]] = []
        self.running = 0
        self.peak = 0

    async def deliver(
        self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
    ) -> Sequence[Outcome]:
        self.calls.append((entry.id, [r.address for r in recipients], message))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.running -= 1
        if isinstance(step, Exception):
            raise step
        outcomes = []
        for r in recipients:
            kind = step(r.address) if callable(step) else step
            outcomes.append(Outcome(r, kind, f"{kind} by {self.name}"))  # type: ignore[arg-type]
        return outcomes


class FailedLog:
    """An on_failed hook that records what it was told (and can fail on command)."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_times = fail_times

    async def __call__(self, entry: QueueEntry, recipients: Sequence[QueueRecipient]) -> None:
        self.calls.append((entry.id, [r.address for r in recipients]))
        if len(self.calls) <= self.fail_times:
            raise OSError(28, "No space left on device")


def rcpt(address: str, transport: str = "local") -> QueueRecipient:
    return QueueRecipient(address=address, transport=transport, target=f"user:{address}")


async def eventually(check: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Wait (polling) until check() is true; fail the test when it never becomes true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def scheduler(queue: Queue, transports: Mapping[str, Transport]) -> AsyncIterator[None]:
    task = asyncio.create_task(queue.run(transports))
    try:
        yield
        assert not task.done(), "the scheduler must not have stopped"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        queue.close()


def envelopes(spool: Path) -> list[str]:
    return sorted(p.stem for p in spool.glob("*.json"))


# -- delivery outcomes ---------------------------------------------------------------------


async def test_delivered_entry_is_removed(tmp_path: Path) -> None:
    queue = Queue(tmp_path, FAST)
    local = FakeTransport("local", "delivered")
    async with scheduler(queue, {"local": local}):
        entry = await queue.enqueue("a@example.org", [rcpt("bob"), rcpt("carol")], MESSAGE)
        await eventually(lambda: not envelopes(tmp_path))
    assert local.calls == [(entry.id, ["bob", "carol"], MESSAGE)]
    assert list(tmp_path.glob("*.eml")) == []


async def test_temporary_failures_retry_on_the_backoff_schedule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    config = QueueConfig(retry_intervals_s=(60.0, 300.0, 900.0))
    queue = Queue(tmp_path, config, clock=clock)
    local = FakeTransport("local", "temporary", "temporary", "temporary", "temporary", "delivered")
    queue.set_transports({"local": local})
    entry = await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)

    caplog.set_level(logging.INFO, logger="pymta.queue")
    clock.now = T0 + 2
    assert await queue.process_due() == 1
    assert (
        f"queue attempt id={entry.id} rcpt=bob transport=local outcome=temporary "
        f'detail="temporary by local" delay=2.0s' in caplog.messages
    )
    expected_next = T0 + 2
    for attempt, interval in enumerate((60.0, 300.0, 900.0, 900.0), start=1):
        state = queue.get(entry.id)
        assert state is not None
        expected_next += interval
        assert state.next_attempt == expected_next
        assert (state.attempts, state.recipients[0].attempts) == (attempt, attempt)
        assert state.recipients[0].last_error == "temporary by local"
        assert state.recipients[0].status == "pending"
        clock.now = expected_next - 1
        assert await queue.process_due() == 0  # not due yet
        assert len(local.calls) == attempt
        clock.now = expected_next
        assert await queue.process_due() == 1
    assert len(local.calls) == 5
    assert queue.get(entry.id) is None  # delivered at the fifth attempt
    queue.close()


async def test_permanent_failure_is_recorded_then_reported_once(tmp_path: Path) -> None:
    clock = Clock()
    on_failed = FailedLog()
    seen_on_disk: list[str] = []

    async def check_saved(entry: QueueEntry, recipients: Sequence[QueueRecipient]) -> None:
        # By the time the hook runs, the failure is on disk (a second reader sees it).
        saved = Queue(tmp_path, QueueConfig()).get(entry.id)
        assert saved is not None
        seen_on_disk.extend(f"{r.address}:{r.status}" for r in saved.recipients)
        await on_failed(entry, recipients)

    queue = Queue(tmp_path, QueueConfig(), clock=clock, on_failed=check_saved)
    local = FakeTransport("local", lambda a: "permanent" if a == "gone" else "delivered")
    queue.set_transports({"local": local})
    entry = await queue.enqueue("a@example.org", [rcpt("bob"), rcpt("gone")], MESSAGE)
    await queue.process_due()
    for _ in range(3):
        clock.now += 10_000
        await queue.process_due()

    assert on_failed.calls == [(entry.id, ["gone"])]
    assert seen_on_disk == ["bob:delivered", "gone:failed"]
    assert len(local.calls) == 1
    assert queue.get(entry.id) is None  # nothing pending, failure reported: removed
    queue.close()


async def test_a_failing_on_failed_hook_is_called_again_later(tmp_path: Path) -> None:
    clock = Clock()
    on_failed = FailedLog(fail_times=1)
    queue = Queue(
        tmp_path, QueueConfig(retry_intervals_s=(60.0,)), clock=clock, on_failed=on_failed
    )
    queue.set_transports({"local": FakeTransport("local", "permanent")})
    entry = await queue.enqueue("a@example.org", [rcpt("gone")], MESSAGE)

    await queue.process_due()
    kept = queue.get(entry.id)
    assert kept is not None, "a failure not yet reported must not be dropped"
    assert kept.recipients[0].status == "failed"
    assert not kept.recipients[0].reported
    assert await queue.process_due() == 0  # postponed, not retried in a tight loop
    clock.now = kept.next_attempt
    await queue.process_due()
    assert on_failed.calls == [(entry.id, ["gone"]), (entry.id, ["gone"])]
    assert queue.get(entry.id) is None
    queue.close()


async def test_failure_report_survives_a_restart(tmp_path: Path) -> None:
    """A crash after the failure was saved but before on_failed returned: told at restart."""
    clock = Clock()
    first = Queue(tmp_path, QueueConfig(), clock=clock, on_failed=FailedLog(fail_times=1))
    first.set_transports({"local": FakeTransport("local", "permanent")})
    entry = await first.enqueue("a@example.org", [rcpt("gone")], MESSAGE)
    await first.process_due()
    first.close()

    on_failed = FailedLog()
    restarted = Queue(tmp_path, QueueConfig(), clock=Clock(T0 + 86400), on_failed=on_failed)
    restarted.set_transports({})  # reporting needs no transport
    await restarted.process_due()
    assert on_failed.calls == [(entry.id, ["gone"])]
    assert restarted.get(entry.id) is None
    restarted.close()


async def test_entries_older_than_max_age_expire_after_a_last_attempt(tmp_path: Path) -> None:
    clock = Clock()
    on_failed = FailedLog()
    config = QueueConfig(retry_intervals_s=(1800.0,), max_age_s=3600.0)
    queue = Queue(tmp_path, config, clock=clock, on_failed=on_failed)
    local = FakeTransport("local", "temporary")
    queue.set_transports({"local": local})
    entry = await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)

    await queue.process_due()
    clock.now = T0 + 1800
    await queue.process_due()
    state = queue.get(entry.id)
    assert state is not None and state.recipients[0].status == "pending"
    clock.now = T0 + 3600.5  # older than max_age_s: this attempt is the last
    await queue.process_due()

    assert len(local.calls) == 3
    assert on_failed.calls == [(entry.id, ["bob"])]
    assert queue.get(entry.id) is None
    queue.close()


async def test_expired_recipient_keeps_the_last_error(tmp_path: Path) -> None:
    clock = Clock(T0)
    config = QueueConfig(max_age_s=10.0)
    failed: list[QueueRecipient] = []

    async def on_failed(entry: QueueEntry, recipients: Sequence[QueueRecipient]) -> None:
        failed.extend(recipients)

    queue = Queue(tmp_path, config, clock=clock, on_failed=on_failed)
    queue.set_transports({"local": FakeTransport("local", "temporary")})
    await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
    clock.now = T0 + 11
    await queue.process_due()
    assert [(r.status, r.last_error) for r in failed] == [
        ("failed", "expired; last error: temporary by local")
    ]
    queue.close()


async def test_recipients_without_their_transport_wait_and_are_listed(tmp_path: Path) -> None:
    clock = Clock()
    queue = Queue(tmp_path, QueueConfig(), clock=clock)
    local = FakeTransport("local", "delivered")
    queue.set_transports({"local": local})
    remote_only = await queue.enqueue("a@example.org", [rcpt("x@far.test", "remote")], MESSAGE)
    mixed = await queue.enqueue(
        "a@example.org", [rcpt("bob"), rcpt("y@far.test", "remote")], MESSAGE
    )

    assert await queue.process_due() == 1  # only `mixed` has something to do
    assert local.calls == [(mixed.id, ["bob"], MESSAGE)]
    listed = {e.id: e for e in queue.list()}
    assert list(listed) == [remote_only.id, mixed.id]
    waiting = listed[remote_only.id]
    assert (waiting.attempts, waiting.recipients[0].attempts) == (0, 0)
    assert waiting.recipients[0].status == "pending"
    assert [(r.status, r.attempts) for r in listed[mixed.id].recipients] == [
        ("delivered", 1),
        ("pending", 0),
    ]
    clock.now += 10_000
    assert await queue.process_due() == 0  # still nothing to deliver them with

    # A later issue brings the remote transport: the waiting recipients go out.
    remote = FakeTransport("remote", "delivered")
    queue.set_transports({"local": local, "remote": remote})
    assert await queue.process_due() == 2
    assert sorted(addrs for _, addrs, _ in remote.calls) == [["x@far.test"], ["y@far.test"]]
    assert queue.list() == []
    queue.close()


async def test_a_transport_that_raises_is_a_temporary_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = Queue(tmp_path, FAST)
    broken = FakeTransport("remote", RuntimeError("connection pool exploded"))
    local = FakeTransport("local", "delivered")
    async with scheduler(queue, {"remote": broken, "local": local}):
        failing = await queue.enqueue("a@example.org", [rcpt("x@far.test", "remote")], MESSAGE)
        await eventually(lambda: broken.calls)
        # The scheduler lives on: the next message goes out.
        fine = await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: fine.id not in envelopes(tmp_path))
        state = queue.get(failing.id)
    assert state is not None
    assert state.recipients[0].status == "pending"
    assert state.recipients[0].last_error == (
        "transport error: RuntimeError: connection pool exploded"
    )
    assert state.attempts == 1
    assert any("queue transport_error" in m for m in caplog.messages)


async def test_outcomes_missing_from_a_transport_count_as_temporary(tmp_path: Path) -> None:
    class Forgetful:
        name = "local"

        async def deliver(
            self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
        ) -> Sequence[Outcome]:
            return [Outcome(recipients[0], "delivered", "ok")]

    queue = Queue(tmp_path, QueueConfig(), clock=Clock())
    queue.set_transports({"local": Forgetful()})
    entry = await queue.enqueue("a@example.org", [rcpt("bob"), rcpt("carol")], MESSAGE)
    await queue.process_due()
    state = queue.get(entry.id)
    assert state is not None
    assert [(r.status, r.last_error) for r in state.recipients] == [
        ("delivered", ""),
        ("pending", "no outcome from transport"),
    ]
    queue.close()


async def test_at_most_max_concurrent_attempts_run_at_once(tmp_path: Path) -> None:
    gate = asyncio.Event()
    local = FakeTransport("local", "delivered", gate=gate)
    queue = Queue(tmp_path, FAST, max_concurrent=2)
    async with scheduler(queue, {"local": local}):
        for i in range(5):
            await queue.enqueue("a@example.org", [rcpt(f"user{i}")], MESSAGE)
        await eventually(lambda: local.running == 2)
        gate.set()
        await eventually(lambda: not envelopes(tmp_path))
    assert local.peak == 2
    assert len(local.calls) == 5


async def test_a_corrupt_envelope_is_moved_aside_and_the_rest_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_id = "0001a2b3c4d5e6-0123456789"
    (tmp_path / f"{bad_id}.json").write_bytes(b'{"version": 1, "id": "0001a2b3c4d5e6-01')
    (tmp_path / f"{bad_id}.eml").write_bytes(MESSAGE)
    queue = Queue(tmp_path, FAST)
    local = FakeTransport("local", "delivered")
    async with scheduler(queue, {"local": local}):
        good = await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: not envelopes(tmp_path))
    assert [entry_id for entry_id, _, _ in local.calls] == [good.id]
    assert sorted(p.name for p in (tmp_path / "corrupt").iterdir()) == [
        f"{bad_id}.eml",
        f"{bad_id}.json",
    ]
    assert any(f"queue corrupt_envelope id={bad_id}" in m for m in caplog.messages)


async def test_an_envelope_whose_message_is_gone_is_moved_aside(tmp_path: Path) -> None:
    queue = Queue(tmp_path, QueueConfig(), clock=Clock())
    queue.set_transports({"local": FakeTransport("local")})
    entry = await queue.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
    (tmp_path / f"{entry.id}.eml").unlink()
    await queue.process_due()
    assert queue.list() == []
    assert (tmp_path / "corrupt" / f"{entry.id}.json").exists()
    queue.close()


# -- admin operations from another Queue object (as the CLI does) while the scheduler runs --


async def test_delete_during_an_attempt_is_not_undone_by_the_scheduler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pymta.queue")
    gate = asyncio.Event()
    local = FakeTransport("local", "temporary", gate=gate)
    server = Queue(tmp_path, FAST)
    cli = Queue(tmp_path, FAST)
    async with scheduler(server, {"local": local}):
        entry = await server.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: local.running == 1)  # the attempt is in flight
        assert cli.delete(entry.id)
        gate.set()
        await eventually(lambda: any("attempt_discarded" in m for m in caplog.messages))
        assert envelopes(tmp_path) == []
        assert list(tmp_path.glob("*.eml")) == []
    assert len(local.calls) == 1


async def test_hold_and_release_from_another_process_are_honoured(tmp_path: Path) -> None:
    local = FakeTransport("local", "temporary", "delivered")
    # One attempt at a time, in ID order: when a later entry has been attempted, the
    # scheduler has passed over the earlier ones.
    server = Queue(tmp_path, FAST, max_concurrent=1)
    cli = Queue(tmp_path, FAST)
    async with scheduler(server, {"local": local}):
        held = await server.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: len(local.calls) == 1)  # first attempt: temporary
        assert cli.hold(held.id)
        assert cli.flush() == 0  # a held entry is not flushed
        other = await server.enqueue("a@example.org", [rcpt("carol")], MESSAGE)
        await eventually(lambda: other.id not in envelopes(tmp_path))
        assert [entry_id for entry_id, _, _ in local.calls] == [held.id, other.id]
        listed = cli.get(held.id)
        assert listed is not None and listed.held

        assert cli.release(held.id)
        assert cli.flush() == 1
        await eventually(lambda: held.id not in envelopes(tmp_path))
    assert [entry_id for entry_id, _, _ in local.calls] == [held.id, other.id, held.id]


async def test_flush_from_another_process_makes_a_deferred_entry_go_now(tmp_path: Path) -> None:
    local = FakeTransport("local", "temporary", "delivered")
    server = Queue(tmp_path, FAST)  # retry in an hour
    async with scheduler(server, {"local": local}):
        entry = await server.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: len(local.calls) == 1)
        deferred = Queue(tmp_path, FAST).get(entry.id)
        assert deferred is not None and deferred.next_attempt > time.time() + 3000
        assert Queue(tmp_path, FAST).flush() == 1
        await eventually(lambda: not envelopes(tmp_path))  # picked up by the next scan
    assert len(local.calls) == 2


async def test_admin_operations_work_in_a_separate_process(tmp_path: Path) -> None:
    local = FakeTransport("local", "temporary")
    server = Queue(tmp_path, FAST)
    async with scheduler(server, {"local": local}):
        entry = await server.enqueue("a@example.org", [rcpt("bob")], MESSAGE)
        await eventually(lambda: len(local.calls) == 1)
        script = (
            "import sys; from pathlib import Path; from pymta.config.model import QueueConfig;"
            "from pymta.queue import Queue;"
            "q = Queue(Path(sys.argv[1]), QueueConfig());"
            "assert [e.id for e in q.list()] == [sys.argv[2]];"
            "assert q.delete(sys.argv[2]); print('deleted')"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(tmp_path),
            entry.id,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        assert (proc.returncode, out) == (0, b"deleted\n")
        assert server.list() == []
        server.flush()  # nothing for the scheduler to bring back
    assert envelopes(tmp_path) == []
    assert len(local.calls) == 1


# -- success reports (RFC 3461 §5.2.2 (b), §5.2.3) ------------------------------------------


class SuccessLog:
    """An on_success hook that records what it was told (and can fail on command)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.fail = fail

    async def __call__(
        self,
        entry: QueueEntry,
        recipients: Sequence[QueueRecipient],
        action: SuccessAction,
        message: bytes,
    ) -> None:
        about = [(r.address, r.last_error) for r in recipients]
        self.calls.append((entry.id, action, about, message))
        if self.fail:
            raise OSError(28, "No space left on device")


class ActionTransport(FakeTransport):
    """Delivers everything, saying which report a delivery calls for."""

    def __init__(self, name: str, action: SuccessAction | None) -> None:
        super().__init__(name)
        self.action = action

    async def deliver(
        self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
    ) -> Sequence[Outcome]:
        self.calls.append((entry.id, [r.address for r in recipients], message))
        return [Outcome(r, "delivered", f"to {r.address}", self.action) for r in recipients]


def asking(address: str, *notify: str, transport: str = "local") -> QueueRecipient:
    return replace(rcpt(address, transport), notify=notify)


async def test_success_is_reported_for_the_recipients_that_asked(tmp_path: Path) -> None:
    on_success = SuccessLog()
    seen_on_disk: list[bool] = []

    async def check_saved(
        entry: QueueEntry, recipients: Sequence[QueueRecipient], action: SuccessAction, msg: bytes
    ) -> None:
        seen_on_disk.append(Queue(tmp_path, QueueConfig()).get(entry.id) is None)
        await on_success(entry, recipients, action, msg)

    queue = Queue(tmp_path, QueueConfig(), on_success=check_saved)
    queue.set_transports({"local": FakeTransport("local", "delivered")})
    entry = await queue.enqueue(
        "a@example.org",
        [asking("bob", "SUCCESS", "FAILURE"), asking("carol", "FAILURE"), rcpt("dave")],
        MESSAGE,
    )
    await queue.process_due()

    assert on_success.calls == [(entry.id, "delivered", [("bob", "delivered by local")], MESSAGE)]
    assert seen_on_disk == [True]  # told after the outcome was saved (here: entry removed)
    queue.close()


async def test_relayed_and_next_hop_reports(tmp_path: Path) -> None:
    """ "relayed" when the next server has no DSN; nothing when it reports itself."""
    on_success = SuccessLog()
    queue = Queue(tmp_path, QueueConfig(), on_success=on_success)
    queue.set_transports(
        {"relay": ActionTransport("relay", "relayed"), "dsn": ActionTransport("dsn", None)}
    )
    entry = await queue.enqueue(
        "a@example.org",
        [
            asking("x@old.test", "SUCCESS", transport="relay"),
            asking("y@new.test", "SUCCESS", transport="dsn"),
        ],
        MESSAGE,
    )
    await queue.process_due()
    assert on_success.calls == [(entry.id, "relayed", [("x@old.test", "to x@old.test")], MESSAGE)]
    queue.close()


async def test_no_success_report_to_the_null_sender(tmp_path: Path) -> None:
    on_success = SuccessLog()
    queue = Queue(tmp_path, QueueConfig(), on_success=on_success)
    queue.set_transports({"local": FakeTransport("local", "delivered")})
    await queue.enqueue("", [asking("bob", "SUCCESS")], MESSAGE)
    await queue.process_due()
    assert on_success.calls == []  # RFC 3461 §5.2
    queue.close()


async def test_a_failing_success_report_never_delivers_twice(tmp_path: Path) -> None:
    """A report that cannot be sent is dropped: the delivery is not repeated for it."""
    clock = Clock()
    on_success = SuccessLog(fail=True)
    queue = Queue(tmp_path, QueueConfig(), clock=clock, on_success=on_success)
    local = FakeTransport("local", "delivered")
    queue.set_transports({"local": local})
    await queue.enqueue("a@example.org", [asking("bob", "SUCCESS")], MESSAGE)
    await queue.process_due()
    clock.now += 10_000
    await queue.process_due()
    assert len(on_success.calls) == 1
    assert len(local.calls) == 1
    assert queue.list() == []
    queue.close()
