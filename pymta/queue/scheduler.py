"""`Queue`: durable enqueue, the delivery scheduler, and the admin operations.

The scheduler keeps a view of the spool (`_known`: ID → the envelope as last read), which
it refreshes by a scan every `scan_interval_s` (envelopes whose stat did not change are not
read again) and on `wake()`. The view only decides *when* to look at an entry: before each
attempt the envelope is read again from disk, and the outcomes are written back under the
envelope's lock onto what is on disk then, so a `delete`, `hold` or `flush` done by another
process in the meantime is honoured and a deleted entry is never written back. An attempt
calls the transports and logs their results through `outcomes.py`; every change it (or an
admin operation) makes to an envelope is one of the edits in `edits.py`.

Reports to the sender go through hooks: `on_failed` (bounces; called until it returns, so
none is lost), `on_delayed` (one delay warning per entry) and `on_success` (RFC 3461
success reports, for recipients that asked NOTIFY=SUCCESS). `on_success` is called once,
after the attempt's outcomes are on disk; if it fails the report is logged and dropped:
trying again would mean keeping or re-sending a message that was delivered.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from pymta.config.model import QueueConfig
from pymta.queue.dsn import notify_allows
from pymta.queue.edits import (
    make_due,
    mark_reported,
    mark_warned,
    postpone,
    record_attempt,
    retry_delay,
    set_held,
)
from pymta.queue.model import (
    DELIVERED,
    FAILED,
    PENDING,
    CorruptEnvelope,
    IdGenerator,
    QueueEntry,
    QueueRecipient,
    SuccessAction,
    Transport,
    is_valid_id,
)
from pymta.queue.outcomes import Result, call_transport, log_attempt
from pymta.queue.spool import Change, GroupCommit, Spool, StatKey

log = logging.getLogger(__name__)

_T = TypeVar("_T")

OnFailed = Callable[[QueueEntry, Sequence[QueueRecipient]], Awaitable[None]]
# A success report: the entry, the recipients (each with the transport's detail as
# `last_error`), the report's action, and the message (whose headers the report carries).
OnSuccess = Callable[[QueueEntry, Sequence[QueueRecipient], SuccessAction, bytes], Awaitable[None]]

_IO_THREADS = 4


@dataclass(frozen=True)
class _Known:
    key: StatKey | None  # None: read it again at the next scan
    entry: QueueEntry


class Queue:
    """The outbound queue of one spool directory.

    One server process runs the scheduler (`run`) and enqueues; any number of admin
    processes (the CLI) may use the synchronous admin operations on the same spool at the
    same time. Admin operations block; in the server process call them from the event
    loop's thread (they wake the scheduler).
    """

    def __init__(
        self,
        spool_dir: Path,
        config: QueueConfig,
        *,
        clock: Callable[[], float] = time.time,
        fsync: Callable[[int], None] = os.fsync,
        max_concurrent: int = 20,
        on_failed: OnFailed | None = None,
        on_delayed: OnFailed | None = None,
        on_success: OnSuccess | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.spool = Spool(spool_dir, fsync=fsync)
        self._config = config
        self._clock = clock
        self._on_failed = on_failed
        self._on_delayed = on_delayed  # the delay warning (once per entry)
        self._on_success = on_success  # RFC 3461 success reports (best effort)
        self._ids = IdGenerator()
        self._pool = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="pymta-queue")
        self._group = GroupCommit(functools.partial(self._io, self.spool.sync_dir))
        self._spool_created = False
        self._in_flight: set[str] = set()  # IDs being enqueued (files not all there yet)
        self._known: dict[str, _Known] = {}
        self._active: dict[str, asyncio.Task[None]] = {}
        self._transports: dict[str, Transport] = {}
        self._attempt_slots = asyncio.Semaphore(max_concurrent)
        self._wake_event: asyncio.Event | None = None
        self._rescan_requested = False

    def close(self) -> None:
        """Release the I/O threads (after `run` was cancelled and enqueues finished)."""
        self._pool.shutdown(wait=True)

    async def _io(self, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    # -- enqueue -------------------------------------------------------------------------

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueueRecipient],
        message: bytes,
        *,
        envid: str | None = None,
        ret: str | None = None,
    ) -> QueueEntry:
        """Store a message for later delivery; on return it is on disk and fsynced.

        Raises OSError when it could not be stored (the caller answers 451).
        """
        if not recipients:
            raise ValueError("enqueue needs at least one recipient")
        if any(r.status != PENDING for r in recipients):
            raise ValueError("enqueued recipients must be pending")
        now = self._clock()
        entry = QueueEntry(
            id=self._ids.next(now),
            sender=sender,
            recipients=[replace(r) for r in recipients],
            created=now,
            next_attempt=now,
            envid=envid,
            ret=ret,
            size=len(message),
        )
        self._in_flight.add(entry.id)
        try:
            if not self._spool_created:
                await self._io(self.spool.create)
                self._spool_created = True
            await self._io(self.spool.write_new, entry, message)
            await self._group.commit()
        finally:
            self._in_flight.discard(entry.id)
        log.info(
            "queue enqueued id=%s sender=<%s> rcpts=%d size=%d",
            entry.id,
            entry.sender,
            len(entry.recipients),
            entry.size,
        )
        self._known[entry.id] = _Known(None, copy.deepcopy(entry))
        self.wake()
        return entry

    # -- the scheduler -------------------------------------------------------------------

    def set_transports(self, transports: Mapping[str, Transport]) -> None:
        """Replace the transports (by name); entries waiting for a new one become due."""
        self._transports = dict(transports)
        self.wake()

    def wake(self) -> None:
        """Look at the queue now (from the event loop's thread)."""
        if self._wake_event is not None:
            self._wake_event.set()

    async def recover(self) -> None:
        """Clean up after a crash: temp files and message files without an envelope."""
        await self._io(self.spool.create)
        self._spool_created = True
        done = await self._io(self.spool.recover, self._in_flight)
        if done.removed_temp or done.removed_orphans:
            log.warning(
                "queue recovered temp_removed=%d orphans_removed=%d",
                done.removed_temp,
                done.removed_orphans,
            )

    async def run(self, transports: Mapping[str, Transport]) -> None:
        """The scheduler: recover, then attempt due entries until cancelled."""
        self._transports = dict(transports)
        loop = asyncio.get_running_loop()
        self._wake_event = wake = asyncio.Event()
        await self.recover()
        log.info("queue started spool=%s", self.spool.directory)
        next_scan = loop.time()
        try:
            while True:
                wake.clear()
                delay = self._config.scan_interval_s
                try:
                    if loop.time() >= next_scan or self._rescan_requested:
                        self._rescan_requested = False
                        next_scan = loop.time() + self._config.scan_interval_s
                        await self._scan()
                    now = self._clock()
                    self._dispatch(now)
                    delay = min(next_scan - loop.time(), self._next_due(now) - now)
                except Exception:
                    # Whatever went wrong (a full disk, say), the scheduler lives on.
                    log.exception("queue scheduler_error")
                # Not asyncio.wait_for: before 3.12 it can swallow a cancellation that
                # arrives together with a wake-up, and the scheduler would never stop.
                timer = loop.call_later(max(delay, 0.0), wake.set)
                try:
                    await wake.wait()
                finally:
                    timer.cancel()
        finally:
            self._wake_event = None
            tasks = list(self._active.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("queue stopped")

    async def process_due(self) -> int:
        """Scan once and attempt every due entry; return when done. How many were due."""
        await self._scan()
        tasks = self._dispatch(self._clock())
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _scan(self) -> None:
        before = {entry_id: known.key for entry_id, known in self._known.items()}
        found = await self._io(self._read_changed, before)
        fresh: dict[str, _Known] = {}
        for entry_id, (key, entry) in found.items():
            if entry is not None:
                fresh[entry_id] = _Known(key, entry)
            elif entry_id in self._known:
                fresh[entry_id] = self._known[entry_id]
        for entry_id, known in self._known.items():
            if entry_id not in before and entry_id not in fresh:
                fresh[entry_id] = known  # enqueued while the scan ran
        self._known = fresh

    def _read_changed(
        self, before: Mapping[str, StatKey | None]
    ) -> dict[str, tuple[StatKey, QueueEntry | None]]:
        """(In a thread.) Every entry's stat key, and its envelope when that changed."""
        found: dict[str, tuple[StatKey, QueueEntry | None]] = {}
        for entry_id in self.spool.ids():
            key = self.spool.stat_key(entry_id)
            if key is None:
                continue
            if before.get(entry_id) == key:
                found[entry_id] = (key, None)
                continue
            try:
                entry = self.spool.read(entry_id)
            except CorruptEnvelope as exc:
                self._quarantine(entry_id, str(exc))
                continue
            if entry is not None:
                found[entry_id] = (key, entry)
        return found

    def _quarantine(self, entry_id: str, error: str) -> None:
        """(In a thread.) Move a broken entry aside, loudly, and carry on."""
        moved_to = self.spool.move_aside(entry_id)
        log.error('queue corrupt_envelope id=%s error="%s" moved_to=%s', entry_id, error, moved_to)

    def _wants_attempt(self, entry: QueueEntry) -> bool:
        """Whether there is anything to do for this entry (due or not)."""
        if entry.held:
            return False
        pending = entry.pending()
        if any(r.transport in self._transports for r in pending):
            return True
        if not pending:
            return True  # only the removal (and maybe the failure report) is left
        return self._on_failed is not None and bool(entry.unreported_failures())

    def _dispatch(self, now: float) -> list[asyncio.Task[None]]:
        started = []
        for entry_id in sorted(self._known):
            entry = self._known[entry_id].entry
            if entry_id in self._active or entry.next_attempt > now:
                continue
            if not self._wants_attempt(entry):
                continue
            task = asyncio.create_task(self._attempt_guarded(entry_id))
            self._active[entry_id] = task
            task.add_done_callback(functools.partial(self._attempt_done, entry_id))
            started.append(task)
        return started

    def _attempt_done(self, entry_id: str, task: asyncio.Task[None]) -> None:
        self._active.pop(entry_id, None)
        self.wake()

    def _next_due(self, now: float) -> float:
        due = [
            known.entry.next_attempt
            for entry_id, known in self._known.items()
            if entry_id not in self._active and self._wants_attempt(known.entry)
        ]
        return min(due, default=now + self._config.scan_interval_s)

    async def _attempt_guarded(self, entry_id: str) -> None:
        async with self._attempt_slots:
            try:
                await self._attempt(entry_id)
            except Exception:
                log.exception("queue attempt_error id=%s", entry_id)
                known = self._known.get(entry_id)
                if known is not None:  # do not spin on it: wait like a temporary failure
                    retry_at = self._clock() + retry_delay(self._config, 1)
                    self._known[entry_id] = _Known(
                        None, replace(known.entry, next_attempt=retry_at)
                    )

    def _read_for_attempt(self, entry_id: str) -> tuple[QueueEntry | None, bytes | None]:
        """The entry and its message in one trip to an I/O thread (the message is nearly
        always needed; None when its file is missing). Raises CorruptEnvelope."""
        entry = self.spool.read(entry_id)
        if entry is None:
            return None, None
        try:
            return entry, self.spool.read_message(entry_id)
        except FileNotFoundError:
            return entry, None

    async def _attempt(self, entry_id: str) -> None:
        try:
            entry, message = await self._io(self._read_for_attempt, entry_id)
        except CorruptEnvelope as exc:
            self._known.pop(entry_id, None)
            await self._io(self._quarantine, entry_id, str(exc))
            return
        if entry is None:  # deleted (by the CLI, say) since the scan
            self._known.pop(entry_id, None)
            return
        self._known[entry_id] = _Known(None, entry)
        now = self._clock()
        if entry.next_attempt > now or not self._wants_attempt(entry):
            return  # held or rescheduled since the scan
        transports = self._transports
        groups: dict[str, list[int]] = {}
        for index, rcpt in enumerate(entry.recipients):
            # A recipient whose transport we do not have stays pending, untouched.
            if rcpt.status == PENDING and rcpt.transport in transports:
                groups.setdefault(rcpt.transport, []).append(index)
        results: dict[int, Result] = {}
        if groups:
            if message is None:
                self._known.pop(entry_id, None)
                await self._io(self._quarantine, entry_id, "message file missing")
                return
            calls = [
                call_transport(transports[name], entry, indexes, message)
                for name, indexes in groups.items()
            ]
            for part in await asyncio.gather(*calls):
                results.update(part)
            now = self._clock()
            log_attempt(entry, results, now)
        apply = functools.partial(
            record_attempt,
            results=results,
            now=now,
            attempted=bool(groups),
            config=self._config,
            reports_failures=self._on_failed is not None,
        )
        saved = await self._io(self.spool.transact, entry_id, apply)
        await self._after_save(entry_id, saved)
        if groups and message is not None:
            await self._report_success(entry, results, message)

    async def _after_save(self, entry_id: str, saved: tuple[QueueEntry, Change] | None) -> None:
        if saved is None:
            self._known.pop(entry_id, None)
            log.info("queue attempt_discarded id=%s reason=deleted", entry_id)
            return
        entry, change = saved
        if change is Change.REMOVE:
            self._known.pop(entry_id, None)
            self._log_removed(entry)
            return
        self._known[entry_id] = _Known(None, entry)
        if self._wants_warning(entry):
            await self._warn(entry_id, entry)
        failures = entry.unreported_failures()
        if self._on_failed is None or not failures:
            return
        indexes = [
            i for i, r in enumerate(entry.recipients) if r.status == FAILED and not r.reported
        ]
        try:
            await self._on_failed(entry, failures)
        except Exception:
            log.exception("queue on_failed_error id=%s", entry_id)
            delay_until = self._clock() + retry_delay(self._config, entry.attempts)
            later = functools.partial(postpone, until=delay_until)
            await self._io(self.spool.transact, entry_id, later)
            self._known.pop(entry_id, None)
            self._rescan_requested = True
            return
        reported = await self._io(
            self.spool.transact, entry_id, functools.partial(mark_reported, indexes=indexes)
        )
        if reported is None or reported[1] is Change.REMOVE:
            self._known.pop(entry_id, None)
            if reported is not None:
                self._log_removed(reported[0])
        else:
            self._known[entry_id] = _Known(None, reported[0])

    async def _report_success(
        self, entry: QueueEntry, results: Mapping[int, Result], message: bytes
    ) -> None:
        """Success reports for this attempt's deliveries, once their outcome is on disk.

        Only recipients whose NOTIFY has SUCCESS (RFC 3461 §5.2.2 (b), §5.2.3 (a)), never
        to the null sender (§5.2), nothing when the next server reports itself (§5.2.1).
        """
        if self._on_success is None or entry.sender == "":
            return
        by_action: dict[SuccessAction, list[QueueRecipient]] = {}
        for index, result in sorted(results.items()):
            rcpt = entry.recipients[index]
            if result.kind != "delivered" or result.dsn_action is None:
                continue
            if rcpt.status == PENDING and notify_allows(rcpt, "SUCCESS"):
                reported = replace(rcpt, status=DELIVERED, last_error=result.detail)
                by_action.setdefault(result.dsn_action, []).append(reported)
        for action, recipients in by_action.items():
            try:
                await self._on_success(entry, recipients, action, message)
            except Exception:
                log.exception("queue on_success_error id=%s action=%s", entry.id, action)

    def _wants_warning(self, entry: QueueEntry) -> bool:
        """Still pending after `delay_warning_s`, and the sender not told yet."""
        warning = self._config.delay_warning_s
        return (
            self._on_delayed is not None
            and warning > 0
            and not entry.warned
            and bool(entry.pending())
            and self._clock() - entry.created >= warning
        )

    async def _warn(self, entry_id: str, entry: QueueEntry) -> None:
        """Tell the sender once; a failure to tell is logged and tried at the next attempt."""
        assert self._on_delayed is not None
        try:
            await self._on_delayed(entry, entry.pending())
        except Exception:
            log.exception("queue on_delayed_error id=%s", entry_id)
            return
        saved = await self._io(self.spool.transact, entry_id, mark_warned)
        if saved is not None:
            self._known[entry_id] = _Known(None, saved[0])
        log.info("queue delay_warning id=%s", entry_id)

    def _log_removed(self, entry: QueueEntry) -> None:
        delivered = sum(r.status == DELIVERED for r in entry.recipients)
        log.info(
            "queue removed id=%s delivered=%d failed=%d",
            entry.id,
            delivered,
            len(entry.recipients) - delivered,
        )

    # -- admin operations (synchronous, for the CLI) -------------------------------------

    def list(self) -> list[QueueEntry]:
        """Every entry, oldest first (an envelope that does not decode is logged, skipped)."""
        entries = []
        for entry_id in self.spool.ids():
            entry = self.get(entry_id)
            if entry is not None:
                entries.append(entry)
        return entries

    def get(self, entry_id: str) -> QueueEntry | None:
        if not is_valid_id(entry_id):
            return None
        try:
            return self.spool.read(entry_id)
        except CorruptEnvelope as exc:
            log.warning('queue corrupt_envelope id=%s error="%s"', entry_id, exc)
            return None

    def delete(self, entry_id: str) -> bool:
        """Remove an entry (no bounce is sent); False when there is none."""
        if not is_valid_id(entry_id) or not self.spool.remove(entry_id):
            return False
        log.info("queue deleted id=%s", entry_id)
        self._admin_changed(entry_id)
        return True

    def hold(self, entry_id: str) -> bool:
        """Keep an entry from being attempted until `release`; False when there is none."""
        return self._set_held(entry_id, True)

    def release(self, entry_id: str) -> bool:
        return self._set_held(entry_id, False)

    def flush(self) -> int:
        """Make every entry that is not held due now; how many that is."""
        now = self._clock()
        count = 0
        for entry_id in self.spool.ids():
            try:
                done = self.spool.transact(entry_id, functools.partial(make_due, now=now))
            except CorruptEnvelope as exc:
                log.warning('queue corrupt_envelope id=%s error="%s"', entry_id, exc)
                continue
            if done is not None and not done[0].held:
                count += 1
        log.info("queue flushed entries=%d", count)
        self._admin_changed(None)
        return count

    def _set_held(self, entry_id: str, held: bool) -> bool:
        if not is_valid_id(entry_id):
            return False
        try:
            done = self.spool.transact(entry_id, functools.partial(set_held, held=held))
        except CorruptEnvelope as exc:
            log.warning('queue corrupt_envelope id=%s error="%s"', entry_id, exc)
            return False
        if done is None:
            return False
        log.info("queue %s id=%s", "held" if held else "released", entry_id)
        self._admin_changed(entry_id)
        return True

    def _admin_changed(self, entry_id: str | None) -> None:
        # In the server process: let the scheduler see the change at once. (Another
        # process's scheduler sees it at its next scan, or before its next attempt.)
        if entry_id is not None:
            self._known.pop(entry_id, None)
        self._rescan_requested = True
        self.wake()
